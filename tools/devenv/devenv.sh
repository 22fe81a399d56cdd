#!/usr/bin/env bash
# Makes PostgreSQL and Redis reachable on loopback for local runs and tests.
#
# Usage: tools/devenv/devenv.sh up|down|env|status|createdb NAME
#
#   up        Use the services already answering on 127.0.0.1, otherwise
#             install (apt) and start private instances. Prints env lines.
#   down      Stop only what `up` started (see <devenv dir>/started).
#   env       Print the env lines, start nothing.
#   status    Print what answers and what this script started.
#   createdb  Create database NAME (idempotent, owner postgres), print its URL.
#
# Environment:
#   BROKKR_PG_PORT          (5432)  PostgreSQL port on 127.0.0.1
#   BROKKR_REDIS_PORT       (6379)  Redis port on 127.0.0.1
#   BROKKR_DEVENV_DIR       ($HOME/.cache/brokkr/devenv)  state, logs, data
#   BROKKR_DEVENV_PGDATA    data dir of the private PostgreSQL cluster
#                           (default <devenv dir>/pg, or /var/tmp/brokkr-devenv/pg
#                           when the postgres OS user cannot reach the former)
#   BROKKR_PG_BINDIR        directory holding initdb/pg_ctl (auto-detected)
#   BROKKR_DEVENV_TIMEOUT   (60)    seconds to wait for a service to answer
#
# stdout carries only the env lines / URL; status lines go to stderr.
set -euo pipefail

PG_PORT="${BROKKR_PG_PORT:-5432}"
REDIS_PORT="${BROKKR_REDIS_PORT:-6379}"
DEVENV="${BROKKR_DEVENV_DIR:-${HOME:-/root}/.cache/brokkr/devenv}"
TIMEOUT="${BROKKR_DEVENV_TIMEOUT:-60}"
STATE="$DEVENV/started"
REDIS_DIR="$DEVENV/redis"
HOST=127.0.0.1

log() { printf '[devenv] %s\n' "$*" >&2; }
die() { printf '[devenv] error: %s\n' "$*" >&2; exit 1; }

is_root() { [[ $(id -u) == 0 ]]; }

for p in "$PG_PORT" "$REDIS_PORT" "$TIMEOUT"; do
	[[ $p =~ ^[0-9]+$ ]] || die "not a number: '$p' (check BROKKR_PG_PORT, BROKKR_REDIS_PORT, BROKKR_DEVENV_TIMEOUT)"
done

pg_url() { printf 'postgres://postgres@%s:%s/%s?sslmode=disable' "$HOST" "$PG_PORT" "${1:-postgres}"; }
redis_url() { printf 'redis://%s:%s/0' "$HOST" "$REDIS_PORT"; }

print_env() {
	printf 'BROKKR_TEST_PG_URL=%s\n' "$(pg_url postgres)"
	printf 'BROKKR_TEST_REDIS_URL=%s\n' "$(redis_url)"
}

# ---------------------------------------------------------------- helpers ---

# fd 9 holds the lock; every command that may leave a daemon behind runs with
# 9>&- so the daemon does not keep the lock forever.
lock() {
	mkdir -p "$DEVENV"
	exec 9>"$DEVENV/.lock"
	if command -v flock >/dev/null 2>&1 && ! flock -w "$TIMEOUT" 9; then
		die "another devenv.sh holds $DEVENV/.lock"
	fi
}

APT_UPDATED=0
apt_install() {
	local logf="$DEVENV/apt.log"
	command -v apt-get >/dev/null 2>&1 || die "need to install $* but apt-get is not available"
	local sudo=()
	if ! is_root; then
		command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to install $*"
		sudo=(sudo)
	fi
	mkdir -p "$DEVENV"
	log "installing $* via apt (log: $logf)"
	if [[ $APT_UPDATED == 0 ]]; then
		"${sudo[@]}" apt-get update >>"$logf" 2>&1 9>&- || { tail -n 20 "$logf" >&2; die "apt-get update failed"; }
		APT_UPDATED=1
	fi
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$logf" 2>&1 9>&- ||
		{ tail -n 20 "$logf" >&2; die "apt-get install $* failed"; }
}

