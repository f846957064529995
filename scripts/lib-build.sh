# The suite's two builds, shared by scripts/test and scripts/test-soak (sourced, bash):
#   build_prepare                 dependencies, autoreconf when needed; sets top and jobs
#   build_dir NAME CONF-ARGS...   configures build/NAME with CONF-ARGS and builds it
#                                 (build_configure and build_make, its two steps)
#   build_check NAME [MAKE-ARGS]  make check in build/NAME (output in build/NAME/check.out);
#                                 sets check_passed, check_failed (FAIL + ERROR) and
#                                 check_failures (the failed tests' names, or "make" when make
#                                 failed before any test did); returns make's status
# The builds: strict (STRICT_CONF) and sanitizers (SANITIZE_CONF, run with SANITIZE_SLOWDOWN).
# shellcheck shell=bash

STRICT_CONF=(--enable-werror)
SANITIZE_CONF=(--enable-werror
	CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
	LDFLAGS="-fsanitize=address,undefined")
# Every wait's limit is multiplied by it under the sanitizers (tests/integration/lib/lib.sh).
SANITIZE_SLOWDOWN=3

# Any sanitizer report fails the program that made it, and so its test.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

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
