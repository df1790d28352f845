#!/bin/bash
# `sysctr exec` against the floor, in a booted systemd (tests/lib/nspawn.sh)
# with a running busybox container (issue 15): per call, N calls each,
# alternated, medians (min-max), of
#   sysctr exec box true              the CLI: D-Bus for the main pid, then the shim
#   sysctr-shim --exec=PID -- true    the shim alone: config, seccomp cache, setns, fork, confinement
#   nsenter -t INIT -a true           the floor: the namespaces only (no cgroup, caps, filter, env)
#   bash bench/exec.sh [N]   (root; needs an installed sysctr: BENCH_PREFIX, default /tmp/bench-prefix)
set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$(cd "$BENCH_DIR/.." && pwd)
N=${1:-50}
SYSCTR_PREFIX=${BENCH_PREFIX:-/tmp/bench-prefix}
export SYSCTR_PREFIX SYSCTR_SRCDIR=$SRCDIR
[[ -x $SYSCTR_PREFIX/bin/sysctr ]] || { echo "exec.sh: no sysctr in $SYSCTR_PREFIX" >&2; exit 1; }
# shellcheck source=../tests/lib/libtest.sh
. "$SRCDIR/tests/lib/libtest.sh"
# shellcheck source=../tests/lib/images.sh
. "$SRCDIR/tests/lib/images.sh"
# shellcheck source=../tests/lib/nspawn.sh
. "$SRCDIR/tests/lib/nspawn.sh"
build_busybox_image box v1 "" --config.cmd=-c --config.cmd='while :; do sleep 1; done' >/dev/null || exit 1
nspawn_boot >/dev/null || { echo "exec.sh: boot failed" >&2; exit 1; }
in_sysctr install --system --now --name=box "$(image_ref box v1)" >/dev/null 2>&1 || { echo "exec.sh: install" >&2; exit 1; }
# one loop inside the booted systemd, so no nsenter of ours is timed
in_systemd bash -c '
	S=$1 P=$2 N=$3
	main=$(systemctl show -p MainPID --value box.service)
	init=$(cat /proc/$main/task/$main/children | cut -d" " -f1)
	t() { local a b; a=$(date +%s%N); "$@" >/dev/null 2>&1 || echo "failed: $*" >&2; b=$(date +%s%N); echo $(( (b - a) / 1000 )); }
	for ((i = 0; i < N; i++)); do
		echo "cli $(t $S exec box true)"
		echo "shim $(t $P --exec=$main -- true)"
		echo "nsenter $(t nsenter -t $init -a true)"
	done' _ "$SYSCTR_PREFIX/bin/sysctr" "$SYSCTR_PREFIX/libexec/sysctr/sysctr-shim" "$N" >"$TEST_TMPDIR/t.txt"
for k in cli shim nsenter; do
	awk -v k="$k" '$1 == k {print $2}' "$TEST_TMPDIR/t.txt" | sort -n |
		awk -v k="$k" '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%-8s %.2f ms (%.2f-%.2f, n=%d)\n", k, m/1000, a[1]/1000, a[NR]/1000, NR}'
done
