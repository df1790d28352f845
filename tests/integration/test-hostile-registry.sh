#!/bin/bash
# shellcheck disable=SC2154 # FAKE_<id>_ADDR/_LOG are set by fake_registry_start --id
# test-hostile-registry.sh — `sysctr pull` against a registry that lies.
#
# tests/integration/fake-registry.py serves umoci-built layouts and picks its
# misbehaviour from the first path component (127.0.0.1:PORT/MODE/NAME:TAG).
# Each attack must end in exit 1 with one line on stderr naming what failed,
# the store unchanged (refs + fsck) and nothing written outside it:
# manifest/config/layer digest mismatches, an oversized manifest, an index
# that answers for its own entry, indexes nested 5 deep, Content-Length lies
# (short, long, over), a stalled body, a trickle and a silent server
# (SYSCTR_STALL_TIMEOUT), a layer declared 1 TiB, terminal escapes in
# server strings, token endpoints
# returning garbage / an empty / an injected token / a refusal, an HTTP 500
# with a hostile error body (sanitized, one line), unsupported media types,
# malformed JSON, TLS with a CA the client does not trust (and the same server
# trusted through SYSCTR_CERTS_D/HOST:PORT/ca.crt).  Redirects of blob
# requests to another host work but never carry the Authorization header.
set -u
. "$SYSCTR_SRCDIR/tests/lib/libtest.sh"
. "$SYSCTR_SRCDIR/tests/lib/registry.sh"
. "$SYSCTR_SRCDIR/tests/lib/images.sh"
require_root
require_cmd umoci jq ostree python3 openssl curl
. "$SYSCTR_SRCDIR/tests/integration/lib-pull.sh"

TLS=(--tls-verify=false)

# A two-layer image: a big random layer (so bodies can be cut or stalled
# mid-way) and a small one.
d=$TEST_TMPDIR/src; mkdir -p "$d/a/opt" "$d/b/etc"
head -c 400000 /dev/urandom >"$d/a/opt/blob"
printf 'hello\n' >"$d/b/etc/hello"
image_new small v1 && image_add_layer small v1 "$d/a" && image_add_layer small v1 "$d/b" &&
	image_config small v1 --config.entrypoint=/bin/sh && image_gc small || bail_out "building the image"
MDIGEST=$(jq -r '.manifests[0].digest' "$IMAGES_DIR/small/index.json")
CDIGEST=$(image_manifest small v1 | jq -r .config.digest)
# both layers are fetched at once and the fake registry misbehaves for each:
# whichever fails first is the one the error names
LDIGEST="($(image_manifest small v1 | jq -r '[.layers[].digest] | join("|")'))"

# the redirect target: another host (127.0.0.2), another port, no auth
fake_registry_start --id other --addr 127.0.0.2 --auth none || bail_out "cannot start the redirect target on 127.0.0.2"
# the registry: anonymous Bearer tokens, like Docker Hub
fake_registry_start --id main --auth bearer --redirect-base "http://$FAKE_other_ADDR" || bail_out "cannot start the fake registry"
F=$FAKE_main_ADDR

# -------------------------------------------------------------- digests ----
pull_fails "manifest by digest answered with other bytes" \
	"manifest manifest-digest/small:$MDIGEST: digest mismatch \(content hashes to sha256:" \
	"${TLS[@]}" "$F/manifest-digest/small@$MDIGEST"
pull_fails "config blob with wrong bytes" "config: blob $CDIGEST: digest mismatch" "${TLS[@]}" "$F/config-bytes/small:v1"
pull_fails "layer blob with wrong bytes" "blob $LDIGEST: digest mismatch" "${TLS[@]}" "$F/layer-bytes/small:v1"
pull_fails "manifest larger than 4 MiB" "manifest big-manifest/small:v1: the server sent more data than the size limit allows" \
	"${TLS[@]}" "$F/big-manifest/small:v1"
pull_fails "index answering for its own entry (self-reference)" "digest mismatch|points to itself" "${TLS[@]}" "$F/self-index/small:v1"
pull_fails "indexes nested 5 deep" "image indexes nest deeper than [0-9]+ levels" "${TLS[@]}" "$F/nested-5/small:v1"

# ------------------------------------------------------- Content-Length ---
pull_fails "Content-Length promises more than is sent (short body)" "blob $LDIGEST: .*(partial|got [0-9]+ bytes)" \
	"${TLS[@]}" "$F/cl-short/small:v1"
pull_fails "Content-Length shorter than the blob" "blob $LDIGEST: (got [0-9]+ bytes, the manifest says [0-9]+|digest mismatch)" \
	"${TLS[@]}" "$F/cl-long/small:v1"
