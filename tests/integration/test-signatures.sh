#!/bin/bash
# test-signatures.sh — containers-policy.json: does `sysctr pull` accept and
# reject exactly what skopeo accepts and rejects?
#
# Images are signed into a loopback registry (Debian's docker-registry) with
# throw-away keys: GPG "simple signing" signatures in a file:// lookaside
# named by a registries.d, sigstore signatures as registry attachments
# (sha256-HEX.sig tags).  Each case is one (policy, registries.d, image)
# triple; its verdict (accepted = the pull succeeds) is asked of
#   skopeo   skopeo --policy P --registries.d D copy docker://REF oci:...
#   sysctr   sysctr pull --signature-policy=P --registries.d=D REF
# and both must equal the expected verdict.  Images from disk (oci:,
# oci-archive:, docker-archive:) are judged the same way, by their own
# transports' scopes.  A rejection by sysctr must be
# one line on stderr with "Source image rejected:" (a broken policy: one
# line), and leave the store (every file under --root) as it was.  The table
# of verdicts is printed at the end as diagnostics.  sysctr runs with a
# TMPDIR of its own: at the end nothing may be left in it, and no gpg-agent
# of its throw-away GnuPG homes may still run.
#
# Debian 12's skopeo 1.9.3 is built with sigstore disabled: it rejects every
# sigstore signature ("Debian-local change: sigstore disabled") and cannot
# make one.  The attachments are then made by tests/lib/signing.sh itself,
# checked with openssl (the "fixture" lines), and the skopeo column of a case
# that skopeo rejected for that reason reads n/a (a SKIP line): there only
# sysctr is compared with the expected verdict.
#
# Then: `sysctr images inspect` names what verified each image (the GPG
# fingerprint, the sigstore key, the identity, where the signature was read),
# a later pull that accepts the same image another way records that, and a
# host without /etc/containers/policy.json accepts and says so.
set -u
. "$SYSCTR_SRCDIR/tests/lib/libtest.sh"
. "$SYSCTR_SRCDIR/tests/lib/registry.sh"
. "$SYSCTR_SRCDIR/tests/lib/images.sh"
require_root
require_cmd umoci skopeo jq ostree python3 curl gpg gpgconf openssl "$DOCKER_REGISTRY_BIN"
. "$SYSCTR_SRCDIR/tests/lib/signing.sh"
"$SIGNING_PYTHON" -c 'import nacl.secret' 2>/dev/null || skip_all "needs $SIGNING_PYTHON with python3-nacl"
. "$SYSCTR_SRCDIR/tests/integration/lib-pull.sh"

registry_start --id sig || bail_out "cannot start the registry"
# as Debian's containers-common ships /etc/containers/registries.d/default.yaml:
# keys with nothing under them (YAML nulls) define nothing, so the
# default-docker of signing.sh's own file is no duplicate
cat >"$SIGNING_REGISTRIES_D/00-distribution.yaml" <<'EOF'
docker:
#  registry.example.com:
#    lookaside: https://sigs.example.com/
default-docker:
#  lookaside: file:///var/lib/containers/sigstore
EOF
REG=$REGISTRY_ADDR
POL=$TEST_TMPDIR/policies
mkdir -p "$POL"

# ---------------------------------------------------------------- images ----
# two tiny images with different digests (one file layer each)
for v in v1 v2; do
	printf 'tiny %s\n' "$v" >"$TEST_TMPDIR/tiny-$v"
	{ image_new tiny "$v" >/dev/null && image_add_files tiny "$v" "$TEST_TMPDIR/tiny-$v:/etc/tiny" >/dev/null; } ||
		bail_out "building tiny:$v"
done
image_gc tiny

# ------------------------------------------------------------------ keys ----
KA=$(gpg_key_new alice) || bail_out "gpg key alice"
KB=$(gpg_key_new mallory) || bail_out "gpg key mallory"
KE=$(gpg_key_new edna ed25519) || bail_out "gpg key edna (ed25519)"
SA=$(sigstore_key_new sigalice) || bail_out "sigstore key sigalice"
SB=$(sigstore_key_new sigmallory) || bail_out "sigstore key sigmallory"
GA=$SIGNING_DIR/alice.gpg GE=$SIGNING_DIR/edna.gpg
diag "GPG keys: alice $KA, mallory $KB, edna (ed25519) $KE"
if sigstore_skopeo_can_sign; then
	diag "sigstore: skopeo signs"
