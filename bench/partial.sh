#!/bin/bash
# B12 (issue 17): bytes fetched from the registry for an update that changes
# one 1 MiB file among 200 (about 5 MB), both versions pushed by podman as
# zstd:chunked (Debian 12's podman 4.3 pushes this size reliably; a ~40 MB,
# 2 000-file layer failed with "short write"). Each tool holds v1 first; the
# bytes its v2 pull received are summed from the registry's access log (the
# response sizes of the requests made in between):
#   sysctr pull            partial pull (HTTP Range) when the store has the files
#   podman pull            overlay storage with enable_partial_images = "true"
#   skopeo copy            the whole layer
#   bash bench/partial.sh   (root; sysctr from BENCH_BUILD, default /tmp/b)
set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$(cd "$BENCH_DIR/.." && pwd)
BUILD=${BENCH_BUILD:-/tmp/b}
SYSCTR=$BUILD/src/cli/sysctr
[[ -x $SYSCTR ]] || { echo "partial.sh: no sysctr at $SYSCTR" >&2; exit 1; }
export SYSCTR_SRCDIR=$SRCDIR
# shellcheck source=../tests/lib/libtest.sh
. "$SRCDIR/tests/lib/libtest.sh"
# shellcheck source=../tests/lib/registry.sh
. "$SRCDIR/tests/lib/registry.sh"
# shellcheck source=../tests/lib/images.sh
. "$SRCDIR/tests/lib/images.sh"

registry_start --id partial >/dev/null || exit 1
REG=$REGISTRY_ADDR
LOG=$REGISTRY_DIR/registry.log
src=$TEST_TMPDIR/src
mkdir -p "$src/data" "$src/big"
for i in $(seq 1 200); do head -c $(((i * 7919) % 40000 + 100)) /dev/urandom >"$src/data/f$i"; done
head -c $((1024 * 1024)) /dev/urandom >"$src/big/changing"
for v in v1 v2; do
	[[ $v == v2 ]] && head -c $((1024 * 1024)) /dev/urandom >"$src/big/changing"
	{ image_new app "$v" && image_add_layer app "$v" "$src" && image_config app "$v" --config.entrypoint=/big/changing; } \
		>/dev/null || exit 1
done
CS=$TEST_TMPDIR/cs
CSO=(--root "$CS/root" --runroot "$CS/run" --storage-driver vfs)
for v in v1 v2; do
	skopeo --insecure-policy copy -q "$(image_ref app $v)" "containers-storage:[vfs@$CS/root+$CS/run]localhost/app:$v" &&
		podman "${CSO[@]}" push -q --tls-verify=false --compression-format zstd:chunked "localhost/app:$v" \
			"docker://$REG/app:$v" || exit 1
done
layer=$(skopeo inspect --raw --tls-verify=false "docker://$REG/app:v2" | jq '.layers[0].size')

# bytes CMD...: what the registry sent while CMD ran (response sizes in its access log)
bytes() {
	local n
	n=$(wc -l <"$LOG")
	"$@" >>"$TEST_TMPDIR/log" 2>&1 || { echo "partial.sh: failed: $*" >&2; tail -3 "$TEST_TMPDIR/log" >&2; return 1; }
	sleep 0.5
	tail -n +"$((n + 1))" "$LOG" | grep -oE '" [0-9]{3} [0-9]+ ' | awk '{s += $3} END {print s + 0}'
}

mkdir -p "$TEST_TMPDIR/s"
"$SYSCTR" --root="$TEST_TMPDIR/s" pull -q --tls-verify=false "$REG/app:v1" >/dev/null || exit 1
b_sysctr=$(bytes "$SYSCTR" --root="$TEST_TMPDIR/s" pull -q --tls-verify=false "$REG/app:v2")

conf=$TEST_TMPDIR/storage.conf
cat >"$conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$TEST_TMPDIR/p/root"
runroot = "$TEST_TMPDIR/p/run"
[storage.options]
pull_options = {enable_partial_images = "true", use_hard_links = "false"}
EOF
P=(env CONTAINERS_STORAGE_CONF="$conf" podman)
"${P[@]}" pull -q --tls-verify=false "$REG/app:v1" >/dev/null 2>&1 || exit 1
b_podman=$(bytes "${P[@]}" pull -q --tls-verify=false "$REG/app:v2")

skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$REG/app:v1" "oci:$TEST_TMPDIR/layout:v1" || exit 1
b_skopeo=$(bytes skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$REG/app:v2" "oci:$TEST_TMPDIR/layout:v2")
"${P[@]}" rmi -af >/dev/null 2>&1

changed=$((1024 * 1024))
echo "v2's zstd:chunked layer: $layer bytes; the changed file: $changed bytes"
row() { printf '%-8s %10d bytes  %5.2fx the file  %5.2fx the layer\n' "$1" "$2" "$(echo "$2 / $changed" | bc -l)" \
	"$(echo "$2 / $layer" | bc -l)"; }
row sysctr "$b_sysctr"
row podman "$b_podman"
row skopeo "$b_skopeo"
