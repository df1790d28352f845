#!/bin/bash
# shellcheck disable=SC2154 # time_ms sets the variable it is given by name
# sysctr-shim as the ExecStart of plain units in a real booted systemd
# (systemd-nspawn, tests/lib/nspawn.sh): readiness, socket activation, stop,
# restart, exit status, cgroup placement, systemctl kill, MemoryMax=, the
# journal, fds leaking from the service manager, masked paths. The payload is
# the static probe (tests/probe/probe.c) in a rootfs of its own. TAP.
#
# The shim and the probe come from the build dir (SYSCTR_SHIM_EXE,
# SYSCTR_PROBE) and are copied under TEST_TMPDIR, which nspawn binds at the
# same path, so the units name them by their host paths.
# shellcheck disable=SC2016  # $1 in in_systemd_sh scripts is expanded inside

LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/libtest.sh
. "$LIB/libtest.sh"
# shellcheck source=../lib/nspawn.sh
. "$LIB/nspawn.sh"

require_root
require_cmd systemd-nspawn nsenter python3
SHIM_EXE=${SYSCTR_SHIM_EXE:-${SYSCTR_BUILDDIR:-.}/src/shim/sysctr-shim}
PROBE_EXE=${SYSCTR_PROBE:-${SYSCTR_BUILDDIR:-.}/tests/shim/sysctr-probe}
[[ -x $SHIM_EXE && -x $PROBE_EXE ]] || skip_all "shim or probe not built ($SHIM_EXE, $PROBE_EXE)"

BIN=$TEST_TMPDIR/bin
mkdir -p "$BIN"
cp "$SHIM_EXE" "$BIN/sysctr-shim"
SHIM=$BIN/sysctr-shim
U=shimlive   # unit name prefix

# bundle NAME PROBE-ARGS...   a bundle under TEST_TMPDIR running the probe
bundle() {
	local name=$1; shift
	local b=$TEST_TMPDIR/bundles/$name
	mkdir -p "$b/rootfs"/{proc,dev,sys,run,tmp}
	cp "$PROBE_EXE" "$b/rootfs/sysctr-probe"
	python3 "$HERE/make-config.py" "$@" >"$b/config.json"
	echo "$b"
}

# unit NAME BUNDLE [SERVICE-LINES...]   /etc/systemd/system/NAME.service running the shim
unit() {
	local name=$1 b=$2; shift 2
	{
		printf '[Unit]\nDescription=sysctr-shim live test %s\n\n[Service]\n' "$name"
		printf 'ExecStart=%s --bundle=%s --name=%s\n' "$SHIM" "$b" "$name"
		printf '%s\n' "$@"
	} | nspawn_put "/etc/systemd/system/$name.service"
}

reload() { in_systemctl daemon-reload; }
prop() { in_systemctl show -p "$2" --value "$1.service"; }
state() { in_systemctl is-active "$1.service"; }

# children PID: the pids whose parent is PID (inside the booted systemd)
children() { in_systemd_sh 'cat /proc/$1/task/*/children 2>/dev/null' "$1" | tr -s ' \n' '\n' | sed '/^$/d'; }
# payload NAME: the probe's pid (shim = MainPID -> init -> payload)
payload() {
	local main init
	main=$(prop "$1" MainPID)
	[[ -n $main && $main != 0 ]] || return 1
	init=$(children "$main" | head -n1)
	[[ -n $init ]] || return 1
	children "$init" | head -n1
}
# cgroup_procs NAME: every pid in the unit's cgroup (the name=systemd hierarchy)
cgroup_procs() {
	local cg
	cg=$(prop "$1" ControlGroup)
	in_systemd_sh 'for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
		[ -r "$h$1/cgroup.procs" ] && { cat "$h$1/cgroup.procs"; exit 0; }; done; exit 1' "$cg"
}

nspawn_boot || bail_out "the nspawn systemd did not boot"
diag "nspawn systemd up in ${NSPAWN_BOOT_MS} ms ($NSPAWN_STATE)"

