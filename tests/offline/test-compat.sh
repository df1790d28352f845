#!/bin/bash
# Images made by others install unchanged (--root): images in the form of
# the atomic-system-containers catalogue (etcd, flannel, and the constructs
# the other 16 use), images written by umoci insert and podman save, and
# what the shim would refuse at start refused at install with its message.
# Every fixture is this project's own (tests/images/, or built here).
# shellcheck disable=SC2016 # single-quoted $VARS are template text
. "$SYSCTR_SRCDIR/tests/lib/libtest.sh"
. "$SYSCTR_SRCDIR/tests/lib/images.sh"
. "$SYSCTR_SRCDIR/tests/offline/lib-offline.sh"
require_root
require_cmd umoci jq busybox skopeo

R=$TEST_TMPDIR/root; mkdir -p "$R/etc"; echo 'nameserver 127.0.0.1' >"$R/etc/resolv.conf"
C=$R/var/lib/sysctr/containers
snap() { tree_listing "$R" >"$TEST_TMPDIR/snap.$1"; }
same_as() { tree_listing "$R" | diff "$TEST_TMPDIR/snap.$1" - >"$TEST_TMPDIR/snap.diff"; }

# ------------------------------------------------- etcd, atomic's form ------
if ! build_atomic_etcd_upstream_image etcdup v1 >"$TEST_TMPDIR/build.log" 2>&1; then
	diag_file "$TEST_TMPDIR/build.log" 10; bail_out "cannot build the atomic-form etcd image"
fi
snap before
run_sc "$R" install --system --name=etcd "$(image_ref etcdup v1)"
assert_eq "$SC_RC" 1 "atomic-form etcd: refused without a grant"
assert_contains "$SC_ERR" "--allow=host-files,host-mounts,host-namespaces,capabilities,unconfined" "  ... naming what it asks"
run_sc "$R" install --system --privileged --name=etcd --set ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:12379 \
	"$(image_ref etcdup v1)"
if ! assert_eq "$SC_RC" 0 "atomic-form etcd installs unchanged with --privileged"; then diag "$SC_ERR"; bail_out "install failed"; fi
CFG=$C/etcd.0/config.json U=$R/etc/systemd/system/etcd.service
assert_contains "$SC_ERR" 'options that mean nothing for a bind mount dropped (mode=755 on /var/lib/etcd, mode=755 on /var/run/etcd)' \
	"mode=755 on binds: dropped with one warning"
assert_eq "$(jq -c '[.mounts[]|select(.type=="bind")|.options[]|select(startswith("mode="))]' "$CFG")" "[]" "  ... and gone from config.json"
assert_eq "$(jq -c '[has("platform"), has("hooks"), (.linux|has("apparmorProfile")), (.linux|has("devices")), (.process|has("apparmorProfile"))]' "$CFG")" \
	"[false,false,false,false,false]" "platform, linux.apparmorProfile \"\", linux.devices null: normalised away"
assert_eq "$(jq -c '.process.capabilities.ambient' "$CFG")" '["CAP_DAC_READ_SEARCH","CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"]' \
	"process.capabilities kept as the template has them"
assert_not_match "$(grep -c '^Device' "$U")" '^[3-9]' "a resources deny rule adds no device line to the unit"
assert_file "$R/usr/local/bin/etcdctl" "hostfs: etcdctl (17 MB) renamed to /usr/local/bin/\${NAME}ctl"
assert_eq "$(stat -c %s "$R/usr/local/bin/etcdctl")" "$(stat -c %s "$(command -v etcdctl)")" "  ... whole"
assert_file "$R/etc/etcd/etcd.conf" "hostfs: etcd.conf at \$CONF_DIRECTORY/\$NAME"
assert_eq "$(jq -r '.process.env[]|select(startswith("ETCD_LISTEN_CLIENT_URLS="))' "$CFG")" \
	"ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:12379" "--set reaches the environment"
assert_eq "$(jq -r '.mounts[]|select(.destination=="/var/lib/etcd").source' "$CFG")" /var/lib/etcd/etcd.etcd \
	"the state bind's source is \${STATE_DIRECTORY}/etcd/\${NAME}.etcd"
