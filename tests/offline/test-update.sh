#!/bin/bash
# shellcheck disable=SC2015 # A && B || bail_out is intended
# Offline (--root) update / rollback / update --all / images prune: A/B
# slots, the UUID and --set values kept, host files swapped (an admin's edit
# kept and reported), no-op when nothing changed, a failed pull changes
# nothing, OSTree dedup on disk, prune keeps what either slot uses.
. "$SYSCTR_SRCDIR/tests/lib/libtest.sh"
. "$SYSCTR_SRCDIR/tests/lib/images.sh"
. "$SYSCTR_SRCDIR/tests/offline/lib-offline.sh"
require_root
require_cmd umoci jq ostree busybox du

# v1 and v2: same busybox layer, a second layer with a 2 MiB file (same in
# both), /exports/hostfs/etc/app/app.conf (same) and srv/data (differs);
# labels differ (app.version).  Tag "cur" is moved from v1 to v2.
mk() { # TAG DATA
	local d=$TEST_TMPDIR/src-$1
	mkdir -p "$d/srv" "$d/exports/hostfs/etc/app"
	cp "$TEST_TMPDIR/big" "$d/srv/big"
	echo "$2" >"$d/srv/data"
	echo "setting=1" >"$d/exports/hostfs/etc/app/app.conf"
	build_busybox_image app "$1" "$d" --config.cmd=-c --config.cmd='sleep 1000' \
		--config.label=app.version="$2" --config.label=org.sysctr.default.AUTO_UPDATE=registry >/dev/null
}
head -c $((2 * 1024 * 1024)) /dev/urandom >"$TEST_TMPDIR/big"
mk v1 one && mk v2 two || bail_out "cannot build images"
umoci tag --image "$(image_layout app):v1" cur || bail_out "umoci tag"
CUR=$(image_ref app cur)
D1=$(tag_digest app v1) D2=$(tag_digest app v2)

R=$TEST_TMPDIR/root; mkdir -p "$R/etc"
C=$R/var/lib/sysctr/containers
REPO=$R/var/lib/sysctr/repo
objects_bytes() { du -sb --apparent-size "$REPO/objects" | cut -f1; }
objects_count() { find "$REPO/objects" -type f | wc -l; }

run_sc "$R" install --system --name=app --set GREETING=hi "$CUR"
assert_eq "$SC_RC" 0 "install app from the tag cur (= v1)" || { diag "$SC_ERR"; bail_out "install failed"; }
assert_eq "$(readlink "$C/app")" app.0 "app -> app.0"
UUID1=$(jq -r .values.UUID "$C/app.0/info.json")
B1=$(objects_bytes) N1=$(objects_count)

# the admin edits a host file the image installed
echo "# local change" >>"$R/etc/app/app.conf"
cp "$R/etc/app/app.conf" "$TEST_TMPDIR/app.conf.admin"

umoci tag --image "$(image_layout app):v2" cur || bail_out "umoci tag"
run_sc "$R" update app
assert_eq "$SC_RC" 0 "update app (cur now = v2)" || diag "$SC_ERR"
assert_contains "$SC_OUT" "Updated app" "update says what it did"
assert_eq "$(readlink "$C/app")" app.1 "app -> app.1 (the other slot)"
assert_eq "$(cat "$C/app/rootfs/srv/data")" two "the active rootfs has v2's file"
assert_eq "$(jq -r .image.manifest_digest "$C/app.1/info.json")" "$D2" "app.1 is v2 (digest)"
assert_eq "$(jq -r .image.manifest_digest "$C/app.0/info.json")" "$D1" "app.0 still holds v1"
assert_eq "$(jq -r .values.UUID "$C/app.1/info.json")" "$UUID1" "UUID kept across the update"
assert_eq "$(jq -r .values.GREETING "$C/app.1/info.json")" hi "--set value of the install kept"
assert_eq "$(grep '^ExecStart=' "$R/etc/systemd/system/app.service" | grep -o 'bundle=[^ ]*')" \
	"bundle=/var/lib/sysctr/containers/app.1" "the unit now runs app.1"
assert_eq "$(check_consistent "$R" app /etc/app/app.conf)" "" "host files match app.1 (but the edited one)"
ok "the admin-edited app.conf was kept" cmp "$R/etc/app/app.conf" "$TEST_TMPDIR/app.conf.admin"
assert_contains "$SC_ERR" "kept $R/etc/app/app.conf" "and reported"
B2=$(objects_bytes) N2=$(objects_count)

