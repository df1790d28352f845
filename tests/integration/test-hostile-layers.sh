#!/bin/bash
# test-hostile-layers.sh — images whose layers attack the importer and the
# deployment.  Layers are crafted with Python's tarfile (mkimage.py), served
# by fake-registry.py and pulled with `sysctr pull`; some are installed with
# `sysctr --root install --system`.
#
# Policy checked here (DESIGN.md "Safety rules"):
#   refused with one line, store unchanged: ".." anywhere in a name or a
#     hardlink target, a file under a symlink of the same layer, hardlinks to
#     anything but an earlier regular file of the same layer ("/etc/shadow"),
#     whiteouts naming no file (".wh.." or ".wh."), names and symlink targets
#     that are not UTF-8, truncated tars and gzip streams, layers over
#     SYSCTR_MAX_LAYER_BYTES (gzip bomb) or SYSCTR_MAX_LAYER_ENTRIES;
#   neutralised: absolute names are taken relative to the layer root; device
#     nodes and fifos are dropped with one warning; a symlinked directory of
#     a lower layer is replaced by a real directory at deploy time, so
#     nothing is written through it;
#   kept: setuid/setgid bits (as in the image: the payloads need them; the
#     store and deployments are under ROOT/var/lib/sysctr, mode 0700, out of
#     host users' reach), file names with newlines, 100k tiny files;
#   zstd:chunked: the table of contents must be where the manifest's
#     annotations say, with their checksum, and every file of the tar must be
#     its entry (type, mode, owner, link target, content digest) and every
#     file it lists in the tar, whether or not the diff_id matches; a tar
#     that is not the diff_id's (podman 4 rewrites it) is taken, with one
#     warning, only on that check; plain zstd has only the diff_id.
set -u
. "$SYSCTR_SRCDIR/tests/lib/libtest.sh"
. "$SYSCTR_SRCDIR/tests/lib/registry.sh"
. "$SYSCTR_SRCDIR/tests/lib/images.sh"
require_root
require_cmd jq ostree python3 curl zstd
. "$SYSCTR_SRCDIR/tests/integration/lib-pull.sh"
PULL_AIMS_OUTSIDE=1 # the crafted names and links point at $OUTSIDE
export SYSCTR_TEMPLATES_DIR=$SYSCTR_SRCDIR/templates
TLS=(--tls-verify=false)
mkdir -p "$IMAGES_DIR"

# ----------------------------------------------------- craft the images ----
# One OCI layout per case under IMAGES_DIR, tag v1.
t0=$(now_ms)
VICTIM=$TEST_TMPDIR/victim; mkdir -p "$VICTIM"; echo keep >"$VICTIM/keep"
python3 - "$INTEG_DIR" "$IMAGES_DIR" "$OUTSIDE" "$TEST_TMPDIR/tars" "$VICTIM" <<'EOF' || bail_out "crafting the layers"
import gzip, io, os, sys, tarfile
sys.path.insert(0, sys.argv[1])
import importlib.util
spec = importlib.util.spec_from_file_location("mkimage", os.path.join(sys.argv[1], "mkimage.py"))
mk = importlib.util.module_from_spec(spec); spec.loader.exec_module(mk)
images, outside, tars, victim = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
os.makedirs(tars, exist_ok=True)
up = "../" * 20

def image(name, *layers, bad_diff_ids=False):
    paths = []
    for i, layer in enumerate(layers):
        if isinstance(layer, bytes):  # raw (already gzipped) bytes
            p = os.path.join(tars, "%s-%d.gz" % (name, i))
            open(p, "wb").write(layer)
        else:
            p = os.path.join(tars, "%s-%d.tar" % (name, i))
            mk.make_tar(p, layer)
        paths.append(p)
    sys.stdout = io.StringIO()
    mk.make_image(os.path.join(images, name), "v1", paths, bad_diff_ids=bad_diff_ids)
    sys.stdout = sys.__stdout__

F = lambda n, d="x\n", **k: dict(name=n, type="file", data=d, **k)
D = lambda n, **k: dict(name=n, type="dir", **k)
L = lambda n, t: dict(name=n, type="symlink", linkname=t)
H = lambda n, t: dict(name=n, type="hardlink", linkname=t)

