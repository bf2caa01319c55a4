#!/bin/sh
# CPU cost of the text-search index per APPEND (issue 17): `strata serve` with the index
# on and off, in interleaved pairs (the order alternates from pair to pair), each on a
# fresh data directory, filled by `strata bench populate` (a separate process) with the
# same corpus. The figure is the serve process's CPU time (user + system, from
# /proc/PID/stat) from just before the first APPEND until the process is idle again, so
# it includes the indexer catching up after the APPENDs; divided by the messages it gives
# CPU-milliseconds per APPEND, which the machine's load does not change the way it changes
# throughput. The whole-life CPU of each serve process (startup and shutdown, which
# flushes the memtables, included) is printed too.
#
#   PAIRS=3 MESSAGES=2000 sh bench/searchindex_cpu.sh /tmp/sicpu
#
# PROFILE=/tmp/p writes a CPU profile of each serve process to /tmp/p-MODE-PAIR.prof.
#
# Output: one line per run: mode, messages, populate wall seconds, appends/s, CPU seconds
# of the APPENDs and catch-up, CPU-ms per APPEND, lifetime CPU seconds.
set -eu
OUT=${1:-/tmp/strata-searchindex-cpu}
PAIRS=${PAIRS:-3}
MESSAGES=${MESSAGES:-2000}
MAXSIZE=${MAXSIZE:-65536}
CONNS=${CONNS:-2}
WINDOW=${WINDOW:-8}
IMAP_PORT=${IMAP_PORT:-24143}
GRPC_PORT=${GRPC_PORT:-24144}
EXTRA=${EXTRA:-}
rm -rf "$OUT"
mkdir -p "$OUT"
go build -o "$OUT/strata" ./cmd/strata
S="$OUT/strata"
TCK=$(getconf CLK_TCK)

# ticks PID: user + system CPU of PID in clock ticks (proc(5): fields 14 and 15).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# wait_idle PID: until PID used at most 2 ticks in each of 3 consecutive seconds.
wait_idle() {
	quiet=0
	prev=$(ticks "$1")
	while [ $quiet -lt 3 ]; do
		sleep 1
		now=$(ticks "$1")
		if [ $((now - prev)) -le 2 ]; then quiet=$((quiet + 1)); else quiet=0; fi
		prev=$now
	done
}

run() { # run MODE PAIR
	mode=$1
	dir="$OUT/$mode-$2"
	flag=--search-index=false
	[ "$mode" = on ] && flag=--search-index=true
	[ -n "${PROFILE:-}" ] && flag="$flag --cpu-profile $PROFILE-$mode-$2.prof"
	/usr/bin/time -f "%U %S" -o "$dir.time" "$S" serve --data "$dir" $flag $EXTRA \
		--imap-listen 127.0.0.1:$IMAP_PORT --grpc-listen 127.0.0.1:$GRPC_PORT \
		--imaps-listen "" --lmtp-listen "" --managesieve-listen "" --blob-gc-interval -1s --log-level warn \
		>"$dir.log" 2>&1 &
	sleep 3
	pid=$(pgrep -P $! -x strata || true)
	[ -n "$pid" ] || { cat "$dir.log"; exit 1; }
	wait_idle "$pid"
	t0=$(ticks "$pid")
	w0=$(date +%s.%N)
	"$S" bench --addr 127.0.0.1:$IMAP_PORT --max-size "$MAXSIZE" --seed 1 populate \
		--messages "$MESSAGES" --conns "$CONNS" --window "$WINDOW" >"$dir.populate" 2>/dev/null
	w1=$(date +%s.%N)
	wait_idle "$pid"
	t1=$(ticks "$pid")
	kill "$pid"
	wait 2>/dev/null || true
	awk -v mode="$mode" -v n="$MESSAGES" -v w0="$w0" -v w1="$w1" -v t="$((t1 - t0))" -v tck="$TCK" -v life="$(cat "$dir.time" | tail -1)" \
		'BEGIN { split(life, l, " "); printf "%s %d msgs: populate %.1f s (%.1f appends/s), CPU %.2f s = %.2f ms/APPEND, lifetime CPU %.2f s\n",
			mode, n, w1 - w0, n / (w1 - w0), t / tck, 1000 * t / tck / n, l[1] + l[2] }'
	rm -rf "$dir"
}

echo "load before: $(uptime)"
for p in $(seq 1 "$PAIRS"); do
	if [ $((p % 2)) -eq 1 ]; then run on "$p"; run off "$p"; else run off "$p"; run on "$p"; fi
	echo "load: $(uptime)"
done