# disk: v2 adds about its changed file (+ metadata), and app.1 is hardlinks
added=$((B2 - B1))
diag "store objects: v1 $B1 bytes in $N1 objects; after v2 $B2 bytes in $N2 objects: +$added bytes, +$((N2 - N1)) objects"
diag "the 2 MiB file is shared; a full copy of the image would add about $(du -sb --apparent-size "$C/app.1/rootfs" | cut -f1) bytes"
if (( added < 256 * 1024 )); then pass "v2 added $added bytes to the store (< 256 KiB; the 2 MiB file is deduplicated)"
else fail "v2 added $added bytes to the store"; fi
assert_eq "$(find "$C/app.1/rootfs" -type f -links 1 | head -3)" "" "app.1/rootfs: every file is a hardlink into the store"
assert_eq "$(stat -c %i "$C/app.0/rootfs/srv/big")" "$(stat -c %i "$C/app.1/rootfs/srv/big")" "the unchanged 2 MiB file is the same inode in both slots"
diag "slot disk use (du, hardlinks counted once): $(du -sc "$C/app.0" "$C/app.1" | tail -1 | cut -f1) KiB for both slots"

# no-op
tree_listing "$R" >"$TEST_TMPDIR/t1"
run_sc "$R" update app
assert_eq "$SC_RC" 0 "update again"
assert_contains "$SC_OUT" "already up to date" "update again: already up to date"
tree_listing "$R" | diff "$TEST_TMPDIR/t1" - >"$TEST_TMPDIR/d"
assert_eq "$(cat "$TEST_TMPDIR/d")" "" "the no-op update changed nothing"
assert_eq "$(last_update "$R" app)" "up to date" "  ... and is recorded as an attempt, up to date"

# rollback
run_sc "$R" rollback app
assert_eq "$SC_RC" 0 "rollback app" || diag "$SC_ERR"
assert_eq "$(readlink "$C/app")" app.0 "app -> app.0 again"
assert_eq "$(cat "$C/app/rootfs/srv/data")" one "v1's file is back"
assert_eq "$(check_consistent "$R" app /etc/app/app.conf)" "" "host files match app.0 (its units)"
assert_eq "$(grep '^ExecStart=' "$R/etc/systemd/system/app.service" | grep -o 'bundle=[^ ]*')" \
	"bundle=/var/lib/sysctr/containers/app.0" "the unit runs app.0"
ok "app.0's unit is its rendered copy" cmp "$R/etc/systemd/system/app.service" "$C/app.0/rendered/etc/systemd/system/app.service"

# a failed pull changes nothing
tree_listing "$R" >"$TEST_TMPDIR/t2"
run_sc "$R" update app --rebase="oci:$(image_layout app):nonexistent"
assert_ne "$SC_RC" 0 "update --rebase to a tag that does not exist fails"
assert_eq "$(grep -v '^warning' <<<"$SC_ERR" | grep -c .)" 1 "with one line ($SC_ERR)"
run_sc "$R" update app --rebase="oci:$TEST_TMPDIR/no-such-layout:v1"
assert_ne "$SC_RC" 0 "update --rebase to a layout that does not exist fails"
run_sc "$R" update app --no-pull --rebase="oci:$(image_layout app):v9"
assert_ne "$SC_RC" 0 "update --no-pull with a reference not in the store fails"
tree_listing "$R" | diff "$TEST_TMPDIR/t2" - >"$TEST_TMPDIR/d"
assert_eq "$(cat "$TEST_TMPDIR/d")" "" "the failed updates changed nothing"
assert_eq "$(last_update "$R" app)" failed "  ... but the last attempt is recorded, failed"
assert_eq "$(check_consistent "$R" app /etc/app/app.conf)" "" "app still consistent on app.0"

# --rebase to another tag
run_sc "$R" update app --rebase="$(image_ref app v2)"
assert_eq "$SC_RC" 0 "update --rebase=app:v2" || diag "$SC_ERR"
assert_eq "$(jq -r .image.reference "$C/app/info.json")" "$(image_ref app v2)" "the reference is now app:v2"
assert_eq "$(readlink "$C/app")" app.1 "on app.1"

# update --all: only the containers that opted in (label, or --set); svc is
# like app without host files, so two containers can come from it
for v in 1 2; do
	mkdir -p "$TEST_TMPDIR/svc$v/srv"; echo "$v" >"$TEST_TMPDIR/svc$v/srv/data"
	build_busybox_image svc "v$v" "$TEST_TMPDIR/svc$v" --config.cmd=-c --config.cmd='sleep 1000' \
		--config.label=org.sysctr.default.AUTO_UPDATE=registry >/dev/null || bail_out "cannot build svc"
