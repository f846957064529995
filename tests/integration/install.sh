#!/usr/bin/env bash
# requires: man
# make install DESTDIR=... lays out the binaries, config, hook, units and man
# pages; the man pages render without warnings.
. "$top_srcdir/tests/integration/lib/lib.sh"
dest="$T/root"
${MAKE:-make} -s -C "$top_builddir" install DESTDIR="$dest" >"$T/install.log" 2>&1 || fail "make install: $(tail -5 "$T/install.log")"
where() { find "$dest" -path "*$1" | sed -n 1p; }
for f in /sbin/embedwatchd /bin/embedwatchctl /bin/embedwatch-sim /etc/embedwatch/embedwatch.conf \
	 /share/embedwatch/hooks/print-event /systemd/system/embedwatchd.service /systemd/system/embedwatchd@.service \
	 /man/man8/embedwatchd.8 /man/man1/embedwatchctl.1 /man/man5/embedwatch.conf.5 /man/man1/embedwatch-sim.1 \
	 /share/bash-completion/completions/embedwatchctl /share/embedwatch/contrib/grafana/embedwatch.json \
	 /share/embedwatch/contrib/prometheus/embedwatch.rules.yml; do
	[ -n "$(where "$f")" ] || fail "not installed: *$f"
done
daemon=$(where /sbin/embedwatchd); unit=$(where /systemd/system/embedwatchd.service); conf=$(where /etc/embedwatch/embedwatch.conf)
[ -x "$daemon" ] && [ -x "$(where /share/embedwatch/hooks/print-event)" ] || fail "not executable"
grep -q "^ExecStart=${daemon#$dest} -c ${conf#$dest}$" "$unit" || fail "unit paths not substituted: $(grep ExecStart "$unit")"
! grep -q '@[a-z]*@' "$unit" "$(where /systemd/system/embedwatchd@.service)" || fail "unsubstituted @var@"
"$daemon" --check-config -c "$conf" >/dev/null || fail "installed config invalid"
ok "make install lays out binaries, config, hook, units, man pages, completion and contrib ($(find "$dest" -type f | wc -l) files)"
for m in $(find "$dest" -path "*/man/man*/*" -type f); do
	out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$m" 2>&1 >/dev/null)
	[ -z "$out" ] || fail "man --warnings $(basename "$m"): $out"
	[ "$(LC_ALL=C.UTF-8 MANWIDTH=80 man -E UTF-8 -l "$m" 2>/dev/null | wc -l)" -gt 40 ] || fail "$(basename "$m") renders short"
done
ok "man pages render without warnings"