T=$R/etc/tmpfiles.d/sysctr-etcd.conf
assert_eq "$(grep -c ' /var/lib/etcd/etcd.etcd ' "$T")" 2 "its own tmpfiles lines make the state directory (no second line from sysctr)"
assert_eq "$(jq -c '.privileges.granted|keys' "$C/etcd.0/info.json")" '["capabilities","host-files","host-mounts","host-namespaces","unconfined"]' \
	"granted: capabilities (DAC_READ_SEARCH), host-files (etcdctl), host-mounts (resolv.conf), host-namespaces (uts), unconfined"
SHIM=$(jq -r .shim_path "$C/etcd.0/info.json")
ok "sysctr-shim --check accepts the deployment" "$SHIM" --check --root="$R" --bundle="$C/etcd.0"

# --------------------------------------------- flannel, atomic's form -------
build_atomic_flannel_upstream_image flannelup v1 >"$TEST_TMPDIR/build.log" 2>&1 ||
	{ diag_file "$TEST_TMPDIR/build.log" 10; bail_out "cannot build the atomic-form flannel image"; }
run_sc "$R" install --system --privileged --name=flannel "$(image_ref flannelup v1)"
if ! assert_eq "$SC_RC" 0 "atomic-form flannel installs unchanged with --privileged"; then diag "$SC_ERR"; bail_out "install failed"; fi
CFG=$C/flannel.0/config.json U=$R/etc/systemd/system/flannel.service T=$R/etc/tmpfiles.d/sysctr-flannel.conf
assert_eq "$(jq 'has("hooks")' "$CFG")" false '"hooks": {} accepted (and dropped)'
assert_eq "$(grep -c '^DevicePolicy=auto$' "$U")" 1 "resources allowing every device: DevicePolicy=auto in the unit"
assert_eq "$(jq -c '.privileges.granted.devices' "$C/flannel.0/info.json")" \
	'["/dev (bind)","linux.resources.devices: allow a rwm"]' "  ... asked and granted as devices"
assert_eq "$(grep -c '^d /etc/flanneld 0755 0 0 - -$' "$T")" 1 "the empty hostfs directory /etc/flanneld: a tmpfiles.d line"
assert_eq "$(jq -c '.created' "$C/flannel.0/info.json")" '["/etc/flanneld"]' "  ... recorded as made by sysctr"
assert_eq "$(grep -c '^d /etc/systemd/system/docker.service.d ' "$T")" 1 "the drop-in directory: the image's own line, once"
assert_file "$R/etc/sysconfig/flanneld" "hostfs file that is also a bind source"
assert_eq "$(grep -E '^(ExecStopPost|Before|RequiredBy|NotifyAccess)=' "$U" | sort | tr '\n' ' ')" \
	"Before=docker.service ExecStopPost=/bin/rm -f /etc/systemd/system/docker.service.d/flannel.conf NotifyAccess=all RequiredBy=docker.service " \
	"the unit keeps ExecStopPost=, Before=, RequiredBy=, NotifyAccess=all"
assert_eq "$(jq -c '.privileges.granted|keys' "$C/flannel.0/info.json")" \
	'["capabilities","devices","host-exec","host-files","host-mounts","host-namespaces","unconfined","unit-deps"]' "granted what atomic gave it"
ok "sysctr-shim --check accepts the deployment" "$SHIM" --check --root="$R" --bundle="$C/flannel.0"
# created directories go when they are empty
mkdir -p "$R/etc/flanneld"
run_sc "$R" uninstall flannel
assert_no_file "$R/etc/flanneld" "uninstall removes /etc/flanneld, made by sysctr and still empty"
run_sc "$R" install --system --privileged --name=flannel "$(image_ref flannelup v1)"
mkdir -p "$R/etc/flanneld"; echo admin >"$R/etc/flanneld/admin.conf"
run_sc "$R" uninstall flannel
assert_file "$R/etc/flanneld/admin.conf" "  ... and keeps it when something was put there"
rm -rf "$R/etc/flanneld"