image("dotdot", [D("etc"), F(up + outside.lstrip("/") + "/dotdot")])
image("dotdot-mid", [D("etc"), F("etc/../../" + "x")])
image("absolute", [F("/etc/abs-file", "abs\n"), F(outside + "/abs")])
image("link-file", [L("etc", outside), F("etc/passwd", "root::0:0::/:/bin/sh\n")])
image("link-file-rel", [D("a"), L("a/up", up.rstrip("/") + outside), F("a/up/x")])
image("link-dir-file", [L("etc", outside), D("etc/sub"), F("etc/sub/f")])
image("cross-link", [L("etc", outside), L("lib", up.rstrip("/") + outside), F("bin/sh", "#!/bin/false\n")],
      [F("etc/passwd", "root::0:0::/:/bin/sh\n"), F("lib/libc.so", "evil\n")])
image("wh-through-link", [L("vic", victim), L("rel", up.rstrip("/") + victim)],
      [F("vic/.wh.keep"), F("vic/.wh..wh..opq"), F("rel/.wh.keep"), F("rel/.wh..wh..opq")])
image("diff-id", [F("etc/x")], bad_diff_ids=True)
image("hardlink-shadow", [F("etc/passwd"), H("etc/shadow-copy", "/etc/shadow")])
image("hardlink-dotdot", [F("etc/passwd"), H("etc/shadow-copy", "../../../etc/shadow")])
image("hardlink-later", [H("etc/a", "etc/b"), F("etc/b")])
image("devices", [D("dev"), dict(name="dev/null2", type="chr", major=1, minor=3),
                  dict(name="dev/sda9", type="blk", major=8, minor=9),
                  dict(name="run/fifo", type="fifo"), F("etc/ok", "ok\n")])
image("setuid", [F("bin/su", "#!/bin/true\n", mode=0o4755), F("bin/wall", "#!/bin/true\n", mode=0o2755, gid=5),
                 F("bin/both", "#!/bin/true\n", mode=0o6755)])
image("wh-dotdot", [D("etc"), F("etc/.wh..")])
image("wh-empty", [D("etc"), F("etc/.wh.")])
image("wh-climb", [D("etc"), F("etc/../.wh.x")])
image("wh-outside", [F("etc/keep")], [F(up + ".wh." + outside.strip("/").replace("/", "_"))])
image("newline", [F("etc/new\nline", "nl\n"), F("etc/tab\there", "tab\n")])
image("bad-utf8", [dict(name_hex=b"etc/caf\xe9".hex(), type="file", data="x")])
image("bad-utf8-link", [dict(name="etc/l", type="symlink", linkname=b"\xff\xfe".decode("utf-8", "surrogateescape"))])

# zstd:chunked layers (mk.zstd_chunked): by default the diff_id is that of
# another tar, as podman 4 records it, so only the table of contents vouches
# for the content; each edit makes the TOC lie about one thing
import hashlib
def chunked(name, layers, edit=None, rewritten=True, edit_layer=None):
    made = []
    for i, spec in enumerate(layers):
        p = os.path.join(tars, "%s-%d.tar" % (name, i))
        mk.make_tar(p, spec)
        raw = open(p, "rb").read()
        layer = mk.zstd_chunked(raw, edit if i == len(layers) - 1 else None)
        if rewritten:
            layer["diff_id"] = "sha256:" + hashlib.sha256(raw + b"rewritten").hexdigest()
        if edit_layer:
            edit_layer(layer)
        made.append(layer)
    sys.stdout = io.StringIO()
    mk.make_image(os.path.join(images, name), "v1", made)
    sys.stdout = sys.__stdout__

def entry(toc, name):
    return next(e for e in toc["entries"] if e["name"] == name)
def setf(name, **kv):
    return lambda toc: entry(toc, name).update(kv)
ZC = [D("etc"), F("etc/passwd", "root:x:0:0::/:/bin/sh\n"), D("bin"), F("bin/su", "#!/bin/true\n", mode=0o4755),
      F("bin/tool", "t\n", uid=1000, gid=1001), L("bin/sh", "tool"), H("bin/tool2", "bin/tool")]
chunked("zc-ok", [ZC], rewritten=False)
chunked("zc-rewritten", [ZC + [F("etc/other-blob")]])  # not zc-ok's blob, which the store would have
chunked("zc-whiteouts", [[D("etc"), F("etc/old"), D("opq"), F("opq/x")],
                         [D("etc"), F("etc/.wh.old", ""), D("opq"), F("opq/.wh..wh..opq", ""), F("opq/y"),
                          F(".wh..wh.aufs", "")]])
