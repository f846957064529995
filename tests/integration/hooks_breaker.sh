#!/usr/bin/env bash
# requires: none
# Delivery operations through the real daemon, against a receiver the test
# controls (the simulator's sink): every attempt failing for longer than
# disable_after disables the hook; hook.disabled reaches an exec ops hook;
# `hooks` shows it; its deliveries wait instead of dying; `redeliver --dead
# --hook` and `hooks enable` then deliver every event with its original
# webhook-id, batch.done last. A 410 disables a hook the same way.
. "$top_srcdir/tests/integration/lib/lib.sh"

OPS=$T/ops
mkdir -p "$OPS"
start_sim
# Wave 1 ends now; wave 2 runs until the test ends it, once disable_after has passed.
jq -cn '{jobs: ([range(4) | {id: ("w1-" + tostring), timeline: [{status:"processing",at:0},{status:"complete",at:0.3}]}] +
  [range(3) | {id: ("w2-" + tostring), timeline: [{status:"processing",at:0}]}])}' \
	| sim POST /_sim/jobs "$(cat)" >/dev/null
sim POST /_sim/faults '{"kind":"status","status":503,"target":"sink"}' >/dev/null
write_conf "[hook web]
type = webhook
url = $SIM_URL/_sim/sink/web
on = *
max_attempts = 2
retry = 100ms
disable_after = 2s
[hook ops]
type = exec
command = $HOOK $OPS
on = hook.disabled hook.enabled"
start_daemon
{ seq 0 3 | sed 's/^/w1-/'; seq 0 2 | sed 's/^/w2-/'; } | ctl watch --batch ops - >/dev/null

dead_web() { ctl --json deliveries --state dead --hook web | jq '.deliveries | length'; }
pending_web() { ctl --json deliveries --state pending --hook web | jq '.deliveries | length'; }
hook_state() { ctl --json hooks | jq -r --arg n "$1" '.hooks[] | select(.name == $n) | .state'; }
dead_at_least() { [ "$(dead_web)" -ge "$1" ]; }
pending_at_least() { [ "$(pending_web)" -ge "$1" ]; }
hook_is() { [ "$(hook_state "$1")" = "$2" ]; }
ops_disabled_ids() { awk '$2 == "hook.disabled" {print $1}' "$OPS/events" 2>/dev/null | sort -u | wc -l; }
ops_disabled_at_least() { [ "$(ops_disabled_ids)" -ge "$1" ]; }

# hook_ms FIELD: a time field of web in `hooks`, in ms since the epoch (null: 0).
hook_ms() {
	ctl --json hooks | jq --arg f "$1" '.hooks[] | select(.name == "web") | .[$f] // "" |
		if . == "" then 0 else ((.[0:19] + "Z" | fromdate) * 1000 + (.[20:23] | tonumber)) end'
}
# Wave 1 fails twice and dies while the breaker has not opened: its 8 failures take well under
# disable_after (about 0.1 s here, 2 s allowed for a loaded sanitizer run).
wait_until dead_at_least 4 || fail "wave 1 did not die"
span=$(( $(hook_ms last_error_at) - $(hook_ms failing_since) ))
[ "$(hook_state web)" = enabled ] || fail "web disabled too early (failing for $span ms, disable_after 2s)"
ok "4 deliveries dead after max_attempts ($span ms of failures), the hook still enabled"

# Wave 2 ends once disable_after has passed since the first failure (the daemon's clock is this
# machine's wall clock): its first failure opens the breaker.
failing_since=$(hook_ms failing_since)
past() { [ "$(now_ms)" -ge "$1" ]; }
wait_until past $((failing_since + 2000)) || fail "the clock did not pass disable_after"
jq -cn '{jobs: [range(3) | {id: ("w2-" + tostring), timeline: [{status:"processing",at:0},{status:"failed",at:0.1}]}]}' \
	| sim POST /_sim/jobs "$(cat)" >/dev/null
wait_until grep -q ' hook.disabled ' "$OPS/events" || fail "hook.disabled did not reach the ops hook"
[ "$(hook_state web)" = disabled ] || fail "hooks does not show web disabled"
ctl --json hooks | jq -e '.hooks[] | select(.name == "web") | (.why | test("disable_after")) and (.last_error | test("503"))
	and .dead == 4' >/dev/null || fail "hooks: $(ctl --json hooks)"
ctl hooks | grep -q '^web (webhook): disabled since ' || fail "hooks text: $(ctl hooks)"
ev=$(awk '$2 == "hook.disabled" {print $1}' "$OPS/events" | head -n 1)
jq -e '.type == "hook.disabled" and .data.hook == "web" and .data.hook_type == "webhook" and (.data.last_error | test("503"))
	and (.data.since | length) > 0 and (.data.deliveries_waiting >= 1)' "$OPS/payloads/$ev.ops.1" >/dev/null \
	|| fail "hook.disabled payload: $(cat "$OPS/payloads/$ev.ops.1")"
