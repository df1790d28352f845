#!/bin/bash
# Day two, in a booted systemd: what an operator does with a running system
# container (issue 15). `sysctr exec` runs a command inside it, confined as
# the payload is (namespaces, root, capabilities, no_new_privs, seccomp,
# cgroup) and with nothing of the host; the payload's journal lines carry the
# container's name, the shim's own lines are told apart.
#
#   etcd  atomic form, with etcdctl added: `sysctr exec etcd etcdctl endpoint
#         health` and its status code
#   box   busybox: says hello, then waits; a marker file in its root
# shellcheck disable=SC2016  # single-quoted $ in shell text is meant literally

LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)
# shellcheck source=../lib/libtest.sh
. "$LIB/libtest.sh"
# shellcheck source=../lib/registry.sh
. "$LIB/registry.sh"
# shellcheck source=../lib/images.sh
. "$LIB/images.sh"
# shellcheck source=../lib/nspawn.sh
. "$LIB/nspawn.sh"

require_root
require_cmd systemd-nspawn nsenter umoci jq python3 dpkg-deb etcdctl busybox script

SYSCTR_BIN=${SYSCTR_BIN:-${SYSCTR_PREFIX:-}/bin/sysctr}
[[ -n "${SYSCTR_PREFIX:-}" && -x "$SYSCTR_BIN" ]] ||
	skip_all "no installed sysctr (SYSCTR_PREFIX=${SYSCTR_PREFIX:-unset}); run scripts/test.sh or meson install first"

prop() { in_systemctl show -p "$2" --value "$1" 2>/dev/null; }
# sx ARGS...: sysctr inside the booted systemd; output in SX_OUT (stdout and
# stderr), status in SX_RC
sx() { SX_OUT=$(in_sysctr "$@" 2>&1); SX_RC=$?; }

ETCD_PORT=$(alloc_port) ETCD_PEER_PORT=$(alloc_port) || bail_out "alloc_port"
TOKEN=operate-$TEST_RUN_ID

# ------------------------------------------------------------------ images ---
d=$TEST_TMPDIR/etcdctl; mkdir -p "$d"
ok "build the atomic etcd image, with etcdctl" eval 'build_atomic_etcd_image etcd v1 >/dev/null &&
	image_add_binary "$d" /usr/bin/etcdctl /usr/bin/etcdctl && image_add_layer etcd v1 "$d" >/dev/null'
d=$TEST_TMPDIR/box; mkdir -p "$d"; echo "inside $TOKEN" >"$d/box-marker"
PROBE=${SYSCTR_BUILDDIR:-/nonexistent}/tests/shim/sysctr-probe
[[ -x $PROBE ]] && cp "$PROBE" "$d/sysctr-probe"
ok "build the box image (reload: SIGHUP)" build_busybox_image box v1 "$d" --config.cmd=-c \
	--config.cmd="trap 'echo box reloaded' HUP; echo box says hello $TOKEN; while :; do sleep 1; done" \
	--config.label=org.sysctr.reload-signal=SIGHUP
ok "build an image whose reload is a command (org.sysctr.reload)" build_busybox_image rbox v1 "" --config.cmd=-c \
	--config.cmd='while :; do sleep 1; done' --config.label='org.sysctr.reload=sh -c "echo reload ran >/tmp/reloaded"'
# health: a Docker HEALTHCHECK (1 s, 2 retries) that passes while /tmp/healthy exists
ok "build an image with a HEALTHCHECK" eval 'build_busybox_image hbox v1 "" --config.cmd=-c \
	--config.cmd="touch /tmp/healthy; while :; do sleep 1; done" >/dev/null &&
	image_healthcheck hbox v1 "{\"Test\": [\"CMD-SHELL\", \"test -e /tmp/healthy\"], \"Interval\": 1000000000, \"Timeout\": 2000000000, \"Retries\": 2}"'
