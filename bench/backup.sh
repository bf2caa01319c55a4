#!/bin/sh
# Backup and restore of a `strata serve` holding USERS x MESSAGES messages (docs/benchmarks.md,
# "Backup and restore"): fill it with `strata bench populate`, back it up to a directory
# while another populate run APPENDs (its latencies against a run without the backup show
# how long writes stall), back it up again (incremental: no new bodies), and restore it
# into a new data directory. Usage: bench/backup.sh [OUT]; USERS, MESSAGES, MAXSIZE,
# IMAP_PORT, GRPC_PORT from the environment.
set -eu
OUT=${1:-/tmp/strata-bench-backup}
USERS=${USERS:-100}
MESSAGES=${MESSAGES:-1000}
MAXSIZE=${MAXSIZE:-4096}
IMAP_PORT=${IMAP_PORT:-37143}
GRPC_PORT=${GRPC_PORT:-37144}
rm -rf "$OUT"
mkdir -p "$OUT"
go build -o "$OUT/strata" ./cmd/strata
S="$OUT/strata"
"$S" serve --data "$OUT/data" --imap-listen 127.0.0.1:$IMAP_PORT --grpc-listen 127.0.0.1:$GRPC_PORT \
	--imaps-listen "" --lmtp-listen "" --managesieve-listen "" --blob-gc-interval -1s --log-level warn \
	>"$OUT/serve.log" 2>&1 &
SERVE=$!
trap 'kill $SERVE 2>/dev/null' EXIT
sleep 3
kill -0 $SERVE || { cat "$OUT/serve.log"; exit 1; }
B="$S bench --addr 127.0.0.1:$IMAP_PORT --password bench --max-size $MAXSIZE"
$B --user-pattern 'bk%d@example.com' --users "$USERS" users --server 127.0.0.1:$GRPC_PORT
$B --user-pattern 'load%d@example.com' --users 4 users --server 127.0.0.1:$GRPC_PORT
start=$(date +%s)
$B --user-pattern 'bk%d@example.com' --users "$USERS" --seed 7 populate --messages "$MESSAGES" --conns 8 --window 32 >"$OUT/populate.txt"
echo "populate: $(( $(date +%s) - start )) s"
du -sb "$OUT/data/fsm" "$OUT/data/blobs"

echo "== APPEND latency without a backup"
$B --user-pattern 'load%d@example.com' --users 4 --seed 8 populate --messages ${LOADMSGS:-2500} --conns 4 --window 1 >"$OUT/load-alone.txt"
cat "$OUT/load-alone.txt"

echo "== backup 1 (full), with the same APPEND load beside it"
$B --user-pattern 'load%d@example.com' --users 4 --seed 9 populate --messages ${LOADMSGS:-2500} --conns 4 --window 1 >"$OUT/load-backup.txt" &
LOAD=$!
sleep 1
/usr/bin/time -f "backup 1: %e s, %M KiB max RSS" "$S" backup --to "$OUT/backups" --server 127.0.0.1:$GRPC_PORT --blob fs --blob-dir "$OUT/data/blobs"
wait $LOAD
cat "$OUT/load-backup.txt"
echo "== backup 2 (incremental)"
/usr/bin/time -f "backup 2: %e s, %M KiB max RSS" "$S" backup --to "$OUT/backups" --server 127.0.0.1:$GRPC_PORT --blob fs --blob-dir "$OUT/data/blobs"
du -sb "$OUT/backups"/2* "$OUT/backups/blobs"
kill $SERVE
wait $SERVE 2>/dev/null || true
echo "== restore"
/usr/bin/time -f "restore: %e s, %M KiB max RSS" "$S" restore --from "$OUT/backups" --data "$OUT/restored"
du -sb "$OUT/restored/fsm" "$OUT/restored/raft" "$OUT/restored/blobs"