# ---- Type=notify: active only after READY=1; NotifyAccess=main (default) ------
b=$(bundle notify sleep-notify 2 "STATUS=probe is ready" READY=1 MAINPID=1)
unit $U-notify "$b" Type=notify TimeoutStartSec=30
reload
t0=$(now_ms)
in_systemctl start --no-block $U-notify.service
sleep 0.8
assert_eq "$(state $U-notify)" activating "Type=notify: 'activating' while the payload has not sent READY=1"
ok_or_journal "Type=notify: active after READY=1" systemd_wait_active $U-notify.service 20
ready_ms=$(( $(now_ms) - t0 ))
(( ready_ms >= 1900 )) && pass "ready after the payload's 2 s delay (${ready_ms} ms)" ||
	fail "ready after the payload's 2 s delay (${ready_ms} ms: too early)"
assert_eq "$(prop $U-notify NotifyAccess)" main "NotifyAccess is the default 'main'"
assert_eq "$(prop $U-notify StatusText)" "probe is ready" "STATUS= relayed to systemd"
main=$(prop $U-notify MainPID)
assert_eq "$(in_systemd cat /proc/"$main"/comm)" sysctr-shim "MainPID is the shim (the payload's MAINPID=1 was not relayed)"
in_systemctl stop $U-notify.service

# ---- systemd's own watchdog through the relay (WatchdogSec=) -----------------
# 10 pings at 300 ms keep a 1 s watchdog happy for 3 s; then silence, and
# systemd must end and restart the service (the shim relays WATCHDOG=1)
b=$(bundle wd watchdog 10)
unit $U-wd "$b" Type=notify WatchdogSec=1 Restart=on-watchdog TimeoutStartSec=30
reload
t0=$(now_ms)
ok_or_journal "Type=notify with WatchdogSec=1: started" in_systemctl start $U-wd.service
sleep 2
assert_eq "$(state $U-wd)/$(prop $U-wd NRestarts)" active/0 "WATCHDOG=1 relayed: still up 2 s in (2x WatchdogSec)"
wait_until 15 eval '[[ $(prop $U-wd NRestarts) -ge 1 ]]'
wd_ms=$(( $(now_ms) - t0 ))
assert_eq "$(prop $U-wd NRestarts)" 1 "when the pings stop, systemd's watchdog restarts it (${wd_ms} ms)"
assert_match "$(systemd_journal -u $U-wd.service)" 'Watchdog timeout' "  ... for a watchdog timeout"
in_systemctl stop $U-wd.service