chunked("zc-bad-checksum", [ZC], edit_layer=lambda l: l["annotations"].update(
    {"io.containers.zstd-chunked.manifest-checksum": "sha256:" + hashlib.sha256(b"other").hexdigest()}))
chunked("zc-outside", [ZC], edit_layer=lambda l: l["annotations"].update(
    {"io.containers.zstd-chunked.manifest-position": "99999999:100:200:1"}))
chunked("zc-content", [ZC], edit=setf("etc/passwd", digest="sha256:" + hashlib.sha256(b"evil").hexdigest()))
chunked("zc-content-diffid-ok", [ZC], rewritten=False,
        edit=setf("etc/passwd", digest="sha256:" + hashlib.sha256(b"evil").hexdigest()))
chunked("zc-unlisted", [ZC], edit=lambda toc: toc["entries"].remove(entry(toc, "bin/tool")))
chunked("zc-ghost", [ZC], edit=lambda toc: toc["entries"].append(
    {"type": "reg", "name": "etc/ghost", "mode": 0o644, "digest": "sha256:" + hashlib.sha256(b"").hexdigest()}))
chunked("zc-mode", [ZC], edit=setf("bin/su", mode=0o755))
chunked("zc-owner", [ZC], edit=setf("bin/tool", gid=0))
chunked("zc-link", [ZC], edit=setf("bin/sh", linkName="/etc/passwd"))
chunked("zc-type", [ZC], edit=setf("etc/passwd", type="dir"))
# plain zstd: no table of contents, nothing but the diff_id to go by
def plain(l):
    del l["annotations"]["io.containers.zstd-chunked.manifest-checksum"]
    del l["annotations"]["io.containers.zstd-chunked.manifest-position"]
chunked("zstd-plain-rewritten", [ZC], edit_layer=plain)
chunked("zstd-plain", [ZC + [F("etc/plain")]], rewritten=False, edit_layer=plain)

# truncated: a tar cut inside a file's data, gzipped properly; a gzip stream cut short
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    data = os.urandom(100000)
    ti = tarfile.TarInfo("etc/big"); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
raw = buf.getvalue()
image("truncated-tar", gzip.compress(raw[:60000], mtime=0))
image("truncated-gzip", gzip.compress(raw, mtime=0)[:50000])
image("not-tar", gzip.compress(b"this is not a tar archive\n" * 100, mtime=0))
# what Debian 12's umoci insert writes: the last member's data complete, then
# no padding and no end-of-archive blocks (accepted, as podman and umoci do);
# the same with a cut header after it (refused)
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
    ti = tarfile.TarInfo("etc/one"); ti.size = 1000; t.addfile(ti, io.BytesIO(b"1" * 1000))
    ti = tarfile.TarInfo("etc/two"); ti.size = 6; t.addfile(ti, io.BytesIO(b"hello\n"))
raw = buf.getvalue()
tail = 512 + 1024 + 512 + 6  # both members, the last one's padding and the end blocks dropped
image("umoci-tail", gzip.compress(raw[:tail], mtime=0))
image("cut-header-tail", gzip.compress(raw[:tail] + bytes(506) + raw[:300], mtime=0))

# a gzip bomb: 64 MiB of zeros in one file, ~64 KiB compressed
bomb = io.BytesIO()
with gzip.GzipFile(fileobj=bomb, mode="wb", compresslevel=9, mtime=0) as g:
    with tarfile.open(fileobj=g, mode="w|") as t:
        ti = tarfile.TarInfo("zeros"); ti.size = 64 << 20
        class Zeros(io.RawIOBase):
            left = ti.size
            def readinto(self, b):
                n = min(len(b), self.left); b[:n] = bytes(n); self.left -= n; return n
        t.addfile(ti, Zeros())
image("bomb", bomb.getvalue())

# many tiny files: 100k entries in 100 directories
many = io.BytesIO()
with tarfile.open(fileobj=many, mode="w", format=tarfile.GNU_FORMAT) as t:
    for d in range(100):
        ti = tarfile.TarInfo("d%02d" % d); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; t.addfile(ti)
        for f in range(1000):
            body = b"%d-%d\n" % (d, f)
            ti = tarfile.TarInfo("d%02d/f%04d" % (d, f)); ti.size = len(body); t.addfile(ti, io.BytesIO(body))
