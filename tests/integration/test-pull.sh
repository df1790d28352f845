#!/bin/bash
# test-pull.sh — `sysctr pull` and `sysctr images` against a real registry
# (Debian's docker-registry), images built with umoci and copied with skopeo.
#
# What is checked: a multi-layer image (whiteouts, opaque dirs, hardlinks,
# symlinks, setuid/setgid, a user.* xattr, empty dirs, owners) installs to a
# rootfs equal, file by file, to what `umoci unpack` makes of it; a warm
# re-pull costs at most 2 requests; oci:, oci-archive: and docker-archive:
# (made by skopeo) give the same tree, and so does the image pushed by
# podman as zstd:chunked; a two-platform index resolves to the
# host's platform or --platform; Basic auth (none / wrong / --creds /
# --authfile) and a Bearer token flow (fake token server); unreachable host,
# unknown tag and repository, a tampered blob, an interrupted pull; images
# list/inspect/rm/prune/prune --all.  Every failure is one line on stderr
# and leaves the store as it was.
set -u
. "$SYSCTR_SRCDIR/tests/lib/libtest.sh"
. "$SYSCTR_SRCDIR/tests/lib/registry.sh"
. "$SYSCTR_SRCDIR/tests/lib/images.sh"
require_root
require_cmd umoci skopeo podman jq ostree python3 htpasswd "$DOCKER_REGISTRY_BIN" curl
. "$SYSCTR_SRCDIR/tests/integration/lib-pull.sh"

registry_start --id open || bail_out "cannot start the registry"
REG=$REGISTRY_ADDR
TLS=(--tls-verify=false)

# ------------------------------------------------------------ the image ----
have_xattr=""
command -v setfattr >/dev/null && command -v getfattr >/dev/null && have_xattr=1

L1=$TEST_TMPDIR/l1 L2=$TEST_TMPDIR/l2 L3=$TEST_TMPDIR/l3
mkdir -p "$L1"/{etc,bin,empty,opq/sub,del,var/secret,tmp,home/user}
printf 'alpha\n' >"$L1/etc/a"
ln "$L1/etc/a" "$L1/etc/hard"
ln -s a "$L1/etc/link"
ln -s /etc/a "$L1/etc/abs"
ln -s ../nowhere "$L1/etc/dangling"
cp /bin/true "$L1/bin/su" && chmod 4755 "$L1/bin/su"
cp /bin/true "$L1/bin/sg" && chmod 2711 "$L1/bin/sg"
printf 'x\n' >"$L1/opq/x"; printf 'z\n' >"$L1/opq/sub/z"
printf 'gone\n' >"$L1/del/gone"; printf 'keep\n' >"$L1/del/keep"
printf 'secret\n' >"$L1/var/secret/s" && chmod 0600 "$L1/var/secret/s" && chmod 0700 "$L1/var/secret"
chmod 1777 "$L1/tmp"
printf 'mine\n' >"$L1/home/user/f" && chown -R 1000:1001 "$L1/home/user"
[[ -n "$have_xattr" ]] && setfattr -n user.sysctr.test -v "hello xattr" "$L1/etc/a"
# layer 2: whiteouts, an opaque dir, a new empty dir, a file replacing a symlink
mkdir -p "$L2"/{etc,del,opq,newempty}
touch "$L2/del/.wh.gone" "$L2/opq/.wh..wh..opq" "$L2/etc/.wh.link"
printf 'new\n' >"$L2/opq/new"
printf 'now a file\n' >"$L2/etc/abs"
# layer 3: re-create a deleted name as a directory, hardlink pair of its own
mkdir -p "$L3/del/gone" "$L3/usr"
printf 'pair\n' >"$L3/usr/p1"; ln "$L3/usr/p1" "$L3/usr/p2"

image_new rich v1 || bail_out "umoci new"
t=$TEST_TMPDIR/l1.tar
# GNU tar with user.* xattrs (image_make_tar does not carry xattrs)
# shellcheck disable=SC2046 # one argument per top-level entry
tar -C "$L1" --sort=name --numeric-owner --format=pax --xattrs --xattrs-include='user.*' \
	--mtime=2020-01-01T00:00:00Z -cf "$t" $(cd "$L1" && ls -A) &&
	image_add_layer_tar rich v1 "$t" && image_add_layer rich v1 "$L2" && image_add_layer rich v1 "$L3" &&
	image_config rich v1 --config.entrypoint=/bin/su --config.label=org.example.test=rich &&
	image_gc rich || bail_out "building the image"