else
	diag "sigstore: skopeo cannot sign ($(cut -c1-200 "$SIGNING_DIR/.skopeo-sigstore")); attachments made by signing.sh"
fi

# ------------------------------------------------------------- the runner --
RD=$SIGNING_REGISTRIES_D
# sysctr's temporary files (its throw-away GnuPG homes) go here, to be
# checked at the end: nothing left, no gpg-agent of theirs still running
SYSCTR_TMP=$TEST_TMPDIR/sysctr-tmp
mkdir -p "$SYSCTR_TMP"
_n=0
TABLE=()

# store_snapshot FILE   every path under ROOT with type, mode, owner, size
#   (not of directories), symlink target and content hash; not times
store_snapshot() {
	{
		(cd "$ROOT" && find . -printf '%y %m %U:%G %p -> %l\n' | LC_ALL=C sort)
		(cd "$ROOT" && find . -type f -printf '%s %p\n' | LC_ALL=C sort)
		(cd "$ROOT" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
	} >"$1"
}

# _msg FILE   the error skopeo (logrus) or sysctr printed, one line
_msg() {
	local l
	l=$(grep -v '^\s*$' "$1" | tail -n1)
	if [[ "$l" =~ msg=\"(.*)\"$ ]]; then l=${BASH_REMATCH[1]}; fi
	printf '%s' "${l:0:300}"
}

# run_case NAME EXPECTED(accepted|rejected) POLICY REF [--rd DIR] [--bad-policy]
run_case() {
	local name=$1 want=$2 pol=$3 ref=$4 rd=$RD bad=""
	shift 4
	while (( $# )); do
		case $1 in
		--rd) rd=$2; shift 2 ;;
		--bad-policy) bad=1; shift ;;
		*) bail_out "run_case: unknown argument $1" ;;
		esac
	done
	_n=$((_n + 1))
	local d=$TEST_TMPDIR/case-$_n sk sy rc skmsg="" symsg="" lines src
	mkdir -p "$d"
	# images from disk are named the same way by both tools
	case $ref in
	oci:*|oci-archive:*|docker-archive:*) src=$ref ;;
	*) src=docker://$ref ;;
	esac

	# skopeo: signatures cannot go into an oci: layout, hence --remove-signatures
	# (the policy is applied to the source all the same)
	skopeo --policy "$pol" --registries.d "$rd" copy -q --remove-signatures --src-tls-verify=false \
		"$src" "oci:$d/out:x" >"$d/skopeo.out" 2>"$d/skopeo.err"; rc=$?
	if (( rc == 0 )); then sk=accepted
	elif grep -q 'sigstore disabled' "$d/skopeo.err"; then sk=n/a
	else sk=rejected
	fi
	(( rc != 0 )) && skmsg=$(_msg "$d/skopeo.err")

	# sysctr
	store_snapshot "$d/store.before"
	TMPDIR=$SYSCTR_TMP "$SYSCTR" --root="$ROOT" pull --tls-verify=false --signature-policy="$pol" --registries.d="$rd" "$ref" \
		>"$d/sysctr.out" 2>"$d/sysctr.err"; rc=$?
	store_snapshot "$d/store.after"
	if (( rc == 0 )); then sy=accepted; else sy=rejected; symsg=$(_msg "$d/sysctr.err"); fi

	if [[ "$sk" == n/a ]]; then
		skip "$name: skopeo says $want" "this skopeo cannot verify sigstore signatures: $skmsg"
	else
		assert_eq "$sk" "$want" "$name: skopeo says $want" || diag_file "$d/skopeo.err" 5
	fi
	assert_eq "$sy" "$want" "$name: sysctr says $want" || diag_file "$d/sysctr.err" 5
	if (( rc != 0 )); then
		lines=$(wc -l <"$d/sysctr.err")
		if [[ -n "$bad" ]]; then
			if (( rc == 1 && lines == 1 )); then pass "$name: sysctr fails with one line (broken policy)"
			else fail "$name: sysctr fails with one line (broken policy)"; diag "exit $rc"; diag_file "$d/sysctr.err" 10; fi
		elif (( rc == 1 && lines == 1 )) && grep -q 'Source image rejected: ' "$d/sysctr.err"; then
			pass "$name: sysctr's rejection is one line with \"Source image rejected:\""
		else
			fail "$name: sysctr's rejection is one line with \"Source image rejected:\""
			diag "exit $rc, $lines line(s)"; diag_file "$d/sysctr.err" 10
		fi
		if cmp -s "$d/store.before" "$d/store.after"; then pass "$name: store unchanged by the rejected pull"
		else fail "$name: store unchanged by the rejected pull"; diff "$d/store.before" "$d/store.after" | head -n 20 | sed 's/^/#   /'; fi
	fi
	[[ -n "$skmsg" ]] && diag "  skopeo: $skmsg"
	[[ -n "$symsg" ]] && diag "  sysctr: $symsg"
	TABLE+=("$name|$want|$sk|$sy")
}

