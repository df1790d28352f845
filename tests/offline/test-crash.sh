#!/bin/bash
# shellcheck disable=SC2015 # A && B || bail_out is intended
# Crash consistency: sysctr is SIGKILLed at every crash point (the
# SYSCTR_CRASH_AT fault-injection hook) of pull, install, update, rollback and
# uninstall.  After each kill: the NAME symlink points to a complete slot;
# after `list` and running the same command again, that command succeeds,
# `ostree fsck` passes, and the container is entirely the old or the new
# version (host files == the active slot's rendered copies, nothing of the
# other left, no journal), which for a completed command means the new one.
. "$SYSCTR_SRCDIR/tests/lib/libtest.sh"
. "$SYSCTR_SRCDIR/tests/lib/images.sh"
. "$SYSCTR_SRCDIR/tests/offline/lib-offline.sh"
require_root
require_cmd umoci jq ostree busybox

T0=$(now_ms)
# v1/v2: busybox + a layer with /exports/hostfs (a host file) and srv/data
mk() { # TAG DATA
	local d=$TEST_TMPDIR/src-$1
	mkdir -p "$d/srv" "$d/exports/hostfs/etc/app"
	echo "$2" >"$d/srv/data"; echo "v=$2" >"$d/exports/hostfs/etc/app/app.conf"
	build_busybox_image app "$1" "$d" --config.cmd=-c --config.cmd='sleep 1000' --config.label=app.version="$2" >/dev/null
}
mk v1 one && mk v2 two || bail_out "cannot build images"
umoci tag --image "$(image_layout app):v1" cur || bail_out "umoci tag"
CUR=$(image_ref app cur)
D1=$(tag_digest app v1) D2=$(tag_digest app v2)

# template roots (copied with cp -a, which keeps the store's hardlinks)
BASE=$TEST_TMPDIR/t-empty; mkdir -p "$BASE/etc"
PULLED=$TEST_TMPDIR/t-pulled; cp -a "$BASE" "$PULLED"; sc "$PULLED" pull "$CUR" >/dev/null 2>&1 || bail_out "pull"
INST=$TEST_TMPDIR/t-installed; cp -a "$PULLED" "$INST"
sc "$INST" install --system --name=app "$CUR" >/dev/null 2>&1 || bail_out "install"
umoci tag --image "$(image_layout app):v2" cur || bail_out "umoci tag"   # from now on cur = v2
UPD=$TEST_TMPDIR/t-updated; cp -a "$INST" "$UPD"
sc "$UPD" update app >/dev/null 2>&1 || bail_out "update"
tree_listing "$PULLED" >"$TEST_TMPDIR/pulled.listing"

R=$TEST_TMPDIR/r R2=$TEST_TMPDIR/r2
C=$R/var/lib/sysctr/containers
active_digest() { jq -r .image.manifest_digest "$C/app/info.json" 2>/dev/null; }

# expected end state of each scenario (run after the command succeeded)
final_pull() { sc "$R" images list --json | jq -e --arg d "$D2" 'any(.[]; (.digest // .manifest_digest) == $d)' >/dev/null || echo "image not in the store"; }
final_install() { local c; c=$(check_consistent "$R" app); [[ -n "$c" ]] && { echo "$c"; return; }
	[[ "$(active_digest)" == "$D2" ]] || echo "active is not v2"; }
final_update() { final_install; }
final_rollback() { local c; c=$(check_consistent "$R" app); [[ -n "$c" ]] && { echo "$c"; return; }
	[[ "$(readlink "$C/app")" == app.0 && "$(active_digest)" == "$D1" ]] || echo "not rolled back to app.0 (v1)"; }
final_uninstall() { [[ -e "$C/app" || -L "$C/app" ]] && { echo "still installed"; return; }
	tree_listing "$R" | diff "$TEST_TMPDIR/pulled.listing" - | head -5; }