image_push rich v1 >/dev/null || bail_out "skopeo push"

ok "pull a multi-layer image from the registry" sysctr pull "${TLS[@]}" "$REG/rich:v1"
ok "ostree fsck is clean after the pull" ostree --repo="$REPO" fsck -q
nlayers=$(ostree --repo="$REPO" refs | grep -c '^sysctr/layer/')
assert_eq "$nlayers" 3 "one layer ref per layer"
assert_eq "$(ostree --repo="$REPO" refs | grep -c '^sysctr/image/')" 1 "one image ref"

# the same image, unpacked by umoci
umoci unpack --image "$IMAGES_DIR/rich:v1" "$TEST_TMPDIR/umoci-rich" >/dev/null 2>&1 || bail_out "umoci unpack"
if [[ -n "$have_xattr" ]]; then
	assert_eq "$(getfattr --only-values -n user.sysctr.test "$TEST_TMPDIR/umoci-rich/rootfs/etc/a" 2>/dev/null)" \
		"hello xattr" "the reference tree (umoci) carries the user.* xattr"
else
	skip "the reference tree carries a user.* xattr" "setfattr/getfattr not installed (package attr)"
fi

# deploy it the way install does, and compare
export SYSCTR_TEMPLATES_DIR=$SYSCTR_SRCDIR/templates
if ok "install --system --root deploys the pulled image" sysctr install --system --name=rich "$REG/rich:v1"; then
	DEP=$ROOT/var/lib/sysctr/containers/rich.0/rootfs
	out=$(python3 "$INTEG_DIR/treecmp.py" --allow-extra=dev,dev/mqueue,dev/pts,dev/shm,proc,run,sys \
		"$TEST_TMPDIR/umoci-rich/rootfs" "$DEP" 2>&1); rc=$?
	if (( rc == 0 )); then pass "deployed rootfs equals umoci unpack, file by file (${out##*$'\n'})"
	else fail "deployed rootfs equals umoci unpack, file by file"; diag "$out"; fi
else
	skip "deployed rootfs equals umoci unpack" "install failed"
fi

# the store itself, checked out the documented way (ostree union + whiteouts)
checkout_image() {
	local img=$1 dir=$2 d
	rm -rf "$dir"
	for d in $(sysctr images inspect "$img" | jq -r '.layers[].digest'); do
		ostree --repo="$REPO" checkout --union --whiteouts "sysctr/layer/${d#sha256:}" "$dir" || return 1
	done
}
compare_with_umoci() {
	local desc=$1 img=$2 out rc
	if ! checkout_image "$img" "$TEST_TMPDIR/co"; then fail "$desc: checkout"; return 1; fi
	out=$(python3 "$INTEG_DIR/treecmp.py" "$TEST_TMPDIR/umoci-rich/rootfs" "$TEST_TMPDIR/co" 2>&1); rc=$?
	if (( rc == 0 )); then pass "$desc"; else fail "$desc"; diag "$out"; fi
}
compare_with_umoci "ostree checkout --union --whiteouts of the layers matches umoci" "$REG/rich:v1"

# --------------------------------------- pushed by podman as zstd:chunked --
# podman's own storage, private to this test (vfs: no overlay needed); a
# registry of its own, where podman cannot reuse the gzip blobs it knows
# (its blob-info cache is host-wide) and must compress anew
registry_start --id zc || bail_out "cannot start the second registry"
ZREG=$REGISTRY_ADDR
CS=$TEST_TMPDIR/cs
CS_OPTS=(--root "$CS/root" --runroot "$CS/run" --storage-driver vfs)
if skopeo --insecure-policy copy -q "oci:$IMAGES_DIR/rich:v1" "containers-storage:[vfs@$CS/root+$CS/run]localhost/sysctr-rich:v1" \
	&& podman "${CS_OPTS[@]}" push -q --tls-verify=false --compression-format zstd:chunked localhost/sysctr-rich:v1 \
		"docker://$ZREG/rich:zstd-chunked" 2>"$TEST_TMPDIR/podman-push.err"; then
	n_chunked=$(registry_curl "/v2/rich/manifests/zstd-chunked" -H 'Accept: application/vnd.oci.image.manifest.v1+json' |
		jq '[.layers[] | select(.annotations["io.containers.zstd-chunked.manifest-checksum"])] | length')
	assert_eq "$n_chunked" 3 "podman pushed the 3 layers as zstd:chunked (TOC annotations in the manifest)"
	out=$(sysctr pull "${TLS[@]}" "$ZREG/rich:zstd-chunked" 2>&1); rc=$?
	if (( rc == 0 )); then pass "pull what podman pushed as zstd:chunked"
	else fail "pull what podman pushed as zstd:chunked"; diag "$out"; fi
	diag "podman $(podman --version | awk '{print $3}'): $(grep -c 'checked against its table of contents' <<<"$out") of 3 layers checked by their TOC (tar not the diff_id's)"
	compare_with_umoci "zstd:chunked from podman: the layers match umoci's unpack of the gzip original" "$ZREG/rich:zstd-chunked"