# ------------------------------------------------------------- fixtures -----
# GPG
dg1=$(sign_push_gpg "$KA" tiny:v1 "$REG/sig/gpg:v1") || bail_out "signed push"
dg2=$(push_unsigned tiny:v2 "$REG/sig/unsigned:v1") || bail_out "unsigned push"
push_unsigned tiny:v1 "$REG/sig/unsigned:v0" >/dev/null || bail_out "unsigned push"
assert_ne "$dg1" "$dg2" "fixture: tiny:v1 and tiny:v2 have different digests"
assert_file "$(lookaside_dir "$REG/sig/gpg:v1" "$dg1")/signature-1" \
	"fixture: skopeo wrote the GPG signature to LOOKASIDE/sig/gpg@sha256=HEX/signature-1"
sign_push_gpg "$KB" tiny:v1 "$REG/sig/gpg-otherkey:v1" >/dev/null || bail_out "push"
# signature for another digest: tiny:v1 signed for the name the unsigned tiny:v2 is pulled by
{ a=$(sign_push_gpg --identity "$REG/sig/gpg-otherdigest:v1" "$KA" tiny:v1 "$REG/sig/gpg-src:v1") &&
	b=$(push_unsigned tiny:v2 "$REG/sig/gpg-otherdigest:v1") &&
	gpg_sig_copy "$REG/sig/gpg-src:v1" "$a" "$REG/sig/gpg-otherdigest:v1" "$b"; } || bail_out "gpg other digest"
sign_push_gpg --identity "$REG/other:v1" "$KA" tiny:v1 "$REG/sig/gpg-identity:v1" >/dev/null || bail_out "push"
sign_push_gpg --identity "$REG/sig/gpg-tag:other" "$KA" tiny:v1 "$REG/sig/gpg-tag:v1" >/dev/null || bail_out "push"
sign_push_gpg --identity "$REG/sig/canonical:v1" "$KA" tiny:v1 "$REG/sig/gpg-exactref:v1" >/dev/null || bail_out "push"
sign_push_gpg --identity "$REG/sig/canonical:v7" "$KA" tiny:v1 "$REG/sig/gpg-exactrepo:v1" >/dev/null || bail_out "push"
sign_push_gpg --identity "$REG/sig/app:v1" "$KA" tiny:v1 "$REG/mirror/app:v1" >/dev/null || bail_out "push"
t=$(sign_push_gpg "$KA" tiny:v1 "$REG/sig/gpg-tampered:v1") || bail_out "push"
gpg_sig_tamper "$(lookaside_dir "$REG/sig/gpg-tampered:v1" "$t")/signature-1" || bail_out "tamper"
# two signatures: signature-1 by mallory, signature-2 by alice
t=$(sign_push_gpg "$KA" tiny:v1 "$REG/sig/gpg-two:v1") || bail_out "push"
sigdir=$(lookaside_dir "$REG/sig/gpg-two:v1" "$t")
{ mv "$sigdir/signature-1" "$TEST_TMPDIR/alice-sig" && sign_push_gpg "$KB" tiny:v1 "$REG/sig/gpg-two:v1" >/dev/null &&
	mv "$TEST_TMPDIR/alice-sig" "$sigdir/signature-2"; } || bail_out "two signatures"
