# shellcheck shell=bash
# libtest.sh — TAP helpers and a cleanup registry for sysctr's shell tests.
#
# Source it first, from bash:   . "$SYSCTR_SRCDIR/tests/lib/libtest.sh"
#
# Output is TAP 13 on stdout (meson `protocol: 'tap'`).  Everything that is not
# a test line goes out as a `# ` diagnostic, so meson's TAP parser stays happy.
#
# Cleanup: every helper that creates something (a registry, a booted systemd,
# a port lock, a temp dir) registers its teardown with `cleanup_push`.  The
# registry runs LIFO from an EXIT trap (also on INT/TERM/HUP, and on `set -e`
# aborts), exactly once, even if a cleanup itself fails.  Set
# SYSCTR_TEST_KEEP=1 to keep TEST_TMPDIR for post-mortem (services are still
# stopped).
#
# The library does not turn on `set -e`; tests may.  Functions return status
# codes and never exit, except bail_out/skip_all/done_testing.

[[ -n "${_LIBTEST_SH:-}" ]] && return 0
_LIBTEST_SH=1

TESTLIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${SYSCTR_SRCDIR:=$(cd "$TESTLIB_DIR/../.." && pwd)}"
export SYSCTR_SRCDIR

_tap_n=0            # tests run so far
_tap_failed=0       # not-ok count (excluding TODO)
_tap_planned=""     # number given to plan, or "" for done_testing
_cleanups=()        # registered cleanup commands (strings, eval'd LIFO)
_cleanup_ran=0

# ---------------------------------------------------------------- temp dir ---
# TEST_TMPDIR: a private directory for this run (removed at exit).
TEST_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/sysctr-test.$$.XXXXXX") || {
	echo "Bail out! cannot create temp dir"; exit 1; }
export TEST_TMPDIR
# TEST_RUN_ID: a short unique id for names (machine names, image names...).
TEST_RUN_ID="$$-$(basename "$TEST_TMPDIR" | sed 's/.*\.//' | tr -dc 'a-zA-Z0-9' | tr 'A-Z' 'a-z')"
export TEST_RUN_ID

# ------------------------------------------------------------- cleanup -------
# cleanup_push CMD...   register a command (joined into one string, eval'd)
cleanup_push() { _cleanups+=("$*"); }