# a check that is running most of the time (3 s of every 4), for exec
ok "build an image whose health check takes 3 s" build_busybox_image cbox v1 "$TEST_TMPDIR/box" --config.cmd=-c \
	--config.cmd='while :; do sleep 1; done' --config.label='org.sysctr.health-cmd=sleep 3' \
	--config.label=org.sysctr.health-interval=1s --config.label=org.sysctr.health-timeout=10s
# a check that hangs: labels, 1 s timeout, 1 retry
ok "build an image whose health check hangs (labels)" build_busybox_image tbox v1 "" --config.cmd=-c \
	--config.cmd='while :; do sleep 1; done' --config.label='org.sysctr.health-cmd=sleep 30' \
	--config.label=org.sysctr.health-interval=1s --config.label=org.sysctr.health-timeout=1s \
	--config.label=org.sysctr.health-retries=1

nspawn_boot || { fail_with_journal "boot"; bail_out "no systemd"; }
pass "booted ($NSPAWN_STATE, ${NSPAWN_BOOT_MS} ms)"
sx install --system --now --privileged --name=etcd --set "ETCD_PORT=$ETCD_PORT" --set "ETCD_PEER_PORT=$ETCD_PEER_PORT" \
	"$(image_ref etcd v1)"
assert_eq "$SX_RC" 0 "install --now etcd" || diag "$SX_OUT"
sx install --system --now --name=box "$(image_ref box v1)"
assert_eq "$SX_RC" 0 "install --now box (granted nothing)" || diag "$SX_OUT"

# ----------------------------------------------------------- journal identity
wait_until 10 eval 'systemd_journal -t box | grep -q "box says hello"'
assert_match "$(systemd_journal -t box -o cat)" "^box says hello $TOKEN" \
	"journalctl -t box: the payload's lines under the container's name"
assert_eq "$(systemd_journal -t box -o json | jq -r '._SYSTEMD_UNIT' | sort -u)" box.service "  ... and they are box.service's"
assert_match "$(systemd_journal -t etcd -o cat)" 'ready to serve client requests|serving insecure client requests' \
	"journalctl -t etcd: etcd's own lines (an image with its own unit template)"
assert_eq "$(prop box.service SyslogIdentifier)" box "box.service has SyslogIdentifier=box"
# the shim's own lines: a deployment broken after install makes the shim refuse
sx install --system --name=broken "$(image_ref box v1)"
in_systemd sh -c 'p=/var/lib/sysctr/containers/broken/config.json; jq ".bogusKey = 1" $p >$p.new && mv $p.new $p'
in_systemctl start broken.service >/dev/null 2>&1
wait_until 10 eval 'systemd_journal -t sysctr-shim | grep -q bogusKey'
assert_match "$(systemd_journal -u broken.service -t sysctr-shim -o cat)" '^sysctr-shim: .*bogusKey' \
	"the shim's own refusal is logged as sysctr-shim, and journalctl -u broken.service shows it"
assert_eq "$(systemd_journal -t sysctr-shim -o json | jq -r 'select(.OBJECT_SYSTEMD_UNIT == "broken.service") | .SYSCTR_CONTAINER' | sort -u)" \
	broken "  ... with SYSCTR_CONTAINER=broken"
assert_not_match "$(systemd_journal -t broken -o cat)" 'bogusKey' "  ... and not as the payload's (journalctl -t broken)"
in_systemctl stop broken.service >/dev/null 2>&1
sx uninstall broken

