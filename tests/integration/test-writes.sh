#!/bin/bash
# test-writes.sh — what a pull writes to storage (flash wears by writes):
# an update that changes one 1 MiB file in a 30 MB layer of 1 500 files must
# write about that file, not the layer again. Counted by the process's own
# write_bytes (/proc/self/io, as `sysctr --verbose` reports it).
#
# What is checked: the first pull writes the layer's files once (the
# downloaded blob waits in memory, not on disk); the v2 pull writes at most
# 2 MiB (before: the whole blob to a temp file and every unchanged file
# again, ~61 MB) and says how many files it found in the store; with the
# memory spool off (SYSCTR_SPOOL_RAM=0) the blob goes to disk, which the
# count shows (so the count does see those writes); the deployed v2 tree has
# the new file and the old ones.
set -u
. "$SYSCTR_SRCDIR/tests/lib/libtest.sh"
. "$SYSCTR_SRCDIR/tests/lib/images.sh"
require_root
require_cmd umoci ostree
. "$SYSCTR_SRCDIR/tests/integration/lib-pull.sh"

src=$TEST_TMPDIR/src
mkdir -p "$src/data" "$src/big"
for i in $(seq 1 1500); do head -c $(((i * 7919) % 20000 + 100)) /dev/urandom >"$src/data/f$i"; done
for i in 1 2 3 4; do head -c $((3 * 1024 * 1024)) /dev/urandom >"$src/big/b$i"; done
head -c $((1024 * 1024)) /dev/urandom >"$src/big/changing"
{ image_new app v1 >/dev/null && image_add_layer app v1 "$src" >/dev/null; } || bail_out "building v1"
cp "$src/big/changing" "$TEST_TMPDIR/changing.v1"
head -c $((1024 * 1024)) /dev/urandom >"$src/big/changing"
{ image_new app2 v2 >/dev/null && image_add_layer app2 v2 "$src" >/dev/null &&
	image_config app2 v2 --config.entrypoint=/big/changing >/dev/null; } || bail_out "building v2"
blob=$(du -sb "$(image_layout app)/blobs" | cut -f1)

# wrote REF [ENV...]: pulls with --verbose, prints the bytes it reports
wrote() {
	local ref=$1
	shift
	env "$@" "$SYSCTR" --root="${WROOT:-$ROOT}" --verbose pull -q "$ref" >"$TEST_TMPDIR/out" 2>&1 ||
		{ cat "$TEST_TMPDIR/out" >&2; return 1; }
	sed -n 's/.*pull wrote .* (\([0-9]*\) bytes) to storage.*/\1/p' "$TEST_TMPDIR/out"
}
MiB=$((1024 * 1024))

w1=$(wrote "$(image_ref app v1)") || bail_out "pulling v1"
diag "v1: wrote $w1 bytes (layer blob $blob bytes, 31 MB of files)"
assert_match "$w1" '^[0-9]+$' "pull --verbose reports the bytes written"
# files 31 MB + blob 29 MB: ~65 MB when the blob waited on disk, ~38 MB now
((w1 < 50 * MiB)) && pass "v1: the layer's files written once, the blob kept in memory ($w1 < 50 MiB)" ||
	fail "v1: the layer's files written once, the blob kept in memory ($w1 < 50 MiB)"

w2=$(wrote "$(image_ref app2 v2)") || bail_out "pulling v2"
diag "v2: wrote $w2 bytes for one changed 1 MiB file"
((w2 <= 2 * MiB)) && pass "v2: one changed 1 MiB file costs at most 2 MiB of writes ($w2)" ||
	fail "v2: one changed 1 MiB file costs at most 2 MiB of writes ($w2)"
# 1507 entries: the 1505 files and two directories under the layer's root
assert_match "$(cat "$TEST_TMPDIR/out")" ": 1507 entries, 1504 files already in the store" \
	"v2: --verbose says how many files were already in the store"

mkdir -p "$TEST_TMPDIR/root2"
w3=$(WROOT=$TEST_TMPDIR/root2 wrote "$(image_ref app2 v2)" SYSCTR_SPOOL_RAM=0) || bail_out "pulling v2 into another store"
diag "v2 into an empty store with SYSCTR_SPOOL_RAM=0: wrote $w3 bytes"
((w3 >= w1 + blob / 2)) && pass "with the spool on disk the count shows the blob too ($w3 >= $w1 + $blob / 2)" ||
	fail "with the spool on disk the count shows the blob too ($w3 >= $w1 + $blob / 2)"

ok "install v2" "$SYSCTR" --root="$ROOT" install --system --name=app "$(image_ref app2 v2)"
rootfs=$ROOT/var/lib/sysctr/containers/app/rootfs
ok "v2's changed file is deployed" cmp "$src/big/changing" "$rootfs/big/changing"
ok "an unchanged file is deployed" cmp "$src/data/f777" "$rootfs/data/f777"
assert_ne "$(cmp -s "$TEST_TMPDIR/changing.v1" "$rootfs/big/changing" && echo same)" same "  ... and it is not v1's"
ok "ostree fsck" ostree --repo="$REPO" fsck -q
done_testing
