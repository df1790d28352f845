#!/bin/bash
# Self-test of the live-test harness (tests/lib/*.sh): boots a throw-away
# systemd, runs real units in it, serves images from a real loopback registry,
# builds the etcd images, and proves that teardown leaves nothing behind.
# Safe to run twice in parallel.  TAP on stdout.
#
# Reports (as diagnostics): boot time of the nspawn systemd, etcd image build
# time, etcd readiness time under that systemd, teardown time.
# shellcheck disable=SC2154  # REGISTRY_<id>_* and time_ms results are set indirectly

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
require_cmd systemd-nspawn nsenter umoci skopeo docker-registry jq curl python3 htpasswd dpkg-deb etcdctl
[[ -d /run/systemd/system ]] && diag "note: host runs systemd; the harness does not need it"

# the install prefix is bound into the container at the same path; without
# a real one (harness run on its own) use a stand-in
if [[ -z "${SYSCTR_PREFIX:-}" || ! -d "$SYSCTR_PREFIX" ]] || [[ "$SYSCTR_PREFIX" == /usr* ]]; then
	SYSCTR_PREFIX=$TEST_TMPDIR/prefix; mkdir -p "$SYSCTR_PREFIX"
fi
export SYSCTR_PREFIX
marker=$SYSCTR_PREFIX/.sysctr-harness-$TEST_RUN_ID
echo "$TEST_RUN_ID" >"$marker" || bail_out "cannot write to SYSCTR_PREFIX $SYSCTR_PREFIX"
cleanup_push "rm -f '$marker'"

# ---- registries -------------------------------------------------------------
registry_start --id open || bail_out "registry did not start"
pass "registry listens on $REGISTRY_ADDR"
registry_start --id auth --auth "tester:pw-$TEST_RUN_ID" || bail_out "auth registry did not start"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "$REGISTRY_auth_URL/v2/")" 401 \
	"htpasswd registry refuses anonymous requests"
registry_use open

# ---- the booted systemd -----------------------------------------------------
nspawn_boot || { fail_with_journal "boot nspawn systemd"; bail_out "no systemd"; }
assert_match "$NSPAWN_STATE" '^(running|degraded)$' "nspawn systemd is up ($NSPAWN_STATE)"
diag "TIME boot of the nspawn systemd: ${NSPAWN_BOOT_MS} ms"
if [[ "$NSPAWN_STATE" == degraded ]]; then
	diag "failed units: $(in_systemctl --failed --plain --no-legend | awk '{print $1}' | tr '\n' ' ')"
fi
assert_eq "$(in_systemd cat /proc/1/comm)" systemd "PID 1 inside is systemd"
assert_eq "$(in_systemd hostname)" "$NSPAWN_NAME" "hostname is the unique machine name"
assert_match "$(in_systemctl is-enabled docker-registry.service 2>&1)" '^masked' \
	"docker-registry.service is masked inside"
assert_eq "$(in_systemctl list-units --state=running --plain --no-legend 'postgresql*' 'podman*' 'cni-*' | wc -l)" 0 \
	"no package services (postgresql, podman, cni) running inside"
assert_eq "$(in_systemd cat "$marker")" "$TEST_RUN_ID" "SYSCTR_PREFIX is bound at the same path"
assert_eq "$(in_systemd stat -f -c %T /var/lib)" tmpfs "/var/lib (so /var/lib/sysctr) is on the volatile tmpfs"
ok "/etc/systemd/system exists inside" in_systemd test -d /etc/systemd/system
ok "localhost resolves inside" in_systemd getent hosts localhost
ok "/usr/bin/awk (an /etc/alternatives link) works inside" in_systemd awk 'BEGIN{exit 0}'
# sysctr talks to systemd over the system bus (sd-bus), as a client started by nsenter
assert_match "$(in_systemd busctl get-property org.freedesktop.systemd1 /org/freedesktop/systemd1 \
	org.freedesktop.systemd1.Manager Virtualization 2>&1)" '^s "systemd-nspawn"$' \
	"D-Bus system bus reaches systemd inside (Virtualization=systemd-nspawn)"

# a written Type=notify unit whose shell loop reports ready on its 3rd round
nspawn_put /etc/systemd/system/harness-notify.service <<'EOF'
[Unit]
Description=harness self-test notify unit

