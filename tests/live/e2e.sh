#!/bin/bash
# End to end on a real booted systemd (issue 5): sysctr installs images built
# from real software, pulled from a real loopback registry, as system
# containers of a throw-away systemd (systemd-nspawn), and systemd runs them.
#
#   etcd         atomic-format image (/exports/...), Debian's etcd-server,
#                Type=notify, per-run ports via --set; default name "etcd"
#   etcd-native  native image (labels only: org.sysctr.notify=true), ports
#                baked into its Env at build time (images are built per run)
#   flannel      busybox image in flannel's role: labels After=/Requires=
#                etcd.service; on start it writes a fresh key into etcd over
#                etcd's v3 HTTP gateway and must succeed on its FIRST try
#   greeter      socket-activated: org.sysctr.socket label (127.0.0.1:$PORT),
#                payload = tests/live/sockserve (static, sd_listen_fds), no
#                busybox in the image
#   exit3        busybox `sh -c 'exit 3'`: the unit must end failed, status 3
#
# Scenario steps 1-6 of issue 5, each asserted; systemd-analyze verify of the
# generated units; uninstall + prune leave nothing behind.  One boot for the
# whole file.  TAP on stdout.  Timings go out as "# TIME ..." diagnostics.
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
require_cmd systemd-nspawn nsenter umoci skopeo docker-registry jq curl python3 dpkg-deb etcdctl busybox

T_START=$(now_ms)
SYSCTR_BIN=${SYSCTR_BIN:-${SYSCTR_PREFIX:-}/bin/sysctr}
[[ -n "${SYSCTR_PREFIX:-}" && -x "$SYSCTR_BIN" ]] ||
	skip_all "no installed sysctr (SYSCTR_PREFIX=${SYSCTR_PREFIX:-unset}); run scripts/test.sh or meson install first"
export SYSCTR_BIN
: "${SYSCTR_SHIM:=$SYSCTR_PREFIX/libexec/sysctr-shim}"
[[ -x "$SYSCTR_SHIM" ]] || skip_all "no installed shim at $SYSCTR_SHIM"

# sockserve: built by tests/live/meson.build; compiled here when run by hand
SOCKSERVE=$(sockserve_path) || bail_out "cannot build sockserve"

# ---------------------------------------------------------------- helpers ---
# sysctr install with the options every install here needs; bounded in time
# (a unit that never becomes ready would otherwise hold the job for 90 s)
install_now() { sysctr_t 150 install --system --tls-verify=false --now "$@"; }
# sysctr_t SECONDS ARGS...   in_sysctr with a time limit
sysctr_t() { local t=$1; shift; in_systemd timeout "$t" "$SYSCTR_BIN" "$@"; }

prop() { in_systemctl show -p "$2" --value "$1" 2>/dev/null; }

# unit_ok DESC UNIT    the unit is active, or fail with its journal
unit_active() {
	local st
	st=$(prop "$2" ActiveState)
	if [[ "$st" == active ]]; then pass "$1"; return 0; fi
	diag "$2: ActiveState=$st SubState=$(prop "$2" SubState) Result=$(prop "$2" Result)"
	fail_with_journal "$1" -u "$2"
}

# descendants PID      PID and every descendant (pids inside the booted systemd)
descendants() {
	in_systemd bash -c 'd() { local c; echo "$1"; for c in $(cat /proc/$1/task/*/children 2>/dev/null); do d "$c"; done; }; d "$1"' _ "$1"
}

# payload_pid UNIT COMM   the descendant of UNIT's main process named COMM
payload_pid() {
	local main p
	main=$(prop "$1" MainPID)
	[[ -n "$main" && "$main" != 0 ]] || return 1
	for p in $(descendants "$main"); do
		[[ "$(in_systemd cat "/proc/$p/comm" 2>/dev/null)" == "$2" ]] && { echo "$p"; return 0; }
	done
	return 1
}