else
	fail "podman push --compression-format zstd:chunked"; diag_file "$TEST_TMPDIR/podman-push.err" 5
fi
podman "${CS_OPTS[@]}" rmi -af >/dev/null 2>&1
registry_use open

# ------------------------------------------------------------ warm re-pull --
out=$(SYSCTR_REPORT_REQUESTS=1 "$SYSCTR" --root="$ROOT" pull "${TLS[@]}" "$REG/rich:v1" 2>&1); rc=$?
if (( rc == 0 )) && grep -q ': up to date (sha256:' <<<"$out"; then pass "warm re-pull: up to date"
else fail "warm re-pull: up to date"; diag "$out"; fi
req=$(sed -n 's/^requests: //p' <<<"$out")
if [[ -n "$req" ]] && (( req <= 2 )); then pass "warm re-pull costs $req request(s) (<= 2)"
else fail "warm re-pull costs <= 2 requests"; diag "requests: $req"; fi
n_before_blob=$(grep -c '/blobs/' "$REGISTRY_DIR/registry.log")
SYSCTR_REPORT_REQUESTS=1 sysctr pull "${TLS[@]}" "$REG/rich:v1" >/dev/null 2>&1
assert_eq "$(grep -c '/blobs/' "$REGISTRY_DIR/registry.log")" "$n_before_blob" "warm re-pull fetches no blob (registry access log)"

# -------------------------------------------- offline transports (skopeo) ---
SK=(skopeo --insecure-policy copy -q --src-tls-verify=false)
"${SK[@]}" "docker://$REG/rich:v1" "oci-archive:$TEST_TMPDIR/rich.oci.tar:v1" &&
	"${SK[@]}" "docker://$REG/rich:v1" "docker-archive:$TEST_TMPDIR/rich.docker.tar:rich:v1" &&
	"${SK[@]}" "docker://$REG/rich:v1" "oci:$TEST_TMPDIR/rich-oci:v1" || bail_out "skopeo copy to archives"
for src in "oci:$TEST_TMPDIR/rich-oci:v1" "oci:$IMAGES_DIR/rich:v1" "oci-archive:$TEST_TMPDIR/rich.oci.tar:v1" \
	"docker-archive:$TEST_TMPDIR/rich.docker.tar"; do
	t=${src%%:*}
	if ok "pull $t" sysctr pull "$src"; then
		compare_with_umoci "$t: stored layers match umoci unpack" "$src"
	else
		skip "$t: stored layers match" "pull failed"
	fi
done
ok "ostree fsck is clean after the offline pulls" ostree --repo="$REPO" fsck -q
pull_fails "oci: unknown tag" 'no image "nope" in the OCI layout' "oci:$TEST_TMPDIR/rich-oci:nope"
pull_fails "oci-archive: missing file" 'rich.missing' "oci-archive:$TEST_TMPDIR/rich.missing"

# ---------------------------------------------- a two-platform index -------
mk_arch() {
	local arch=$1 d=$TEST_TMPDIR/arch-$1
	mkdir -p "$d/etc" && printf '%s\n' "$arch" >"$d/etc/arch"
	image_new multi "$arch" && image_add_layer multi "$arch" "$d" &&
		image_config multi "$arch" --architecture="$arch" --os=linux
}
mk_arch amd64 && mk_arch arm64 || bail_out "building the per-arch images"
image_gc multi
lay=$IMAGES_DIR/multi
index=$(jq -c --arg amd "$(jq -c '.manifests[]|select(.annotations["org.opencontainers.image.ref.name"]=="amd64")' "$lay/index.json")" \
	--arg arm "$(jq -c '.manifests[]|select(.annotations["org.opencontainers.image.ref.name"]=="arm64")' "$lay/index.json")" -n '
	{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
	 manifests: [(($amd|fromjson) | del(.annotations) + {platform: {os: "linux", architecture: "amd64"}}),
	             (($arm|fromjson) | del(.annotations) + {platform: {os: "linux", architecture: "arm64", variant: "v8"}})]}')
idx_hex=$(printf '%s' "$index" | sha256sum | cut -d' ' -f1)
printf '%s' "$index" >"$lay/blobs/sha256/$idx_hex"
jq --arg d "sha256:$idx_hex" --argjson s "$(printf '%s' "$index" | wc -c)" \
	'.manifests += [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s,
	  annotations: {"org.opencontainers.image.ref.name": "multi"}}]' "$lay/index.json" >"$lay/index.json.new" &&
	mv "$lay/index.json.new" "$lay/index.json"