# ------------------------------------------ the other catalogue constructs --
# form NAME JQ [UMOCI-ARGS...]: a busybox image whose config.json.template is
# a catalogue-style base edited by JQ
BASE=$TEST_TMPDIR/base.json
cat >"$BASE" <<'J'
{ "ociVersion": "1.0.0", "platform": {"os": "linux", "arch": "amd64"},
  "process": { "terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["/bin/sh", "-c", "sleep 1000"],
    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"], "cwd": "/" },
  "root": {"path": "rootfs", "readonly": true},
  "mounts": [ {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]} ],
  "linux": { "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "mount"}] } }
J
form() {
	local name=$1 expr=$2 d; shift 2
	d=$TEST_TMPDIR/x/$name; mkdir -p "$d/exports"
	jq "$expr" "$BASE" >"$d/exports/config.json.template"
	build_busybox_image "$name" v1 "$d" --config.cmd=-c --config.cmd='sleep 1000' "$@" >/dev/null || bail_out "cannot build $name"
}
# installs NAME DESC: installs with --privileged and the shim accepts it
installs() {
	run_sc "$R" install --system --privileged --name="$1" "$(image_ref "$1" v1)"
	if (( SC_RC == 0 )) && "$SHIM" --check --root="$R" --bundle="$C/$1.0" >/dev/null 2>&1; then pass "$2"
	else fail "$2 (rc $SC_RC)"; diag "$SC_ERR"; fi
}
# refused NAME PATTERN DESC: refused at install with one line, nothing left
refused() {
	snap r
	run_sc "$R" install --system --privileged --name="$1" "$(image_ref "$1" v1)"
	if (( SC_RC != 0 )) && one_line "$SC_ERR" && [[ "$SC_ERR" == *"$2"* ]] && same_as r; then pass "$3 ($(tr "\n" " " <<<"$SC_ERR" | cut -c1-120))"
	else fail "$3 (rc $SC_RC)"; diag "$SC_ERR"; diag_file "$TEST_TMPDIR/snap.diff" 10; fi
}

# hello-world: runtime-spec 0.3 capabilities and rlimits under linux, hooks {}
form hello '.ociVersion = "0.3.0" | .hooks = {} | .linux.capabilities = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
	| .linux.rlimits = [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]'
installs hello "pre-1.0 layout (linux.capabilities, linux.rlimits): installs"
assert_eq "$(jq -c '[.process.capabilities.bounding, .process.capabilities.ambient, .process.rlimits[0].type, (.linux|has("capabilities") or has("rlimits"))]' "$C/hello.0/config.json")" \
	'[["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"],["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"],"RLIMIT_NOFILE",false]' \
	"  ... normalised into process.capabilities (every set) and process.rlimits"
# qemu-guest-agent: capabilities as a flat list under process
form qemu '.ociVersion = "1.0.0-rc3" | .process.capabilities = ["CAP_SYS_ADMIN", "CAP_KILL"]'
installs qemu "a flat process.capabilities list: installs"
assert_eq "$(jq -c '.process.capabilities.effective' "$C/qemu.0/config.json")" '["CAP_SYS_ADMIN","CAP_KILL"]' "  ... as every set"
# the guest agents: linux.devices (virtio ports this host lacks; /dev/null it has)
# (a device the host lacks is refused at a live install: tests/live/compat.sh;
# a tree being built has no /dev to check, the machine it boots on has)
form vport '.linux.devices = [{"path": "/dev/vport2p1", "type": "c", "major": 249, "minor": 1, "fileMode": 8576, "uid": 0, "gid": 0}]'
installs vport "linux.devices in a tree being built (--root): installs, the booting machine provides /dev"
form devnull '.linux.devices = [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 8630, "uid": 0, "gid": 0}]'
installs devnull "linux.devices naming a device the host has: installs"
assert_eq "$(grep -c '^DeviceAllow=/dev/null rwm$' "$R/etc/systemd/system/devnull.service")" 1 "  ... allowed by path in the unit"
assert_contains "$(jq -c .privileges.granted.devices "$C/devnull.0/info.json")" "/dev/null (c 1:3)" "  ... asked for as devices"
# kubelet-style: mode=777 on binds, an empty hostfs dir, missing bind sources
form kube '.process.user = {} | .mounts += [{"destination": "/var/lib/kubelet", "type": "bind", "source": "/var/lib/kubelet", "options": ["rbind", "rshared", "rw", "mode=777"]},
	{"destination": "/etc/cni/net.d", "type": "bind", "source": "/etc/cni/net.d", "options": ["bind", "slave", "rw", "mode=777"]}]'
installs kube "kubelet-style binds (mode=777, rshared) of paths a fresh host lacks: installs"
assert_eq "$(grep -E '^d /(var/lib/kubelet|etc/cni/net.d) ' "$R/etc/tmpfiles.d/sysctr-kube.conf" | wc -l)" 2 \
	"  ... missing bind sources made by tmpfiles.d lines (as atomic did)"
assert_eq "$(jq -c .created "$C/kube.0/info.json")" '["/var/lib/kubelet","/etc/cni/net.d","/etc/cni"]' "  ... and recorded, with the parent the tree lacks"
mkdir -p "$R/var/lib/kubelet" "$R/etc/cni/net.d" # what systemd-tmpfiles makes when the tree boots
run_sc "$R" uninstall kube
assert_no_file "$R/var/lib/kubelet" "  ... removed at uninstall when still empty"
assert_no_file "$R/etc/cni" "  ... parents sysctr made too"
# found by installing the 18 real catalogue templates: kubeadm binds
# "/var/run/" (trailing slash; /var/run is systemd's symlink to /run), the
# guest agents bind "/proc" itself, kubeadm binds /etc/resolv.conf
form varrun '.mounts += [{"destination": "/var/run/", "type": "bind", "source": "/var/run/", "options": ["rbind", "rw", "mode=755"]},
	{"destination": "/var/run/varrun-x", "type": "bind", "source": "/var/run/varrun-x/", "options": ["bind", "rw"]},
	{"destination": "/hostproc", "type": "bind", "source": "/proc", "options": ["rbind", "ro"]},
	{"destination": "/etc/resolv.conf", "type": "bind", "source": "/etc/resolv.conf", "options": ["bind", "ro"]},
	{"destination": "/etc/hostname", "type": "bind", "source": "/etc/hostname", "options": ["bind", "ro"]}]'