# -------------------------------------------------------------------- exec ---
sx exec etcd etcdctl --endpoints="127.0.0.1:$ETCD_PORT" endpoint health
assert_eq "$SX_RC" 0 "sysctr exec etcd etcdctl endpoint health: status 0" || diag "$SX_OUT"
assert_match "$SX_OUT" 'is healthy' "  ... and etcd says it is healthy"
sx exec etcd etcdctl --endpoints=127.0.0.1:1 --dial-timeout=1s --command-timeout=2s endpoint health
assert_eq "$SX_RC" 1 "  ... etcdctl's failure status passes back (1, against a closed port)"
sx exec box sh -c 'exit 7'
assert_eq "$SX_RC" 7 "the command's exit status passes back (7)"
sx exec box sh -c 'kill -9 $$'
assert_eq "$SX_RC" 137 "a command killed by SIGKILL: 137"
assert_eq "$(echo piped-in | in_systemd "$SYSCTR_BIN" exec box cat 2>&1)" piped-in "stdin passes through"
sx exec box cat /box-marker
assert_eq "$SX_OUT" "inside $TOKEN" "the command sees the container's root (its marker file)"
sx exec box test -e /etc/debian_version
assert_eq "$SX_RC" 1 "  ... and not the host's (/etc/debian_version)"
sx exec box cat /proc/1/comm /proc/2/comm
assert_eq "$SX_OUT" $'sysctr-shim\nsh' "the container's pid namespace: pid 1 is its init, pid 2 its payload"
sx exec box sh -c 'ls -d /proc/[0-9]* | wc -l'
assert_eq "$SX_OUT" 6 "  ... and nothing else of the host: init, payload, its sleep, and sh, ls, wc"
for field in CapBnd CapEff CapPrm CapInh CapAmb NoNewPrivs Seccomp; do
	sx exec box sh -c "grep '^$field:' /proc/self/status; grep '^$field:' /proc/2/status"
	a=$(sed -n 1p <<<"$SX_OUT") b=$(sed -n 2p <<<"$SX_OUT")
	if [[ -n "$a" && "$a" == "${b}" ]]; then pass "the command's $field is the payload's ($(tr -s '\t ' ' ' <<<"$a"))"
	else fail "the command's $field is the payload's ($a vs $b)"; fi
done
# run from nsenter, the command inherits no filter of nspawn's (the payload,
# started by the booted systemd, has nspawn's too): the one it has is ours
sx exec box grep '^Seccomp_filters:' /proc/self/status
assert_match "$SX_OUT" 'Seccomp_filters:[[:space:]]+1$' "  ... the container's filter, loaded (Seccomp_filters: 1)"
sx exec box grep '^CapBnd' /proc/self/status
assert_not_match "$SX_OUT" '000001ffffffffff|000003ffffffffff' "  ... nor the host's full bounding set"
sx exec box ls /proc/self/fd
assert_eq "$(tr '\n' ' ' <<<"$SX_OUT")" "0 1 2 3 " "no fd of the host reaches the command (0-2, and ls's own)"
# an fd the caller left open on a host directory (not close-on-exec, as a
# shell's `exec 7</` is) must not reach the command: through it the host's
# root would be one openat() away (runc's CVE-2024-21626)
out=$(in_systemd sh -c "exec 7</; cd /var/lib/sysctr; $SYSCTR_BIN exec box ls /proc/self/fd" 2>&1)
assert_eq "$(tr '\n' ' ' <<<"$out")" "0 1 2 3 " "an open fd of the caller (7, the host's /) does not reach the command"
out=$(in_systemd sh -c "exec 7</; $SYSCTR_BIN exec box ls /proc/self/fd/7/" 2>&1)
assert_match "$out" 'No such file' "  ... so the host's / cannot be listed through it" || diag "$out"
sx exec box sh -c 'readlink /proc/self/cwd; readlink /proc/self/root'
assert_eq "$(tr '\n' ' ' <<<"$SX_OUT")" "/ / " "its cwd and root are the container's /"
init_cg=$(in_systemd sh -c 'cat /proc/$(systemctl show -p MainPID --value box.service)/cgroup' | grep -E '^0::|name=systemd' | head -n1)
sx exec box cat /proc/self/cgroup
assert_contains "$SX_OUT" "${init_cg##*:}" "the command is in the unit's cgroup (${init_cg##*:})"
sx exec box sh -c 'cat /proc/1/environ >/dev/null'
assert_eq "$SX_RC" 1 "the container's init is not readable from the command (not dumpable)"
sx exec --user=1000:1001 box id
assert_match "$SX_OUT" '^uid=1000 gid=1001' "--user=1000:1001"
sx exec --env=FOO=bar -e BAZ=qux box sh -c 'echo $FOO $BAZ'
assert_eq "$SX_OUT" "bar qux" "--env (and -e) set variables"
sx exec --workdir=/proc box sh -c pwd
assert_eq "$SX_OUT" /proc "--workdir"
out=$(in_systemd script -qec "$SYSCTR_BIN exec -t box sh -c 'test -t 0 && test -t 1 && echo TTY-OK'" /dev/null 2>&1)
assert_match "$out" 'TTY-OK' "-t: stdin and stdout are a terminal (under script(1))"
# without -t the command has the caller's terminal on fds 0-2, but not as its
# controlling terminal (a session of its own): it cannot push a command line
# into the caller's shell (TIOCSTI, CVE-2016-2779)
if [[ -x $PROBE ]]; then
	out=$(in_systemd script -qec "$SYSCTR_BIN exec box /sysctr-probe tiocsti 'echo INJECTED-$TOKEN'" /dev/null 2>&1)
	assert_match "$out" 'tiocsti=(EPERM|EIO)' "the command cannot inject input into the caller's terminal" || diag "$out"
