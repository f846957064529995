#!/usr/bin/env bash
# requires: pg nc
# v2 batch jobs on the shared PostgreSQL state: watched through the standby
# (--kind batch-job, written to the shared state, applied by the active),
# listed and shown by the standby with their kind and records, counted by
# kind in its status and metrics; a watch as the other kind or no kind
# refused by the standby; cancel and unwatch through the standby; the
# standby's READY=1 and STATUS=; the active killed (-9) mid-run: the standby
# takes over (takeovers, embedwatch_leader, the old one a standby naming it)
# and every batch job's terminal batch_job.* event is delivered with one
# event id per job, batch.done last.
. "$top_srcdir/tests/integration/lib/lib.sh"
. "$top_srcdir/tests/integration/lib/pg.sh"
pg_start
JOBS=30

start_sim
jq -cn --argjson n "$JOBS" '{batches: [range($n) as $i | {id: ("hb" + ($i|tostring)), num_records: 10,
  timeline: [{status:"BATCH_STATUS_IN_PROGRESS",at:0,successful:4},
             {status: (["BATCH_STATUS_COMPLETED","BATCH_STATUS_FAILED","BATCH_STATUS_CANCELED"][$i % 3]),
              at: (1 + ($i % 15) * 0.5), successful:10}]}]}' \
	| sim POST /_sim/batches "$(cat)" >/dev/null || fail "create batches"
sim POST /_sim/batches '{"batches":[{"id":"hbx","timeline":[{"status":"BATCH_STATUS_IN_PROGRESS","at":0}]},
 {"id":"hby","timeline":[{"status":"BATCH_STATUS_IN_PROGRESS","at":0}]}]}' >/dev/null || fail "create hbx, hby"
LEASE_TTL=4s LEASE_RENEW=1s RATE=500/s BURST=50 INTERVAL_MIN=100ms INTERVAL_MAX=400ms write_conf
node_conf a
node_conf b
start_node a
wait_until node_is a active || fail "a is not active"
# The standby tells systemd it is ready too, and says its role in STATUS=.
"$top_builddir/tests/notify-recv" "$T/notify-b.sock" >"$T/notify-b.out" 2>&1 &
PIDS+=($!)
wait_until test -S "$T/notify-b.sock" || fail "notify receiver"
export NOTIFY_SOCKET="$T/notify-b.sock"
start_node b
unset NOTIFY_SOCKET
node_is b standby || fail "b is not standby: $(node_role b)"
wait_until grep -q '^READY=1' "$T/notify-b.out" || fail "the standby sent no READY=1"
wait_until grep -q "^STATUS=standby; the active is .* pid $(node_pid a) " "$T/notify-b.out" ||
	fail "the standby's STATUS=: $(grep STATUS= "$T/notify-b.out" | tail -2)"
ok "the standby sent READY=1 and STATUS= naming its role and the active's pid"

seq 0 $((JOBS - 1)) | sed 's/^/hb/' | nctl b --json watch --kind batch-job --batch v2ha - >"$T/watch.json" 2>"$T/watch.err"
jq -e ".added == $JOBS" "$T/watch.json" >/dev/null || fail "watch --kind batch-job through the standby: $(cat "$T/watch.json")"
listed() { [ "$(nctl b --json list --kind batch-job | jq '[.[] | select(.kind == "batch-job")] | length')" = "$JOBS" ]; }
wait_until listed || fail "the standby lists $(nctl b --json list --kind batch-job | jq length) batch jobs, not $JOBS"
[ "$(nctl b --json list --kind embed-job | jq length)" = 0 ] || fail "the standby lists batch jobs as embed jobs"
ok "$JOBS batch jobs watched through the standby; the standby lists them with their kind"

# The standby's status and metrics count them by kind, from the shared state.
nctl b --json status | jq -e ".status.by_kind[\"batch-job\"] == $JOBS and .status.by_kind[\"embed-job\"] == 0" >/dev/null ||
	fail "the standby's status by kind: $(nctl b --json status | jq -c .status.by_kind)"
mb=$(nctl b metrics)
grep -qx "embedwatch_jobs_by_kind{kind=\"batch-job\"} $JOBS" <<<"$mb" || fail "the standby's metrics: $(grep by_kind <<<"$mb")"
grep -qx 'embedwatch_leader 0' <<<"$mb" || fail "the standby's embedwatch_leader is not 0"
nctl a metrics | grep -qx 'embedwatch_leader 1' || fail "the active's embedwatch_leader is not 1"
# Through the standby as the other kind, or as no kind at all: refused, as the active would.
nctl b --json watch hb1 >"$T/other.json" 2>/dev/null || true
jq -e '.added == 0 and (.rejected[0].error | test("already watched as batch-job"))' "$T/other.json" >/dev/null ||
	fail "watch as the other kind through the standby: $(cat "$T/other.json")"
r=$(printf '{"cmd":"watch","ids":["zz"],"kind":"v3"}\n' | nc -U -q 2 "$T/b.sock" | head -n 1)
jq -e '.ok == false and (.error | test("embed-job or batch-job"))' <<<"$r" >/dev/null || fail "kind v3 through the standby: $r"
ok "the standby's status and metrics count the kinds from the shared state; the other kind and a bad kind refused"

