#!/bin/bash
# Early boot, proven: an OS tree assembled offline with `sysctr --root=TREE
# install --system` boots its infrastructure from system containers, with
# nothing run by hand after boot and no sysctr command at all.
#
# TREE gets, installed offline from OCI layouts:
#   bootprep  a one-shot boot task (org.sysctr.type=oneshot,
#             org.sysctr.target=sysinit.target): writes a token under
#             /run/bootprep (bound from the host) that reader needs
#   reader    requires bootprep.service (labels); prints the token it reads
#   badprep   a boot task that fails, and needsbad, which requires it
#   etcd      atomic form (Type=notify, hostfs config in /etc/etcd)
#   flannel   the dependent, After=/Requires=etcd.service: writes into etcd
#   greeter   socket-activated (org.sysctr.socket)
#   netwait   org.sysctr.network-online=true: waits for network-online.target
# and /var/lib/sysctr lives on a mount of its own (a .mount unit of the tree,
# bound from a separate directory), so the container units wait for it.
#
# Boot 1 (nspawn --volatile=yes -D /, the tree's /etc dirs, /var and a
# seeded machine-id bound in): everything comes up in order; then the
# systemd is stopped and its journal, kept in the tree, shows the dependent
# stopped before etcd and no SIGKILL.
# Boot 2: the same tree with the store's mount failing: the containers fail
# for that reason, none half-started.
# shellcheck disable=SC2016  # single-quoted $ in unit/shell text is meant literally

LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)
# shellcheck source=../lib/libtest.sh
. "$LIB/libtest.sh"
# shellcheck source=../lib/registry.sh
. "$LIB/registry.sh"
# shellcheck source=../lib/images.sh
. "$LIB/images.sh"
# shellcheck source=../lib/nspawn.sh
. "$LIB/nspawn.sh"
# shellcheck source=e2e-images.sh
. "$(dirname "${BASH_SOURCE[0]}")/e2e-images.sh"

require_root
require_cmd systemd-nspawn nsenter umoci jq curl python3 dpkg-deb etcdctl busybox systemd-id128

SYSCTR_BIN=${SYSCTR_BIN:-${SYSCTR_PREFIX:-}/bin/sysctr}
[[ -n "${SYSCTR_PREFIX:-}" && -x "$SYSCTR_BIN" ]] ||
	skip_all "no installed sysctr (SYSCTR_PREFIX=${SYSCTR_PREFIX:-unset}); run scripts/test.sh or meson install first"
SOCKSERVE=$(sockserve_path) || bail_out "cannot build sockserve"

