#!/usr/bin/env bash
# requires: none
# Bash completion for embedwatchctl, driven as bash drives it: COMP_WORDS and
# COMP_CWORD set, the function called, COMPREPLY read. Ids, batch names and
# account names come from the running daemon; with the socket unreachable,
# nothing does.
. "$top_srcdir/tests/integration/lib/lib.sh"

COMPLETION="$top_srcdir/contrib/bash-completion/embedwatchctl"
PATH="$top_builddir:$PATH"
[ -f /usr/share/bash-completion/bash_completion ] && . /usr/share/bash-completion/bash_completion
set +u
. "$COMPLETION"

# complete_line LINE: the completions bash would offer at the end of LINE, sorted, one line.
complete_line() {
	local line=$1
	read -ra COMP_WORDS <<<"$line"
	[[ $line == *" " ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE=$line
	COMP_POINT=${#line}
	COMPREPLY=()
	_embedwatchctl embedwatchctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	[ ${#COMPREPLY[@]} -eq 0 ] || printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort | tr '\n' ' '
}
expect() {   # expect LINE WANTED
	local got
	got=$(complete_line "$1")
	[ "$got" = "$2" ] || fail "completing \"$1\": got \"$got\", expected \"$2\""
}

# Without a daemon: commands, options and fixed values; nothing from the socket.
S="-s $T/ctl.sock"
expect "embedwatchctl " "--help --json --socket -h -j -s batches cancel deliveries hooks list metrics redeliver show status unwatch wait watch "
expect "embedwatchctl wa" "wait watch "
expect "embedwatchctl $S list --status c" "cancelled cancelling complete "
expect "embedwatchctl $S deliveries --state " "dead done pending "
expect "embedwatchctl $S wait --" "--account --batch --json --quiet --timeout "
expect "embedwatchctl $S list --" "--account --batch --json --kind --prefix --status --watch "
expect "embedwatchctl $S show --" "--account --json "
expect "embedwatchctl $S watch --kind " "batch-job embed-job "
expect "embedwatchctl $S show " ""
expect "embedwatchctl $S wait --batch " ""
expect "embedwatchctl $S watch --account " ""
ok "commands, options, --status and --state values; nothing from an unreachable socket"

# With a daemon: job ids, batch names, event ids and hook names.
start_sim
sim POST /_sim/jobs '{"jobs":[{"id":"alpha-1","timeline":[{"status":"processing","at":0},{"status":"complete","at":0.2}]},
 {"id":"alpha-2","timeline":[{"status":"processing","at":0}]},{"id":"beta-1","timeline":[{"status":"processing","at":0}]}]}' >/dev/null
sim POST /_sim/providers/openai/batches '{"batches":[{"id":"batch_q1","timeline":[{"status":"in_progress","at":0}]}]}' >/dev/null
write_conf "$(account_ini oa openai)"
start_daemon
ctl watch --batch nightly-a alpha-1 alpha-2 >/dev/null
ctl watch --batch nightly-b beta-1 >/dev/null
ctl watch --account oa batch_q1 >/dev/null
wait_until sh -c "'$CTL' -s '$T/ctl.sock' deliveries --json | grep -q event_id" || fail "no delivery yet"
expect "embedwatchctl $S show al" "alpha-1 alpha-2 "
expect "embedwatchctl $S cancel b" "beta-1 "
expect "embedwatchctl --socket=$T/ctl.sock unwatch " "alpha-1 alpha-2 beta-1 oa:batch_q1 "
expect "embedwatchctl $S list --account " "cohere oa "
expect "embedwatchctl $S show --account oa " "batch_q1 "
expect "embedwatchctl $S wait --account cohere al" "alpha-1 alpha-2 "
expect "embedwatchctl $S cancel --account oa a" ""
expect "embedwatchctl $S wait --batch nightly" "nightly-a nightly-b "
expect "embedwatchctl $S list --batch nightly-" "nightly-a nightly-b "
expect "embedwatchctl $S redeliver evt_x --hook " "record "
expect "embedwatchctl $S hooks " "disable enable "
expect "embedwatchctl $S hooks enable " "record "
expect "embedwatchctl $S redeliver --dead --event hook." "hook.disabled hook.enabled "
evt=$(ctl deliveries --json | jq -r '.deliveries[0].event_id')
expect "embedwatchctl $S redeliver ${evt:0:10}" "$evt "
# A key: bash splits the word at ':', so what is offered is what follows it.
expect "embedwatchctl $S show oa:b" "batch_q1 "
ok "job ids, batch names, event ids, hook names and accounts completed from the running daemon"
stop_daemon