image("many", gzip.compress(many.getvalue(), compresslevel=1, mtime=0))
EOF
diag "crafted the images in $(( $(now_ms) - t0 )) ms"

fake_registry_start --auth none || bail_out "cannot start the fake registry"
F=$FAKE_ADDR
img() { echo "$F/ok/$1:v1"; }
layer_refs() { sysctr images inspect "$(img "$1")" | jq -r '.layers[].digest|sub("sha256:";"sysctr/layer/")'; }
store_ls() { local r; for r in $(layer_refs "$1"); do ostree --repo="$REPO" ls -R "$r"; done; }

# --------------------------------------------------------- refused ----------
pull_fails "\"../\" climbing out" 'tar entry ".*outside/dotdot" climbs out of the layer with ".."' "${TLS[@]}" "$(img dotdot)"
pull_fails "\"..\" in the middle of a name" 'tar entry "etc/../../x" climbs out of the layer with ".."' "${TLS[@]}" "$(img dotdot-mid)"
pull_fails "file through a symlink of the same layer (absolute target)" \
	'tar entry "etc/passwd" goes through "etc", which is not a directory' "${TLS[@]}" "$(img link-file)"
pull_fails "file through a symlink of the same layer (relative target)" \
	'tar entry "a/up/x" goes through "up", which is not a directory' "${TLS[@]}" "$(img link-file-rel)"
pull_fails "directory through a symlink of the same layer" 'goes through "etc", which is not a directory' \
	"${TLS[@]}" "$(img link-dir-file)"
pull_fails "hardlink to /etc/shadow" \
	'hardlink "etc/shadow-copy" points to "etc/shadow", which is not a regular file earlier in this layer' \
	"${TLS[@]}" "$(img hardlink-shadow)"
pull_fails "hardlink with .. to /etc/shadow" 'tar entry "\.\./\.\./\.\./etc/shadow" climbs out' "${TLS[@]}" "$(img hardlink-dotdot)"
pull_fails "hardlink to a file that comes later" 'hardlink "etc/a" points to "etc/b"' "${TLS[@]}" "$(img hardlink-later)"
pull_fails "whiteout \".wh..\"" 'whiteout "etc/.wh.." names no file in its directory' "${TLS[@]}" "$(img wh-dotdot)"
pull_fails "whiteout \".wh.\"" 'whiteout "etc/.wh." names no file in its directory' "${TLS[@]}" "$(img wh-empty)"
pull_fails "whiteout \"../.wh.x\"" 'tar entry "etc/../.wh.x" climbs out' "${TLS[@]}" "$(img wh-climb)"
pull_fails "whiteout climbing out of the tree" 'climbs out of the layer with ".."' "${TLS[@]}" "$(img wh-outside)"
pull_fails "file name that is not UTF-8" 'file name "etc/caf\\351" is not valid UTF-8' "${TLS[@]}" "$(img bad-utf8)"
pull_fails "symlink target that is not UTF-8" 'symlink "etc/l" has an empty, too long or non-UTF-8 target' "${TLS[@]}" "$(img bad-utf8-link)"
pull_fails "tar cut inside a file" 'layer sha256:[0-9a-f]{64}: .*([Tt]runcated|corrupt|unexpected|premature)' "${TLS[@]}" "$(img truncated-tar)"
pull_fails "gzip stream cut short" 'layer sha256:[0-9a-f]{64}: .*([Tt]runcated|corrupt|unexpected|premature|decompress)' "${TLS[@]}" "$(img truncated-gzip)"
pull_fails "a layer that is not a tar" 'layer sha256:[0-9a-f]{64}: .*(tar|corrupt|format|header)' "${TLS[@]}" "$(img not-tar)"
pull_fails "a cut header after the last member's padding" 'layer sha256:[0-9a-f]{64}: .*([Tt]runcated|corrupt)' "${TLS[@]}" "$(img cut-header-tail)"
# the last member's data complete, its padding and the end blocks missing
# (Debian 12's umoci insert): taken, as podman and umoci take it
if ok "a layer ending right after the last member's data (umoci insert): pulled" sysctr pull "${TLS[@]}" "$(img umoci-tail)"; then
	assert_eq "$(store_ls umoci-tail | awk '$NF ~ /^\/etc\/(one|two)$/ {print $4, $NF}' | sort | tr '\n' ' ')" \
		"1000 /etc/one 6 /etc/two " "  ... both files, whole"
