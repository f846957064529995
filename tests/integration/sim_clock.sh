#!/usr/bin/env bash
# requires: none
# The simulator's clock: real by default, or manual (--clock manual), moved only
# by POST /_sim/clock; bad requests are refused clearly and leave it where it was.
. "$top_srcdir/tests/integration/lib/lib.sh"

# post_clock BODY: prints "STATUS BODY" of POST /_sim/clock.
post_clock() {
	local code
	code=$(curl -sS -o "$T/clock.body" -w '%{http_code}' -X POST --data-binary "$1" "$SIM_URL/_sim/clock")
	printf '%s %s' "$code" "$(cat "$T/clock.body")"
}
clock_now() { sim GET /_sim/clock | jq -r .now_ms; }

# A bad --clock is refused at start.
rc=0; "$SIM" --clock sundial >"$T/bad.out" 2>&1 || rc=$?
[ "$rc" = 2 ] && grep -q 'expected real or manual, got "sundial"' "$T/bad.out" || fail "--clock sundial: rc $rc: $(cat "$T/bad.out")"
"$SIM" --help | grep -q -- '--clock MODE' || fail "--help does not document --clock"
"$SIM" --help | grep -q 'GET|POST /_sim/clock' || fail "--help does not list /_sim/clock"
ok "--clock: a bad mode refused, --help documents it"

# Real mode (the default): the clock reads the wall clock and cannot be moved.
start_sim
sim GET /_sim/clock >"$T/real.json"
jq -e '.mode == "real" and (.now_ms|type) == "number" and .wall_ms == .now_ms' "$T/real.json" >/dev/null ||
	fail "real clock: $(cat "$T/real.json")"
r=$(post_clock '{"advance":"2s"}')
[ "${r%% *}" = 409 ] && echo "${r#* }" | jq -e '.message|test("--clock manual")' >/dev/null || fail "advance in real mode: $r"
ok "real clock: GET answers mode real, an advance is 409"
kill "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true

# Manual mode: starts at 0 and moves only by an advance, by exactly that much.
start_sim --clock manual
sim GET /_sim/clock | jq -e '.mode == "manual" and .now_ms == 0' >/dev/null || fail "manual clock does not start at 0"
wall0=$(sim GET /_sim/clock | jq -r .wall_ms)
[ "$(clock_now)" = 0 ] || fail "manual clock moved by itself"
r=$(post_clock '{"advance":"2s"}')
[ "${r%% *}" = 200 ] && echo "${r#* }" | jq -e --argjson w "$wall0" '.mode == "manual" and .now_ms == 2000 and .wall_ms == $w + 2000' >/dev/null ||
	fail "advance 2s: $r"
[ "$(sim_advance 250ms)" = 2250 ] || fail "advance 250ms"
[ "$(sim_advance 1.5s)" = 3750 ] || fail "advance 1.5s"
[ "$(sim_advance 1m)" = 63750 ] || fail "advance 1m"
r=$(post_clock '{"advance_ms":250}'); echo "${r#* }" | jq -e '.now_ms == 64000' >/dev/null || fail "advance_ms: $r"
r=$(post_clock '{"advance_ms":0}'); echo "${r#* }" | jq -e '.now_ms == 64000' >/dev/null || fail "advance_ms 0: $r"
ok "manual clock: starts at 0, advance (ms, s, m) and advance_ms move it exactly"

# Bad bodies: 400 naming what was wrong; the clock stays where it was.
while IFS='|' read -r body want; do
	r=$(post_clock "$body")
	[ "${r%% *}" = 400 ] || fail "body $body: expected 400, got $r"
	echo "${r#* }" | jq -e --arg w "$want" '.message|contains($w)' >/dev/null || fail "body $body: message should say \"$want\": $r"
done <<'CASES'
not json|not valid JSON
[]|the clock takes {"advance": "2s"} or {"advance_ms": 2000}
{}|the clock takes {"advance": "2s"} or {"advance_ms": 2000}
{"advance":"2"}|"advance" must be a duration like 500ms, 2s or 1m, got "2"
{"advance":"soon"}|"advance" must be a duration
{"advance":2}|"advance" must be a duration like 500ms, 2s or 1m, got 2
{"advance":"-1s"}|"advance" must be a duration
{"advance_ms":-5}|"advance_ms" must be a whole number of milliseconds >= 0, got -5
{"advance_ms":1.5}|"advance_ms" must be a whole number of milliseconds >= 0, got 1.5
{"advance_ms":"100"}|"advance_ms" must be a whole number
{"advance":"1s","advance_ms":5}|not both
{"forward":"1s"}|unknown field "forward"
{"advance_ms":9223372036854775807}|the clock would overflow
CASES
[ "$(clock_now)" = 64000 ] || fail "a refused advance moved the clock to $(clock_now)"
ok "bad clock bodies: 400 with what was wrong, clock unchanged"

# What a client sees stays a wall-clock time: created_at is the simulator's
# start plus the sim time of creation, to the millisecond.
sim POST /_sim/jobs '{"id":"c1","timeline":[{"status":"processing","at":0},{"status":"complete","at":5}]}' >/dev/null
want=$(sim GET /_sim/clock | jq -r '.wall_ms as $w | (($w / 1000 | floor | todate) | sub("Z$"; "")) + "." + ("00" + ($w % 1000 | tostring))[-3:] + "Z"')
got=$(api /v1/embed-jobs/c1 | cut -d' ' -f2- | jq -r .created_at)
[ "$got" = "$want" ] || fail "created_at $got, expected $want (start + sim time)"
api /v1/embed-jobs | cut -d' ' -f2- | jq -e --arg w "$want" '.embed_jobs[0].created_at == $w' >/dev/null || fail "created_at in the list"
ok "created_at is wall-clock: start + sim time ($got)"

# A timeline follows the manual clock only: processing until the clock reaches its step.
[ "$(api /v1/embed-jobs/c1 | cut -d' ' -f2- | jq -r .status)" = processing ] || fail "c1 at 0 s"
sim_advance 4999ms >/dev/null
[ "$(api /v1/embed-jobs/c1 | cut -d' ' -f2- | jq -r .status)" = processing ] || fail "c1 ended before 5 s"
sim_advance 1ms >/dev/null
[ "$(api /v1/embed-jobs/c1 | cut -d' ' -f2- | jq -r .status)" = complete ] || fail "c1 not complete at 5 s"
sim GET /_sim/stats | jq -e '.jobs.c1.ends_ms == 69000 and .jobs.c1.first_ms == 64000 and .jobs.c1.last_ms == 69000' >/dev/null ||
	fail "stats in sim time: $(sim GET /_sim/stats | jq -c .jobs.c1)"
ok "a timeline follows the manual clock; stats are in sim time"
