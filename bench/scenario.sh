#!/usr/bin/env bash
# Runs one `strata bench` scenario against servers it starts on 127.0.0.1 and stops after.
#
#   bench/scenario.sh mixed|bigmailbox|idle|append|compare|compare-append|compare-bigmailbox|populate-bigmailbox|populate-bigmailbox-fast|bigmailbox-rounds|compare-idle|resync|compare-resync|lmtp|compare-lmtp|compare-login|cycle|compare-cycle|cluster-cycle
#
# compare, compare-append, compare-bigmailbox, compare-idle, compare-resync and compare-cycle run the same
# scenario against `strata serve` and Dovecot (bench/dovecot.sh) and print the ratios;
# cluster-cycle runs the cycle against a 3-node cluster with S3 on this machine (etcd,
# versitygw, three `strata metadata`, one `strata frontend`) and Dovecot.
#
# Knobs (environment): STRATA (binary, default bin/strata), STRATA_SERVE (the binary that
# runs `strata serve`, default STRATA: an older build for a before/after pair), OUT (reports, default
# /tmp/strata-bench), WORKDIR (where the servers keep their data, default /tmp; a million
# messages take ~9 GB per server), SEED, DURATION, and per scenario USERS, MESSAGES, CLIENTS
# (mixed, compare, cycle, compare-cycle, cluster-cycle), APPENDERS (compare-append: the
# client counts of its APPEND steps, default "1 64"), RATE and ARRIVALS (compare: the
# mixed step open-loop at each rate of RATE, in operations per second, with poisson or
# uniform arrivals), BIG, BIG_MAX_SIZE and ROUNDS (bigmailbox, compare-resync), CHANGES
# (compare-resync), STEPS (bigmailbox rounds: `strata bench bigmailbox --steps`), BIG_DIR
# (populate-bigmailbox and populate-bigmailbox-fast keep their two servers there,
# bigmailbox-rounds runs the rounds on them), BIG_CHUNK (populate-bigmailbox and
# populate-bigmailbox-fast: messages per turn), NO_SIZES (bigmailbox-rounds:
# skip the disk use, du of a million files takes minutes; ONLY=strata or dovecot: one
# server's rounds, the other's report in OUT kept for the comparison), CONNS, SETTLE, TLS (idle: over IMAPS when set) and MESSAGES (idle: per
# INBOX),
# DOVECOT_HIBERNATE (compare-idle: also measure Dovecot with imap_hibernate_timeout set to
# this), and for lmtp and compare-lmtp USERS (at least 10), LMTP_MAX_SIZE, SIEVE (a Sieve
# script every user gets as the active one, in both servers), LMTP_CONNS and LMTP_RCPTS (the
# connection and recipient counts to run, default "1 16" and "1 10"), CPU_PROFILE (a file: the CPU
# profile of `strata serve` over its LMTP runs; for compare-cycle over its cycle run, for
# cluster-cycle FILE.frontend and FILE.meta1..3), for compare-login USERS and CLIENTS and
# STRATA_FLAGS (extra `strata serve` flags, e.g. "--auth-cache-ttl 0" to turn its
# authentication cache off), for cluster-cycle ETCD (an etcd server binary, default
# bin/etcd, built from deploy/etcd when missing), VERSITYGW (default the one on PATH or in
# ~/go/bin) and CLUSTER_PORT (first of 9 ports), and for every scenario CPU_SHARES (below).
# Every report is printed and written as JSON under OUT.
set -euo pipefail

STRATA=${STRATA:-bin/strata}
STRATA_SERVE=${STRATA_SERVE:-$STRATA}
OUT=${OUT:-/tmp/strata-bench}
SEED=${SEED:-1}
DURATION=${DURATION:-30s}
PASSWORD=bench
PATTERN='bench%d@example.com'
IMAP_PORT=${IMAP_PORT:-31143}
GRPC_PORT=${GRPC_PORT:-31144}
IMAPS_PORT=${IMAPS_PORT:-31145}
DOVECOT_PORT=${DOVECOT_PORT:-31150}
STRATA_LMTP_PORT=${STRATA_LMTP_PORT:-31124}
DOVECOT_LMTP_PORT=${DOVECOT_LMTP_PORT:-31151}
HERE=$(cd "$(dirname "$0")" && pwd)

mkdir -p "$OUT"
WORK=$(mktemp -d "${WORKDIR:-/tmp}/strata-bench-run.XXXXXX")
# Dovecot's auth and mail processes (dovecot, nobody) read the passwd-file and homes in here.
chmod 0755 "$WORK"
STRATA_PID=
DOVECOT_DIR=
INOTIFY_INSTANCES=
CLUSTER_PIDS=()
CGROUP=

# shield: with CPU_SHARES set (root, a cgroup v1 cpu controller or cgroup v2), this script
# and everything it starts (both servers, the load generator, Dovecot's forked processes)
# run in a cgroup of that CPU weight, so that other work on a shared machine takes a smaller
# and steadier part of the cores: both servers of a comparison run under the same weight,
# one after the other. CPU_SHARES is cpu.shares (v1: 2 to 262144, a task outside is 1024)
# or, on cgroup v2, cpu.weight (1 to 10000, default 100).
shield() {
	[ -n "${CPU_SHARES:-}" ] || return 0
	if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
		CGROUP=/sys/fs/cgroup/strata-bench-$$
		mkdir "$CGROUP"
		echo "$CPU_SHARES" >"$CGROUP/cpu.weight"
	elif [ -d /sys/fs/cgroup/cpu ]; then
		CGROUP=/sys/fs/cgroup/cpu/strata-bench-$$
		mkdir "$CGROUP"
		echo "$CPU_SHARES" >"$CGROUP/cpu.shares"
	else
		echo "CPU_SHARES: no cgroup cpu controller here" >&2
		exit 1
	fi
	echo "$BASHPID" >"$CGROUP/cgroup.procs"
	echo "running in $CGROUP with CPU weight $CPU_SHARES"
}

unshield() {
	[ -n "$CGROUP" ] || return 0
	echo "$BASHPID" >"$(dirname "$CGROUP")/cgroup.procs" || true
	rmdir "$CGROUP" 2>/dev/null || true
}
FRONTEND_PID=

cleanup() {
	stop_strata
	stop_cluster
	stop_dovecot
	if [ -n "$INOTIFY_INSTANCES" ]; then
		echo "$INOTIFY_INSTANCES" >/proc/sys/fs/inotify/max_user_instances || true
	fi
	rm -rf "$WORK"
	unshield
}
trap cleanup EXIT
shield

stop_strata() {
	if [ -n "$STRATA_PID" ]; then
		kill "$STRATA_PID" 2>/dev/null || true
		wait "$STRATA_PID" 2>/dev/null || true
		STRATA_PID=
	fi
}

stop_dovecot() {
	if [ -n "$DOVECOT_DIR" ]; then
		"$HERE/dovecot.sh" stop "$DOVECOT_DIR" || true
		# The master exits after its children; wait so the next server starts on a quiet machine.
		for _ in $(seq 100); do
			pgrep -f "$DOVECOT_DIR/dovecot.conf" >/dev/null || break
			sleep 0.2
		done
		DOVECOT_DIR=
	fi
}