skopeo --insecure-policy copy -q --all --dest-tls-verify=false "oci:$lay:multi" "docker://$REG/multi:latest" ||
	bail_out "skopeo copy --all of the index"

arch_of() {
	local d
	d=$(sysctr images inspect "$1" | jq -r '.layers[0].digest') || return 1
	ostree --repo="$REPO" cat "sysctr/layer/${d#sha256:}" /etc/arch
}
host_arch=$(uname -m)
if [[ "$host_arch" == x86_64 ]]; then
	ok "pull a two-platform index (host platform)" sysctr pull "${TLS[@]}" "$REG/multi"
	assert_eq "$(arch_of "$REG/multi")" amd64 "the index resolved to linux/amd64 on this host"
	assert_eq "$(sysctr images inspect "$REG/multi" | jq -r .platform)" linux/amd64 "images inspect shows platform linux/amd64"
else
	skip "two-platform index: host platform" "host is $host_arch, not x86_64"
fi
ok "pull the index with --platform=linux/arm64" sysctr pull "${TLS[@]}" --platform=linux/arm64 "$REG/multi:latest"
assert_eq "$(arch_of "$REG/multi")" arm64 "--platform=linux/arm64 picked the arm64 manifest"
assert_eq "$(sysctr images inspect "$REG/multi" | jq -r .platform)" linux/arm64/v8 "images inspect shows platform linux/arm64/v8"
pull_fails "index without the asked platform" 'no variant for platform linux/s390x' "${TLS[@]}" --platform=linux/s390x "$REG/multi"

# ---------------------------------------------------------- basic auth -----
registry_start --auth "tester:s3cret-pw" --id auth || bail_out "cannot start the auth registry"
image_push rich v1 >/dev/null || bail_out "push to the auth registry"
AREG=$REGISTRY_ADDR
pull_fails "basic auth: no credentials" "authentication required \(no credentials for $AREG; use --creds or --authfile\)" \
	"${TLS[@]}" "$AREG/rich:v1"
pull_fails "basic auth: wrong credentials" "authentication failed.*rejected the credentials for $AREG" \
	"${TLS[@]}" --creds=tester:wrong "$AREG/rich:v1"
if sysctr pull "${TLS[@]}" --creds=tester:wrong "$AREG/rich:v1" 2>&1 | grep -q 'wrong'; then
	fail "the password does not appear in the error"
else pass "the password does not appear in the error"; fi
ok "basic auth: --creds" sysctr pull "${TLS[@]}" --creds=tester:s3cret-pw "$AREG/rich:v1"
# --verbose: requests, the platform, layer timings; never the credentials
VR=$TEST_TMPDIR/verbose-root; mkdir -p "$VR"
out=$("$SYSCTR" --root="$VR" --verbose pull "${TLS[@]}" --creds=tester:s3cret-pw "$AREG/rich:v1" 2>&1); rc=$?
assert_eq "$rc" 0 "--verbose pull succeeds"
assert_match "$out" "sysctr: GET http://$AREG/v2/rich/manifests/v1 \\(with credentials\\): HTTP 200" "--verbose shows each request and its answer"
assert_eq "$(grep -cE '^sysctr: layer sha256:[0-9a-f]{64} \(application/vnd.oci.image.layer.v1.tar\+gzip, [0-9]+ bytes\): fetched in [0-9]+ ms, imported in [0-9]+ ms$' <<<"$out")" 3 \
	"--verbose times each of the 3 layers"