sign_push_gpg "$KE" tiny:v1 "$REG/sig/gpg-ed25519:v1" >/dev/null || bail_out "push"
# a gap: only signature-2 (readers stop at the first missing signature-N)
t=$(sign_push_gpg "$KA" tiny:v1 "$REG/sig/gpg-gap:v1") || bail_out "push"
sigdir=$(lookaside_dir "$REG/sig/gpg-gap:v1" "$t")
mv "$sigdir/signature-1" "$sigdir/signature-2" || bail_out "gap"
# a namespace entry of its own in the registries.d, with another lookaside
RD_NS=$TEST_TMPDIR/registries.d-ns LA_NS=$TEST_TMPDIR/lookaside-ns
{ registries_d_write "$RD_NS" "$SIGNING_LOOKASIDE" && registries_d_add_namespace "$RD_NS" "$REG/sig/ns" "$LA_NS" &&
	t=$(sign_push_gpg --registries-d "$RD_NS" "$KA" tiny:v1 "$REG/sig/ns/app:v1"); } || bail_out "namespace lookaside"
assert_file "$(lookaside_dir --lookaside "$LA_NS" "$REG/sig/ns/app:v1" "$t")/signature-1" \
	"fixture: with a docker: entry for $REG/sig/ns, skopeo wrote the signature to that entry's lookaside"
RD_NOATT=$TEST_TMPDIR/registries.d-noatt
registries_d_write "$RD_NOATT" "$SIGNING_LOOKASIDE" false || bail_out "registries.d"
{ push_unsigned tiny:v1 "$REG/sig/open:v1" >/dev/null && push_unsigned tiny:v1 "$REG/sig/blocked:v1" >/dev/null; } ||
	bail_out "push"

# sigstore
c1=$(sign_push_sigstore "$SA" tiny:v1 "$REG/sig/cosign:v1") || bail_out "sigstore signed push"
assert_eq "$(registry_tags sig/cosign | tr '\n' ' ')" "$(attachment_tag "$c1") v1 " \
	"fixture: the sigstore signature is the attachment tag $(attachment_tag "$c1")"
m=$(attachment_get "$REG/sig/cosign" "$c1")
assert_eq "$(jq -r '[.mediaType, .config.mediaType, (.layers|length), .layers[0].mediaType,
	(.layers[0].annotations|keys|join(","))]|join(" ")' <<<"$m")" \
	"application/vnd.oci.image.manifest.v1+json application/vnd.oci.image.config.v1+json 1 application/vnd.dev.cosign.simplesigning.v1+json dev.cosignproject.cosign/signature" \
	"fixture: attachment manifest: OCI manifest, OCI config, one simplesigning layer with the signature annotation"
ok "fixture: the sigstore signature verifies with openssl and the right key" sigstore_verify_openssl "$SA/key.pub" "$REG/sig/cosign" "$c1"
ok_fails "fixture: ... and not with another key" sigstore_verify_openssl "$SB/key.pub" "$REG/sig/cosign" "$c1"
t=$(sign_push_sigstore "$SB" tiny:v1 "$REG/sig/cosign-otherkey:v1") || bail_out "push"
ok "fixture: mallory's sigstore signature verifies with mallory's key" sigstore_verify_openssl "$SB/key.pub" "$REG/sig/cosign-otherkey" "$t"
{ t=$(sign_push_sigstore "$SA" tiny:v1 "$REG/sig/cosign-tampered:v1") &&
	sigstore_tamper_annotation "$REG/sig/cosign-tampered" "$t"; } || bail_out "sigstore tamper"
ok_fails "fixture: the tampered sigstore signature does not verify with openssl" \
	sigstore_verify_openssl "$SA/key.pub" "$REG/sig/cosign-tampered" "$t"
{ t=$(sign_push_sigstore "$SA" tiny:v1 "$REG/sig/cosign-mediatype:v1") &&
	sigstore_set_media_type "$REG/sig/cosign-mediatype" "$t" application/vnd.oci.image.layer.v1.tar; } || bail_out "media type"
# another digest: tiny:v1's attachment (signed for the name tiny:v2 is pulled by) copied across repositories
{ a=$(sign_push_sigstore --identity "$REG/sig/cosign-otherdigest:v1" "$SA" tiny:v1 "$REG/sig/cosign-src:v1") &&
	b=$(push_unsigned tiny:v2 "$REG/sig/cosign-otherdigest:v1") &&
	attachment_copy "$REG/sig/cosign-src" "$a" "$REG/sig/cosign-otherdigest" "$b"; } || bail_out "sigstore other digest"
