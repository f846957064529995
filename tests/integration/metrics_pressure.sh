#!/usr/bin/env bash
# requires: none
# /metrics under connection pressure: 100 idle connections, each sent a
# partial request ("GET /") and left waiting, do not lock scrapes out. At 32
# connections the longest idle one is closed for each new one, so every
# scrape is answered, and the newest idle connections are still being served.
# The counters are read through the control socket, which takes no /metrics slot.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim
MPORT=$(free_port)
write_conf
sed -i "s|^\[embedwatch\]|[embedwatch]\nmetrics_listen = 127.0.0.1:$MPORT|" "$T/ew.conf"
start_daemon

metric() { ctl metrics | awk -v m="$1" '$1 == m {print $2}'; }
metric_at_least() { [ "$(metric "$1")" -ge "$2" ]; }

# A write to a connection the daemon has closed must fail, not kill the test.
trap '' PIPE

fds=()
# open_idle N: N more connections, each sent "GET /" and left waiting; waits until the daemon took them.
open_idle() {
	local before fd
	before=$(metric embedwatch_metrics_http_connections_total)
	for _ in $(seq 1 "$1"); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$MPORT" || fail "connection $(( ${#fds[@]} + 1 ))"
		printf 'GET /' >&"$fd"
		fds+=("$fd")
	done
	# Each made room for itself past 32 (without eviction they are refused, and this gives up).
	wait_until metric_at_least embedwatch_metrics_http_connections_total $((before + $1)) ||
		fail "the daemon took $(( $(metric embedwatch_metrics_http_connections_total) - before )) of $1 connections"
}

HOLD=100
open_idle $HOLD
evicted=$(metric embedwatch_metrics_http_evictions_total)
timeouts=$(metric embedwatch_metrics_http_timeouts_total)
# Without a timeout (5 s per request; only a slow machine gets there) exactly 32 are held.
if [ "$timeouts" = 0 ]; then
	[ "$evicted" = $((HOLD - 32)) ] || fail "$evicted idle connections closed for new ones, expected $((HOLD - 32))"
fi
ok "$HOLD idle connections taken: $evicted closed for newer ones, $timeouts timed out"

# Each round, 40 fresh idle connections fill every slot again (whatever timed out meanwhile),
# then a scrape must be answered, and the newest idle connection must still be served.
checked=0
for n in 1 2 3 4 5; do
	open_idle 40
	t0=$(metric embedwatch_metrics_http_timeouts_total)
	curl -sf --max-time "$EW_LIMIT" "http://127.0.0.1:$MPORT/metrics" >"$T/scrape.txt" || fail "scrape $n with every slot held by an idle connection"
	grep -q '^embedwatch_metrics_http_connections_total [0-9]' "$T/scrape.txt" || fail "scrape $n: no metrics in the answer"
	last=${fds[$(( ${#fds[@]} - 1 ))]}
	line=""
	if printf 'metrics HTTP/1.1\r\n\r\n' >&"$last" 2>/dev/null; then
		IFS= read -r -t "$EW_LIMIT" -u "$last" line || true
	fi
	if [ "${line%$'\r'}" = "HTTP/1.1 200 OK" ]; then
		checked=$((checked + 1))
	elif [ "$(metric embedwatch_metrics_http_timeouts_total)" = "$t0" ]; then
		fail "round $n: the newest idle connection was closed (got \"$line\"), not the longest idle one"
	fi
done
[ "$(metric embedwatch_metrics_http_evictions_total)" -gt "$evicted" ] || fail "the scrapes closed no idle connection"
ok "5 scrapes answered with every slot held by idle connections"
if [ "$checked" -gt 0 ]; then
	ok "the newest idle connection was still served in $checked of 5 rounds$([ "$checked" = 5 ] || echo " (the others saw a request timeout: a slow machine)")"
else
	ok "# SKIP every round saw a request timeout (a slow machine): eviction order not checked"
fi

for fd in "${fds[@]}"; do exec {fd}>&-; done
stop_daemon
ok "daemon exited cleanly"