# wait_for DESCRIPTION COMMAND...: polls COMMAND until it succeeds or TIMEOUT.
wait_for() {
	local what=$1; shift
	local deadline=$((SECONDS + TIMEOUT))
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.5
	done
	log "$what is ready"
}

# State file: one line per thing this script started.
#   pg-private <port> <pgdata> <bindir>
#   pg-debian <port> <version> <cluster>
#   redis <port> <pidfile>
state_add() {
	mkdir -p "$DEVENV"
	touch "$STATE"
	grep -qxF -- "$*" "$STATE" || printf '%s\n' "$*" >>"$STATE"
}
state_del() {
	[[ -f $STATE ]] || return 0
	grep -vxF -- "$*" "$STATE" >"$STATE.tmp" || true
	mv "$STATE.tmp" "$STATE"
}

# ------------------------------------------------------------- postgresql ---

pg_ready() { pg_isready -q -h "$HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1; }
pg_login() {
	PGCONNECT_TIMEOUT=5 psql -w -X -q -t -A -h "$HOST" -p "$PG_PORT" -U postgres -d postgres \
		-c 'select 1' >/dev/null 2>&1
}
pg_ok() { pg_ready && pg_login; }

ensure_pg_client() {
	command -v psql >/dev/null 2>&1 && command -v pg_isready >/dev/null 2>&1 && return 0
	apt_install postgresql-client
}

# Prints the directory holding initdb and pg_ctl, or nothing.
find_pg_bindir() {
	local want=${1:-} d
	if [[ -n ${BROKKR_PG_BINDIR:-} ]]; then
		printf '%s' "$BROKKR_PG_BINDIR"; return 0
	fi
	if [[ -n $want && -x /usr/lib/postgresql/$want/bin/pg_ctl ]]; then
		printf '%s' "/usr/lib/postgresql/$want/bin"; return 0
	fi
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | while read -r x; do
		[[ -x $x/pg_ctl && -x $x/initdb ]] && echo "$x"; done | tail -n 1) || true
	if [[ -n $d ]]; then printf '%s' "$d"; return 0; fi
	if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
		dirname "$(command -v pg_ctl)"; return 0
	fi
}

