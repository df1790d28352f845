#!/bin/bash
# sysctr demo: etcd, a service ordered after it, and a socket-activated
# service, installed by sysctr as system containers of a real (throw-away)
# systemd, from a real registry, with images built from Debian's binaries.
#
#   sudo bash scripts/demo.sh      (installs what it needs with scripts/deps.sh)
#
# Nothing on this machine changes: sysctr is built into a temporary prefix,
# the registry listens on a free loopback port, and the systemd is booted by
# systemd-nspawn on a throw-away tmpfs root (it shares /usr and the network
# with this machine).  Everything is torn down at the end, also on failure
# or Ctrl-C.  Env: SYSCTR_DEMO_KEEP=1 keeps the temporary directory.
# shellcheck disable=SC2016  # single-quoted $ in code run by bash -c/eval is meant literally
set -uo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T0=$(date +%s%N)

if [[ $(id -u) != 0 ]]; then
	echo "demo: run as root (it boots a systemd in a container): sudo bash scripts/demo.sh" >&2
	exit 1
fi
# everything it needs, from Debian's archive (a no-op when installed)
bash "$top/scripts/deps.sh" || { echo "demo: installing dependencies failed" >&2; exit 1; }
for c in meson ninja systemd-nspawn nsenter umoci skopeo docker-registry etcdctl busybox jq curl python3 dpkg-deb; do
	command -v "$c" >/dev/null || { echo "demo: $c is missing; run: sudo bash scripts/deps.sh" >&2; exit 1; }
done

# the test harness libraries: cleanup registry, registry, images, nspawn
# shellcheck source=../tests/lib/libtest.sh
. "$top/tests/lib/libtest.sh"
# shellcheck source=../tests/lib/registry.sh
. "$top/tests/lib/registry.sh"
# shellcheck source=../tests/lib/images.sh
. "$top/tests/lib/images.sh"
# shellcheck source=../tests/lib/nspawn.sh
. "$top/tests/lib/nspawn.sh"
# shellcheck source=../tests/live/e2e-images.sh
. "$top/tests/live/e2e-images.sh"
[[ -n "${SYSCTR_DEMO_KEEP:-}" ]] && export SYSCTR_TEST_KEEP=1

