#!/usr/bin/env bash
# requires: openssl nc
# Webhooks: Standard Webhooks signatures an independent verifier accepts (and
# rejects when tampered with), secret rotation, retries on 500/429/timeouts on
# a compressed schedule honouring Retry-After, 410 disables until reload,
# other 4xx end the delivery.
. "$top_srcdir/tests/integration/lib/lib.sh"
# Per-id polling is what this test is about: the list sweep (tested in sweep_v1) is off.
export SWEEP=no
VERIFY="$top_srcdir/tests/integration/lib/verify-webhook.sh"
S1=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
S2=whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA==

start_sim
# A receiver that takes the request and never answers (until the test ends it): a slow receiver
# for as long as the test needs one.
HOLD_PORT=$(free_port)
printf '%s %s\n' "$S1" "$S2" >"$T/secret"; chmod 600 "$T/secret"
write_conf "
[hook pipeline]
type = webhook
url = $SIM_URL/_sim/sink/pipeline
secret_file = $T/secret
on = embed_job.complete embed_job.failed
timeout = 700ms
retry = 300ms 600ms 900ms
max_attempts = 4
[hook hold]
type = webhook
url = http://127.0.0.1:$HOLD_PORT/held
on = embed_job.complete
batch = held
timeout = 10m
max_attempts = 1
"
start_daemon
job() { sim POST /_sim/jobs "{\"id\":\"$1\",\"timeline\":[{\"status\":\"processing\",\"at\":0},{\"status\":\"${2:-complete}\",\"at\":0.2}]}" >/dev/null; }
sink() { sim GET /_sim/sink | jq -c --arg j "$1" '[.deliveries[] | select((.body|fromjson|.data.job_id) == $j)]'; }

job w1
ctl watch w1 >/dev/null
wait_until sim_jq /_sim/sink '.deliveries|length >= 1' || fail "no webhook delivery"
d=$(sink w1 | jq -c '.[0]')
id=$(echo "$d" | jq -r '.headers["webhook-id"]'); ts=$(echo "$d" | jq -r '.headers["webhook-timestamp"]')
sig=$(echo "$d" | jq -r '.headers["webhook-signature"]')
echo "$d" | jq -j .body >"$T/body"
[ "$(jq -r .id "$T/body")" = "$id" ] || fail "webhook-id is not the event id"
echo "$d" | jq -e '.headers["Content-Type"] == "application/json" and .path == "/_sim/sink/pipeline"' >/dev/null || fail "headers: $d"
[ "$(echo "$sig" | wc -w)" = 2 ] || fail "expected two signatures during rotation: $sig"
"$VERIFY" "$S1" "$id" "$ts" "$sig" "$T/body" || fail "verifier rejects with the first secret"
"$VERIFY" "$S2" "$id" "$ts" "$sig" "$T/body" || fail "verifier rejects with the second secret"
! "$VERIFY" whsec_c2VjcmV0LW5vdC11c2Vk "$id" "$ts" "$sig" "$T/body" || fail "verifier accepts an unknown secret"
sed 's/complete/c0mplete/' "$T/body" >"$T/body.bad"
! "$VERIFY" "$S1" "$id" "$ts" "$sig" "$T/body.bad" || fail "verifier accepts an altered body"
! "$VERIFY" "$S1" "$id" "$((ts + 1))" "$sig" "$T/body" || fail "verifier accepts an altered timestamp"
! "$VERIFY" "$S1" "$id" "$ts" "$sig" "$T/body" "$((ts + 3600))" || fail "verifier accepts a stale timestamp"
ok "signed delivery: the verifier accepts both rotated secrets; rejects altered body, timestamp, stale or unknown secret"