# Runs a command as the OS user owning the private cluster (postgres when root).
as_pg() {
	if is_root; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

ensure_postgres_user() {
	is_root || return 0
	id postgres >/dev/null 2>&1 && return 0
	log "creating OS user postgres"
	useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
}

# Debian cluster ("ver name") listening on PG_PORT, if any.
debian_cluster_on_port() {
	command -v pg_lsclusters >/dev/null 2>&1 || return 0
	pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p { print $1, $2; exit }'
}

# Debian clusters default to scram auth on loopback: add trust lines for the
# postgres role on 127.0.0.1/::1 (marked, once) and reload.
debian_trust_loopback() {
	local ver=$1 name=$2 hba="/etc/postgresql/$1/$2/pg_hba.conf" marker='# brokkr-devenv: trust loopback'
	[[ -f $hba ]] || die "cluster $ver/$name answers on $PG_PORT but refuses postgres@$HOST without password, and $hba is missing"
	if ! grep -qF "$marker" "$hba"; then
		is_root || die "cluster $ver/$name refuses postgres@$HOST without password; allow trust on loopback in $hba (needs root)"
		log "adding trust for postgres on loopback to $hba"
		{
			printf '%s\n' "$marker"
			printf 'host all postgres 127.0.0.1/32 trust\n'
			printf 'host all postgres ::1/128 trust\n'
			cat "$hba"
		} >"$hba.brokkr-tmp"
		chown --reference="$hba" "$hba.brokkr-tmp"
		chmod --reference="$hba" "$hba.brokkr-tmp"
		mv "$hba.brokkr-tmp" "$hba"
	fi
	pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload >/dev/null 2>&1 9>&- || true
}

start_debian_cluster() {
	local ver=$1 name=$2 status
	status=$(pg_lsclusters -h 2>/dev/null | awk -v v="$ver" -v n="$name" '$1 == v && $2 == n { print $4 }')
	if [[ $status != online* ]]; then
		log "starting Debian cluster $ver/$name on port $PG_PORT"
		pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start >&2 9>&- ||
			die "pg_ctlcluster $ver $name start failed (see /var/log/postgresql/postgresql-$ver-$name.log)"
		state_add pg-debian "$PG_PORT" "$ver" "$name"
	fi
	wait_for "PostgreSQL $ver/$name on $HOST:$PG_PORT" pg_ready ||
		die "PostgreSQL $ver/$name did not accept connections on $HOST:$PG_PORT within ${TIMEOUT}s"
	pg_login || debian_trust_loopback "$ver" "$name"
	wait_for "login as postgres on $HOST:$PG_PORT" pg_login ||
		die "cannot log in as postgres on $HOST:$PG_PORT without password (cluster $ver/$name)"
}

# Chooses the private data directory (must be reachable by the postgres user).
private_pgdata() {
	if [[ -n ${BROKKR_DEVENV_PGDATA:-} ]]; then printf '%s' "$BROKKR_DEVENV_PGDATA"; return; fi
	local d="$DEVENV/pg"
	if is_root; then
		mkdir -p "$d"
		chown postgres:postgres "$d"
		if ! as_pg test -w "$d" 2>/dev/null; then
			rmdir "$d" 2>/dev/null || true
			d=/var/tmp/brokkr-devenv/pg
		fi
	fi
	printf '%s' "$d"
}

start_private_cluster() {
	local pgdata bindir ver running_port
	ensure_postgres_user
	pgdata=$(private_pgdata)
	mkdir -p "$pgdata"
	if is_root; then chown postgres:postgres "$pgdata"; fi
	chmod 700 "$pgdata"

	ver=""
	[[ -f $pgdata/PG_VERSION ]] && ver=$(cat "$pgdata/PG_VERSION")
	bindir=$(find_pg_bindir "$ver")
	[[ -n $bindir && -x $bindir/pg_ctl ]] || die "no PostgreSQL server binaries found (set BROKKR_PG_BINDIR)"

	if [[ ! -f $pgdata/PG_VERSION ]]; then
		log "initialising private cluster in $pgdata ($bindir)"
		as_pg "$bindir/initdb" -D "$pgdata" -U postgres --auth=trust --encoding=UTF8 --locale=C \
			>"$DEVENV/initdb.log" 2>&1 || { tail -n 20 "$DEVENV/initdb.log" >&2; die "initdb failed"; }
		# Development/test settings: loopback only, TCP only, no durability.
		as_pg tee -a "$pgdata/postgresql.conf" >/dev/null <<-EOF

			# brokkr devenv
			listen_addresses = '127.0.0.1'
			unix_socket_directories = ''
			fsync = off
			synchronous_commit = off
			full_page_writes = off
			max_connections = 200
		EOF
	fi

	if as_pg "$bindir/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
		running_port=$(sed -n 4p "$pgdata/postmaster.pid" 2>/dev/null || true)
		die "private cluster in $pgdata already runs on port ${running_port:-?}, not $PG_PORT; run 'down' first"
	fi

	log "starting private PostgreSQL on $HOST:$PG_PORT (data: $pgdata)"
	if ! as_pg "$bindir/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -o "-p $PG_PORT" \
		-w -t "$TIMEOUT" start >/dev/null 2>&1 9>&-; then
		tail -n 20 "$pgdata/server.log" >&2 2>/dev/null || true
		die "private PostgreSQL did not start on $HOST:$PG_PORT (log: $pgdata/server.log)"
	fi
	state_add pg-private "$PG_PORT" "$pgdata" "$bindir"
	wait_for "PostgreSQL on $HOST:$PG_PORT" pg_ok ||
		die "private PostgreSQL on $HOST:$PG_PORT did not accept postgres logins within ${TIMEOUT}s (log: $pgdata/server.log)"
}

pg_up() {
	ensure_pg_client
	if pg_ok; then
		log "PostgreSQL already answers on $HOST:$PG_PORT; using it"
		return 0
	fi
	if [[ -z $(find_pg_bindir) ]]; then
		apt_install postgresql
		# The package may have created (and, with a service manager, started) a cluster.
		if pg_ok; then
			log "PostgreSQL answers on $HOST:$PG_PORT after installation; using it"
			return 0
		fi
	fi
	local cl
	cl=$(debian_cluster_on_port)
	if [[ -n $cl ]]; then
		# shellcheck disable=SC2086 # "ver name"
		start_debian_cluster $cl
	elif pg_ready; then
		die "something on $HOST:$PG_PORT speaks PostgreSQL but refuses postgres without password; free the port or pick another BROKKR_PG_PORT"
	else
		start_private_cluster
	fi
}

# ------------------------------------------------------------------ redis ---

redis_ping() {
	local reply
	if command -v redis-cli >/dev/null 2>&1; then
		reply=$(timeout 3 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) || return 1
	else
		reply=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "PING\r\n" >&3 && head -c 7 <&3' \
			"$HOST" "$REDIS_PORT" 2>/dev/null) || return 1
	fi
	[[ $reply == *PONG* ]]
}

redis_up() {
	if redis_ping; then
		log "Redis already answers on $HOST:$REDIS_PORT; using it"
		return 0
	fi
	if ! command -v redis-server >/dev/null 2>&1; then
		apt_install redis-server
		if redis_ping; then
			log "Redis answers on $HOST:$REDIS_PORT after installation; using it"
			return 0
		fi
	fi
	mkdir -p "$REDIS_DIR"
	local pidfile="$REDIS_DIR/redis.pid" logfile="$REDIS_DIR/redis.log"
	log "starting private Redis on $HOST:$REDIS_PORT (dir: $REDIS_DIR)"
	redis-server --daemonize yes --bind "$HOST" --port "$REDIS_PORT" --save "" --appendonly no \
		--dir "$REDIS_DIR" --logfile "$logfile" --pidfile "$pidfile" </dev/null >/dev/null 2>&1 9>&- ||
		{ tail -n 20 "$logfile" >&2 2>/dev/null || true; die "redis-server failed to start (log: $logfile)"; }
	state_add redis "$REDIS_PORT" "$pidfile"
	wait_for "Redis on $HOST:$REDIS_PORT" redis_ping || {
		tail -n 20 "$logfile" >&2 2>/dev/null || true
		die "Redis did not answer PING on $HOST:$REDIS_PORT within ${TIMEOUT}s (log: $logfile)"
	}
}

# ------------------------------------------------------------------- down ---

pid_alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; }