ok "fixture: the copied attachment carries a good signature (of the other digest)" \
	sigstore_verify_openssl "$SA/key.pub" "$REG/sig/cosign-otherdigest" "$b"
sign_push_sigstore --identity "$REG/other:v1" "$SA" tiny:v1 "$REG/sig/cosign-identity:v1" >/dev/null || bail_out "push"
# two signatures in one attachment: mallory's first, alice's second
{ t=$(sign_push_sigstore "$SB" tiny:v1 "$REG/sig/cosign-two:v1") &&
	sigstore_attach "$SA" "$REG/sig/cosign-two:v1" "$t"; } || bail_out "two sigstore signatures"
assert_eq "$(attachment_get "$REG/sig/cosign-two" "$t" | jq '.layers|length')" 2 "fixture: two signatures in one attachment"
# both kinds on one image
{ t=$(sign_push_gpg "$KA" tiny:v1 "$REG/sig/both:v1") && sigstore_attach "$SA" "$REG/sig/both:v1" "$t"; } || bail_out "both"

# ---------------------------------------------------------------- policies --
policy_write "$POL/gpg.json" "$(policy_signed_by "$GA")"
policy_write "$POL/gpg-ed25519.json" "$(policy_signed_by "$GE")"
policy_write "$POL/gpg-armored.json" "$(policy_signed_by "$SIGNING_DIR/alice.asc")"
policy_write "$POL/gpg-keydata.json" "$(policy_signed_by --key-data "$GA")"
policy_write "$POL/gpg-keypaths.json" "$(policy_signed_by "$SIGNING_DIR/mallory.gpg" "$GA")"
policy_write "$POL/gpg-matchrepo.json" "$(policy_signed_by --identity "$(identity_match_repository)" "$GA")"
policy_write "$POL/gpg-exactref.json" \
	"$(policy_signed_by --identity "$(identity_exact_reference "$REG/sig/canonical:v1")" "$GA")"
policy_write "$POL/gpg-exactrepo.json" \
	"$(policy_signed_by --identity "$(identity_exact_repository "$REG/sig/canonical")" "$GA")"
policy_write "$POL/gpg-remap.json" \
	"$(policy_signed_by --identity "$(identity_remap_identity "$REG/mirror" "$REG/sig")" "$GA")"
policy_write "$POL/scope-reject.json" "$(policy_accept_anything)" "$REG/sig/blocked" "$(policy_reject)"
policy_write "$POL/scope-accept.json" "$(policy_reject)" "$REG/sig/open" "$(policy_accept_anything)"
policy_write "$POL/scope-host.json" "$(policy_accept_anything)" "$REG" "$(policy_reject)" \
	"$REG/sig/open" "$(policy_accept_anything)"
policy_write "$POL/scope-tag.json" "$(policy_reject)" "$REG/sig/unsigned:v0" "$(policy_accept_anything)"
policy_write "$POL/scope-transport.json" "$(policy_accept_anything)" "" "$(policy_reject)"
policy_write "$POL/sigstore.json" "$(policy_sigstore_signed "$SA/key.pub")"
policy_write "$POL/sigstore-keydata.json" "$(policy_sigstore_signed --key-data "$SA/key.pub")"
policy_write "$POL/both.json" "$(policy_signed_by "$GA"),$(policy_sigstore_signed "$SA/key.pub")"
printf '{"default":[{"type":"signedByEverybody"}]}\n' >"$POL/bad-type.json"
printf '{"default":[{"type":"signedBy","keyPath":"%s"}]}\n' "$GA" >"$POL/bad-nokeytype.json"
printf '{"default":[]}\n' >"$POL/bad-emptydefault.json"
printf '{"default":[{"type":"insecureAcceptAnything"}]\n' >"$POL/bad-json.json"

# images from disk follow the scopes of their own transports: oci and
# oci-archive by path (the layout or archive, then its parent directories),
# docker-archive by "" only; they carry no signatures
LOCAL=$TEST_TMPDIR/local
mkdir -p "$LOCAL/srv"
skopeo --insecure-policy copy -q "$(image_ref tiny v1)" "oci:$LOCAL/srv/layout:v1" &&
	skopeo --insecure-policy copy -q "$(image_ref tiny v1)" "oci:$LOCAL/other:v1" &&
	skopeo --insecure-policy copy -q "$(image_ref tiny v1)" "oci-archive:$LOCAL/srv/tiny.tar:v1" &&
	skopeo --insecure-policy copy -q "$(image_ref tiny v1)" "docker-archive:$LOCAL/srv/tiny-docker.tar" ||
	bail_out "making the local images"