pull_fails "more bytes than the manifest declared" "blob $LDIGEST: the server sent more data than the manifest declared" \
	"${TLS[@]}" "$F/cl-over/small:v1"

# ------------------------------------------------------------ slow-loris ---
t0=$(now_ms)
SYSCTR_STALL_TIMEOUT=2 pull_fails "stalled body (SYSCTR_STALL_TIMEOUT=2)" "blob sha256:[0-9a-f]{64}: transfer stalled: (no data|under 1 KiB/s) for 2 s" \
	"${TLS[@]}" "$F/stall/small:v1"
el=$(( $(now_ms) - t0 ))
if (( el < 5000 )); then pass "the stalled pull gave up after ${el} ms (< 5 s)"
else fail "the stalled pull gave up after ${el} ms (wanted < 5 s)"; fi
t0=$(now_ms)
SYSCTR_STALL_TIMEOUT=2 pull_fails "a server that never answers the manifest request" \
	"manifest silent/small:v1: transfer stalled: no data for 2 s" "${TLS[@]}" "$F/silent/small:v1"
el=$(( $(now_ms) - t0 ))
if (( el < 5000 )); then pass "the silent server was given up after ${el} ms (< 5 s)"
else fail "the silent server was given up after ${el} ms (wanted < 5 s)"; fi
t0=$(now_ms)
SYSCTR_STALL_TIMEOUT=2 pull_fails "trickling body, a byte every 0.3 s (SYSCTR_STALL_TIMEOUT=2)" \
	"blob sha256:[0-9a-f]{64}: transfer stalled: under 1 KiB/s for 2 s" "${TLS[@]}" "$F/drip/small:v1"
el=$(( $(now_ms) - t0 ))
if (( el < 8000 )); then pass "the trickling pull gave up after ${el} ms (< 8 s)"
else fail "the trickling pull gave up after ${el} ms (wanted < 8 s)"; fi

# one layer fails at once while another trickles: the pull stops at once
t0=$(now_ms)
pull_fails "one bad layer while another is still downloading" "blob sha256:[0-9a-f]{64}: digest mismatch" \
	"${TLS[@]}" "$F/bad-and-slow/small:v1"
el=$(( $(now_ms) - t0 ))
if (( el < 4000 )); then pass "the other download was cancelled (${el} ms)"
else fail "the other download was cancelled (${el} ms, wanted < 4 s)"; fi

# ------------------------------------------------------------- tokens ------
pull_fails "token endpoint returns garbage" "token server http://$F/token returned no usable token" "${TLS[@]}" "$F/token-garbage/small:v1"
pull_fails "token endpoint returns an empty token" "returned no usable token" "${TLS[@]}" "$F/token-empty/small:v1"
pull_fails "token with CR/LF (header injection)" "returned a token with invalid characters" "${TLS[@]}" "$F/token-badchars/small:v1"
pull_fails "token endpoint refuses" "token server refused anonymous access" "${TLS[@]}" "$F/token-refuse/small:v1"

# ------------------------------------------------------ error bodies -------
pull_fails "HTTP 500 with an error JSON body" "manifest http500/small:v1: HTTP 500: UNKNOWN: database on fire second line" \
	"${TLS[@]}" "$F/http500/small:v1"
