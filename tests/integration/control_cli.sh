#!/usr/bin/env bash
# requires: nc
# The control socket: bad requests get clear errors and the daemon goes on;
# the CLI's commands, output forms and exit codes.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim
sim POST /_sim/jobs '{"jobs":[{"id":"ok1","timeline":[{"status":"processing","at":0},{"status":"complete","at":0.5}]},
 {"id":"bad1","timeline":[{"status":"processing","at":0},{"status":"failed","at":0.5}]},
 {"id":"slow1","timeline":[{"status":"processing","at":0}]}]}' >/dev/null
write_conf
start_daemon

raw() { printf '%s\n' "$1" | ctl_lines 1; }
expect_error() {   # expect_error REQUEST PATTERN
	local a; a=$(raw "$1")
	echo "$a" | jq -e --arg p "$2" '.ok == false and (.error | test($p))' >/dev/null || fail "request $1: got $a"
}
expect_error 'not json at all' 'not valid JSON'
expect_error '{"cmd":' 'not valid JSON'
expect_error '[1,2,3]' 'JSON object'
expect_error '{"nocmd":1}' 'no "cmd"'
expect_error '{"cmd":42}' 'no "cmd"'
expect_error '{"cmd":"explode"}' 'unknown command'
expect_error '{"cmd":"watch"}' '"ids" must be an array'
expect_error '{"cmd":"watch","ids":"ok1"}' '"ids" must be an array'
expect_error '{"cmd":"watch","ids":["ok1"],"batch":7}' '"batch" must be a string'
expect_error '{"cmd":"list","status":"sleeping"}' 'unknown status'
expect_error '{"cmd":"show","id":"../../etc"}' 'valid job id'
expect_error '{"cmd":"show","id":"nope"}' 'not watched'
expect_error '{"cmd":"wait","ids":["never-watched"]}' 'not watched'
expect_error '{"cmd":"wait","batch":"no-such"}' 'no batch'
expect_error '{"cmd":"redeliver"}' 'event_id'
expect_error '{"cmd":"redeliver","event_id":"evt_0000"}' 'no event'
expect_error '{"cmd":"deliveries","state":"lost"}' 'unknown delivery state'
deep=$(printf '%0.s[' $(seq 1 200))
expect_error "$deep" 'not valid JSON'
ok "bad requests answered with errors"

# Mixed ids: the invalid ones are named and refused, the valid ones accepted.
a=$(raw '{"cmd":"watch","ids":["ok1","bad id!",17,"bad1"]}')
echo "$a" | jq -e '.ok and .added == 2 and (.rejected | length) == 2 and .rejected[0].id == "bad id!" and (.rejected[0].error|test("invalid job id"))' >/dev/null \
	|| fail "mixed watch: $a"
rc=0; ctl watch slow1 'semi;colon' >"$T/out" 2>"$T/err" || rc=$?
[ $rc = 1 ] && grep -q 'refused "semi;colon"' "$T/err" && grep -q 'watching 1 new' "$T/out" || fail "ctl watch with a bad id: rc=$rc $(cat "$T/err")"
ok "invalid ids refused by name, valid ones in the same request accepted"

# Several requests on one connection, one answer each, in order.
n=$(printf '%s\n' '{"cmd":"status"}' 'garbage' '{"cmd":"list"}' | ctl_lines 3 | jq -s 'map(.ok) == [true,false,true]')
[ "$n" = true ] || fail "pipelined requests"
ok "pipelined requests on one connection"

# An oversized request is refused, and the daemon goes on.
# Just over the 1 MiB limit: the client has sent it all by the time the daemon refuses and
# closes (more after that would meet a closed socket, and nc would quit before the answer).
big=$(head -c 1048614 /dev/zero | tr '\0' 'a')
a=$(printf '{"cmd":"watch","ids":["%s"]}\n' "$big" | ctl_lines 1)
echo "$a" | jq -e '.ok == false and (.error | test("longer than"))' >/dev/null || fail "oversized request: $(echo "$a" | cut -c1-200)"
ok "oversized request refused"

# A client that connects and goes silent, or vanishes mid-line, blocks nobody.
exec 7> >(nc -U "$T/ctl.sock" >/dev/null)
printf '{"cmd":"sta' >&7
printf '{"cmd":"watch","ids":["x' | nc -U -q 0 "$T/ctl.sock" >/dev/null || true
ctl status >/dev/null || fail "status blocked by a stalled client"
exec 7>&-
ok "stalled and vanished clients block nobody"

# wait: exit codes.
ctl wait ok1 --timeout "${EW_LIMIT}s" >"$T/w" || fail "wait ok1: $?"
grep -q '^ok1 complete$' "$T/w" || fail "wait output: $(cat "$T/w")"
rc=0; ctl wait ok1 bad1 --timeout "${EW_LIMIT}s" >/dev/null || rc=$?
[ $rc = 1 ] || fail "wait with a failed job: exit $rc, expected 1"
rc=0; ctl wait slow1 --timeout 300ms >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "wait timeout: exit $rc, expected 2"
rc=0; ctl wait never-watched >/dev/null 2>&1 || rc=$?
[ $rc = 3 ] || fail "wait on an unwatched id: exit $rc, expected 3"
rc=0; "$CTL" -s "$T/nonexistent.sock" status >/dev/null 2>&1 || rc=$?
[ $rc = 4 ] || fail "unreachable daemon: exit $rc, expected 4"
rc=0; ctl frobnicate >/dev/null 2>&1 || rc=$?
[ $rc = 64 ] || fail "usage error: exit $rc, expected 64"
ok "wait exits 0 complete, 1 failed, 2 timeout; 3 refused, 4 unreachable, 64 usage"

# list / show / status / metrics in both forms.
ctl list | grep -qE '^ok1 +complete' || fail "list table"
ctl list --json | jq -e 'map(.id) | index("ok1") != null' >/dev/null || fail "list --json"
ctl list --status failed --json | jq -e 'length == 1 and .[0].id == "bad1"' >/dev/null || fail "list --status"
ctl show ok1 | grep -q '^status: *complete' || fail "show"
ctl show ok1 --json | jq -e '.job.last_seen.status == "complete" and (.job.events | length) == 1' >/dev/null || fail "show --json"
ctl status | grep -q 'watching' || fail "status"
ctl status --json | jq -e '.status.jobs == 3' >/dev/null || fail "status --json"
ctl metrics >"$T/metrics.out" && grep -q '^embedwatch_polls_total [0-9]' "$T/metrics.out" || fail "metrics"
ok "list, show, status, metrics"

# unwatch: the job is gone, in memory and on disk.
ctl unwatch slow1 | grep -q 'unwatched 1' || fail "unwatch"
rc=0; ctl unwatch slow1 2>/dev/null >/dev/null || rc=$?
[ $rc = 1 ] || fail "unwatch of an unknown id: exit $rc"
stop_daemon
start_daemon
ctl list --json | jq -e 'map(.id) | index("slow1") == null and index("ok1") != null' >/dev/null || fail "unwatch not durable"
ok "unwatch, durable across a restart"
stop_daemon