# Retries on 500 with a fresh timestamp each attempt.
job w2
sim POST /_sim/faults '{"kind":"status","status":500,"target":"sink","count":2}' >/dev/null
ctl watch w2 >/dev/null
wait_until sim_jq /_sim/sink '[.deliveries[] | select((.body|fromjson|.data.job_id) == "w2")] | length == 3' || fail "500: not 3 attempts: $(sink w2 | jq -c 'map(.status)')"
sink w2 | jq -e 'map(.status) == [500,500,200] and (map(.headers["webhook-id"]) | unique | length) == 1' >/dev/null || fail "500 retries: $(sink w2 | jq -c 'map(.status)')"
gaps=$(sink w2 | jq -r '[.[].t_ms] | [.[1]-.[0], .[2]-.[1]] | @tsv')
set -- $gaps
[ "$1" -ge 250 ] && [ "$2" -ge 500 ] || fail "500: retry gaps $gaps"
ok "500: retried on the schedule ($gaps ms), same webhook-id, delivered"

# 429 with Retry-After: the next attempt waits for it.
job w3
sim POST /_sim/faults '{"kind":"status","status":429,"retry_after":"2","target":"sink","count":1}' >/dev/null
ctl watch w3 >/dev/null
wait_until sim_jq /_sim/sink '[.deliveries[] | select((.body|fromjson|.data.job_id) == "w3")] | length == 2' || fail "429 not retried"
g=$(sink w3 | jq '.[1].t_ms - .[0].t_ms')
[ "$g" -ge 1900 ] || fail "429: retried after $g ms despite Retry-After: 2"
ok "429: Retry-After honoured ($g ms)"

# Timeout: a receiver slower than the hook timeout is retried.
job w4
sim POST /_sim/faults '{"kind":"delay","delay":1.5,"target":"sink","count":1}' >/dev/null
ctl watch w4 >/dev/null
wait_until grep -q "hook pipeline delivered evt_.* (embed_job.complete w4)" "$T/daemon.log" || fail "timeout not retried"
grep -q "hook pipeline failed on evt_.*Operation timed out\|hook pipeline failed on evt_.*[Tt]imeout" "$T/daemon.log" || fail "timeout not logged"
ok "timeout: retried and delivered"

# Other 4xx: dead after one attempt.
job w5 failed
sim POST /_sim/faults '{"kind":"status","status":400,"target":"sink","count":1}' >/dev/null
ctl watch w5 >/dev/null
wait_until sh -c "\"$CTL\" -s \"$T/ctl.sock\" deliveries --state dead --json | jq -e '.deliveries[] | select(.hook == \"pipeline\" and .attempts == 1 and .last_error == \"HTTP 400\")'" \
	|| fail "400 not dead after one attempt"
ok "400: dead after the first attempt, logged with the status"

# 410: the endpoint is disabled until reload; its deliveries wait, then go out.
job w6
job w7
sim POST /_sim/faults '{"kind":"status","status":410,"target":"sink","count":1}' >/dev/null
ctl watch w6 >/dev/null
wait_until grep -q "answered 410 Gone" "$T/daemon.log" || fail "410 not logged"
ctl watch w7 >/dev/null
# w7's event went to the exec hook: dispatched, and the disabled webhook held it back.
wait_until grep -q ' embed_job.complete w7 ' "$T/hooks/events" || fail "w7 not delivered to the exec hook"
[ "$(sink w7 | jq length)" = 0 ] || fail "disabled hook still delivering"
ctl deliveries --state pending --json | jq -e '[.deliveries[] | select(.hook == "pipeline")] | length == 2' >/dev/null || fail "deliveries of a disabled hook not pending"
kill -HUP "$DAEMON_PID"
wait_until sim_jq /_sim/sink '[.deliveries[] | select(.status == 200 and ((.body|fromjson|.data.job_id) | IN("w6","w7")))] | length == 2' \
	|| fail "not delivered after reload"
ok "410: hook disabled until reload, nothing lost"

# A slow receiver does not delay polling: deliveries share the curl multi, never block it. While
# the receiver holds slowrx's webhook, another job is polled twice more.
nc -l 127.0.0.1 "$HOLD_PORT" </dev/null >"$T/held.req" 2>&1 &
hold_pid=$!
PIDS+=("$hold_pid")
sim POST /_sim/jobs '{"jobs":[{"id":"slowrx","timeline":[{"status":"processing","at":0},{"status":"complete","at":0.1}]},
 {"id":"steady","timeline":[{"status":"processing","at":0}]}]}' >/dev/null