# scenario NAME TEMPLATE-ROOT ARGS...
scenario() {
	local sname=$1 tmpl=$2; shift 2
	rm -rf "$R"; cp -a "$tmpl" "$R"
	local trace n
	trace=$(SYSCTR_CRASH_AT=never SYSCTR_CRASH_TRACE=1 "$SYSCTR" --root="$R" "$@" 2>&1 >/dev/null)
	n=$(grep -c '^crash-point ' <<<"$trace")
	if (( n == 0 )); then fail "$sname: no crash points traced"; return; fi
	diag "$sname: $n crash points: $(grep '^crash-point ' <<<"$trace" | awk '{print $2":"$3}' | tr '\n' ' ')"
	local i bad=0 why rc killed=0
	for (( i = 1; i <= n; i++ )); do
		rm -rf "$R"; cp -a "$tmpl" "$R"
		# (in a subshell, so bash does not report the kill)
		rc=$( (SYSCTR_CRASH_AT=$i "$SYSCTR" --root="$R" "$@" >/dev/null 2>&1; echo $?) 2>/dev/null )
		(( rc == 137 )) && killed=$((killed + 1))
		why=""
		# at every instant the symlink names a complete slot
		if [[ -L "$C/app" && ! -f "$C/app/info.json" ]]; then why+=" symlink -> incomplete slot;"; fi
		# on a copy: the next mutating command alone (update --all reconciles
		# first) leaves app entirely old or entirely new
		rm -rf "$R2"; cp -a "$R" "$R2"
		if ! sc "$R2" update --all >/dev/null 2>"$TEST_TMPDIR/err"; then
			why+=" reconcile (update --all) failed: $(head -c 200 "$TEST_TMPDIR/err");"
		elif [[ -L "$R2/var/lib/sysctr/containers/app" ]]; then
			local cc; cc=$(check_consistent "$R2" app)
			[[ -n "$cc" ]] && why+=" after reconcile: $cc;"
		elif [[ "$sname" != pull ]] && ! tree_listing "$R2" | diff -q "$TEST_TMPDIR/pulled.listing" - >/dev/null; then
			why+=" after reconcile: not installed, but the root is not as before install;"
		fi
		sc "$R" list >/dev/null 2>"$TEST_TMPDIR/err" || why+=" list failed ($(head -c 200 "$TEST_TMPDIR/err"));"
		if ! sc "$R" "$@" >"$TEST_TMPDIR/out" 2>"$TEST_TMPDIR/err"; then
			why+=" re-run failed: $(grep -v '^warning' "$TEST_TMPDIR/err" | head -c 300);"
		fi
		ostree fsck --repo="$R/var/lib/sysctr/repo" -q >/dev/null 2>&1 || why+=" ostree fsck failed;"
		local f; f=$("final_$sname")
		[[ -n "$f" ]] && why+=" $f;"
		# and the next mutating command finds nothing to complete (update
		# --all reconciles first; app has not opted in, so that is all it does)
		if ! sc "$R" update --all >/dev/null 2>"$TEST_TMPDIR/err2" || grep -q 'interrupted' "$TEST_TMPDIR/err2"; then
			why+=" a later command still completed something: $(head -c 200 "$TEST_TMPDIR/err2");"
		fi
		if [[ -n "$why" ]]; then
			bad=$((bad + 1))
			fail "$sname: killed at crash point $i ($(grep "^crash-point $i " <<<"$trace" | cut -d' ' -f3)):$why"
		fi
	done
	(( bad == 0 )) && pass "$sname: $n crash points, each leaves old-or-new and the command can be run again"
	# a crash point that did not fire tested nothing
	assert_eq "$killed" "$n" "$sname: every one of the $n crash points fired (killed by SIGKILL there)"
}

scenario pull "$BASE" pull "$CUR"
scenario install "$BASE" install --system --name=app "$CUR"
scenario update "$INST" update app
scenario rollback "$UPD" rollback app
scenario uninstall "$INST" uninstall app
diag "crash loop took $(( ($(now_ms) - T0) / 1000 )) s"
done_testing