fi

t0=$(now_ms)
SYSCTR_MAX_LAYER_BYTES=$((4 << 20)) pull_fails "gzip bomb (64 MiB of zeros, limit 4 MiB)" \
	'layer sha256:[0-9a-f]{64}: layer too large: more than 4194304 bytes uncompressed' "${TLS[@]}" "$(img bomb)"
el=$(( $(now_ms) - t0 ))
if (( el < 10000 )); then pass "the bomb was stopped early (${el} ms)"; else fail "the bomb was stopped early (${el} ms)"; fi
SYSCTR_MAX_LAYER_ENTRIES=5000 pull_fails "too many entries (100k, limit 5000)" 'layer sha256:[0-9a-f]{64}: more than 5000 entries' \
	"${TLS[@]}" "$(img many)"

# ------------------------------------------------------ neutralised --------
ok "absolute names: pulled" sysctr pull "${TLS[@]}" "$(img absolute)"
ls_abs=$(store_ls absolute)
if grep -q ' /etc/abs-file$' <<<"$ls_abs" && grep -q " ${OUTSIDE}/abs\$" <<<"$ls_abs"; then
	pass "absolute names are stored relative to the layer root"
else fail "absolute names are stored relative to the layer root"; diag "$ls_abs"; fi

out=$(sysctr pull "${TLS[@]}" "$(img devices)" 2>&1 >/dev/null); rc=$?
assert_eq "$rc" 0 "device nodes and fifos: the pull succeeds"
if [[ $(wc -l <<<"$out") == 1 && "$out" == "warning: layer sha256:"*": dropped 3 device node(s), fifo(s) or socket(s)" ]]; then
	pass "device nodes and fifos: one warning line"
else fail "device nodes and fifos: one warning line"; diag "$out"; fi
ls_dev=$(store_ls devices)
if grep -qE 'null2|sda9|fifo' <<<"$ls_dev"; then fail "no device node or fifo is stored"; diag "$ls_dev"
else pass "no device node or fifo is stored"; fi
grep -q ' /etc/ok$' <<<"$ls_dev" && pass "the rest of that layer is stored" || fail "the rest of that layer is stored"

ok "cross-layer symlinked dirs: pulled (each layer is valid on its own)" sysctr pull "${TLS[@]}" "$(img cross-link)"
if ok "cross-layer symlinked dirs: install --system --root" sysctr install --system --name=crosslink "$(img cross-link)"; then
	dep=$ROOT/var/lib/sysctr/containers/crosslink.0/rootfs
	if [[ -d "$dep/etc" && ! -L "$dep/etc" && -f "$dep/etc/passwd" ]]; then
		pass "the symlink etc -> host dir became a directory holding the upper layer's file"
	else fail "the symlink etc -> host dir became a directory"; diag "$(ls -la "$dep" "$dep/etc" 2>&1)"; fi
	if [[ -d "$dep/lib" && ! -L "$dep/lib" && -f "$dep/lib/libc.so" ]]; then
		pass "the relative ../../ symlink lib became a directory too"
	else fail "the relative ../../ symlink lib became a directory"; diag "$(ls -la "$dep" "$dep/lib" 2>&1)"; fi
fi
assert_outside_empty "cross-layer symlinked dirs"

ok "whiteouts under a symlinked dir of a lower layer: pulled" sysctr pull "${TLS[@]}" "$(img wh-through-link)"
if ok "whiteouts under a symlinked dir: install --system --root" sysctr install --system --name=whlink "$(img wh-through-link)"; then
	dep=$ROOT/var/lib/sysctr/containers/whlink.0/rootfs
	assert_eq "$(cat "$VICTIM/keep" 2>&1)" keep "whiteouts did not delete through the symlink (host file kept)"
	if [[ ! -L "$dep/vic" && ! -L "$dep/rel" ]]; then pass "the symlinked dirs are not followed in the deployment"
	else fail "the symlinked dirs are not followed in the deployment"; diag "$(ls -la "$dep")"; fi
fi
pull_fails "uncompressed layer does not match the config's diff_id" \
	'layer sha256:[0-9a-f]{64}: uncompressed content hashes to sha256:[0-9a-f]{64}, but the image config says sha256:' \
	"${TLS[@]}" "$(img diff-id)"