stop_redis() {
	local port=$1 pidfile=$2 pid="" deadline
	[[ -f $pidfile ]] && pid=$(tr -dc 0-9 <"$pidfile")
	if pid_alive "$pid" && grep -q redis "/proc/$pid/comm" 2>/dev/null; then
		log "stopping private Redis on $HOST:$port (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		deadline=$((SECONDS + TIMEOUT))
		while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
		pid_alive "$pid" && die "Redis pid $pid did not exit within ${TIMEOUT}s"
	else
		log "private Redis on $HOST:$port is not running"
	fi
	rm -f "$pidfile"
}

stop_private_pg() {
	local port=$1 pgdata=$2 bindir=$3
	if [[ ! -x $bindir/pg_ctl ]]; then bindir=$(find_pg_bindir); fi
	if [[ -f $pgdata/postmaster.pid ]] && as_pg "$bindir/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
		log "stopping private PostgreSQL on $HOST:$port (data: $pgdata)"
		as_pg "$bindir/pg_ctl" -D "$pgdata" -m fast -w -t "$TIMEOUT" stop >/dev/null 2>&1 ||
			die "pg_ctl stop failed for $pgdata"
	else
		log "private PostgreSQL in $pgdata is not running"
	fi
}

stop_debian_cluster() {
	local port=$1 ver=$2 name=$3 status
	status=$(pg_lsclusters -h 2>/dev/null | awk -v v="$ver" -v n="$name" '$1 == v && $2 == n { print $4 }')
	if [[ $status == online* ]]; then
		log "stopping Debian cluster $ver/$name (port $port)"
		pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" stop >&2 || die "pg_ctlcluster $ver $name stop failed"
	else
		log "Debian cluster $ver/$name is not running"
	fi
}