# in_unit_cgroup PID UNIT   every hierarchy systemd manages (name=systemd, the
#   unified one) places PID in UNIT's cgroup (or below it)
in_unit_cgroup() {
	local lines line n=0
	lines=$(in_systemd cat "/proc/$1/cgroup") || return 1
	while IFS= read -r line; do
		case $line in
		0::*|*:name=systemd:*)
			n=$((n+1))
			[[ "${line#*:*:}" =~ /system\.slice/$2(/.*)?$ ]] || { echo "$line"; return 1; } ;;
		esac
	done <<<"$lines"
	(( n > 0 ))
}

etcd_get() { ETCDCTL_API=3 etcdctl --dial-timeout=3s --command-timeout=5s --endpoints "127.0.0.1:$1" get --print-value-only "$2"; }
etcd_put() { ETCDCTL_API=3 etcdctl --dial-timeout=3s --command-timeout=5s --endpoints "127.0.0.1:$1" put "$2" "$3"; }

# sock_line PORT      connect and print the one line the server answers
sock_line() { timeout 10 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && head -n1 <&3' _ "$1"; }

# mono UNIT PROP      a *TimestampMonotonic property as a number (0 if unset)
mono() { local v; v=$(prop "$1" "$2"); echo "${v:-0}"; }

step_t0=0
step() { step_t0=$(now_ms); diag "==== $*"; }
step_done() { diag "TIME $1: $(( $(now_ms) - step_t0 )) ms"; }

# ---------------------------------------------------------- registry, boot ---
registry_start || bail_out "registry did not start"
pass "registry on $REGISTRY_ADDR"

ETCD_PORT=$(alloc_port) ETCD_PEER_PORT=$(alloc_port)
NATIVE_PORT=$(alloc_port) NATIVE_PEER_PORT=$(alloc_port)
SOCK_PORT=$(alloc_port) || bail_out "alloc_port"
diag "ports: etcd $ETCD_PORT/$ETCD_PEER_PORT, etcd-native $NATIVE_PORT/$NATIVE_PEER_PORT, greeter $SOCK_PORT"

step "build and push images"
# (a) etcd, the atomic way
ok "build the atomic-format etcd image" build_atomic_etcd_image etcd latest &&
	ok "push etcd:latest" image_push etcd latest
# (a') etcd, the native way: labels, ports in the image's Env
ok "build the native etcd image (org.sysctr.notify=true)" build_etcd_image etcd-native latest \
	--config.env=ETCD_NAME=native \
	--config.env=ETCD_LISTEN_CLIENT_URLS="http://127.0.0.1:$NATIVE_PORT" \
	--config.env=ETCD_ADVERTISE_CLIENT_URLS="http://127.0.0.1:$NATIVE_PORT" \
	--config.env=ETCD_LISTEN_PEER_URLS="http://127.0.0.1:$NATIVE_PEER_PORT" \
	--config.env=ETCD_INITIAL_ADVERTISE_PEER_URLS="http://127.0.0.1:$NATIVE_PEER_PORT" \
	--config.env=ETCD_INITIAL_CLUSTER="native=http://127.0.0.1:$NATIVE_PEER_PORT" \
	--config.label=org.sysctr.notify=true &&
	ok "push etcd-native:latest" image_push etcd-native latest
# (b) the dependent, in flannel's role
ok "build the dependent busybox image (After=/Requires=etcd.service)" \
	build_flannel_image flannel latest "http://127.0.0.1:$ETCD_PORT" /sysctr-e2e/flannel/config &&
	ok "push flannel:latest" image_push flannel latest
# (c) socket-activated, no busybox
ok "build the socket-activated image (sockserve, org.sysctr.socket)" \
	build_greeter_image greeter latest "$SOCKSERVE" "e2e-$TEST_RUN_ID" &&
	ok "push greeter:latest" image_push greeter latest
# a payload that exits 3
ok "build the exit-3 busybox image" build_exit3_image exit3 latest &&
	ok "push exit3:latest" image_push exit3 latest
step_done "images built and pushed"

step "boot the throw-away systemd"
nspawn_boot || { fail_with_journal "boot nspawn systemd"; bail_out "no systemd"; }
pass "nspawn systemd is up ($NSPAWN_STATE, ${NSPAWN_BOOT_MS} ms)"
diag "TIME boot: ${NSPAWN_BOOT_MS} ms"

REG=$REGISTRY_ADDR

# =============================================================== step 1 ======
step "1. etcd (atomic image) with --now"
t0=$(now_ms)
ok_or_journal "sysctr install --system --now $REG/etcd:latest (name defaults to etcd)" \
	install_now --privileged --set "ETCD_PORT=$ETCD_PORT" --set "ETCD_PEER_PORT=$ETCD_PEER_PORT" "$REG/etcd:latest"
diag "TIME install --now etcd (pull + deploy + start until READY=1): $(( $(now_ms) - t0 )) ms"
unit="$(in_systemd cat /etc/systemd/system/etcd.service 2>/dev/null)"
assert_match "$(head -n1 <<<"$unit")" '^# sysctr: generated for container etcd' \
	"etcd.service written with sysctr's marker line"
assert_match "$(in_systemd head -n1 /etc/tmpfiles.d/sysctr-etcd.conf 2>&1)" '^# sysctr: generated for container etcd' \
	"tmpfiles.d/sysctr-etcd.conf written with the marker"
assert_eq "$(in_systemd readlink /var/lib/sysctr/containers/etcd 2>&1)" etcd.0 \
	"/var/lib/sysctr/containers/etcd -> etcd.0"
ok "deployment is a bundle (config.json, rootfs/, info.json)" \
	in_systemd test -f /var/lib/sysctr/containers/etcd.0/config.json -a -d /var/lib/sysctr/containers/etcd.0/rootfs \
	-a -f /var/lib/sysctr/containers/etcd.0/info.json
ok "hostfs file renamed to \$CONF_DIRECTORY/\$NAME/etcd.conf" in_systemd test -f /etc/etcd/etcd.conf
assert_eq "$(in_systemctl is-active etcd.service 2>&1)" active "systemctl is-active etcd" ||
	fail_with_journal "etcd.service journal (for the above)" -u etcd.service
assert_eq "$(in_systemctl is-enabled etcd.service 2>&1)" enabled "etcd.service is enabled"
assert_eq "$(prop etcd.service Type)" notify "etcd.service is Type=notify (template)"
assert_eq "$(prop etcd.service ActiveState)/$(prop etcd.service ExecMainStatus)/$(prop etcd.service NRestarts)" "active/0/0" \
	"etcd started on its first try"
ok "etcdctl put through 127.0.0.1:$ETCD_PORT" etcd_put "$ETCD_PORT" /sysctr-e2e/hello "run-$TEST_RUN_ID"
assert_eq "$(etcd_get "$ETCD_PORT" /sysctr-e2e/hello 2>&1)" "run-$TEST_RUN_ID" "etcdctl get returns it"
journal=$(systemd_journal -u etcd.service)
assert_match "$journal" 'etcdserver.*(ready to serve client requests|published .*to cluster)|ready to serve client requests' \
	"journalctl -u etcd shows etcd's own log lines"
assert_match "$journal" "serving insecure client requests on 127\.0\.0\.1:$ETCD_PORT" \
	"etcd serves on the port given with --set (journal)"
step_done "step 1 (atomic etcd)"

step "1b. etcd (native image: labels only)"
ok_or_journal "sysctr install --system --now $REG/etcd-native:latest" install_now "$REG/etcd-native:latest"
assert_eq "$(in_systemctl is-active etcd-native.service 2>&1)" active "systemctl is-active etcd-native" ||
	fail_with_journal "etcd-native.service journal (for the above)" -u etcd-native.service
assert_eq "$(prop etcd-native.service Type)" notify "org.sysctr.notify=true gives Type=notify"
assert_eq "$(prop etcd-native.service Restart)" on-failure "default template: Restart=on-failure"
assert_eq "$(prop etcd-native.service KillMode)" mixed "default template: KillMode=mixed"
ok "etcdctl put/get on the native etcd" bash -c "$(declare -f etcd_put etcd_get); etcd_put $NATIVE_PORT k native && [[ \$(etcd_get $NATIVE_PORT k) == native ]]"
assert_match "$(systemd_journal -u etcd-native.service)" 'ready to serve client requests' \
	"journalctl -u etcd-native shows etcd's own log lines"
# granted nothing: locked down, seen from the running payload
epid=$(payload_pid etcd-native.service etcd)
status=$(in_systemd cat "/proc/$epid/status" 2>/dev/null)
assert_eq "$(awk '/^Seccomp:/{print $2}' <<<"$status")" 2 "etcd-native runs under a seccomp filter (Seccomp: 2)"
assert_eq "$(awk '/^NoNewPrivs:/{print $2}' <<<"$status")" 1 "  ... with no_new_privs"
bnd=$(awk '/^CapBnd:/{print $2}' <<<"$status")
# CAP_MKNOD 27, CAP_NET_RAW 13, CAP_AUDIT_WRITE 29
assert_eq "$(( 0x$bnd & ((1<<27)|(1<<13)|(1<<29)) ))" 0 "  ... without CAP_MKNOD, CAP_NET_RAW, CAP_AUDIT_WRITE (CapBnd $bnd)"
assert_match "$(in_systemd awk '$5 == "/dev" {print $6}' "/proc/$epid/mountinfo" 2>/dev/null | tail -n1)" \
	'nodev' "  ... and a nodev /dev"
assert_eq "$(prop etcd-native.service DevicePolicy)" closed "the unit has DevicePolicy=closed"
if in_systemd test -w /sys/fs/cgroup/devices/system.slice/etcd-native.service/devices.allow 2>/dev/null; then
	ok "systemd enforces it on the unit's cgroup" in_systemd sh -c \
		'! grep -q "^a \*:\* rwm" /sys/fs/cgroup/devices/system.slice/etcd-native.service/devices.list'
else
	skip "systemd enforces DevicePolicy= on the unit's cgroup" \
		"no writable devices controller in this systemd (cgroup v1 controllers are read-only in nspawn here)"
fi
step_done "step 1b (native etcd)"

# =============================================================== step 2 ======
step "2. the dependent (flannel's role), ordering"
KEY=/sysctr-e2e/flannel/config
ok_or_journal "sysctr install --system --now $REG/flannel:latest" install_now "$REG/flannel:latest"
unit_active "flannel.service is active" flannel.service
assert_match "$(prop flannel.service Requires)" '(^| )etcd\.service( |$)' "flannel.service Requires=etcd.service (label)"
assert_match "$(prop flannel.service After)" '(^| )etcd\.service( |$)' "flannel.service After=etcd.service (label)"

# check_dependent ROUND: started once, after etcd was READY, and its write landed
prev_val=""
check_dependent() {
	local round=$1 val e_ready f_start nr
	wait_until 10 eval '[[ -n "$(etcd_get "$ETCD_PORT" "$KEY" 2>/dev/null)" && "$(etcd_get "$ETCD_PORT" "$KEY" 2>/dev/null)" != "$prev_val" ]]'
	val=$(etcd_get "$ETCD_PORT" "$KEY" 2>/dev/null)
	assert_match "$val" '^[0-9a-f-]{36}$' "$round: the dependent wrote a fresh key into etcd" ||
		fail_with_journal "$round: journal" -u flannel.service -u etcd.service
	[[ -n "$prev_val" ]] && assert_ne "$val" "$prev_val" "$round: the value is new (it ran again)"
	prev_val=$val
	nr=$(prop flannel.service NRestarts)
	assert_eq "$nr/$(prop flannel.service ActiveState)" "0/active" \
		"$round: dependent succeeded on its first start (NRestarts=0, active)"
	e_ready=$(mono etcd.service ActiveEnterTimestampMonotonic)
	f_start=$(mono flannel.service ExecMainStartTimestampMonotonic)
	if (( e_ready > 0 && f_start >= e_ready )); then
		pass "$round: dependent started after etcd was ready (+$(( (f_start - e_ready) / 1000 )) ms)"
	else
		fail "$round: dependent started after etcd was ready"
		diag "etcd ActiveEnterTimestampMonotonic=$e_ready flannel ExecMainStartTimestampMonotonic=$f_start"
	fi
	assert_not_match "$(systemd_journal -u flannel.service)" 'FAILED to write' \
		"$round: no failed write in the dependent's journal"
}
check_dependent "install"

f_before=$(mono flannel.service ExecMainStartTimestampMonotonic)
ok_or_journal "systemctl restart etcd" in_systemctl restart etcd.service
wait_until 10 eval '(( $(mono flannel.service ExecMainStartTimestampMonotonic) > f_before ))'
assert_match "$(in_systemctl is-active etcd.service flannel.service | tr '\n' ' ')" '^active active $' \
	"after restarting etcd both are active"
if (( $(mono flannel.service ExecMainStartTimestampMonotonic) > f_before )); then
	pass "restarting etcd restarted the dependent (Requires=)"
else
	fail "restarting etcd restarted the dependent (Requires=)"
fi
check_dependent "restart etcd"

# reboot-equivalent: everything down, start only the dependent; etcd is
# pulled in by Requires= and ordered before it.  Twice: it must work every time.
for round in 1 2; do
	ok "cycle $round: systemctl stop etcd (takes the dependent down)" in_systemctl stop etcd.service
	assert_eq "$(in_systemctl is-active flannel.service)" inactive "cycle $round: dependent stopped with etcd"
	t0=$(now_ms)
	ok_or_journal "cycle $round: systemctl start flannel (pulls in etcd)" in_systemctl start flannel.service
	diag "TIME cycle $round: start flannel incl. etcd readiness: $(( $(now_ms) - t0 )) ms"
	check_dependent "cycle $round"
done
step_done "step 2 (dependent, ordering)"

# =============================================================== step 3 ======
step "3. socket activation"
ok_or_journal "sysctr install --system --now --set PORT=$SOCK_PORT $REG/greeter:latest" \
	install_now --set "PORT=$SOCK_PORT" "$REG/greeter:latest"
assert_match "$(in_systemd head -n1 /etc/systemd/system/greeter.socket 2>&1)" '^# sysctr: generated for container greeter' \
	"greeter.socket written with the marker"
assert_eq "$(prop greeter.socket Listen)" "127.0.0.1:$SOCK_PORT (Stream)" "greeter.socket listens on 127.0.0.1:\$PORT from --set"
assert_eq "$(in_systemctl is-enabled greeter.socket 2>&1)" enabled "the socket (not the service) is enabled"
assert_eq "$(in_systemctl is-active greeter.socket)" active "greeter.socket is active (listening)"
assert_eq "$(in_systemctl is-active greeter.service)" inactive "greeter.service is inactive before the first connection"
line=$(sock_line "$SOCK_PORT" 2>&1)
assert_match "$line" "^sockserve pid=[0-9]+ conn=1 e2e-$TEST_RUN_ID\$" \
	"first connection starts the container, which answers on the passed fd" ||
	fail_with_journal "greeter journal" -u greeter.service -u greeter.socket
assert_eq "$(in_systemctl is-active greeter.service)" active "greeter.service is active after the first connection"
assert_match "$(sock_line "$SOCK_PORT" 2>&1)" '^sockserve pid=[0-9]+ conn=2 ' "the same instance serves the second connection"
ok "systemctl stop greeter.service" in_systemctl stop greeter.service
assert_eq "$(in_systemctl is-active greeter.service)/$(in_systemctl is-active greeter.socket)" "inactive/active" \
	"stopping the service leaves the socket listening"
ok "127.0.0.1:$SOCK_PORT still accepts (systemd holds it)" \
	python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 5).close()" "$SOCK_PORT"
