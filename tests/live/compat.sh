#!/bin/bash
# Images made for atomic, run for real (issue: real images, unchanged): in a
# booted systemd, etcd in the form of the upstream catalogue's etcd (an
# environment-driven command, mode= options on binds, the pre-1.0
# apparmorProfile placement, $ADDTL_MOUNTS) and flannel in the form of its
# flannel (systemd-notify --ready under NotifyAccess=all, an empty hostfs
# directory as a bind source, a drop-in written on the host and removed by
# ExecStopPost=) install unchanged with --privileged, run and serve. What
# a start would refuse on this host (a device it lacks) is refused at
# install; a service that dies after its start job is reported with its
# journal; linux.resources become unit directives; a `runc spec` bundle
# runs as a unit under the shim.
# shellcheck disable=SC2016
LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)
. "$LIB/libtest.sh"
. "$LIB/registry.sh"
. "$LIB/images.sh"
. "$LIB/nspawn.sh"
require_root
require_cmd systemd-nspawn nsenter umoci skopeo docker-registry jq etcdctl busybox runc

SYSCTR_BIN=${SYSCTR_BIN:-${SYSCTR_PREFIX:-}/bin/sysctr}
[[ -n "${SYSCTR_PREFIX:-}" && -x "$SYSCTR_BIN" ]] || skip_all "no installed sysctr (SYSCTR_PREFIX unset)"
export SYSCTR_BIN
: "${SYSCTR_SHIM:=$SYSCTR_PREFIX/libexec/sysctr-shim}"

registry_start >/dev/null || bail_out "registry did not start"
REG=$REGISTRY_ADDR
push() { image_push "$1" "$2" "$REG/$1:$2" >/dev/null || bail_out "pushing $1"; }
build_atomic_etcd_upstream_image etcd v1 >"$TEST_TMPDIR/b.log" 2>&1 || { diag_file "$TEST_TMPDIR/b.log" 5; bail_out "etcd image"; }
build_atomic_flannel_upstream_image flannel v1 >"$TEST_TMPDIR/b.log" 2>&1 || { diag_file "$TEST_TMPDIR/b.log" 5; bail_out "flannel image"; }
# the same without CAP_NET_ADMIN: this throw-away systemd has none to give
# (nspawn keeps it only with a private network, and this one shares the host's)
noadmin=$TEST_TMPDIR/noadmin; mkdir -p "$noadmin" && cp -a "$SYSCTR_SRCDIR/tests/images/atomic-flannel-upstream" "$noadmin/"
sed -i 's/, "CAP_NET_ADMIN"//' "$noadmin/atomic-flannel-upstream/exports/config.json.template"
SYSCTR_TEST_IMAGES_SRC=$noadmin build_atomic_flannel_upstream_image flannel noadmin >/dev/null 2>&1 || bail_out "flannel image"
push etcd v1; push flannel v1; push flannel noadmin
# dies a second after it started: its start job succeeds
build_busybox_image dies v1 "" --config.cmd=-c --config.cmd='echo dies: starting; sleep 1; echo "dies: giving up"; exit 4' >/dev/null
push dies v1
# asks for a device this host does not have (a VM's virtio port)
d=$TEST_TMPDIR/vport; mkdir -p "$d/exports"
printf '%s\n' '{"ociVersion": "1.0.0", "process": {"args": ["/bin/sh", "-c", "sleep 1000"], "cwd": "/"},' \
	'"root": {"path": "rootfs", "readonly": true},' \
	'"mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],' \
	'"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}],' \
	'"devices": [{"path": "/dev/vport2p1", "type": "c", "major": 249, "minor": 1}]}}' >"$d/exports/config.json.template"
build_busybox_image vport v1 "$d" >/dev/null; push vport v1
# resources: a memory limit
d=$TEST_TMPDIR/mem; mkdir -p "$d/exports"
jq '.linux.resources = {"memory": {"limit": 33554432}} | .linux.devices = null' "$TEST_TMPDIR/vport/exports/config.json.template" \
	>"$d/exports/config.json.template"
build_busybox_image mem v1 "$d" >/dev/null; push mem v1

