#!/bin/bash
# B10/B11: a boot with 10 system containers against the same 10 binaries as
# plain host units (issue 14). Two trees are assembled offline and booted in
# turn, each as the units and /var of a throw-away systemd
# (tests/lib/nspawn.sh, the way tests/live/boot.sh boots a tree):
#   sysctr  `sysctr --root=TREE install --system`: etcd (atomic form,
#           Type=notify), 4 x ready (Type=notify, bench/ready.c: READY=1 then
#           wait), 3 x sockserve (socket-activated), 2 x busybox sleep
#           (Type=exec)
#   plain   the same files from a directory of the host, as units of the same
#           types (etcd run by its loader from the same extracted files)
# One warm-up boot each (etcd creates its data dir), then RUNS boots of each,
# alternated. Per boot:
#   all_ready  systemd's own clock: the last of the 10 units to become active
#              (services ready, sockets listening), from the manager's start
#   light_ready  the same for the 9 units other than etcd (etcd's own
#              start, elections included, dominates all_ready and varies)
#   wall       nspawn start until `systemctl is-system-running --wait` returns
#   per unit   activation time, InactiveExit -> ActiveEnter (what
#              systemd-analyze blame shows)
# B11: the shim's added start latency per container (mean over the 7 started
# services of sysctr minus plain, and (all_ready sysctr - plain) / 10), and
# the PSS of the shims that stay resident once all are up, per container.
#
#   bash bench/b10-boot.sh [RUNS]   (root; bench/run.sh calls it. Needs an
#                                   installed sysctr: BENCH_PREFIX, default
#                                   /tmp/bench-prefix)
# Prints "KEY MEDIAN MIN MAX N" lines on stdout (seconds; PSS in KiB) and
# appends them to $RES (bench/run.sh's results.tsv) when it is set; the
# per-unit table goes to stdout as "unit NAME SYSCTR_MS PLAIN_MS" lines.
# shellcheck disable=SC2016  # single-quoted $ in unit text is meant literally
set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$(cd "$BENCH_DIR/.." && pwd)
RUNS=${1:-7}
[[ -n "${BENCH_QUICK:-}" ]] && RUNS=2
SYSCTR_PREFIX=${BENCH_PREFIX:-/tmp/bench-prefix}
export SYSCTR_PREFIX SYSCTR_SRCDIR=$SRCDIR
[[ -x $SYSCTR_PREFIX/bin/sysctr ]] || { echo "b10: no sysctr in $SYSCTR_PREFIX (run bench/run.sh or meson install first)" >&2; exit 1; }

# shellcheck source=../tests/lib/libtest.sh
. "$SRCDIR/tests/lib/libtest.sh"
# shellcheck source=../tests/lib/registry.sh
. "$SRCDIR/tests/lib/registry.sh"
# shellcheck source=../tests/lib/images.sh
. "$SRCDIR/tests/lib/images.sh"
# shellcheck source=../tests/lib/nspawn.sh
. "$SRCDIR/tests/lib/nspawn.sh"
# shellcheck source=../tests/live/e2e-images.sh
. "$SRCDIR/tests/live/e2e-images.sh"
die() { echo "b10: $*" >&2; exit 1; }
SHIM=$SYSCTR_PREFIX/libexec/sysctr/sysctr-shim

# ------------------------------------------------------------- binaries ---
BIN=$TEST_TMPDIR/bin; mkdir -p "$BIN"
cc -O2 -static -o "$BIN/ready" "$BENCH_DIR/ready.c" || die "cannot build ready.c"
cp "$(sockserve_path)" "$BIN/sockserve" || die "cannot build sockserve"
cp "$(command -v busybox)" "$BIN/busybox"
PLAIN_ETCD=$TEST_TMPDIR/etcd-root
mkdir -p "$PLAIN_ETCD" && etcd_rootfs "$PLAIN_ETCD" >/dev/null || die "etcd rootfs"

# --------------------------------------------------------------- images ---
RD=$TEST_TMPDIR/ready-img; install -D -m 0755 "$BIN/ready" "$RD/usr/bin/ready"
make_image ready v1 "$RD" --config.entrypoint=/usr/bin/ready --config.label=org.sysctr.notify=true >/dev/null ||
	die "ready image"
build_busybox_image sleeper v1 "" --config.cmd=-c --config.cmd='exec sleep 2147483647' >/dev/null || die "sleep image"
build_greeter_image greeter v1 "$BIN/sockserve" b10 >/dev/null || die "sockserve image"
build_atomic_etcd_image etcd v1 >/dev/null 2>&1 || die "etcd image"