wait_until 10 eval '[[ "$(in_systemctl is-active greeter.service)" == active ]]'
assert_match "$(sock_line "$SOCK_PORT" 2>&1)" '^sockserve pid=[0-9]+ conn=[12] ' \
	"a connection after the stop activates a new instance"
ok "systemctl stop greeter.service again" in_systemctl stop greeter.service
step_done "step 3 (socket activation)"

# =============================================================== step 4 ======
step "4. failure handling"
nr0=$(prop etcd-native.service NRestarts)
main0=$(prop etcd-native.service MainPID)
if p=$(payload_pid etcd-native.service etcd); then
	pass "found etcd-native's payload (pid $p inside, below the shim $main0)"
	ok "SIGKILL the payload" in_systemd kill -KILL "$p"
	wait_until 30 eval '(( $(prop etcd-native.service NRestarts) > nr0 )) && [[ $(prop etcd-native.service ActiveState) == active ]]'
	assert_eq "$(prop etcd-native.service NRestarts)/$(prop etcd-native.service ActiveState)" "$((nr0+1))/active" \
		"Restart=on-failure brought it back (NRestarts +1, active)" ||
		fail_with_journal "etcd-native journal" -u etcd-native.service
	assert_ne "$(prop etcd-native.service MainPID)" "$main0" "it runs as a new main process"
	assert_match "$(systemd_journal -u etcd-native.service)" 'status=9/KILL|signal=KILL|code=killed' \
		"systemd saw the main process die of SIGKILL (the shim died of the payload's signal)"
	assert_eq "$(etcd_get "$NATIVE_PORT" k 2>&1)" native "the restarted etcd serves its old data (volume on the host)"