# --------------------------------------------------------------- kept ------
ok "setuid/setgid: pulled" sysctr pull "${TLS[@]}" "$(img setuid)"
ls_su=$(store_ls setuid)
grep -q '^-04755 0 0 .* /bin/su$' <<<"$ls_su" && pass "setuid bit kept (04755)" || { fail "setuid bit kept"; diag "$ls_su"; }
grep -q '^-02755 0 5 .* /bin/wall$' <<<"$ls_su" && pass "setgid bit and group kept (02755, gid 5)" || { fail "setgid bit kept"; diag "$ls_su"; }
grep -q '^-06755 0 0 .* /bin/both$' <<<"$ls_su" && pass "setuid+setgid kept (06755)" || { fail "setuid+setgid kept"; diag "$ls_su"; }
assert_eq "$(stat -c %a "$ROOT/var/lib/sysctr")" 700 "ROOT/var/lib/sysctr is mode 0700 (host users cannot reach setuid files in it)"
if ok "setuid image: install --system --root" sysctr install --system --name=suid "$(img setuid)"; then
	assert_eq "$(stat -c %a "$ROOT/var/lib/sysctr/containers/suid.0/rootfs/bin/su")" 4755 "the deployed file keeps its setuid bit"
	assert_eq "$(stat -c %a "$ROOT/var/lib/sysctr/containers")" 700 "ROOT/var/lib/sysctr/containers is mode 0700"
	if command -v runuser >/dev/null && id nobody >/dev/null 2>&1; then
		if runuser -u nobody -- test -x "$ROOT/var/lib/sysctr/containers/suid.0/rootfs/bin/su" 2>/dev/null; then
			fail "user nobody cannot reach the deployed setuid file"
		else pass "user nobody cannot reach the deployed setuid file"; fi
	fi
fi

# ------------------------------------------------------- zstd:chunked ------
ZCP='layer sha256:[0-9a-f]{64} \(zstd:chunked\)'
pull_fails "zstd:chunked: the TOC checksum is not the manifest's" \
	'zstd:chunked table of contents: checksum does not match the manifest' "${TLS[@]}" "$(img zc-bad-checksum)"
pull_fails "zstd:chunked: the TOC position is outside the blob" \
	'zstd:chunked table of contents: not inside the blob' "${TLS[@]}" "$(img zc-outside)"
pull_fails "zstd:chunked: a file's content is not the TOC's" \
	"$ZCP: the content of \"etc/passwd\" is not what its table of contents says" "${TLS[@]}" "$(img zc-content)"
pull_fails "zstd:chunked: the TOC lies even though the diff_id matches" \
	"$ZCP: the content of \"etc/passwd\" is not what" "${TLS[@]}" "$(img zc-content-diffid-ok)"
pull_fails "zstd:chunked: a file the TOC does not list" \
	"$ZCP: \"bin/tool\" is in the tar but not in its table of contents" "${TLS[@]}" "$(img zc-unlisted)"
pull_fails "zstd:chunked: a file the TOC lists is not in the tar" \
	"$ZCP: \"etc/ghost\" is in its table of contents but not in the tar" "${TLS[@]}" "$(img zc-ghost)"
pull_fails "zstd:chunked: a setuid bit the TOC does not have" \
	"$ZCP: \"bin/su\" has mode 4755 owner 0:0, its table of contents says 0755 0:0" "${TLS[@]}" "$(img zc-mode)"
pull_fails "zstd:chunked: an owner the TOC does not have" \
	"$ZCP: \"bin/tool\" has mode 0644 owner 1000:1001, its table of contents says 0644 1000:0" "${TLS[@]}" "$(img zc-owner)"
pull_fails "zstd:chunked: a symlink target the TOC does not have" \
	"$ZCP: \"bin/sh\" links elsewhere than its table of contents says" "${TLS[@]}" "$(img zc-link)"
pull_fails "zstd:chunked: a file the TOC calls a directory" \
	"$ZCP: \"etc/passwd\" is not of the type its table of contents says" "${TLS[@]}" "$(img zc-type)"
pull_fails "plain zstd whose tar is not the diff_id's: refused (no TOC to vouch)" \
	'uncompressed content hashes to sha256:[0-9a-f]{64}, but the image config says' "${TLS[@]}" "$(img zstd-plain-rewritten)"