# start_strata [flags]: `strata serve` with a fresh data directory, $STRATA_FLAGS and any
# extra flags (a later --lmtp-listen turns LMTP on); waits for "Strata is ready".
start_strata() {
	# Emptied here, not by the redirection below: that runs in the background job, and a
	# restart could find the last run's "Strata is ready" before it does.
	: >"$WORK/strata.log"
	# shellcheck disable=SC2086 # STRATA_FLAGS is a list of flags
	"$STRATA_SERVE" serve --data "${STRATA_DATA:-$WORK/strata}" --imap-listen "127.0.0.1:$IMAP_PORT" --grpc-listen "127.0.0.1:$GRPC_PORT" \
		--imaps-listen "" --managesieve-listen "" --lmtp-listen "" --no-demo --log-level warn ${STRATA_FLAGS:-} "$@" >"$WORK/strata.log" 2>&1 &
	STRATA_PID=$!
	# STRATA_READY_TIMEOUT seconds (default 30): a kept big data directory opens slower.
	local deadline=$((SECONDS + ${STRATA_READY_TIMEOUT:-30}))
	while [ "$SECONDS" -lt "$deadline" ]; do
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

# start_dovecot USERS [NAME [HIBERNATE]]: Dovecot with its configuration and mail under
# $WORK/NAME, with imap_hibernate_timeout = HIBERNATE when given.
start_dovecot() {
	local users=$1
	DOVECOT_DIR=${DOVECOT_BASE:-$WORK}/${2:-dovecot}
	DOVECOT_PID=$(STRATA=$STRATA HIBERNATE=${3:-} AUTH_CACHE_VERIFY_WITH_WORKER=${AUTH_CACHE_VERIFY_WITH_WORKER:-} LMTP_PORT=${LMTP_PORT:-} MAIL_LOCATION=${MAIL_LOCATION:-} SIEVE=${SIEVE:-} "$HERE/dovecot.sh" start "$DOVECOT_DIR" "$DOVECOT_PORT" "$users" "$PATTERN" "$PASSWORD")
}

# b runs `strata bench` with the common flags.
b() {
	"$STRATA" bench --user-pattern "$PATTERN" --password "$PASSWORD" --seed "$SEED" "$@"
}

machine() {
	echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -sr)"
}

# load WHAT: prints the time and the load average, to tell a quiet run from a shared one.
load() {
	echo "load $1: $(date -u +%H:%M:%S) $(cut -d' ' -f1-3 /proc/loadavg)"
}

scenario_mixed() {
	local users=${USERS:-16} messages=${MESSAGES:-200} clients=${CLIENTS:-16}
	start_strata
	b users --server "127.0.0.1:$GRPC_PORT" --users "$users"
	b populate --addr "127.0.0.1:$IMAP_PORT" --users "$users" --messages "$messages" --label strata --json "$OUT/populate-strata.json"
	b --addr "127.0.0.1:$IMAP_PORT" --users "$users" --clients "$clients" --duration "$DURATION" --label strata --json "$OUT/mixed-strata.json"
}

# populate_big NAME PORT DIR: fills the one user's INBOX with $BIG messages, 16 connections of
# 4 pipelined MULTIAPPENDs of 50 messages (RFC 3502, LITERAL+), then prints the disk use.
populate_big() {
	local name=$1 port=$2 dir=$3
	load "before populating $name"
	b populate --addr "127.0.0.1:$port" --users 1 --messages "${BIG:-1000000}" --conns 16 --window 4 --batch 50 \
		--max-size "${BIG_MAX_SIZE:-16384}" --timeout 10m --label "$name" --json "$OUT/bigmailbox-populate-$name${PART:+-$PART}.json" \
		2> >(awk 'NR % 60 == 0 { print; fflush() }' >&2)
	load "after populating $name"
	echo "disk used by $name: $(du -sm "$dir" | cut -f1) MiB"
}

# run_big NAME PORT: ROUNDS rounds of the big-mailbox commands.
run_big() {
	local name=$1 port=$2 status=0
	load "before bigmailbox on $name"
	b bigmailbox --addr "127.0.0.1:$port" --users 1 --repeat "${ROUNDS:-5}" --steps "${STEPS:-all}" --timeout 30m --label "$name" \
		--json "$OUT/bigmailbox-$name.json" || status=$?
	load "after bigmailbox on $name"
	return "$status"
}

scenario_bigmailbox() {
	start_strata
	b users --server "127.0.0.1:$GRPC_PORT" --users 1
	populate_big strata "$IMAP_PORT" "$WORK/strata"
	run_big strata "$IMAP_PORT"
	echo "strata serve RSS: $(($(ps -o rss= -p "$STRATA_PID") / 1024)) MiB"
}

# scenario_compare_bigmailbox fills one INBOX with the same $BIG messages in Strata and in
# Dovecot, one server after the other, then runs the big-mailbox commands on each. A server
# that fails them does not stop the other's run; the scenario fails at the end.
scenario_compare_bigmailbox() {
	local status=0
	start_strata
	b users --server "127.0.0.1:$GRPC_PORT" --users 1
	populate_big strata "$IMAP_PORT" "$WORK/strata"
	start_dovecot 1
	populate_big dovecot "$DOVECOT_PORT" "$DOVECOT_DIR/home"
	run_big strata "$IMAP_PORT" || status=1
	echo "strata serve RSS: $(($(ps -o rss= -p "$STRATA_PID") / 1024)) MiB"
	run_big dovecot "$DOVECOT_PORT" || status=1
	echo
	machine
	"$STRATA" bench compare "$OUT/bigmailbox-populate-strata.json" "$OUT/bigmailbox-populate-dovecot.json"
	echo
	"$STRATA" bench compare "$OUT/bigmailbox-strata.json" "$OUT/bigmailbox-dovecot.json"
	return "$status"
}

# open_big_dir DIR LOCATION TURN: the start of populate-bigmailbox (LOCATION empty: Dovecot's
# default mail location, filled over IMAP) and populate-bigmailbox-fast (LOCATION
# "maildir:~/Maildir"). A DIR that holds a server is grown on: it must have been filled
# with the same Dovecot mail location (DIR/dovecot-mail-location, none for the default)
# and hold a whole number of TURN-message turns (DIR/messages); `strata serve` opens it
# with the flags it was filled with (DIR/strata-flags: a data directory filled with the
# search index on must be served with it on). A new DIR records $STRATA_FLAGS and
# LOCATION, and gets the bench user. Either way `strata serve` runs on DIR/strata
# afterwards (STRATA_READY_TIMEOUT seconds to open, default 600), DIR/stop is removed,
# and BIG_DONE is the number of messages both servers hold.
open_big_dir() {
	local dir=$1 location=$2 turn=$3 kept
	rm -f "$dir/stop"
	if [ -e "$dir/strata" ] || [ -e "$dir/dovecot" ]; then
		kept=$(cat "$dir/dovecot-mail-location" 2>/dev/null || true)
		if [ "$kept" != "$location" ]; then
			echo "$dir was filled with Dovecot's mail location '${kept:-default}', not '${location:-default}': grow it with the populate that filled it" >&2
			exit 1
		fi
		BIG_DONE=$(cat "$dir/messages" 2>/dev/null || echo -1)
		if [ "$BIG_DONE" -lt 0 ] || [ $((BIG_DONE % turn)) -ne 0 ] || ! [ -d "$dir/strata" ] || ! [ -d "$dir/dovecot" ]; then
			echo "$dir holds a server but no whole number of $turn-message turns in $dir/messages; remove it" >&2
			exit 1
		fi
		echo "$dir holds $BIG_DONE messages; adding up to ${BIG:-1000000}"
		STRATA_FLAGS=$(cat "$dir/strata-flags") STRATA_READY_TIMEOUT=${STRATA_READY_TIMEOUT:-600} STRATA_DATA=$dir/strata start_strata
		return
	fi
	mkdir -p "$dir"
	chmod 0755 "$dir"
	echo "${STRATA_FLAGS:-}" >"$dir/strata-flags"
	if [ -n "$location" ]; then
		echo "$location" >"$dir/dovecot-mail-location"
	fi
	echo 0 >"$dir/messages"
	BIG_DONE=0
	STRATA_READY_TIMEOUT=${STRATA_READY_TIMEOUT:-600} STRATA_DATA=$dir/strata start_strata
	b users --server "127.0.0.1:$GRPC_PORT" --users 1
}