else
	fail_with_journal "found etcd-native's payload below its shim" -u etcd-native.service
fi

install_now "$REG/exit3:latest" >"$TEST_TMPDIR/exit3.out" 2>&1
rc=$?
diag "sysctr install --now exit3: exit $rc: $(tail -n3 "$TEST_TMPDIR/exit3.out")"
wait_until 30 eval '[[ $(prop exit3.service ActiveState) == failed ]]'
assert_eq "$(prop exit3.service ActiveState)" failed "a payload that exits 3 leaves the unit failed" ||
	fail_with_journal "exit3 journal" -u exit3.service
assert_eq "$(prop exit3.service ExecMainCode)/$(prop exit3.service ExecMainStatus)" "1/3" \
	"its main process exited with status 3 (ExecMainCode=exited)"
diag "exit3.service Result=$(prop exit3.service Result) NRestarts=$(prop exit3.service NRestarts)"
assert_match "$(systemd_journal -u exit3.service)" 'status=3/' "journal: Main process exited, status=3"
assert_match "$(systemd_journal -u exit3.service)" 'exit3: exiting with status 3' "journal has the payload's own output"
step_done "step 4 (failures)"

# =============================================================== step 5 ======
step "5. resource control"
fmain=$(prop flannel.service MainPID)
pids=$(descendants "$fmain" 2>/dev/null | tr '\n' ' ')
diag "flannel.service: main pid $fmain, tree: $pids"
ppid=$(payload_pid flannel.service sleep)
if [[ -n "$ppid" ]]; then
	pass "the dependent's payload (sleep, pid $ppid) runs below the shim"
