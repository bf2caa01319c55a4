#!/usr/bin/env bash
# Runs one `strata bench` scenario against servers it starts on 127.0.0.1 and stops after.
#
#   bench/scenario.sh mixed|bigmailbox|idle|append|compare
#
# Knobs (environment): STRATA (binary, default bin/strata), OUT (reports, default
# /tmp/strata-bench), SEED, DURATION, and per scenario USERS, MESSAGES, CLIENTS (mixed,
# compare), BIG and BIG_MAX_SIZE (bigmailbox), CONNS (idle). Every report is printed and
# written as JSON under OUT.
set -euo pipefail

STRATA=${STRATA:-bin/strata}
OUT=${OUT:-/tmp/strata-bench}
SEED=${SEED:-1}
DURATION=${DURATION:-30s}
PASSWORD=bench
PATTERN='bench%d@example.com'
IMAP_PORT=${IMAP_PORT:-31143}
GRPC_PORT=${GRPC_PORT:-31144}
DOVECOT_PORT=${DOVECOT_PORT:-31150}
HERE=$(cd "$(dirname "$0")" && pwd)

mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/strata-bench-run.XXXXXX)
# Dovecot's auth and mail processes (dovecot, nobody) read the passwd-file and homes in here.
chmod 0755 "$WORK"
STRATA_PID=
DOVECOT_DIR=

cleanup() {
	if [ -n "$STRATA_PID" ]; then
		kill "$STRATA_PID" 2>/dev/null || true
		wait "$STRATA_PID" 2>/dev/null || true
	fi
	if [ -n "$DOVECOT_DIR" ]; then
		"$HERE/dovecot.sh" stop "$DOVECOT_DIR" || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# start_strata: `strata serve` with a fresh data directory; waits for "Strata is ready".
start_strata() {
	"$STRATA" serve --data "$WORK/strata" --imap-listen "127.0.0.1:$IMAP_PORT" --grpc-listen "127.0.0.1:$GRPC_PORT" \
		--imaps-listen "" --no-demo --log-level warn >"$WORK/strata.log" 2>&1 &
	STRATA_PID=$!
	for _ in $(seq 300); do
		if grep -q "Strata is ready" "$WORK/strata.log"; then
			return 0
		fi
		if ! kill -0 "$STRATA_PID" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	echo "strata serve did not become ready:" >&2
	cat "$WORK/strata.log" >&2
	exit 1
}

start_dovecot() {
	local users=$1
	DOVECOT_DIR=$WORK/dovecot
	DOVECOT_PID=$(STRATA=$STRATA "$HERE/dovecot.sh" start "$DOVECOT_DIR" "$DOVECOT_PORT" "$users" "$PATTERN" "$PASSWORD")
}

# b runs `strata bench` with the common flags.
b() {
	"$STRATA" bench --user-pattern "$PATTERN" --password "$PASSWORD" --seed "$SEED" "$@"
}

machine() {
	echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -sr)"
}

scenario_mixed() {
	local users=${USERS:-16} messages=${MESSAGES:-200} clients=${CLIENTS:-16}
	start_strata
	b users --server "127.0.0.1:$GRPC_PORT" --users "$users"
	b populate --addr "127.0.0.1:$IMAP_PORT" --users "$users" --messages "$messages" --label strata --json "$OUT/populate-strata.json"
	b --addr "127.0.0.1:$IMAP_PORT" --users "$users" --clients "$clients" --duration "$DURATION" --label strata --json "$OUT/mixed-strata.json"
}

scenario_bigmailbox() {
	local big=${BIG:-1000000}
	start_strata
	b users --server "127.0.0.1:$GRPC_PORT" --users 1
	b populate --addr "127.0.0.1:$IMAP_PORT" --users 1 --messages "$big" --conns 16 --max-size "${BIG_MAX_SIZE:-16384}" \
		--label strata --json "$OUT/bigmailbox-populate-strata.json" 2> >(awk 'NR % 30 == 0' >&2)
	b bigmailbox --addr "127.0.0.1:$IMAP_PORT" --users 1 --repeat 3 --timeout 10m --label strata --json "$OUT/bigmailbox-strata.json"
}

scenario_idle() {
	local conns=${CONNS:-10000}
	# Each connection is a descriptor in the server and in the client.
	ulimit -n "$(ulimit -Hn)"
	start_strata
	b users --server "127.0.0.1:$GRPC_PORT" --users 100
	b idle --addr "127.0.0.1:$IMAP_PORT" --users 100 --connections "$conns" --parallel 32 --hold 10s --pid "$STRATA_PID" \
		--label strata --json "$OUT/idle-strata.json" 2> >(awk 'NR % 10 == 0' >&2)
}

scenario_append() {
	start_strata
	b users --server "127.0.0.1:$GRPC_PORT" --users 64
	for clients in 1 64; do
		b --addr "127.0.0.1:$IMAP_PORT" --users 64 --clients "$clients" --duration "$DURATION" --profile append=1 \
			--label "strata-$clients" --json "$OUT/append-$clients-strata.json"
	done
}

# scenario_compare runs the mixed workload and 64-client APPEND against Strata and Dovecot
# with the same users and the same populated mail, one server after the other.
scenario_compare() {
	local users=${USERS:-16} messages=${MESSAGES:-200} clients=${CLIENTS:-16}
	start_strata
	start_dovecot "$users"
	b users --server "127.0.0.1:$GRPC_PORT" --users "$users"
	for server in strata:$IMAP_PORT dovecot:$DOVECOT_PORT; do
		local name=${server%%:*} port=${server##*:}
		b populate --addr "127.0.0.1:$port" --users "$users" --messages "$messages" --label "$name" --json "$OUT/compare-populate-$name.json"
	done
	for server in strata:$IMAP_PORT dovecot:$DOVECOT_PORT; do
		local name=${server%%:*} port=${server##*:}
		b --addr "127.0.0.1:$port" --users "$users" --clients "$clients" --duration "$DURATION" --label "$name" --json "$OUT/compare-mixed-$name.json"
		b --addr "127.0.0.1:$port" --users "$users" --clients 64 --duration "$DURATION" --profile append=1 --max-size 65536 \
			--label "$name" --json "$OUT/compare-append-$name.json"
	done
	echo
	machine
	"$STRATA" bench compare "$OUT/compare-populate-strata.json" "$OUT/compare-populate-dovecot.json"
	echo
	"$STRATA" bench compare "$OUT/compare-mixed-strata.json" "$OUT/compare-mixed-dovecot.json"
	echo
	"$STRATA" bench compare "$OUT/compare-append-strata.json" "$OUT/compare-append-dovecot.json"
}

case ${1:-} in
mixed | bigmailbox | idle | append | compare)
	machine
	"scenario_$1"
	;;
*)
	echo "usage: $0 mixed|bigmailbox|idle|append|compare" >&2
	exit 2
	;;
esac