else
	skip "TIOCSTI into the caller's terminal" "no sysctr-probe built ($PROBE)"
fi
sx exec box no-such-command
assert_eq "$SX_RC" 127 "a command that does not exist: 127"
assert_eq "$(grep -c '' <<<"$SX_OUT")" 1 "  ... and one line ($SX_OUT)"
sx exec nosuch true
assert_eq "$SX_RC/$(grep -c '' <<<"$SX_OUT")" 125/1 "no such container: 125 and one line ($SX_OUT)"
sx --root=/tmp exec box true
assert_eq "$SX_RC" 125 "exec with --root is refused ($SX_OUT)"
in_systemctl stop box.service
sx exec box true
assert_eq "$SX_RC" 125 "a container that is not running: 125"
assert_match "$SX_OUT" '^sysctr exec: box is not running \(box.service is inactive\)$' "  ... and one clear line"
in_systemctl start box.service

# ------------------------------------------------------------------ reload ---
assert_eq "$(prop box.service ExecReload | grep -o 'argv\[\]=[^;]*' | head -n1)" 'argv[]=/bin/kill -s HUP $MAINPID ' \
	"org.sysctr.reload-signal=SIGHUP: ExecReload= sends it to the shim" || diag "$(prop box.service ExecReload)"
ok "systemctl reload box" in_systemctl reload box.service
wait_until 10 eval 'systemd_journal -t box | grep -q "box reloaded"'
assert_match "$(systemd_journal -t box -o cat)" 'box reloaded' "  ... reaches the payload (its HUP trap ran)"
assert_eq "$(prop box.service NRestarts)/$(in_systemctl is-active box.service)" 0/active "  ... which kept running"
sx install --system --now --name=rbox "$(image_ref rbox v1)"
assert_eq "$SX_RC" 0 "install rbox (org.sysctr.reload: a command)" || diag "$SX_OUT"
ok "systemctl reload rbox" in_systemctl reload rbox.service
sx exec rbox cat /tmp/reloaded
assert_eq "$SX_OUT" "reload ran" "  ... ran the command in the container (sysctr-shim --exec)"

# ------------------------------------------------------------------ health ---
sx install --system --now --name=hbox --set AUTO_UPDATE=true "$(image_ref hbox v1)"
assert_eq "$SX_RC" 0 "install hbox (HEALTHCHECK every 1 s, 2 retries)" || diag "$SX_OUT"
wait_until 10 eval '[[ $(prop hbox.service StatusText) == "health: healthy" ]]'
assert_eq "$(prop hbox.service StatusText)" "health: healthy" "its first check passes: systemctl status says \"health: healthy\""
assert_match "$(in_systemctl status hbox.service 2>&1)" 'Status: "health: healthy"' "  ... in systemctl status"
sx exec hbox rm /tmp/healthy
wait_until 20 eval '[[ $(prop hbox.service NRestarts) -ge 1 ]]'
assert_match "$(systemd_journal -u hbox.service -t sysctr-shim -o cat)" 'health check failed \(exit status 1\): 2 of 2' \
	"after the check fails twice the shim says so"