else
	fail "the dependent's payload (sleep) runs below the shim"
fi
bad=""
for p in $pids; do out=$(in_unit_cgroup "$p" flannel.service) || bad+=" $p($out)"; done
assert_eq "$bad" "" "every process of the container (shim, init, payload) is in flannel.service's cgroup (/proc/PID/cgroup)"
diag "payload /proc/$ppid/cgroup: $(in_systemd cat "/proc/$ppid/cgroup" 2>/dev/null | grep -E '^0::|name=systemd' | tr '\n' ' ')"

ok "systemctl kill --signal=SIGSTOP flannel" in_systemctl kill --signal=SIGSTOP flannel.service
# not_stopped PIDS...   print "pid:state" of each that is not stopped (T)
not_stopped() {
	local p st
	for p in "$@"; do
		st=$(in_systemd awk '{print $3}' "/proc/$p/stat" 2>/dev/null)
		[[ "$st" == T ]] || printf ' %s:%s' "$p" "$st"
	done
}
# shellcheck disable=SC2086  # $pids is a list
wait_until 5 eval '[[ -z "$(not_stopped $pids)" ]]'
# shellcheck disable=SC2086
notstopped=$(not_stopped $pids)
assert_eq "$notstopped" "" "systemctl kill reached every process of the container (all stopped)"
ok "systemctl kill --signal=SIGCONT flannel" in_systemctl kill --signal=SIGCONT flannel.service
sleep 0.3
assert_eq "$(prop flannel.service ActiveState)/$(prop flannel.service NRestarts)" "active/0" "and it runs on after SIGCONT"

