# shellcheck shell=bash
# signing.sh — signed images for the containers-policy.json tests: throw-away
# GPG and sigstore keys, signed pushes into the loopback registry, policy
# writers, and helpers that tamper with signatures.
#
# Source it after libtest.sh and registry.sh (and images.sh for the image
# names): it uses TEST_TMPDIR, cleanup_push, reaper_add and REGISTRY_*.
#
# Where things are (all under SIGNING_DIR=$TEST_TMPDIR/signing):
#   SIGNING_GNUPGHOME     the GPG home of every key made here (no passphrase);
#                         skopeo signs from it, its gpg-agent is killed at exit
#   SIGNING_LOOKASIDE     the file:// lookaside GPG signatures are written to
#                         and read from ("simple signing", containers/image's
#                         layout: LOOKASIDE/REPO-PATH@sha256=HEX/signature-N,
#                         the repository path without the registry host, N
#                         from 1)
#   SIGNING_REGISTRIES_D  a registries.d with one file: default-docker
#                         lookaside (and lookaside-staging) SIGNING_LOOKASIDE,
#                         use-sigstore-attachments: true.  Give it to skopeo
#                         and sysctr (--registries.d) when verifying.
#   SIGNING_DIR/NAME.gpg  public key of gpg_key_new NAME (keyPath of signedBy)
#   SIGNING_DIR/NAME/     sigstore_key_new NAME: key.private, key.pub (keyPath
#                         of sigstoreSigned), passphrase
#
# Sigstore signatures live in the registry as an "attachment": an OCI image
# manifest tagged sha256-HEX.sig (HEX: the signed manifest's digest) in the
# same repository, whose layers are the signed payloads (media type
# application/vnd.dev.cosign.simplesigning.v1+json, the base64 signature in
# the layer annotation dev.cosignproject.cosign/signature) and whose config
# is an OCI config listing the layers as diff_ids.  Debian 12's skopeo 1.9.3
# is built with sigstore disabled (it refuses --sign-by-sigstore-private-key
# and rejects every sigstore signature it verifies, "Debian-local change:
# sigstore disabled"), so sign_push_sigstore makes the attachment itself
# (sigstore-key.py --sign, curl) unless skopeo can: sigstore_skopeo_can_sign.
#
# Functions (REF: a docker reference without transport, HOST:PORT/PATH:TAG;
# REPO: HOST:PORT/PATH; SRC: oci:DIR:TAG or an images.sh NAME:TAG):
#   gpg_key_new NAME [ALGO]          new GPG key (ALGO as gpg --quick-gen-key
#                                    takes it, default rsa2048); prints the
#                                    fingerprint; exports SIGNING_DIR/NAME.gpg
#   sigstore_key_new NAME [KIND]     new sigstore key (ec-p256, ed25519, rsa);
#                                    prints the directory
#   push_unsigned SRC REF            push; prints the manifest digest
#   sign_push_gpg [--identity ID] [--registries-d DIR] FPR SRC REF
#                                    push and sign (skopeo --sign-by) into the
#                                    lookaside; prints the manifest digest
#   sign_push_sigstore [--identity ID] KEYDIR SRC REF
#                                    push and add a sigstore signature to the
#                                    attachment; prints the manifest digest
#   sigstore_attach [--identity ID] KEYDIR REF DIGEST
#                                    sign DIGEST (identity ID, default REF) and
#                                    append the layer to its attachment
#   registries_d_write DIR LOOKASIDE [true|false]
#                                    a registries.d with default-docker only
#   registries_d_add_namespace DIR NAMESPACE LOOKASIDE [true|false]
#                                    a docker: NAMESPACE entry, in its own file
#   lookaside_dir [--lookaside DIR] REF DIGEST
#                                    print the signature directory
#   gpg_sig_copy [--lookaside DIR] SRC-REF SRC-DIGEST DST-REF DST-DIGEST [N]
#                                    copy signature-1 of SRC to DST's signature-N
#   gpg_sig_tamper FILE [OFFSET]     flip the bits of one byte (default: middle)
#   attachment_tag DIGEST            print sha256-HEX.sig
#   attachment_get REPO DIGEST       print the attachment manifest of DIGEST
#   attachment_put REPO TAG          PUT the manifest read on stdin under TAG
#   attachment_copy SRC-REPO SRC-DIGEST DST-REPO DST-DIGEST
#                                    SRC's attachment becomes DST's (blobs
#                                    mounted across repositories)
#   attachment_edit REPO DIGEST JQ-FILTER
#                                    rewrite the attachment manifest with jq
#   sigstore_tamper_annotation REPO DIGEST [LAYER]
#                                    change one base64 character of the
#                                    signature annotation
#   sigstore_set_media_type REPO DIGEST TYPE [LAYER]
#   sigstore_verify_openssl PUBKEY REPO DIGEST
#                                    0 if one attachment layer's signature
#                                    verifies with openssl (fixture sanity)
#   policy_reject / policy_accept_anything
#   policy_signed_by [--identity JSON] [--key-data] KEYFILE...
#                                    signedBy, keyType GPGKeys; keyPath, or
#                                    keyPaths for several files, or keyData
#   policy_sigstore_signed [--identity JSON] [--key-data] KEYFILE
#   identity_match_exact / identity_match_repo_digest_or_exact /
#   identity_match_repository / identity_exact_reference REF /
#   identity_exact_repository REPO / identity_remap_identity PREFIX SIGNED
#                                    print one JSON object each
#   policy_write FILE DEFAULT [SCOPE REQS]...
#                                    DEFAULT and each REQS: requirement
#                                    objects, comma-separated, or a JSON
#                                    array; SCOPEs go under transports.docker