SERVICES="etcd ready1 ready2 ready3 ready4 sleep1 sleep2"
SOCKETS="sock1 sock2 sock3"
units_of() { local u; for u in $SERVICES; do echo "$u.service"; done; for u in $SOCKETS; do echo "$u.socket"; done; }

# ------------------------------------------------------------ the trees ---
declare -A PORT
for k in etcd etcdpeer sock1 sock2 sock3 petcd petcdpeer psock1 psock2 psock3; do PORT[$k]=$(alloc_port) || die "alloc_port"; done

ST=$TEST_TMPDIR/tree-sysctr
mkdir -p "$ST/etc" "$ST/var/log/journal"; systemd-id128 new >"$ST/etc/machine-id"
sc() { "$SYSCTR_PREFIX/bin/sysctr" --root="$ST" install --system "$@" >/dev/null || die "install $*"; }
sc --privileged --name=etcd --set "ETCD_PORT=${PORT[etcd]}" --set "ETCD_PEER_PORT=${PORT[etcdpeer]}" "$(image_ref etcd v1)"
for i in 1 2 3 4; do sc --name="ready$i" "$(image_ref ready v1)"; done
for i in 1 2; do sc --name="sleep$i" "$(image_ref sleeper v1)"; done
for i in 1 2 3; do sc --name="sock$i" --set "PORT=${PORT[sock$i]}" "$(image_ref greeter v1)"; done

PT=$TEST_TMPDIR/tree-plain
PU=$PT/etc/systemd/system
mkdir -p "$PU/multi-user.target.wants" "$PU/sockets.target.wants" "$PT/var/log/journal"
systemd-id128 new >"$PT/etc/machine-id"
plain_service() { # NAME TYPE EXEC [ENV]
	cat >"$PU/$1.service" <<EOF
[Unit]
Description=$1 as a plain unit (B10 baseline)
After=network.target

[Service]
Type=$2
ExecStart=$3
${4:+Environment=$4}
KillMode=mixed
Restart=on-failure
StateDirectory=$1

[Install]
WantedBy=multi-user.target
EOF
}
L=$PLAIN_ETCD
plain_service etcd notify "$L/lib64/ld-linux-x86-64.so.2 --library-path $L/lib/x86_64-linux-gnu $L/usr/bin/etcd" \
	"ETCD_NAME=plain ETCD_DATA_DIR=/var/lib/etcd ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:${PORT[petcd]} ETCD_ADVERTISE_CLIENT_URLS=http://127.0.0.1:${PORT[petcd]} ETCD_LISTEN_PEER_URLS=http://127.0.0.1:${PORT[petcdpeer]} ETCD_INITIAL_ADVERTISE_PEER_URLS=http://127.0.0.1:${PORT[petcdpeer]} ETCD_INITIAL_CLUSTER=plain=http://127.0.0.1:${PORT[petcdpeer]}"
for i in 1 2 3 4; do plain_service "ready$i" notify "$BIN/ready"; done
for i in 1 2; do plain_service "sleep$i" exec "$BIN/busybox sleep 2147483647"; done
for i in 1 2 3; do
	plain_service "sock$i" exec "$BIN/sockserve" "SOCKSERVE_GREETING=b10"
	sed -i '/^\[Install\]/,$d' "$PU/sock$i.service"
	printf '[Unit]\nDescription=sock%s as a plain socket\n\n[Socket]\nListenStream=127.0.0.1:%s\n\n[Install]\nWantedBy=sockets.target\n' \
		"$i" "${PORT[psock$i]}" >"$PU/sock$i.socket"
	ln -s ../sock$i.socket "$PU/sockets.target.wants/sock$i.socket"
done
for u in $SERVICES; do ln -s "../$u.service" "$PU/multi-user.target.wants/$u.service"; done