installs varrun 'binds of "/var/run/", "/var/run/x/", "/proc" and /etc/hostname into a tree that lacks them: installs'
assert_eq "$(grep -v -e "^#" -e " /var/lib/varrun " "$R/etc/tmpfiles.d/sysctr-varrun.conf" | tr "\n" " ")" "d /run/varrun-x 0755 0 0 - - " \
	"  ... /var/run/x made as /run/x; no line for /var/run (systemd's symlink), /run, /proc, /etc/hostname"
d=$TEST_TMPDIR/x/azure2; mkdir -p "$d/exports"
printf '[Unit]\nDescription=agent\n\n[Service]\nExecStart=/usr/bin/python -u /usr/sbin/waagent -daemon\n\n[Install]\nWantedBy=multi-user.target\n' \
	>"$d/exports/service.template"
{ build_busybox_image azure2 v1 "$d" && image_config azure2 v1 --clear=config.entrypoint --clear=config.cmd && image_gc azure2; } >/dev/null ||
	bail_out "cannot build azure2"
run_sc "$R" install --system --name=azure2 "$(image_ref azure2 v1)"
assert_contains "$SC_ERR" "host-exec: [Service] ExecStart=/usr/bin/python -u /usr/sbin/waagent -daemon" \
	"an image whose unit runs a host command and never the container (azure): asks for host-exec"