[[ -n "${_SIGNING_SH:-}" ]] && return 0
_SIGNING_SH=1

SIGNING_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${SIGNING_PYTHON:=/usr/bin/python3}"   # Debian's, with python3-nacl
SIGNING_DIR=$TEST_TMPDIR/signing
SIGNING_GNUPGHOME=$SIGNING_DIR/gnupg
SIGNING_LOOKASIDE=$SIGNING_DIR/lookaside
SIGNING_REGISTRIES_D=$SIGNING_DIR/registries.d
SIGSTORE_MEDIA_TYPE=application/vnd.dev.cosign.simplesigning.v1+json
SIGSTORE_SIG_ANNOTATION=dev.cosignproject.cosign/signature
OCI_MANIFEST_TYPE=application/vnd.oci.image.manifest.v1+json
OCI_CONFIG_TYPE=application/vnd.oci.image.config.v1+json

mkdir -p "$SIGNING_DIR" "$SIGNING_LOOKASIDE" && install -d -m 0700 "$SIGNING_GNUPGHOME" ||
	echo "signing.sh: cannot create $SIGNING_DIR" >&2

# signing_cleanup       stop the gpg-agent (and keyboxd, dirmngr) of SIGNING_GNUPGHOME
signing_cleanup() {
	[[ -d "$SIGNING_GNUPGHOME" ]] || return 0
	gpgconf --homedir "$SIGNING_GNUPGHOME" --kill all >/dev/null 2>&1
	return 0
}
cleanup_push signing_cleanup
reaper_add "[ -d '$SIGNING_GNUPGHOME' ] && gpgconf --homedir '$SIGNING_GNUPGHOME' --kill all"

# ------------------------------------------------------------ registries.d --
# registries_d_write DIR LOOKASIDE [ATTACHMENTS=true]
registries_d_write() {
	local dir=$1 la=$2 att=${3:-true}
	mkdir -p "$dir" "$la" || return 1
	cat >"$dir/default.yaml" <<EOF
# written by tests/lib/signing.sh: default-docker lookaside for GPG
# signatures, sigstore signatures as registry attachments
default-docker:
  lookaside: file://$la
  lookaside-staging: file://$la
  use-sigstore-attachments: $att
EOF
}

# registries_d_add_namespace DIR NAMESPACE LOOKASIDE [ATTACHMENTS=true]
#   (containers/image merges the docker: maps of all the files of a
#   registries.d; one namespace may appear in one file only)
registries_d_add_namespace() {
	local dir=$1 ns=$2 la=$3 att=${4:-true} f
	mkdir -p "$dir" "$la" || return 1
	f=$dir/ns-$(printf '%s' "$ns" | tr -c 'a-zA-Z0-9.-' '_').yaml
	cat >"$f" <<EOF
# written by tests/lib/signing.sh: a per-namespace entry
docker:
  $ns:
    lookaside: file://$la
    lookaside-staging: file://$la
    use-sigstore-attachments: $att
EOF
}

