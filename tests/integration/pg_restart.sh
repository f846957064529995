#!/usr/bin/env bash
# requires: pg
# PostgreSQL restarted mid-run (stopped, then started again): the daemon's
# commits fail while it is down and are retried with backoff; it reconnects
# in the background; nothing is lost: every terminal event is delivered, one
# event id per job, batch.done after them. The loop never waited meanwhile:
# the control socket answers while the server is down. The URL lists two
# hosts, the first a loopback port nothing listens on: each reconnect moves
# on to the second, and what the log says of the lost connection is libpq's
# message.
. "$top_srcdir/tests/integration/lib/lib.sh"
. "$top_srcdir/tests/integration/lib/pg.sh"
pg_start
JOBS=90

start_sim
jq -cn --argjson n "$JOBS" '{jobs: [range($n) as $i | {id: ("rs" + ($i|tostring)),
  timeline: [{status:"processing",at:0}, {status: (["complete","failed","cancelled"][$i % 3]), at: (0.5 + ($i % 45) * 0.2)}]}]}' \
	| sim POST /_sim/jobs "$(cat)" | jq -e ".created == $JOBS" >/dev/null || fail "create jobs"
LEASE_TTL=10s LEASE_RENEW=2s RATE=500/s BURST=50 INTERVAL_MIN=100ms INTERVAL_MAX=400ms write_conf
node_conf a
# First a host that refuses (nothing listens there), then the server's socket.
sed -i "s|^state_url = .*|state_url = postgresql://embedwatch@/postgres?host=127.0.0.1,$PG_DIR\&port=$(free_port),$PG_PORT|" "$T/a.conf"
start_node a
wait_until node_is a active || fail "a is not active"
seq 0 $((JOBS - 1)) | sed 's/^/rs/' | nctl a watch --batch rs - >/dev/null

commit_failures() { nctl a metrics | awk '$1 == "embedwatch_commit_failures_total" {print $2}'; }
wait_until ha_has_ids 15 ' embed_job\.' || fail "first events"
pg_stop fast
# Jobs keep ending: the next commit fails (the daemon says so) and is retried.
wait_until sh -c "'$CTL' -s '$T/a.sock' metrics | awk '\$1 == \"embedwatch_commit_failures_total\" && \$2 > 0 {f=1} END {exit !f}'" ||
	fail "no commit failed while PostgreSQL was down"
nctl a --json status | jq -e '.status.state_db_ok == false' >/dev/null || fail "status does not say the state is not writable"
pg_start
wait_until grep -q 'state database writable again' "$T/a.log" || fail "the commits did not succeed again"
grep -q 'connection made again' "$T/a.log" || fail "no reconnect through the second host: $(grep 'state database' "$T/a.log" | tail -3)"
grep 'connection lost' "$T/a.log" | grep -qv 'bad file descriptor' || fail "the lost connection's message: $(grep 'connection lost' "$T/a.log" | head -1)"
ok "reconnected past the refusing first host; the log says: $(grep -m1 'connection lost' "$T/a.log" | sed 's/^<[0-9]>//')"
wait_until grep -q ' batch.done ' "$HA_LOG" || fail "batch.done not delivered"
wait_until node_pending0 a || fail "deliveries pending"
failures=$(commit_failures)

term=$(ha_terminal)
jobs_seen=$(echo "$term" | awk '{print $3}' | sort -u | wc -l)
[ "$jobs_seen" = "$JOBS" ] || fail "terminal events delivered for $jobs_seen of $JOBS jobs"
ids_per_job=$(echo "$term" | sort -u | awk '{print $3}' | uniq -d | wc -l)
[ "$ids_per_job" = 0 ] || fail "$ids_per_job jobs got two different terminal event ids"
first_done=$(grep -n ' batch.done ' "$HA_LOG" | head -n 1 | cut -d: -f1)
last_member=$(grep -n ' embed_job\.' "$HA_LOG" | tail -n 1 | cut -d: -f1)
[ "$last_member" -lt "$first_done" ] || fail "a member event was delivered after batch.done"
[ "$(psql_q "SELECT count(*) FROM deliveries WHERE state <> 'done'")" = 0 ] || fail "deliveries not done in the state"
node_is a active || fail "a is not active after the restart"
kill -TERM "$(node_pid a)"
rc=0
wait "$(node_pid a)" || rc=$?
[ $rc = 0 ] || fail "daemon exited with status $rc"
ok "PostgreSQL restarted mid-run: $failures commits failed and were retried; all $JOBS terminal events delivered once each"