# scenario_populate_bigmailbox fills $BIG_DIR/strata (a `strata serve` data directory,
# started with $STRATA_FLAGS, e.g. "--search-index") and $BIG_DIR/dovecot (a bench/dovecot.sh
# directory) with the same $BIG messages and keeps both for bigmailbox-rounds. The flags are
# kept in $BIG_DIR/strata-flags (a data directory filled with the search index on must be
# served with it on). With BIG_CHUNK, the servers take turns: BIG_CHUNK messages (corpus
# seed SEED+k for chunk k) into Strata, then the same into Dovecot, and so on, with
# $BIG_DIR/messages updated after each pair, so both always hold the same messages; creating
# $BIG_DIR/stop ends the populate after the current pair (a loaded machine, a deadline), and
# running it again with the same BIG_CHUNK grows the kept pair on up to $BIG.
scenario_populate_bigmailbox() {
	local dir=${BIG_DIR:?BIG_DIR: the directory to keep the populated servers in} big=${BIG:-1000000} chunk k done n
	chunk=${BIG_CHUNK:-$big}
	# A kept pair grows on: chunk k = done/BIG_CHUNK next.
	open_big_dir "$dir" "" "$chunk"
	done=$BIG_DONE
	k=$((done / chunk))
	DOVECOT_BASE=$dir start_dovecot 1
	while [ "$done" -lt "$big" ] && ! [ -e "$dir/stop" ]; do
		n=$((big - done < chunk ? big - done : chunk))
		BIG=$n SEED=$((SEED + k)) PART=$k populate_big strata "$IMAP_PORT" "$dir/strata"
		BIG=$n SEED=$((SEED + k)) PART=$k populate_big dovecot "$DOVECOT_PORT" "$dir/dovecot/home"
		done=$((done + n))
		k=$((k + 1))
		echo "$done" >"$dir/messages"
		echo "populated: $done messages in each server ($(date -u +%H:%M:%S))"
	done
	stop_strata
	stop_dovecot
	echo "$done messages kept in $dir; rounds again: BIG_DIR=$dir [STRATA_SERVE=...] bench/scenario.sh bigmailbox-rounds"
}

# timed WHAT CMD...: runs CMD and prints how long it took, with the load average.
timed() {
	local what=$1 s
	shift
	s=$(date +%s.%N)
	"$@"
	echo "$what: $(awk -v s="$s" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s (end $(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))"
}

# scenario_populate_bigmailbox_fast fills $BIG_DIR as populate-bigmailbox does, for the same
# bigmailbox-rounds, without a million IMAP APPENDs per server: the corpus that `strata bench
# populate` would append to the first user (SEED, BIG_MAX_SIZE) is written as Maildir files
# ($BIG_DIR/maildir, `strata bench maildir`: LF line endings, flags in the names, internal
# date = 2023-11-14 22:13:20 UTC + i seconds in the modification time), and in turns of
# BIG_CHUNK messages it is
#   - imported into Strata with `strata import maildir` (frontend/importer: the ingest path
#     of the frontends, bodies into the blob store, then metadata with envelope, structure
#     and sort keys; with STRATA_FLAGS=--search-index the index follows the change feed),
#   - hard-linked into the user's Maildir in Dovecot (MAIL_LOCATION maildir:~/Maildir,
#     Dovecot's own format: the files are served as they are), whose index doveadm then
#     builds by syncing the mailbox, as the first SELECT would (uidlist, dovecot.index),
# each step timed. $BIG_DIR/messages counts the messages both servers hold; `touch
# $BIG_DIR/stop` ends it after the current turn; run again with the same BIG_CHUNK and a
# larger BIG, it grows the kept pair on. Keep the ports of the first run.
scenario_populate_bigmailbox_fast() {
	local dir=${BIG_DIR:?BIG_DIR: the directory to keep the populated servers in} big=${BIG:-1000000} chunk done written n user maildir first
	chunk=${BIG_CHUNK:-100000}
	first=1700000000 # `strata bench maildir`: message i is received at this Unix time + i
	user=$(printf "$PATTERN" 1)
	maildir=$dir/dovecot/home/$user/Maildir
	open_big_dir "$dir" "maildir:~/Maildir" 1
	done=$BIG_DONE
	MAIL_LOCATION='maildir:~/Maildir' DOVECOT_BASE=$dir start_dovecot 1
	mkdir -p "$maildir/cur" "$maildir/new" "$maildir/tmp"
	chown nobody:nogroup "$dir/dovecot/home/$user" "$maildir" "$maildir/cur" "$maildir/new" "$maildir/tmp"
	written=$(cat "$dir/maildir-messages" 2>/dev/null || echo 0)
	while [ "$done" -lt "$big" ] && ! [ -e "$dir/stop" ]; do
		n=$((big - done < chunk ? big - done : chunk))
		if [ "$written" -lt $((done + n)) ]; then
			load "before writing the corpus as a maildir"
			b maildir "$dir/maildir" --first "$written" --messages $((done + n - written)) --max-size "${BIG_MAX_SIZE:-16384}" \
				--uid 65534 --gid 65534 2> >(awk 'NR % 6 == 0 { print; fflush() }' >&2)
			written=$((done + n))
			echo "$written" >"$dir/maildir-messages"
		fi
		# This turn's files, by the received time that starts their names, as links in a
		# Maildir of their own for `strata import` (which reads a whole Maildir).
		rm -rf "$dir/import"
		mkdir -p "$dir/import/cur" "$dir/import/new" "$dir/import/tmp"
		find "$dir/maildir/cur" -type f -printf '%f\n' | awk -F. -v a=$((first + done)) -v b=$((first + done + n)) '$1 >= a && $1 < b' >"$dir/import/names"
		if [ "$(wc -l <"$dir/import/names")" -ne "$n" ]; then
			echo "$dir/maildir/cur does not hold messages $done to $((done + n - 1)); remove $dir/maildir-messages to write them again" >&2
			exit 1
		fi
		(cd "$dir/maildir/cur" && xargs -d '\n' cp -l -t "$dir/import/cur" <"$dir/import/names")
		load "before importing $n into strata"
		timed "strata import of $n messages" "$STRATA" import maildir "$dir/import" --mailbox INBOX --to "$user" \
			--server "127.0.0.1:$GRPC_PORT" --blob fs --blob-dir "$dir/strata/blobs" 2>/dev/null
		(cd "$dir/maildir/cur" && xargs -d '\n' cp -l -t "$maildir/cur" <"$dir/import/names")
		timed "dovecot index of $n new messages (doveadm mailbox status, a sync)" \
			doveadm -c "$DOVECOT_DIR/dovecot.conf" mailbox status -u "$user" messages INBOX
		rm -rf "$dir/import"
		done=$((done + n))
		echo "$done" >"$dir/messages"
		echo "populated: $done messages in each server ($(date -u +%H:%M:%S))"
	done
	# The search index follows the import at a low duty cycle and catches up when it
	# pauses; rounds started before it has would time searches that scan the rest. It has
	# caught up when its directory stops growing for a minute (no lag figure to read).
	# On unless the flags turn it off (strata serve's default since idxfold22).
	if ! grep -q -- --search-index=false "$dir/strata-flags" && [ -d "$dir/strata/searchindex" ]; then
		local last=-1 now
		while now=$(du -sk "$dir/strata/searchindex" | cut -f1) && [ "$now" != "$last" ]; do
			last=$now
			sleep 60
		done
		load "search index settled at $now KiB"
	fi
	stop_strata
	stop_dovecot
	echo "$done messages kept in $dir; rounds: BIG_DIR=$dir [STRATA_SERVE=...] bench/scenario.sh bigmailbox-rounds"
}

