#!/usr/bin/env bash
# Runs Debian's Dovecot as a throw-away IMAP server on 127.0.0.1 for `strata bench`.
#
#   bench/dovecot.sh start DIR PORT USERS PATTERN PASSWORD   # writes DIR/dovecot.conf, starts, prints the master PID
#   bench/dovecot.sh stop DIR
#
# The configuration is self-contained under DIR: base_dir, a passwd-file userdb/passdb with
# the same users and password as the Strata run (argon2id with Strata's parameters, written
# by `strata bench users --dovecot-passwd`), sdbox mail under DIR/home, no TLS, plaintext
# LOGIN allowed, loopback only, the authentication cache on (AUTH_CACHE_SIZE, default 10M,
# and AUTH_CACHE_TTL, default 5 mins as Strata's; AUTH_CACHE_VERIFY_WITH_WORKER=yes verifies
# cached passwords in the auth-worker processes, in parallel, default no). Mail files belong to nobody:nogroup. With
# HIBERNATE set (a Dovecot interval such as 5s), IMAP connections idling that long move to
# the imap-hibernate process (imap_hibernate_timeout), which Debian's default configuration leaves off.
set -euo pipefail

STRATA=${STRATA:-bin/strata}

install_dovecot() {
	if ! command -v dovecot >/dev/null 2>&1; then
		echo "installing dovecot-imapd" >&2
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null
	fi
	if [ -n "${LMTP_PORT:-}" ] && { ! [ -e /usr/lib/dovecot/lmtp ] || ! [ -e /usr/lib/dovecot/modules/lib90_sieve_plugin.so ]; }; then
		echo "installing dovecot-lmtpd dovecot-sieve" >&2
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-lmtpd dovecot-sieve >/dev/null
	fi
}

start() {
	local dir=$1 port=$2 users=$3 pattern=$4 password=$5
	install_dovecot
	mkdir -p "$dir/run" "$dir/home"
	chown nobody:nogroup "$dir/home"
	"$STRATA" bench users --users "$users" --user-pattern "$pattern" --password "$password" \
		--dovecot-passwd "$dir/passwd" --dovecot-uid 65534 --dovecot-gid 65534 --dovecot-homes "$dir/home"
	chmod 0644 "$dir/passwd"
	cat >"$dir/dovecot.conf" <<EOF
protocols = imap${LMTP_PORT:+ lmtp}
listen = 127.0.0.1
base_dir = $dir/run
instance_name = strata-bench-$port
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = $dir/dovecot.log
info_log_path = $dir/dovecot.log
first_valid_uid = 1
mail_location = ${MAIL_LOCATION:-sdbox:~/sdbox}
mail_fsync = optimized
# As a provider runs it: successful logins are cached (Strata's frontends cache them too,
# --auth-cache-size and --auth-cache-ttl); AUTH_CACHE_SIZE=0 turns the cache off.
auth_cache_size = ${AUTH_CACHE_SIZE:-10M}
auth_cache_ttl = ${AUTH_CACHE_TTL:-5 mins}
# yes: a cached password is verified (argon2id against the cached hash) in the auth-worker
# processes, several at once, instead of one at a time in the auth process.
auth_cache_verify_password_with_worker = ${AUTH_CACHE_VERIFY_WITH_WORKER:-no}
passdb {
  driver = passwd-file
  args = scheme=ARGON2ID $dir/passwd
}
userdb {
  driver = passwd-file
  args = $dir/passwd
}
# Enough processes and descriptors for the idle scenario's thousands of connections (one
# imap process each, and each holds a connection to log, anvil and stats), within the
# usual hard limit of 20000 descriptors per process.
default_process_limit = 20000
default_client_limit = 19000
default_vsz_limit = 0
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
  # High-performance mode: a few login processes, each serving many connections.
  service_count = 0
  process_min_avail = 2
  process_limit = 8
  client_limit = 19000
}
service imap-urlauth-login {
  process_limit = 1
}
service imap {
  process_limit = 20000
}
service anvil {
  client_limit = 19000
}
service auth {
  client_limit = 19000
}
protocol imap {
  mail_max_userip_connections = 20000
}
EOF
	if [ -n "${LMTP_PORT:-}" ]; then
		cat >>"$dir/dovecot.conf" <<EOF
postmaster_address = postmaster@example.com
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $LMTP_PORT
  }
}
protocol lmtp {
  mail_plugins = \$mail_plugins sieve
}
plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
}
EOF
		if [ -n "${SIEVE:-}" ]; then
			local u home
			for u in $(cut -d: -f1 "$dir/passwd"); do
				home=$dir/home/$u
				mkdir -p "$home/sieve"
				cp "$SIEVE" "$home/sieve/bench.sieve"
				ln -sf sieve/bench.sieve "$home/.dovecot.sieve"
			done
		fi
		chown -R nobody:nogroup "$dir/home"
	fi
	if [ -n "${HIBERNATE:-}" ]; then
		# As Dovecot's documentation of imap_hibernate_timeout describes: the imap processes
		# (nobody, with the dovecot group) hand idle connections to imap-hibernate, which
		# hands them back through imap-master.
		cat >>"$dir/dovecot.conf" <<EOF
imap_hibernate_timeout = $HIBERNATE
service imap {
  extra_groups = \$default_internal_group
  unix_listener imap-master {
    user = \$default_internal_user
  }
}
service imap-hibernate {
  unix_listener imap-hibernate {
    mode = 0660
    group = \$default_internal_group
  }
}
EOF
	fi
	dovecot -c "$dir/dovecot.conf"
	for _ in $(seq 50); do
		if [ -s "$dir/run/master.pid" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			cat "$dir/run/master.pid"
			return 0
		fi
		sleep 0.2
	done
	echo "dovecot did not start; see $dir/dovecot.log" >&2
	tail -20 "$dir/dovecot.log" >&2 || true
	return 1
}

stop() {
	local dir=$1
	if [ -s "$dir/run/master.pid" ]; then
		doveadm -c "$dir/dovecot.conf" stop 2>/dev/null || kill "$(cat "$dir/run/master.pid")" 2>/dev/null || true
	fi
}

case ${1:-} in
start) shift; start "$@" ;;
stop) shift; stop "$@" ;;
*) echo "usage: $0 start DIR PORT USERS PATTERN PASSWORD | stop DIR" >&2; exit 2 ;;
esac
