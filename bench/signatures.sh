#!/bin/bash
# What checking signatures costs a pull (issue 16): an unchanged image
# (the timer's case: a ping, one manifest, then the policy) pulled again by
# sysctr under three policies, and the same images copied by skopeo under
# the same policies, side by side with farm-bench (A/B pairs, medians):
#   sysctr  signedBy (GPG, skopeo-signed)   vs  insecureAcceptAnything
#   sysctr  sigstoreSigned (ECDSA P-256)     vs  insecureAcceptAnything
#   skopeo  signedBy (GPG)                   vs  insecureAcceptAnything  (copy to a dir:, --remove-signatures)
#   sysctr  signedBy                         vs  skopeo signedBy
#   bash bench/signatures.sh [RUNS]   (root; uses the build in BENCH_BUILD, default /tmp/b)
set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$(cd "$BENCH_DIR/.." && pwd)
RUNS=${1:-20}
BUILD=${BENCH_BUILD:-/tmp/b}
SYSCTR=$BUILD/src/cli/sysctr
[[ -x $SYSCTR ]] || { echo "signatures.sh: no sysctr at $SYSCTR" >&2; exit 1; }
command -v farm-bench >/dev/null || { echo "signatures.sh: needs farm-bench" >&2; exit 1; }
export SYSCTR_SRCDIR=$SRCDIR
# shellcheck source=../tests/lib/libtest.sh
. "$SRCDIR/tests/lib/libtest.sh"
# shellcheck source=../tests/lib/registry.sh
. "$SRCDIR/tests/lib/registry.sh"
# shellcheck source=../tests/lib/images.sh
. "$SRCDIR/tests/lib/images.sh"
# shellcheck source=../tests/lib/signing.sh
. "$SRCDIR/tests/lib/signing.sh"
registry_start --id bench >/dev/null || { echo "signatures.sh: registry" >&2; exit 1; }
REG=$REGISTRY_ADDR
build_busybox_image box v1 >/dev/null 2>&1 || { echo "signatures.sh: image" >&2; exit 1; }
fpr=$(gpg_key_new bench) || exit 1
sk=$(sigstore_key_new benchsig) || exit 1
sign_push_gpg "$fpr" box:v1 "$REG/bench/gpg:v1" >/dev/null || exit 1
sign_push_sigstore "$sk" box:v1 "$REG/bench/cosign:v1" >/dev/null || exit 1
P=$TEST_TMPDIR/p
mkdir -p "$P"
policy_write "$P/accept.json" "$(policy_accept_anything)"
policy_write "$P/gpg.json" "$(policy_reject)" "$REG/bench/gpg" "$(policy_signed_by "$SIGNING_DIR/bench.gpg")"
policy_write "$P/sigstore.json" "$(policy_reject)" "$REG/bench/cosign" "$(policy_sigstore_signed "$sk/key.pub")"
ROOT=$TEST_TMPDIR/root
mkdir -p "$ROOT"
S=("$SYSCTR" --root="$ROOT" pull -q --tls-verify=false --registries.d="$SIGNING_REGISTRIES_D")
# the store holds both images: every timed pull is a warm one
"${S[@]}" --signature-policy="$P/gpg.json" "$REG/bench/gpg:v1" >/dev/null || exit 1
"${S[@]}" --signature-policy="$P/sigstore.json" "$REG/bench/cosign:v1" >/dev/null || exit 1
# skopeo's destination is overwritten in place by each copy (a 1 MiB image:
# no large deletion inside the timed window)
K="skopeo --registries.d $SIGNING_REGISTRIES_D"
KC="copy -q --remove-signatures --src-tls-verify=false docker://$REG/bench/gpg:v1 dir:$TEST_TMPDIR/skopeo-out"
# fb TITLE B-COMMAND-STRING A-COMMAND...
fb() {
	local title=$1 vs=$2
	shift 2
	echo "== $title"
	farm-bench -n "$RUNS" --warmup 2 --vs "$vs" -- "$@" 2>&1 | sed 's/^/  /'
}
fb "sysctr warm pull: signedBy (GPG) vs insecureAcceptAnything" \
	"${S[*]} --signature-policy=$P/accept.json $REG/bench/gpg:v1" \
	"${S[@]}" --signature-policy="$P/gpg.json" "$REG/bench/gpg:v1"
fb "sysctr warm pull: sigstoreSigned vs insecureAcceptAnything" \
	"${S[*]} --signature-policy=$P/accept.json $REG/bench/cosign:v1" \
	"${S[@]}" --signature-policy="$P/sigstore.json" "$REG/bench/cosign:v1"
# shellcheck disable=SC2086 # K and KC are word lists
fb "skopeo copy: signedBy (GPG) vs insecureAcceptAnything" "$K --policy $P/accept.json $KC" \
	$K --policy "$P/gpg.json" $KC
fb "signedBy: sysctr warm pull vs skopeo copy" "$K --policy $P/gpg.json $KC" \
	"${S[@]}" --signature-policy="$P/gpg.json" "$REG/bench/gpg:v1"
