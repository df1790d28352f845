# shellcheck shell=bash
# e2e-images.sh — the images of the end-to-end scenario (tests/live/e2e.sh)
# and of the README demo (scripts/demo.sh).  Needs tests/lib/images.sh.
#
#   build_flannel_image NAME TAG ETCD_ENDPOINT KEY
#       busybox image in the role flannel plays on an Atomic host: its unit is
#       After=/Requires=etcd.service (labels); when it starts it writes a
#       fresh UUID under KEY into etcd (v3 HTTP gateway, busybox wget) and
#       stays up (sleep).  A failed write ends it with status 1 and the line
#       "flannel-role: FAILED to write to etcd".
#   build_greeter_image NAME TAG SOCKSERVE GREETING
#       socket-activated image without busybox: only the static sockserve
#       (tests/live/sockserve.c); label org.sysctr.socket = a socket unit
#       listening on 127.0.0.1:$PORT (install with --set PORT=...).
#   build_exit3_image NAME TAG
#       busybox `sh -c 'exit 3'` (after one line of output).
#   build_boot_task_images TAG TOKEN
#       bootprep:TAG, a boot task (org.sysctr.type=oneshot,
#       org.sysctr.target=sysinit.target): it
#       appends "ran" to /run/bootprep/runs and writes TOKEN to
#       /run/bootprep/token (host /run/bootprep bound read-write: atomic
#       form, installed with --privileged); and reader:TAG, which
#       Requires=/After= bootprep.service, prints "reader got TOKEN" and
#       stays up
#   sockserve_path         print the sockserve binary (built by meson, else
#       compiled into TEST_TMPDIR)

[[ -n "${_E2E_IMAGES_SH:-}" ]] && return 0
_E2E_IMAGES_SH=1
E2E_IMAGES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

sockserve_path() {
	local s=${SYSCTR_SOCKSERVE:-${SYSCTR_BUILDDIR:-/nonexistent}/tests/live/sockserve}
	if [[ -x "$s" ]]; then echo "$s"; return 0; fi
	s=$TEST_TMPDIR/sockserve
	[[ -x "$s" ]] || cc -O2 -static -o "$s" "$E2E_IMAGES_DIR/sockserve.c" >&2 || return 1
	echo "$s"
}

build_flannel_image() {
	local name=$1 tag=$2 endpoint=$3 key=$4 d
	d=$(mktemp -d "$TEST_TMPDIR/flannel.XXXXXX") || return 1
	mkdir -p "$d/usr/bin"
	# busybox 1.35's `wget -T N` segfaults: no -T here
	cat >"$d/usr/bin/flannel-role" <<'EOF'
#!/bin/sh
# Writes a fresh value under $KEY into etcd once, at start, then stays up.
# Any failure to reach etcd ends the process with status 1.
val=$(cat /proc/sys/kernel/random/uuid) || exit 1
k64=$(printf %s "$KEY" | busybox base64 | tr -d '\n')
v64=$(printf %s "$val" | busybox base64 | tr -d '\n')
echo "flannel-role: writing $KEY=$val to $ETCD_ENDPOINT"
if ! out=$(busybox wget -q -O - --header 'Content-Type: application/json' \
	--post-data "{\"key\":\"$k64\",\"value\":\"$v64\"}" "$ETCD_ENDPOINT/v3/kv/put" 2>&1); then
	echo "flannel-role: FAILED to write to etcd: $out"
	exit 1
fi
echo "flannel-role: wrote $KEY=$val ($out)"
exec sleep 2147483647
EOF
	chmod 0755 "$d/usr/bin/flannel-role"
	build_busybox_image "$name" "$tag" "$d" \
		--config.entrypoint=/usr/bin/flannel-role \
		--config.env=ETCD_ENDPOINT="$endpoint" \
		--config.env=KEY="$key" \
		--config.label=org.sysctr.after=etcd.service \
		--config.label=org.sysctr.requires=etcd.service \
		--config.label=org.opencontainers.image.title=flannel-role
	local rc=$?
	rm -rf "$d"
	return $rc
}

build_greeter_image() {
	local name=$1 tag=$2 sockserve=$3 greeting=$4 d
	# $NAME and $PORT are sysctr's template variables, filled at install
	# shellcheck disable=SC2016
	local tmpl='[Unit]
Description=Socket of system container $NAME

[Socket]
ListenStream=127.0.0.1:$PORT

[Install]
WantedBy=sockets.target
'
	d=$(mktemp -d "$TEST_TMPDIR/greeter.XXXXXX") || return 1
	install -D -m 0755 "$sockserve" "$d/usr/bin/sockserve" || return 1
	make_image "$name" "$tag" "$d" \
		--config.entrypoint=/usr/bin/sockserve \
		--config.env=SOCKSERVE_GREETING="$greeting" \
		--config.label="org.sysctr.socket=$tmpl" \
		--config.label=org.sysctr.default.PORT=1 \
		--config.label=org.opencontainers.image.title=sockserve
	local rc=$?
	rm -rf "$d"
	return $rc
}

build_exit3_image() {
	build_busybox_image "$1" "$2" "" \
		--config.cmd=-c --config.cmd='echo "exit3: exiting with status 3"; exit 3'
}

# _atomic_busybox NAME TAG SCRIPT MOUNTS-JSON [UMOCI-CONFIG-ARGS...]: busybox
# sh -c SCRIPT with a config.json.template in atomic form, plus MOUNTS
_atomic_busybox() {
	local name=$1 tag=$2 script=$3 mounts=$4 d rc; shift 4
	d=$(mktemp -d "$TEST_TMPDIR/$name.XXXXXX") || return 1
	mkdir -p "$d/exports"
	jq --arg s "$script" --argjson m "$mounts" '.process.args = ["/bin/sh", "-c", $s] | .mounts += $m' >"$d/exports/config.json.template" <<'J' &&
{ "ociVersion": "1.0.0",
  "process": { "terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["/bin/sh", "-c", "true"],
    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "cwd": "/",
    "capabilities": { "bounding": ["CAP_DAC_OVERRIDE"], "effective": ["CAP_DAC_OVERRIDE"], "permitted": ["CAP_DAC_OVERRIDE"] } },
  "root": {"path": "rootfs", "readonly": true},
  "mounts": [ {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]} ],
  "linux": { "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "mount"}] } }
J
		build_busybox_image "$name" "$tag" "$d" --config.cmd=-c --config.cmd=true "$@" >/dev/null
	rc=$?
	rm -rf "$d"
	return $rc
}

build_boot_task_images() {
	local tag=$1 token=$2
	local rundir='{"destination": "/bootprep", "type": "bind", "source": "/run/bootprep", "options": ["bind", "rw"]}'
	_atomic_busybox bootprep "$tag" "echo ran >>/bootprep/runs; echo $token >/bootprep/token" "[$rundir]" \
		--config.label=org.sysctr.type=oneshot --config.label=org.sysctr.target=sysinit.target \
		--config.label=org.opencontainers.image.title=boot-task &&
		_atomic_busybox reader "$tag" 'echo "reader got $(cat /bootprep/token)"; exec sleep 2147483647' "[${rundir/rw/ro}]" \
			--config.label=org.sysctr.requires=bootprep.service --config.label=org.sysctr.after=bootprep.service
}