# ---- socket activation --------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
b=$(bundle sock accept)
printf '[Socket]\nListenStream=127.0.0.1:%s\n' "$port" | nspawn_put /etc/systemd/system/$U-sock.socket
# the service leaks fds 7 and 9 (no CLOEXEC) into the shim, as a careless
# ExecStart wrapper would: only 0-2 and the socket may reach the payload
{
	printf '[Service]\nExecStart=/bin/sh -c "exec 7</dev/null 9<>/run/%s-leak; exec %s --bundle=%s --name=%s-sock"\n' \
		"$U" "$SHIM" "$b" "$U"
} | nspawn_put /etc/systemd/system/$U-sock.service
reload
ok_or_journal "socket unit starts" in_systemctl start $U-sock.socket
assert_eq "$(state $U-sock)" inactive "service inactive until the first connection"
reply=$(python3 -c "
import socket
s = socket.create_connection(('127.0.0.1', $port), timeout=10); s.settimeout(10)
print(s.recv(600).decode().strip())" 2>&1)
assert_match "$reply" '^hello from pid 2 ' "the payload answered on the passed fd: '$reply'"
assert_match "$reply" 'sd_listen_fds=1 ' "LISTEN_PID is the payload's pid as it sees it (sd_listen_fds()=1)"
assert_match "$reply" 'fds=0,1,2,3$' "fds leaked into the shim beyond LISTEN_FDS are closed in the payload"
wait_until 10 eval '[[ $(state $U-sock) != active ]]'
assert_eq "$(prop $U-sock Result)" success "service ran to a clean exit (Result=success)"
in_systemctl stop $U-sock.socket

# ---- systemctl stop: at once, inactive not failed --------------------------------
b=$(bundle sleeper sleep 3600)
unit $U-stop "$b"
reload
in_systemctl start $U-stop.service
wait_until 10 payload $U-stop
time_ms stop_ms in_systemctl stop $U-stop.service
(( stop_ms < 2000 )) && pass "systemctl stop finished in ${stop_ms} ms (< 2 s)" ||
	fail_with_journal "systemctl stop finished in ${stop_ms} ms (< 2 s)" -u $U-stop.service
assert_eq "$(state $U-stop)" inactive "stopped unit is inactive"
assert_eq "$(prop $U-stop Result)" success "stop by SIGTERM counts as clean (Result=success, not failed)"

# ---- cgroup placement; systemctl kill reaches every process ---------------------
in_systemctl start $U-stop.service
wait_until 10 payload $U-stop
p=$(payload $U-stop)
cg=$(prop $U-stop ControlGroup)
pcg=$(in_systemd cat /proc/"$p"/cgroup)
assert_match "$pcg" "(name=systemd|0:):$cg" "payload's /proc/PID/cgroup is inside the unit's cgroup ($cg)"
procs=$(cgroup_procs $U-stop | sort -n | tr '\n' ' ')
main=$(prop $U-stop MainPID)
init=$(children "$main" | head -n1)
assert_eq "$procs" "$(printf '%s\n' "$main" "$init" "$p" | sort -n | tr '\n' ' ')" \
	"the unit's cgroup holds the shim, the init and the payload"
in_systemctl kill --signal=SIGSTOP $U-stop.service
stopped=0
for q in $procs; do
	[[ $(in_systemd awk '{print $3}' /proc/"$q"/stat) == T ]] && stopped=$((stopped + 1))
done
assert_eq "$stopped" 3 "systemctl kill --signal=SIGSTOP reached all 3 processes"
in_systemctl kill --signal=SIGCONT $U-stop.service
in_systemctl kill --signal=SIGKILL $U-stop.service
wait_until 10 eval '[[ -z $(cgroup_procs $U-stop) ]]'
assert_eq "$(cgroup_procs $U-stop)" "" "systemctl kill --signal=SIGKILL left no process in the cgroup"
in_systemctl reset-failed $U-stop.service 2>/dev/null

# ---- a shim that dies takes its container with it ---------------------------------
unit $U-orphan "$b" KillMode=process
reload
in_systemctl start $U-orphan.service
wait_until 10 payload $U-orphan
p=$(payload $U-orphan)
main=$(prop $U-orphan MainPID)
in_systemd kill -KILL "$main"
wait_until 10 eval "! in_systemd test -e /proc/$p"
ok "SIGKILL of the shim (KillMode=process) leaves no payload behind" eval "! in_systemd test -e /proc/$p"
in_systemctl stop $U-orphan.service 2>/dev/null; in_systemctl reset-failed $U-orphan.service 2>/dev/null

# ---- Restart=on-failure: SIGKILL of the payload brings it back ------------------
unit $U-restart "$b" Restart=on-failure RestartSec=100ms
reload
in_systemctl start $U-restart.service
wait_until 10 payload $U-restart
p1=$(payload $U-restart)
main1=$(prop $U-restart MainPID)
in_systemd kill -KILL "$p1"
wait_until 15 eval '[[ $(prop $U-restart NRestarts) -ge 1 ]] && payload $U-restart'
assert_eq "$(prop $U-restart NRestarts)" 1 "SIGKILL of the payload: systemd restarted the unit once"
ok "restarted: active again" systemd_wait_active $U-restart.service 10
p2=$(payload $U-restart)
main2=$(prop $U-restart MainPID)
[[ -n $p2 && $main2 != "$main1" ]] && pass "a new shim ($main1 -> $main2) and payload ($p1 -> $p2)" ||
	fail_with_journal "a new shim ($main1 -> $main2) and payload ($p1 -> $p2)" -u $U-restart.service
in_systemctl stop $U-restart.service

# ---- exit status ------------------------------------------------------------------
b=$(bundle exit3 exit 3)
unit $U-exit "$b"
reload
in_systemctl start $U-exit.service
wait_until 10 eval '[[ $(state $U-exit) == failed ]]'
assert_eq "$(state $U-exit)" failed "payload exit 3 -> unit failed"
assert_eq "$(prop $U-exit ExecMainStatus)" 3 "ExecMainStatus=3"
assert_eq "$(prop $U-exit Result)" exit-code "Result=exit-code"
in_systemctl reset-failed $U-exit.service

# ---- the journal has the payload's stdout under the unit ------------------------------
b=$(bundle printer print "probe-line-one $TEST_RUN_ID" "probe-line-two $TEST_RUN_ID")
unit $U-log "$b"
reload
in_systemctl start $U-log.service
wait_until 10 eval "systemd_journal -u $U-log.service | grep -q 'probe-line-two $TEST_RUN_ID'"
j=$(systemd_journal -u $U-log.service -o cat)
assert_contains "$j" "probe-line-one $TEST_RUN_ID" "journal -u shows the payload's first stdout line"
assert_contains "$j" "probe-line-two $TEST_RUN_ID" "journal -u shows the payload's second stdout line"
in_systemctl stop $U-log.service

# ---- masked paths stay masked (no CAP_SYS_ADMIN) ------------------------------------------
masked_paths="/proc/kcore /proc/keys /proc/timer_list /proc/acpi /sys/firmware"
for path in $masked_paths; do
	n=${path//\//-}
	b=$(bundle "unmask$n" unmask "$path")
	unit "$U-unmask$n" "$b" Type=oneshot
done
reload
for path in $masked_paths; do
	n=${path//\//-}
	in_systemctl start "$U-unmask$n.service"
	j=$(systemd_journal -u "$U-unmask$n.service" -o cat)
	if [[ $j == *"masked:$path=ENOENT"* ]]; then
		skip "$path: stays masked" "absent on this kernel (nothing to unmask)"
		continue
	fi
	assert_match "$j" "umount=EPERM" "$path: umount refused"
	assert_match "$j" "remount=EPERM" "$path: remount refused"
	assert_match "$j" "bind=EPERM" "$path: bind over it refused"
	assert_match "$j" "masked:$path=(devnull|emptydir)" "$path: still masked afterwards"
done

# ---- MemoryMax= ---------------------------------------------------------------------
b=$(bundle alloc alloc 96)
unit $U-mem "$b" MemoryMax=32M MemorySwapMax=0
reload
in_systemctl start $U-mem.service
sleep 1
cg=$(prop $U-mem ControlGroup)
limit=$(in_systemd_sh 'cat /sys/fs/cgroup/memory$1/memory.limit_in_bytes 2>/dev/null ||
	cat /sys/fs/cgroup/unified$1/memory.max 2>/dev/null || cat /sys/fs/cgroup$1/memory.max 2>/dev/null' "$cg")
if [[ $limit == 33554432 ]]; then
	wait_until 10 eval '[[ $(state $U-mem) != active ]]'
	assert_eq "$(state $U-mem)" failed "MemoryMax=32M: a payload touching 96 MiB is killed"
	diag "Result=$(prop $U-mem Result)"
else
	diag "memory controller inside: $(in_systemd_sh 'grep -E " /sys/fs/cgroup/(memory|unified) " /proc/self/mounts; cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null' | tr '\n' ';')"
	skip "MemoryMax= enforcement" "no writable memory controller (the unit's memory limit reads '${limit:-absent}')"
	assert_match "$(in_systemd cat /proc/"$(payload $U-mem)"/cgroup)" "$cg" \
		"the payload is in the unit's cgroup, where a memory limit would apply"
fi
in_systemctl stop $U-mem.service 2>/dev/null; in_systemctl reset-failed $U-mem.service 2>/dev/null

ok "teardown leaves nothing behind" nspawn_teardown
done_testing
