#!/usr/bin/env bash
# requires: sqlite3
# The observation planner, through the real daemon against the simulator: per-id polls for a few
# jobs beside a huge list, the sweep for many; status and metrics say which and why.
. "$top_srcdir/tests/integration/lib/lib.sh"
export PLANNER=auto

metric() {   # metric NAME{LABELS}: its value in the daemon's Prometheus text
	ctl metrics | awk -v k="$1" '$1 == k {print $2}'
}
rx() { metric "embedwatch_received_bytes_total{endpoint=\"$1\",encoding=\"$2\"}"; }
sim_stat() { sim GET "/_sim/stats?jobs=0" | jq -r "$1"; }
fresh() { rm -rf "$T/state" "$T/hooks"; : >"$T/daemon.log"; }

# Three watched jobs beside a huge list (100,000 ended jobs: 34.5 MB, 6.9 MB gzipped): the list
# is read at most to its headers (Content-Length is past the size at which per-id polls win),
# then per-id polls, and status and metrics say so and why. Four hundred jobs beside 20,000: the
# sweep. Either way the events are those of the other mode. The jobs run until the plan has been
# read from status, then end (posted again with an end).
running_jobs() {   # running_jobs N PREFIX [END]: processing; with END, ending 0.5..1.5 s from now
	jq -cn --argjson n "$1" --arg p "$2" --arg e "${3:-}" '{jobs: [range($n) as $i | {id: ($p + ($i|tostring)),
	  timeline: ([{status:"processing",at:0}] + (if $e == "" then [] else
	  [{status: (if $i % 2 == 0 then "complete" else "failed" end), at: (0.5 + ($i % 10) * 0.1)}] end))}]}'
}
# Without a hook (400 hook processes on a loaded machine take longer than the rest): events from the state.
ended_in_state() { ctl list --json | jq -e --argjson n "$1" '[.[] | select(.status == "complete" or .status == "failed")] | length >= $n' >/dev/null; }
plan_run() {   # plan_run NAME N PREFIX HISTORY CONF-EXTRA READY-JQ; events in $T/events.NAME
	local name=$1 n=$2 prefix=$3 hist=$4 extra=$5 ready=$6
	fresh
	start_sim --history "$hist"
	sim POST /_sim/jobs "$(running_jobs "$n" "$prefix")" >/dev/null
	REQUEST_TIMEOUT=30s write_conf
	sed -i -e "s/^\[poll\]/[poll]\n$extra/" -e '/^\[hook record\]/,$d' "$T/ew.conf"
	start_daemon
	ctl watch - < <(seq -f "$prefix%g" 0 $((n - 1))) >/dev/null
	wait_until sh -c "'$CTL' -s '$T/ctl.sock' --json status | jq -e '.status.observation | $ready'" \
		|| fail "$name: the plan never got to $ready: $(ctl --json status | jq -c .status.observation)"
	ctl --json status >"$T/status.$name"
	ctl status >"$T/status-text.$name"
	ctl metrics >"$T/metrics.$name"
	LISTS=$(sim_stat .requests.list) POLLS=$(sim_stat .requests.poll) LIST_WIRE=$(rx list wire)
	sim POST /_sim/jobs "$(running_jobs "$n" "$prefix" end)" >/dev/null
	wait_until ended_in_state "$n" || fail "$name: the jobs did not end"
	stop_daemon
	sqlite3 "$T/state/embedwatch.db" "select id, type, subject from events where type in
	  ('embed_job.complete', 'embed_job.failed') order by id" >"$T/events.$name"
	kill "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true
	[ "$(wc -l <"$T/events.$name")" = "$n" ] || fail "$name: $(wc -l <"$T/events.$name") terminal events for $n jobs"
}
obs() { jq -r ".status.observation.$2" "$T/status.$1"; }

RATE=20/s plan_run few 3 pf- 100000 "" '.list_bytes > 0 and .mode != "sweep"'
[ "$(obs few mode)" = per-id ] && [ "$(obs few reason)" = list-too-big ] \
	|| fail "3 jobs beside 100,000: $(jq -c .status.observation "$T/status.few")"
[ "$LISTS" -le 1 ] || fail "3 jobs beside 100,000: $LISTS lists requested"
[ "$LIST_WIRE" -lt 2000000 ] || fail "3 jobs beside 100,000: $LIST_WIRE list bytes received: the probe was not stopped"
[ "$(obs few list_bytes)" -gt 5000000 ] || fail "the list's size was not learnt: $(obs few list_bytes)"
grep -q '^embedwatch_planner_mode{mode="per-id"} 1$' "$T/metrics.few" || fail "metrics do not say per-id"
grep -q '^observing: per-id polls (the list is too big' "$T/status-text.few" || fail "status text: $(cat "$T/status-text.few")"
grep -q 'observing by per-id polls: the list is too big' "$T/daemon.log" || fail "the switch to per-id was not logged"
ok "3 jobs beside 100,000: per-id ($POLLS polls), the list read once to its headers ($LIST_WIRE bytes of $(obs few list_bytes)); status: $(obs few summary)"
RATE=20/s PLANNER=sweep plan_run few-sweep 3 pf- 100000 "max_bytes_per_min = 1G" '.list_entries > 0'
[ "$(obs few-sweep mode)" = sweep ] || fail "planner = sweep: $(obs few-sweep mode)"
diff "$T/events.few" "$T/events.few-sweep" >/dev/null || fail "3 jobs: per-id and the sweep fired other events"
ok "the same 3 jobs by the sweep (planner = sweep): the same events and ids"

RATE=20/s plan_run many 400 pm- 20000 "" '.list_entries > 0'
[ "$(obs many mode)" = sweep ] && [ "$(obs many reason)" = sweep-sooner ] \
	|| fail "400 jobs beside 20,000: $(jq -c .status.observation "$T/status.many")"
[ "$POLLS" -lt 100 ] || fail "400 jobs by the sweep: $POLLS per-id polls"
grep -q '^embedwatch_planner_mode{mode="sweep"} 1$' "$T/metrics.many" || fail "metrics do not say sweep"
ok "400 jobs beside 20,000: the sweep ($LISTS lists, $POLLS per-id polls); status: $(obs many summary)"
RATE=400/s PLANNER=per-id plan_run many-per-id 400 pm- 20000 "" '.mode == "per-id"'
[ "$(obs many-per-id reason)" = policy-per-id ] || fail "planner = per-id: $(obs many-per-id reason)"
diff "$T/events.many" "$T/events.many-per-id" >/dev/null || fail "400 jobs: the sweep and per-id fired other events"
ok "the same 400 jobs by per-id polls (planner = per-id): the same events and ids"
