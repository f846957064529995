#!/usr/bin/env bash
# requires: nghttpx tinyproxy openssl ss
# The production transport: TLS, HTTP/2, a private CA and a forward proxy,
# with real servers from Debian on loopback: nghttpx (TLS + HTTP/2 in front of
# the simulator, as a real edge), tinyproxy (CONNECT proxy with Basic auth),
# the simulator's own HTTPS (HTTP/1.1 only). Certificates made here with openssl.
. "$top_srcdir/tests/integration/lib/lib.sh"

# ---- a private CA, a server certificate, a wrong-host one, an expired one, another CA ----
C="$T/certs"
mkdir -p "$C/ca"
key() { echo "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"; }
mkca() {   # mkca NAME
	# shellcheck disable=SC2046
	openssl req -x509 $(key) -keyout "$C/$1.key" -out "$C/$1.crt" -days 30 -subj "/CN=embedwatch test $1" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
mkcert() {   # mkcert NAME SAN [STARTDATE ENDDATE]: signed by ca
	# shellcheck disable=SC2046
	openssl req $(key) -keyout "$C/$1.key" -out "$C/$1.csr" -subj "/CN=$1" 2>/dev/null
	cat >"$C/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
dir = $C/ca
database = $C/ca/index.txt
serial = $C/ca/serial
new_certs_dir = $C/ca
certificate = $C/ca.crt
private_key = $C/ca.key
default_md = sha256
default_days = 30
policy = p
unique_subject = no
[p]
commonName = supplied
[x]
subjectAltName = $2
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
CNF
	[ -f "$C/ca/index.txt" ] || { : >"$C/ca/index.txt"; echo 1000 >"$C/ca/serial"; }
	openssl ca -batch -config "$C/ca.cnf" -extensions x -in "$C/$1.csr" -out "$C/$1.crt" \
		${3:+-startdate "$3"} ${4:+-enddate "$4"} >/dev/null 2>&1 || fail "openssl ca for $1"
}
mkca ca
mkca other-ca
mkcert good 'DNS:localhost,IP:127.0.0.1'
mkcert wronghost 'DNS:wrong.example'
mkcert expired 'DNS:localhost,IP:127.0.0.1' 20200101000000Z 20200201000000Z
ok "certificates: a private CA, good, wrong host, expired, another CA"

# ---- servers ----
start_sim
NG_PORT=$(free_port)
nghttpx --conf=/dev/null --frontend="127.0.0.1,$NG_PORT" --backend="127.0.0.1,$SIM_PORT" --workers=1 --no-ocsp \
	--accesslog-file="$T/nghttpx-access.log" --errorlog-file="$T/nghttpx.log" \
	--accesslog-format='$remote_port $alpn $status $method $path' "$C/good.key" "$C/good.crt" &
PIDS+=($!)
wait_until curl -sf --cacert "$C/ca.crt" -o /dev/null "https://localhost:$NG_PORT/_sim/stats" || fail "nghttpx did not start"
TP_PORT=$(free_port)
cat >"$T/tinyproxy.conf" <<CONF
Port $TP_PORT
Listen 127.0.0.1
Allow 127.0.0.1
LogFile "$T/tinyproxy.log"
LogLevel Info
MaxClients 64
BasicAuth proxyuser pr0xy-s3cret
CONF
tinyproxy -d -c "$T/tinyproxy.conf" >"$T/tinyproxy.out" 2>&1 &
PIDS+=($!)
wait_until sh -c "ss -Htln 'sport = :$TP_PORT' | grep -q ." || fail "tinyproxy did not start"
printf 'proxyuser:pr0xy-s3cret\n' >"$T/proxy.cred"
chmod 600 "$T/proxy.cred"

# tls_sim NAME CERT: the simulator itself over HTTPS (HTTP/1.1), with that certificate; sets TLS_PORT.
tls_sim() {
	rm -f "$T/$1.port"
	"$SIM" --port 0 --port-file "$T/$1.port" --token "$TOKEN" --tls-cert "$C/$2.crt" --tls-key "$C/$2.key" \
		>"$T/$1.log" 2>&1 &
	PIDS+=($!)
	wait_until test -s "$T/$1.port" || fail "simulator $1 did not start"
	TLS_PORT=$(cat "$T/$1.port")
}
# tls_jobs PORT N PREFIX: N jobs ending between 0.3 and 1.5 s on the simulator at PORT (over https).
tls_jobs() {
	curl -sk -X POST -H 'Content-Type: application/json' --data-binary "$(jobs_json "$2" "$3")" \
		"https://localhost:$1/_sim/jobs" >/dev/null || fail "posting jobs"
}
# tls_jobs_ended PORT PREFIX N: the simulator at PORT says N jobs of PREFIX have ended.
tls_jobs_ended() {
	[ "$(curl -sk "https://localhost:$1/_sim/stats" | jq --arg p "$2" \
		'[.jobs | to_entries[] | select((.key | startswith($p)) and (.value.status | test("complete|failed|cancelled")))] | length')" -ge "$3" ]
}
# conf_tls BASE [EXTRA-INI]: the usual config with another api_base.
conf_tls() {
	write_conf "${2:-}"
	sed -i "s|^api_base = .*|api_base = $1|" "$T/ew.conf"
}
terminal_once() {   # terminal_once PREFIX N: N jobs have a terminal event, each exactly one line
	ere_quote "$1"
	ids_count "${HOOK_EVENTS:-$T/hooks/events}" 3 "^[^ ]+ embed_job[.](complete|failed|cancelled) $REPLY" &&
		[ "$REPLY" = "$2" ] && [ "$IDS_LINES" = "$2" ]
}
metric() { ctl metrics | awk -v m="$1" '$1 == m {print $2}'; }

# 1. 200 jobs over HTTPS + HTTP/2 through nghttpx, trusting the private CA by api_ca_file.
#    Polled per id (sections 1 to 3): the list sweep would need a handful of requests, one at
#    a time, and multiplexing needs many at once.
sim POST /_sim/jobs "$(jobs_json 200 h2-)" >/dev/null
SWEEP=no conf_tls "https://localhost:$NG_PORT"
sed -i "s|^\[embedwatch\]|[embedwatch]\napi_ca_file = $C/ca.crt|" "$T/ew.conf"
sed -i 's/^max_in_flight = .*/max_in_flight = 16\nmax_connections = 2/' "$T/ew.conf"
start_daemon
ctl watch - < <(seq -f 'h2-%g' 0 199) >/dev/null
wait_until terminal_once h2- 200 || fail "over h2: $(hook_lines | grep -c ' h2-') hook lines"
h2=$(awk '$2 == "h2"' "$T/nghttpx-access.log" | wc -l)
conns=$(awk '$2 == "h2" {print $1}' "$T/nghttpx-access.log" | sort -u | wc -l)
opened=$(metric embedwatch_http_connections_opened_total)
[ "$h2" -ge 10 ] || fail "only $h2 requests over h2"
[ "$conns" -le 2 ] && [ "$opened" -le 2 ] || fail "connections: $conns seen by nghttpx, $opened opened (max_connections 2)"
ok "200 jobs over TLS + HTTP/2 with api_ca_file: every terminal event once; $h2 requests multiplexed over $conns connection(s)"
stop_daemon

# 2. The same through tinyproxy (CONNECT, Basic auth from a file); credentials never in argv or logs.
sim POST /_sim/jobs "$(jobs_json 50 px-)" >/dev/null
sed -i "s|^\[embedwatch\]|[embedwatch]\nproxy = http://127.0.0.1:$TP_PORT\nproxy_credentials_file = $T/proxy.cred|" "$T/ew.conf"
: >"$T/tinyproxy.log"
start_daemon
! grep -q 'pr0xy-s3cret' /proc/"$DAEMON_PID"/cmdline /proc/"$DAEMON_PID"/environ || fail "proxy password in argv or environment"
ctl watch - < <(seq -f 'px-%g' 0 49) >/dev/null
wait_until terminal_once px- 50 || fail "through the proxy: $(hook_lines | grep -c ' px-') hook lines"
connects=$(grep -c "CONNECT localhost:$NG_PORT" "$T/tinyproxy.log" || true)
[ "$connects" -ge 1 ] && [ "$connects" -le 2 ] || fail "tinyproxy saw $connects CONNECTs (expected 1 or 2, the connections)"
! grep -q 'pr0xy-s3cret' "$T/daemon.log" || fail "proxy password logged"
stop_daemon
ok "50 jobs through tinyproxy with Basic auth: $connects CONNECT(s) in its log, password in no log or argv"

# 3. No proxy option: the standard https_proxy / no_proxy variables are honoured.
sed -i '/^proxy = /d' "$T/ew.conf"
sim POST /_sim/jobs "$(jobs_json 10 env-)" >/dev/null
: >"$T/tinyproxy.log"
https_proxy="http://127.0.0.1:$TP_PORT" start_daemon
ctl watch - < <(seq -f 'env-%g' 0 9) >/dev/null
wait_until terminal_once env- 10 || fail "with https_proxy: $(hook_lines | grep -c ' env-') hook lines"
grep -q "CONNECT localhost:$NG_PORT" "$T/tinyproxy.log" || fail "https_proxy from the environment not used"
stop_daemon
: >"$T/tinyproxy.log"
sim POST /_sim/jobs "$(jobs_json 5 np-)" >/dev/null
https_proxy="http://127.0.0.1:$TP_PORT" no_proxy=localhost start_daemon
ctl watch - < <(seq -f 'np-%g' 0 4) >/dev/null
wait_until terminal_once np- 5 || fail "with no_proxy"
! grep -q 'CONNECT' "$T/tinyproxy.log" || fail "no_proxy=localhost not honoured"
stop_daemon
ok "https_proxy from the environment used; no_proxy honoured"

# 4. TLS failures pause everything with the cause named, fire nothing, and a reload with the right CA resumes.
#    (The simulator's own HTTPS speaks HTTP/1.1 only: the daemon works without h2 too.)
tls_pause_case() {   # tls_pause_case NAME CERT CA PATTERN
	local name=$1 cert=$2 ca=$3 pattern=$4
	tls_sim "$name" "$cert"
	tls_jobs "$TLS_PORT" 5 "$name-"
	rm -rf "$T/state" "$T/hooks"
	: >"$T/daemon.log"
	conf_tls "https://localhost:$TLS_PORT"
	sed -i "s|^\[embedwatch\]|[embedwatch]\napi_ca_file = $C/$ca.crt|" "$T/ew.conf"
	start_daemon
	ctl watch - < <(seq -f "$name-%g" 0 4) >/dev/null
	wait_until ctl_jq '.status.paused == "tls"' status --json || fail "$name: not paused"
	ctl status --json | jq -e --arg p "$pattern" '.status.pause_detail | test($p)' >/dev/null \
		|| fail "$name: cause not named: $(ctl status --json | jq -c .status.pause_detail)"
	ctl status | grep -q "PAUSED: TLS: .*$pattern" || fail "$name: STATUS line: $(ctl status | head -3)"
	[ "$(ctl metrics | awk '$1 == "embedwatch_pause_reason{reason=\"tls\"}" {print $2}')" = 1 ] || fail "$name: metric"
	grep -q "TLS failure talking to .*$pattern" "$T/daemon.log" || fail "$name: no loud log line"
	[ "$(grep -c 'TLS failure talking to' "$T/daemon.log")" = 1 ] || fail "$name: logged more than once"
	# Every job has ended on the simulator (0.3 to 1.5 s): a daemon still polling would fire now.
	wait_until tls_jobs_ended "$TLS_PORT" "$name-" 5 || fail "$name: the simulator's jobs did not end"
	[ -z "$(hook_lines)" ] || fail "$name: hooks fired while paused"
	ok "$name: paused, cause \"$pattern\" named in status, STATUS= and metrics, logged once, nothing fired"
}
tls_pause_case wrongca good other-ca 'unable to get local issuer certificate'
# ... and the reload with the right CA resumes at once.
sed -i "s|^api_ca_file = .*|api_ca_file = $C/ca.crt|" "$T/ew.conf"
kill -HUP "$DAEMON_PID"
wait_until terminal_once wrongca- 5 || fail "after the reload with the right CA: $(hook_lines | wc -l) hook lines"
ctl status --json | jq -e '.status.paused == "none"' >/dev/null || fail "still paused after reload"
ok "reload with the right CA: polling resumed, all 5 jobs ended over HTTPS/1.1"
stop_daemon
tls_pause_case hostname wronghost ca 'subject name'
stop_daemon
tls_pause_case expired expired ca 'expired'
stop_daemon

# 5. Webhooks to an HTTPS receiver: ca_file trusted, delivered; a wrong CA is retried and named in deliveries.
tls_sim sink good
SINK_PORT=$TLS_PORT
sim POST /_sim/jobs "$(jobs_json 3 wh-)" >/dev/null
rm -rf "$T/state" "$T/hooks"
write_conf "
[hook tlssink]
type = webhook
url = https://localhost:$SINK_PORT/_sim/sink/ok
ca_file = $C/ca.crt
on = embed_job.complete embed_job.failed embed_job.cancelled
[hook badca]
type = webhook
url = https://localhost:$SINK_PORT/_sim/sink/bad
ca_file = $C/other-ca.crt
on = embed_job.complete
retry = 200ms
max_attempts = 100
"
start_daemon
ctl watch wh-0 wh-1 wh-2 >/dev/null
sinkcount() { curl -sk "https://localhost:$SINK_PORT/_sim/sink" | jq '[.deliveries[] | select(.path | endswith("/ok"))] | length'; }
sink_has_3() { [ "$(sinkcount)" -ge 3 ]; }
wait_until sink_has_3 || fail "HTTPS sink got $(sinkcount) webhooks"
wait_until ctl_jq '[.deliveries[] | select(.hook == "badca" and (.last_error // "" | test("TLS")))] | length >= 1' deliveries --json \
	|| fail "badca deliveries: $(ctl deliveries --json | jq -c '[.deliveries[] | select(.hook == "badca")][0]')"
badca_retried() { ctl deliveries --json | jq -e '[.deliveries[] | select(.hook == "badca")] | length >= 1 and all(.state == "pending" and .attempts >= 2)' >/dev/null; }
wait_until badca_retried || fail "badca not retried: $(ctl deliveries --json | jq -c '[.deliveries[] | select(.hook == "badca")]')"
stop_daemon
ok "webhooks over HTTPS with ca_file delivered; with the wrong CA retried, the TLS cause named in deliveries"