prop() { in_systemctl show -p "$2" --value "$1" 2>/dev/null; }
mono() { local v; v=$(prop "$1" "$2"); echo "${v:-0}"; }
etcd_get() { ETCDCTL_API=3 etcdctl --dial-timeout=3s --command-timeout=5s --endpoints "127.0.0.1:$1" get --print-value-only "$2"; }
sock_line() { timeout 10 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && head -n1 <&3' _ "$1"; }

ETCD_PORT=$(alloc_port) ETCD_PEER_PORT=$(alloc_port) SOCK_PORT=$(alloc_port) || bail_out "alloc_port"
KEY=/sysctr-boot/flannel/config
TOKEN=boot-$TEST_RUN_ID

# ------------------------------------------------------------------ images ---
ok "build the boot task (oneshot, before sysinit.target) and the service that needs it" \
	build_boot_task_images v1 "$TOKEN"
ok "build a boot task that fails" build_busybox_image badprep v1 "" --config.cmd=-c \
	--config.cmd='echo badprep cannot prepare; exit 3' \
	--config.label=org.sysctr.type=oneshot --config.label=org.sysctr.target=sysinit.target
ok "build the service that needs it" build_busybox_image needsbad v1 "" --config.cmd=-c \
	--config.cmd='echo needsbad ran; exec sleep 100000' \
	--config.label=org.sysctr.requires=badprep.service --config.label=org.sysctr.after=badprep.service
ok "build the atomic-format etcd image" build_atomic_etcd_image etcd v1
ok "build the dependent (After=/Requires=etcd.service)" \
	build_flannel_image flannel v1 "http://127.0.0.1:$ETCD_PORT" "$KEY"
ok "build the socket-activated image" build_greeter_image greeter v1 "$SOCKSERVE" "$TOKEN"
ok "build an image that waits for the network (org.sysctr.network-online=true)" \
	build_busybox_image netwait v1 "" --config.cmd=-c --config.cmd='exec sleep 100000' \
	--config.label=org.sysctr.network-online=true

# the boot task of sysctr-image(5) that loads kernel modules: CAP_SYS_MODULE,
# the host's /lib/modules read-only, a filter that allows finit_module. It is
# installed (into a scratch root: this kernel has no module support), not
# booted: refused without a grant, naming what it asks; installed with the
# grant the man page gives
MODSEC=$(jq -c '.syscalls |= map(.names -= ["finit_module", "init_module"])
	| .syscalls += [{"names": ["finit_module", "init_module"], "action": "SCMP_ACT_ALLOW"}]' "$SYSCTR_SRCDIR/data/seccomp.json")
MODS='{"destination": "/lib/modules", "type": "bind", "source": "/lib/modules", "options": ["rbind", "ro"]}'
MR=$TEST_TMPDIR/modroot; mkdir -p "$MR/etc"
# its template: what sysctr derives for a plain image (locked down), plus
# exactly those three
"$SYSCTR_BIN" --root="$MR" install --system --name=base "$(image_ref netwait v1)" >/dev/null 2>&1
mkdir -p "$TEST_TMPDIR/x/modload/exports"
jq --argjson sec "$MODSEC" --argjson m "$MODS" 'del(.annotations) | .hostname = "$NAME"
	| .process.args = ["/bin/sh", "-c", "modprobe -a $MODULES"] | .mounts += [$m] | .linux.seccomp = $sec
	| .process.capabilities |= with_entries(.value += ["CAP_SYS_MODULE"])' \
	"$MR/var/lib/sysctr/containers/base.0/config.json" >"$TEST_TMPDIR/x/modload/exports/config.json.template"
ok "build the module-loading boot task of sysctr-image(5)" build_busybox_image modload v1 "$TEST_TMPDIR/x/modload" \
	--config.cmd=-c --config.cmd=true --config.label=org.sysctr.type=oneshot \
	--config.label=org.sysctr.target=sysinit.target --config.label=org.sysctr.default.MODULES=br_netfilter
out=$("$SYSCTR_BIN" --root="$MR" install --system --name=modules-load "$(image_ref modload v1)" 2>&1); rc=$?
if (( rc != 0 )) && grep -q 'CAP_SYS_MODULE' <<<"$out" && grep -q '/lib/modules' <<<"$out" &&
	[[ ! -e $MR/etc/systemd/system/modules-load.service ]]; then
	pass "the module loader is refused without a grant, naming CAP_SYS_MODULE and /lib/modules"
else fail "the module loader is refused without a grant, naming what it asks (rc $rc)"; diag "$out"; fi
out=$("$SYSCTR_BIN" --root="$MR" install --system --allow=capabilities,host-mounts --name=modules-load "$(image_ref modload v1)" 2>&1)
assert_eq "$?/$(grep -E '^Type=' "$MR/etc/systemd/system/modules-load.service" 2>/dev/null)" 0/Type=oneshot \
	"  ... and installed with --allow=capabilities,host-mounts, as a oneshot" || diag "$out"

# ---------------------------------------------------------- the offline tree ---
TREE=$TEST_TMPDIR/tree STORE=$TEST_TMPDIR/store
mkdir -p "$TREE/etc" "$TREE/var/log/journal"
systemd-id128 new >"$TREE/etc/machine-id"
sc() { "$SYSCTR_BIN" --root="$TREE" "$@"; }
ok "install the boot task into the tree" sc install --system --privileged --name=bootprep "$(image_ref bootprep v1)"
ok "install reader" sc install --system --privileged --name=reader "$(image_ref reader v1)"
ok "install the failing boot task" sc install --system --name=badprep "$(image_ref badprep v1)"
ok "install the service that needs it" sc install --system --name=needsbad "$(image_ref needsbad v1)"
ok "install etcd (atomic form)" sc install --system --privileged --name=etcd \
	--set "ETCD_PORT=$ETCD_PORT" --set "ETCD_PEER_PORT=$ETCD_PEER_PORT" "$(image_ref etcd v1)"
ok "install the dependent" sc install --system --name=flannel "$(image_ref flannel v1)"
ok "install the socket-activated service" sc install --system --name=greeter --set "PORT=$SOCK_PORT" "$(image_ref greeter v1)"
ok "install the network-online service" sc install --system --name=netwait "$(image_ref netwait v1)"

U=$TREE/etc/systemd/system
assert_eq "$(grep -E '^(Type|RemainAfterExit|Restart|DefaultDependencies)=' "$U/bootprep.service" | sort | tr '\n' ' ')" \
	"DefaultDependencies=no RemainAfterExit=yes Restart=no Type=oneshot " \
	"the boot task's unit: Type=oneshot, RemainAfterExit=yes, Restart=no, DefaultDependencies=no"
assert_match "$(grep -E '^(Before|WantedBy)=' "$U/bootprep.service" | tr '\n' ' ')" 'Before=sysinit.target.*WantedBy=sysinit.target' \
	"  ... Before= and WantedBy=sysinit.target"
assert_eq "$(grep -c '^After=systemd-tmpfiles-setup.service$' "$U/bootprep.service")" 1 \
	"  ... and After=systemd-tmpfiles-setup.service (its bind source /run/bootprep is a tmpfiles.d entry)"
assert_eq "$(grep -cE '^After=network-online.target$|^Wants=network-online.target$' "$U/netwait.service")" 2 \
	"org.sysctr.network-online=true: Wants= and After=network-online.target"
assert_eq "$(grep -l 'network-online' "$U"/*.service | xargs -n1 basename | tr '\n' ' ')" "netwait.service " \
	"  ... and no other unit waits for the network"
# the units need the shim, their files and systemd: no sysctr command
ok "no unit of the tree runs the sysctr command" \
	sh -c "! grep -h '^Exec' $U/*.service $U/*.socket | grep -v '$SYSCTR_PREFIX/libexec/sysctr/sysctr-shim' | grep -q sysctr"

# /var/lib/sysctr on a mount of its own: the store moves to STORE, bound
# into the booted system at /srv/sysctr-store and mounted by a unit of the tree
mv "$TREE/var/lib/sysctr" "$STORE" && mkdir "$TREE/var/lib/sysctr"
cat >"$U/var-lib-sysctr.mount" <<EOF
[Unit]
Description=The sysctr store, on a mount of its own

[Mount]
What=/srv/sysctr-store
Where=/var/lib/sysctr
Type=none
Options=bind
EOF
assert_match "$(grep '^RequiresMountsFor=' "$U/etcd.service")" '/var/lib/sysctr/containers/etcd.0' \
	"container units carry RequiresMountsFor= of their deployment"

# --------------------------------------------------------------- boot 1 ------
nspawn_tree_binds "$TREE" "$STORE:/srv/sysctr-store"
if ! nspawn_boot "sysctr-boot-$TEST_RUN_ID"; then
	fail_with_journal "the tree boots"; bail_out "no boot"
fi
pass "the tree boots ($NSPAWN_STATE, ${NSPAWN_BOOT_MS} ms to is-system-running)"
diag "TIME boot 1: ${NSPAWN_BOOT_MS} ms"
assert_eq "$(in_systemd findmnt -n -o TARGET /var/lib/sysctr)" /var/lib/sysctr "/var/lib/sysctr is a mount of its own"
assert_match "$(prop etcd.service RequiresMountsFor)" '/var/lib/sysctr' "  ... and etcd.service waits for it"

wait_until 60 eval '[[ $(in_systemctl is-active etcd.service flannel.service reader.service netwait.service greeter.socket | sort -u) == active ]]'
for u in bootprep.service reader.service etcd.service flannel.service netwait.service greeter.socket; do
	assert_eq "$(in_systemctl is-active "$u")" active "$u is active after boot, started by systemd alone" ||
		fail_with_journal "$u" -u "$u"
done
assert_eq "$(in_systemd cat /run/bootprep/runs 2>&1)" ran "the boot task ran once"
assert_eq "$(prop bootprep.service Result)/$(prop bootprep.service ExecMainStatus)" success/0 "  ... and succeeded"
bp_exit=$(mono bootprep.service ExecMainExitTimestampMonotonic)
sysinit=$(mono sysinit.target ActiveEnterTimestampMonotonic)
rd_start=$(mono reader.service ExecMainStartTimestampMonotonic)
if (( bp_exit > 0 && bp_exit <= sysinit && bp_exit <= rd_start )); then
	pass "the boot task finished before sysinit.target and before the service that needs it ($bp_exit <= $sysinit, $rd_start)"
else fail "the boot task finished before sysinit.target and its dependent ($bp_exit, $sysinit, $rd_start)"; fi
assert_match "$(systemd_journal -u reader.service)" "reader got $TOKEN" "the dependent read what the boot task prepared"

# a boot task that fails fails what requires it, and the boot goes on
assert_eq "$(in_systemctl is-active badprep.service)/$(prop badprep.service ExecMainStatus)" failed/3 \
	"the failing boot task failed (exit 3)"
jl=$(systemd_journal -u needsbad.service)
if [[ $(in_systemctl is-active needsbad.service) != active ]] && grep -q 'Dependency failed' <<<"$jl" &&
	! grep -q 'needsbad ran' <<<"$jl"; then
	pass "the service that requires it did not start ($(grep -m1 'Dependency failed' <<<"$jl" | sed 's/.*: //'))"
else fail "the service that requires the failed boot task did not start"; diag "$jl"; fi

etcd_ready=$(mono etcd.service ActiveEnterTimestampMonotonic)
fl_start=$(mono flannel.service ExecMainStartTimestampMonotonic)
if (( etcd_ready > 0 && etcd_ready <= fl_start )); then pass "etcd was ready (Type=notify) before the dependent started"
else fail "etcd was ready before the dependent started ($etcd_ready, $fl_start)"; fi
assert_eq "$(prop flannel.service NRestarts)" 0 "  ... which started once"
wait_until 10 eval '[[ -n "$(etcd_get "$ETCD_PORT" "$KEY" 2>/dev/null)" ]]'
assert_match "$(etcd_get "$ETCD_PORT" "$KEY" 2>&1)" '^[0-9a-f-]{36}$' "the dependent wrote into etcd"

assert_eq "$(in_systemctl is-active greeter.service)" inactive "greeter.service waits for its first connection"
assert_match "$(sock_line "$SOCK_PORT" 2>&1)" "^sockserve pid=[0-9]+ conn=1 $TOKEN\$" "the socket listens and activates the container"
assert_eq "$(prop netwait.service After | tr ' ' '\n' | grep -c '^network-online.target$')" 1 \
	"netwait is ordered after network-online.target, and the boot did not hang on it"

units=$(cd "$U" && ls bootprep.service reader.service etcd.service flannel.service greeter.service greeter.socket netwait.service badprep.service needsbad.service)
out=$(in_systemd sh -c "cd /etc/systemd/system && systemd-analyze verify $(echo "$units" | tr '\n' ' ')" 2>&1)
if [[ -z "$out" ]]; then pass "systemd-analyze verify: clean"; else fail "systemd-analyze verify: clean"; diag "$out"; fi

# shutdown mirrors boot: the dependent stops before etcd, nothing is killed
ok "the booted systemd powers off" nspawn_teardown
J=$TREE/var/log/journal
jr() { journalctl -D "$J" -o short-monotonic --no-pager "$@" 2>/dev/null; }
fl_stop=$(jr -u flannel.service | grep -n 'Stopped\|Deactivated successfully' | tail -n1 | cut -d: -f1)
stop_order=$(jr | grep -E 'Stopped .*(flannel|etcd)|(flannel|etcd)\.service: Deactivated successfully' | sed -E 's/.*(flannel|etcd).*/\1/' | uniq | tr '\n' ' ')
diag "stop order in the journal: $stop_order (flannel's last line $fl_stop)"
assert_match "$stop_order" '^flannel etcd' "at shutdown the dependent stopped before etcd"
kills=$(jr | grep -E 'Killing process|SIGKILL|State .stop-sigterm. timed out' | grep -E 'etcd|flannel|reader|netwait|greeter|bootprep')
if [[ -z "$kills" ]]; then pass "every container exited within its timeout (no SIGKILL in the journal)"
else fail "every container exited within its timeout"; diag "$kills"; fi

# --------------------------------------------------------------- boot 2 ------
# the store's disk does not show up (what an fstab line with
# x-systemd.device-timeout=3s gives): its mount fails, and the containers
# fail for that reason, none started. (A missing bind source would not do:
# systemd creates the source directory of a bind mount.)
nspawn_tree_binds "$TREE"
DISK=/dev/disk/by-label/sysctr-gone-$TEST_RUN_ID
sed -i -e "s|^What=.*|What=$DISK|" -e 's|^Type=.*|Type=ext4|' -e '/^Options=/d' "$U/var-lib-sysctr.mount"
DEV=$(systemd-escape -p --suffix=device "$DISK")
mkdir -p "$U/$DEV.d" && printf '[Unit]\nJobRunningTimeoutSec=3s\n' >"$U/$DEV.d/timeout.conf"
if nspawn_boot "sysctr-boot2-$TEST_RUN_ID"; then
	pass "the tree boots with the store's mount failing ($NSPAWN_STATE)"
	assert_eq "$(in_systemctl is-active var-lib-sysctr.mount)" failed "var-lib-sysctr.mount failed" ||
		diag "$(in_systemctl status var-lib-sysctr.mount 2>&1 | head -20; in_systemd findmnt /var/lib/sysctr; in_systemd cat /etc/systemd/system/var-lib-sysctr.mount)"
	for u in etcd.service reader.service; do
		st=$(in_systemctl is-active "$u"); res=$(prop "$u" Result)
		jl=$(systemd_journal -u "$u")
		if [[ $st != active ]] && grep -q 'Dependency failed' <<<"$jl"; then
			pass "$u did not start, for the failed mount ($st: $(grep -m1 'Dependency failed' <<<"$jl" | sed 's/.*: //'))"
		else fail "$u did not start for the failed mount ($st, $res)"; diag "$jl"; fi
	done
	assert_eq "$(in_systemd sh -c 'ls /var/lib/sysctr | wc -l')" 0 "  ... and nothing of the store was touched"
	ok "powers off" nspawn_teardown
else
	fail "the tree boots with the store's mount failing"
fi

done_testing