# MemoryMax=: only where the memory controller is writable inside
memline=$(in_systemd awk '$3=="cgroup2" || ($3=="cgroup" && $4 ~ /(^|,)memory(,|$)/) {print $2, $3, $4}' /proc/self/mounts)
memwritable=""
while read -r mp fstype opts; do
	[[ -z "$mp" ]] && continue
	[[ ",$opts," == *,ro,* ]] && continue
	if [[ "$fstype" == cgroup2 ]]; then
		in_systemd grep -qw memory "$mp/cgroup.controllers" 2>/dev/null &&
			in_systemd grep -qw memory "$mp/system.slice/cgroup.subtree_control" 2>/dev/null && memwritable="$mp v2"
	else
		memwritable="$mp v1"
	fi
done <<<"$memline"
if [[ -z "$memwritable" ]]; then
	diag "memory controller mounts inside: $(tr '\n' ';' <<<"$memline")"
	skip "MemoryMax= drop-in caps the container" "no writable memory controller in the nspawn systemd (cgroup v1 controllers are read-only here)"
else
	in_systemd mkdir -p /etc/systemd/system/flannel.service.d
	printf '[Service]\nMemoryMax=48M\n' | nspawn_put /etc/systemd/system/flannel.service.d/50-memory.conf
	in_systemctl daemon-reload
	ok_or_journal "restart flannel with MemoryMax=48M" in_systemctl restart flannel.service
	read -r mp ver <<<"$memwritable"
	cg=$(prop flannel.service ControlGroup)
	if [[ $ver == v2 ]]; then f=$mp$cg/memory.max; else f=$mp$cg/memory.limit_in_bytes; fi
	assert_eq "$(in_systemd cat "$f" 2>&1)" 50331648 "MemoryMax= drop-in caps the container ($f)"
	in_systemd rm -rf /etc/systemd/system/flannel.service.d
	in_systemctl daemon-reload
