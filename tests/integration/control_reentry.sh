#!/usr/bin/env bash
# requires: nc
# Effects leave the core only after the commit: requests pipelined in one
# write (wait X then unwatch X, a batch wait then unwatch of its jobs), and
# retention forgetting jobs while a client waits, are each answered in order
# and nothing reads freed memory (this suite also runs under ASan).
. "$top_srcdir/tests/integration/lib/lib.sh"

# pipeline NLINES REQUESTS: sends REQUESTS in one write on one connection;
# prints the first NLINES answer lines (each must arrive within the suite-wide limit).
pipeline() { printf '%s' "$2" | ctl_lines "$1" || fail "fewer than $1 answers arrived"; }

# jobs PREFIX N FIRST STEP: N jobs that complete at FIRST + i * STEP seconds.
jobs() {
	jq -cn --arg p "$1" --argjson n "$2" --argjson a "$3" --argjson s "$4" \
		'{jobs: [range($n) as $i | {id: ($p + ($i|tostring)),
		  timeline: [{status:"processing",at:0},{status:"complete",at:($a + $i * $s)}]}]}'
}

start_sim
sim POST /_sim/jobs "$(jobs w 20 0.4 0.05)" >/dev/null
write_conf
start_daemon

# 1. wait X + unwatch X for 20 jobs, then status, in one write.
ctl watch $(seq -f 'w%g' 0 19) >/dev/null
reqs=""
for i in $(seq 0 19); do
	reqs+="{\"cmd\":\"wait\",\"ids\":[\"w$i\"]}"$'\n'"{\"cmd\":\"unwatch\",\"ids\":[\"w$i\"]}"$'\n'
done
reqs+='{"cmd":"status"}'$'\n'
pipeline 41 "$reqs" >"$T/answers1"
jq -se 'length == 41 and all(.[]; .ok)' "$T/answers1" >/dev/null || fail "answers: $(head -c 600 "$T/answers1")"
jq -se '[.[range(0; 40; 2)].jobs[0].status] | all(. == "complete")' "$T/answers1" >/dev/null \
	|| fail "a wait answered before its job completed: $(jq -sc '[.[range(0; 40; 2)].jobs[0].status]' "$T/answers1")"
jq -se '[.[range(1; 40; 2)].removed] | all(. == 1)' "$T/answers1" >/dev/null || fail "an unwatch did not remove its job"
jq -se '.[40].status.jobs == 0' "$T/answers1" >/dev/null || fail "status after: $(tail -n 1 "$T/answers1")"
ok "wait X + unwatch X for 20 jobs and status in one write: 41 answers in order"

# 2. wait --batch B + unwatch of all its jobs + status in one write; a second
#    client pipelines wait + unwatch of one of the same jobs at the same time.
sim POST /_sim/jobs "$(jobs b 20 0.5 0.05)" >/dev/null
ctl watch --batch B $(seq -f 'b%g' 0 19) >/dev/null
ids=$(seq -f '"b%g"' 0 19 | paste -sd, -)
pipeline 3 '{"cmd":"wait","batch":"B"}'$'\n''{"cmd":"unwatch","ids":['"$ids"']}'$'\n''{"cmd":"status"}'$'\n' >"$T/answers2" &
p2=$!
pipeline 3 '{"cmd":"wait","ids":["b7"]}'$'\n''{"cmd":"unwatch","ids":["b7"]}'$'\n''{"cmd":"status"}'$'\n' >"$T/answers3"
wait "$p2" || fail "batch pipeline"
# The other client may unwatch b7 first: the batch then has 19 jobs.
jq -se 'length == 3 and all(.[]; .ok) and (.[0].jobs | length >= 19) and (.[0].jobs | all(.status == "complete"))' \
	"$T/answers2" >/dev/null || fail "batch wait answers: $(head -c 600 "$T/answers2")"
# Its wait either saw b7 complete, or came after the other client's unwatch of b7 and was refused for
# that reason; its unwatch and status are answered either way.
jq -se 'length == 3 and .[1].ok and .[2].ok and
	((.[0].ok and .[0].jobs[0].status == "complete") or (.[0].ok == false and (.[0].error | test("b7 is not watched"))))' \
	"$T/answers3" >/dev/null || fail "second client: $(cat "$T/answers3")"
[ "$(jq -s '.[1].removed' "$T/answers2")" -ge 19 ] || fail "batch unwatch: $(sed -n 2p "$T/answers2")"
ctl status --json | jq -e ".status.jobs == 0" >/dev/null || fail "jobs left after the unwatches: $(ctl list --json | jq -c "map(.id)") $(cat "$T/answers2" "$T/answers3")"
ok "wait --batch + unwatch of its jobs, with a second client unwatching one of them: every answer arrives"
stop_daemon

# 3. Retention forgets ended jobs while a client waits on them and on one still running. Both
#    run until the client waits: its first request, a watch of r-mark, is logged after its
#    commit, and the wait behind it is read on the next loop turn, before any later poll's
#    answer. Then r-early ends and is forgotten, then r-late ends: no timeline to race.
sim POST /_sim/jobs '{"jobs":[{"id":"r-early","timeline":[{"status":"processing","at":0}]},
 {"id":"r-late","timeline":[{"status":"processing","at":0}]},{"id":"r-mark","timeline":[{"status":"processing","at":0}]}]}' >/dev/null
rm -rf "$T/state"
write_conf
sed -i 's/^\[embedwatch\]/[embedwatch]\nretention = 500ms/' "$T/ew.conf"
start_daemon
ctl watch r-early r-late >/dev/null
pipeline 4 '{"cmd":"watch","ids":["r-mark"]}'$'\n''{"cmd":"wait","ids":["r-early","r-late"]}'$'\n''{"cmd":"unwatch","ids":["r-late"]}'$'\n''{"cmd":"status"}'$'\n' >"$T/answers4" &
p4=$!
wait_until grep -q "control: watch of 1 ids (1 new) by pid" "$T/daemon.log" || fail "the client's watch of r-mark was not logged"
sim POST /_sim/jobs '{"id":"r-early","timeline":[{"status":"complete","at":0}]}' >/dev/null
wait_until grep -q "forgot 1 jobs" "$T/daemon.log" || fail "retention did not forget r-early while the client waited"
sim POST /_sim/jobs '{"id":"r-late","timeline":[{"status":"complete","at":0}]}' >/dev/null
wait "$p4" || fail "retention pipeline"
jq -se 'length == 4 and all(.[]; .ok)' "$T/answers4" >/dev/null || fail "retention answers: $(cat "$T/answers4")"
jq -se '.[1].jobs | map({(.id): .status}) | add | .["r-early"] == "unwatched" and .["r-late"] == "complete"' \
	"$T/answers4" >/dev/null || fail "wait across retention: $(sed -n 2p "$T/answers4")"
ok "retention forgets a job while a client waits on it: the wait is answered, the next requests follow"
stop_daemon
