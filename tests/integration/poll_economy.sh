#!/usr/bin/env bash
# requires: none
# Observation economy, through the real daemon against the simulator: compressed
# answers, caps on decoded bytes (gzip bombs), conditional list requests (304).
. "$top_srcdir/tests/integration/lib/lib.sh"

metric() {   # metric NAME{LABELS}: its value in the daemon's Prometheus text
	ctl metrics | awk -v k="$1" '$1 == k {print $2}'
}
rx() { metric "embedwatch_received_bytes_total{endpoint=\"$1\",encoding=\"$2\"}"; }
ended() { hook_ended "$1" "$2"; }   # ended PREFIX N: N distinct terminal events for jobs starting with PREFIX
sim_stat() { sim GET "/_sim/stats?jobs=0" | jq -r "$1"; }
fresh() { rm -rf "$T/state" "$T/hooks"; : >"$T/daemon.log"; }

# 1. gzip answers are decoded: the list and per-id answers come compressed (the simulator's count
#    of bytes sent is below their identity size), the daemon decodes them (decoded > wire) and the
#    jobs end with their events. With a simulator that never compresses, wire and decoded agree.
gzip_run() {   # gzip_run SIM-ARGS... ; sets W_LIST D_LIST W_POLL D_POLL
	fresh
	start_sim --history 2000 --auto auto- --auto-min 300ms --auto-max 600ms "$@"
	sim POST /_sim/jobs "$(jobs_json 20 gz-)" >/dev/null
	write_conf
	start_daemon
	ctl watch - < <(seq -f 'gz-%g' 0 19) >/dev/null
	ctl watch auto-gz1 >/dev/null      # not in the list: polled per id
	wait_until ended gz- 20 || fail "gzip: the 20 listed jobs did not end"
	wait_until ended auto-gz1 1 || fail "gzip: the per-id job did not end"
	W_LIST=$(rx list wire) D_LIST=$(rx list decoded) W_POLL=$(rx poll wire) D_POLL=$(rx poll decoded)
	stop_daemon
	# One read, after the daemon stopped: both figures of the same requests.
	read -r S_SENT S_ID < <(sim_stat '"\(.bytes.list.sent + .bytes.poll.sent) \(.bytes.list.identity + .bytes.poll.identity)"')
	kill "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true
}
gzip_run
[ $((S_SENT * 3)) -lt "$S_ID" ] || fail "the simulator did not compress: $S_SENT bytes sent for $S_ID"
[ "$D_LIST" -gt 0 ] && [ "$W_LIST" -gt 0 ] || fail "no list bytes counted: wire $W_LIST decoded $D_LIST"
[ $((W_LIST * 3)) -lt "$D_LIST" ] || fail "the list was not compressed: wire $W_LIST, decoded $D_LIST"
[ "$W_POLL" -gt 0 ] && [ "$D_POLL" -gt 0 ] || fail "no per-id bytes counted: wire $W_POLL decoded $D_POLL"
ok "gzip: the list arrived in $W_LIST bytes and decoded to $D_LIST; per-id answers $W_POLL wire, $D_POLL decoded; every job ended"
gzip_run --no-gzip
[ "$S_SENT" = "$S_ID" ] || fail "--no-gzip: the simulator compressed ($S_SENT bytes sent for $S_ID)"
[ "$W_LIST" -gt "$D_LIST" ] || fail "identity list: wire $W_LIST should be the decoded $D_LIST plus headers"
ok "identity (--no-gzip): the list's wire bytes ($W_LIST) are its decoded bytes ($D_LIST) plus headers"

# 2. A gzip bomb on the list: a small answer that inflates far past list_max_bytes (1 MiB) is cut
#    off at the cap, read as an oversized list (fallback to per-id polling, said why), and the
#    daemon goes on: every job ends.
fresh
start_sim --history 200
sim POST /_sim/jobs "$(jobs_json 10 bl-)" >/dev/null
sim POST /_sim/faults '{"kind":"bomb","target":"list","count":1,"size":67108864}' >/dev/null
write_conf
sed -i 's/^\[poll\]/[poll]\nlist_max_bytes = 1MiB/' "$T/ew.conf"
start_daemon
ctl watch - < <(seq -f 'bl-%g' 0 9) >/dev/null
wait_until grep -q 'larger than list_max_bytes' "$T/daemon.log" || fail "list bomb: not read as an oversized list"
wait_until ended bl- 10 || fail "list bomb: the jobs did not end per id"
alive "$DAEMON_PID" || fail "list bomb: the daemon died"
[ "$(sim_stat '.bytes.list.identity')" -ge 67108864 ] || fail "the bomb was not served"
d=$(rx list decoded)
[ "$d" -lt $((2 << 20)) ] || fail "list bomb: $d bytes decoded, not cut at the 1 MiB cap"
ok "list bomb (64 MiB inflated, $(sim_stat .bytes.list.sent) bytes sent): cut after $d decoded bytes, fallback to per-id, 10 jobs ended"
stop_daemon
kill "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true

