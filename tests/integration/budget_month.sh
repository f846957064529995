#!/usr/bin/env bash
# requires: faketime sqlite3
# [poll] monthly_requests: a calendar month's allowance (UTC), counted in the
# state. The daemon's wall clock is moved with Debian's faketime (the
# simulator's is its own): at 20:00 on the month's last day the spread allows
# the whole allowance; once it is spent no request goes, status says so, and a
# restart keeps the count; a start 2 s before midnight sends again once the
# next month begins, counting from 0. First, on the real clock: a watch's
# first request goes as soon as the month's count is read from the state.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim
ALLOW=12
# ASan must not insist on coming first: faketime's library is preloaded.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" FAKETIME_DONT_FAKE_MONOTONIC=1
fake_at() { EW_WRAPPER="env LD_PRELOAD=$FAKETIME_LIB FAKETIME=+$(( $(date -u -d "$1" +%s) - $(date +%s) ))"; }
# The API requests since BASE (those of the first part are not the month's test).
api_requests() { echo $(( $(sim GET '/_sim/stats?jobs=0' | jq '.requests.poll + .requests.list + .requests.cancel + .v2.requests.datasets') - ${BASE:-0} )); }
month() { ctl status --json | jq -r ".status.budgets.month.$1"; }

# A fresh state with an allowance: the watch's list goes at once (the month's count is read from the
# state first), not when the per-id fallback comes due, which request_timeout puts past the suite's limit.
sim POST /_sim/jobs '{"jobs":[{"id":"m-0","timeline":[{"status":"processing","at":0}]}]}' >/dev/null
REQUEST_TIMEOUT=3000s write_conf "
[poll]
monthly_requests = $ALLOW
"
start_daemon
ctl watch m-0 >/dev/null
sent() { [ "$(api_requests)" -ge 1 ]; }
wait_until sent || fail "no request after a watch with monthly_requests set: $(ctl status --json | jq -c .status.budgets)"
ok "the first request after a watch goes once the month's count is read ($(api_requests) sent)"
stop_daemon
BASE=$(api_requests)
rm -rf "$T/state"
write_conf "
[poll]
monthly_requests = $ALLOW
"

sim POST /_sim/jobs '{"jobs":[{"id":"m-1","timeline":[{"status":"processing","at":0}]},{"id":"m-2","timeline":[{"status":"processing","at":0}]}]}' >/dev/null
fake_at '2026-12-31 20:00:00'
start_daemon
ctl watch m-1 m-2 >/dev/null
spent() { [ "$(month left)" = 0 ]; }
wait_until spent || fail "the allowance was not spent: $(ctl status --json | jq -c .status.budgets.month)"
[ "$(month month)" = 2026-12 ] && [ "$(month used)" = "$ALLOW" ] || fail "month: $(ctl status --json | jq -c .status.budgets.month)"
n=$(api_requests)
[ "$n" -le "$ALLOW" ] || fail "$n requests reached the API, over the allowance of $ALLOW"
ctl status | grep -q "^month 2026-12: $ALLOW of $ALLOW requests used, 0 left.*SPENT: no request until the next month" \
	|| fail "status text: $(ctl status | grep month)"
ctl metrics >"$T/m"
grep -q "^embedwatch_month_used_requests $ALLOW$" "$T/m" || fail "metrics: $(grep month "$T/m")"
[ "$(sqlite3 "$T/state/embedwatch.db" "select value from meta where key = 'd.requests_month'")" = "2026-12 $ALLOW" ] \
	|| fail "the state's count: $(sqlite3 "$T/state/embedwatch.db" "select * from meta")"
ok "the month's allowance ($ALLOW) spent: $n requests reached the API, status and metrics say so, the state counts it"

# A restart in the same month starts from the state's count: still nothing to send.
stop_daemon
start_daemon
loaded() { grep -q "month 2026-12: $ALLOW of $ALLOW requests used" "$T/daemon.log"; }
wait_until loaded || fail "the count was not read back"
# A watch brings a sweep forward: the poller runs, and must send nothing.
sim POST /_sim/jobs '{"jobs":[{"id":"m-3","timeline":[{"status":"processing","at":0}]}]}' >/dev/null
ctl watch m-3 >/dev/null
[ "$(month used)" = "$ALLOW" ] && [ "$(api_requests)" = "$n" ] || fail "requests after the restart: $(api_requests) (before: $n)"
ok "a restart keeps the count: no request after it, $(month used) of $ALLOW used"

# The next month: the daemon's clock 2 s before midnight; it sends again once January begins.
stop_daemon
fake_at '2026-12-31 23:59:58'
start_daemon
more() { [ "$(api_requests)" -gt "$n" ]; }
wait_until more || fail "no request in the new month"
[ "$(month month)" = 2027-01 ] || fail "month: $(month month)"
ok "the next month sends again from 0 ($(month used) used in 2027-01)"