done
umoci tag --image "$(image_layout svc):v1" cur
run_sc "$R" install --system --name=a1 "$(image_ref svc cur)"
assert_eq "$SC_RC" 0 "install a1 (svc:cur = v1; the label opts it in)" || diag "$SC_ERR"
run_sc "$R" install --system --name=a2 --set AUTO_UPDATE=off "$(image_ref svc cur)"
assert_eq "$SC_RC" 0 "install a2 with --set AUTO_UPDATE=off" || diag "$SC_ERR"
umoci tag --image "$(image_layout svc):v2" cur
run_sc "$R" update --all
assert_eq "$SC_RC" 0 "update --all" || diag "$SC_ERR"
assert_contains "$SC_OUT" "2 container(s) opted in, 1 updated, 0 held back (asking for more than was granted), 0 refused by the signature policy, 0 halted by a failed update elsewhere, 0 failed" "update --all: app and a1 opted in, a1 updated"
assert_eq "$(readlink "$C/a1")/$(readlink "$C/a2")" "a1.1/a2.0" "a1 updated, a2 (AUTO_UPDATE=off) left alone"

# a failed update leaves the rollback target as it was (the new deployment
# is built aside and only renamed onto the other slot when complete)
R3=$TEST_TMPDIR/root3; mkdir -p "$R3/etc"; C3=$R3/var/lib/sysctr/containers
run_sc "$R3" install --system --tls-verify=false --name=rb "$(image_ref svc v1)"
assert_eq "$SC_RC" 0 "install rb" || diag "$SC_ERR"
run_sc "$R3" update --set A=1 rb
assert_eq "$SC_RC/$(readlink "$C3/rb")" 0/rb.1 "update rb --set A=1 -> rb.1, rb.0 is the rollback target"
before=$(tree_listing "$R3")
run_sc "$R3" update --set STATE_DIRECTORY=relative rb
assert_eq "$SC_RC" 1 "an update that cannot render fails" || diag "$SC_OUT $SC_ERR"
assert_eq "$(tree_listing "$R3")" "$before" "the failed update changed nothing, rb.0 included"
run_sc "$R3" rollback rb
assert_eq "$SC_RC/$(readlink "$C3/rb")" 0/rb.0 "rollback still works after a failed update"
# pull options given to update are merged over the kept ones, not instead
printf '{"auths": {}}\n' >"$TEST_TMPDIR/auth.json"
run_sc "$R3" update --authfile="$TEST_TMPDIR/auth.json" --set A=2 rb
assert_eq "$SC_RC" 0 "update with --authfile" || diag "$SC_ERR"
active=$(readlink "$C3/rb")
assert_eq "$(jq -r .pull_options.tls_verify "$C3/$active/info.json")" false "tls_verify=false kept from install"
assert_eq "$(jq -r .pull_options.authfile "$C3/$active/info.json")" "$TEST_TMPDIR/auth.json" "the new authfile is kept"

# images prune --all keeps what either slot uses
build_busybox_image other v1 >/dev/null && sc "$R" pull "$(image_ref other v1)" >/dev/null 2>&1
imgs() { sc "$R" images list --json | jq -r '.[].digest // .[].manifest_digest' | sort -u; }
images_json=$(sc "$R" images list --json)
diag "images before prune: $(jq -c '[.[]|.reference]' <<<"$images_json" 2>/dev/null)"
run_sc "$R" images prune --all
assert_eq "$SC_RC" 0 "images prune --all" || diag "$SC_ERR"
after=$(sc "$R" images list --json)
assert_eq "$(jq -r '[.[]|.reference]|map(select(contains("/other:")))|length' <<<"$after")" 0 "prune --all removed the unused image"
has_digest() { jq -e --arg d "$1" 'any(.[]; (.digest // .manifest_digest) == $d)' <<<"$after" >/dev/null; }
ok "prune --all kept v2 (app:v2, used by app.1)" has_digest "$D2"
# app.0 is v1 from the tag cur, which now names v2: v1 has no image entry
# left, but every layer either slot of any container uses must stay
layers_kept() {
	local l missing=""
	for l in $(jq -r '.image.layers[]' "$C"/*.[01]/info.json | sort -u); do
		ostree --repo="$REPO" rev-parse "sysctr/layer/${l#sha256:}" >/dev/null 2>&1 || missing+=" $l"
	done
	[[ -z "$missing" ]] || { echo "layers gone:$missing"; return 1; }
}
ok "prune --all kept every layer of both slots of app, a1, a2" layers_kept
ok "ostree fsck after prune" ostree fsck --repo="$REPO" -q
ok "both slots still deploy-complete after prune" test -f "$C/app.0/rootfs/srv/data" -a -f "$C/app.1/rootfs/srv/data"
# rollback still works after prune (the old slot's files are its own hardlinks)
run_sc "$R" rollback app
assert_eq "$SC_RC/$(readlink "$C/app")" 0/app.0 "rollback after prune"
# everything uninstalled: prune --all empties the store of images and objects
sc "$R" uninstall app a1 a2 >/dev/null 2>&1
run_sc "$R" images prune --all
assert_eq "$(sc "$R" images list --json | jq length)" 0 "after uninstalling everything, prune --all leaves no image"
diag "store after the final prune: $(objects_bytes) bytes in $(objects_count) objects"

done_testing