# sizes DIR: disk use of the servers kept in DIR, and of their indexes, in all and per message
# ($DIR/messages): Strata's data directory and its search index (searchindex/), Dovecot's
# homes and its index files (dovecot.index, .log, .cache: flags, UIDs and cached fields).
sizes() {
	local dir=$1 n
	n=$(cat "$dir/messages")
	per() { awk -v k="$2" -v n="$n" -v what="$1" 'BEGIN { printf "%s: %.0f MiB, %.2f KiB per message (%d messages)\n", what, k / 1024, k / n, n }'; }
	per "disk used by strata" "$(du -sk "$dir/strata" | cut -f1)"
	per "strata search index (searchindex/)" "$(du -sk "$dir/strata/searchindex" 2>/dev/null | cut -f1 || echo 0)"
	per "strata metadata (fsm/ and raft/)" "$(du -skc "$dir/strata/fsm" "$dir/strata/raft" | tail -1 | cut -f1)"
	per "disk used by dovecot" "$(du -sk "$dir/dovecot/home" | cut -f1)"
	per "dovecot index files (dovecot.index*)" "$(find "$dir/dovecot/home" -name 'dovecot.index*' -printf '%k\n' | awk '{ s += $1 } END { print s + 0 }')"
}

# scenario_bigmailbox_rounds runs the big-mailbox rounds against the servers kept in $BIG_DIR
# by populate-bigmailbox: `strata serve` ($STRATA_SERVE, with the flags it was filled with)
# alone, then Dovecot alone (STRATA, the client, may be newer than the populating one).
scenario_bigmailbox_rounds() {
	local dir=${BIG_DIR:?BIG_DIR: a directory filled by populate-bigmailbox} status=0 flags=
	[ -d "$dir/strata" ] && [ -d "$dir/dovecot" ] || {
		echo "$dir does not hold a populated strata and dovecot; run populate-bigmailbox" >&2
		exit 1
	}
	flags=$(cat "$dir/strata-flags" 2>/dev/null || true)
	if [ "${ONLY:-strata}" = strata ]; then
		STRATA_FLAGS="$flags ${STRATA_FLAGS:-}" STRATA_READY_TIMEOUT=${STRATA_READY_TIMEOUT:-600} STRATA_DATA=$dir/strata start_strata
		run_big strata "$IMAP_PORT" || status=1
		echo "strata serve RSS: $(($(ps -o rss= -p "$STRATA_PID") / 1024)) MiB"
		stop_strata
	fi
	if [ "${ONLY:-dovecot}" = dovecot ]; then
		MAIL_LOCATION=$(cat "$dir/dovecot-mail-location" 2>/dev/null || true) DOVECOT_BASE=$dir start_dovecot 1
		run_big dovecot "$DOVECOT_PORT" || status=1
		stop_dovecot
	fi
	if [ -z "${NO_SIZES:-}" ]; then
		sizes "$dir"
	fi
	echo
	if [ -e "$OUT/bigmailbox-strata.json" ] && [ -e "$OUT/bigmailbox-dovecot.json" ]; then
		"$STRATA" bench compare "$OUT/bigmailbox-strata.json" "$OUT/bigmailbox-dovecot.json"
	fi
	return "$status"
}

# idle NAME PORT PID [FLAGS]: CONNS connections (100 users) in IDLE, the memory of PID's
# process tree measured SETTLE after the last one entered IDLE; FLAGS go to `strata bench
# idle` (--tls). Past 25,000 connections they come from several loopback addresses
# (127.0.0.1, .2, ...), 25,000 each: one has ~28,000 ephemeral ports.
idle() {
	local name=$1 port=$2 pid=$3 status=0 conns=${CONNS:-10000} sources=() i
	shift 3
	if [ "$conns" -gt 25000 ]; then
		sources=(--source-ips 127.0.0.1)
		for ((i = 2; (i - 1) * 25000 < conns; i++)); do
			sources[1]=${sources[1]},127.0.0.$i
		done
	fi
	load "before idle on $name"
	b idle --addr "127.0.0.1:$port" --users 100 --connections "$conns" --parallel 32 --settle "${SETTLE:-30s}" --hold 10s \
		"${sources[@]}" --pid "$pid" --timeout 10m --label "$name" --json "$OUT/idle-$name.json" "$@" \
		2> >(awk 'NR % 30 == 0 { print; fflush() }' >&2) || status=$?
	load "after idle on $name"
	return "$status"
}

# raise_file_limit: each connection is a descriptor in the server and in the client; the
# limit is raised to CONNS plus room for the rest, past the hard limit when we may (root).
raise_file_limit() {
	local want=$((${CONNS:-10000} + 4096))
	if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$want" ]; then
		ulimit -Hn "$want" 2>/dev/null || true
	fi
	ulimit -n "$(ulimit -Hn)"
}

# strata_for_idle starts Strata with a connection limit above CONNS (the default is
# 10,000) and a per-account one above CONNS/100 (the default, 100, refuses the LOGINs of
# any run past 10,000 with NO [LIMIT]), and with TLS set, an IMAPS listener.
strata_for_idle() {
	local flags=(--max-connections "$((${CONNS:-10000} + 100))" --max-connections-per-account "$((${CONNS:-10000} / 100 + 100))")
	if [ -n "${TLS:-}" ]; then
		flags+=(--imaps-listen "127.0.0.1:$IMAPS_PORT")
	fi
	start_strata "${flags[@]}"
	b users --server "127.0.0.1:$GRPC_PORT" --users 100
	if [ "${MESSAGES:-0}" -gt 0 ]; then
		b populate --addr "127.0.0.1:$IMAP_PORT" --users 100 --messages "$MESSAGES" --max-size 4096 --label strata \
			--json "$OUT/idle-populate-strata.json" >/dev/null
	fi
}

