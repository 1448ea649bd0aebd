#!/usr/bin/env bash
# A private, throwaway MariaDB server for the storage tests: its own data
# directory under a temporary directory, its own loopback port, root with
# an empty password over TCP. Nothing of the machine's own MariaDB (if
# any) is used or touched.
#
#   scripts/mariadb.sh start   install mariadb-server if missing (as root),
#                              start a server, wait until it answers, and
#                              print WAYLINE_TEST_MYSQL=mysql://root@tcp(127.0.0.1:PORT)/
#   scripts/mariadb.sh stop    shut it down and remove its data
#   scripts/mariadb.sh env     print WAYLINE_TEST_MYSQL of the running one
#
# The server's state (data directory, port, pid) is kept in
# $WAYLINE_MARIADB_STATE, by default .mariadb-test.env in the repository.
# Progress and errors go to stderr; stdout carries only the DSN line.
#
# The data is thrown away, so the server trades durability for speed: the
# log is flushed to disk once a second rather than at every commit, pages
# are written without the doublewrite buffer, and the buffer pool holds an
# ingest benchmark's hour of measurements. $WAYLINE_MARIADB_FLAGS replaces
# these options.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state=${WAYLINE_MARIADB_STATE:-$root/.mariadb-test.env}
PATH=$PATH:/usr/sbin:/sbin

speed="--innodb-flush-log-at-trx-commit=2 --innodb-doublewrite=0 --innodb-buffer-pool-size=1G --innodb-log-file-size=512M"

say() { echo "mariadb.sh: $*" >&2; }
die() { say "$*"; exit 1; }

# load_state reads the state file into dir, port and pid; it fails if
# there is none.
load_state() {
	[ -f "$state" ] || return 1
	dir=$(sed -n 's/^WAYLINE_MARIADB_DIR=//p' "$state")
	port=$(sed -n 's/^WAYLINE_MARIADB_PORT=//p' "$state")
	pid=$(sed -n 's/^WAYLINE_MARIADB_PID=//p' "$state")
	[ -n "$dir" ] && [ -n "$port" ] && [ -n "$pid" ]
}

# ours says whether pid is a server started by us on dir, so that a pid
# reused by another process is never signalled.
ours() {
	[ -r "/proc/$1/cmdline" ] && grep -qaF -- "--datadir=$2/data" "/proc/$1/cmdline"
}

dsn() { echo "WAYLINE_TEST_MYSQL=mysql://root@tcp(127.0.0.1:$1)/"; }

answers() {
	mariadb-admin --no-defaults --connect-timeout=2 -h127.0.0.1 -P"$1" -uroot ping >/dev/null 2>&1
}

# free_port picks a port below the ephemeral range (where outgoing
# connections take theirs) that nothing listens on.
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

install_server() {
	command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null && return 0
	[ "$(id -u)" = 0 ] || die "mariadbd is not installed and we are not root: install mariadb-server (apt-get install mariadb-server), or run as root"
	say "installing mariadb-server"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -q mariadb-server >&2; then
		apt-get update -q >&2
		apt-get install -y -q mariadb-server >&2
	fi
	command -v mariadbd >/dev/null || die "mariadb-server installed, but there is no mariadbd"
}

start() {
	if load_state && ours "$pid" "$dir" && answers "$port"; then
		say "already running on port $port (pid $pid)"
		dsn "$port"
		return 0
	fi
	rm -f "$state"
	install_server
	dir=$(mktemp -d "${TMPDIR:-/tmp}/wayline-mariadb-XXXXXX")
	pid=
	# Until the server is up and recorded, a failure or an interrupt takes
	# down whatever was started.
	trap 'cleanup_failed' EXIT
	trap 'exit 130' INT TERM
	mariadb-install-db --no-defaults --datadir="$dir/data" --user=root \
		--auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 ||
		{ tail -n 20 "$dir/install.log" >&2; die "mariadb-install-db failed"; }
	for _ in 1 2 3; do
		port=$(free_port) || die "no free port"
		# shellcheck disable=SC2086 # the extra flags are words
		mariadbd --no-defaults --datadir="$dir/data" --user=root --port="$port" \
			--bind-address=127.0.0.1 --socket="$dir/sock" --skip-name-resolve \
			${WAYLINE_MARIADB_FLAGS-$speed} </dev/null >"$dir/server.log" 2>&1 &
		pid=$!
		for _ in $(seq 300); do
			answers "$port" && break
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if answers "$port"; then
			printf 'WAYLINE_MARIADB_DIR=%s\nWAYLINE_MARIADB_PORT=%s\nWAYLINE_MARIADB_PID=%s\n%s\n' \
				"$dir" "$port" "$pid" "$(dsn "$port")" >"$state"
			trap - EXIT INT TERM
			say "started on port $port (pid $pid, data in $dir)"
			dsn "$port"
			return 0
		fi
		if kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$dir/server.log" >&2
			die "mariadbd did not answer within 30 s"
		fi
		# It exited: most likely another process took the port meanwhile.
		say "mariadbd exited on port $port; trying another"
		tail -n 5 "$dir/server.log" >&2
		pid=
	done
	die "mariadbd would not start"
}

cleanup_failed() {
	if [ -n "${pid:-}" ] && kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	[ -n "${dir:-}" ] && rm -rf "$dir"
}

stop() {
	if ! load_state; then
		say "not running (no $state)"
		return 0
	fi
	if ours "$pid" "$dir"; then
		mariadb-admin --no-defaults -h127.0.0.1 -P"$port" -uroot shutdown >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
		for _ in $(seq 100); do
			ours "$pid" "$dir" || break
			sleep 0.1
		done
		if ours "$pid" "$dir"; then
			say "mariadbd (pid $pid) still running after 10 s: killing it"
			kill -9 "$pid" 2>/dev/null || true
			sleep 0.2
		fi
	fi
	case $dir in
	*/wayline-mariadb-*) rm -rf "$dir" ;;
	*) say "not removing $dir: not ours" ;;
	esac
	rm -f "$state"
	say "stopped"
}

env_() {
	load_state && ours "$pid" "$dir" || die "not running (start it with: scripts/mariadb.sh start)"
	dsn "$port"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
env) env_ ;;
*) die "usage: $0 start|stop|env" ;;
esac