fi
step_done "step 5 (cgroups)"

# =============================================================== verify ======
step "systemd-analyze verify of the generated units"
units=()
for f in etcd.service etcd-native.service flannel.service greeter.service greeter.socket exit3.service; do
	units+=("/etc/systemd/system/$f")
done
out=$(in_systemd systemd-analyze verify "${units[@]}" 2>&1); rc=$?
# only what it says about our units counts (it also loads their dependencies)
ours=$(grep -E '(etcd|etcd-native|flannel|greeter|exit3)\.(service|socket)' <<<"$out")
if (( rc == 0 )) && [[ -z "$ours" ]]; then
	pass "systemd-analyze verify: the generated units are clean"
else
	fail "systemd-analyze verify: the generated units are clean"
	diag "exit $rc"; printf '%s\n' "$out" | tail -n 40 | sed 's/^/#   /'
fi
step_done "verify"

# =============================================================== step 6 ======
step "6. list, uninstall, prune"
NAMES="etcd etcd-native flannel greeter exit3"
list=$(in_sysctr list --json 2>"$TEST_TMPDIR/list.err")
if jq -e 'type=="array"' >/dev/null 2>&1 <<<"$list"; then
	pass "sysctr list --json is a JSON array"
else
	fail "sysctr list --json is a JSON array"; diag "$list"; diag_file "$TEST_TMPDIR/list.err"
	list='[]'