# scenario_idle: with TLS set, over IMAPS (implicit TLS, the self-signed certificate of
# `strata serve`); with MESSAGES set, each user's INBOX holds that many messages first.
scenario_idle() {
	raise_file_limit
	strata_for_idle
	if [ -n "${TLS:-}" ]; then
		idle strata-tls "$IMAPS_PORT" "$STRATA_PID" --tls --insecure-skip-verify
	else
		idle strata "$IMAP_PORT" "$STRATA_PID"
	fi
}

# scenario_compare_idle holds CONNS IDLE connections on Strata, then (Strata stopped) on
# Dovecot, whose memory is the sum over its master and every child (one imap process per
# connection), and with DOVECOT_HIBERNATE set, once more on Dovecot with IMAP hibernation.
scenario_compare_idle() {
	raise_file_limit
	# Dovecot watches each idling mailbox with an inotify instance; the kernel's default of
	# 128 per user would make all but 128 of its IDLE connections poll instead.
	local instances
	instances=$(cat /proc/sys/fs/inotify/max_user_instances)
	if [ "$instances" -lt "$((${CONNS:-10000} + 100))" ] && echo "$((${CONNS:-10000} + 100))" 2>/dev/null >/proc/sys/fs/inotify/max_user_instances; then
		INOTIFY_INSTANCES=$instances
	fi
	local status=0
	strata_for_idle
	idle strata "$IMAP_PORT" "$STRATA_PID" || status=1
	stop_strata
	start_dovecot 100
	idle dovecot "$DOVECOT_PORT" "$DOVECOT_PID" || status=1
	stop_dovecot
	if [ -n "${DOVECOT_HIBERNATE:-}" ]; then
		start_dovecot 100 dovecot-hibernate "$DOVECOT_HIBERNATE"
		idle dovecot-hibernate "$DOVECOT_PORT" "$DOVECOT_PID" || status=1
		stop_dovecot
	fi
	echo
	machine
	"$STRATA" bench compare "$OUT/idle-strata.json" "$OUT/idle-dovecot.json"
	if [ -n "${DOVECOT_HIBERNATE:-}" ]; then
		echo
		"$STRATA" bench compare "$OUT/idle-strata.json" "$OUT/idle-dovecot-hibernate.json"
	fi
	return "$status"
}

scenario_append() {
	start_strata
	b users --server "127.0.0.1:$GRPC_PORT" --users 64
	for clients in 1 64; do
		b --addr "127.0.0.1:$IMAP_PORT" --users 64 --clients "$clients" --duration "$DURATION" --profile append=1 \
			--label "strata-$clients" --json "$OUT/append-$clients-strata.json"
	done
}