local_policy() { # FILE DEFAULT-REQ TRANSPORT SCOPE REQ
	jq -n --argjson d "[$2]" --arg t "$3" --arg s "$4" --argjson r "[$5]" \
		'{default: $d, transports: {($t): {($s): $r}}}' >"$1"
}
local_policy "$POL/local-oci-reject.json" "$(policy_accept_anything)" oci "$LOCAL/srv/layout" "$(policy_reject)"
local_policy "$POL/local-oci-parent.json" "$(policy_reject)" oci "$LOCAL/srv" "$(policy_accept_anything)"
local_policy "$POL/local-archive-reject.json" "$(policy_accept_anything)" oci-archive "$LOCAL/srv/tiny.tar" \
	"$(policy_reject)"
local_policy "$POL/local-docker-archive.json" "$(policy_reject)" docker-archive "" "$(policy_accept_anything)"

# ----------------------------------------------------------------- cases ----
run_case "gpg: signed" accepted "$POL/gpg.json" "$REG/sig/gpg:v1"
run_case "gpg: unsigned" rejected "$POL/gpg.json" "$REG/sig/unsigned:v1"
run_case "gpg: signed by another key" rejected "$POL/gpg.json" "$REG/sig/gpg-otherkey:v1"
run_case "gpg: signature of another digest" rejected "$POL/gpg.json" "$REG/sig/gpg-otherdigest:v1"
run_case "gpg: identity REG/other:v1" rejected "$POL/gpg.json" "$REG/sig/gpg-identity:v1"
run_case "gpg: another tag, matchRepository" accepted "$POL/gpg-matchrepo.json" "$REG/sig/gpg-tag:v1"
run_case "gpg: another tag, default identity" rejected "$POL/gpg.json" "$REG/sig/gpg-tag:v1"
run_case "gpg: exactReference" accepted "$POL/gpg-exactref.json" "$REG/sig/gpg-exactref:v1"
run_case "gpg: exactReference, other tag" rejected "$POL/gpg-exactref.json" "$REG/sig/gpg-exactrepo:v1"
run_case "gpg: exactRepository" accepted "$POL/gpg-exactrepo.json" "$REG/sig/gpg-exactrepo:v1"
run_case "gpg: remapIdentity" accepted "$POL/gpg-remap.json" "$REG/mirror/app:v1"
run_case "gpg: remapped name, default identity" rejected "$POL/gpg.json" "$REG/mirror/app:v1"
run_case "gpg: tampered signature" rejected "$POL/gpg.json" "$REG/sig/gpg-tampered:v1"
run_case "gpg: bad signature-1, good signature-2" accepted "$POL/gpg.json" "$REG/sig/gpg-two:v1"
run_case "gpg: ed25519 key" accepted "$POL/gpg-ed25519.json" "$REG/sig/gpg-ed25519:v1"
run_case "gpg: armored keyPath" accepted "$POL/gpg-armored.json" "$REG/sig/gpg:v1"
run_case "gpg: keyData" accepted "$POL/gpg-keydata.json" "$REG/sig/gpg:v1"
run_case "gpg: keyPaths (other key, right key)" accepted "$POL/gpg-keypaths.json" "$REG/sig/gpg:v1"
run_case "gpg: keyPaths, signed by neither" rejected "$POL/gpg-keypaths.json" "$REG/sig/gpg-ed25519:v1"
run_case "gpg: only signature-2 (a gap)" rejected "$POL/gpg.json" "$REG/sig/gpg-gap:v1"
run_case "gpg: lookaside of a docker: namespace" accepted "$POL/gpg.json" "$REG/sig/ns/app:v1" --rd "$RD_NS"
run_case "gpg: ... not in default-docker's" rejected "$POL/gpg.json" "$REG/sig/ns/app:v1"
run_case "scope reject, default accepts" rejected "$POL/scope-reject.json" "$REG/sig/blocked:v1"
run_case "scope reject, another repo" accepted "$POL/scope-reject.json" "$REG/sig/unsigned:v1"
run_case "scope accept, default rejects" accepted "$POL/scope-accept.json" "$REG/sig/open:v1"
run_case "scope accept, another repo" rejected "$POL/scope-accept.json" "$REG/sig/unsigned:v1"
run_case "scope host rejects, repo accepts" accepted "$POL/scope-host.json" "$REG/sig/open:v1"
run_case "scope host rejects, another repo" rejected "$POL/scope-host.json" "$REG/sig/unsigned:v1"
run_case "scope of one tag accepts" accepted "$POL/scope-tag.json" "$REG/sig/unsigned:v0"
run_case "scope of one tag, another tag" rejected "$POL/scope-tag.json" "$REG/sig/unsigned:v1"
run_case "transport scope \"\" rejects" rejected "$POL/scope-transport.json" "$REG/sig/open:v1"
run_case "sigstore: signed" accepted "$POL/sigstore.json" "$REG/sig/cosign:v1"
run_case "sigstore: keyData" accepted "$POL/sigstore-keydata.json" "$REG/sig/cosign:v1"
run_case "sigstore: unsigned" rejected "$POL/sigstore.json" "$REG/sig/unsigned:v1"
run_case "sigstore: signed by another key" rejected "$POL/sigstore.json" "$REG/sig/cosign-otherkey:v1"
run_case "sigstore: tampered annotation" rejected "$POL/sigstore.json" "$REG/sig/cosign-tampered:v1"
run_case "sigstore: wrong layer media type" rejected "$POL/sigstore.json" "$REG/sig/cosign-mediatype:v1"
run_case "sigstore: signature of another digest" rejected "$POL/sigstore.json" "$REG/sig/cosign-otherdigest:v1"
run_case "sigstore: identity REG/other:v1" rejected "$POL/sigstore.json" "$REG/sig/cosign-identity:v1"
run_case "sigstore: bad first, good second" accepted "$POL/sigstore.json" "$REG/sig/cosign-two:v1"
run_case "sigstore: attachments off in registries.d" rejected "$POL/sigstore.json" "$REG/sig/cosign:v1" --rd "$RD_NOATT"
run_case "signedBy, only sigstore signatures" rejected "$POL/gpg.json" "$REG/sig/cosign:v1"
run_case "sigstoreSigned, only GPG signatures" rejected "$POL/sigstore.json" "$REG/sig/gpg:v1"
run_case "both required, both present" accepted "$POL/both.json" "$REG/sig/both:v1"
run_case "both required, GPG only" rejected "$POL/both.json" "$REG/sig/gpg:v1"
run_case "both required, sigstore only" rejected "$POL/both.json" "$REG/sig/cosign:v1"
run_case "oci: layout scope rejects" rejected "$POL/local-oci-reject.json" "oci:$LOCAL/srv/layout:v1"
run_case "oci: another layout, default accepts" accepted "$POL/local-oci-reject.json" "oci:$LOCAL/other:v1"
run_case "oci: parent directory scope accepts" accepted "$POL/local-oci-parent.json" "oci:$LOCAL/srv/layout:v1"
run_case "oci: outside it, default rejects" rejected "$POL/local-oci-parent.json" "oci:$LOCAL/other:v1"
run_case "oci: signedBy, no signatures on disk" rejected "$POL/gpg.json" "oci:$LOCAL/srv/layout:v1"
run_case "oci-archive: file scope rejects" rejected "$POL/local-archive-reject.json" "oci-archive:$LOCAL/srv/tiny.tar:v1"
run_case "docker-archive: transport scope accepts" accepted "$POL/local-docker-archive.json" \
	"docker-archive:$LOCAL/srv/tiny-docker.tar"