ctl watch steady >/dev/null
ctl watch --batch held slowrx >/dev/null
wait_until grep -q '^POST /held ' "$T/held.req" || fail "the webhook never reached the receiver"
steady() { sim GET /_sim/stats | jq '.jobs.steady.requests'; }
p0=$(steady)
wait_until sim_jq /_sim/stats ".jobs.steady.requests >= $((p0 + 2))" \
	|| fail "polls stalled behind a slow receiver ($p0 -> $(steady))"
alive "$hold_pid" || fail "the receiver let go: the check proves nothing"
kill "$hold_pid"
ctl unwatch steady >/dev/null
ok "a receiver that does not answer does not delay polls (another job polled $p0 -> $(steady) meanwhile)"

# A reload whose secret file went bad is rejected whole: the old secrets keep signing.
chmod 644 "$T/secret"
kill -HUP "$DAEMON_PID"
wait_until grep -q "reload rejected, keeping the running configuration: webhook pipeline" "$T/daemon.log" || fail "bad secret on reload not rejected"
chmod 600 "$T/secret"
job w8
ctl watch w8 >/dev/null
wait_until sim_jq /_sim/sink '[.deliveries[] | select(.status == 200 and (.body|fromjson|.data.job_id) == "w8")] | length == 1' || fail "w8 not delivered"
d=$(sink w8 | jq -c '.[0]'); echo "$d" | jq -j .body >"$T/body8"
"$VERIFY" "$S1" "$(echo "$d" | jq -r '.headers["webhook-id"]')" "$(echo "$d" | jq -r '.headers["webhook-timestamp"]')" \
	"$(echo "$d" | jq -r '.headers["webhook-signature"]')" "$T/body8" || fail "not signed after a rejected reload"
ok "a reload with an unreadable secret is rejected whole; the hook keeps signing with the old secrets"

# Rotation done: the file now holds only the new secret; after a reload deliveries are signed with it alone.
printf '%s\n' "$S2" >"$T/secret"
kill -HUP "$DAEMON_PID"
wait_until sh -c "[ \$(grep -c 'reloaded:' '$T/daemon.log') -ge 2 ]" || fail "rotation reload"
job w9
ctl watch w9 >/dev/null
wait_until sim_jq /_sim/sink '[.deliveries[] | select(.status == 200 and (.body|fromjson|.data.job_id) == "w9")] | length == 1' || fail "w9 not delivered"
d=$(sink w9 | jq -c '.[0]'); echo "$d" | jq -j .body >"$T/body9"
set -- "$(echo "$d" | jq -r '.headers["webhook-id"]')" "$(echo "$d" | jq -r '.headers["webhook-timestamp"]')" "$(echo "$d" | jq -r '.headers["webhook-signature"]')"
[ "$(echo "$3" | wc -w)" = 1 ] || fail "still two signatures after the rotation: $3"
"$VERIFY" "$S2" "$1" "$2" "$3" "$T/body9" || fail "new secret not used after reload"
! "$VERIFY" "$S1" "$1" "$2" "$3" "$T/body9" || fail "old secret still signs after reload"
ok "reload re-reads the secrets: after the rotation only the new secret signs"
stop_daemon

# A secret file others can read is refused at start.
chmod 644 "$T/secret"
rc=0; CO_API_KEY=$TOKEN "$DAEMON" -c "$T/ew.conf" 2>"$T/err" || rc=$?
[ $rc = 1 ] && grep -q "readable by group or others" "$T/err" || fail "world-readable secret: rc=$rc $(cat "$T/err")"
! grep -q "MfKQ9r8" "$T/err" "$T/daemon.log" || fail "secret in the log"
ok "a world-readable secret file is refused; secrets never logged"