installs azure2 "  ... and with it installs, though it has no Entrypoint, Cmd or config template"
assert_contains "$SC_ERR" "its unit does not run the container" "  ... saying its config.json gets atomic's default process"
assert_eq "$(jq -c .process.args "$C/azure2.0/config.json")" '["run.sh"]' "  ... \"run.sh\", as atomic wrote it"
d=$TEST_TMPDIR/x/noproc; mkdir -p "$d/exports"
printf '[Service]\nExecStart=$EXEC_START\n' >"$d/exports/service.template"
{ build_busybox_image noproc v1 "$d" && image_config noproc v1 --clear=config.entrypoint --clear=config.cmd && image_gc noproc; } >/dev/null ||
	bail_out "cannot build noproc"
refused noproc "the image has no Entrypoint or Cmd, and no /exports/config.json.template" \
	"no Entrypoint, Cmd or config template, and a unit that runs the container: refused"
form rtc '.mounts += [{"destination": "/dev/rtc", "type": "bind", "source": "/dev/rtc-missing", "options": ["bind", "rw"]}]'
installs rtc "a bind of a /dev path in a tree being built: installs (checked at a live install)"
# hooks that run something, sysctls the shim refuses
form hooks '.hooks = {"prestart": [{"path": "/usr/bin/true"}]}'
refused hooks "hooks.prestart" "non-empty hooks: refused, naming them"
form sysctl '.linux.sysctl = {"kernel.panic": "1"}'
refused sysctl "would not start: config.json: linux.sysctl: kernel.panic is not namespaced" \
	"a config the shim would refuse at start: refused at install with the shim's message"
# resources become unit directives
form res '.linux.resources = {"memory": {"limit": 67108864, "swap": 134217728}, "cpu": {"shares": 512, "quota": 50000, "period": 100000}, "pids": {"limit": 64}, "blockIO": {"weight": 500}}'
installs res "linux.resources: installs"
assert_eq "$(grep -E '^(MemoryMax|MemorySwapMax|CPUWeight|CPUQuota|CPUQuotaPeriodSec|TasksMax|IOWeight)=' "$R/etc/systemd/system/res.service" | tr '\n' ' ')" \
	"MemoryMax=67108864 MemorySwapMax=67108864 CPUWeight=20 CPUQuota=50% CPUQuotaPeriodSec=100000us TasksMax=64 IOWeight=4950 " \
	"  ... as MemoryMax=, MemorySwapMax=, CPUWeight=, CPUQuota=, TasksMax=, IOWeight= in the unit"
# LSM labels where the LSM is off: ignored with a warning (this host has neither)
form lsm '.process.apparmorProfile = "atomic-default" | .process.selinuxLabel = "system_u:system_r:container_t:s0"'
if [[ -e /sys/fs/selinux/enforce ]] || grep -qs Y /sys/module/apparmor/parameters/enabled; then
	skip "LSM labels ignored where the LSM is off" "an LSM is enabled on this host"
else
	installs lsm "an AppArmor profile and an SELinux label: installs"
	assert_contains "$SC_ERR" 'AppArmor profile "atomic-default" ignored: AppArmor is not enabled' "  ... the profile ignored with a warning"
	assert_eq "$(jq -c '.process|[has("apparmorProfile"), has("selinuxLabel")]' "$C/lsm.0/config.json")" "[false,false]" "  ... and dropped"
fi
form tty '.process.terminal = true'
installs tty "process.terminal: true installs"
assert_contains "$SC_ERR" "process.terminal=true ignored" "  ... with a warning"

# ---------------------------------------------------- native images ---------
# a numeric User takes its gid and groups from the image
d=$TEST_TMPDIR/x/users; mkdir -p "$d/etc"
printf 'root:x:0:0::/root:/bin/sh\nsvc:x:1000:1001::/:/bin/sh\n' >"$d/etc/passwd"
printf 'root:x:0:\nsvc:x:1001:\nextra:x:2000:svc,other\nnone:x:3000:other\n' >"$d/etc/group"
build_busybox_image users v1 "$d" --config.cmd=-c --config.cmd='sleep 1000' --config.user=1000 >/dev/null || bail_out users
run_sc "$R" install --system --name=users "$(image_ref users v1)"
assert_eq "$(jq -c .process.user "$C/users.0/config.json")" '{"uid":1000,"gid":1001,"additionalGids":[2000]}' \
	"User 1000: gid and supplementary groups from the image's /etc/passwd and /etc/group"