out=$(sysctr pull "${TLS[@]}" "$(img zstd-plain)" 2>&1 >/dev/null); rc=$?
assert_eq "$rc:$out" "0:" "plain zstd whose tar is the diff_id's: pulled, no warning"
out=$(sysctr pull "${TLS[@]}" "$(img zc-ok)" 2>&1 >/dev/null); rc=$?
assert_eq "$rc:$out" "0:" "zstd:chunked whose TOC and diff_id both match: pulled, no warning"
out=$(sysctr pull "${TLS[@]}" "$(img zc-rewritten)" 2>&1 >/dev/null); rc=$?
if (( rc == 0 )) && [[ $(wc -l <<<"$out") == 1 ]] \
	&& grep -qE '^warning: layer sha256:[0-9a-f]{64}: zstd:chunked, decompressed it hashes to sha256:[0-9a-f]{64}, not the config.s diff_id sha256:[0-9a-f]{64}: checked against its table of contents instead$' <<<"$out"; then
	pass "zstd:chunked whose tar is not the diff_id's (podman 4): pulled, checked against its TOC, one warning"
else fail "zstd:chunked whose tar is not the diff_id's (podman 4): pulled with one warning"; diag "exit $rc: $out"; fi
ls_zc=$(store_ls zc-rewritten)
if grep -q '^-04755 0 0 .* /bin/su$' <<<"$ls_zc" && grep -q '^-00644 1000 1001 .* /bin/tool$' <<<"$ls_zc" \
	&& grep -q '^l00777 0 0 .* /bin/sh -> tool$' <<<"$ls_zc"; then
	pass "  ... stored with its modes, owners and links"
else fail "  ... stored with its modes, owners and links"; diag "$ls_zc"; fi
if ok "zstd:chunked with whiteouts, an opaque dir and aufs bookkeeping: installed" \
	sysctr install --system --name=zcwh "${TLS[@]}" "$(img zc-whiteouts)"; then
	dep=$ROOT/var/lib/sysctr/containers/zcwh.0/rootfs
	if [[ -d $dep/etc && ! -e $dep/etc/old && ! -e $dep/opq/x && -f $dep/opq/y ]] && ! compgen -G "$dep/.wh.*" >/dev/null; then
		pass "  ... whiteouts applied, opaque dir emptied, no .wh. file left"
	else fail "  ... whiteouts applied, opaque dir emptied"; diag "$(cd "$dep" && ls -AR etc opq .)"; fi
fi

ok "file names with a newline and a tab: pulled" sysctr pull "${TLS[@]}" "$(img newline)"
co=$TEST_TMPDIR/co-newline
ostree --repo="$REPO" checkout --union "$(layer_refs newline)" "$co" >/dev/null 2>&1
if [[ -f "$co/etc/new"$'\n'"line" && -f "$co/etc/tab"$'\t'"here" ]]; then pass "the names are stored exactly"
else fail "the names are stored exactly"; diag "$(ls -b "$co/etc" 2>&1)"; fi

ok "fsck clean" ostree --repo="$REPO" fsck -q
assert_outside_empty "the whole run"

# 100k files: a store of their own on a tmpfs when we can mount one (on this
# machine's disk, removing 100k objects alone takes over a minute).
MANY=$TEST_TMPDIR/many-root
mkdir -p "$MANY"
if mount -t tmpfs -o size=3g,mode=0755 sysctr-test "$MANY" 2>/dev/null; then
	cleanup_push "umount -l '$MANY'"
	diag "100k files: store on a tmpfs"
else
	diag "100k files: no tmpfs, store on disk"
fi
t0=$(now_ms)
ok "100k tiny files: pulled" "$SYSCTR" --root="$MANY" pull "${TLS[@]}" "$(img many)"
el=$(( $(now_ms) - t0 ))
if (( el < 60000 )); then pass "100k tiny files in ${el} ms (< 60 s)"; else fail "100k tiny files in ${el} ms (wanted < 60 s)"; fi
d=$("$SYSCTR" --root="$MANY" images inspect "$(img many)" | jq -r '.layers[0].digest')
n=$(ostree --repo="$MANY/var/lib/sysctr/repo" ls -R "sysctr/layer/${d#sha256:}" | grep -c '^-')
assert_eq "$n" 100000 "all 100000 files are in the layer commit"
done_testing
