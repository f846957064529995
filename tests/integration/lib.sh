# Shared helpers for the integration tests: start the simulator and the daemon
# on free loopback ports in a private temporary directory, clean up on exit.
# shellcheck shell=bash
set -euo pipefail

: "${top_builddir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
SIM="$top_builddir/embedwatch-sim"
DAEMON="$top_builddir/embedwatchd"
CTL="$top_builddir/embedwatchctl"
T=$(mktemp -d "${TMPDIR:-/tmp}/ew-test.XXXXXX")
PIDS=()
TOKEN=test-key

cleanup() {
	local rc=$?
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ $rc -ne 0 ]; then
		echo "--- test failed (rc=$rc); logs in $T:" >&2
		for f in "$T"/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 40 "$f" >&2; }; done
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

# wait_for SECONDS COMMAND...: retries COMMAND every 50 ms until it succeeds.
wait_for() {
	local limit=$1; shift
	local end=$(( $(date +%s%N) / 1000000 + limit * 1000 ))
	until "$@" >/dev/null 2>&1; do
		(( $(date +%s%N) / 1000000 < end )) || return 1
		sleep 0.05
	done
}

# start_sim [ARGS...]: starts the simulator; sets SIM_PORT, SIM_URL, SIM_PID.
start_sim() {
	rm -f "$T/sim.port"
	"$SIM" --port 0 --port-file "$T/sim.port" --token "$TOKEN" "$@" >"$T/sim.log" 2>&1 &
	SIM_PID=$!
	PIDS+=("$SIM_PID")
	wait_for 10 test -s "$T/sim.port" || fail "simulator did not start"
	SIM_PORT=$(cat "$T/sim.port")
	SIM_URL="http://127.0.0.1:$SIM_PORT"
}

# sim METHOD PATH [BODY]: an admin or API request to the simulator; prints the body.
sim() {
	local m=$1 p=$2
	if [ $# -ge 3 ]; then
		curl -sS -X "$m" -H 'Content-Type: application/json' --data-binary "$3" "$SIM_URL$p"
	else
		curl -sS -X "$m" "$SIM_URL$p"
	fi
}

# api PATH [CURL ARGS...]: an authorised API request; prints "STATUS BODY".
api() {
	local p=$1; shift
	curl -sS -o "$T/api.body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$@" "$SIM_URL$p" >"$T/api.code" || true
	printf '%s %s' "$(cat "$T/api.code")" "$(cat "$T/api.body" 2>/dev/null)"
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