fi
diag "sysctr list: $(in_sysctr list 2>&1 | sed 's/^/  /')"
for n in $NAMES; do
	want=$(prop "$n.service" ActiveState)
	got=$(jq -r --arg n "$n" '.[]|select(.name==$n)|"\(.state) \(.deployment) \(.units|join(","))"' <<<"$list")
	assert_match "$got" "^$want $n\\.0 $n\\.service" "list --json: $n is there, state $want (= systemd's), deployment $n.0"
done
assert_eq "$(jq -r '.[]|select(.name=="greeter").units|sort|join(",")' <<<"$list")" "greeter.service,greeter.socket" \
	"list --json: greeter has its service and socket"
assert_eq "$(jq -r '[.[]|select(.name=="etcd" or .name=="flannel" or .name=="etcd-native").state]|join(",")' <<<"$list")" \
	"active,active,active" "list --json: etcd, etcd-native, flannel active"
assert_eq "$(jq -r '.[]|select(.name=="exit3").state' <<<"$list")" failed "list --json: exit3 failed"

for n in flannel greeter exit3 etcd-native etcd; do
	purge=()
	[[ $n == etcd-native ]] && purge=(--purge)
	ok_or_journal "sysctr uninstall ${purge[*]} $n" sysctr_t 120 uninstall "${purge[@]}" "$n"
	assert_eq "$(prop "$n.service" LoadState)" not-found "$n.service is gone from systemd (LoadState=not-found)"
	# a unit that failed must not stay behind as a ghost in `systemctl --failed`
	assert_eq "$(prop "$n.service" ActiveState)" inactive "$n.service leaves no failed state behind (ActiveState=inactive)"
done
assert_eq "$(prop greeter.socket LoadState)" not-found "greeter.socket is gone from systemd"
assert_eq "$(in_sysctr list --json 2>&1 | jq -c .)" "[]" "sysctr list --json is [] after uninstalling all"
left=$(in_systemd bash -c 'shopt -s nullglob
	for n in '"$NAMES"'; do
		ls -d /etc/systemd/system/$n.* /etc/systemd/system/*/$n.* /etc/tmpfiles.d/sysctr-$n.conf /var/lib/sysctr/containers/$n /var/lib/sysctr/containers/$n.* 2>/dev/null
	done
	grep -rls "^# sysctr: generated" /etc/systemd/system /etc/tmpfiles.d 2>/dev/null
	true')
assert_eq "$left" "" "/etc/systemd/system, /etc/tmpfiles.d, /var/lib/sysctr/containers hold nothing of theirs"
assert_eq "$(in_systemd bash -c 'ls -A /var/lib/sysctr/containers 2>/dev/null')" "" "/var/lib/sysctr/containers is empty"
ok_fails "the hostfs file /etc/etcd/etcd.conf is removed" in_systemd test -e /etc/etcd/etcd.conf
ok_fails "uninstall --purge removed etcd-native's state" in_systemd test -e /var/lib/etcd-native
assert_eq "$(in_sysctr images --json 2>&1 | jq length 2>&1)" 5 "uninstall kept the 5 images in the store"
ok_or_journal "sysctr images prune --all" in_sysctr images prune --all
assert_eq "$(in_sysctr images --json 2>&1 | jq -c .)" "[]" "sysctr images --json is [] after prune --all"
assert_eq "$(in_systemd ostree --repo=/var/lib/sysctr/repo refs 2>&1)" "" "ostree refs of the store: none left"
objs=$(in_systemd bash -c 'find /var/lib/sysctr/repo/objects -type f \( -name "*.file" -o -name "*.dirtree" -o -name "*.commit" \) 2>/dev/null | wc -l')
assert_eq "$objs" 0 "no file, dirtree or commit objects left in the store"
step_done "step 6 (list, uninstall, prune)"

# ================================================================ teardown ===
step "teardown"
if nspawn_teardown; then pass "nspawn teardown is clean"; else fail "nspawn teardown is clean"; fi
diag "TIME teardown: ${NSPAWN_TEARDOWN_MS:-?} ms"
diag "TIME e2e total: $(( $(now_ms) - T_START )) ms"
done_testing