# ---------------------------------------------------------------- boots ---
mono() { in_systemctl show -p "$2" --value "$1"; }
declare -A T
# boot SIDE TREE COUNT(0: warm-up) -> T[SIDE.all], T[SIDE.wall], T[SIDE.UNIT], T[pss]
boot() {
	local side=$1 tree=$2 count=$3 u us ae ie last=0 light=0 n=0
	nspawn_tree_binds "$tree"
	nspawn_boot "b10-$side-$TEST_RUN_ID" >/dev/null || die "$side: boot failed"
	for u in $(units_of); do
		wait_until 30 eval '[[ $(in_systemctl is-active '"$u"') == active ]]' || die "$side: $u not active"
	done
	us=$(in_systemctl show -p UserspaceTimestampMonotonic --value)
	for u in $(units_of); do
		ae=$(mono "$u" ActiveEnterTimestampMonotonic) ie=$(mono "$u" InactiveExitTimestampMonotonic)
		(( ae > last )) && last=$ae
		[[ $u != etcd.service ]] && (( ae > light )) && light=$ae
		((count)) && T[$side.$u]+="$(( ae - ie )) "
	done
	if ((count)); then
		T[$side.all]+="$(( last - us )) " T[$side.light]+="$(( light - us )) "
		T[$side.wall]+="$(( NSPAWN_BOOT_MS * 1000 )) "
		in_systemd systemd-analyze blame 2>/dev/null | grep -E " ($(units_of | paste -sd'|'))\$" >"$TEST_TMPDIR/blame.$side"
	fi
	if ((count)) && [[ $side == sysctr ]]; then
		# the shims resident once all are up: PSS, per running container
		sleep 1
		local p kib total=0 shims=0
		# every process still running the shim's file (the unit's main
		# process and the container's init, forked from it); only this
		# boot runs shims from this prefix
		for p in /proc/[0-9]*; do
			p=${p#/proc/}
			[[ $(readlink "/proc/$p/exe" 2>/dev/null) == "$SHIM" ]] || continue
			kib=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null) || continue
			total=$(( total + kib )) shims=$(( shims + 1 ))
		done
		n=$(echo "$SERVICES" | wc -w)
		T[pss]+="$(( total * 1000000 / n )) " T[shims]+="$shims "
	fi
	nspawn_teardown >/dev/null 2>&1
}
boot sysctr "$ST" 0
boot plain "$PT" 0
for ((i = 1; i <= RUNS; i++)); do boot sysctr "$ST" 1; boot plain "$PT" 1; done

# -------------------------------------------------------------- results ---
# values in microseconds (PSS in KiB x 10^6): print seconds (KiB)
stats() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.6f %.6f %.6f %d", m/1e6, a[1]/1e6, a[NR]/1e6, NR}'; }
out() { echo "$1 $2"; [[ -n "${RES:-}" ]] && { read -r med min max cnt <<<"$2"; printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$med" "$min" "$max" "$cnt" >>"$RES"; }; }
for side in sysctr plain; do
	out "B10.$side.all_ready" "$(stats <<<"${T[$side.all]}")"
	out "B10.$side.light_ready" "$(stats <<<"${T[$side.light]}")"
	out "B10.$side.wall" "$(stats <<<"${T[$side.wall]}")"
done
out B11.shim_pss_kib_per_container "$(stats <<<"${T[pss]}")"
echo "B11 shim processes found per boot: ${T[shims]}(for $(echo "$SERVICES" | wc -w) running containers)"
# added start latency per started container: sysctr - plain, per unit medians
# (all 7, and the 6 other than etcd, whose own start varies by ~0.1 s)
added=0 light=0
for u in $SERVICES; do
	s=$(stats <<<"${T[sysctr.$u.service]}") p=$(stats <<<"${T[plain.$u.service]}")
	added=$(awk -v a="${s%% *}" -v b="${p%% *}" -v c="$added" 'BEGIN {printf "%.6f", c + a - b}')
	[[ $u == etcd ]] || light=$(awk -v a="${s%% *}" -v b="${p%% *}" -v c="$light" 'BEGIN {printf "%.6f", c + a - b}')
done
n=$(echo "$SERVICES" | wc -w)
added=$(awk -v a="$added" -v n="$n" 'BEGIN {printf "%.6f", a / n}')
light=$(awk -v a="$light" -v n="$n" 'BEGIN {printf "%.6f", a / (n - 1)}')
out B11.added_start_per_container "$added $added $added 1"
out B11.added_start_per_light_container "$light $light $light 1"
a_s=$(stats <<<"${T[sysctr.all]}") a_p=$(stats <<<"${T[plain.all]}")
out B11.added_boot_per_container "$(awk -v a="${a_s%% *}" -v b="${a_p%% *}" 'BEGIN {x = (a - b) / 10; printf "%.6f %.6f %.6f 1", x, x, x}')"
awk -v a="${a_s%% *}" -v b="${a_p%% *}" 'BEGIN {printf "B10 ratio sysctr/plain (all ready): %.2f\n", a/b}'
for u in $(units_of); do
	s=$(stats <<<"${T[sysctr.$u]}") p=$(stats <<<"${T[plain.$u]}")
	awk -v u="$u" -v a="${s%% *}" -v b="${p%% *}" 'BEGIN {printf "unit %s %.1f %.1f\n", u, a * 1000, b * 1000}'
done
for side in sysctr plain; do echo "systemd-analyze blame, last $side boot:"; sed 's/^/  /' "$TEST_TMPDIR/blame.$side"; done