if grep -qE 's3cret|dGVzdGVy|Authorization' <<<"$out"; then fail "--verbose never prints the credentials"; diag "$out"
else pass "--verbose never prints the credentials"; fi
out=$("$SYSCTR" --root="$VR" --verbose install --system --name=vrich "$AREG/rich:v1" 2>&1); rc=$?
assert_eq "$rc" 0 "--verbose install succeeds"
assert_match "$out" "sysctr: vrich: wrote $VR/etc/systemd/system/vrich.service \\(mode 0644\\)" "--verbose install names the files it writes"
assert_match "$out" "sysctr: vrich: .*sysctr-shim --check" "  ... and the shim check it runs"
ok "basic auth: --authfile" sysctr pull "${TLS[@]}" --authfile="$REGISTRY_AUTHFILE" "$AREG/rich:v1"
mkdir -p "$XDG_RUNTIME_DIR/containers" && cp "$REGISTRY_AUTHFILE" "$XDG_RUNTIME_DIR/containers/auth.json"
ok "basic auth: \$XDG_RUNTIME_DIR/containers/auth.json (podman's location)" sysctr pull "${TLS[@]}" "$AREG/rich:v1"
rm -f "$XDG_RUNTIME_DIR/containers/auth.json"
registry_use open

# ------------------------------------------------- bearer token flow -------
# The distribution registry's `auth: token` needs a JWT-signing token server;
# fake-registry.py speaks the same challenge/token protocol and serves the
# umoci layouts.
fake_registry_start --auth bearer --user "tok:en-pw" || bail_out "cannot start the fake token registry"
BREG=$FAKE_ADDR
pull_fails "bearer: no credentials" "token server refused anonymous access" "${TLS[@]}" "$BREG/ok/rich:v1"
pull_fails "bearer: wrong credentials" "token server refused the given credentials" "${TLS[@]}" --creds=tok:wrong "$BREG/ok/rich:v1"
ok "bearer: --creds" sysctr pull "${TLS[@]}" --creds=tok:en-pw "$BREG/ok/rich:v1"
if grep '"/v2/ok/rich/blobs/' "$FAKE_LOG" | jq -e 'select(.headers.Authorization != "Bearer fake-token-4242")' >/dev/null; then
	fail "bearer: every blob request carried the token"
else pass "bearer: every blob request carried the token"; fi
if grep -q '"path": "/token' "$FAKE_LOG" && grep '"path": "/token' "$FAKE_LOG" | jq -e 'select(.path|test("scope=repository%3Aok%2Frich%3Apull"))' >/dev/null; then
	pass "bearer: the token was asked for scope repository:ok/rich:pull"
else fail "bearer: token scope"; diag "$(grep /token "$FAKE_LOG" | head -3)"; fi

# ----------------------------------------------------------- bad input -----
dead=$(alloc_port)
pull_fails "unreachable host" "registry 127\.0\.0\.1:$dead unreachable: .*(onnect|refused)" "${TLS[@]}" "127.0.0.1:$dead/rich:v1"
pull_fails "unknown tag" "manifest rich:nope: not found" "${TLS[@]}" "$REG/rich:nope"
pull_fails "unknown repository" "manifest no/such-repo:v1: not found" "${TLS[@]}" "$REG/no/such-repo:v1"
pull_fails "TLS verification on (default) against a plain-HTTP registry" "registry $REG unreachable: TLS handshake failed.*needs --tls-verify=false" "$REG/rich:v1"
pull_fails "malformed reference" "" "${TLS[@]}" "$REG/UPPER/Case:v1"