line=$(cat "$TEST_TMPDIR/.err")
if [[ "$line" == *$'\e'* ]]; then fail "the server's message is sanitized (no escape characters)"
else pass "the server's message is sanitized (no escape characters)"; fi
if (( ${#line} < 400 )); then pass "the server's message is cut short (${#line} characters)"
else fail "the server's message is cut short (${#line} characters)"; fi

pull_fails "unsupported manifest media type" "unsupported media type application/vnd.evil.manifest.v9\+json" \
	"${TLS[@]}" "$F/bad-mediatype/small:v1"
pull_fails "unsupported layer media type" "layer sha256:[0-9a-f]{64}: unsupported media type application/vnd.evil.layer" \
	"${TLS[@]}" "$F/layer-mediatype/small:v1"
pull_fails "malformed JSON manifest" "manifest.*(JSON|json|parse|end of file|unexpected)" "${TLS[@]}" "$F/bad-json/small:v1"
pull_fails "unknown repository" "manifest ok/nothing:v1: not found \(NAME_UNKNOWN" "${TLS[@]}" "$F/ok/nothing:v1"

# server strings reach the terminal only as printable text
no_escapes() {
	local desc=$1 line
	line=$(cat "$TEST_TMPDIR/.err")
	if LC_ALL=C grep -q -P '[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xa8-\xae]' <<<"$line"; then
		fail "$desc: no control characters reach the terminal"; diag "$(printf '%q' "$line")"
	else pass "$desc: no control characters reach the terminal"; fi
}
pull_fails "media type with terminal escapes (JSON)" 'layer sha256:[0-9a-f]{64}: unsupported media type application/\\x1b\]0;pwned' \
	"${TLS[@]}" "$F/evil-mediatype/small:v1"
no_escapes "media type with terminal escapes (JSON)"
pull_fails "Content-Type header with terminal escapes" 'unsupported media type application/x\\x1b\[2J' "${TLS[@]}" "$F/evil-ctype/small:v1"
no_escapes "Content-Type header with terminal escapes"
pull_fails "malformed JSON with an escape character" "manifest.*invalid JSON" "${TLS[@]}" "$F/evil-json/small:v1"
no_escapes "malformed JSON with an escape character"

# a layer declared 1 TiB: refused before a byte is fetched, not streamed to disk
t0=$(now_ms)
SYSCTR_MAX_LAYER_BYTES=$((64 << 20)) pull_fails "layer declared larger than the layer limit" \
	"layer sha256:[0-9a-f]{64}: declared size 1099511627776 is over the limit \(67108864 bytes\)" "${TLS[@]}" "$F/endless/small:v1"
el=$(( $(now_ms) - t0 ))
if (( el < 3000 )); then pass "refused in ${el} ms"; else fail "refused in ${el} ms (wanted < 3 s)"; fi

# --------------------------------------------------------------- TLS -------
CA=$TEST_TMPDIR/ca; mkdir -p "$CA"
(
	cd "$CA" &&
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=sysctr test CA" -keyout ca.key -out ca.crt &&
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=other CA" -keyout other.key -out other.crt &&
	openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout srv.key -out srv.csr &&
	printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >ext &&
	openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out srv.crt
) >"$CA/log" 2>&1 || bail_out "openssl: $(tail -3 "$CA/log")"
fake_registry_start --id tls --auth none --tls-cert "$CA/srv.crt" --tls-key "$CA/srv.key" || bail_out "cannot start the TLS registry"
T=$FAKE_tls_ADDR
pull_fails "TLS: server certificate from an unknown CA (verification on)" \
	"registry $T unreachable: TLS certificate verification failed .*certs.d/$T/ca.crt" "$T/ok/small:v1"
mkdir -p "$SYSCTR_CERTS_D/$T" && cp "$CA/other.crt" "$SYSCTR_CERTS_D/$T/ca.crt"
pull_fails "TLS: certs.d holds a different CA" "TLS certificate verification failed" "$T/ok/small:v1"

# ---------------------------------------------- the ones that succeed ------
# (they store the layers, so they come after every blob attack)
cp "$CA/ca.crt" "$SYSCTR_CERTS_D/$T/ca.crt"
ok "TLS: the CA from SYSCTR_CERTS_D/HOST:PORT/ca.crt makes the pull work" sysctr pull "$T/ok/small:v1"
rm -rf "${SYSCTR_CERTS_D:?}/$T"
ok "remove what the TLS pull stored" bash -c "'$SYSCTR' --root='$ROOT' images rm '$T/ok/small:v1' && '$SYSCTR' --root='$ROOT' images prune" 

: >"$FAKE_other_LOG"
ok "blob requests redirected to another host: the pull works" sysctr pull "${TLS[@]}" "$F/redirect/small:v1"
n=$(grep -c '"/redirected/' "$FAKE_other_LOG")
if (( n >= 2 )); then pass "the blobs were fetched from 127.0.0.2 ($n requests)"
else fail "the blobs were fetched from 127.0.0.2 ($n requests)"; fi
if jq -e 'select(.headers | keys | map(ascii_downcase) | index("authorization"))' "$FAKE_other_LOG" >/dev/null; then
	fail "no Authorization header reached the other host"; diag "$(head -3 "$FAKE_other_LOG")"
else pass "no Authorization header reached the other host"; fi
if grep '"/v2/redirect/small/blobs/' "$FAKE_main_LOG" | jq -e 'select(.headers.Authorization == "Bearer fake-token-4242")' >/dev/null; then
	pass "the registry itself got the token"
else fail "the registry itself got the token"; fi
ok "fsck clean" ostree --repo="$REPO" fsck -q

ok "indexes nested 2 deep are followed" sysctr pull "${TLS[@]}" "$F/nested-2/small:v1"
ok "a same-origin relative redirect keeps working" sysctr pull "${TLS[@]}" "$F/redirect-same/small:v1"
ok "a well-behaved pull from the fake registry works" sysctr pull "${TLS[@]}" "$F/ok/small:v1"
ok "fsck clean at the end" ostree --repo="$REPO" fsck -q

done_testing
