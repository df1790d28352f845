#!/bin/bash
# bench/profile-pull.sh — where a cold `sysctr pull` of the B1 image spends its
# time: perf (DWARF call graphs, since Debian's GLib has no frame pointers),
# a syscall census (strace -c), and the SHA-256 throughput of GLib's GChecksum
# vs OpenSSL on this CPU.  Also profiles the B3 case (v2 over v1).
#
#   bash bench/profile-pull.sh        (root; sysctr from $BENCH_PREFIX)
# Output: $BENCH_OUT/profile.txt (default bench/results).
set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$(cd "$BENCH_DIR/.." && pwd)
: "${BENCH_PREFIX:=/tmp/bench-prefix}"
: "${BENCH_OUT:=$BENCH_DIR/results}"
SYSCTR=$BENCH_PREFIX/bin/sysctr
[[ -x $SYSCTR ]] || { echo "no $SYSCTR: run bench/run.sh first (it builds)" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf not installed" >&2; exit 1; }
mkdir -p "$BENCH_OUT"
OUT=$BENCH_OUT/profile.txt

. "$SRCDIR/tests/lib/libtest.sh"
. "$SRCDIR/tests/lib/registry.sh"
. "$SRCDIR/tests/lib/images.sh"
. "$BENCH_DIR/lib-inputs.sh"

registry_start >/dev/null 2>&1 || { echo "registry did not start" >&2; exit 1; }
build_big_image big >/dev/null 2>&1 && image_push big v1 >/dev/null 2>&1 && image_push big v2 >/dev/null 2>&1 ||
	{ echo "image build failed" >&2; exit 1; }
IMG1=$REGISTRY_ADDR/big:v1 IMG2=$REGISTRY_ADDR/big:v2
W=$TEST_TMPDIR/p
exec > >(tee "$OUT") 2>&1

echo "== machine: $(nproc) CPUs, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== SHA-256 throughput on this CPU (1 MiB updates)"
cat >"$TEST_TMPDIR/sha.c" <<'EOF'
#include <glib.h>
#include <openssl/evp.h>
int main (void) {
  static guchar b[1 << 20]; const int n = 300;
  GChecksum *c = g_checksum_new (G_CHECKSUM_SHA256);
  gint64 t = g_get_monotonic_time ();
  for (int i = 0; i < n; i++) g_checksum_update (c, b, sizeof b);
  g_print ("GLib GChecksum sha256: %4.0f MB/s\n", n / ((g_get_monotonic_time () - t) / 1e6));
  EVP_MD_CTX *e = EVP_MD_CTX_new (); EVP_DigestInit_ex (e, EVP_sha256 (), NULL);
  t = g_get_monotonic_time ();
  for (int i = 0; i < n; i++) EVP_DigestUpdate (e, b, sizeof b);
  g_print ("OpenSSL EVP sha256:    %4.0f MB/s\n", n / ((g_get_monotonic_time () - t) / 1e6));
  return 0;
}
EOF
# shellcheck disable=SC2046 # pkg-config prints several flags
if gcc -O2 "$TEST_TMPDIR/sha.c" -o "$TEST_TMPDIR/sha" $(pkg-config --cflags --libs glib-2.0 libcrypto) 2>/dev/null; then
	"$TEST_TMPDIR/sha"
else
	echo "(could not build the SHA-256 probe)"
fi
grep -qw sha_ni /proc/cpuinfo && echo "CPU has SHA-NI"

# a new store each time, nothing deleted (see aside() in run.sh: on this ext4,
# freshly freed inodes make inode allocation scan, which would skew the kernel share)
k=0
cold() { k=$((k + 1)); W=$TEST_TMPDIR/p.$k; mkdir -p "$W"; sync; }
echo
echo "== cold pull, wall/CPU"
cold; /usr/bin/time -f "%e s wall, %U s user, %S s sys, %P CPU" "$SYSCTR" --root="$W" pull --tls-verify=false --quiet "$IMG1"
echo
echo "== cold pull, perf (DWARF), by shared object"
cold
perf record -q -F 300 --call-graph dwarf,16384 -o "$TEST_TMPDIR/perf.data" -- \
	"$SYSCTR" --root="$W" pull --tls-verify=false --quiet "$IMG1" >/dev/null 2>&1
perf report -i "$TEST_TMPDIR/perf.data" --no-children --sort dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -12
echo
echo "== GLib's unnamed hot code = its static SHA-256 transform (next to g_checksum_*):"
perf report -i "$TEST_TMPDIR/perf.data" --no-children --sort dso,sym -g none 2>/dev/null | python3 -c '
import sys, re, subprocess
syms = []
for l in subprocess.run(["nm", "-D", "--defined-only", "/lib/x86_64-linux-gnu/libglib-2.0.so.0"], capture_output=True, text=True).stdout.splitlines():
    f = l.split()
    if len(f) == 3: syms.append((int(f[0], 16), f[2]))
syms.sort()
# gchecksum.c keeps its static md5/sha1/sha256/sha512 code right before the
# first exported g_checksum_* function: take [previous export, that function)
hi = [a for a, n in syms if n == "g_checksum_type_get_length"][0]
lo = max(a for a, n in syms if a < hi)
tot = 0.0
for l in sys.stdin:
    m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[.\]\s+0x([0-9a-f]+)", l)
    if m and "libglib" in m.group(2) and lo <= int(m.group(3), 16) < hi:
        tot += float(m.group(1))
print("  %.1f%% of all samples in libglib 0x%x..0x%x (GChecksum SHA-256 code)" % (tot, lo, hi))
'
echo
echo "== cold pull, perf, inclusive (children) by symbol, >= 4%"
perf report -i "$TEST_TMPDIR/perf.data" --children --sort sym -g none --percent-limit 4 2>/dev/null |
	grep -v '^#' | grep -v '^$' | grep -v '0x0000' | head -45
echo
echo "== cold pull, syscalls (strace -f -c; wall time per syscall, threads summed)"
cold
strace -f -w -c -o "$TEST_TMPDIR/strace" "$SYSCTR" --root="$W" pull --tls-verify=false --quiet "$IMG1"
head -22 "$TEST_TMPDIR/strace"
echo
echo "== v2 over v1 (B3): syscalls — files already in the store are written again"
cp -a "$W" "$W.v1"
strace -f -w -c -o "$TEST_TMPDIR/strace2" "$SYSCTR" --root="$W" pull --tls-verify=false --quiet "$IMG2"
head -14 "$TEST_TMPDIR/strace2"
echo "(layer 5 of v2 has $(gzip -dc "$IMAGES_DIR/big/blobs/sha256/$(image_manifest big v2 | jq -r '.layers[4].digest' | cut -d: -f2)" | tar -tvf - | grep -c '^-') regular files; 1 of them is new)"