registries_d_write "$SIGNING_REGISTRIES_D" "$SIGNING_LOOKASIDE" ||
	echo "signing.sh: cannot write $SIGNING_REGISTRIES_D" >&2

# ------------------------------------------------------------------ keys ----
# gpg_key_new NAME [ALGO]   prints the fingerprint; public key to SIGNING_DIR/NAME.gpg
#   (binary) and NAME.asc (armored)
gpg_key_new() {
	local name=$1 algo=${2:-rsa2048} uid fpr
	uid="sysctr test $name <$name@sysctr.test>"
	GNUPGHOME=$SIGNING_GNUPGHOME gpg --batch --quiet --pinentry-mode loopback --passphrase '' \
		--quick-gen-key "$uid" "$algo" sign never >/dev/null 2>"$SIGNING_DIR/gpg-$name.err" || {
		cat "$SIGNING_DIR/gpg-$name.err" >&2; return 1; }
	fpr=$(GNUPGHOME=$SIGNING_GNUPGHOME gpg --batch --with-colons --list-keys "=$uid" 2>/dev/null |
		awk -F: '$1 == "fpr" { print $10; exit }')
	[[ -n "$fpr" ]] || { echo "gpg_key_new: no fingerprint for $uid" >&2; return 1; }
	GNUPGHOME=$SIGNING_GNUPGHOME gpg --batch --export "$fpr" >"$SIGNING_DIR/$name.gpg" 2>/dev/null
	GNUPGHOME=$SIGNING_GNUPGHOME gpg --batch --armor --export "$fpr" >"$SIGNING_DIR/$name.asc" 2>/dev/null
	if [[ ! -s "$SIGNING_DIR/$name.gpg" || ! -s "$SIGNING_DIR/$name.asc" ]]; then
		echo "gpg_key_new: export of $fpr failed" >&2; return 1
	fi
	echo "$fpr"
}

# sigstore_key_new NAME [KIND]   prints SIGNING_DIR/NAME (key.private, key.pub, passphrase)
#   The PEM type of key.private is the one the local skopeo reads:
#   containers/image before v5.25 (skopeo < 1.12) knows only "ENCRYPTED
#   COSIGN PRIVATE KEY".
sigstore_key_new() {
	local name=$1 kind=${2:-ec-p256} dir=$SIGNING_DIR/$1 v pemtype="ENCRYPTED SIGSTORE PRIVATE KEY"
	mkdir -p "$dir" || return 1
	printf 'pass-%s-%s\n' "$name" "$RANDOM$RANDOM" >"$dir/passphrase"
	v=$(skopeo --version 2>/dev/null | awk '{print $3}')
	if [[ "$v" =~ ^1\.([0-9]+)\. ]] && (( BASH_REMATCH[1] < 12 )); then
		pemtype="ENCRYPTED COSIGN PRIVATE KEY"
	fi
	SIGSTORE_KEY_PEM_TYPE=$pemtype "$SIGNING_PYTHON" "$SIGNING_LIB_DIR/sigstore-key.py" \
		"$dir" "$dir/passphrase" "$kind" || return 1
	echo "$dir"
}