# A bomb on a per-id answer: past the 1 MiB document cap it is the oversized-answer outcome (a
# transient error, backoff), and the job still ends.
fresh
start_sim
sim POST /_sim/jobs '{"id":"bp-1","timeline":[{"status":"processing","at":0},{"status":"complete","at":0.5}]}' >/dev/null
sim POST /_sim/faults '{"kind":"bomb","target":"poll","job":"bp-1","count":2,"size":33554432}' >/dev/null
SWEEP=no write_conf
start_daemon
ctl watch bp-1 >/dev/null
wait_until grep -q 'job bp-1: poll failed: response larger than 1048576 bytes decoded' "$T/daemon.log" \
	|| fail "per-id bomb: not the oversized-answer outcome"
wait_until ended bp-1 1 || fail "per-id bomb: the job did not end"
d=$(rx poll decoded)
[ "$d" -lt $((4 << 20)) ] || fail "per-id bomb: $d bytes decoded for two 32 MiB bombs: not cut at 1 MiB"
ok "per-id bomb (32 MiB inflated): cut at the 1 MiB cap ($d bytes decoded in all), retried, the job ended"
stop_daemon
kill "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true

# 3. Conditional list requests. With --etag the daemon sends If-None-Match (or, with only
#    Last-Modified, If-Modified-Since); a 304 is an observation of "nothing changed" for every
#    listed watched job: they are not polled per id for it, and the events are those a full list
#    gives. Without validators no 304 ever comes. The jobs run 4 s, then end within a second.
quiet_jobs() {
	jq -cn '{jobs: [range(10) as $i | {id: ("et-" + ($i|tostring)), timeline: [{status:"processing",at:0},
	  {status: (if $i % 2 == 0 then "complete" else "failed" end), at: (4 + $i * 0.1)}]}]}'
}
etag_run() {   # etag_run NAME SIM-ARGS... ; sets N304 NM POLLS, events in $T/events.NAME
	local name=$1; shift
	fresh
	start_sim --history 2000 "$@"
	sim POST /_sim/jobs "$(quiet_jobs)" >/dev/null
	write_conf
	start_daemon
	ctl watch - < <(seq -f 'et-%g' 0 9) >/dev/null
	if [ "$name" != off ]; then
		wait_until sim_jq '/_sim/stats?jobs=0' '(.status["304"] // 0) >= 2' \
			|| fail "$name: no 304 answers to the list"
	fi
	wait_until ended et- 10 || fail "$name: the jobs did not end"
	N304=$(sim_stat '.status["304"] // 0') NM=$(metric embedwatch_sweep_not_modified_total) POLLS=$(sim_stat .requests.poll)
	hook_lines | awk '$2 ~ /^embed_job\.(complete|failed)$/ {print $1, $2, $3}' | sort -u >"$T/events.$name"
	stop_daemon
	kill "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true
}
etag_run etag --etag
[ "$NM" = "$N304" ] || fail "etag: the simulator answered $N304 times 304, the daemon counted $NM"
[ "$POLLS" -lt 10 ] || fail "etag: $POLLS per-id polls for 10 listed jobs: a 304 was not an observation of them"
[ "$(wc -l <"$T/events.etag")" = 10 ] || fail "etag: $(wc -l <"$T/events.etag") terminal events for 10 jobs"
ok "ETag: $N304 answers 304 Not Modified, each an observation of the 10 listed jobs ($POLLS per-id polls); 10 terminal events"
etag_run lm --etag=last-modified
[ "$NM" = "$N304" ] && [ "$POLLS" -lt 10 ] || fail "last-modified: $N304 304s, $NM counted, $POLLS per-id polls"
ok "Last-Modified only: If-Modified-Since, $N304 answers 304 ($POLLS per-id polls); 10 terminal events"
etag_run off
[ "$N304" = 0 ] && [ "$NM" = 0 ] || fail "validators off: $N304 304s"
for n in etag lm; do
	diff "$T/events.off" "$T/events.$n" >/dev/null || fail "$n: other events than without validators: $(diff "$T/events.off" "$T/events.$n" | head -3)"
done
ok "without validators: no 304; the same 10 events with the same ids in all three runs"