[Service]
Type=notify
NotifyAccess=all
TimeoutStartSec=20
# "$$" is systemd's escape for a literal "$"
ExecStart=/bin/sh -c 'i=0; while :; do i=$$((i+1)); if [ $$i = 3 ]; then systemd-notify --pid=$$$$ --ready --status="round $$i"; fi; sleep 0.2; done'
EOF
in_systemctl daemon-reload
if in_systemctl start harness-notify.service; then
	assert_eq "$(in_systemctl is-active harness-notify.service)" active "Type=notify unit is active after start"
	assert_match "$(in_systemctl show -p StatusText --value harness-notify.service)" '^round 3$' \
		"its READY/STATUS message reached systemd"
	mainpid=$(in_systemctl show -p MainPID --value harness-notify.service)
	assert_match "$(in_systemd cat "/proc/$mainpid/cgroup")" 'system.slice/harness-notify.service' \
		"its main process is in the unit's cgroup"
else
	fail_with_journal "start Type=notify unit" -u harness-notify.service
fi

# a transient unit: a python3 HTTP server on a per-run port, reached from the host
http_port=$(alloc_port) || bail_out "alloc_port"
mkdir -p "$TEST_TMPDIR/www" && echo "hello $TEST_RUN_ID" >"$TEST_TMPDIR/www/index.txt"
if in_systemd systemd-run -q --unit=harness-http -p WorkingDirectory="$TEST_TMPDIR/www" \
	python3 -m http.server --bind 127.0.0.1 "$http_port"; then
	wait_until 15 curl -fsS "http://127.0.0.1:$http_port/index.txt"
	assert_eq "$(curl -fsS "http://127.0.0.1:$http_port/index.txt")" "hello $TEST_RUN_ID" \
		"transient python3 http.server unit inside answers on the host loopback"
else
	fail_with_journal "systemd-run transient unit"
fi
ok "stopping the transient unit" in_systemctl stop harness-http.service

# ---- registry from inside, images pushed with skopeo ------------------------
ok "host loopback registry reachable from inside" in_systemd curl -fsS "$REGISTRY_open_URL/v2/"

mkdir -p "$TEST_TMPDIR/payload/etc"
echo "payload $TEST_RUN_ID" >"$TEST_TMPDIR/payload/etc/harness-payload"
ok "build a busybox image with umoci" build_busybox_image hello v1 "$TEST_TMPDIR/payload" \
	--config.cmd=-c --config.cmd='cat /etc/harness-payload' --config.label=org.example.harness=1
ok "make_image (one layer + config)" make_image plain 1.0 "$TEST_TMPDIR/payload" \
	--config.env=A=b --config.label=k=v
assert_eq "$(image_config_json plain 1.0 | jq -r '.config.Labels.k + .config.Env[0]')" "vA=b" \
	"image config carries labels and env"
layer=$(image_manifest hello v1 | jq -r '.layers[0].digest')
ok "umoci-built layers are complete tar streams" tar -tzf "$IMAGES_DIR/hello/blobs/${layer/://}"
ok "skopeo pushes hello:v1" image_push hello v1
ok "skopeo pushes hello:v2 (same image, second tag)" image_push hello v1 "$REGISTRY_ADDR/hello:v2"
ok "skopeo pushes plain:1.0 under a nested name" image_push plain 1.0 "$REGISTRY_ADDR/sysctr-test/plain:1.0"
assert_eq "$(registry_tags hello | tr '\n' ' ')" "v1 v2 " "tags listed via the registry API"
assert_eq "$(in_systemd curl -fsS "$REGISTRY_open_URL/v2/hello/tags/list" | jq -r '.tags|sort|join(",")')" "v1,v2" \
	"tags listed from inside the booted systemd"
assert_match "$(registry_digest hello v1)" '^sha256:[0-9a-f]{64}$' "manifest digest from the registry"

# auth variant: push with credentials, anonymous pull refused, authfile works
REGISTRY_ADDR=$REGISTRY_auth_ADDR REGISTRY_USER=$REGISTRY_auth_USER REGISTRY_PASSWORD=$REGISTRY_auth_PASSWORD \
	ok "push to the htpasswd registry with credentials" image_push hello v1
ok_fails "anonymous skopeo inspect is refused" \
	skopeo inspect --tls-verify=false "docker://$REGISTRY_auth_ADDR/hello:v1"
ok "skopeo inspect with the generated authfile" \
	skopeo inspect --tls-verify=false --authfile "$REGISTRY_auth_AUTHFILE" "docker://$REGISTRY_auth_ADDR/hello:v1"

