#!/usr/bin/env bash
# Runs the idle-connection scenario (bench/scenario.sh idle) inside a qemu guest, where one
# `strata serve` may hold more connections than the host's descriptor limit allows (issue
# 14: 100,000 IDLE connections on one server; a container without CAP_SYS_RESOURCE caps a
# process at its hard RLIMIT_NOFILE, 20,000 on the machine this was written on).
#
#   bench/vm/idle-vm.sh                          # RUNS="plain:10000 plain:100000"
#   RUNS="plain:10000 tls:10000" bench/vm/idle-vm.sh
#
# A manual scenario, not part of `make test` or CI. What it does:
#
#  1. installs qemu-system-x86 with apt-get when qemu-system-x86_64 is missing, and
#     downloads (apt-get download, no install) Debian's linux-image-*-amd64 package that
#     linux-image-amd64 depends on, extracting its vmlinuz with dpkg-deb -x into
#     $CACHE (default /tmp/strata-idle-vm); none of it is in the repository;
#  2. builds a static `strata` (CGO_ENABLED=0) and bench/vm/init, and packs them into an
#     initramfs (bench/vm/init pack: a newc cpio with /init and /strata);
#  3. boots the kernel with that initramfs under qemu (TCG, software emulation: no /dev/kvm
#     needed; -m $MEM -smp $SMP) with console=ttyS0. The guest's /init (bench/vm/init)
#     raises fs.nr_open and RLIMIT_NOFILE, widens the ephemeral port range, and for each run
#     of RUNS starts a fresh `strata serve` with its data on tmpfs and runs `strata bench
#     users` and `strata bench idle` with the flags of bench/scenario.sh idle (100 users,
#     --parallel 32, --settle $SETTLE, --hold 10s, past 25,000 connections from 127.0.0.1,
#     .2, ... 25,000 each), which measures the server's PSS from /proc/PID/smaps_rollup
#     before the first connection and SETTLE after the last entered IDLE; then powers off;
#  4. writes the console to $OUT/idle-vm.log and each run's JSON report to
#     $OUT/idle-vm-NAME.json, and prints a table.
#
# Knobs (environment): RUNS (MODE:CONNECTIONS, MODE plain or tls, in order, each on a fresh
# server), SETTLE (default 30s), MESSAGES (per INBOX first, default 0), USERS (default 100,
# as the scenario; each costs an argon2id hash at creation and one at its first LOGIN,
# seconds each under TCG), MEM (guest RAM,
# default 16G; qemu takes the host's memory only as the guest touches it), SMP (default 2),
# OUT (default /tmp/strata-bench), CACHE, GO (default go).
#
# TCG emulates every guest instruction: expect the guest to run 5 to 20 times slower than
# the host, and everything to be slower by the same factor for the client and the server
# alike. Memory per connection is what the figure is about, and it does not depend on
# speed; latencies and set-up times measured in the guest are not comparable with the host's.
set -euo pipefail

RUNS=${RUNS:-plain:10000 plain:100000}
SETTLE=${SETTLE:-30s}
MESSAGES=${MESSAGES:-0}
USERS=${USERS:-100}
MEM=${MEM:-16G}
SMP=${SMP:-2}
OUT=${OUT:-/tmp/strata-bench}
CACHE=${CACHE:-/tmp/strata-idle-vm}
GO=${GO:-go}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

mkdir -p "$OUT" "$CACHE"

if ! command -v qemu-system-x86_64 >/dev/null; then
	echo "installing qemu-system-x86 (apt-get)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-system-x86
fi

kernel=$(find "$CACHE/kernel" -name 'vmlinuz-*' 2>/dev/null | head -1 || true)
if [ -z "$kernel" ]; then
	pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ { print $2; exit }')
	[ -n "$pkg" ] || {
		echo "apt-cache: linux-image-amd64 depends on no linux-image package" >&2
		exit 1
	}
	echo "downloading $pkg (apt-get download) for its vmlinuz"
	(cd "$CACHE" && apt-get download "$pkg")
	dpkg-deb -x "$CACHE/$pkg"_*.deb "$CACHE/kernel"
	kernel=$(find "$CACHE/kernel" -name 'vmlinuz-*' | head -1)
fi

echo "building static strata and the guest's /init"
(cd "$ROOT" && CGO_ENABLED=0 "$GO" build -trimpath -o "$CACHE/strata" ./cmd/strata &&
	CGO_ENABLED=0 "$GO" build -trimpath -o "$CACHE/init" ./bench/vm/init)
"$CACHE/init" pack "$CACHE/initramfs.cpio" "$CACHE/strata"

log=$OUT/idle-vm.log
append="console=ttyS0 quiet panic=-1 idlevm.runs=${RUNS// /,} idlevm.settle=$SETTLE idlevm.messages=$MESSAGES idlevm.users=$USERS"
echo "host: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%H:%M:%S)"
echo "qemu: $(qemu-system-x86_64 --version | head -1), kernel $(basename "$kernel"), -m $MEM -smp $SMP, console in $log"
start=$SECONDS
# -no-reboot: the guest's power-off (or a panic, panic=-1) ends qemu.
qemu-system-x86_64 -accel tcg,thread=multi -cpu max -m "$MEM" -smp "$SMP" \
	-kernel "$kernel" -initrd "$CACHE/initramfs.cpio" -append "$append" \
	-display none -monitor none -serial stdio -no-reboot -nic none </dev/null | tee "$log"
echo "host: guest ran $((SECONDS - start)) s, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%H:%M:%S)"

# The reports: the lines between "==== idlevm json NAME" and "==== idlevm end".
awk -v out="$OUT" '
	{ sub(/\r$/, "") }
	/^==== idlevm json / { f = out "/idle-vm-" $4 ".json"; next }
	/^==== idlevm end/ { close(f); f = ""; next }
	f != "" { print > f }' "$log"
status=0
printf '%-22s %11s %7s %10s %12s %10s\n' run connections errors "PSS MiB" "KiB/conn" "setup s"
for r in $RUNS; do
	mode=${r%%:*} conns=${r#*:}
	name=strata-$conns
	[ "$mode" = tls ] && name=strata-tls-$conns
	f=$OUT/idle-vm-$name.json
	if [ ! -s "$f" ]; then
		echo "$name: no report (see $log)"
		status=1
		continue
	fi
	python3 - "$f" "$name" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
g = r["figures"]
print("%-22s %11d %7d %10.1f %12.1f %10.0f" % (sys.argv[2], g["connections_idling"], g["connections_with_errors"],
      g["server_pss_growth_mib"], g["pss_per_connection_kib"], g.get("setup_seconds", 0)))
EOF
done
exit "$status"