# ------------------------------------------------------------- printing ---
if [[ -t 1 ]]; then B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' D=$'\e[2m' N=$'\e[0m'; else B="" G="" R="" D="" N=""; fi
nstep=0
elapsed() { echo "$(( ($(date +%s%N) - T0) / 1000000000 ))s"; }
say() { nstep=$((nstep+1)); printf '\n%s[%d] %s%s %s(%s)%s\n' "$B" "$nstep" "$*" "$N" "$D" "$(elapsed)" "$N"; }
note() { printf '    %s\n' "$@"; }
indent() { sed 's/^/      /'; }
die() {
	printf '\n%sdemo FAILED: %s%s\n' "$R" "$*" "$N"
	if [[ -n "${SYSTEMD_PID:-}" ]]; then
		echo "    last lines of the booted systemd's journal:"
		systemd_journal | tail -n 40 | indent
	fi
	echo "    (everything is torn down now)"
	exit 1
}
# show CMD...   print "$ CMD" (as the user would type it inside), run it, indent its output
show() {
	printf '    %s$ %s%s\n' "$G" "$*" "$N"
	"$@" 2>&1 | indent
	return "${PIPESTATUS[0]}"
}
# inside CMD...  run CMD in the booted systemd, printed as typed there
inside() { printf '    %s$ %s%s\n' "$G" "$*" "$N"; in_systemd "$@" 2>&1 | indent; return "${PIPESTATUS[0]}"; }
# sysctr ARGS... run the freshly built sysctr inside (printed as plain "sysctr")
sysctr() { printf '    %s$ sysctr %s%s\n' "$G" "$*" "$N"; in_systemd "$SYSCTR" "$@" 2>&1 | indent; return "${PIPESTATUS[0]}"; }

echo "${B}sysctr demo${N}: container images installed as systemd system containers"
echo "  etcd    (Debian's etcd-server, Project-Atomic image format, Type=notify)"
echo "  flannel (a busybox service in flannel's role: After=/Requires=etcd, writes its key into etcd at start)"
echo "  greeter (a tiny socket-activated server: systemd listens, the container starts on the first connection)"
echo "then the same, plus a boot task, installed offline into a tree that is booted: no sysctr at boot"

# ---------------------------------------------------------------- build ---
say "Building sysctr into a temporary prefix"
work=$TEST_TMPDIR
export SYSCTR_PREFIX=$work/prefix SYSCTR_BUILDDIR=$work/build SYSCTR_SRCDIR=$top
note "meson setup $SYSCTR_BUILDDIR --prefix=$SYSCTR_PREFIX && ninja -C $SYSCTR_BUILDDIR install"
t=$(date +%s%N)
if ! { meson setup "$SYSCTR_BUILDDIR" "$top" --prefix="$SYSCTR_PREFIX" &&
	ninja -C "$SYSCTR_BUILDDIR" install; } >"$work/build.log" 2>&1; then
	tail -n 30 "$work/build.log" | indent
	die "the build failed (log above)"
fi
note "built and installed in $(( ($(date +%s%N) - t) / 1000000 )) ms: $SYSCTR_PREFIX/bin/sysctr, $SYSCTR_PREFIX/libexec/sysctr/sysctr-shim"
SYSCTR=$SYSCTR_PREFIX/bin/sysctr
SOCKSERVE=$(sockserve_path) || die "no sockserve"

# ------------------------------------------------------------- registry ---
say "Starting a throw-away image registry (Debian's docker-registry) on loopback"
registry_start >"$work/registry-start.log" 2>&1 || { indent <"$work/registry-start.log"; die "the registry did not start"; }
REG=$REGISTRY_ADDR
note "listening on $REG (plain HTTP: sysctr is told --tls-verify=false)"
ETCD_PORT=$(alloc_port) ETCD_PEER_PORT=$(alloc_port) GREETER_PORT=$(alloc_port) || die "no free ports"
note "free ports for this run: etcd client $ETCD_PORT, etcd peer $ETCD_PEER_PORT, greeter $GREETER_PORT"

# --------------------------------------------------------------- images ---
say "Building the images without a daemon (umoci) and pushing them (skopeo)"
t=$(date +%s%N)
note "etcd:     etcd $(etcd_version_from_deb 2>/dev/null) from Debian's etcd-server .deb (not installed, just unpacked) + its libc,"
note "          plus /exports/{manifest.json,config.json.template,service.template,tmpfiles.template,hostfs/}"
{ build_atomic_etcd_image etcd latest && image_push etcd latest; } >"$work/img-etcd.log" 2>&1 ||
	{ indent <"$work/img-etcd.log"; die "building the etcd image failed"; }
note "flannel:  static busybox + a script that writes a key into etcd over its HTTP API when it starts;"
note "          labels org.sysctr.after=etcd.service org.sysctr.requires=etcd.service"
{ build_flannel_image flannel latest "http://127.0.0.1:$ETCD_PORT" /sysctr-demo/flannel/config && image_push flannel latest; } \
	>"$work/img-flannel.log" 2>&1 || { indent <"$work/img-flannel.log"; die "building the flannel image failed"; }
note "greeter:  one static binary, no shell; label org.sysctr.socket = a socket unit on 127.0.0.1:\$PORT"
{ build_greeter_image greeter latest "$SOCKSERVE" "hello from a socket-activated system container" && image_push greeter latest; } \
	>"$work/img-greeter.log" 2>&1 || { indent <"$work/img-greeter.log"; die "building the greeter image failed"; }
note "pushed $(registry_catalog | tr '\n' ' ')in $(( ($(date +%s%N) - t) / 1000000 )) ms"

# ----------------------------------------------------------------- boot ---
say "Booting a throw-away systemd (systemd-nspawn --volatile=yes -D / -b)"
note "its root is a fresh tmpfs; it shares /usr and this machine's network, so the registry and the ports are reachable"
# (nspawn_boot waits through the early "offline" state itself)
nspawn_boot 2>>"$work/boot.log" || { indent <"$work/boot.log"; die "the systemd did not boot"; }
note "systemd is up ($NSPAWN_STATE) after ${NSPAWN_BOOT_MS} ms; commands below marked \$ run inside it"

# -------------------------------------------------------------- install ---
say "Installing etcd: pulled into sysctr's OSTree store, deployed read-only, etcd.service written, enabled, started"
note "--now waits until etcd itself says READY=1 (Type=notify, relayed by sysctr-shim)"
note "the image is in atomic form, privileged by nature (CAP_AUDIT_WRITE, no seccomp filter, /proc paths left"
note "unmasked): sysctr lists what it asks and installs only with --privileged (or the matching --allow=)"
t=$(date +%s%N)
sysctr install --system --now --privileged --tls-verify=false \
	--set "ETCD_PORT=$ETCD_PORT" --set "ETCD_PEER_PORT=$ETCD_PEER_PORT" "$REG/etcd:latest" ||
	die "sysctr install etcd failed"
note "ready in $(( ($(date +%s%N) - t) / 1000000 )) ms; the generated unit:"
in_systemd cat /etc/systemd/system/etcd.service | indent

say "Talking to etcd through its port, from this machine"
show etcdctl --endpoints "127.0.0.1:$ETCD_PORT" put /sysctr-demo/greeting "hello from the host" || die "etcdctl put failed"
show etcdctl --endpoints "127.0.0.1:$ETCD_PORT" get /sysctr-demo/greeting || die "etcdctl get failed"
note "etcd's own log lines are in the journal of etcd.service:"
printf '    %s$ journalctl -u etcd.service | grep -E "ready to serve|serving insecure"%s\n' "$G" "$N"
systemd_journal -u etcd.service | grep -E 'ready to serve|serving insecure' | head -n 3 | indent

say "Installing flannel, which is ordered after etcd and needs it"
note "it asks for nothing (ordering against another sysctr container is not a privilege): no flag needed"
sysctr install --system --now --tls-verify=false "$REG/flannel:latest" || die "sysctr install flannel failed"
wait_until 10 eval '[[ -n "$(etcdctl --endpoints "127.0.0.1:$ETCD_PORT" get --print-value-only /sysctr-demo/flannel/config 2>/dev/null)" ]]'
show etcdctl --endpoints "127.0.0.1:$ETCD_PORT" get /sysctr-demo/flannel/config || die "flannel's key is not in etcd"
note "a boot in miniature: stop etcd (systemd stops flannel with it), then start only flannel:"
inside systemctl stop etcd.service || die "systemctl stop etcd failed"
inside systemctl is-active etcd.service flannel.service
inside systemctl start flannel.service || die "systemctl start flannel failed"
inside systemctl is-active etcd.service flannel.service || die "etcd and flannel are not both active"
e_ready=$(in_systemctl show -p ActiveEnterTimestampMonotonic --value etcd.service)
f_start=$(in_systemctl show -p ExecMainStartTimestampMonotonic --value flannel.service)
nr=$(in_systemctl show -p NRestarts --value flannel.service)
note "systemd started etcd first; flannel's process started $(( (f_start - e_ready) / 1000 )) ms after etcd reported ready,"
note "and its write into etcd worked on the first try (restarts: $nr):"
show etcdctl --endpoints "127.0.0.1:$ETCD_PORT" get /sysctr-demo/flannel/config

say "Installing greeter: only its socket is started; the container starts on the first connection"
note "a socket with ListenStream= asks for nothing either"
sysctr install --system --now --tls-verify=false --set "PORT=$GREETER_PORT" "$REG/greeter:latest" ||
	die "sysctr install greeter failed"
inside systemctl is-active greeter.socket greeter.service
note "connecting to 127.0.0.1:$GREETER_PORT from this machine:"
answer=$(timeout 10 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && head -n1 <&3' _ "$GREETER_PORT" 2>&1)
printf '      %s\n' "$answer"
[[ "$answer" == sockserve* ]] || die "greeter did not answer"
inside systemctl is-active greeter.socket greeter.service

# ---------------------------------------------------------------- state ---
say "What is installed, and what systemd says about it"
sysctr list
inside systemctl status --no-pager -n 2 etcd.service flannel.service greeter.socket greeter.service
inside systemd-cgls --no-pager -u flannel.service

# ------------------------------------------------------------- teardown ---
say "Uninstalling everything and emptying the store"
for n in greeter flannel etcd; do sysctr uninstall "$n" || die "sysctr uninstall $n failed"; done
sysctr images prune --all || die "sysctr images prune failed"
sysctr list
note "leftovers in /etc/systemd/system, /etc/tmpfiles.d, /var/lib/sysctr/containers: $(in_systemd bash -c \
	'ls /etc/systemd/system/{etcd,flannel,greeter}.* /etc/tmpfiles.d/sysctr-* /var/lib/sysctr/containers/ 2>/dev/null | grep -v :$ | grep . || echo none')"

nspawn_teardown >/dev/null 2>&1 || note "(teardown reported leftovers; they were removed)"
note "that systemd is powered off"

# ------------------------------------------------------ the offline host ---
say "Building a host offline: sysctr --root=TREE install --system, with no systemd running for it"
note "how an image-based host gets its infrastructure: the containers go into the tree it will boot"
note "bootprep: a boot task (labels org.sysctr.type=oneshot, org.sysctr.target=sysinit.target) that writes"
note "          a token under /run/bootprep; reader: Requires=/After=bootprep.service, reads the token"
TOKEN="prepared-at-boot-$RANDOM"
{ build_boot_task_images latest "$TOKEN" && image_push bootprep latest && image_push reader latest; } \
	>"$work/img-boot.log" 2>&1 || { indent <"$work/img-boot.log"; die "building the boot task images failed"; }
TREE=$work/tree
mkdir -p "$TREE/etc" "$TREE/var/log/journal"
systemd-id128 new >"$TREE/etc/machine-id"
# (the same ports as before: that systemd is gone, and flannel's image names etcd's port)
# host ARGS...: the freshly built sysctr run on this machine, printed as typed
host() { printf '    %s$ sysctr %s%s\n' "$G" "$*" "$N"; "$SYSCTR" "$@" 2>&1 | tail -n 1 | indent; return "${PIPESTATUS[0]}"; }
t=$(date +%s%N)
host --root="$TREE" install --system --privileged --tls-verify=false \
	--set "ETCD_PORT=$ETCD_PORT" --set "ETCD_PEER_PORT=$ETCD_PEER_PORT" "$REG/etcd:latest" || die "install etcd into the tree failed"
host --root="$TREE" install --system --tls-verify=false "$REG/flannel:latest" || die "install flannel into the tree failed"
host --root="$TREE" install --system --tls-verify=false --set "PORT=$GREETER_PORT" "$REG/greeter:latest" ||
	die "install greeter into the tree failed"
host --root="$TREE" install --system --privileged --tls-verify=false "$REG/bootprep:latest" || die "install bootprep failed"
host --root="$TREE" install --system --privileged --tls-verify=false "$REG/reader:latest" || die "install reader failed"
note "5 containers in $(( ($(date +%s%N) - t) / 1000000 )) ms; the tree now holds (besides the store in var/lib/sysctr):"
(cd "$TREE" && find etc -type f -newer etc/machine-id -o -type l -newer etc/machine-id) | sort | sed 's/^/      /'
note "the boot task's unit:"
grep -E '^(Type|RemainAfterExit|Restart|DefaultDependencies|Before|After|WantedBy)=' \
	"$TREE/etc/systemd/system/bootprep.service" | indent

say "Booting that tree: its /etc/systemd/system, /etc/tmpfiles.d, /etc/etcd, /var; nothing run after boot"
nspawn_tree_binds "$TREE"
nspawn_boot "sysctr-demo-tree-$TEST_RUN_ID" 2>>"$work/boot2.log" || { indent <"$work/boot2.log"; die "the tree did not boot"; }
note "booted ($NSPAWN_STATE) in ${NSPAWN_BOOT_MS} ms; what systemd started on its own:"
wait_until 30 eval '[[ $(in_systemctl is-active etcd.service flannel.service reader.service greeter.socket | sort -u) == active ]]'
inside systemctl is-active bootprep.service reader.service etcd.service flannel.service greeter.socket ||
	die "not everything came up"
bp=$(in_systemctl show -p ExecMainExitTimestampMonotonic --value bootprep.service)
si=$(in_systemctl show -p ActiveEnterTimestampMonotonic --value sysinit.target)
rd=$(in_systemctl show -p ExecMainStartTimestampMonotonic --value reader.service)
note "bootprep ran once and exited $(( (si - bp) / 1000 )) ms before sysinit.target, $(( (rd - bp) / 1000 )) ms before reader started;"
note "reader's journal:"
systemd_journal -u reader.service | grep 'reader got' | sed 's/.*\]: //' | indent
wait_until 10 eval '[[ -n "$(etcdctl --endpoints "127.0.0.1:$ETCD_PORT" get --print-value-only /sysctr-demo/flannel/config 2>/dev/null)" ]]' ||
	die "flannel's key is not in the tree's etcd"
show etcdctl --endpoints "127.0.0.1:$ETCD_PORT" get /sysctr-demo/flannel/config
answer=$(timeout 10 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && head -n1 <&3' _ "$GREETER_PORT" 2>&1)
note "greeter on 127.0.0.1:$GREETER_PORT answers: $answer"
[[ "$answer" == sockserve* ]] || die "greeter did not answer"
inside systemd-analyze critical-chain flannel.service

say "Tearing down: powering the systemd off, stopping the registry"
nspawn_teardown >/dev/null 2>&1 || note "(teardown reported leftovers; they were removed)"
registry_stop
note "done"
printf '\n%sdemo finished in %s%s (wall time, including the build)\n' "$B" "$(( ($(date +%s%N) - T0) / 1000000 )) ms" "$N"
