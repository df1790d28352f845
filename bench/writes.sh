#!/bin/bash
# B13 (issue 17): bytes written to storage by an update that changes one
# 1 MiB file in a 30 MB layer of 1 505 files (1 500 small files, four of
# 3 MiB, the changing one of 1 MiB), side by side with podman pull and with
# skopeo copy + umoci unpack. v1 is pulled first (not counted); then v2's
# pull is counted by the block device's own "sectors written"
# (/sys/block/DEV/stat, field 7) between two syncs, so journal and metadata
# writes count, for every tool alike. Run it on an otherwise idle machine.
#   bash bench/writes.sh [RUNS]   (root; sysctr from BENCH_BUILD, default /tmp/b)
set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$(cd "$BENCH_DIR/.." && pwd)
RUNS=${1:-3}
BUILD=${BENCH_BUILD:-/tmp/b}
SYSCTR=$BUILD/src/cli/sysctr
[[ -x $SYSCTR ]] || { echo "writes.sh: no sysctr at $SYSCTR" >&2; exit 1; }
export SYSCTR_SRCDIR=$SRCDIR
# shellcheck source=../tests/lib/libtest.sh
. "$SRCDIR/tests/lib/libtest.sh"
# shellcheck source=../tests/lib/registry.sh
. "$SRCDIR/tests/lib/registry.sh"
# shellcheck source=../tests/lib/images.sh
. "$SRCDIR/tests/lib/images.sh"

# the block device under TEST_TMPDIR (all the tools' stores are there)
dev=$(lsblk -no PKNAME "$(df --output=source "$TEST_TMPDIR" | tail -1)" 2>/dev/null | head -1)
[[ -n "$dev" ]] || dev=$(basename "$(df --output=source "$TEST_TMPDIR" | tail -1)")
[[ -r /sys/block/$dev/stat ]] || { echo "writes.sh: no /sys/block/$dev/stat" >&2; exit 1; }
sectors() { awk '{print $7}' "/sys/block/$dev/stat"; }
# measured CMD...: prints the bytes the device wrote for CMD (512-byte sectors)
measured() {
	local a b
	sync; sleep 1; sync
	a=$(sectors)
	"$@" >>"$TEST_TMPDIR/log" 2>&1 || { echo "writes.sh: failed: $*" >&2; tail -5 "$TEST_TMPDIR/log" >&2; return 1; }
	sync; sleep 1; sync
	b=$(sectors)
	echo $(((b - a) * 512))
}

registry_start --id writes >/dev/null || exit 1
REG=$REGISTRY_ADDR
src=$TEST_TMPDIR/src
mkdir -p "$src/data" "$src/big"
for i in $(seq 1 1500); do head -c $(((i * 7919) % 20000 + 100)) /dev/urandom >"$src/data/f$i"; done
for i in 1 2 3 4; do head -c $((3 * 1024 * 1024)) /dev/urandom >"$src/big/b$i"; done
head -c $((1024 * 1024)) /dev/urandom >"$src/big/changing"
{ image_new app v1 && image_add_layer app v1 "$src" &&
	image_config app v1 --config.entrypoint=/big/changing; } >/dev/null || exit 1
head -c $((1024 * 1024)) /dev/urandom >"$src/big/changing"
{ image_new app v2 && image_add_layer app v2 "$src" &&
	image_config app v2 --config.entrypoint=/big/changing; } >/dev/null || exit 1
for v in v1 v2; do
	skopeo --insecure-policy copy -q --dest-tls-verify=false "$(image_ref app $v)" "docker://$REG/app:$v" || exit 1
done

declare -A got
for ((r = 1; r <= RUNS; r++)); do
	w=$TEST_TMPDIR/run$r
	mkdir -p "$w/sysctr" "$w/podman/root" "$w/podman/run"
	"$SYSCTR" --root="$w/sysctr" pull -q --tls-verify=false "$REG/app:v1" >/dev/null || exit 1
	got[sysctr]+=" $(measured "$SYSCTR" --root="$w/sysctr" pull -q --tls-verify=false "$REG/app:v2")"
	P=(podman --root "$w/podman/root" --runroot "$w/podman/run" --storage-driver overlay)
	"${P[@]}" pull -q --tls-verify=false "$REG/app:v1" >/dev/null 2>&1 || exit 1
	got[podman]+=" $(measured "${P[@]}" pull -q --tls-verify=false "$REG/app:v2")"
	skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$REG/app:v1" "oci:$w/layout:v1" || exit 1
	umoci unpack --image "$w/layout:v1" "$w/bundle-v1" >/dev/null || exit 1
	got[skopeo]+=" $(measured skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$REG/app:v2" "oci:$w/layout:v2")"
	got[umoci]+=" $(measured umoci unpack --image "$w/layout:v2" "$w/bundle-v2")"
	"${P[@]}" rmi -a -f >/dev/null 2>&1
	rm -rf "$w"
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
changed=$((1024 * 1024))
printf '%-28s %12s %8s   (runs:%s)\n' "v2 pull after v1" "bytes" "x file" ""
for k in sysctr podman skopeo umoci; do
	m=$(median <<<"${got[$k]}")
	printf '%-28s %12d %8.2f   (%s)\n' "$k" "$m" "$(echo "$m / $changed" | bc -l)" "${got[$k]# }"
done
s=$(median <<<"${got[skopeo]}") u=$(median <<<"${got[umoci]}")
printf '%-28s %12d %8.2f\n' "skopeo copy + umoci unpack" $((s + u)) "$(echo "($s + $u) / $changed" | bc -l)"
