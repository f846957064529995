# The suite's two builds, shared by scripts/test and scripts/test-soak (sourced, bash):
#   build_prepare                 dependencies, autoreconf when needed; sets top and jobs
#   build_dir NAME CONF-ARGS...   configures build/NAME with CONF-ARGS and builds it
#                                 (build_configure and build_make, its two steps)
#   sanitize_probe DIR            the sanitizer flags catch what they are for: a program built
#                                 with them in DIR dies, naming the line, of an undefined shift,
#                                 a heap overflow and a leak
#   build_check NAME [MAKE-ARGS]  make check in build/NAME (output in build/NAME/check.out);
#                                 sets check_passed, check_failed (FAIL + ERROR) and
#                                 check_failures (the failed tests' names, or "make" when make
#                                 failed before any test did); returns make's status
# The builds: strict (STRICT_CONF) and sanitizers (SANITIZE_CONF, run with SANITIZE_SLOWDOWN).
# shellcheck shell=bash

STRICT_CONF=(--enable-werror)
# UBSan traps (-fsanitize-undefined-trap-on-error) and ASan reports the trap with its stack
# (handle_sigill below): without UBSan's runtime (libubsan and the libstdc++ it loads, whose
# 6 MB of globals LeakSanitizer scanned at every exit), a sanitized program's start and exit
# cost 14 ms of CPU instead of 22 (33 ms instead of 50 with the leak check), and the sanitizer
# suite 276 s of test CPU instead of 324. The same checks run; a report gives the file and
# line of the trap instead of UBSan's sentence ("left shift of 5 by 30 places").
SANITIZE_FLAGS="-fsanitize=address,undefined -fsanitize-undefined-trap-on-error"
SANITIZE_CONF=(--enable-werror
	CFLAGS="-O1 -g $SANITIZE_FLAGS -fno-omit-frame-pointer"
	LDFLAGS="$SANITIZE_FLAGS")
# Every wait's limit is multiplied by it under the sanitizers (tests/integration/lib/lib.sh).
SANITIZE_SLOWDOWN=3

# Any sanitizer report fails the program that made it, and so its test.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:handle_sigill=1}

build_prepare() {
	cd "$(dirname "${BASH_SOURCE[0]}")/.." || return 1
	top=$(pwd)
	./scripts/install-deps || return 1
	if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
		autoreconf -fi >/dev/null 2>&1 || autoreconf -fi || return 1
	fi
	jobs=$(nproc 2>/dev/null || echo 2)
}

build_configure() {   # build_configure NAME CONF-ARGS...
	local name=$1; shift
	mkdir -p "$top/build/$name"
	(cd "$top/build/$name" && "$top/configure" -q "$@" >/dev/null)
}

build_make() {   # build_make NAME
	make -C "$top/build/$1" -s -j"$jobs" >/dev/null
}

build_dir() {
	build_configure "$@" && build_make "$1"
}

sanitize_probe() {
	local dir=$1 fault rc
	mkdir -p "$dir"
	cat >"$dir/probe.c" <<-'EOF'
		#include <stdlib.h>
		#include <string.h>
		void *volatile kept;
		int main(int argc, char **argv)
		{
			volatile int n = argc;
			if (strcmp(argv[1], "shift") == 0)
				return n << 31 >> 1;                     /* probe.c:8: undefined */
			if (strcmp(argv[1], "heap") == 0) {
				char *p = malloc(n + 6);
				p[n + 6] = 1;                            /* probe.c:11: one past the end */
				free(p);
			}
			if (strcmp(argv[1], "leak") == 0)
				kept = malloc(24), kept = NULL;          /* probe.c:15: lost */
			return 0;
		}
	EOF
	# shellcheck disable=SC2086
	${CC:-cc} -O1 -g $SANITIZE_FLAGS -fno-omit-frame-pointer -o "$dir/probe" "$dir/probe.c" || return 1
	for fault in shift:8 heap:11 leak:15; do
		rc=0
		"$dir/probe" "${fault%:*}" 2>"$dir/probe.${fault%:*}" || rc=$?
		if [ $rc = 0 ] || ! grep -q '^SUMMARY: AddressSanitizer' "$dir/probe.${fault%:*}" ||
			! grep -q "probe\.c:${fault#*:}\b" "$dir/probe.${fault%:*}"; then
			echo "sanitize_probe: ${fault%:*} not reported at probe.c:${fault#*:} (exit $rc):" >&2
			cat "$dir/probe.${fault%:*}" >&2
			return 1
		fi
		echo "  ${fault%:*} (probe.c:${fault#*:}): $(sed -n 's/^SUMMARY: //p' "$dir/probe.${fault%:*}")"
	done
}

build_check() {
	local name=$1; shift
	local dir="$top/build/$name" rc=0 p f e
	# A make that fails before the harness runs must not leave the last run's counts.
	rm -f "$dir/test-suite.log"
	make -C "$dir" -s -j"$jobs" check "$@" >"$dir/check.out" 2>&1 || rc=$?
	p=$(sed -n 's/^# PASS: *//p' "$dir/test-suite.log" 2>/dev/null | head -1)
	f=$(sed -n 's/^# FAIL: *//p' "$dir/test-suite.log" 2>/dev/null | head -1)
	e=$(sed -n 's/^# ERROR: *//p' "$dir/test-suite.log" 2>/dev/null | head -1)
	check_passed=${p:-0}
	check_failed=$(( ${f:-0} + ${e:-0} ))
	check_failures=$(sed -n 's/^\(FAIL\|ERROR\): \(.*\)$/\2/p' "$dir/check.out")
	# make itself failed (a build error) without a test failing: count that as one failure.
	if [ $rc -ne 0 ] && [ "$check_failed" = 0 ]; then
		check_failed=1
		check_failures=make
	fi
	return $rc
}