# start_and_populate USERS MESSAGES: starts `strata serve` and Dovecot, creates USERS users
# and fills each one's INBOX with MESSAGES messages in both (compare, compare-append).
start_and_populate() {
	local users=$1 messages=$2 server
	start_strata
	start_dovecot "$users"
	b users --server "127.0.0.1:$GRPC_PORT" --users "$users"
	for server in strata:$IMAP_PORT dovecot:$DOVECOT_PORT; do
		local name=${server%%:*} port=${server##*:}
		b populate --addr "127.0.0.1:$port" --users "$users" --messages "$messages" --label "$name" --json "$OUT/compare-populate-$name.json"
	done
}

# scenario_compare_append: the APPEND steps of compare alone (USERS users populated with
# MESSAGES messages each, as compare does, then APPEND only, messages up to 64 KiB, with each
# client count of APPENDERS, default "1 64"), on `strata serve` and then on Dovecot. Unlike
# compare, the clients log in before the clock starts (--login-first): with 64 clients
# Dovecot's one auth process took most of a 20 s step verifying their passwords. With
# CPU_PROFILE, Strata is restarted after populating with --cpu-profile, so the profile holds
# its APPEND steps alone. Each step reports server_cpu_us_per_op: the CPU time (user and
# system, from /proc) of the server's process tree per APPEND, for Dovecot the master and
# every process it forked (those that exited too), and the load average at its end;
# STRATA_FLAGS=--blob-pack measures Strata with small bodies packed into segment files.
scenario_compare_append() {
	local users=${USERS:-16} messages=${MESSAGES:-200} appenders
	start_and_populate "$users" "$messages"
	if [ -n "${CPU_PROFILE:-}" ]; then
		stop_strata
		start_strata --cpu-profile "$CPU_PROFILE"
	fi
	for server in strata:$IMAP_PORT dovecot:$DOVECOT_PORT; do
		local name=${server%%:*} port=${server##*:} pid=$STRATA_PID
		if [ "$name" = dovecot ]; then
			pid=$DOVECOT_PID
		fi
		for appenders in ${APPENDERS:-1 64}; do
			load "before APPEND x $appenders on $name"
			b --addr "127.0.0.1:$port" --users "$users" --clients "$appenders" --duration "$DURATION" --profile append=1 --max-size 65536 \
				--login-first --server-pid "$pid" --label "$name" --json "$OUT/compare-append$appenders-$name.json"
			load "after APPEND x $appenders on $name"
		done
		if [ "$name" = strata ]; then
			stop_strata # writes the CPU profile; Dovecot then runs alone
		fi
	done
	echo
	machine
	for appenders in ${APPENDERS:-1 64}; do
		"$STRATA" bench compare "$OUT/compare-append$appenders-strata.json" "$OUT/compare-append$appenders-dovecot.json"
		echo
	done
	if [ -n "${CPU_PROFILE:-}" ]; then
		echo "CPU profile of strata serve's APPEND steps: $CPU_PROFILE (go tool pprof -top $STRATA_SERVE $CPU_PROFILE)"
	fi
}

# mixed_reports: the names of the mixed step's reports, "mixed" in a closed loop and
# "mixed-rateN" for each open-loop rate N of $RATE.
mixed_reports() {
	if [ -z "${RATE:-}" ]; then
		echo mixed
		return
	fi
	local rate
	for rate in $RATE; do
		echo "mixed-rate$rate"
	done
}

# scenario_compare runs the mixed workload and APPEND with 1 and 64 clients against Strata and Dovecot
# with the same users and the same populated mail, one server after the other. With RATE (one
# or more rates, e.g. RATE="400 800") the mixed step is open-loop at each rate in turn
# (`strata bench --rate`, ARRIVALS poisson or uniform): the same load offered to both servers,
# latency timed from each operation's scheduled start.
scenario_compare() {
	local users=${USERS:-16} messages=${MESSAGES:-200} clients=${CLIENTS:-16} report
	start_and_populate "$users" "$messages"
	for server in strata:$IMAP_PORT dovecot:$DOVECOT_PORT; do
		local name=${server%%:*} port=${server##*:}
		for report in $(mixed_reports); do
			load "before $report on $name"
			b --addr "127.0.0.1:$port" --users "$users" --clients "$clients" --duration "$DURATION" --label "$name" \
				${RATE:+--rate "${report#mixed-rate}" --arrivals "${ARRIVALS:-poisson}"} --json "$OUT/compare-$report-$name.json"
			load "after $report on $name"
		done
		for appenders in 1 64; do
			b --addr "127.0.0.1:$port" --users "$users" --clients "$appenders" --duration "$DURATION" --profile append=1 --max-size 65536 \
				--label "$name" --json "$OUT/compare-append$appenders-$name.json"
		done
	done
	echo
	machine
	"$STRATA" bench compare "$OUT/compare-populate-strata.json" "$OUT/compare-populate-dovecot.json"
	echo
	for report in $(mixed_reports); do
		"$STRATA" bench compare "$OUT/compare-$report-strata.json" "$OUT/compare-$report-dovecot.json"
		echo
	done
	"$STRATA" bench compare "$OUT/compare-append1-strata.json" "$OUT/compare-append1-dovecot.json"
	echo
	"$STRATA" bench compare "$OUT/compare-append64-strata.json" "$OUT/compare-append64-dovecot.json"
}

# run_resync NAME PORT: ROUNDS reconnects after CHANGES flag changes each, with QRESYNC.
run_resync() {
	local name=$1 port=$2 status=0
	load "before resync on $name"
	b resync --addr "127.0.0.1:$port" --users 1 --changes "${CHANGES:-10}" --rounds "${ROUNDS:-5}" --timeout 30m \
		--label "$name" --json "$OUT/resync-$name.json" || status=$?
	load "after resync on $name"
	return "$status"
}

# scenario_resync: the resync scenario on Strata alone, with BIG messages.
scenario_resync() {
	start_strata
	b users --server "127.0.0.1:$GRPC_PORT" --users 1
	populate_big strata "$IMAP_PORT" "$WORK/strata"
	run_resync strata "$IMAP_PORT"
}

# scenario_compare_resync fills one INBOX with the same $BIG messages in Strata and in Dovecot,
# then on each measures a client's catch-up after CHANGES changes: SELECT (QRESYNC ...) and
# UID FETCH (CHANGEDSINCE ...) (RFC 7162), time and bytes, against FETCH 1:* (UID FLAGS).
scenario_compare_resync() {
	local status=0
	start_strata
	b users --server "127.0.0.1:$GRPC_PORT" --users 1
	populate_big strata "$IMAP_PORT" "$WORK/strata"
	start_dovecot 1
	populate_big dovecot "$DOVECOT_PORT" "$DOVECOT_DIR/home"
	run_resync strata "$IMAP_PORT" || status=1
	run_resync dovecot "$DOVECOT_PORT" || status=1
	echo
	machine
	"$STRATA" bench compare "$OUT/resync-strata.json" "$OUT/resync-dovecot.json"
	return "$status"
}

# run_lmtp NAME PORT USERS PID: LMTP delivery of the same corpus messages (same seed) with 1
# and 16 connections, 1 and 10 recipients per message (LMTP_CONNS, LMTP_RCPTS to pick),
# DURATION each; prints the server's CPU (PID and its children) per delivered message, a
# figure the machine's other load disturbs much less than the rate.
run_lmtp() {
	local name=$1 port=$2 users=$3 pid=$4 status=0 hz before after json msgs
	hz=$(getconf CLK_TCK)
	for conns in ${LMTP_CONNS:-1 16}; do
		for rcpts in ${LMTP_RCPTS:-1 10}; do
			load "before lmtp $conns conns $rcpts rcpts on $name"
			json=$OUT/lmtp-c$conns-r$rcpts-$name.json
			before=$(cpu_ticks "$pid")
			b lmtp --lmtp-addr "127.0.0.1:$port" --users "$users" --conns "$conns" --rcpts "$rcpts" --duration "$DURATION" \
				--max-size "${LMTP_MAX_SIZE:-65536}" --label "$name" --json "$json" \
				2> >(awk 'NR % 10 == 0 { print; fflush() }' >&2) || status=1
			after=$(cpu_ticks "$pid")
			# The deliver operation's count: messages, whatever the recipients per message.
			msgs=$(grep -A2 '"op": "deliver"' "$json" | sed -n 's/.*"count": \([0-9]*\).*/\1/p')
			if [ -n "$msgs" ] && [ "$msgs" -gt 0 ]; then
				echo "$name lmtp $conns conns x $rcpts rcpts: server CPU $(((after - before) * 1000000 / hz / msgs)) us per message ($msgs messages)" | tee -a "$OUT/lmtp-cpu.txt"
			fi
		done
	done
	return "$status"
}

# strata_for_lmtp starts Strata with LMTP (and a CPU profile with CPU_PROFILE), creates the
# users and, with SIEVE, stores and activates the script for each.
strata_for_lmtp() {
	local users=$1
	start_strata --lmtp-listen "127.0.0.1:$STRATA_LMTP_PORT" ${CPU_PROFILE:+--cpu-profile "$CPU_PROFILE"}
	b users --server "127.0.0.1:$GRPC_PORT" --users "$users"
	if [ -n "${SIEVE:-}" ]; then
		local i
		for i in $(seq "$users"); do
			"$STRATA" sieve put --server "127.0.0.1:$GRPC_PORT" "bench$i@example.com" bench "$SIEVE"
			"$STRATA" sieve activate --server "127.0.0.1:$GRPC_PORT" "bench$i@example.com" bench
		done
	fi
}

scenario_lmtp() {
	local users=${USERS:-16}
	strata_for_lmtp "$users"
	run_lmtp strata "$STRATA_LMTP_PORT" "$users" "$STRATA_PID"
	echo "disk used by strata: $(du -sm "$WORK/strata" | cut -f1) MiB"
}

# scenario_compare_lmtp delivers the same messages over LMTP to Strata, then (Strata stopped)
# to Dovecot's LMTP with Pigeonhole's Sieve plugin and maildir, and prints the ratios.
scenario_compare_lmtp() {
	local users=${USERS:-16} status=0
	strata_for_lmtp "$users"
	run_lmtp strata "$STRATA_LMTP_PORT" "$users" "$STRATA_PID" || status=1
	echo "disk used by strata: $(du -sm "$WORK/strata" | cut -f1) MiB"
	stop_strata
	# Quoted: bash would expand the ~ after the colon of an assignment.
	LMTP_PORT=$DOVECOT_LMTP_PORT MAIL_LOCATION="${MAIL_LOCATION:-maildir:~/Maildir}" start_dovecot "$users"
	run_lmtp dovecot "$DOVECOT_LMTP_PORT" "$users" "$DOVECOT_PID" || status=1
	echo "disk used by dovecot: $(du -sm "$DOVECOT_DIR/home" | cut -f1) MiB"
	stop_dovecot
	echo
	machine
	local conns rcpts
	for conns in ${LMTP_CONNS:-1 16}; do
		for rcpts in ${LMTP_RCPTS:-1 10}; do
			"$STRATA" bench compare "$OUT/lmtp-c$conns-r$rcpts-strata.json" "$OUT/lmtp-c$conns-r$rcpts-dovecot.json"
			echo
		done
	done
	return "$status"
}

# cpu_ticks PID: the CPU time, in clock ticks, of PID and its live descendants, each with
# what it reaped of its exited children (Dovecot's master reaps its per-connection processes).
cpu_ticks() {
	local total=0 f child
	# Fields 14 to 17 of /proc/PID/stat, counted after the parenthesised command name (which
	# may hold spaces): utime, stime, cutime, cstime.
	for f in $(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f12-15); do
		total=$((total + f))
	done
	for child in $(pgrep -P "$1" || true); do
		total=$((total + $(cpu_ticks "$child")))
	done
	echo "$total"
}

# scenario_compare_login: LOGIN and LOGOUT in a loop (a new connection per login), CLIENTS
# clients over USERS users, against `strata serve` and Dovecot (argon2id at Strata's
# parameters, auth cache on); prints each server's CPU per LOGIN.
scenario_compare_login() {
	local users=${USERS:-16} clients=${CLIENTS:-16} hz before after logins
	hz=$(getconf CLK_TCK)
	start_strata
	start_dovecot "$users"
	b users --server "127.0.0.1:$GRPC_PORT" --users "$users"
	for server in strata:$IMAP_PORT:$STRATA_PID dovecot:$DOVECOT_PORT:$DOVECOT_PID; do
		local name port pid
		IFS=: read -r name port pid <<<"$server"
		load "before login on $name"
		before=$(cpu_ticks "$pid")
		b --addr "127.0.0.1:$port" --users "$users" --clients "$clients" --duration "$DURATION" --profile login=1 \
			--label "$name" --json "$OUT/compare-login-$name.json"
		after=$(cpu_ticks "$pid")
		load "after login on $name"
		logins=$(jq '[.ops[] | select(.op == "login") | .count] | add' "$OUT/compare-login-$name.json")
		echo "$name: $logins logins, server CPU $(((after - before) * 1000 / hz)) ms, $(((after - before) * 1000000 / hz / logins)) us per LOGIN (with its connection and LOGOUT)"
	done
	echo
	machine
	"$STRATA" bench compare "$OUT/compare-login-strata.json" "$OUT/compare-login-dovecot.json"
}

# run_cycle NAME PORT USERS CLIENTS PID...: the cycle scenario (a login per session) for
# DURATION; prints the CPU time of the PIDs' process trees per completed session.
run_cycle() {
	local name=$1 port=$2 users=$3 clients=$4 hz before after sessions status=0
	shift 4
	hz=$(getconf CLK_TCK)
	load "before cycle on $name"
	before=$(cpu_ticks_of "$@")
	b cycle --addr "127.0.0.1:$port" --users "$users" --clients "$clients" --duration "$DURATION" --label "$name" \
		--json "$OUT/cycle-$name.json" 2> >(awk 'NR % 5 == 0 { print; fflush() }' >&2) || status=$?
	after=$(cpu_ticks_of "$@")
	load "after cycle on $name"
	sessions=$(jq '.figures.sessions' "$OUT/cycle-$name.json")
	echo "$name: $sessions sessions, server CPU $(((after - before) * 1000 / hz)) ms, $(((after - before) * 1000000 / hz / (sessions > 0 ? sessions : 1))) us per session"
	return "$status"
}

# cpu_ticks_of PID...: cpu_ticks summed over several process trees.
cpu_ticks_of() {
	local total=0 pid
	for pid in "$@"; do
		total=$((total + $(cpu_ticks "$pid")))
	done
	echo "$total"
}

# populate_cycle NAME PORT USERS MESSAGES: what compare populates, for the cycle.
populate_cycle() {
	b populate --addr "127.0.0.1:$2" --users "$3" --messages "$4" --label "$1" --json "$OUT/cycle-populate-$1.json"
}

# dovecot_cycles USERS CLIENTS: the cycle on the running Dovecot (report "dovecot"), then on
# the same Dovecot and mail restarted with auth_cache_verify_password_with_worker = yes
# ("dovecot-workers"): its auth process verifies every LOGIN's argon2id itself, one at a
# time, unless cached passwords go to the auth workers.
dovecot_cycles() {
	local status=0
	run_cycle dovecot "$DOVECOT_PORT" "$1" "$2" "$DOVECOT_PID" || status=1
	stop_dovecot
	AUTH_CACHE_VERIFY_WITH_WORKER=yes start_dovecot "$1"
	run_cycle dovecot-workers "$DOVECOT_PORT" "$1" "$2" "$DOVECOT_PID" || status=1
	return "$status"
}

scenario_cycle() {
	local users=${USERS:-16} messages=${MESSAGES:-200} clients=${CLIENTS:-50}
	start_strata
	b users --server "127.0.0.1:$GRPC_PORT" --users "$users"
	populate_cycle strata "$IMAP_PORT" "$users" "$messages"
	run_cycle strata "$IMAP_PORT" "$users" "$clients" "$STRATA_PID"
}

# scenario_compare_cycle: the cycle (a login per session, CLIENTS clients over USERS users)
# against `strata serve` and Dovecot (dovecot_cycles: twice), populated as compare does, one
# server after the other.
# With CPU_PROFILE, Strata is restarted after populating with --cpu-profile, so the profile
# holds its cycle run alone (its first LOGIN of each user then pays argon2id again).
scenario_compare_cycle() {
	local users=${USERS:-16} messages=${MESSAGES:-200} clients=${CLIENTS:-50} status=0
	start_strata
	start_dovecot "$users"
	b users --server "127.0.0.1:$GRPC_PORT" --users "$users"
	populate_cycle strata "$IMAP_PORT" "$users" "$messages"
	populate_cycle dovecot "$DOVECOT_PORT" "$users" "$messages"
	if [ -n "${CPU_PROFILE:-}" ]; then
		stop_strata
		start_strata --cpu-profile "$CPU_PROFILE"
	fi
	run_cycle strata "$IMAP_PORT" "$users" "$clients" "$STRATA_PID" || status=1
	stop_strata
	dovecot_cycles "$users" "$clients" || status=1
	echo
	machine
	"$STRATA" bench compare "$OUT/cycle-populate-strata.json" "$OUT/cycle-populate-dovecot.json"
	echo
	"$STRATA" bench compare "$OUT/cycle-strata.json" "$OUT/cycle-dovecot.json"
	echo
	"$STRATA" bench compare "$OUT/cycle-strata.json" "$OUT/cycle-dovecot-workers.json"
	if [ -n "${CPU_PROFILE:-}" ]; then
		echo "CPU profile of strata serve's cycle run: $CPU_PROFILE (go tool pprof -top $STRATA $CPU_PROFILE)"
	fi
	return "$status"
}

ETCD=${ETCD:-bin/etcd}
VERSITYGW=${VERSITYGW:-$(command -v versitygw || echo "$HOME/go/bin/versitygw")}
# etcd client +0, etcd peer +1, S3 +2, metadata gRPC +3..+5, Raft +6..+8.
CLUSTER_PORT=${CLUSTER_PORT:-31160}
S3_ACCESS_KEY=strata-bench
S3_SECRET_KEY=strata-bench-secret

# wait_until SECONDS WHAT CMD...: runs CMD every 0.2 s until it succeeds; fails the scenario
# with WHAT after SECONDS.
wait_until() {
	local deadline=$((SECONDS + $1)) what=$2
	shift 2
	until "$@" >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "gave up waiting for $what" >&2
			tail -5 "$WORK"/*.log >&2 || true
			exit 1
		fi
		sleep 0.2
	done
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# cluster_tls ROLE NAME: the flags of the cluster mTLS identity ROLE/NAME, issued by
# `strata cert` under $WORK/certs (made with its CA on first use), as a deployment runs.
cluster_tls() {
	local dir=$WORK/certs
	[ -f "$dir/ca.pem" ] || "$STRATA" cert init --dir "$dir" >/dev/null
	[ -f "$dir/$1-$2.pem" ] || "$STRATA" cert issue --dir "$dir" --role "$1" --name "$2" >/dev/null
	echo --cluster-tls-ca "$dir/ca.pem" --cluster-tls-cert "$dir/$1-$2.pem" --cluster-tls-key "$dir/$1-$2-key.pem"
}

# three_voters: the group has three voters, each a leader or a follower.
three_voters() {
	# shellcheck disable=SC2046 # cluster_tls prints separate flags
	[ "$("$STRATA" cluster status --etcd "127.0.0.1:$CLUSTER_PORT" --timeout 5s $(cluster_tls admin bench) 2>/dev/null |
		grep -cE '^meta[0-9]+ +voter +(Leader|Follower) ')" -eq 3 ]
}

# start_cluster: etcd, versitygw (S3, posix backend), three `strata metadata` nodes (one Raft
# group, the default flags of `strata metadata`) and one `strata frontend` (IMAP on
# $IMAP_PORT, bodies in S3, metadata through etcd), all on 127.0.0.1 with data under $WORK;
# waits until the group has three voters and the frontend is ready. With CPU_PROFILE each
# metadata node writes FILE.metaN when stopped.
start_cluster() {
	local etcd=127.0.0.1:$CLUSTER_PORT peer=http://127.0.0.1:$((CLUSTER_PORT + 1)) i
	if ! [ -x "$ETCD" ]; then
		echo "building $ETCD from deploy/etcd" >&2
		go build -o "$ETCD" ./deploy/etcd
	fi
	"$ETCD" --name bench --data-dir "$WORK/etcd" --listen-client-urls "http://$etcd" --advertise-client-urls "http://$etcd" \
		--listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" --initial-cluster "bench=$peer" >"$WORK/etcd.log" 2>&1 &
	CLUSTER_PIDS+=($!)
	mkdir -p "$WORK/s3"
	"$VERSITYGW" --access "$S3_ACCESS_KEY" --secret "$S3_SECRET_KEY" --port "127.0.0.1:$((CLUSTER_PORT + 2))" --quiet \
		posix "$WORK/s3" >"$WORK/versitygw.log" 2>&1 &
	CLUSTER_PIDS+=($!)
	wait_until 30 etcd listening "$CLUSTER_PORT"
	wait_until 30 versitygw listening "$((CLUSTER_PORT + 2))"
	cluster_tls admin bench >/dev/null # the CA, before the nodes issue theirs in parallel
	for i in 1 2 3; do
		"$STRATA" metadata --node-id "meta$i" --data "$WORK/meta$i" --etcd "$etcd" \
			--grpc-listen "127.0.0.1:$((CLUSTER_PORT + 2 + i))" --raft-listen "127.0.0.1:$((CLUSTER_PORT + 5 + i))" \
			--log-level warn ${CPU_PROFILE:+--cpu-profile "$CPU_PROFILE.meta$i"} $(cluster_tls node "meta$i") >"$WORK/meta$i.log" 2>&1 &
		CLUSTER_PIDS+=($!)
	done
	wait_until 120 "three voters" three_voters
	start_frontend
}

# start_frontend [flags]: the cluster's `strata frontend`, with any extra flags.
start_frontend() {
	STRATA_S3_ACCESS_KEY=$S3_ACCESS_KEY STRATA_S3_SECRET_KEY=$S3_SECRET_KEY "$STRATA" frontend \
		--imap-listen "127.0.0.1:$IMAP_PORT" --lmtp-listen "" --managesieve-listen "" --etcd "127.0.0.1:$CLUSTER_PORT" \
		--spool-dir "$WORK/spool" --allow-plaintext-auth --log-level warn \
		--blob s3 --s3-endpoint "127.0.0.1:$((CLUSTER_PORT + 2))" --s3-bucket mail --s3-insecure --s3-path-style \
		$(cluster_tls frontend fe1) "$@" >"$WORK/frontend.log" 2>&1 &
	FRONTEND_PID=$!
	wait_until 60 "strata frontend" grep -q "Strata frontend is ready" "$WORK/frontend.log"
}

stop_frontend() {
	if [ -n "$FRONTEND_PID" ]; then
		kill "$FRONTEND_PID" 2>/dev/null || true
		wait "$FRONTEND_PID" 2>/dev/null || true
		FRONTEND_PID=
	fi
}

# stop_cluster: the frontend, then the metadata nodes, the S3 server and etcd (SIGTERM, so
# that CPU profiles are written).
stop_cluster() {
	stop_frontend
	local i
	for ((i = ${#CLUSTER_PIDS[@]} - 1; i >= 0; i--)); do
		kill "${CLUSTER_PIDS[i]}" 2>/dev/null || true
		wait "${CLUSTER_PIDS[i]}" 2>/dev/null || true
	done
	CLUSTER_PIDS=()
}

# scenario_cluster_cycle: the cycle against the 3-node cluster with S3 (start_cluster) and
# against Dovecot, populated as compare does, one after the other. With CPU_PROFILE, the
# frontend is restarted after populating with --cpu-profile FILE.frontend (its cycle run
# alone); the metadata nodes' FILE.metaN cover populating too.
scenario_cluster_cycle() {
	local users=${USERS:-16} messages=${MESSAGES:-200} clients=${CLIENTS:-50} status=0
	start_cluster
	start_dovecot "$users"
	b users --etcd "127.0.0.1:$CLUSTER_PORT" --users "$users" $(cluster_tls admin bench)
	populate_cycle cluster "$IMAP_PORT" "$users" "$messages"
	populate_cycle dovecot "$DOVECOT_PORT" "$users" "$messages"
	if [ -n "${CPU_PROFILE:-}" ]; then
		stop_frontend
		start_frontend --cpu-profile "$CPU_PROFILE.frontend"
	fi
	run_cycle cluster "$IMAP_PORT" "$users" "$clients" "$FRONTEND_PID" "${CLUSTER_PIDS[@]}" || status=1
	stop_cluster
	dovecot_cycles "$users" "$clients" || status=1
	echo
	machine
	"$STRATA" bench compare "$OUT/cycle-populate-cluster.json" "$OUT/cycle-populate-dovecot.json"
	echo
	"$STRATA" bench compare "$OUT/cycle-cluster.json" "$OUT/cycle-dovecot.json"
	echo
	"$STRATA" bench compare "$OUT/cycle-cluster.json" "$OUT/cycle-dovecot-workers.json"
	if [ -n "${CPU_PROFILE:-}" ]; then
		echo "CPU profiles: $CPU_PROFILE.frontend (cycle run), $CPU_PROFILE.meta1..3 (populate and cycle)"
	fi
	return "$status"
}

case ${1:-} in
mixed | bigmailbox | idle | append | compare | compare-append | compare-bigmailbox | populate-bigmailbox | populate-bigmailbox-fast | bigmailbox-rounds | compare-idle | resync | compare-resync | lmtp | compare-lmtp | compare-login | cycle | compare-cycle | cluster-cycle)
	machine
	"scenario_${1//-/_}"
	;;
*)
	echo "usage: $0 mixed|bigmailbox|idle|append|compare|compare-append|compare-bigmailbox|populate-bigmailbox|populate-bigmailbox-fast|bigmailbox-rounds|compare-idle|resync|compare-resync|lmtp|compare-lmtp|compare-login|cycle|compare-cycle|cluster-cycle" >&2
	exit 2
	;;
esac