# ---- etcd image from Debian's etcd-server ----------------------------------
if time_ms etcd_ms build_etcd_image etcd v3; then
	pass "build etcd image from the etcd-server .deb"
	diag "TIME build of the etcd image: ${etcd_ms} ms (deb cached in $SYSCTR_TEST_CACHE)"
	image_rootfs etcd v3 "$TEST_TMPDIR/etcd-bundle"
	rootfs=$TEST_TMPDIR/etcd-bundle/rootfs
	assert_match "$(chroot "$rootfs" /usr/bin/etcd --version 2>&1)" 'etcd Version: 3\.' \
		"etcd --version runs inside the image rootfs (libs complete)"
	ok "skopeo pushes etcd:v3" image_push etcd v3

	# run the image's etcd as a Type=notify unit under the booted systemd
	cport=$(alloc_port) pport=$(alloc_port)
	mkdir -p "$TEST_TMPDIR/etcd-data"
	t0=$(now_ms)
	if in_systemd systemd-run -q --unit=harness-etcd -p Type=notify -p NotifyAccess=main \
		-p RootDirectory="$rootfs" -p MountAPIVFS=yes -p BindPaths="$TEST_TMPDIR/etcd-data:/var/lib/etcd" \
		-p TimeoutStartSec=60 \
		/usr/bin/etcd --name harness --data-dir /var/lib/etcd/harness \
		--listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
		--listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
		--initial-cluster "harness=http://127.0.0.1:$pport"; then
		diag "TIME etcd from the image ready (systemd-run returned, Type=notify): $(( $(now_ms) - t0 )) ms"
		assert_eq "$(in_systemctl is-active harness-etcd.service)" active "etcd from the image is an active Type=notify unit"
		ok "etcdctl put through its per-run port" etcdctl --endpoints "127.0.0.1:$cport" put harness "$TEST_RUN_ID"
		assert_eq "$(etcdctl --endpoints "127.0.0.1:$cport" get --print-value-only harness)" "$TEST_RUN_ID" \
			"etcdctl get returns it"
		assert_match "$(systemd_journal -u harness-etcd.service)" 'ready to serve client requests' \
			"journal shows etcd's own log lines"
		ok "stop etcd" in_systemctl stop harness-etcd.service
	else
		fail_with_journal "etcd from the image as a notify unit" -u harness-etcd.service
	fi
else
	fail "build etcd image from the etcd-server .deb"
fi

# ---- atomic-format image ----------------------------------------------------
if ok "build atomic-format etcd image" build_atomic_etcd_image etcd-atomic v1; then
	image_rootfs etcd-atomic v1 "$TEST_TMPDIR/atomic-bundle"
	ex=$TEST_TMPDIR/atomic-bundle/rootfs/exports
	for f in manifest.json config.json.template service.template tmpfiles.template \
		hostfs/etc/sysctr-test-etcd/etcd.conf; do
		assert_file "$ex/$f" "atomic image has /exports/$f"
	done
	ok "manifest.json is JSON with defaultValues" jq -e '.defaultValues.ETCD_PORT' "$ex/manifest.json"
	# the template is JSON once its variables are filled in the way sysctr will
	# ($ADDTL_MOUNTS empty, the others plain strings)
	ok "config.json.template renders to valid JSON" sh -c \
		"sed -e 's/\\\$ADDTL_MOUNTS//' -e 's/\\\$[{]\\{0,1\\}[A-Z_]*[}]\\{0,1\\}/x/g' '$ex/config.json.template' | jq -e .process.args"
	assert_contains "$(cat "$ex/service.template")" 'ExecStart=$EXEC_START' "service.template uses \$EXEC_START"
	ok "skopeo pushes etcd-atomic:v1" image_push etcd-atomic v1
	assert_eq "$(registry_catalog | sort | tr '\n' ' ')" "etcd etcd-atomic hello sysctr-test/plain " \
		"registry catalog lists every pushed repository"
fi

# ---- teardown ---------------------------------------------------------------
name=$NSPAWN_NAME pidns=$NSPAWN_PIDNS spid=$SYSTEMD_PID
if nspawn_teardown; then pass "nspawn teardown is clean"; else fail "nspawn teardown is clean"; fi
diag "TIME teardown of the nspawn systemd: ${NSPAWN_TEARDOWN_MS:-?} ms"
ok "no leftover nspawn process, cgroup or mount" nspawn_leftovers
ok_fails "its systemd (host pid $spid) is gone" pid_alive "$spid"
ok_fails "no /proc/mounts entry names $name" grep -qF "$name" /proc/mounts
ok_fails "no host mount of a bound path appeared" grep -qF "$TEST_TMPDIR" /proc/mounts
left=""
for p in /proc/[0-9]*; do [[ "$(readlink "$p/ns/pid" 2>/dev/null)" == "$pidns" ]] && left+=" ${p#/proc/}"; done
assert_eq "$left" "" "no process left in its pid namespace"
ok_fails "no nspawn process for this machine" pgrep -f "systemd-nspawn.* -M $name( |$)"
registry_stop "$REGISTRY_open_DIR"; registry_stop "$REGISTRY_auth_DIR"
ok_fails "registries stopped" pid_alive "$REGISTRY_open_PID"

done_testing