# ------------------------------------------------------------- references --
# _ref_host REF / _ref_path REF / _ref_repo REF   (no digest references here)
_ref_host() { echo "${1%%/*}"; }
_ref_repo() {
	local r=${1%@*} last
	last=${r##*/}
	[[ "$last" == *:* ]] && r=${r%:*}
	echo "$r"
}
_ref_path() { local r; r=$(_ref_repo "$1"); echo "${r#*/}"; }

# _src_ref SRC   oci:... stays; NAME:TAG becomes images.sh's oci: reference
_src_ref() {
	case $1 in
	*:*/*|oci:*|oci-archive:*|docker-archive:*|dir:*) echo "$1" ;;
	*) image_ref "${1%%:*}" "${1#*:}" ;;
	esac
}

_skopeo_push() {   # _skopeo_push SRC REF [skopeo copy args...]; prints the digest
	local src=$1 ref=$2 df creds=()
	shift 2
	df=$(mktemp "$SIGNING_DIR/digest.XXXXXX") || return 1
	[[ -n "${REGISTRY_USER:-}" && "$(_ref_host "$ref")" == "${REGISTRY_ADDR:-}" ]] &&
		creds=(--dest-creds="$REGISTRY_USER:$REGISTRY_PASSWORD")
	GNUPGHOME=$SIGNING_GNUPGHOME skopeo --insecure-policy --registries.d "${_SIGN_RD:-$SIGNING_REGISTRIES_D}" \
		copy -q --dest-tls-verify=false "${creds[@]}" --digestfile "$df" "$@" \
		"$(_src_ref "$src")" "docker://$ref" >&2 || { rm -f "$df"; return 1; }
	cat "$df"; echo
	rm -f "$df"
}

# push_unsigned SRC REF
push_unsigned() { _skopeo_push "$1" "$2"; }

# sign_push_gpg [--identity ID] [--registries-d DIR] FPR SRC REF
sign_push_gpg() {
	local id=() rd=$SIGNING_REGISTRIES_D
	while (( $# )); do
		case $1 in
		--identity) id=(--sign-identity "$2"); shift 2 ;;
		--registries-d) rd=$2; shift 2 ;;
		*) break ;;
		esac
	done
	_SIGN_RD=$rd _skopeo_push "$2" "$3" --sign-by "$1" "${id[@]}"
}

# sigstore_skopeo_can_sign   0 if this skopeo signs with sigstore keys
#   (probed once, by signing into a dir: copy of a scratch image)
sigstore_skopeo_can_sign() {
	local f=$SIGNING_DIR/.skopeo-sigstore
	if [[ ! -f "$f" ]]; then
		local k d
		k=$(sigstore_key_new .probe-key) || return 1
		d=$SIGNING_DIR/.probe
		mkdir -p "$d/src" && printf 'probe\n' >"$d/src/probe"
		if IMAGES_DIR=$d image_new probe v1 >/dev/null 2>&1 &&
			IMAGES_DIR=$d image_add_layer probe v1 "$d/src" >/dev/null 2>&1 &&
			skopeo --insecure-policy copy -q --sign-by-sigstore-private-key "$k/key.private" \
				--sign-passphrase-file "$k/passphrase" --sign-identity localhost/sysctr-probe:v1 \
				"oci:$d/probe:v1" "dir:$d/out" >/dev/null 2>"$d/err"; then
			echo yes >"$f"
		else
			echo "no: $(tail -n1 "$d/err")" >"$f"
		fi
	fi
	[[ "$(cat "$f")" == yes ]]
}

# sign_push_sigstore [--identity ID] KEYDIR SRC REF
#   With skopeo when it can sign (SIGNING_HAND_SIGSTORE=1: never), else a
#   plain push and sigstore_attach.  The attachment is written through the
#   registry's HTTP API at REF's host (credentials: REGISTRY_USER).
sign_push_sigstore() {
	local id=()
	[[ "${1:-}" == --identity ]] && { id=(--identity "$2"); shift 2; }
	local keydir=$1 src=$2 ref=$3 dg
	if [[ -z "${SIGNING_HAND_SIGSTORE:-}" ]] && sigstore_skopeo_can_sign; then
		local sid=()
		(( ${#id[@]} )) && sid=(--sign-identity "${id[1]}")
		_skopeo_push "$src" "$ref" --sign-by-sigstore-private-key "$keydir/key.private" \
			--sign-passphrase-file "$keydir/passphrase" "${sid[@]}"
		return
	fi
	dg=$(push_unsigned "$src" "$ref") || return 1
	sigstore_attach "${id[@]}" "$keydir" "$ref" "$dg" || return 1
	echo "$dg"
}

# ------------------------------------------------------ registry HTTP API --
_sig_url() { echo "http://$(_ref_host "$1")/v2/$(_ref_path "$1")"; }
_sig_curl() {
	local cred=()
	[[ -n "${REGISTRY_USER:-}" ]] && cred=(-u "$REGISTRY_USER:$REGISTRY_PASSWORD")
	curl -fsS --max-time 10 "${cred[@]}" "$@"
}

# _blob_put REPO FILE MEDIATYPE   upload a blob (POST + PUT); prints its OCI descriptor
_blob_put() {
	local repo=$1 file=$2 mt=$3 hex size loc
	hex=$(sha256sum "$file" | cut -d' ' -f1) size=$(stat -c %s "$file")
	loc=$(_sig_curl -X POST -D - -o /dev/null "$(_sig_url "$repo")/blobs/uploads/" |
		tr -d '\r' | awk -F': ' 'tolower($1) == "location" { print $2 }') || return 1
	[[ -n "$loc" ]] || { echo "_blob_put: no upload location" >&2; return 1; }
	[[ "$loc" == /* ]] && loc="http://$(_ref_host "$repo")$loc"
	if [[ "$loc" == *\?* ]]; then loc+="&"; else loc+="?"; fi
	_sig_curl -X PUT -o /dev/null -H 'Content-Type: application/octet-stream' \
		--data-binary "@$file" "${loc}digest=sha256:$hex" || return 1
	jq -cn --arg mt "$mt" --arg d "sha256:$hex" --argjson s "$size" '{mediaType: $mt, digest: $d, size: $s}'
}

# _blob_mount DST-REPO SRC-REPO DIGEST   make a blob of SRC-REPO available in DST-REPO
_blob_mount() {
	local code
	code=$(_sig_curl -X POST -o /dev/null -w '%{http_code}' \
		"$(_sig_url "$1")/blobs/uploads/?mount=$3&from=$(_ref_path "$2")") || return 1
	[[ "$code" == 201 ]] || { echo "_blob_mount: $3 from $2 into $1: HTTP $code" >&2; return 1; }
}

# attachment_tag DIGEST
attachment_tag() { echo "${1/:/-}.sig"; }

# attachment_get REPO DIGEST   (fails when there is none)
attachment_get() {
	_sig_curl -H "Accept: $OCI_MANIFEST_TYPE" "$(_sig_url "$1")/manifests/$(attachment_tag "$2")"
}

# attachment_put REPO TAG   manifest on stdin (sent as it is, byte for byte)
attachment_put() {
	_sig_curl -X PUT -o /dev/null -H "Content-Type: $OCI_MANIFEST_TYPE" --data-binary @- \
		"$(_sig_url "$1")/manifests/$2"
}

# attachment_copy SRC-REPO SRC-DIGEST DST-REPO DST-DIGEST
attachment_copy() {
	local m d
	m=$(attachment_get "$1" "$2") || return 1
	if [[ "$(_ref_repo "$1")" != "$(_ref_repo "$3")" ]]; then
		for d in $(jq -r '.config.digest, .layers[].digest' <<<"$m"); do
			_blob_mount "$3" "$1" "$d" || return 1
		done
	fi
	printf '%s' "$m" | attachment_put "$3" "$(attachment_tag "$4")"
}

# attachment_edit REPO DIGEST JQ-FILTER
attachment_edit() {
	local m
	m=$(attachment_get "$1" "$2") || return 1
	jq -c "$3" <<<"$m" | tr -d '\n' | attachment_put "$1" "$(attachment_tag "$2")"
}

# sigstore_tamper_annotation REPO DIGEST [LAYER=0]
#   one base64 character of the signature, well before the end (the last
#   characters may only carry padding bits), replaced by another
sigstore_tamper_annotation() {
	local layer=${3:-0}
	attachment_edit "$1" "$2" ".layers[$layer].annotations[\"$SIGSTORE_SIG_ANNOTATION\"] |=
		(.[0:10] + (if .[10:11] == \"A\" then \"B\" else \"A\" end) + .[11:])"
}

# sigstore_set_media_type REPO DIGEST TYPE [LAYER=0]
sigstore_set_media_type() {
	attachment_edit "$1" "$2" ".layers[${4:-0}].mediaType = \"$3\""
}

# sigstore_payload REF DIGEST   print the payload a sigstore signer makes
#   (compact JSON, keys sorted as Go's encoding/json sorts map keys)
sigstore_payload() {
	jq -cnS --arg ref "$1" --arg d "$2" --argjson ts "$(date +%s)" '{
		critical: {identity: {"docker-reference": $ref}, image: {"docker-manifest-digest": $d},
		           type: "cosign container image signature"},
		optional: {creator: "sysctr tests (tests/lib/signing.sh)", timestamp: $ts}}' | tr -d '\n'
}

# sigstore_attach [--identity ID] KEYDIR REF DIGEST
sigstore_attach() {
	local ident=""
	[[ "${1:-}" == --identity ]] && { ident=$2; shift 2; }
	local keydir=$1 ref=$2 dg=$3 repo tmp sig m cfg ldesc cdesc
	repo=$(_ref_repo "$ref")
	[[ -n "$ident" ]] || ident=$ref
	tmp=$(mktemp -d "$SIGNING_DIR/attach.XXXXXX") || return 1
	sigstore_payload "$ident" "$dg" >"$tmp/payload"
	sig=$("$SIGNING_PYTHON" "$SIGNING_LIB_DIR/sigstore-key.py" --sign "$keydir/key.private" \
		"$keydir/passphrase" "$tmp/payload") || { rm -rf "$tmp"; return 1; }
	ldesc=$(_blob_put "$repo" "$tmp/payload" "$SIGSTORE_MEDIA_TYPE") || { rm -rf "$tmp"; return 1; }
	ldesc=$(jq -c --arg k "$SIGSTORE_SIG_ANNOTATION" --arg s "$sig" '. + {annotations: {($k): $s}}' <<<"$ldesc")
	# append to an existing attachment (as containers/image does), or start one
	if m=$(attachment_get "$repo" "$dg" 2>/dev/null); then
		cfg=$(_sig_curl "$(_sig_url "$repo")/blobs/$(jq -r .config.digest <<<"$m")") || { rm -rf "$tmp"; return 1; }
	else
		m=$(jq -cn --arg mt "$OCI_MANIFEST_TYPE" '{schemaVersion: 2, mediaType: $mt, config: {}, layers: []}')
		cfg='{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}'
	fi
	jq -c --arg d "$(jq -r .digest <<<"$ldesc")" '.rootfs.diff_ids += [$d]' <<<"$cfg" | tr -d '\n' >"$tmp/config"
	cdesc=$(_blob_put "$repo" "$tmp/config" "$OCI_CONFIG_TYPE") || { rm -rf "$tmp"; return 1; }
	jq -c --argjson c "$cdesc" --argjson l "$ldesc" '.config = $c | .layers += [$l]' <<<"$m" | tr -d '\n' |
		attachment_put "$repo" "$(attachment_tag "$dg")"
	local rc=$?
	rm -rf "$tmp"
	return $rc
}

# sigstore_verify_openssl PUBKEY REPO DIGEST
sigstore_verify_openssl() {
	local pub=$1 repo=$2 dg=$3 m n i tmp ok=1
	m=$(attachment_get "$repo" "$dg") || return 1
	tmp=$(mktemp -d "$SIGNING_DIR/verify.XXXXXX") || return 1
	n=$(jq '.layers | length' <<<"$m")
	for (( i = 0; i < n; i++ )); do
		[[ "$(jq -r ".layers[$i].mediaType" <<<"$m")" == "$SIGSTORE_MEDIA_TYPE" ]] || continue
		_sig_curl -o "$tmp/payload" "$(_sig_url "$repo")/blobs/$(jq -r ".layers[$i].digest" <<<"$m")" || continue
		jq -r --arg k "$SIGSTORE_SIG_ANNOTATION" ".layers[$i].annotations[\$k] // \"\"" <<<"$m" |
			base64 -d >"$tmp/sig" 2>/dev/null || continue
		if openssl pkey -pubin -in "$pub" -noout -text 2>/dev/null | grep -q '^ED25519'; then
			openssl pkeyutl -verify -pubin -inkey "$pub" -rawin -in "$tmp/payload" -sigfile "$tmp/sig" >/dev/null 2>&1 && ok=0
		else
			openssl dgst -sha256 -verify "$pub" -signature "$tmp/sig" "$tmp/payload" >/dev/null 2>&1 && ok=0
		fi
		(( ok == 0 )) && break
	done
	rm -rf "$tmp"
	return $ok
}

# ------------------------------------------------------------- lookaside ----
# lookaside_dir [--lookaside DIR] REF DIGEST
lookaside_dir() {
	local la=$SIGNING_LOOKASIDE
	[[ "${1:-}" == --lookaside ]] && { la=$2; shift 2; }
	echo "$la/$(_ref_path "$1")@${2/:/=}"
}

# gpg_sig_copy [--lookaside DIR] SRC-REF SRC-DIGEST DST-REF DST-DIGEST [N=1]
gpg_sig_copy() {
	local la=()
	[[ "${1:-}" == --lookaside ]] && { la=(--lookaside "$2"); shift 2; }
	local from to
	from=$(lookaside_dir "${la[@]}" "$1" "$2")/signature-1
	to=$(lookaside_dir "${la[@]}" "$3" "$4")
	[[ -f "$from" ]] || { echo "gpg_sig_copy: no $from" >&2; return 1; }
	mkdir -p "$to" && cp "$from" "$to/signature-${5:-1}"
}

# gpg_sig_tamper FILE [OFFSET]   xor one byte with 0x01
gpg_sig_tamper() {
	local f=$1 size off byte
	size=$(stat -c %s "$f") || return 1
	off=${2:-$(( size / 2 ))}
	byte=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
	printf '%b' "\\x$(printf '%02x' $(( byte ^ 1 )))" |
		dd of="$f" bs=1 seek="$off" count=1 conv=notrunc status=none
}

# ---------------------------------------------------------------- policies --
policy_reject() { echo '{"type":"reject"}'; }
policy_accept_anything() { echo '{"type":"insecureAcceptAnything"}'; }

# _policy_keys [--identity JSON] [--key-data] KEYFILE...   (internal) the key
#   and identity members of a requirement: keyPath (one file), keyPaths
#   (several) or keyData (base64 of the file), and signedIdentity if given
_policy_keys() {
	local ident=null data="" k=()
	while (( $# )); do
		case $1 in
		--identity) ident=$2; shift 2 ;;
		--key-data) data=1; shift ;;
		*) k+=("$1"); shift ;;
		esac
	done
	local keys
	if [[ -n "$data" ]]; then
		keys=$(jq -cn --arg d "$(base64 -w0 "${k[0]}")" '{keyData: $d}')
	elif (( ${#k[@]} == 1 )); then
		keys=$(jq -cn --arg p "${k[0]}" '{keyPath: $p}')
	else
		keys=$(printf '%s\n' "${k[@]}" | jq -cR . | jq -cs '{keyPaths: .}')
	fi
	jq -cn --argjson k "$keys" --argjson id "$ident" '$k + (if $id then {signedIdentity: $id} else {} end)'
}

# policy_signed_by [--identity JSON] [--key-data] KEYFILE...   signedBy, keyType GPGKeys
policy_signed_by() {
	local m
	m=$(_policy_keys "$@") || return 1
	jq -cn --argjson m "$m" '{type: "signedBy", keyType: "GPGKeys"} + $m'
}
# policy_sigstore_signed [--identity JSON] [--key-data] KEYFILE   sigstoreSigned
policy_sigstore_signed() {
	local m
	m=$(_policy_keys "$@") || return 1
	jq -cn --argjson m "$m" '{type: "sigstoreSigned"} + $m'
}

identity_match_exact() { echo '{"type":"matchExact"}'; }
identity_match_repo_digest_or_exact() { echo '{"type":"matchRepoDigestOrExact"}'; }
identity_match_repository() { echo '{"type":"matchRepository"}'; }
identity_exact_reference() { jq -cn --arg r "$1" '{type: "exactReference", dockerReference: $r}'; }
identity_exact_repository() { jq -cn --arg r "$1" '{type: "exactRepository", dockerRepository: $r}'; }
identity_remap_identity() { jq -cn --arg p "$1" --arg s "$2" '{type: "remapIdentity", prefix: $p, signedPrefix: $s}'; }

_reqs() { if [[ "$1" == \[* ]]; then echo "$1"; else echo "[$1]"; fi; }

# policy_write FILE DEFAULT [SCOPE REQS]...
policy_write() {
	local file=$1 def scopes='{}'
	def=$(_reqs "$2")
	shift 2
	while (( $# >= 2 )); do
		scopes=$(jq -c --arg s "$1" --argjson r "$(_reqs "$2")" '. + {($s): $r}' <<<"$scopes") || return 1
		shift 2
	done
	jq -n --argjson d "$def" --argjson s "$scopes" \
		'{default: $d} + (if $s == {} then {} else {transports: {docker: $s}} end)' >"$file"
}
