#!/bin/bash
# test-partial.sh — partial pulls of zstd:chunked layers pushed by podman:
# an update fetches only the files the store lacks (HTTP Range requests
# against Debian's docker-registry), and the tree it deploys is the one
# umoci unpacks from the original image.
#
# v1: 200 files (about 5 MB: what Debian 12's podman 4.3 pushes as
# zstd:chunked reliably; ~40 MB and 2 000 files failed with "short write")
# plus one 1 MiB file; v2: that file changed. Both pushed by `podman push
# --compression-format zstd:chunked`.
# Checked: v1 pulls whole (an empty store has nothing to reuse); v2 pulls
# partially: 200 files found in the store, 1 fetched, under 1.3 MiB of
# ranges, Range requests in the registry's access log; the deployed v2
# equals `umoci unpack` of v2 (treecmp.py); a store that lacks the files
# pulls whole; SYSCTR_NO_PARTIAL=1 pulls whole; a registry that ignores
# Range (the test's fake registry answers 200) falls back to the whole blob
# and gives the same tree.
set -u
. "$SYSCTR_SRCDIR/tests/lib/libtest.sh"
. "$SYSCTR_SRCDIR/tests/lib/registry.sh"
. "$SYSCTR_SRCDIR/tests/lib/images.sh"
require_root
require_cmd umoci skopeo podman jq ostree python3 "$DOCKER_REGISTRY_BIN"
. "$SYSCTR_SRCDIR/tests/integration/lib-pull.sh"

registry_start --id part || bail_out "cannot start the registry"
REG=$REGISTRY_ADDR
src=$TEST_TMPDIR/src
mkdir -p "$src/data" "$src/big"
for i in $(seq 1 200); do head -c $(((i * 7919) % 40000 + 100)) /dev/urandom >"$src/data/f$i"; done
ln -s data/f1 "$src/link"
head -c $((1024 * 1024)) /dev/urandom >"$src/big/changing"
for v in v1 v2; do
	[[ $v == v2 ]] && head -c $((1024 * 1024)) /dev/urandom >"$src/big/changing"
	{ image_new app "$v" >/dev/null && image_add_layer app "$v" "$src" >/dev/null &&
		image_config app "$v" --config.entrypoint=/big/changing >/dev/null; } || bail_out "building $v"
done
image_gc app

CS=$TEST_TMPDIR/cs
CS_OPTS=(--root "$CS/root" --runroot "$CS/run" --storage-driver vfs)
for v in v1 v2; do
	skopeo --insecure-policy copy -q "$(image_ref app $v)" "containers-storage:[vfs@$CS/root+$CS/run]localhost/app:$v" &&
		podman "${CS_OPTS[@]}" push -q --tls-verify=false --compression-format zstd:chunked "localhost/app:$v" \
			"docker://$REG/app:$v" 2>"$TEST_TMPDIR/push.err" || { cat "$TEST_TMPDIR/push.err"; bail_out "podman push $v"; }
done
podman "${CS_OPTS[@]}" rmi -af >/dev/null 2>&1
n_toc=$(skopeo inspect --raw --tls-verify=false "docker://$REG/app:v2" |
	jq '[.layers[].annotations["io.containers.zstd-chunked.manifest-position"] // empty] | length')
assert_eq "$n_toc" 1 "podman pushed v2's layer as zstd:chunked (TOC annotations in the manifest)"

S=("$SYSCTR" --root="$ROOT" --verbose pull -q --tls-verify=false)
out=$("${S[@]}" "$REG/app:v1" 2>&1) || { diag "$out"; bail_out "pulling v1"; }
assert_not_match "$out" "partial pull" "v1 into an empty store: the whole blob (nothing to reuse)"

: >"$REGISTRY_DIR/registry.log.mark"
log_before=$(wc -l <"$REGISTRY_DIR/registry.log")
out=$("${S[@]}" "$REG/app:v2" 2>&1) || { diag "$out"; bail_out "pulling v2"; }
diag "$(grep -E 'partial pull|whole blob' <<<"$out")"
assert_match "$out" "partial pull: 200 files from the store, 1 fetched" "v2: 200 files found in the store, 1 fetched"
fetched=$(sed -n 's/.*partial pull: .* fetched, \([0-9]*\) of \([0-9]*\) bytes.*/\1/p' <<<"$out")
blob=$(sed -n 's/.*partial pull: .* fetched, \([0-9]*\) of \([0-9]*\) bytes.*/\2/p' <<<"$out")
diag "v2: fetched $fetched of the layer's $blob bytes"
((fetched > 0 && fetched < 1300 * 1024)) && pass "v2: under 1.3 MiB fetched for the 1 MiB file ($fetched of $blob)" ||
	fail "v2: under 1.3 MiB fetched for the 1 MiB file ($fetched of $blob)"
new_log=$(tail -n +"$((log_before + 1))" "$REGISTRY_DIR/registry.log")
ranged=$(grep -c '"GET /v2/app/blobs/sha256:[0-9a-f]*.* 206 ' <<<"$new_log")
whole=$(grep -c '"GET /v2/app/blobs/sha256:[0-9a-f]*.* 200 [0-9]\{6,\}' <<<"$new_log")
diag "registry access log for v2: $ranged answers 206, $whole blob answers of 100 kB or more"
((ranged >= 2)) && pass "the registry served Range requests (206): the TOC, then the frames" ||
	fail "the registry served Range requests (206): the TOC, then the frames"
assert_eq "$whole" 0 "  ... and no whole layer blob"
assert_match "$out" "verified by its table of contents" "  ... and --verbose says what verified the layer"

