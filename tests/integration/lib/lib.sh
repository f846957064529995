# Shared helpers for the integration tests: start the simulator and the daemon
# on free loopback ports in a private temporary directory, clean up on exit.
# shellcheck shell=bash
set -euo pipefail

: "${top_builddir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"

# ---- what a test needs ----
# A test's second line says what it needs beyond bash, coreutils, curl and jq
# (which every test uses): "# requires: WORD..." or "# requires: none". Sourcing
# this file reads it, and a test with something missing is skipped: exit 77 (the
# driver's SKIP) after TAP's "1..0 # SKIP NAME: what is missing". A part of a
# test that needs more says so with part_requires, never silently. A WORD is a
# command on PATH or one of: root, pg (PostgreSQL's server binaries in $PG_BIN),
# faketime (libfaketime, $FAKETIME_LIB), tmpfs (root may mount one), mountns
# (unshare -m works).
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
# The thread-safe libfaketime, preloaded by "env LD_PRELOAD=$FAKETIME_LIB FAKETIME=..."
# rather than the faketime command, which forks: the pid a test kills must be the daemon's.
FAKETIME_LIB=
for f in /usr/lib/*/faketime/libfaketimeMT.so.1 /usr/lib/faketime/libfaketimeMT.so.1; do
	[ -e "$f" ] && { FAKETIME_LIB=$f; break; }
done

# missing WORD: prints what is missing for WORD, nothing when it is there.
missing() {
	case $1 in
	none) ;;
	root) [ "$(id -u)" = 0 ] || echo "not root" ;;
	pg) [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] && command -v psql >/dev/null \
		|| echo "no PostgreSQL server (initdb, pg_ctl in $PG_BIN; psql: postgresql-15)" ;;
	faketime) [ -n "$FAKETIME_LIB" ] || echo "no libfaketime (the faketime package)" ;;
	tmpfs)
		local d ok=0
		d=$(mktemp -d "${TMPDIR:-/tmp}/ew-tmpfs.XXXXXX")
		[ "$(id -u)" = 0 ] && mount -t tmpfs -o size=1m tmpfs "$d" 2>/dev/null && umount "$d" && ok=1
		rmdir "$d"
		[ $ok = 1 ] || echo "cannot mount a tmpfs" ;;
	mountns) unshare -m true 2>/dev/null || echo "no mount namespaces (unshare -m)" ;;
	*) command -v "$1" >/dev/null || echo "no $1 command (scripts/install-deps installs it)" ;;
	esac
}

# requires_missing WORD...: what of WORD... is missing, "; " between; empty when nothing is.
requires_missing() {
	local w m out=""
	for w in "$@"; do
		m=$(missing "$w")
		[ -z "$m" ] || out+="${out:+; }$m"
	done
	printf '%s' "$out"
}

# part_requires PART WORD...: true when WORD... are all there; else prints TAP's
# "ok - # SKIP PART: what is missing" and is false, e.g.
#   if part_requires "non-dumpable check" root setpriv; then ...; fi
part_requires() {
	local part=$1 m
	shift
	m=$(requires_missing "$@")
	[ -n "$m" ] || return 0
	echo "ok - # SKIP $part: $m"
	return 1
}

# The test's requires line (among its first three lines), checked before anything
# starts; a test in tests/integration without one fails. Scripts elsewhere (bench/)
# that source this file need none.
ew_requires() {
	local words m
	words=$(sed -n '1,3s/^# requires://p' "$0")
	if [ -z "$words" ]; then
		[ "$(cd "$(dirname "$0")" && pwd)" = "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" ] || return 0
		echo "FAIL: $0 has no \"# requires:\" line atop it" >&2
		exit 1
	fi
	[ "${EW_STATE:-}" != pg ] || words+=" pg"
	# shellcheck disable=SC2086
	m=$(requires_missing $words)
	[ -z "$m" ] || { echo "1..0 # SKIP $(basename "$0" .sh): $m"; exit 77; }
}
ew_requires
SIM="$top_builddir/embedwatch-sim"
DAEMON="$top_builddir/embedwatchd"
CTL="$top_builddir/embedwatchctl"
T=$(mktemp -d "${TMPDIR:-/tmp}/ew-test.XXXXXX")
PIDS=()
# The tests' JSON queries: gojq when it is there, as the jq on PATH (so checks run by sh -c get
# it too). The same language; 8 ms of CPU a start against jq 1.6's 21, for ~1,500 queries a build.
mkdir "$T/bin"
if command -v gojq >/dev/null; then
	ln -s "$(command -v gojq)" "$T/bin/jq"
fi
# Python is Debian's (scripts/install-deps installs python3), first on PATH: a version manager's
# shim ahead of it on a developer's PATH starts a dozen programs for each call (0.35 s of CPU).
if [ -x /usr/bin/python3 ]; then
	ln -s /usr/bin/python3 "$T/bin/python3"
fi
PATH="$T/bin:$PATH"
# Functions run at exit after the processes above are gone (pg.sh stops its server there).
EW_CLEANUP_HOOKS=()
TOKEN=test-key

cleanup() {
	local rc=$?
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	for h in "${EW_CLEANUP_HOOKS[@]}"; do "$h" || true; done
	if [ $rc -ne 0 ]; then
		echo "--- test failed (rc=$rc); logs in $T:" >&2
		for f in "$T"/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 40 "$f" >&2; }; done
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND exited non-zero" >&2' ERR
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

# One suite-wide limit for every wait, reached only when something is really
# wrong: EW_TEST_TIMEOUT seconds (default 120) times EW_TEST_SLOWDOWN (default
# 1; scripts/test sets 3 for the sanitizer build, valgrind runs want more).
: "${EW_TEST_TIMEOUT:=120}"
: "${EW_TEST_SLOWDOWN:=1}"
EW_LIMIT=$(( EW_TEST_TIMEOUT * EW_TEST_SLOWDOWN ))

# now_ms: the wall clock in milliseconds (no process: $EPOCHREALTIME is "seconds.microseconds").
now_ms() { local us=${EPOCHREALTIME//[!0-9]/}; echo $(( us / 1000 )); }

# wait_until COMMAND...: retries COMMAND every 50 ms until it succeeds, or
# fails once the suite-wide limit has passed. A test waits for the condition it
# checks, never for the clock.
# The polling takes at most about half of a core from the processes it waits for, and less
# the longer it waits: the pause after a check is 50 ms, or as long as the check took when
# that was longer (under the sanitizers one embedwatchctl costs ~100 ms of CPU,
# LeakSanitizer's scan at exit included), or a twentieth of the time waited so far (a wait
# of seconds is for a lease or a Retry-After: checked 4-5 times a second, it ends at most
# 5% later), never more than 0.5 s. The loop itself starts no process: the clock is bash's
# $EPOCHREALTIME, the pause a read that times out on a FIFO nobody writes to (a date and
# a sleep per step cost ~15 ms of CPU on a small VM). A check runs without LeakSanitizer's
# scan at exit (half of a sanitized embedwatchctl's cost): it repeats, every step alike, the
# client calls the test makes itself, which are scanned.
mkfifo "$T/.pause"
wait_until() {
	local wu_start=${EPOCHREALTIME//[!0-9]/} wu_end wu_t0 wu_t1 wu_step wu_pause
	local wu_asan=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
	wu_end=$(( wu_start + EW_LIMIT * 1000000 ))
	until wu_t0=${EPOCHREALTIME//[!0-9]/}; ASAN_OPTIONS=$wu_asan "$@" >/dev/null 2>&1; do
		wu_t1=${EPOCHREALTIME//[!0-9]/}
		(( wu_t1 < wu_end )) || { echo "wait_until: gave up after ${EW_LIMIT}s: $*" >&2; return 1; }
		wu_step=$(( wu_t1 - wu_t0 ))
		(( wu_step >= (wu_t1 - wu_start) / 20 )) || wu_step=$(( (wu_t1 - wu_start) / 20 ))
		wu_step=$(( wu_step < 50000 ? 50000 : wu_step > 500000 ? 500000 : wu_step ))
		printf -v wu_pause '0.%06d' "$wu_step"
		read -r -t "$wu_pause" <>"$T/.pause" || true
	done
}

# start_sim [ARGS...]: starts the simulator; sets SIM_PORT, SIM_URL, SIM_PID.
start_sim() {
	rm -f "$T/sim.port"
	"$SIM" --port 0 --port-file "$T/sim.port" --token "$TOKEN" "$@" >"$T/sim.log" 2>&1 &
	SIM_PID=$!
	PIDS+=("$SIM_PID")
	wait_until test -s "$T/sim.port" || fail "simulator did not start"
	SIM_PORT=$(cat "$T/sim.port")
	SIM_URL="http://127.0.0.1:$SIM_PORT"
}

# sim METHOD PATH [BODY]: an admin or API request to the simulator; prints the body.
# HTTP/1.0 over bash's /dev/tcp, the body read by bash when the answer says its length (cat
# otherwise): a curl costs 17 ms of CPU a start, a cat 4, and the tests make about 900 of
# these calls a build.
sim() {
	local m=$1 p=$2 hp=${SIM_URL#http://} fd line len="" body LC_ALL=C
	exec {fd}<>"/dev/tcp/${hp%:*}/${hp##*:}" || return 1
	if [ $# -ge 3 ]; then
		printf '%s %s HTTP/1.0\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
			"$m" "$p" "$hp" "${#3}" "$3" >&"$fd"
	else
		printf '%s %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$m" "$p" "$hp" >&"$fd"
	fi
	# The status line and the headers, up to the empty line; then the body: Content-Length bytes
	# read by bash up to 64 KiB (LC_ALL=C: read -N counts bytes; 43 ms a MB, where cat takes
	# 5), or by cat to the end.
	while IFS= read -r -u "$fd" line && line=${line%$'\r'} && [ -n "$line" ]; do
		case ${line,,} in content-length:*) len=${line#*:}; len=${len// /} ;; esac
	done
	if [[ $len =~ ^[0-9]{1,5}$ ]] && [ "$len" -le 65536 ]; then
		IFS= read -r -N "$len" -u "$fd" body || true
		printf '%s' "$body"
	else
		cat <&"$fd"
	fi
	exec {fd}<&-
}

# sim_jq PATH FILTER: the simulator's answer to GET PATH satisfies the jq FILTER (for wait_until).
sim_jq() { sim GET "$1" | jq -e "$2" >/dev/null; }
# ctl_jq FILTER ARGS...: the answer of the client's command ARGS (with --json) satisfies the jq FILTER.
ctl_jq() { local f=$1; shift; ctl "$@" | jq -e "$f" >/dev/null; }

# api PATH [CURL ARGS...]: an authorised API request; prints "STATUS BODY".
api() {
	local p=$1; shift
	curl -sS -o "$T/api.body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$@" "$SIM_URL$p" >"$T/api.code" || true
	printf '%s %s' "$(cat "$T/api.code")" "$(cat "$T/api.body" 2>/dev/null)"
}


# free_port: a loopback TCP port nothing listens on (for servers that cannot take port 0),
# below the kernel's range of ephemeral ports, which any connection of the machine's may take
# between this check and the server's bind.
free_port() {
	local p lo=32768 hi
	read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
	[ "$lo" -gt 12000 ] || lo=32768
	for _ in $(seq 1 50); do
		p=$(( 10000 + RANDOM % (lo - 10000) ))
		[ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return 0; }
	done
	return 1
}

# ---- the daemon ----
# The recording exec hook (tests/record-hook.c: one process per delivery).
HOOK="$top_builddir/tests/record-hook"

# write_conf [EXTRA-INI]: a config for the daemon against the simulator, with a
# recording exec hook for every event. Extra sections/keys are appended. The
# observation mode is pinned (planner = sweep; sweep = no is per-id) so a test
# of something else does not change course when a loaded machine slows the
# list down; planner.sh sets PLANNER=auto.
write_conf() {
	mkdir -p "$T/hooks"
	cat >"$T/ew.conf" <<CONF
[embedwatch]
api_base = $SIM_URL
state_dir = $T/state
control_socket = $T/ctl.sock
log_level = ${LOG_LEVEL:-info}
[poll]
interval_min = ${INTERVAL_MIN:-100ms}
interval_max = ${INTERVAL_MAX:-500ms}
rate = ${RATE:-200/s}
default_rate = ${DEFAULT_RATE:-200/s}
burst = ${BURST:-20}
max_in_flight = ${MAX_IN_FLIGHT:-16}
request_timeout = ${REQUEST_TIMEOUT:-2s}
sweep = ${SWEEP:-yes}
sweep_interval = ${SWEEP_INTERVAL:-100ms}
sweep_interval_max = ${SWEEP_INTERVAL_MAX:-500ms}
planner = ${PLANNER:-sweep}
[hook record]
type = exec
command = $HOOK $T/hooks
on = *
timeout = 10s
retry = 200ms 400ms
CONF
	if [ $# -gt 0 ]; then printf '%s\n' "$1" >>"$T/ew.conf"; fi
	# With pg.sh loaded (EW_STATE=pg), the state is on the test's PostgreSQL server.
	if declare -F pg_conf >/dev/null; then pg_conf; fi
}

# account_ini NAME PROVIDER [KEY]: prints an [account NAME] section of PROVIDER against the
# simulator, its key (default $TOKEN) in an owner-only file $T/NAME.key; for write_conf.
account_ini() {
	printf '%s\n' "${3:-$TOKEN}" >"$T/$1.key"
	chmod 0600 "$T/$1.key"
	printf '[account %s]\nprovider = %s\napi_base = %s\nkey_file = %s\n' "$1" "$2" "$SIM_URL" "$T/$1.key"
}

# start_daemon: starts embedwatchd on $T/ew.conf; waits until the socket answers.
start_daemon() {
	# EW_WRAPPER runs the daemon under a tool, e.g. valgrind (bench/faults does).
	# shellcheck disable=SC2086
	CO_API_KEY="${DAEMON_KEY:-$TOKEN}" ${EW_WRAPPER:-} "$DAEMON" -c "$T/ew.conf" >>"$T/daemon.log" 2>&1 &
	DAEMON_PID=$!
	PIDS+=("$DAEMON_PID")
	wait_until answers_or_gone "$DAEMON_PID" "$T/ctl.sock" && [ "$REPLY" = answers ] || fail "daemon did not start"
}

# answers_or_gone PID SOCKET: the daemon on SOCKET answers status (REPLY=answers), or the
# process PID has ended (REPLY=gone): for wait_until, so that a daemon that refused to start
# ends the wait at once instead of at the suite's limit.
answers_or_gone() {
	REPLY=answers
	"$CTL" -s "$2" status && return 0
	REPLY=gone
	! alive "$1"
}

# stop_daemon: SIGTERM, then asserts a clean exit (status 0: no sanitizer report, loop closed).
stop_daemon() {
	local rc=0
	kill -TERM "$DAEMON_PID" 2>/dev/null || true
	wait "$DAEMON_PID" || rc=$?
	[ "$rc" = 0 ] || fail "daemon exited with status $rc (see daemon.log)"
	! grep -q "event loop did not close cleanly" "$T/daemon.log" || fail "event loop did not close cleanly"
}

# kill9_daemon: SIGKILL, no chance to commit anything.
kill9_daemon() {
	kill -KILL "$DAEMON_PID" 2>/dev/null || true
	wait "$DAEMON_PID" 2>/dev/null || true
}

# alive PID: the process exists and is not a zombie (its state in /proc, after the name in
# parentheses: no process started, as wait_until's checks call it).
alive() {
	local st
	read -r st 2>/dev/null <"/proc/$1/stat" || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}

# ctl ARGS...: the client on the test's daemon. Under the sanitizers each distinct use (the
# command and its options, e.g. "show --json") is leak-checked the first time a test makes
# it; its repeats run without LeakSanitizer's exit scan, which is most of a sanitized client's
# cost (35 of 55 ms of CPU) and finds nothing new on a path it has already scanned. The uses
# seen are files in $T/.ctl (a call in a pipeline or $(...) runs in a subshell).
mkdir "$T/.ctl"
ctl() {
	local a key=""
	for a in "$@"; do
		case $a in -*) key+=" $a" ;; esac
	done
	key="${1:-}$key"
	key="$T/.ctl/${key//[!a-zA-Z0-9-]/_}"
	if [ -e "$key" ]; then
		ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 "$CTL" -s "$T/ctl.sock" "$@"
	else
		: >"$key"
		"$CTL" -s "$T/ctl.sock" "$@"
	fi
}

# ctl_lines N: sends its standard input as is on one control connection and prints the
# first N answer lines, all of them waited for up to the suite-wide limit; fails if the
# daemon closes the connection before N lines. (nc -q would end after a fixed time.)
ctl_lines() {
	local n=$1 i=0 line rc=0 ncpid rfd wfd writer out="$T/.ctl_lines.$BASHPID"
	coproc CTL_NC { exec nc -U "$T/ctl.sock"; }
	# Copies at once: bash drops the coprocess's descriptors and pid when it ends, and
	# children do not inherit them.
	ncpid=$CTL_NC_PID
	exec {rfd}<&"${CTL_NC[0]}" {wfd}>&"${CTL_NC[1]}"
	# A writer of its own: a daemon that closes early gives it the SIGPIPE, not this shell.
	cat >&"$wfd" 2>/dev/null &
	writer=$!
	# head reads the answers in blocks: bash's read takes a pipe one byte per system call
	# (a page of 10,000 jobs, one line of 1 MB, took 9 s of CPU that way).
	timeout "$EW_LIMIT" head -n "$n" <&"$rfd" >"$out" || true
	exec {rfd}<&- {wfd}>&-
	kill "$ncpid" 2>/dev/null || true
	wait "$ncpid" "$writer" 2>/dev/null || true
	# Only whole lines count (read fails on a last line without its newline).
	while IFS= read -r line; do
		printf '%s\n' "$line"
		i=$((i + 1))
	done <"$out"
	[ "$i" -ge "$n" ] || rc=1
	return $rc
}

# Lines the recording hook wrote: "EVENT_ID EVENT JOB STATUS BATCH ATTEMPT" (a test with a
# recording hook of its own, the event id first too, points HOOK_EVENTS at its file).
hook_lines() { cat "${HOOK_EVENTS:-$T/hooks/events}" 2>/dev/null || true; }
hook_count() { hook_lines | grep -c -- "$1" || true; }

# ids_count FILE FIELD [ERE]: sets REPLY to how many distinct values the FIELDth word (from 1;
# words one space apart) takes in the lines of FILE that match ERE (an extended regular
# expression; all lines without one). No process: a wait_until runs this every step, and here a
# process costs about 10 ms of CPU (the test shell's fork and the program's start, in a VM).
# Each FILE and ERE keeps a descriptor open and reads only what was appended since the last
# call; a FILE replaced (removed, written anew) is read from its start. Lines are whole (the
# hooks append each in one write); a last line without its newline waits for the next call.
# IDS_LINES is set to how many lines matched, repeats included.
declare -A IDS_FD=() IDS_N=() IDS_M=() IDS_PART=() IDS_GEN=() IDS_SEEN=()
ids_count() {
	local f=$1 field=$2 re=${3:-.} k="$1 $2 ${3:-.}" fd line id i
	local -a lines=()
	fd=${IDS_FD[$k]:-}
	if [ -n "$fd" ] && ! [ "$f" -ef "/dev/fd/$fd" ]; then
		exec {fd}<&-
		fd=
	fi
	if [ -z "$fd" ]; then
		IDS_FD[$k]=
		if [ ! -e "$f" ] || ! exec {fd}<"$f"; then
			REPLY=0 IDS_LINES=0
			return 0
		fi
		IDS_FD[$k]=$fd IDS_N[$k]=0 IDS_M[$k]=0 IDS_PART[$k]='' IDS_GEN[$k]=$((${IDS_GEN[$k]:-0} + 1))
	fi
	mapfile -u "$fd" lines
	lines[0]=${IDS_PART[$k]}${lines[0]:-}
	IDS_PART[$k]=
	for line in "${lines[@]}"; do
		if [[ $line != *$'\n' ]]; then
			IDS_PART[$k]=$line
			break
		fi
		[[ ${line%$'\n'} =~ $re ]] || continue
		IDS_M[$k]=$((IDS_M[$k] + 1))
		id=${line%$'\n'}
		for ((i = 1; i < field; i++)); do id=${id#* }; done
		id="${IDS_GEN[$k]} $k ${id%% *}"
		[ -z "${IDS_SEEN[$id]:-}" ] || continue
		IDS_SEEN[$id]=1
		IDS_N[$k]=$((IDS_N[$k] + 1))
	done
	# shellcheck disable=SC2034 # read by the tests
	REPLY=${IDS_N[$k]} IDS_LINES=${IDS_M[$k]}
}
# bre_ere BRE: sets REPLY to the grep basic expression BRE as an extended one (bash's =~):
# \( \) \| lose their backslashes (the patterns of these tests have no literal ( ) | + ? {).
bre_ere() { REPLY=${1//\\(/(}; REPLY=${REPLY//\\)/)}; REPLY=${REPLY//\\|/|}; }
# ere_quote STRING: sets REPLY to an extended expression matching STRING literally.
ere_quote() {
	local s=$1 c i
	REPLY=
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[[:alnum:]_]) REPLY+=$c ;;
		'^') REPLY+='\^' ;;
		']') REPLY+='[]]' ;;
		*) REPLY+="[$c]" ;;
		esac
	done
}
# hook_ids [PATTERN]: prints how many distinct event ids the recording hook saw in lines
# matching PATTERN (a grep basic expression; all lines without one). Repeats after a crash
# share an id.
hook_ids() { bre_ere "${1:-.}" && ids_count "${HOOK_EVENTS:-$T/hooks/events}" 1 "$REPLY" && echo "$REPLY"; }
# hook_has_ids N [PATTERN]: at least N distinct event ids (for wait_until).
hook_has_ids() { bre_ere "${2:-.}" && ids_count "${HOOK_EVENTS:-$T/hooks/events}" 1 "$REPLY" && [ "$REPLY" -ge "$1" ]; }
# hook_has_event JOB EVENT [N]: the recording hook saw at least N (default 1) distinct ids of
# EVENT for JOB (both matched whole and literally).
hook_has_event() {
	local job
	ere_quote "$1"
	job=$REPLY
	ere_quote "$2"
	ids_count "${HOOK_EVENTS:-$T/hooks/events}" 1 "^[^ ]+ $REPLY $job( |$)" && [ "$REPLY" -ge "${3:-1}" ]
}
# hook_ended PREFIX N: at least N distinct terminal events (embed_job complete, failed,
# cancelled) for jobs whose ids start with PREFIX.
hook_ended() {
	ere_quote "$1"
	ids_count "${HOOK_EVENTS:-$T/hooks/events}" 1 "^[^ ]+ embed_job\.(complete|failed|cancelled) $REPLY" && [ "$REPLY" -ge "$2" ]
}
# status_field FIELD: one field of "status --json" (e.g. deliveries_pending).
status_field() { ctl --json status | jq -r ".status.$1"; }
# json_scalar KEY JSON: sets REPLY to the value of the first "KEY" in JSON, a number or a string
# (without its quotes); fails when there is none. For keys that occur once in an answer: it
# starts no process (no jq), as the checks a wait_until runs every step want.
json_scalar() {
	[[ $2 =~ \"$1\":[[:space:]]*(\"[^\"]*\"|[-0-9.]+) ]] || return 1
	REPLY=${BASH_REMATCH[1]//\"/}
}
# deliveries_idle: nothing queued, delayed or running.
deliveries_idle() {
	local j
	j=$(ctl --json status) && json_scalar deliveries_pending "$j" && [ "$REPLY" = 0 ]
}

# sim_advance DURATION: moves the simulator's clock forward (--clock manual),
# e.g. sim_advance 2s; prints the new sim time in ms.
sim_advance() {
	local j
	j=$(sim POST /_sim/clock "{\"advance\":\"$1\"}") && json_scalar now_ms "$j" && echo "$REPLY"
}

# jobs_json N PREFIX: N jobs ending at 0.3..2.5 s, outcomes cycling complete/failed/cancelled.
jobs_json() {
	local n=$1 prefix=$2
	jq -cn --argjson n "$n" --arg p "$prefix" '{jobs: [range($n) as $i |
	  {id: ($p + ($i|tostring)), timeline: ([{status:"processing",at:0}] +
	   (if $i % 3 == 0 then [{status:"complete", at: (0.3 + ($i % 23) * 0.1)}]
	    elif $i % 3 == 1 then [{status:"failed", at: (0.3 + ($i % 17) * 0.1)}]
	    else [{status:"cancelling", at:0.2},{status:"cancelled", at: (0.3 + ($i % 19) * 0.1)}] end))}]}'
}

# max_in_window MS: the most API requests the simulator saw in any window of MS milliseconds.
max_in_window() {
	sim GET /_sim/log | jq --argjson w "$1" '[.entries[][0]] | sort as $t |
	  reduce range(0; $t|length) as $i ({j:0, m:0};
	    .j as $j0 | (first(range($j0; $i+1) | select($t[$i] - $t[.] < $w)) // $i) as $j |
	    {j: $j, m: ([.m, $i - $j + 1] | max)}) | .m'
}

# EW_STATE=pg: the test runs with its state on a PostgreSQL server of its own (tests/integration/lib/pg.sh).
if [ "${EW_STATE:-}" = pg ]; then
	. "$top_srcdir/tests/integration/lib/pg.sh"
	pg_start
fi
