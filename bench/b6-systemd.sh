#!/bin/bash
# B6: `systemctl start` of a Type=notify service until it is active, in a
# booted systemd (tests/lib/nspawn.sh): etcd as a sysctr system container
# (unit -> sysctr-shim -> namespaces -> etcd, READY=1 relayed by the shim)
# against the same etcd binary as a plain host unit. runc cannot create its
# cgroups in that systemd on these machines, so it is not a peer here.
#
#   bash bench/b6-systemd.sh [RUNS]   (root; bench/run.sh calls it. Needs an
#                                     installed sysctr: BENCH_PREFIX, default
#                                     /tmp/bench-prefix)
# Prints "B6.<who> MEDIAN MIN MAX N" lines (seconds) on stdout, and appends
# them to $RES (bench/run.sh's results.tsv) when it is set. Also B8 live:
# rollback of the running etcd (switch + restart) against a plain restart.
set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$(cd "$BENCH_DIR/.." && pwd)
RUNS=${1:-15}
[[ -n "${BENCH_QUICK:-}" ]] && RUNS=3
SYSCTR_PREFIX=${BENCH_PREFIX:-/tmp/bench-prefix}
export SYSCTR_PREFIX SYSCTR_SRCDIR=$SRCDIR
[[ -x $SYSCTR_PREFIX/bin/sysctr ]] || { echo "b6: no sysctr in $SYSCTR_PREFIX (run bench/run.sh or meson install first)" >&2; exit 1; }

. "$SRCDIR/tests/lib/libtest.sh"
. "$SRCDIR/tests/lib/registry.sh"
. "$SRCDIR/tests/lib/images.sh"
. "$SRCDIR/tests/lib/nspawn.sh"

registry_start >/dev/null || { echo "b6: registry did not start" >&2; exit 1; }
build_atomic_etcd_image etcd b6 >/dev/null 2>&1 && image_push etcd b6 >/dev/null || { echo "b6: image" >&2; exit 1; }
# the plain unit runs the very same files from a directory of the host
plain=$TEST_TMPDIR/plain-root
mkdir -p "$plain" && etcd_rootfs "$plain" >/dev/null || { echo "b6: etcd rootfs" >&2; exit 1; }
nspawn_boot >/dev/null || { echo "b6: booting systemd failed" >&2; exit 1; }

P1=$(alloc_port) P2=$(alloc_port) P3=$(alloc_port) P4=$(alloc_port)
in_sysctr install --system --privileged --tls-verify=false --name=etcd --set ETCD_PORT="$P1" --set ETCD_PEER_PORT="$P2" \
  "$REGISTRY_ADDR/etcd:b6" >/dev/null 2>&1 || { echo "b6: install failed" >&2; exit 1; }
nspawn_put /etc/systemd/system/etcd-plain.service <<UNIT
[Unit]
Description=etcd as a plain unit (B6 baseline)
[Service]
Type=notify
ExecStart=$plain/lib64/ld-linux-x86-64.so.2 --library-path $plain/lib/x86_64-linux-gnu $plain/usr/bin/etcd
Environment=ETCD_NAME=plain ETCD_DATA_DIR=/var/lib/etcd-plain
Environment=ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:$P3 ETCD_ADVERTISE_CLIENT_URLS=http://127.0.0.1:$P3
Environment=ETCD_LISTEN_PEER_URLS=http://127.0.0.1:$P4 ETCD_INITIAL_ADVERTISE_PEER_URLS=http://127.0.0.1:$P4
Environment=ETCD_INITIAL_CLUSTER=plain=http://127.0.0.1:$P4
UNIT
in_systemctl daemon-reload

declare -A T
for u in etcd etcd-plain; do T[$u]=""; done
for ((i = 0; i <= RUNS; i++)); do
  for u in etcd etcd-plain; do
    in_systemctl stop "$u" >/dev/null 2>&1
    t0=$(date +%s%N)
    in_systemctl start "$u" || { echo "b6: start $u failed" >&2; systemd_journal -u "$u" | tail -20 >&2; exit 1; }
    t1=$(date +%s%N)
    ((i == 0)) && continue # warm-up: the first start also creates the data dir
    T[$u]+="$(( (t1 - t0) / 1000 )) "
  done
done
# B8 live: a rollback of the running service (switch + restart) against a
# plain `systemctl restart` of it; the switch costs the difference.
image_label etcd b6 org.sysctr.bench.version=2 >/dev/null && image_push etcd b6 "$REGISTRY_ADDR/etcd:b6v2" >/dev/null &&
  in_systemctl start etcd && in_sysctr update --rebase="$REGISTRY_ADDR/etcd:b6v2" --tls-verify=false etcd >/dev/null 2>&1 ||
  { echo "b6: preparing the B8 update failed" >&2; exit 1; }
T[rollback]="" T[restart]=""
for ((i = 0; i < RUNS; i++)); do
  t0=$(date +%s%N); in_sysctr rollback etcd >/dev/null 2>&1 || { echo "b6: rollback failed" >&2; exit 1; }; t1=$(date +%s%N)
  T[rollback]+="$(( (t1 - t0) / 1000 )) "
  t0=$(date +%s%N); in_systemctl restart etcd || { echo "b6: restart failed" >&2; exit 1; }; t1=$(date +%s%N)
  T[restart]+="$(( (t1 - t0) / 1000 )) "
done

stats() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.6f %.6f %.6f %d", m/1e6, a[1]/1e6, a[NR]/1e6, NR}'; }
s_sysctr=$(stats <<<"${T[etcd]}")
s_plain=$(stats <<<"${T[etcd-plain]}")
s_rollback=$(stats <<<"${T[rollback]}")
s_restart=$(stats <<<"${T[restart]}")
echo "B8.live_rollback $s_rollback"
echo "B8.live_restart_only $s_restart"
echo "B6.sysctr $s_sysctr"
echo "B6.plain $s_plain"
awk -v a="${s_sysctr%% *}" -v b="${s_plain%% *}" 'BEGIN {printf "B6 ratio sysctr/plain: %.2f\n", a/b}'
if [[ -n "${RES:-}" ]]; then
  for kv in "B6.sysctr $s_sysctr" "B6.plain $s_plain" "B8.live_rollback $s_rollback" "B8.live_restart_only $s_restart"; do
    read -r k med min max n <<<"$kv"
    printf '%s\t%s\t%s\t%s\t%s\n' "$k" "$med" "$min" "$max" "$n" >>"$RES"
  done
fi