run_case "docker-archive: default signedBy" rejected "$POL/gpg.json" "docker-archive:$LOCAL/srv/tiny-docker.tar"
run_case "bad policy: unknown type" rejected "$POL/bad-type.json" "$REG/sig/gpg:v1" --bad-policy
run_case "bad policy: signedBy without keyType" rejected "$POL/bad-nokeytype.json" "$REG/sig/gpg:v1" --bad-policy
run_case "bad policy: empty default" rejected "$POL/bad-emptydefault.json" "$REG/sig/gpg:v1" --bad-policy
run_case "bad policy: not JSON" rejected "$POL/bad-json.json" "$REG/sig/gpg:v1" --bad-policy

# what verified each stored image, as images inspect shows it
insp() { "$SYSCTR" --root="$ROOT" images inspect "$1" | jq -r "$2"; }
assert_eq "$(insp "$REG/sig/both:v1" '[.verification.requirements[] | .type + " " + .key + " " + .identity] | join(", ")')" \
	"signedBy $KA $REG/sig/both:v1, sigstoreSigned $(insp "$REG/sig/both:v1" '.verification.requirements[1].key') $REG/sig/both:v1" \
	"inspect: both requirements, with the GPG fingerprint and the identity"
sig_key=$(openssl pkey -pubin -in "$SA/key.pub" -outform DER | sha256sum | cut -d' ' -f1)
assert_eq "$(insp "$REG/sig/both:v1" '.verification.requirements[1].key')" "SHA256:$sig_key" \
	"inspect: the sigstore key is named by the SHA-256 of its public key (as openssl computes it)"