# cleanup_pop_run       run and forget the most recently registered cleanup
cleanup_pop_run() {
	local n=${#_cleanups[@]}
	(( n == 0 )) && return 0
	local c=${_cleanups[n-1]}
	unset "_cleanups[n-1]"
	_cleanups=("${_cleanups[@]}")
	eval "$c"
}

# cleanup_remove CMD... forget a registered cleanup (exact string), without running it
cleanup_remove() {
	local want="$*" i out=()
	for i in "${_cleanups[@]}"; do [[ "$i" == "$want" ]] || out+=("$i"); done
	_cleanups=("${out[@]}")
}

# cleanup_run_all       run every registered cleanup, LIFO (called by the trap)
cleanup_run_all() {
	(( _cleanup_ran )) && return 0
	_cleanup_ran=1
	local i
	for (( i=${#_cleanups[@]}-1; i>=0; i-- )); do
		( eval "${_cleanups[i]}" ) || diag "cleanup failed: ${_cleanups[i]}"
	done
	_cleanups=()
	[[ -n "$REAPER_PID" ]] && kill -KILL "$REAPER_PID" 2>/dev/null
	if [[ -n "${SYSCTR_TEST_KEEP:-}" ]]; then
		diag "kept $TEST_TMPDIR"
	else
		rm -rf --one-file-system "$TEST_TMPDIR" 2>/dev/null
	fi
}

# ------------------------------------------------------------- reaper --------
# If the test shell is SIGKILLed (no trap runs), a watcher process started on
# first use runs the registered self-contained shell lines (LIFO, via /bin/sh)
# once the test's PID is gone, then removes TEST_TMPDIR.  Libraries register
# their emergency teardown here (kill the registry, power off / kill nspawn,
# remove cgroups); a normal exit kills the watcher after the normal cleanup.
REAPER_FILE=$TEST_TMPDIR/.reaper
REAPER_PID=""

# reaper_add SHELL-LINE   register an emergency teardown line (plain /bin/sh,
#                         no library functions; make it safe against pid reuse)
reaper_add() {
	printf '%s\n' "$*" >>"$REAPER_FILE"
	[[ -n "$REAPER_PID" ]] && return 0
	local main=$$
	(
		trap '' INT TERM HUP
		exec </dev/null >/dev/null 2>&1
		while kill -0 "$main" 2>/dev/null; do sleep 1; done
		[ -f "$REAPER_FILE" ] && tac "$REAPER_FILE" | while IFS= read -r line; do /bin/sh -c "$line"; done
		[ -z "${SYSCTR_TEST_KEEP:-}" ] && rm -rf --one-file-system "$TEST_TMPDIR"
	) &
	REAPER_PID=$!
	disown "$REAPER_PID" 2>/dev/null
}

_libtest_on_exit() {
	local rc=$?
	trap - EXIT INT TERM HUP
	cleanup_run_all
	if [[ -z "$_tap_planned" && $_tap_n -gt 0 && -z "${_tap_done:-}" ]]; then
		# test script died before done_testing: close the plan so the
		# harness sees how far it got, and fail.
		echo "1..$_tap_n"
		echo "# script exited early with status $rc"
		(( rc == 0 )) && rc=1
	fi
	exit "$rc"
}
trap _libtest_on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ------------------------------------------------------------------ TAP ------
# plan N           announce N tests up front; or call done_testing at the end
plan() { _tap_planned=$1; echo "1..$1"; }

# diag MSG...      print a diagnostic (each line prefixed with "# ")
diag() { local l; while IFS= read -r l; do echo "# $l"; done <<<"$*"; }

# diag_file FILE [MAXLINES]   print a file as diagnostics (tail, default 200 lines)
diag_file() {
	[[ -r "$1" ]] || { diag "($1: not readable)"; return 0; }
	tail -n "${2:-200}" "$1" | sed 's/^/#   /'
}

# pass DESC / fail DESC     record a result directly
pass() { _tap_n=$((_tap_n+1)); echo "ok $_tap_n - $*"; return 0; }
fail() { _tap_n=$((_tap_n+1)); _tap_failed=$((_tap_failed+1)); echo "not ok $_tap_n - $*"; return 1; }

# ok DESC CMD...   run CMD; ok if it exits 0.  On failure its output is shown.
ok() {
	local desc=$1; shift
	local out rc
	out=$("$@" 2>&1); rc=$?
	if (( rc == 0 )); then pass "$desc"; return 0; fi
	fail "$desc"
	diag "command: $* (exit $rc)"
	[[ -n "$out" ]] && printf '%s\n' "$out" | tail -n 60 | sed 's/^/#   /'
	return 1
}

# ok_fails DESC CMD...   ok if CMD exits non-zero
ok_fails() {
	local desc=$1; shift
	local out rc
	out=$("$@" 2>&1); rc=$?
	if (( rc != 0 )); then pass "$desc"; return 0; fi
	fail "$desc"; diag "command unexpectedly succeeded: $*"
	[[ -n "$out" ]] && printf '%s\n' "$out" | tail -n 30 | sed 's/^/#   /'
	return 1
}

# skip DESC REASON     record a skipped test (counts as a test)
skip() { _tap_n=$((_tap_n+1)); echo "ok $_tap_n - $1 # SKIP ${2:-}"; }

# todo DESC CMD...     like ok, but marked TODO (failure does not fail the run)
todo() {
	local desc=$1; shift
	if "$@" >/dev/null 2>&1; then _tap_n=$((_tap_n+1)); echo "ok $_tap_n - $desc # TODO";
	else _tap_n=$((_tap_n+1)); echo "not ok $_tap_n - $desc # TODO"; fi
}

# skip_all REASON      skip the whole file (only before any test ran) and exit 0
skip_all() { echo "1..0 # SKIP $*"; _tap_done=1; exit 0; }

# bail_out REASON      abort the whole run (cleanups still run)
bail_out() { echo "Bail out! $*"; _tap_done=1; exit 1; }

# done_testing         print the plan if none was given; exit 1 if anything failed
done_testing() {
	[[ -z "$_tap_planned" ]] && echo "1..$_tap_n"
	_tap_done=1
	if [[ -n "$_tap_planned" && "$_tap_planned" != "$_tap_n" ]]; then
		diag "planned $_tap_planned tests but ran $_tap_n"; exit 1
	fi
	(( _tap_failed == 0 )) && exit 0
	diag "$_tap_failed of $_tap_n tests failed"
	exit 1
}

# --------------------------------------------------------------- asserts -----
# All assert_* print one TAP line and return 0/1.

# assert_eq GOT EXPECTED DESC
assert_eq() {
	if [[ "$1" == "$2" ]]; then pass "$3"; return 0; fi
	fail "$3"; diag "expected: '$2'"; diag "     got: '$1'"; return 1
}
# assert_ne GOT UNEXPECTED DESC
assert_ne() {
	if [[ "$1" != "$2" ]]; then pass "$3"; return 0; fi
	fail "$3"; diag "got the value it must not be: '$1'"; return 1
}
# assert_match STRING ERE DESC        (bash =~)
assert_match() {
	if [[ "$1" =~ $2 ]]; then pass "$3"; return 0; fi
	fail "$3"; diag "pattern: $2"; printf '%s\n' "$1" | tail -n 30 | sed 's/^/#   /'; return 1
}
# assert_not_match STRING ERE DESC
assert_not_match() {
	if ! [[ "$1" =~ $2 ]]; then pass "$3"; return 0; fi
	fail "$3"; diag "must not match: $2"; printf '%s\n' "$1" | tail -n 30 | sed 's/^/#   /'; return 1
}
# assert_contains HAYSTACK NEEDLE DESC   (fixed string)
assert_contains() {
	if [[ "$1" == *"$2"* ]]; then pass "$3"; return 0; fi
	fail "$3"; diag "missing: $2"; printf '%s\n' "$1" | tail -n 30 | sed 's/^/#   /'; return 1
}
# assert_file PATH DESC / assert_no_file PATH DESC   (any kind of file, symlinks not followed)
assert_file() {
	if [[ -e "$1" || -L "$1" ]]; then pass "$2"; return 0; fi
	fail "$2"; diag "missing: $1"; return 1
}
assert_no_file() {
	if [[ ! -e "$1" && ! -L "$1" ]]; then pass "$2"; return 0; fi
	fail "$2"; diag "exists: $1"; ls -ld "$1" 2>&1 | sed 's/^/#   /'; return 1
}
# assert_status EXPECTED DESC CMD...    CMD must exit with exactly EXPECTED
assert_status() {
	local want=$1 desc=$2; shift 2
	local out rc
	out=$("$@" 2>&1); rc=$?
	if (( rc == want )); then pass "$desc"; return 0; fi
	fail "$desc"; diag "command: $*"; diag "expected exit $want, got $rc"
	[[ -n "$out" ]] && printf '%s\n' "$out" | tail -n 30 | sed 's/^/#   /'
	return 1
}
# assert_output EXPECTED DESC CMD...    CMD must succeed and print exactly EXPECTED (stdout)
assert_output() {
	local want=$1 desc=$2; shift 2
	local out rc
	out=$("$@" 2>"$TEST_TMPDIR/.stderr"); rc=$?
	if (( rc == 0 )) && [[ "$out" == "$want" ]]; then pass "$desc"; return 0; fi
	fail "$desc"; diag "command: $* (exit $rc)"; diag "expected: '$want'"; diag "     got: '$out'"
	diag_file "$TEST_TMPDIR/.stderr" 20
	return 1
}

# fail_with_journal DESC [journalctl args...]
#   record a failure and dump the booted systemd's journal (all of it, or the
#   given filter, e.g. `-u etcd.service`), plus the nspawn console tail.
#   Works without nspawn.sh too (then it only records the failure).
fail_with_journal() {
	local desc=$1; shift
	fail "$desc"
	if declare -F systemd_journal >/dev/null && [[ -n "${SYSTEMD_PID:-}" ]]; then
		diag "---- journal of the booted systemd ${*:+($*)} ----"
		systemd_journal "$@" | tail -n "${JOURNAL_LINES:-150}" | sed 's/^/#   /'
		diag "---- end of journal ----"
	fi
	return 1
}

# ok_or_journal DESC CMD...   like ok, but dumps the journal on failure
ok_or_journal() {
	local desc=$1; shift
	local out rc
	out=$("$@" 2>&1); rc=$?
	if (( rc == 0 )); then pass "$desc"; return 0; fi
	[[ -n "$out" ]] && { diag "command: $* (exit $rc)"; printf '%s\n' "$out" | tail -n 40 | sed 's/^/#   /'; }
	fail_with_journal "$desc"
}

# ----------------------------------------------------------------- utils -----
# require_root / require_cmd CMD...   skip the whole file when not possible
require_root() { [[ $(id -u) == 0 ]] || skip_all "needs root"; }
require_cmd() {
	local c
	for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip_all "needs $c"; done
}

# now_ms                print a monotonic-ish timestamp in milliseconds
now_ms() { local t; t=$(date +%s%N); echo $(( t / 1000000 )); }

# time_ms VAR CMD...    run CMD, store its wall time in ms into VAR, return CMD's status
time_ms() {
	local __var=$1; shift
	local __t0 __rc
	__t0=$(now_ms)
	"$@"; __rc=$?
	printf -v "$__var" '%s' $(( $(now_ms) - __t0 ))
	return $__rc
}

# wait_until TIMEOUT_S CMD...   poll CMD (every 0.2s) until it succeeds; 1 on timeout
wait_until() {
	local timeout=$1; shift
	local deadline=$(( $(now_ms) + timeout * 1000 ))
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		(( $(now_ms) >= deadline )) && return 1
		sleep 0.2
	done
}

# pid_alive PID         0 if the process exists and is not a zombie
pid_alive() {
	[[ -r /proc/$1/stat ]] || return 1
	local st; st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)
	[[ -n "$st" && "$st" != Z && "$st" != X ]]
}

# kill_wait PID [TIMEOUT_S=10]  SIGTERM, wait, then SIGKILL; returns 0 when gone
kill_wait() {
	local pid=$1 t=${2:-10}
	pid_alive "$pid" || { wait "$pid" 2>/dev/null; return 0; }
	kill -TERM "$pid" 2>/dev/null
	wait_until "$t" eval "! pid_alive $pid" || { kill -KILL "$pid" 2>/dev/null; wait_until 5 eval "! pid_alive $pid"; }
	wait "$pid" 2>/dev/null
	! pid_alive "$pid"
}
