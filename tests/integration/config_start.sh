#!/usr/bin/env bash
# requires: none
# Start-up: config checking, key sources, state directory errors, refusing a
# second instance, and a reload with a bad config keeping the old one.
. "$top_srcdir/tests/integration/lib/lib.sh"

start_sim
write_conf
"$DAEMON" --check-config -c "$T/ew.conf" | grep -q 'configuration valid' || fail "--check-config on a valid file"
printf '[poll]\nrate = lots\n' >"$T/bad.conf"
rc=0; "$DAEMON" --check-config -c "$T/bad.conf" 2>"$T/err" || rc=$?
[ $rc = 1 ] && grep -q "bad.conf:2: rate: expected" "$T/err" || fail "--check-config on a bad file: rc=$rc $(cat "$T/err")"
rc=0; "$DAEMON" -c "$T/bad.conf" 2>"$T/err" || rc=$?
[ $rc = 1 ] && grep -q "bad.conf:2:" "$T/err" || fail "start with a bad file: rc=$rc"
ok "--check-config and start-up name file:line"

# --print-config: every key with its default, in a form it reads back the same.
"$DAEMON" --print-config -c "$T/ew.conf" >"$T/printed.conf" || fail "--print-config"
"$DAEMON" --print-config -c "$T/printed.conf" >"$T/printed2.conf" 2>"$T/err" || fail "--print-config of its output: $(cat "$T/err")"
cmp -s "$T/printed.conf" "$T/printed2.conf" || fail "--print-config read back differs: $(diff "$T/printed.conf" "$T/printed2.conf")"
for l in 'rate = 200/s' 'lease_ttl = 10s' 'max_age = 7d' 'retry = 200ms 400ms' 'timeout = 10s' 'max_attempts = 10' \
	'[datasets]' '[hook record]'; do
	grep -qxF "$l" "$T/printed.conf" || fail "--print-config: no line \"$l\""
done
sed "s|^\[embedwatch\]|[embedwatch]\nstate_url = postgresql://ew@db.example/ew|" "$T/ew.conf" >"$T/url.conf"
"$DAEMON" --print-config -c "$T/url.conf" >"$T/printed.conf" || fail "--print-config with state_url"
grep -qxF 'state_url = postgresql://ew@db.example/ew' "$T/printed.conf" || fail "--print-config: state_url"
ok "--print-config prints every key with its default and reads back the same"

# No key anywhere.
rc=0; env -u CO_API_KEY "$DAEMON" -c "$T/ew.conf" 2>"$T/err" || rc=$?
[ $rc = 78 ] && grep -q "no API key" "$T/err" || fail "no key: rc=$rc (expected 78, EX_CONFIG) $(cat "$T/err")"
# Under the unit, a missing key file leaves an empty credential (SetCredential= fallback): a clear message, exit 78.
mkdir -p "$T/creds"
printf '\n' >"$T/creds/cohere-api-key"
rc=0; env -u CO_API_KEY CREDENTIALS_DIRECTORY="$T/creds" "$DAEMON" -c "$T/ew.conf" 2>"$T/err" || rc=$?
[ $rc = 78 ] && grep -q "no API key configured: put it in .*cohere-api-key" "$T/err" || fail "empty credential: rc=$rc $(cat "$T/err")"
# A key file readable by others is refused.
printf 'k\n' >"$T/key"; chmod 644 "$T/key"
sed "s|^\[embedwatch\]|[embedwatch]\napi_key_file = $T/key|" "$T/ew.conf" >"$T/keyfile.conf"
rc=0; "$DAEMON" -c "$T/keyfile.conf" 2>"$T/err" || rc=$?
[ $rc = 1 ] && grep -q "readable by group or others" "$T/err" || fail "world-readable key: rc=$rc $(cat "$T/err")"
# The credential wins over the others and is used.
mkdir -p "$T/creds"; printf '%s\n' "$TOKEN" >"$T/creds/cohere-api-key"
sim POST /_sim/jobs '{"id":"cred1","timeline":[{"status":"processing","at":0},{"status":"complete","at":0.2}]}' >/dev/null
CREDENTIALS_DIRECTORY="$T/creds" DAEMON_KEY=wrong start_daemon
ctl watch cred1 >/dev/null
ctl wait cred1 --timeout "${EW_LIMIT}s" >/dev/null || fail "credential key not used"
ok "key sources: none is an error, a world-readable file is refused, the credential is used"

# A second instance on the same socket is refused.
rc=0; CO_API_KEY=x "$DAEMON" -c "$T/ew.conf" 2>"$T/err" || rc=$?
[ $rc = 1 ] && grep -q "another embedwatchd is listening" "$T/err" || fail "second instance: rc=$rc $(cat "$T/err")"
ok "a second instance is refused"

# Reload with a broken file keeps the running config; a good one applies.
cp "$T/ew.conf" "$T/ew.conf.good"
printf '[poll]\nburst = many\n' >>"$T/ew.conf"
kill -HUP "$DAEMON_PID"
wait_until grep -q "reload rejected, keeping the running configuration" "$T/daemon.log" || fail "bad reload not rejected"
ctl status >/dev/null || fail "daemon gone after a bad reload"
cp "$T/ew.conf.good" "$T/ew.conf"
sed -i 's/^rate = .*/rate = 7\/s/' "$T/ew.conf"
kill -HUP "$DAEMON_PID"
wait_until grep -q "reloaded: 1 hooks, rate 7.000/s" "$T/daemon.log" || fail "good reload not applied"
ok "reload: a bad file is rejected and the old config runs on; a good one applies"
stop_daemon

# A state directory that cannot be created or written is a clear error at start.
sed "s|^state_dir = .*|state_dir = /proc/embedwatch-state|" "$T/ew.conf" >"$T/nostate.conf"
rc=0; CO_API_KEY=x "$DAEMON" -c "$T/nostate.conf" 2>"$T/err" || rc=$?
[ $rc = 1 ] && grep -q "state directory /proc/embedwatch-state" "$T/err" || fail "bad state dir: rc=$rc $(cat "$T/err")"
ok "an unusable state directory is a clear error"
