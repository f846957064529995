# /metrics under connection pressure: 100 idle connections, each sent a
# partial request ("GET /") and left waiting, do not lock scrapes out. At 32
# connections the longest idle one is closed for each new one, so every
# scrape is answered, and the newest idle connections are still being served.
# The counters are read through the control socket, which takes no /metrics slot.
. "$top_srcdir/tests/integration/lib.sh"

start_sim
MPORT=$(free_port)
write_conf
sed -i "s|^\[embedwatch\]|[embedwatch]\nmetrics_listen = 127.0.0.1:$MPORT|" "$T/ew.conf"
start_daemon

metric() { ctl metrics | awk -v m="$1" '$1 == m {print $2}'; }
metric_at_least() { [ "$(metric "$1")" -ge "$2" ]; }

HOLD=100
fds=()
for i in $(seq 1 $HOLD); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$MPORT" || fail "connection $i"
	printf 'GET /' >&"$fd"
	fds+=("$fd")
done
# The daemon has taken every one of them (each made room for itself past 32).
wait_until metric_at_least embedwatch_metrics_http_connections_total $HOLD || fail "the daemon took $(metric embedwatch_metrics_http_connections_total) of $HOLD connections"
evicted=$(metric embedwatch_metrics_http_evictions_total)
timeouts=$(metric embedwatch_metrics_http_timeouts_total)
# Without a timeout (5 s per request; only a very slow machine gets there) exactly 32 are held.
if [ "$timeouts" = 0 ]; then
	[ "$evicted" = $((HOLD - 32)) ] || fail "$evicted idle connections closed for new ones, expected $((HOLD - 32))"
fi
ok "$HOLD idle connections taken: $evicted closed for newer ones, $timeouts timed out"

for n in 1 2 3 4 5; do
	curl -sf --max-time "$EW_LIMIT" "http://127.0.0.1:$MPORT/metrics" >"$T/scrape.txt" || fail "scrape $n with $HOLD idle connections open"
	grep -q '^embedwatch_metrics_http_connections_total [0-9]' "$T/scrape.txt" || fail "scrape $n: no metrics in the answer"
done
ok "5 scrapes answered while the idle connections were held"

# The newest idle connection was not the one closed: finishing its request gets an answer.
last=${fds[$((HOLD - 1))]}
printf 'metrics HTTP/1.1\r\n\r\n' >&"$last"
line=""
IFS= read -r -t "$EW_LIMIT" -u "$last" line || true
if [ "${line%$'\r'}" != "HTTP/1.1 200 OK" ]; then
	[ "$(metric embedwatch_metrics_http_timeouts_total)" -gt 0 ] || fail "the newest idle connection was closed (got \"$line\"), not the longest idle"
	ok "# SKIP the newest connection timed out (a slow machine): eviction order not checked"
else
	ok "the newest idle connection is still served: the longest idle ones made room"
fi
# The first scrape found 32 idle connections and closed one; each answered scrape then left a free slot.
if [ "$(metric embedwatch_metrics_http_timeouts_total)" = 0 ]; then
	[ "$(metric embedwatch_metrics_http_evictions_total)" = $((evicted + 1)) ] || fail "scrapes closed $(( $(metric embedwatch_metrics_http_evictions_total) - evicted )) idle connections, expected 1"
fi

for fd in "${fds[@]}"; do exec {fd}>&-; done
stop_daemon
ok "daemon exited cleanly"