# The record hook (on = *) takes job events only: operational events are named explicitly.
! grep -q ' hook\.' "$T/hooks/events" || fail "on = * took an operational event"
ok "breaker: hook.disabled delivered to the ops hook (not to web, not to on = *); hooks shows why"

# While disabled, wave 2's member events and batch.done wait: none dies, none is attempted.
wait_until pending_at_least 4 || fail "wave 2 not pending"
attempts_before=$(sim GET /_sim/sink | jq '.deliveries | length')
[ "$(dead_web)" = 4 ] || fail "a delivery died while the hook was disabled"

# Replay the dead ones while disabled (they take their place before batch.done), then enable.
out=$(ctl redeliver --dead --hook web)
[ "$out" = "queued 4 deliveries" ] || fail "redeliver --dead: $out"
refusal=$(ctl redeliver --dead --hook nosuch 2>&1) && fail "an unknown hook was accepted"
case "$refusal" in *"no hook named nosuch"*) ;; *) fail "unknown hook: $refusal" ;; esac
[ "$(sim GET /_sim/sink | jq '.deliveries | length')" = "$attempts_before" ] || fail "attempted while disabled"
sim DELETE /_sim/faults >/dev/null
[ "$(ctl hooks enable web)" = "hook web enabled" ] || fail "hooks enable"
wait_until grep -q ' hook.enabled ' "$OPS/events" || fail "hook.enabled not delivered"
wait_until deliveries_idle || fail "deliveries still pending after enable"

events=$(sed -n 's/^<6>event \(embed_job\.[a-z_]*\|batch\.done\) \(evt_[0-9a-f]*\) for .*/\2/p' "$T/daemon.log" | sort -u)
got=$(sim GET /_sim/sink | jq -r '.deliveries[] | select(.path == "/_sim/sink/web" and .status == 200) | .headers["webhook-id"]')
[ "$(echo "$got" | sort -u)" = "$events" ] || fail "delivered ids differ from the events: $(echo "$got" | sort -u | wc -l) of $(echo "$events" | wc -l)"
[ "$(echo "$got" | sort | uniq -d | wc -l)" = 0 ] || fail "an event delivered twice"
last=$(sim GET /_sim/sink | jq -r '[.deliveries[] | select(.path == "/_sim/sink/web" and .status == 200)] | last | .body | fromjson | .type')
[ "$last" = batch.done ] || fail "batch.done was not last at the receiver (last: $last)"
[ "$(dead_web)" = 0 ] || fail "dead deliveries left"
ok "replay + enable: all $(echo "$events" | wc -l) events delivered once with their original webhook-id, batch.done last"

# 410: the hook is disabled at once (hook.disabled again, a new id), its delivery waits; enable delivers it.
sim POST /_sim/faults '{"kind":"status","status":410,"target":"sink"}' >/dev/null
jq -cn '{jobs: [{id: "g-0", timeline: [{status:"processing",at:0},{status:"complete",at:0.1}]}]}' | sim POST /_sim/jobs "$(cat)" >/dev/null
ctl watch g-0 >/dev/null
wait_until ops_disabled_at_least 2 || fail "410 did not disable the hook"
ctl --json hooks | jq -e '.hooks[] | select(.name == "web") | .state == "disabled" and (.why | test("410"))' >/dev/null \
	|| fail "hooks after 410: $(ctl --json hooks)"
[ "$(pending_web)" = 1 ] || fail "the 410'd delivery is not waiting"
sim DELETE /_sim/faults >/dev/null
ctl hooks enable web >/dev/null
wait_until deliveries_idle || fail "the 410'd delivery not delivered after enable"
g=$(sed -n 's/^<6>event embed_job\.complete \(evt_[0-9a-f]*\) for job g-0 .*/\1/p' "$T/daemon.log")
sim GET /_sim/sink | jq -e --arg id "$g" '[.deliveries[] | select(.status == 200 and .headers["webhook-id"] == $id)] | length == 1' \
	>/dev/null || fail "g-0 not delivered once after enable"
ok "410: disabled, the delivery waited, enable delivered it"

# A restart keeps a disabled hook disabled; a reload enables it.
ctl hooks disable web | grep -q 'hook web disabled' || fail "hooks disable"
stop_daemon
start_daemon
[ "$(hook_state web)" = disabled ] || fail "a restart enabled the hook"
kill -HUP "$DAEMON_PID"
wait_until hook_is web enabled || fail "a reload did not enable the hook"
stop_daemon
ok "disabled across a restart (state in the database); a reload enables it"
