#!/usr/bin/env bash
# requires: none
# The shipped example config is valid as it is, and with every option uncommented.
. "$top_srcdir/tests/integration/lib/lib.sh"
conf="$top_srcdir/conf/embedwatch.conf"
"$DAEMON" --check-config -c "$conf" | grep -q 'configuration valid (0 hooks)' || fail "example config as shipped"
sed -e 's/^#\([a-z_]* =\)/\1/' -e 's/^#\(\[hook \)/\1/' "$conf" >"$T/all.conf"
[ "$(grep -c '^[a-z_]* =' "$T/all.conf")" -ge 30 ] || fail "too few options uncommented"
"$DAEMON" --check-config -c "$T/all.conf" | grep -q 'configuration valid (2 hooks)' || fail "every option uncommented: $("$DAEMON" --check-config -c "$T/all.conf" 2>&1)"
ok "example config valid, also with all $(grep -c '^[a-z_]* =' "$T/all.conf") options set"
