#!/usr/bin/env bash
# requires: pg openssl
# The shared state over TLS: a real PostgreSQL server on a loopback TCP port
# that takes TLS only, its certificate signed by a CA made here. With
# sslmode=verify-full and sslrootcert the daemon connects, watches, delivers;
# the server reports its connections as TLS. A CA that did not sign the
# server's certificate, and a host name the certificate does not name, are
# refused at start with the cause in the log (and never the password).
. "$top_srcdir/tests/integration/lib/lib.sh"
. "$top_srcdir/tests/integration/lib/pg.sh"
PG_TLS=1 pg_start

start_sim
sim POST /_sim/jobs '{"jobs":[
 {"id":"tls-1","timeline":[{"status":"processing","at":0},{"status":"complete","at":0.5}]},
 {"id":"tls-2","timeline":[{"status":"processing","at":0},{"status":"failed","at":0.5}]},
 {"id":"tls-3","timeline":[{"status":"processing","at":0},{"status":"complete","at":1}]}]}' >/dev/null
tls_url() {   # tls_url HOST CA
	echo "postgresql://embedwatch@$1:$PG_TLS_PORT/postgres?sslmode=verify-full&sslrootcert=$2"
}
LOG_LEVEL=debug PG_URL=$(tls_url localhost "$PG_DIR/ca.crt") write_conf
grep -q "^state_url = postgresql://embedwatch@localhost:$PG_TLS_PORT/" "$T/ew.conf" || fail "state_url not written: $(grep state_url "$T/ew.conf")"
start_daemon
wait_until sh -c "[ \"\$('$CTL' -s '$T/ctl.sock' --json status | jq -r .status.role)\" = active ]" || fail "not active over TLS"
ctl watch tls-1 tls-2 tls-3 >/dev/null
wait_until hook_has_ids 3 ' embed_job\.\(complete\|failed\) ' || fail "terminal events over the TLS state: $(hook_lines)"
wait_until deliveries_idle || fail "deliveries pending"
n=$(psql_q "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
	WHERE s.ssl AND a.client_addr = '127.0.0.1' AND a.usename = 'embedwatch'")
[ "$n" -ge 1 ] || fail "the server sees no TLS connection from the daemon"
plain=$(psql_q "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
	WHERE NOT s.ssl AND a.client_addr IS NOT NULL")
[ "$plain" = 0 ] || fail "$plain TCP connections without TLS"
[ "$(psql_q "SELECT count(*) FROM jobs WHERE id LIKE 'tls-%'")" = 3 ] || fail "the jobs are not in the shared state"
ok "sslmode=verify-full with sslrootcert: the daemon's $n connections are TLS, 3 jobs watched to their end"

# The server restarted: the daemon connects again, looking "localhost" up off the loop and still
# checking the certificate against that name, and goes on.
pg_stop fast
pg_start
wait_until grep -q 'state database: main connection made again' "$T/daemon.log" || fail "no reconnect after the server restarted"
grep -q 'addresses of 1 hosts, looked up off the loop' "$T/daemon.log" || fail "the host name was not looked up off the loop"
sim POST /_sim/jobs '{"jobs":[{"id":"tls-4","timeline":[{"status":"processing","at":0},{"status":"complete","at":0.5}]}]}' >/dev/null
wait_until sh -c "'$CTL' -s '$T/ctl.sock' watch tls-4 >/dev/null" || fail "watch after the reconnect"
wait_until hook_has_ids 4 ' embed_job\.\(complete\|failed\) ' || fail "tls-4 not delivered after the reconnect"
n=$(psql_q "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
	WHERE s.ssl AND a.client_addr = '127.0.0.1' AND a.usename = 'embedwatch'")
[ "$n" -ge 1 ] || fail "the new connection is not TLS"
stop_daemon
ok "the server restarted: connected again over TLS by name (looked up off the loop), a new job watched to its end"

# refused HOST CA WHAT: the daemon exits non-zero at start, its log says WHAT (a regex), and holds no password.
refused() {
	local url
	url=$(tls_url "$1" "$2")
	sed -i "s|^state_url = .*|state_url = ${url//&/\\&}|" "$T/ew.conf"
	: >"$T/refused.log"
	local rc=0
	CO_API_KEY="$TOKEN" ${EW_WRAPPER:-} "$DAEMON" -c "$T/ew.conf" >"$T/refused.log" 2>&1 || rc=$?
	[ $rc != 0 ] || fail "$1 with $2: the daemon started"
	grep -Eqi "$3" "$T/refused.log" || fail "$1 with $2: the log does not say '$3': $(cat "$T/refused.log")"
	! grep -qF "$PG_PASSWORD" "$T/refused.log" || fail "the password is in the log"
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$T/other-ca.key" -out "$T/other-ca.crt" \
	-days 30 -subj "/CN=another CA" -addext basicConstraints=critical,CA:TRUE 2>/dev/null || fail "other CA"
refused localhost "$T/other-ca.crt" 'certificate verify failed'
refused 127.0.0.1 "$PG_DIR/ca.crt" 'does not match host name'
ok "a CA that did not sign the server's certificate, and a host it does not name: refused at start, the cause in the log"
! grep -qF "$PG_PASSWORD" "$T/daemon.log" || fail "the password is in the log"
