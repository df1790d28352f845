# shellcheck shell=bash
# lib-pull.sh — shared helpers of the pull/images integration tests.
#
# Needs libtest.sh and registry.sh sourced first.
#   SYSCTR        the binary under test ($SYSCTR_BUILDDIR/src/cli/sysctr)
#   ROOT          a fresh --root (TEST_TMPDIR/root); REPO its OSTree repo
#   sysctr ARGS   run sysctr with --root=$ROOT
#   store_state   print refs + commits + fsck verdict (for "store unchanged")
#   pull_fails DESC PATTERN ARGS...
#       `sysctr pull ARGS` must exit 1 with exactly one stderr line that
#       starts with "sysctr pull: pulling " and contains PATTERN (grep -E),
#       and leave the store as it was (refs and fsck): two TAP lines; a
#       third, "nothing written outside the store" (the watch dir $OUTSIDE
#       stays empty), where the test aims its images there and says so
#       with PULL_AIMS_OUTSIDE=1 (test-hostile-layers.sh).
#   fake_registry_start [--id ID] [fake-registry.py args...]
#       start tests/integration/fake-registry.py on 127.0.0.1:<alloc_port>
#       (or --addr), sets FAKE_PORT FAKE_ADDR FAKE_PID FAKE_LOG (and
#       FAKE_<ID>_* with --id); layouts default to $IMAGES_DIR.

[[ -n "${_LIB_PULL_SH:-}" ]] && return 0
_LIB_PULL_SH=1

INTEG_DIR=$SYSCTR_SRCDIR/tests/integration
: "${SYSCTR_BUILDDIR:?SYSCTR_BUILDDIR must be set (meson test sets it)}"
SYSCTR=$SYSCTR_BUILDDIR/src/cli/sysctr
[[ -x "$SYSCTR" ]] || bail_out "no sysctr binary at $SYSCTR"
ROOT=$TEST_TMPDIR/root
REPO=$ROOT/var/lib/sysctr/repo
OUTSIDE=$TEST_TMPDIR/outside
mkdir -p "$ROOT" "$OUTSIDE"
# A home of our own: no auth.json of the caller's leaks into the tests.
export HOME=$TEST_TMPDIR/home XDG_RUNTIME_DIR=$TEST_TMPDIR/run XDG_CONFIG_HOME=$TEST_TMPDIR/home/.config
unset REGISTRY_AUTH_FILE
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"
export SYSCTR_CERTS_D=$TEST_TMPDIR/certs.d
mkdir -p "$SYSCTR_CERTS_D"

sysctr() { "$SYSCTR" --root="$ROOT" "$@"; }
# An empty store to start from, so "store unchanged" compares like with like.
sysctr images prune >/dev/null || bail_out "cannot create the store under $ROOT"

store_state() {
	if [[ ! -d "$REPO" ]]; then echo "(no repo)"; return 0; fi
	local r
	for r in $(ostree --repo="$REPO" refs | LC_ALL=C sort); do
		echo "$r $(ostree --repo="$REPO" rev-parse "$r")"
	done
	if ostree --repo="$REPO" fsck -q >/dev/null 2>&1; then echo "fsck ok"; else echo "fsck FAILED"; fi
}

# check_one_line DESC PATTERN STDERR-FILE RC
check_one_line() {
	local desc=$1 pat=$2 errf=$3 rc=$4 n line
	n=$(wc -l <"$errf")
	line=$(head -n1 "$errf")
	if (( rc == 1 && n == 1 )) && [[ "$line" == "sysctr pull: pulling "* ]] && grep -qE -- "$pat" <<<"$line"; then
		pass "$desc: one line: ${line:0:200}"
		return 0
	fi
	fail "$desc: expected exit 1 and one line matching /$pat/"
	diag "exit $rc, $n line(s) on stderr:"
	diag_file "$errf" 10
	return 1
}

pull_fails() {
	local desc=$1 pat=$2; shift 2
	local before after rc
	before=$(store_state)
	sysctr pull "$@" >"$TEST_TMPDIR/.out" 2>"$TEST_TMPDIR/.err"; rc=$?
	check_one_line "$desc" "$pat" "$TEST_TMPDIR/.err" "$rc"
	after=$(store_state)
	if [[ "$before" == "$after" && "$after" == *"fsck ok"* ]]; then
		pass "$desc: store unchanged, fsck clean"
	else
		fail "$desc: store changed or fsck failed"
		diag "before: $before"; diag "after: $after"
	fi
	[[ -n "${PULL_AIMS_OUTSIDE:-}" ]] && assert_outside_empty "$desc"
	return 0
}

assert_outside_empty() {
	local found
	found=$(find "$OUTSIDE" -mindepth 1 2>/dev/null | head -n5)
	if [[ -z "$found" ]]; then pass "$1: nothing written outside the store"; return 0; fi
	fail "$1: files appeared outside the store"; diag "$found"
	return 1
}

_fake_answers() {
	local scheme=http; [[ -n "${_fake_tls:-}" ]] && scheme=https
	curl -sk -o /dev/null --max-time 2 "$scheme://$1/v2/"
}

fake_registry_start() {
	local id="" addr=127.0.0.1 args=() port
	while (( $# )); do
		case $1 in
		--id) id=$2; shift 2 ;;
		--addr) addr=$2; shift 2 ;;
		--tls-cert) _fake_tls=1; args+=("$1" "$2"); shift 2 ;;
		*) args+=("$1"); shift ;;
		esac
	done
	port=$(alloc_port) || return 1
	FAKE_LOG=$TEST_TMPDIR/fake-$port.log
	: >"$FAKE_LOG"
	python3 "$INTEG_DIR/fake-registry.py" --addr "$addr" --port "$port" --layouts "${IMAGES_DIR:?}" \
		--log "$FAKE_LOG" "${args[@]}" >"$TEST_TMPDIR/fake-$port.out" 2>&1 &
	FAKE_PID=$!
	cleanup_push "kill $FAKE_PID 2>/dev/null; wait $FAKE_PID 2>/dev/null; true"
	reaper_add "grep -q fake-registry /proc/$FAKE_PID/cmdline 2>/dev/null && kill $FAKE_PID"
	if ! wait_until 10 _fake_answers "$addr:$port"; then
		unset _fake_tls
		diag_file "$TEST_TMPDIR/fake-$port.out"
		return 1
	fi
	unset _fake_tls
	# shellcheck disable=SC2034 # for the tests that source this
	FAKE_PORT=$port FAKE_ADDR=$addr:$port
	if [[ -n "$id" ]]; then
		printf -v "FAKE_${id}_PORT" '%s' "$port"
		printf -v "FAKE_${id}_ADDR" '%s' "$addr:$port"
		printf -v "FAKE_${id}_PID" '%s' "$FAKE_PID"
		printf -v "FAKE_${id}_LOG" '%s' "$FAKE_LOG"
	fi
	return 0
}