cmd_down() {
	lock
	if [[ ! -s $STATE ]]; then
		log "nothing was started by devenv.sh; leaving services alone"
		return 0
	fi
	local kind a b c
	# Read the whole record first: the stop functions rewrite it.
	local -a lines=()
	mapfile -t lines <"$STATE"
	for line in "${lines[@]}"; do
		[[ -n $line ]] || continue
		read -r kind a b c <<<"$line"
		case $kind in
		redis) stop_redis "$a" "$b" ;;
		pg-private) stop_private_pg "$a" "$b" "$c" ;;
		pg-debian) stop_debian_cluster "$a" "$b" "$c" ;;
		*) log "ignoring unknown record: $line" ;;
		esac
		state_del "$line"
	done
	[[ -s $STATE ]] || rm -f "$STATE"
}

# ----------------------------------------------------------------- others ---

cmd_up() {
	lock
	pg_up
	redis_up
	print_env
}

cmd_status() {
	if command -v pg_isready >/dev/null 2>&1 && pg_ok; then
		log "PostgreSQL: answers on $HOST:$PG_PORT"
	else
		log "PostgreSQL: not answering on $HOST:$PG_PORT"
	fi
	if redis_ping; then log "Redis: answers on $HOST:$REDIS_PORT"; else log "Redis: not answering on $HOST:$REDIS_PORT"; fi
	if [[ -s $STATE ]]; then
		log "started by devenv.sh ($STATE):"
		sed 's/^/[devenv]   /' "$STATE" >&2
	else
		log "started by devenv.sh: nothing"
	fi
}

cmd_createdb() {
	local name=${1:-}
	[[ -n $name ]] || die "usage: $0 createdb NAME"
	[[ $name =~ ^[A-Za-z_][A-Za-z0-9_-]{0,62}$ ]] || die "invalid database name '$name' (use letters, digits, _ and -)"
	command -v psql >/dev/null 2>&1 || die "psql not found; run '$0 up' first"
	pg_ok || die "PostgreSQL does not answer on $HOST:$PG_PORT as postgres; run '$0 up' first"
	local psql=(psql -w -X -q -t -A -v ON_ERROR_STOP=1 -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -v "name=$name")
	local exists
	exists=$("${psql[@]}" <<<"SELECT 1 FROM pg_database WHERE datname = :'name'") || die "query on $HOST:$PG_PORT failed"
	if [[ $exists != 1 ]]; then
		local out
		if ! out=$("${psql[@]}" <<<"SELECT format('CREATE DATABASE %I OWNER postgres', :'name') \\gexec" 2>&1); then
			# Lost a race with a concurrent createdb? Then it exists now.
			exists=$("${psql[@]}" <<<"SELECT 1 FROM pg_database WHERE datname = :'name'") || true
			[[ $exists == 1 ]] || { printf '%s\n' "$out" >&2; die "CREATE DATABASE $name failed"; }
		else
			log "created database $name"
		fi
	else
		log "database $name already exists"
	fi
	pg_url "$name"
	echo
}

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit "${1:-2}"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
env) print_env ;;
status) cmd_status ;;
createdb) shift; cmd_createdb "$@" ;;
-h | --help | help) usage 0 ;;
*) usage 2 ;;
esac