assert_eq "$("$SYSCTR" --root="$ROOT" images inspect "$REG/app:v2" | jq -r '.layers[0].verified_by')" \
	"zstd:chunked table of contents" "images inspect says the layer is verified by its table of contents"
# the deployed tree is the one umoci unpacks from the original image
ok "install v2" "$SYSCTR" --root="$ROOT" install --system --name=app "$REG/app:v2"
umoci unpack --image "$(image_layout app):v2" "$TEST_TMPDIR/umoci-v2" >/dev/null || bail_out "umoci unpack"
rootfs=$ROOT/var/lib/sysctr/containers/app/rootfs
ok "the partially pulled tree equals umoci's unpack of v2" python3 "$SYSCTR_SRCDIR/tests/integration/treecmp.py" \
	--allow-extra=dev,dev/mqueue,dev/pts,dev/shm,proc,run,sys,tmp "$TEST_TMPDIR/umoci-v2/rootfs" "$rootfs"
ok "ostree fsck" ostree --repo="$REPO" fsck -q

# a frame changed on the registry's disk (the TOC intact): the file does not
# match its table of contents; nothing is stored, one line says so
layer=$(skopeo inspect --raw --tls-verify=false "docker://$REG/app:v2" | jq -r '.layers[0].digest')
pos=$(skopeo inspect --raw --tls-verify=false "docker://$REG/app:v2" |
	jq -r '.layers[0].annotations["io.containers.zstd-chunked.manifest-position"]')
data=$REGISTRY_DIR/storage/docker/registry/v2/blobs/sha256/${layer:7:2}/${layer#sha256:}/data
IFS=: read -r toc_off toc_len _ <<<"$pos"
frame=$(tail -c +"$((toc_off + 1))" "$data" | head -c "$toc_len" | zstd -dc |
	jq -r '.entries[] | select(.name == "big/changing" and .type == "reg") | "\(.offset) \(.endOffset)"')
read -r f_off f_end <<<"$frame"
[[ -f "$data" && -n "$f_off" ]] || bail_out "finding the frame of big/changing in the registry's storage"
cp "$data" "$TEST_TMPDIR/blob.orig"
mid=$(((f_off + f_end) / 2))
# (through a pipe, never $(...): a byte that becomes NUL or a newline would be
# dropped by the substitution and the blob left unchanged, as a CI run found)
byte=$(od -An -tu1 -j "$mid" -N1 "$data" | tr -d ' ')
printf '%b' "\\x$(printf '%02x' $((byte ^ 0xff)))" |
	dd of="$data" bs=1 seek="$mid" count=1 conv=notrunc status=none
cmp -s "$data" "$TEST_TMPDIR/blob.orig" && bail_out "changing one byte of the frame of big/changing"
mkdir -p "$TEST_TMPDIR/root5"
"$SYSCTR" --root="$TEST_TMPDIR/root5" pull -q --tls-verify=false "$REG/app:v1" >/dev/null 2>&1 || bail_out "v1 into root5"
ROOT5_REPO=$TEST_TMPDIR/root5/var/lib/sysctr/repo
before=$(REPO=$ROOT5_REPO store_state)
out=$("$SYSCTR" --root="$TEST_TMPDIR/root5" pull -q --tls-verify=false "$REG/app:v2" 2>&1)
rc=$?
diag "$out"
assert_ne "$rc" 0 "a changed frame: the partial pull fails"
assert_match "$out" "big/changing|zstd|table of contents" "  ... naming the file or the frame"
assert_eq "$(wc -l <<<"$out")" 1 "  ... in one line"
assert_eq "$(REPO=$ROOT5_REPO store_state)" "$before" "  ... and the store is as it was"
cp "$TEST_TMPDIR/blob.orig" "$data"

# without the files in the store, or with partial pulls off: the whole blob
mkdir -p "$TEST_TMPDIR/root2"
out=$("$SYSCTR" --root="$TEST_TMPDIR/root2" --verbose pull -q --tls-verify=false "$REG/app:v2" 2>&1)
assert_not_match "$out" "partial pull" "an empty store pulls v2 whole"
mkdir -p "$TEST_TMPDIR/root3"
"$SYSCTR" --root="$TEST_TMPDIR/root3" pull -q --tls-verify=false "$REG/app:v1" >/dev/null 2>&1
out=$(SYSCTR_NO_PARTIAL=1 "$SYSCTR" --root="$TEST_TMPDIR/root3" --verbose pull -q --tls-verify=false "$REG/app:v2" 2>&1)
assert_not_match "$out" "partial pull" "SYSCTR_NO_PARTIAL=1 pulls v2 whole"

# a registry that ignores Range: the images copied as they are (zstd:chunked,
# annotations kept) into layouts the test's fake registry serves
for v in v1 v2; do
	skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$REG/app:$v" "oci:$IMAGES_DIR/app$v:$v" ||
		bail_out "copying $v for the fake registry"
done
fake_registry_start --id norange --auth none || bail_out "cannot start the fake registry"
# shellcheck disable=SC2154 # set by fake_registry_start --id norange
FREG=$FAKE_norange_ADDR
mkdir -p "$TEST_TMPDIR/root4"
"$SYSCTR" --root="$TEST_TMPDIR/root4" pull -q --tls-verify=false "$FREG/ok/appv1:v1" >/dev/null 2>&1 ||
	bail_out "pulling v1 from the fake registry"
out=$("$SYSCTR" --root="$TEST_TMPDIR/root4" --verbose pull -q --tls-verify=false "$FREG/ok/appv2:v2" 2>&1)
rc=$?
assert_eq "$rc" 0 "a registry that ignores Range: the pull still works"
assert_match "$out" "does not serve ranges" "  ... it says the registry does not serve ranges and fetches the whole blob"
done_testing