nspawn_boot >/dev/null || bail_out "booting systemd"
prop() { in_systemctl show -p "$2" --value "$1" 2>/dev/null; }
sysctr_t() { local t=$1; shift; in_systemd timeout "$t" "$SYSCTR_BIN" "$@"; }
P=$(alloc_port) PP=$(alloc_port)
etcdctl_() { ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$P" --dial-timeout=2s --command-timeout=3s "$@"; }

# --------------------------------------------------------------- etcd ----
# its etcdctl goes to /usr/local/bin, read-only here (this systemd shares the
# host's /usr): refused before the commit point, nothing left behind
out=$(sysctr_t 150 install --system --privileged --tls-verify=false --name=etcd "$REG/etcd:v1" 2>&1); rc=$?
assert_ne "$rc" 0 "a host file on a read-only /usr/local/bin: refused at install"
assert_match "$(tail -n1 <<<"$out")" "cannot write /usr/local/bin/etcdctl: Read-only file system" "  ... naming it"
assert_eq "$(in_systemd ls /var/lib/sysctr/containers 2>&1 | grep -c etcd)" 0 "  ... nothing left behind"
# a writable /usr/local/bin, as on hosts where /usr/local is /var/usrlocal
ok "a tmpfs on /usr/local/bin inside this systemd" in_systemd mount -t tmpfs -o mode=0755 sysctr-usrlocal /usr/local/bin
assert_eq "$(grep -c sysctr-usrlocal /proc/self/mountinfo)" 0 "  ... not seen on the host"
t0=$(now_ms)
if sysctr_t 150 install --system --now --privileged --tls-verify=false --name=etcd \
	--set "ETCD_NAME=etcd" --set "ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:$P" \
	--set "ETCD_ADVERTISE_CLIENT_URLS=http://127.0.0.1:$P" --set "ETCD_LISTEN_PEER_URLS=http://127.0.0.1:$PP" \
	--set "ETCD_INITIAL_ADVERTISE_PEER_URLS=http://127.0.0.1:$PP" --set "ETCD_INITIAL_CLUSTER=etcd=http://127.0.0.1:$PP" \
	"$REG/etcd:v1" >"$TEST_TMPDIR/etcd.out" 2>&1; then
	pass "etcd in atomic's form: install --now --privileged (settled after $(( $(now_ms) - t0 )) ms)"
else
	fail "etcd in atomic's form: install --now --privileged"; diag_file "$TEST_TMPDIR/etcd.out"
	fail_with_journal "etcd journal" -u etcd.service
fi
assert_eq "$(prop etcd.service ActiveState)" active "etcd.service is active"
ok "etcdctl put through its --set port" etcdctl_ put /compat/k atomic-form
assert_eq "$(etcdctl_ get /compat/k --print-value-only 2>&1)" atomic-form "etcdctl get"
assert_match "$(systemd_journal -u etcd.service)" "warning: .*(options that mean nothing|platform)|serving insecure client requests" \
	"etcd's own lines in its journal"
assert_eq "$(in_systemd test -x /usr/local/bin/etcdctl && echo yes)" yes "hostfs etcdctl (17 MB) on the host as /usr/local/bin/etcdctl"

# -------------------------------------------------------------- flannel ----
out=$(sysctr_t 150 install --system --now --privileged --tls-verify=false --name=flannel "$REG/flannel:v1" 2>&1); rc=$?
assert_ne "$rc" 0 "flannel asking for CAP_NET_ADMIN, which this systemd lacks: refused at install"
assert_match "$(tail -n1 <<<"$out")" "CAP_NET_ADMIN is not in this system's bounding set" "  ... saying so (the shim's check)"
t0=$(now_ms)
if sysctr_t 150 install --system --now --privileged --tls-verify=false --name=flannel \
	--set "FLANNELD_ETCD_ENDPOINTS=http://127.0.0.1:$P" "$REG/flannel:noadmin" >"$TEST_TMPDIR/flannel.out" 2>&1; then
	pass "flannel in atomic's form: install --now --privileged (ready after $(( $(now_ms) - t0 )) ms)"
else
	fail "flannel in atomic's form: install --now --privileged"; diag_file "$TEST_TMPDIR/flannel.out"
	fail_with_journal "flannel journal" -u flannel.service
fi
assert_eq "$(prop flannel.service ActiveState)/$(prop flannel.service Type)/$(prop flannel.service NotifyAccess)" \
	active/notify/all "flannel.service active: Type=notify, NotifyAccess=all"
assert_match "$(systemd_journal -u flannel.service)" "flanneld-run: ready" "  ... ready through systemd-notify --ready inside the container"
assert_eq "$(etcdctl_ get /atomic.io/network/config --print-value-only 2>&1)" '{"Network": "10.1.0.0/16"}' \
	"flannel wrote its network into etcd"
assert_eq "$(in_systemd cat /etc/systemd/system/docker.service.d/flannel.conf 2>&1 | tail -n1)" \
	"Environment=FLANNEL_SUBNET=10.1.7.1/24" "  ... and a drop-in for docker.service on the host"
assert_eq "$(in_systemd test -d /etc/flanneld && echo dir)" dir "the empty hostfs directory exists (a bind source)"
ok "stop flannel" in_systemctl stop flannel.service
assert_eq "$(in_systemd test -e /etc/systemd/system/docker.service.d/flannel.conf && echo there || echo gone)" gone \
	"ExecStopPost= removed the drop-in"

# ------------------------------------------------ refused, reported ----
out=$(sysctr_t 60 install --system --privileged --tls-verify=false "$REG/vport:v1" 2>&1); rc=$?
assert_ne "$rc" 0 "a config naming a device this host lacks: refused at install"
assert_match "$out" "linux.devices\\[0\\]: /dev/vport2p1 on this host: No such file or directory" "  ... naming it"
assert_eq "$(in_systemd test -e /etc/systemd/system/vport.service && echo there || echo none)" none "  ... nothing installed"
out=$(SYSCTR_SETTLE_MS=3000 sysctr_t 60 install --system --now --tls-verify=false "$REG/dies:v1" 2>&1); rc=$?
assert_ne "$rc" 0 "install --now of a service that dies a second after starting: fails"
assert_match "$out" "dies-v1.service did not stay up" "  ... saying so"
assert_match "$out" "dies: giving up" "  ... with its last journal lines"
sysctr_t 60 uninstall dies >/dev/null 2>&1
# linux.resources -> unit directives
ok "an image with linux.resources.memory.limit installs" sysctr_t 60 install --system --privileged --tls-verify=false --name=mem "$REG/mem:v1"
assert_eq "$(in_systemd grep '^MemoryMax=' /etc/systemd/system/mem.service 2>&1)" MemoryMax=33554432 "  ... MemoryMax= in its unit"
diag "systemd reads it as MemoryMax=$(prop mem.service MemoryMax) (cgroup v1 here: memory.limit_in_bytes is what would apply)"
if in_systemd sh -c 'test -w /sys/fs/cgroup/memory/system.slice 2>/dev/null || test -w /sys/fs/cgroup/system.slice/memory.max 2>/dev/null'; then
	ok "start it" in_systemctl start mem.service
	assert_match "$(in_systemd cat /sys/fs/cgroup/system.slice/mem.service/memory.max /sys/fs/cgroup/memory/system.slice/mem.service/memory.limit_in_bytes 2>/dev/null)" \
		'33554432' "  ... enforced on the unit's cgroup"
else
	skip "MemoryMax= enforced on the unit's cgroup" "no writable memory controller in this systemd (cgroup v1 controllers are read-only in nspawn here)"
fi
sysctr_t 60 uninstall mem >/dev/null 2>&1

# -------------------------------------------- a runc spec bundle, as a unit --
B=$SYSCTR_PREFIX/compat-runcspec-$$   # the prefix is bound into the systemd at the same path
cleanup_push rm -rf "$B"
mkdir -p "$B/rootfs"/{proc,dev,sys} && cp "${SYSCTR_BUILDDIR:-/nonexistent}/tests/shim/sysctr-probe" "$B/rootfs/" 2>/dev/null ||
	cp "$(command -v busybox)" "$B/rootfs/sysctr-probe"
(cd "$B" && runc spec) && jq '.process.args = ["/sysctr-probe", "report"]' "$B/config.json" >"$B/c" && mv "$B/c" "$B/config.json"
in_systemd systemd-run --quiet --wait --collect --unit=runcspec -p Type=exec "$SYSCTR_SHIM" --bundle="$B" --name=runcspec >/dev/null 2>&1
assert_match "$(systemd_journal -u runcspec.service)" "hostname=runc" "runc spec's bundle (args changed) runs as a unit under the shim"
assert_match "$(systemd_journal -u runcspec.service)" "process.terminal: true ignored" "  ... without a terminal, saying so"

for n in flannel etcd; do sysctr_t 60 uninstall --purge "$n" >/dev/null 2>&1; done
assert_eq "$(in_systemd test -e /etc/flanneld && echo there || echo gone)" gone "uninstall removed /etc/flanneld (made by sysctr, empty)"
done_testing