assert_eq "$(insp "$REG/sig/both:v1" '.verification.manifest_digest')" "$(insp "$REG/sig/both:v1" .digest)" \
	"inspect: the signed digest is the image's"
assert_match "$(insp "$REG/sig/gpg:v1" '.verification.requirements[0].signature')" \
	"^file://$SIGNING_LOOKASIDE/sig/gpg@sha256=[0-9a-f]{64}/signature-1\$" "inspect: where the signature was read"
assert_match "$(insp "$REG/sig/gpg:v1" .signature)" "^signed by GPG key $KA as $REG/sig/gpg:v1, by (docker scope|the default scope of) " \
	"inspect: one line says it"
printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$POL/accept.json"
ok "pull the same image under an accept-anything policy" \
	"$SYSCTR" --root="$ROOT" pull -q --tls-verify=false --signature-policy="$POL/accept.json" "$REG/sig/gpg:v1"
assert_match "$(insp "$REG/sig/gpg:v1" .signature)" "^accepted unsigned \(insecureAcceptAnything\), by the default scope of $POL/accept.json" \
	"  ... the record says how it was accepted this time"
ok "pull with no policy file on the host" env SYSCTR_POLICY_PATH="$TEST_TMPDIR/no-such-policy.json" \
	"$SYSCTR" --root="$ROOT" pull -q --tls-verify=false "$REG/sig/unsigned:v0"
assert_match "$(insp "$REG/sig/unsigned:v0" .signature)" "^accepted without a policy" "  ... and says so"
ok_fails "a --signature-policy that does not exist refuses" \
	"$SYSCTR" --root="$ROOT" pull -q --tls-verify=false --signature-policy="$TEST_TMPDIR/no-such-policy.json" "$REG/sig/unsigned:v0"

ok "ostree fsck is clean after all the cases" ostree --repo="$REPO" fsck -q
left=$(find "$SYSCTR_TMP" -mindepth 1 -maxdepth 1 | head -n 5)
assert_eq "$left" "" "sysctr left nothing in its TMPDIR (throw-away GnuPG homes removed)"
[[ -z "$left" ]] || { echo "left in sysctr's TMPDIR:"; find "$SYSCTR_TMP" -mindepth 1 -ls | head -n 20; } >&2
sysctr_agents() { pgrep -f -- "gpg-agent --homedir $SYSCTR_TMP/"; }
if wait_until 10 eval '! sysctr_agents'; then
	pass "no gpg-agent of sysctr's throw-away GnuPG homes still runs"
else
	fail "no gpg-agent of sysctr's throw-away GnuPG homes still runs"
	for pid in $(sysctr_agents); do diag "$(tr '\0' ' ' <"/proc/$pid/cmdline")"; kill "$pid"; done
fi

w=4
for row in "${TABLE[@]}"; do c=${row%%|*}; (( ${#c} > w )) && w=${#c}; done
diag "$(printf '%-*s | %-8s | %-8s | %s' "$w" case expected skopeo sysctr)"
diag "$(printf '%*s-+-%s-+-%s-+-%s' "$w" '' -------- -------- -------- | tr ' ' -)"
for row in "${TABLE[@]}"; do
	IFS='|' read -r c e k y <<<"$row"
	diag "$(printf '%-*s | %-8s | %-8s | %s' "$w" "$c" "$e" "$k" "$y")"
done

done_testing