assert_match "$(systemd_journal -u hbox.service -o cat)" 'Watchdog request.*health: unhealthy' \
	"  ... reports unhealthy and triggers the watchdog"
assert_eq "$(prop hbox.service NRestarts)" 1 "  ... and systemd restarted it"
wait_until 10 eval '[[ $(prop hbox.service StatusText) == "health: healthy" ]]'
assert_eq "$(prop hbox.service StatusText)/$(in_systemctl is-active hbox.service)" "health: healthy/active" \
	"  ... and the new instance is healthy again"
# sysctr info: what it runs, where, its health, its grant
sx info --json hbox
assert_eq "$(jq -r '[.health.state, .units[0].active, .units[0].restarts, .deployments[0].active, .health.retries] | join(" ")' <<<"$SX_OUT")" \
	"healthy active 1 true 2" "sysctr info --json hbox: health, unit state, restarts, the active deployment"
assert_match "$(jq -r '.deployments[0].store_bytes' <<<"$SX_OUT")" '^[0-9]+$' "  ... and the store bytes its image pins"
sx info etcd
assert_match "$SX_OUT" $'Units:       etcd.service: active \\(running\\)' "sysctr info etcd: its unit, running"
assert_match "$SX_OUT" 'Granted:     capabilities' "  ... what it was granted (--privileged)"
assert_match "$SX_OUT" 'Host files:  /etc/etcd/etcd.conf|/etc/etcd/etcd.conf' "  ... the host files it owns"
assert_match "$SX_OUT" "ETCD_PORT=$ETCD_PORT  \\(--set\\)" "  ... and its values, --set ones marked"
sx install --system --now --name=tbox "$(image_ref tbox v1)"
wait_until 20 eval '[[ $(prop tbox.service NRestarts) -ge 1 ]]'
assert_match "$(systemd_journal -u tbox.service -t sysctr-shim -o cat)" 'health check failed \(timed out after 1000 ms\): 1 of 1' \
	"a check that hangs is killed at its timeout and counts as failed"
assert_eq "$(prop tbox.service NRestarts)" 1 "  ... and the unhealthy container is restarted"
sx uninstall tbox

# exec while the shim runs a check: the command still joins the container
# (the shim's first child, in a mount namespace of its own), never the
# check's process, which starts on the host
sx install --system --now --name=cbox "$(image_ref cbox v1)"
wait_until 10 eval '[[ $(in_systemd sh -c "cat /proc/\$(systemctl show -p MainPID --value cbox.service)/task/*/children" | wc -w) -ge 2 ]]'
n_ok=0
for _ in 1 2 3 4 5; do
	sx exec cbox cat /box-marker
	[[ $SX_RC == 0 && $SX_OUT == "inside $TOKEN" ]] && n_ok=$((n_ok + 1))
done
assert_eq "$n_ok" 5 "exec while a health check runs: 5 of 5 commands ran in the container"
sx uninstall cbox

# update --all never keeps a version that does not pass its health check
# (5 retries of 1 s: unhealthy after the 3 s settle window, so the health gate
# is what catches it)
ok "rebuild hbox:v1 with a check that never passes" image_healthcheck hbox v1 \
	'{"Test": ["CMD", "false"], "Interval": 1000000000, "Timeout": 1000000000, "Retries": 5}'
before=$(in_systemd readlink /var/lib/sysctr/containers/hbox)
sx update --all
assert_ne "$SX_RC" 0 "update --all: the new hbox never passes its check" || diag "$SX_OUT"
assert_match "$SX_OUT" 'hbox.service is not healthy: unhealthy' "  ... says why (the health gate)" || diag "$SX_OUT"
assert_eq "$(in_systemd readlink /var/lib/sysctr/containers/hbox)" "$before" "  ... and rolled back to the running version"
wait_until 10 eval '[[ $(prop hbox.service StatusText) == "health: healthy" ]]'
assert_eq "$(prop hbox.service StatusText)" "health: healthy" "  ... which is healthy"

done_testing
