#!/bin/sh
# APPEND throughput of `strata serve` with the text-search index on and off (issue 17:
# at most 15 % lower with it on): interleaved pairs on one binary (the order alternates
# from pair to pair), each run on a fresh data directory with USERS bench users, then
# `strata bench --profile append=1` (messages up to 64 KiB, clients logged in before the
# clock starts) for each client count of APPENDERS. Prints one line per step: mode, pair,
# clients, APPENDs/s, and the load average after it.
#
#   PAIRS=3 DURATION=20s APPENDERS="1 64" sh bench/searchindex_append.sh /tmp/siappend
set -eu
OUT=${1:-/tmp/strata-searchindex-append}
PAIRS=${PAIRS:-3}
USERS=${USERS:-16}
DURATION=${DURATION:-20s}
APPENDERS=${APPENDERS:-1 64}
IMAP_PORT=${IMAP_PORT:-24243}
GRPC_PORT=${GRPC_PORT:-24244}
rm -rf "$OUT"
mkdir -p "$OUT"
go build -o "$OUT/strata" ./cmd/strata
S="$OUT/strata"
b() { "$S" bench --user-pattern 'bench%d@example.com' --password bench --seed 1 "$@"; }

run() { # run MODE PAIR
	mode=$1
	dir="$OUT/$mode-$2"
	"$S" serve --data "$dir" --search-index=$([ "$mode" = on ] && echo true || echo false) \
		--imap-listen 127.0.0.1:$IMAP_PORT --grpc-listen 127.0.0.1:$GRPC_PORT --no-demo \
		--imaps-listen "" --lmtp-listen "" --managesieve-listen "" --log-level warn >"$dir.log" 2>&1 &
	pid=$!
	for _ in $(seq 300); do
		grep -q "Strata is ready" "$dir.log" && break
		sleep 0.1
	done
	b users --server 127.0.0.1:$GRPC_PORT --users "$USERS" >/dev/null
	for n in $APPENDERS; do
		b --addr 127.0.0.1:$IMAP_PORT --users "$USERS" --clients "$n" --duration "$DURATION" --profile append=1 \
			--max-size 65536 --login-first --json "$dir-$n.json" >"$dir-$n.out" 2>&1
		ops=$(sed -n 's/.*"ops_per_sec": *\([0-9.]*\).*/\1/p' "$dir-$n.json" | head -1)
		echo "$mode pair $2: $n clients: $ops APPENDs/s, load $(cut -d' ' -f1-3 /proc/loadavg)"
	done
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	rm -rf "$dir"
}

echo "load before: $(uptime)"
for p in $(seq 1 "$PAIRS"); do
	if [ $((p % 2)) -eq 1 ]; then run on "$p"; run off "$p"; else run off "$p"; run on "$p"; fi
done
echo "load after: $(uptime)"
