#!/usr/bin/env bash
# The Debian package, installed into a scratch root (dpkg -x): the file list,
# the conffile, the maintainer scripts enable but do not start the service,
# the shipped config passes --check-config, and without a key the daemon says
# where to put it and exits 78 (which the unit does not restart on).
#   tests/deb-install.sh build/deb/embedwatch_*.deb
set -euo pipefail
deb=$1
T=$(mktemp -d "${TMPDIR:-/tmp}/ew-deb.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

dpkg -x "$deb" "$T/root"
dpkg -e "$deb" "$T/control"
expected="/etc/embedwatch/embedwatch.conf
/lib/systemd/system/embedwatchd.service
/lib/systemd/system/embedwatchd@.service
/usr/bin/embedwatch-sim
/usr/bin/embedwatchctl
/usr/sbin/embedwatchd
/usr/share/bash-completion/completions/embedwatchctl
/usr/share/doc/embedwatch/changelog.gz
/usr/share/doc/embedwatch/copyright
/usr/share/embedwatch/contrib/grafana/embedwatch.json
/usr/share/embedwatch/contrib/prometheus/embedwatch.rules.yml
/usr/share/embedwatch/hooks/print-event
/usr/share/man/man1/embedwatch-sim.1.gz
/usr/share/man/man1/embedwatchctl.1.gz
/usr/share/man/man5/embedwatch.conf.5.gz
/usr/share/man/man8/embedwatchd.8.gz"
got=$(cd "$T/root" && find . -type f | sed 's|^\.||' | LC_ALL=C sort)
[ "$got" = "$(LC_ALL=C sort <<<"$expected")" ] || fail "file list differs:
$(diff <(LC_ALL=C sort <<<"$expected") <(echo "$got") || true)"
ok "file list: $(echo "$got" | wc -l) files as expected"

grep -qx /etc/embedwatch/embedwatch.conf "$T/control/conffiles" || fail "embedwatch.conf is not a conffile"
grep -q 'deb-systemd-helper .*enable.*embedwatchd.service\|deb-systemd-helper enable' "$T/control/postinst" || fail "postinst does not enable the unit"
! grep -q 'deb-systemd-invoke .*start' "$T/control/postinst" || fail "postinst starts the unit"
ok "conffile /etc/embedwatch/embedwatch.conf; the unit is enabled, not started"

unit="$T/root/lib/systemd/system/embedwatchd.service"
grep -qx 'ExecStart=/usr/sbin/embedwatchd -c /etc/embedwatch/embedwatch.conf' "$unit" || fail "ExecStart: $(grep ExecStart "$unit")"
grep -qx 'RestartPreventExitStatus=78' "$unit" && grep -q '^SetCredential=cohere-api-key:' "$unit" || fail "no-key handling missing"
ok "unit: paths, blank-credential fallback, no restart on 78"

daemon="$T/root/usr/sbin/embedwatchd"
"$daemon" --check-config -c "$T/root/etc/embedwatch/embedwatch.conf" | grep -q 'configuration valid' || fail "shipped config rejected"
ok "embedwatchd --check-config accepts the shipped conffile"

mkdir -p "$T/creds" "$T/state"
printf '\n' >"$T/creds/cohere-api-key"
sed -e "s|^#state_dir = .*|state_dir = $T/state|" -e "s|^#control_socket = .*|control_socket = $T/ctl.sock|" \
	"$T/root/etc/embedwatch/embedwatch.conf" >"$T/test.conf"
rc=0
# timeout(1) only ends a daemon that hangs instead of exiting: the suite-wide limit (tests/integration/lib/lib.sh).
env -u CO_API_KEY CREDENTIALS_DIRECTORY="$T/creds" timeout "$(( ${EW_TEST_TIMEOUT:-120} * ${EW_TEST_SLOWDOWN:-1} ))" "$daemon" -c "$T/test.conf" >"$T/out" 2>&1 || rc=$?
[ $rc = 78 ] && grep -q 'no API key configured: put it in /etc/embedwatch/cohere-api-key' "$T/out" || fail "no key: rc=$rc $(cat "$T/out")"
ok "without a key: a clear message and exit 78"
"$T/root/usr/bin/embedwatchctl" --help | grep -q '^  wait .*ID' || fail "embedwatchctl does not run"
echo "deb install: all checks passed"
