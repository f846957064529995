#!/usr/bin/env bash
# requires: sqlite3
# The delivery log: finished deliveries are listed with --state/--hook/--since
# and kept delivery_retention, then pruned with the events they alone needed.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim
jq -cn '{jobs: [range(3) | {id: ("dl-" + tostring), timeline: [{status:"processing",at:0},{status:"complete",at:0.1}]}]}' \
	| sim POST /_sim/jobs "$(cat)" >/dev/null
# Kept an hour while the listing is checked (however long a loaded machine takes); then a
# reload shortens delivery_retention and the rows go.
write_conf "[embedwatch]
retention = 0s
[hooks]
delivery_retention = 1h"
# (the [embedwatch] and [hooks] keys above repeat sections write_conf opened: inih merges them)
start_daemon
ctl watch dl-0 dl-1 dl-2 >/dev/null

done_count() { ctl --json deliveries --state done "$@" | jq '.deliveries | length'; }
three_done() { [ "$(done_count)" = 3 ]; }
none_done() { [ "$(done_count)" = 0 ]; }
wait_until three_done || fail "three deliveries not done"
[ "$(done_count --hook record --since 1h)" = 3 ] || fail "--hook record --since 1h"
[ "$(done_count --hook nosuch)" = 0 ] || fail "--hook nosuch lists deliveries"
future=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
[ "$(done_count --since "$future")" = 0 ] || fail "--since a future time lists deliveries"
past=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%S+00:00)
[ "$(done_count --since "$past")" = 3 ] || fail "--since an RFC 3339 time with an offset"
err=$(ctl deliveries --since yesterday 2>&1) && fail "a bad --since was accepted"
case "$err" in *"since: expected a duration"*) ;; *) fail "bad --since: $err" ;; esac
ctl deliveries --state done | grep -q '^evt_.* embed_job.complete .* record .* done ' || fail "text listing"
ok "deliveries --state done with --hook and --since (duration, RFC 3339, refused garbage)"

# Past delivery_retention the rows go; jobs stay (retention = 0s keeps them forever).
sed -i 's/^delivery_retention = 1h$/delivery_retention = 1s/' "$T/ew.conf"
kill -HUP "$DAEMON_PID"
wait_until grep -q 'reloaded:' "$T/daemon.log" || fail "reload with delivery_retention = 1s not applied"
wait_until none_done || fail "finished deliveries not pruned after delivery_retention"
[ "$(ctl --json list | jq 'length')" = 3 ] || fail "jobs were pruned with retention = 0s"
stop_daemon
left=$(sqlite3 "$T/state/embedwatch.db" "SELECT count(*) FROM deliveries")
[ "$left" = 0 ] || fail "$left delivery rows left in the database"
ok "finished deliveries pruned after delivery_retention; jobs kept"