image_config users v1 --config.user=1000:7 >/dev/null
run_sc "$R" update users
assert_eq "$(jq -c .process.user "$C/users.1/config.json" 2>/dev/null)" '{"uid":1000,"gid":7}' "User 1000:7: that gid, no groups"
# HEALTHCHECK and exposed ports
build_busybox_image health v1 "" --config.cmd=-c --config.cmd='sleep 1000' --config.exposedports=2379/tcp >/dev/null
image_healthcheck health v1 '{"Test": ["CMD-SHELL", "true"], "Interval": 30000000000}' || bail_out "adding a Healthcheck"
run_sc "$R" install --system --name=health "$(image_ref health v1)"
assert_eq "$SC_RC" 0 "an image with a HEALTHCHECK installs" || diag "$SC_ERR"
assert_eq "$(jq -c '.annotations|with_entries(select(.key|startswith("org.sysctr.health")))' "$C/health.0/config.json")" \
	'{"org.sysctr.health.test":"[\"/bin/sh\",\"-c\",\"true\"]","org.sysctr.health.interval":"30000","org.sysctr.health.timeout":"30000","org.sysctr.health.start-period":"0","org.sysctr.health.retries":"3"}' \
	"  ... its check goes to config.json for the shim (CMD-SHELL, 30 s, Docker's defaults for the rest)"
assert_eq "$(grep -E '^(NotifyAccess|WatchdogSignal)=' "$R/etc/systemd/system/health.service" | tr '\n' ' ')" \
	"NotifyAccess=main WatchdogSignal=SIGTERM " "  ... and the unit lets the shim trigger a restart"
assert_eq "$(sc "$R" list --json | jq -c '.[]|select(.name=="health")|.exposed_ports')" '["2379/tcp"]' "exposed ports shown by list --json"

# ---------------------------------------------- other tools' images ---------
# umoci insert (Debian 12) ends a layer right after the last member's data
mkdir -p "$TEST_TMPDIR/ins"; echo inserted >"$TEST_TMPDIR/ins/file"
build_busybox_image umocied v1 "" --config.cmd=-c --config.cmd='sleep 1000' >/dev/null
umoci insert --image "$(image_layout umocied):v1" "$TEST_TMPDIR/ins/file" /srv/inserted >/dev/null || bail_out "umoci insert"
run_sc "$R" install --system --name=umocied "$(image_ref umocied v1)"
assert_eq "$SC_RC" 0 "an image with a layer from umoci insert installs" || diag "$SC_ERR"
assert_eq "$(cat "$C/umocied.0/rootfs/srv/inserted" 2>&1)" inserted "  ... with the inserted file"
# podman save writes ref names such as localhost/app:v1
if command -v podman >/dev/null && skopeo --insecure-policy copy -q "oci:$(image_layout umocied):v1" \
	containers-storage:localhost/sysctr-compat-app:v1 >/dev/null 2>&1; then
	podman save -q --format oci-archive -o "$TEST_TMPDIR/app.tar" localhost/sysctr-compat-app:v1 >/dev/null 2>&1
	podman rmi -f localhost/sysctr-compat-app:v1 >/dev/null 2>&1
	run_sc "$R" install --system "oci-archive:$TEST_TMPDIR/app.tar:localhost/sysctr-compat-app:v1"
	assert_eq "$SC_RC" 0 "podman save's oci-archive, ref name localhost/sysctr-compat-app:v1: installs" || diag "$SC_ERR"
	assert_eq "$(readlink "$C/sysctr-compat-app-v1")" sysctr-compat-app-v1.0 "  ... named sysctr-compat-app-v1"
else
	skip "podman save's oci-archive" "podman could not store the image here"
fi

for n in $(sc "$R" list --json | jq -r '.[].name'); do sc "$R" uninstall --purge "$n" >/dev/null 2>&1; done
assert_eq "$(find "$C" -mindepth 1 -maxdepth 1 ! -name '.owners.json' | wc -l)" 0 "everything uninstalled"
done_testing
