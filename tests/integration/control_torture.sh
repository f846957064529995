#!/usr/bin/env bash
# requires: none
# The control protocol tortured (in the style of curl's torture mode): every
# request cut at every byte, doubled, interleaved between two clients, random
# junk between lines. Each line gets one JSON answer; the daemon stays up and
# stops cleanly (this suite also runs under ASan).
. "$top_srcdir/tests/integration/lib/lib.sh"

TORTURE="$top_builddir/tests/ctl-torture"
start_sim
write_conf
start_daemon
"$TORTURE" torture "$T/ctl.sock" "${TORTURE_SEED:-7}" >"$T/torture.out" 2>&1 || fail "torture: $(tail -n 5 "$T/torture.out")"
ok "$(tail -n 1 "$T/torture.out")"
alive "$DAEMON_PID" || fail "daemon died"
ctl status >/dev/null || fail "status after the torture"
stop_daemon
ok "daemon stopped cleanly after the torture"