# Cancel and unwatch through the standby, applied by the active.
nctl b --json watch --kind batch-job hbx hby | jq -e '.added == 2' >/dev/null || fail "watch hbx hby through the standby"
wait_until sh -c "'$CTL' -s '$T/a.sock' --json list --kind batch-job | jq -e 'map(select(.id == \"hbx\" and .status == \"processing\")) | length == 1'" ||
	fail "hbx not observed by the active"
nctl b --json cancel hbx | jq -e '.forwarded and .queued == 1' >/dev/null || fail "cancel through the standby"
wait_until grep -q ' batch_job.cancelled hbx ' "$HA_LOG" || fail "hbx: no batch_job.cancelled after a cancel through the standby"
r=$(printf '{"cmd":"unwatch","ids":["hby"]}\n' | nc -U -q 2 "$T/b.sock" | head -n 1)
jq -e '.ok and .forwarded and .removed == 1' <<<"$r" >/dev/null || fail "unwatch through the standby: $r"
gone() { ! nctl b --json list --kind batch-job | jq -e 'map(select(.id == "hby")) | length > 0' >/dev/null; }
wait_until gone || fail "hby still watched after an unwatch through the standby"
ok "cancel and unwatch through the standby: applied by the active (batch_job.cancelled, the job gone)"

# ha_v2_terminal: "EVENT_ID EVENT JOB" of every terminal event of the batch v2ha the hooks ran (repeats included).
ha_v2_terminal() { awk '$7 == "v2ha" && $4 ~ /^batch_job\.(complete|failed|cancelled)$/ {print $3, $4, $5}' "$HA_LOG"; }
wait_until ha_has_ids 8 ' batch_job\.\(complete\|failed\|cancelled\) ' || fail "events before the kill"
kill -KILL "$(node_pid a)"
wait "$(node_pid a)" 2>/dev/null || true
wait_until node_is b active || fail "b did not take over"
start_node a
node_is a standby || wait_until node_is a standby || fail "a did not come back as a standby"
nctl b metrics | grep -qx 'embedwatch_takeovers_total 1' || fail "b's takeovers: $(nctl b metrics | grep takeovers)"
nctl b metrics | grep -qx 'embedwatch_leader 1' || fail "b's embedwatch_leader after the takeover is not 1"
nctl a --json status | jq -e ".status.role == \"standby\" and .status.active.pid == $(node_pid b) and
	(.status.lease_age_ms | type) == \"number\" and .status.lease_epoch >= 2" >/dev/null ||
	fail "a's status after the takeover: $(nctl a --json status | jq -c '.status | {role, active, lease_age_ms, lease_epoch}')"
ok "the active killed mid-run; b took over (takeovers 1, leader 1), a came back as a standby naming b, with the lease's age"

wait_until grep -q ' batch.done ' "$HA_LOG" || fail "batch.done not delivered"
wait_until node_pending0 b || fail "deliveries pending"
term=$(ha_v2_terminal)
jobs_seen=$(echo "$term" | awk '{print $3}' | sort -u | wc -l)
[ "$jobs_seen" = "$JOBS" ] || fail "terminal events delivered for $jobs_seen of $JOBS batch jobs"
ids_per_job=$(echo "$term" | sort -u | awk '{print $3}' | uniq -d | wc -l)
[ "$ids_per_job" = 0 ] || fail "$ids_per_job batch jobs got two different terminal event ids"
bad=$(echo "$term" | awk '{ n = substr($3, 3) + 0; want = (n % 3 == 0) ? "complete" : (n % 3 == 1) ? "failed" : "cancelled";
	if ($2 != "batch_job." want) print }' | wc -l)
[ "$bad" = 0 ] || fail "$bad wrong outcomes: $(echo "$term" | head -5)"
# batch.done started after every member's terminal event.
last_member=$(awk '$7 == "v2ha" && $4 ~ /^batch_job\.(complete|failed|cancelled)$/ {print $1}' "$HA_LOG" | sort -n | tail -1)
done_at=$(awk '$4 == "batch.done" {print $1}' "$HA_LOG" | sort -n | head -1)
[ "$done_at" -gt "$last_member" ] || fail "batch.done started before a member's terminal event"
# The standby shows an ended batch job from the shared state: its kind and records.
nctl a --json show hb0 >"$T/show.json" || fail "show through the standby: $(cat "$T/show.json")"
jq -e '.job | .kind == "batch-job" and .status == "complete" and .records.num_records == 10 and .records.num_successful_records == 10' \
	"$T/show.json" >/dev/null || fail "show through the standby: $(jq -c . "$T/show.json")"
# The standby's delivery log and batches, from the shared state.
r=$(printf '{"cmd":"deliveries","state":"done"}\n' | nc -U -q 2 "$T/a.sock" | head -n 1)
jq -e '.ok and ([.deliveries[] | select(.event == "batch.done" and .subject == "v2ha" and .state == "done")] | length) == 1' \
	<<<"$r" >/dev/null || fail "the standby's deliveries: $(jq -c '.deliveries | length' <<<"$r")"
nctl a --json batches | jq -e '[.batches[] | select(.name == "v2ha" and .done and .total == '"$JOBS"' and .ended == '"$JOBS"')] | length == 1' \
	>/dev/null || fail "the standby's batches: $(nctl a --json batches | jq -c .)"
ok "all $JOBS batch_job terminal events delivered, one id per job, batch.done last; the standby shows kind, records, deliveries and batches"
