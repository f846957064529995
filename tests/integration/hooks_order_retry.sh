#!/usr/bin/env bash
# requires: none
# Delivery order with concurrency 4 and retries: for each hook, batch.done
# starts only after every member delivery routed to that hook is done or dead,
# and a job's events keep their order (cancelling before cancelled).
. "$top_srcdir/tests/integration/lib/lib.sh"

N=40
G=$T/gated
mkdir -p "$G"
touch "$G/gate"
start_sim --clock manual
# Every third job is cancelled (cancelling first); the test's clock decides when.
jq -cn --argjson n $N '{jobs: [range($n) as $i | {id: ("r" + ($i|tostring)), timeline:
  ([{status:"processing",at:0}] +
   (if $i % 3 == 2 then [{status:"cancelling", at: 1}, {status:"cancelled", at: 2}]
    else [{status: (if $i % 3 == 0 then "complete" else "failed" end), at: 2}] end))}]}' \
	| sim POST /_sim/jobs "$(cat)" | jq -e ".created == $N" >/dev/null || fail "create jobs"
# A third fail their first attempt; two fail every attempt and end dead.
seq 0 3 $((N - 1)) | sed 's/^/r/' >"$G/fail-once"
printf 'r1\nr4\n' >"$G/fail-always"
write_conf "[hook gated]
type = exec
command = $top_srcdir/tests/integration/lib/order-hook.sh $G
on = *
concurrency = 4
retry = 100ms 300ms
max_attempts = 3"
start_daemon
seq 0 $((N - 1)) | sed 's/^/r/' | ctl watch --batch rt - >/dev/null
count_status() { ctl --json list --status "$1" | jq length; }
all_in() { [ "$(count_status "$1")" = "$2" ]; }
wait_until all_in processing $N || fail "not every job seen processing"
sim_advance 1s >/dev/null
wait_until all_in cancelling $(( N / 3 )) || fail "the cancelling jobs not seen cancelling"
sim_advance 1s >/dev/null

wait_until sh -c "awk '\$4 == \"batch.done\" && \$7 == \"ok\"' '$G/attempts' | grep -q ." || fail "batch.done not delivered"
wait_until deliveries_idle || fail "deliveries still pending"
dead=$(ctl --json deliveries --state dead | jq -r '[.deliveries[] | select(.hook == "gated") | .subject] | sort | join(" ")')
stop_daemon

[ "$dead" = "r1 r4" ] || fail "dead deliveries: '$dead', expected r1 r4"
done_start=$(awk '$4 == "batch.done" {print $1}' "$G/attempts" | head -n 1)
[ "$(awk '$4 == "batch.done"' "$G/attempts" | wc -l)" = 1 ] || fail "batch.done attempted more than once"
member_end=$(awk '$4 != "batch.done" {print $2}' "$G/attempts" | sort -n | tail -n 1)
[ "$done_start" -gt "$member_end" ] || fail "batch.done started before a member attempt ended"
members_ok=$(awk '$4 != "batch.done" && $7 == "ok" {print $3}' "$G/attempts" | sort -u | wc -l)
want=$(( N + (N + 1) / 3 - 2 ))
[ "$members_ok" = "$want" ] || fail "$members_ok member events delivered, expected $want"
retried=$(awk '$7 == "fail" {print $3}' "$G/attempts" | sort -u | wc -l)
[ "$retried" -ge $(( (N + 2) / 3 )) ] || fail "only $retried events were retried"
# A job's events in order: each cancelled starts after its cancelling was delivered.
bad=$(awk '$4 == "embed_job.cancelling" && $7 == "ok" {c[$5] = $2} $4 == "embed_job.cancelled" {s[$5] = $1}
	END {for (j in s) if (!(j in c) || s[j] <= c[j]) print j}' "$G/attempts")
[ -z "$bad" ] || fail "cancelled started before its cancelling was delivered: $bad"
ok "concurrency 4, $retried events retried, 2 dead: batch.done started after every member attempt; cancelling before cancelled"