# tampered blob: same length, one byte changed, in the registry's storage
d=$TEST_TMPDIR/tamper; mkdir -p "$d"; head -c 300000 /dev/urandom >"$d/blob.bin"
make_image tamper v1 "$d" && image_push tamper v1 >/dev/null || bail_out "tamper image"
layer=$(image_manifest tamper v1 | jq -r '.layers[0].digest')
data=$REGISTRY_DIR/storage/docker/registry/v2/blobs/sha256/${layer:7:2}/${layer#sha256:}/data
python3 - "$data" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x55
open(p, "wb").write(bytes(b))
EOF
pull_fails "tampered layer blob" "blob $layer: digest mismatch \(content hashes to sha256:" "${TLS[@]}" "$REG/tamper:v1"
assert_eq "$(ostree --repo="$REPO" refs | grep -c "${layer#sha256:}")" 0 "tampered layer: no layer ref stored"

# ------------------------------------------------------ interrupted pull ---
d=$TEST_TMPDIR/crash; mkdir -p "$d/a" "$d/b"; head -c 200000 /dev/urandom >"$d/a/1"; head -c 200000 /dev/urandom >"$d/b/2"
image_new crash v1 && image_add_layer crash v1 "$d/a" && image_add_layer crash v1 "$d/b" && image_gc crash &&
	image_push crash v1 >/dev/null || bail_out "crash image"
for point in pull-layer-imported pull-before-commit; do
	SYSCTR_CRASH_AT=$point "$SYSCTR" --root="$ROOT" pull "${TLS[@]}" "$REG/crash:v1" >/dev/null 2>&1; rc=$?
	assert_eq "$rc" 137 "crash at $point: sysctr was killed (SIGKILL)"
	if ostree --repo="$REPO" refs | grep -q "^sysctr/image/.*crash"; then
		fail "crash at $point: no image ref points at partial data"
	else pass "crash at $point: no image ref for the interrupted image"; fi
	ok "crash at $point: fsck clean" ostree --repo="$REPO" fsck -q
	ok "crash at $point: pulling again succeeds" sysctr pull "${TLS[@]}" "$REG/crash:v1"
	ok "crash at $point: fsck clean after the re-pull" ostree --repo="$REPO" fsck -q
	# start the next round from scratch
	sysctr images rm "$REG/crash:v1" >/dev/null && sysctr images prune >/dev/null
done

# ----------------------------------------------------------------- images --
out=$(sysctr images --json) || fail "images --json"
for r in "$REG/rich:v1" "$REG/multi:latest" "$AREG/rich:v1" "$BREG/ok/rich:v1"; do
	if jq -e --arg r "$r" 'map(.reference)|index($r)' <<<"$out" >/dev/null; then pass "images --json lists $r"
	else fail "images --json lists $r"; diag "$out"; fi
done
assert_eq "$(jq -r '.[0]|keys|join(",")' <<<"$out")" "created,digest,platform,pulled,reference,signature,size" "images --json fields"
ok "images (table) lists rich" bash -c "'$SYSCTR' --root='$ROOT' images | grep -q '^$REG/rich:v1 '"
insp=$(sysctr images inspect "$REG/rich:v1")
assert_eq "$(jq -r '.layers|length' <<<"$insp")" 3 "inspect: three layers"
assert_eq "$(jq -r '.labels["org.example.test"]' <<<"$insp")" rich "inspect: labels"
assert_eq "$(jq -r '.digest' <<<"$insp")" "$(registry_digest rich v1)" "inspect: the manifest digest is the registry's"
assert_eq "$(jq -r '[.layers[]|(.diff_id|startswith("sha256:")) and (.size > 0)]|all' <<<"$insp")" true "inspect: layers with diff_ids and sizes"
out=$(sysctr images inspect "$REG/nope:v1" 2>&1); rc=$?
assert_eq "$rc:$(wc -l <<<"$out")" "1:1" "inspect of an unknown image: one line, exit 1"

before_layers=$(ostree --repo="$REPO" refs | grep -c '^sysctr/layer/')
ok "images rm (an image no container uses)" sysctr images rm "$REG/multi:latest"
ok_fails "images rm refuses an image an installed container uses" sysctr images rm "$REG/rich:v1"
assert_eq "$(ostree --repo="$REPO" refs | grep -c '^sysctr/layer/')" "$before_layers" "images rm keeps the layers"
ok "images prune" sysctr images prune
after_layers=$(ostree --repo="$REPO" refs | grep -c '^sysctr/layer/')
if (( after_layers < before_layers )); then pass "images prune dropped the unused layers ($before_layers -> $after_layers)"
else fail "images prune dropped the unused layers ($before_layers -> $after_layers)"; fi
ok "fsck clean after prune" ostree --repo="$REPO" fsck -q
ok "images prune --all" sysctr images prune --all
# Deployments are tracked by manifest digest: references that name the
# deployed manifest (the same image pulled from oci:, archives, another
# registry) are kept with it; everything else goes.
rich_digest=$(registry_digest rich v1)
left=$(sysctr images --json)
assert_eq "$(jq -r --arg d "$rich_digest" '[.[]|select(.digest != $d)]|length' <<<"$left")" 0 \
	"prune --all drops every image whose manifest no deployment uses"
assert_eq "$(jq -r --arg r "$REG/rich:v1" 'map(.reference)|index($r) != null' <<<"$left")" true "prune --all keeps the deployed image"
assert_eq "$(ostree --repo="$REPO" refs | grep -c '^sysctr/layer/')" 3 "prune --all keeps that image's 3 layers"
ok "fsck clean after prune --all" ostree --repo="$REPO" fsck -q
ok "the deployment still resolves after prune --all" test -f "$ROOT/var/lib/sysctr/containers/rich.0/rootfs/etc/a"

done_testing
