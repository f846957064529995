# A real PostgreSQL server for the tests that share a state: a cluster in the
# test's temporary directory (a copy of the build's, which initdb made), run as
# a non-root user (nobody, when the suite runs as root), a Unix socket only
# (listen_addresses = ''), password authentication, started and stopped by
# the test and removed on exit with the rest of $T. Source after lib.sh;
# pg_start sets PG_URL and PG_PASSFILE. With PG_TLS=1 it also listens on a
# free loopback TCP port for TLS only (hostssl), its certificate for
# DNS:localhost signed by a CA made here ($PG_DIR/ca.crt); pg_start sets
# PG_TLS_PORT.
# shellcheck shell=bash

PG_DIR="$T/pg"
PG_PASSWORD=ew-test-$RANDOM$RANDOM
PG_RUNNING=0
PG_PORT=5432                # the Unix socket's name (.s.PGSQL.PORT); the TLS port with PG_TLS=1

# as_pg CMD...: runs CMD as the server's user (PostgreSQL refuses to run as root).
as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}

# pg_ctl_do ARGS...: pg_ctl on the test's cluster.
pg_ctl_do() { as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$T/pg-server.log" "$@"; }

# pg_template: the build's cluster, as initdb made it (tests/pg-template, removed by make clean),
# made once a build by the first test that needs it, under a lock; each test copies it (initdb
# costs 1.3 s of CPU, a copy 0.3). Sets PG_PASSWORD to its password. Needs $T passable (711).
pg_template() {
	local tpl="$top_builddir/tests/pg-template" fd
	if [ ! -e "$tpl/ready" ]; then
		exec {fd}>"$tpl.lock"
		flock "$fd"
		if [ ! -e "$tpl/ready" ]; then
			rm -rf "$tpl" "$tpl.new"
			mkdir "$T/pg-template"
			printf '%s\n' "$PG_PASSWORD" >"$T/pg-template/password"
			chmod 600 "$T/pg-template/password"
			if [ "$(id -u)" = 0 ]; then chown -R nobody "$T/pg-template"; fi
			as_pg "$PG_BIN/initdb" -D "$T/pg-template/data" -U embedwatch --pwfile="$T/pg-template/password" \
				--auth-local=scram-sha-256 --auth-host=reject -E UTF8 --no-sync >"$T/pg-template/initdb.log" 2>&1 \
				|| { cat "$T/pg-template/initdb.log" >&2; fail "initdb"; }
			cp -a "$T/pg-template" "$tpl.new" && : >"$tpl.new/ready" && mv "$tpl.new" "$tpl" || fail "the cluster template"
			rm -rf "$T/pg-template"
		fi
		exec {fd}>&-
	fi
	read -r PG_PASSWORD <"$tpl/password" || fail "the cluster template's password"
}

# pg_start: creates the cluster (once, a copy of the template) and starts the server; waits until
# it accepts connections.
pg_start() {
	if [ ! -d "$PG_DIR/data" ]; then
		# $T stays unreadable to others; the server's user may only pass through it to its own directory.
		chmod 711 "$T"
		pg_template
		mkdir -p "$PG_DIR"
		: >"$T/pg-server.log"
		# cp -a keeps the server's user as the owner, and the cluster's 0700.
		cp -a "$top_builddir/tests/pg-template/data" "$PG_DIR/data" || fail "copying the cluster"
		if [ "$(id -u)" = 0 ]; then chown nobody "$PG_DIR" "$T/pg-server.log"; fi
		cat >>"$PG_DIR/data/postgresql.conf" <<PGCONF
listen_addresses = ''
unix_socket_directories = '$PG_DIR'
fsync = off
full_page_writes = off
max_connections = 40
PGCONF
		[ "${PG_TLS:-0}" = 1 ] && pg_tls_setup
		# The daemon's password file: its own, mode 0600.
		PG_PASSFILE="$T/state-password"
		printf '%s\n' "$PG_PASSWORD" >"$PG_PASSFILE"
		chmod 600 "$PG_PASSFILE"
	fi
	pg_ctl_do -w -t "$EW_LIMIT" start >/dev/null || fail "PostgreSQL did not start"
	PG_RUNNING=1
	PG_URL="postgresql://embedwatch@/postgres?host=$PG_DIR&port=$PG_PORT"
	export PGPASSWORD=$PG_PASSWORD
	wait_until psql_q "SELECT 1" || fail "PostgreSQL does not answer"
}

# pg_tls_setup: a CA, the server's certificate (DNS:localhost only) and TLS-only TCP access (see above).
pg_tls_setup() {
	local d="$PG_DIR/data"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$PG_DIR/ca.key" \
		-out "$PG_DIR/ca.crt" -days 30 -subj "/CN=embedwatch test pg ca" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null || fail "pg ca"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$d/server.key" \
		-out "$d/server.crt" -days 30 -subj "/CN=localhost" -CA "$PG_DIR/ca.crt" -CAkey "$PG_DIR/ca.key" \
		-addext subjectAltName=DNS:localhost -addext basicConstraints=CA:FALSE 2>/dev/null || fail "pg server certificate"
	chmod 600 "$d/server.key"
	PG_TLS_PORT=$(free_port)
	PG_PORT=$PG_TLS_PORT
	cat >>"$d/postgresql.conf" <<PGCONF
listen_addresses = '127.0.0.1'
port = $PG_TLS_PORT
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
PGCONF
	# TLS or nothing over TCP: the first matching line wins.
	{ echo "hostssl all embedwatch 127.0.0.1/32 scram-sha-256"; echo "hostnossl all all 0.0.0.0/0 reject"; cat "$d/pg_hba.conf"; } \
		>"$d/pg_hba.new" && mv "$d/pg_hba.new" "$d/pg_hba.conf"
	if [ "$(id -u)" = 0 ]; then chown -R nobody "$PG_DIR"; fi
}

# pg_stop [MODE]: stops the server (fast by default; immediate is a crash).
pg_stop() {
	[ "$PG_RUNNING" = 1 ] || return 0
	pg_ctl_do -w -t "$EW_LIMIT" -m "${1:-fast}" stop >/dev/null 2>&1 || true
	PG_RUNNING=0
}

# psql_q SQL: one query against the test's database; prints the rows, unaligned.
psql_q() { psql -X -q -At -h "$PG_DIR" -p "$PG_PORT" -U embedwatch -d postgres -c "$1"; }

# The server goes with the test, whatever happens.
pg_cleanup() { pg_stop immediate; }
EW_CLEANUP_HOOKS+=(pg_cleanup)

# pg_conf: puts the shared state (the test's server) into $T/ew.conf; write_conf calls it when pg.sh is loaded.
pg_conf() {
	local url=${PG_URL//&/\\&}     # sed: "&" in the replacement is the match
	sed -i "s|^\[embedwatch\]|[embedwatch]\nstate_url = $url\nstate_password_file = $PG_PASSFILE\nlease_ttl = ${LEASE_TTL:-10s}\nlease_renew = ${LEASE_RENEW:-2s}|" "$T/ew.conf"
}

# ---- several daemons on the one state ----
HA_HOOK="$top_srcdir/tests/integration/lib/ha-hook.sh"
HA_LOG="$T/ha-hooks"

# node_conf NAME: $T/NAME.conf from $T/ew.conf: its own socket ($T/NAME.sock) and state_dir, and a
# recording hook that writes "START_NS NAME EVENT_ID EVENT JOB STATUS BATCH ATTEMPT" into $HA_LOG.
node_conf() {
	sed -e "s|^control_socket = .*|control_socket = $T/$1.sock|" -e "s|^state_dir = .*|state_dir = $T/state-$1|" \
	    -e "s|^command = $HOOK .*|command = $HA_HOOK $HA_LOG $1|" "$T/ew.conf" >"$T/$1.conf"
}

# start_node NAME: starts embedwatchd on $T/NAME.conf (log $T/NAME.log); sets NODE_PID_NAME; waits until it answers.
start_node() {
	CO_API_KEY="$TOKEN" ${EW_WRAPPER:-} "$DAEMON" -c "$T/$1.conf" >>"$T/$1.log" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	eval "NODE_PID_$1=$pid"
	wait_until answers_or_gone "$pid" "$T/$1.sock" && [ "$REPLY" = answers ] || fail "daemon $1 did not start"
}
node_pid() { eval "echo \$NODE_PID_$1"; }
# stop_nodes NAME...: SIGTERM to each, then asserts each exited 0 and closed its loop cleanly.
stop_nodes() {
	local n rc
	for n in "$@"; do
		kill -TERM "$(node_pid "$n")"
		rc=0
		wait "$(node_pid "$n")" || rc=$?
		[ $rc = 0 ] || fail "daemon $n exited with status $rc"
	done
	for n in "$@"; do
		! grep -q "event loop did not close cleanly" "$T/$n.log" || fail "daemon $n: event loop did not close cleanly"
	done
}
nctl() { local n=$1; shift; "$CTL" -s "$T/$n.sock" "$@"; }
# node_role NAME: active, standby or "taking over" (as its status says).
node_role() { node_is "$1" "" || echo "$REPLY"; }
# node_says NAME KEY VALUE: KEY in NAME's status --json is VALUE (REPLY: what it is). One
# process (the client), no JSON tool.
node_says() {
	local j
	REPLY=
	j=$(nctl "$1" --json status) && json_scalar "$2" "$j" && [ "$REPLY" = "$3" ]
}
# node_is NAME ROLE: NAME's status says ROLE (REPLY: the role it says).
node_is() { node_says "$1" role "$2"; }
# node_pending0 NAME: NAME's status says no delivery is pending.
node_pending0() { node_says "$1" deliveries_pending 0; }
# ha_ids [PATTERN]: distinct event ids the daemons' hooks ran, in lines matching PATTERN.
ha_ids() { bre_ere "${1:-.}" && ids_count "$HA_LOG" 3 "$REPLY" && echo "$REPLY"; }
ha_has_ids() { bre_ere "${2:-.}" && ids_count "$HA_LOG" 3 "$REPLY" && [ "$REPLY" -ge "$1" ]; }
# ha_terminal: "EVENT_ID EVENT JOB" of every terminal job event the hooks ran (repeats included).
ha_terminal() { awk '$4 ~ /^embed_job\.(complete|failed|cancelled)$/ {print $3, $4, $5}' "$HA_LOG"; }

# ---- a partition between a daemon and the server (tests/integration/lib/pgproxy.py) ----
# proxy_start NODE...: a proxy with a loopback TCP port per node, forwarding to the server's Unix
# socket (the server's pg_hba is not involved: it sees local connections); sets PROXY_PORT_NODE.
proxy_start() {
	PROXY_CTL="$T/pgproxy.sock"
	python3 "$top_srcdir/tests/integration/lib/pgproxy.py" --upstream "$PG_DIR/.s.PGSQL.$PG_PORT" --control "$PROXY_CTL" \
		--ports-file "$T/pgproxy.ports" --log "$T/pgproxy.log" "$@" 2>>"$T/pgproxy.log" &
	PIDS+=("$!")
	wait_until test -s "$T/pgproxy.ports" || fail "the proxy did not start"
	local n p
	while read -r n p; do eval "PROXY_PORT_$n=$p"; done <"$T/pgproxy.ports"
}
# proxy COMMAND NODE [ARG]: one command to the proxy (arm, freeze, heal, state, cuts, count: pgproxy.py); prints its answer.
proxy() {
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall((" ".join(sys.argv[2:]) + "\n").encode())
print(s.makefile().readline().strip())' "$PROXY_CTL" "$@"
}
# proxy_cut_more NODE N: NODE was cut more than N times (proxy count NODE before arming).
proxy_cut_more() { [ "$(proxy count "$1")" -gt "$2" ]; }
# node_via_proxy NAME: $T/NAME.conf reaches the server through the proxy's port for NAME.
node_via_proxy() {
	local port
	eval "port=\$PROXY_PORT_$1"
	sed -i "s|^state_url = .*|state_url = postgresql://embedwatch@127.0.0.1:$port/postgres?sslmode=disable|" "$T/$1.conf"
}
