#!/usr/bin/env bash
# requires: none
# Metrics as Prometheus expects them, and the shipped dashboard and alert rules
# built only on what the daemon exports: GET /metrics on metrics_listen,
# `promtool check metrics` on it, `promtool check rules` on the rules, and
# every metric named by the rules and the Grafana dashboard is exported.
. "$top_srcdir/tests/integration/lib/lib.sh"

RULES="$top_srcdir/contrib/prometheus/embedwatch.rules.yml"
DASH="$top_srcdir/contrib/grafana/embedwatch.json"
# The manual clock: every job is seen running before any ends, so the detection lag is measured.
start_sim --clock manual
sim POST /_sim/jobs "$(jobs_json 12 m-)" >/dev/null
MPORT=$(free_port)
write_conf "
[hook slowish]
type = exec
command = /bin/true
on = embed_job.complete
"
sed -i "s|^\[embedwatch\]|[embedwatch]\nmetrics_listen = 127.0.0.1:$MPORT|" "$T/ew.conf"
start_daemon
ctl watch - < <(seq -f 'm-%g' 0 11) >/dev/null
running12() { [ "$(ctl --json list --status processing | jq length)" = 12 ]; }
wait_until running12 || fail "the jobs were not all seen running"
sim_advance 3s >/dev/null
wait_until hook_has_ids 12 ' embed_job\.\(complete\|failed\|cancelled\) m-' || fail "jobs did not end: $(hook_ids ' embed_job\.\(complete\|failed\|cancelled\) m-') of 12"

curl -sf "http://127.0.0.1:$MPORT/metrics" >"$T/metrics.txt" || fail "GET /metrics"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/other")" = 404 ] || fail "other paths are not 404"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$MPORT/metrics")" = 405 ] || fail "POST is not 405"
curl -sI "http://127.0.0.1:$MPORT/metrics" | grep -qi '^content-type: text/plain; version=0.0.4' || fail "content type"
ok "GET /metrics on metrics_listen ($(wc -l <"$T/metrics.txt") lines); other paths 404, other methods 405"

if part_requires "promtool check metrics and check rules (HELP and TYPE checked by hand instead)" promtool; then
	lint=$(promtool check metrics <"$T/metrics.txt" 2>&1) || fail "promtool check metrics: $lint"
	[ -z "$lint" ] || fail "promtool check metrics: $lint"
	ok "promtool check metrics: no problem"
	promtool check rules "$RULES" >"$T/rules.out" 2>&1 || fail "promtool check rules: $(cat "$T/rules.out")"
	ok "promtool check rules: $(grep -o 'SUCCESS: [0-9]* rules found' "$T/rules.out")"
else
	# Without promtool: HELP and TYPE for every family, and the rules file at least parses as YAML-ish text.
	awk '/^# TYPE/ {t[$3]=1} /^# HELP/ {h[$3]=1} !/^#/ {n=$1; sub(/\{.*/, "", n); sub(/_(bucket|sum|count)$/, "", n); if (!t[n] || !h[n]) {print "no HELP/TYPE: " n; bad=1}} END {exit bad}' \
		"$T/metrics.txt" || fail "families without HELP or TYPE"
	ok "HELP and TYPE for every family, checked by hand"
fi

# Every family has HELP and TYPE (also checked by promtool), and the new ones are there.
for m in embedwatch_build_info process_start_time_seconds embedwatch_detection_lag_seconds_bucket \
	embedwatch_request_duration_seconds_count embedwatch_request_budget_per_second \
	embedwatch_last_poll_success_timestamp_seconds; do
	grep -q "^$m[{ ]" "$T/metrics.txt" || fail "$m not exported"
done
lag=$(awk '$1 == "embedwatch_detection_lag_seconds_count" {print $2}' "$T/metrics.txt")
[ "$lag" -ge 1 ] || fail "detection lag never observed"
ok "build info, start time, budget, last success, request duration and detection lag ($lag observations) exported"

# Names the dashboard and rules use, without label selectors and histogram suffixes' base confusion.
exported=$(grep -v '^#' "$T/metrics.txt" | sed 's/[{ ].*//' | sort -u)
names() {
	grep -o '[a-z_][a-z0-9_]*' | grep -E '^(embedwatch_|process_)' | sort -u
}
used=$( { jq -r '.. | .expr? // empty, .query? // empty' "$DASH"; grep -E '^\s*expr:|^\s{10}' "$RULES"; } | names)
[ -n "$used" ] || fail "no metric names found in the dashboard and rules"
missing=""
for m in $used; do
	grep -qx "$m" <<<"$exported" || missing="$missing $m"
done
[ -z "$missing" ] || fail "named by the dashboard or rules but not exported:$missing"
ok "every metric the dashboard and the rules name is exported ($(echo "$used" | wc -l) names)"
jq -e '.panels | length >= 10' "$DASH" >/dev/null || fail "dashboard has too few panels"
for t in "Jobs by status" "Detection lag" "Requests vs budget" "Pauses" "Deliveries" "Commit"; do
	jq -e --arg t "$t" '[.panels[].title | select(startswith($t))] | length >= 1' "$DASH" >/dev/null || fail "no panel \"$t\""
done
for a in EmbedwatchRateLimited EmbedwatchApiKeyRefused EmbedwatchDeadDeliveries EmbedwatchStateNotWritable EmbedwatchNoSuccessfulPoll; do
	grep -q "alert: $a\$" "$RULES" || fail "no alert $a"
done
ok "dashboard panels and alert rules present"
stop_daemon
