#!/usr/bin/env bash
# Runs the compose cluster of deploy/compose.yaml on the local Docker engine (docker-compose
# v1 or `docker compose`). The images must exist (`make cluster-images`).
#
#   cluster.sh certs  make the cluster CA (deploy/ca) and the mTLS certificates (deploy/certs)
#                     unless they exist (up does it first), with ../bin/strata-static or $STRATA
#   cluster.sh up     start it, create tenant example with demo@example.com (password demo),
#                     wait until both frontends answer IMAP
#   cluster.sh down   remove its containers, network and volumes
#   cluster.sh test   up, an LMTP delivery through each frontend's published port, an IMAP
#                     session through each frontend, SIGKILL of the Raft leader's
#                     container, the same sessions again, down
set -euo pipefail
cd "$(dirname "$0")"
SELF="$PWD/$(basename "$0")"

PROJECT=${STRATA_COMPOSE_PROJECT:-strata-cluster}
FRONTENDS=(127.0.0.1:11431 127.0.0.1:11432)
LMTP_CHECKS=(127.0.0.1:24241=127.0.0.1:11431 127.0.0.1:24242=127.0.0.1:11432)
if command -v docker-compose >/dev/null; then
  compose() { docker-compose -p "$PROJECT" -f compose.yaml "$@"; }
else
  compose() { docker compose -p "$PROJECT" -f compose.yaml "$@"; }
fi

# strata NODE ARGS...: runs the strata binary inside the container of service NODE, as the
# cluster administrator (cluster traffic is mutual TLS).
strata() {
  local node=$1; shift
  compose exec -T "$node" /strata "$@" \
    --cluster-tls-ca /certs/ca.pem --cluster-tls-cert /certs/admin-ops.pem --cluster-tls-key /certs/admin-ops-key.pem
}

# certs makes the cluster CA in ca/ (kept on the host) and one certificate per member in
# certs/ (compose.yaml mounts it at /certs, without the CA's key), with the strata binary
# of the host; what exists is kept.
certs() {
  local bin=${STRATA:-../bin/strata-static} n
  [ -f ca/ca.pem ] || "$bin" cert init --dir ca
  mkdir -p certs
  cp ca/ca.pem certs/ca.pem
  for n in meta1 meta2 meta3; do
    [ -f "certs/node-$n.pem" ] || "$bin" cert issue --dir ca --out "certs/node-$n" --role node --name "$n" --dns "$n"
  done
  for n in frontend1 frontend2; do
    [ -f "certs/frontend-$n.pem" ] || "$bin" cert issue --dir ca --out "certs/frontend-$n" --role frontend --name "$n" --dns "$n"
  done
  [ -f certs/admin-ops.pem ] || "$bin" cert issue --dir ca --out certs/admin-ops --role admin --name ops
}

# running_meta prints the metadata services whose container is running.
running_meta() {
  local n
  for n in meta1 meta2 meta3; do
    [ "$(docker inspect -f '{{.State.Running}}' "$(compose ps -q "$n")" 2>/dev/null)" = true ] && echo "$n"
  done
  return 0
}

# leader prints the ID of the Raft leader, asking a running metadata node.
leader() {
  local n out
  for n in $(running_meta); do
    if out=$(strata "$n" cluster status --etcd etcd:2379 --timeout 10s 2>/dev/null); then
      out=$(sed -n 's/^leader: \([^ ]*\) .*/\1/p' <<<"$out")
      if [ -n "$out" ]; then echo "$out"; return 0; fi
    fi
  done
  return 1
}

# all_voters: the group has three voters, each answering as leader or follower, so it
# survives the loss of any one.
all_voters() {
  local n out
  for n in $(running_meta); do
    if out=$(strata "$n" cluster status --etcd etcd:2379 --timeout 10s 2>/dev/null); then
      [ "$(grep -cE '^meta[0-9]+ +voter +(Leader|Follower) ' <<<"$out")" -eq 3 ]
      return
    fi
  done
  return 1
}

# admin ARGS...: an admin command (tenant add, user add) sent to the Raft leader (a follower
# holds a write until its deadline); "already exists" counts as done, so `up` can run twice.
admin() {
  local n out
  for n in $(leader); do
    if out=$(strata "$n" "$@" --server "$n:7100" 2>&1); then echo "$out"; return 0; fi
    if grep -qi 'already exists' <<<"$out"; then echo "$* : already there"; return 0; fi
  done
  echo "${out:-no leader}" >&2
  return 1
}

# retry SECONDS CMD...: runs CMD every second until it succeeds or SECONDS have passed.
retry() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then echo "gave up after ${deadline}s: $*" >&2; return 1; fi
    sleep 1
  done
}

# imap_ready HOST:PORT: the frontend sends an IMAP greeting.
imap_ready() {
  python3 - "$1" <<'PY'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
try:
    with socket.create_connection((host, int(port)), timeout=3) as s:
        s.settimeout(3)
        sys.exit(0 if s.recv(512).startswith(b"* OK") else 1)
except OSError:
    sys.exit(1)
PY
}

up() {
  local t0=$SECONDS
  certs
  compose up -d
  echo "--- waiting for the Raft leader ($((SECONDS - t0))s)"
  retry 120 leader >/dev/null
  echo "leader: $(leader)"
  echo "--- tenant example ($((SECONDS - t0))s), user demo@example.com"
  retry 60 admin tenant add example --domains example.com
  retry 60 admin user add demo@example.com --password demo
  echo "--- waiting for three voters ($((SECONDS - t0))s)"
  retry 120 all_voters
  echo "--- waiting for the frontends ($((SECONDS - t0))s)"
  local fe
  for fe in "${FRONTENDS[@]}"; do retry 120 imap_ready "$fe"; echo "IMAP answers on $fe"; done
  echo "--- cluster up in $((SECONDS - t0))s"
}

down() { compose down -v --remove-orphans; }

# kill_leader SIGKILLs the container of the current Raft leader.
kill_leader() {
  local id
  id=$(leader)
  echo "killing the leader $id (container $(compose ps -q "$id" | cut -c1-12))"
  docker kill "$(compose ps -q "$id")" >/dev/null
}

cluster_test() {
  local start=$SECONDS status=0
  trap 'echo "--- tearing down"; down' EXIT
  down >/dev/null 2>&1 || true
  up
  echo "--- LMTP delivery through each frontend's published port"
  python3 lmtp_check.py "${LMTP_CHECKS[@]}" || status=$?
  echo "--- IMAP sessions, leader kill, the same sessions again"
  [ "$status" -ne 0 ] || python3 imap_check.py --kill "$SELF kill-leader" "${FRONTENDS[@]}" || status=$?
  if [ "$status" -ne 0 ]; then
    echo "--- FAILED; logs follow" >&2
    compose logs --tail 50 >&2 || true
  else
    echo "--- status after the failover"
    retry 60 leader >/dev/null
    strata "$(running_meta | head -1)" cluster status --etcd etcd:2379
  fi
  echo "cluster-test took $((SECONDS - start))s (up, sessions, failover; without teardown)"
  return "$status"
}

case "${1:-}" in
  certs) certs ;;
  up) up ;;
  down) down ;;
  test) cluster_test ;;
  leader) leader ;;
  kill-leader) kill_leader ;;
  *) echo "usage: $0 certs|up|down|test|leader|kill-leader" >&2; exit 2 ;;
esac
