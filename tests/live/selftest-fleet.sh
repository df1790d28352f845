#!/bin/bash
# Self-test of tests/lib/fleet.sh: three throw-away booted systemds, a
# registry node and a client node, each in its own network namespace on a
# private bridge (in a switch namespace of this run).  Checks that each host
# runs under its own name and address, reaches the registry and the other
# hosts (ICMP, TCP, names from /etc/hosts), and cannot reach the machine's
# loopback or anything outside the subnet; that a host's persistent state
# (/etc dirs, /var, /usr/local/bin, machine-id, enabled units, journal)
# survives a crash (SIGKILL of its PID 1) and a clean poweroff; that
# fleet_push puts an image into the registry node, seen from a host; and that
# teardown leaves no namespace, veth, nspawn process or cgroup behind.
# Needs no sysctr.  TAP on stdout; timings as "# TIME" diagnostics.
# shellcheck disable=SC2016  # single-quoted $ in inner shell text is meant literally
# shellcheck disable=SC2154  # time_ms results and libtest.sh's _cleanups are set indirectly

LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)
# shellcheck source=../lib/libtest.sh
. "$LIB/libtest.sh"
# shellcheck source=../lib/images.sh
. "$LIB/images.sh"
# shellcheck source=../lib/nspawn.sh
. "$LIB/nspawn.sh"
# shellcheck source=../lib/fleet.sh
. "$LIB/fleet.sh"

require_root
require_cmd systemd-nspawn nsenter ip skopeo umoci docker-registry curl jq python3 busybox systemd-id128

T_START=$(now_ms)
HOSTS=(h1 h2 h3)
declare -A IP=([reg]=10.213.0.2 [h1]=10.213.0.11 [h2]=10.213.0.12 [h3]=10.213.0.13 [cli]=10.213.0.50)

# ------------------------------------------------------------ bring-up ---
fleet_net_up || bail_out "fleet_net_up"
assert_eq "$(ip netns list | awk '{print $1}' | grep -cx "$FLEET_ID")" 1 "switch netns $FLEET_ID exists"
assert_eq "$(ip -n "$FLEET_ID" -o link show br0 2>/dev/null | grep -c 'state UP\|,UP')" 1 "  ... with br0 up"
fleet_registry_start reg "${IP[reg]}" || bail_out "registry node"
assert_eq "$FLEET_REGISTRY" "${IP[reg]}:5000" "registry node listens on its bridge IP:5000"
assert_eq "$(tr '\0' ' ' <"/proc/${_FLEET_PID[reg]}/cmdline" | awk '{print $1}')" "$DOCKER_REGISTRY_BIN" \
	"  ... docker-registry itself (ip netns exec exec'd it)"
assert_eq "$(readlink "/proc/${_FLEET_PID[reg]}/ns/net")" "net:[$(stat -L -c %i "/run/netns/$(fleet_netns reg)")]" \
	"  ... in its own netns"
for h in "${HOSTS[@]}"; do fleet_host_add "$h" "${IP[$h]}" || bail_out "fleet_host_add $h"; done
fleet_client_add cli "${IP[cli]}" || bail_out "fleet_client_add"
ok_fails "a second node with a taken IP is refused" fleet_client_add cli2 "${IP[h1]}"
ok_fails "an IP outside $FLEET_SUBNET is refused" fleet_client_add cli3 10.99.0.1
ok_fails "a name that is not a hostname is refused" fleet_client_add "Bad_Name" 10.213.0.99
assert_eq "$(ip -o link show type veth 2>/dev/null | grep -c .)" "$(grep -c . <<<"$_FLEET_VETH0")" \
	"no veth was made in the machine's root netns"

for h in "${HOSTS[@]}"; do
	if fleet_host_boot "$h"; then
		pass "boot $h: ${FLEET_STATE[$h]} after ${FLEET_BOOT_MS[$h]} ms"
	else
		fail "boot $h"; bail_out "host $h did not boot"
	fi
done
assert_eq "$(grep -c nspawn_teardown <<<"$(printf '%s\n' "${_cleanups[@]}")")" 0 \
	"no global nspawn_teardown cleanup left registered (the fleet has its own)"
assert_eq "${NSPAWN_PID:-}${SYSTEMD_PID:-}" "" "the NSPAWN_* globals are the caller's (empty) again"

# ------------------------------------------------------- each host ---
for h in "${HOSTS[@]}"; do
	assert_eq "$(on_host "$h" systemctl is-system-running 2>&1)" running "$h: is-system-running says running"
	assert_eq "$(on_host "$h" hostname)" "$h" "$h: hostname is its name"
	netns_ino=$(stat -L -c %i "/run/netns/$(fleet_netns "$h")")
	assert_eq "$(readlink "/proc/${FLEET_SYSTEMD_PID[$h]}/ns/net")/$(on_host "$h" readlink /proc/self/ns/net)" \
		"net:[$netns_ino]/net:[$netns_ino]" "$h: its PID 1 and on_host are in its netns"
	assert_eq "$(on_host "$h" ip -4 -o addr show dev eth0 | awk '{print $4}')" "$(fleet_host_ip "$h")/24" \
		"$h: eth0 has $(fleet_host_ip "$h")/24"
	assert_eq "$(on_host "$h" curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$FLEET_REGISTRY/v2/")" 200 \
		"$h: the registry answers /v2/ (200)"
	ok "$h: isolated (machine's 127.0.0.1:PORT unreachable, only the subnet route, no default route)" \
		fleet_check_isolated "$h"
	caps=$(awk '/^CapBnd/{print $2}' "/proc/${FLEET_SYSTEMD_PID[$h]}/status")
	assert_eq "$(( 0x$caps >> 12 & 1 ))" 1 "$h: keeps CAP_NET_ADMIN (its netns is its own)"
	assert_eq "$(on_host "$h" test -e /etc/resolv.conf && echo there || echo none)" none "$h: no /etc/resolv.conf"
	for o in "${HOSTS[@]}"; do
		[[ "$o" == "$h" ]] && continue
		ok "$h: pings $o ($(fleet_host_ip "$o"))" on_host "$h" busybox ping -c1 -W2 "$(fleet_host_ip "$o")"
		assert_eq "$(on_host "$h" getent hosts "$o" | awk '{print $1}')" "$(fleet_host_ip "$o")" \
			"$h: resolves $o through /etc/hosts"
	done
done
ttl=$(cat /proc/sys/net/ipv4/ip_default_ttl)
ok "h1: /proc/sys/net is writable" on_host h1 sh -c 'echo 33 >/proc/sys/net/ipv4/ip_default_ttl'
assert_eq "$(on_host h1 cat /proc/sys/net/ipv4/ip_default_ttl)/$(on_host h2 cat /proc/sys/net/ipv4/ip_default_ttl)/$(cat /proc/sys/net/ipv4/ip_default_ttl)" \
	"33/$ttl/$ttl" "  ... and its net sysctls are its own (h2's and the machine's unchanged)"
diag "probe: machine's 127.0.0.1:$FLEET_PROBE_PORT"

# TCP between hosts: a listener on h2 (a transient unit), fetched from h1 by name
if on_host h2 systemd-run -q --unit=fleet-http -p WorkingDirectory=/etc \
	python3 -m http.server --bind "$(fleet_host_ip h2)" 8080 &&
	wait_until 10 on_host h2 curl -fs -o /dev/null --max-time 1 "http://$(fleet_host_ip h2):8080/"; then
	assert_eq "$(on_host h1 curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://h2:8080/hosts)" 200 \
		"h1 fetches http://h2:8080/ from a unit on h2"
	assert_eq "$(in_netns cli curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$(fleet_host_ip h2):8080/hosts")" 200 \
		"the client node fetches it too (by IP: a client has the machine's /etc/hosts)"
	on_host h2 systemctl stop fleet-http.service
else
	fail "a TCP listener on h2"; fleet_journal h2 -u fleet-http.service | tail -n 20 | sed 's/^/#   /'
fi
assert_eq "$(in_netns cli curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$FLEET_REGISTRY/v2/")" 200 \
	"client node: the registry answers"
ok "client node: isolated" fleet_check_isolated cli
ok "registry node: isolated" fleet_check_isolated reg
ok_fails "the machine's root netns has no route into the test subnet" sh -c "ip -4 route show | grep -F '${FLEET_SUBNET%/*}'"

# ----------------------------------------------- persistent state: crash ---
MARK=mark-$TEST_RUN_ID
MID=$(on_host h1 cat /etc/machine-id)
assert_eq "$MID" "$(cat "$(fleet_host_dir h1)/machine-id")" "h1: /etc/machine-id is its fixed one"
printf '[Unit]\nDescription=fleet marker\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c "echo %s >/run/fleet-marker"\n[Install]\nWantedBy=multi-user.target\n' \
	"$MARK" | fleet_put h1 /etc/systemd/system/fleet-marker.service
ok "h1: enable a unit in the persistent /etc/systemd/system" on_host h1 systemctl enable -q fleet-marker.service
echo "$MARK" | fleet_put h1 /etc/sysctr/fleet-mark
echo "$MARK" | fleet_put h1 /var/lib/fleet-mark
printf '#!/bin/sh\necho %s\n' "$MARK" | fleet_put h1 /usr/local/bin/fleet-mark 0755
ok "h1: /usr/local/bin is writable" on_host h1 test -x /usr/local/bin/fleet-mark
echo scratch | fleet_put h1 /etc/fleet-volatile
on_host h1 sync
spid=${FLEET_SYSTEMD_PID[h1]} npid=${FLEET_NSPAWN_PID[h1]} pidns=${_FLEET_NSP[h1:NSPAWN_PIDNS]}
time_ms kill_ms fleet_host_kill h1; rc=$?
assert_eq "$rc" 0 "h1: fleet_host_kill (SIGKILL of its PID 1) cleans up (${kill_ms} ms)"
ok_fails "  ... its systemd is gone" pid_alive "$spid"
ok_fails "  ... its nspawn is gone" pid_alive "$npid"
left=""
for p in /proc/[0-9]*; do [[ "$(readlink "$p/ns/pid" 2>/dev/null)" == "$pidns" ]] && left+=" ${p#/proc/}"; done
assert_eq "$left" "" "  ... no process left in its pid namespace"
ok "  ... no leftovers (cgroups, mounts)" fleet_host_leftovers h1
ok_fails "  ... not running" fleet_host_running h1
ok "  ... the other hosts still run" on_host h2 busybox ping -c1 -W2 "$(fleet_host_ip h3)"
ok_fails "  ... and no longer reach it" on_host h2 busybox ping -c1 -W1 "$(fleet_host_ip h1)"
if fleet_host_boot h1; then pass "h1 boots again after the crash: ${FLEET_STATE[h1]} (${FLEET_BOOT_MS[h1]} ms)"
else fail "h1 boots again after the crash"; bail_out "h1 did not boot again"; fi
assert_ne "${FLEET_SYSTEMD_PID[h1]}" "$spid" "  ... a new systemd"
assert_eq "$(on_host h1 cat /etc/machine-id)" "$MID" "  ... same machine-id"
assert_eq "$(on_host h1 cat /etc/sysctr/fleet-mark 2>&1)" "$MARK" "  ... /etc/sysctr (bound) kept its file"
assert_eq "$(on_host h1 cat /var/lib/fleet-mark 2>&1)" "$MARK" "  ... /var kept its file"
assert_eq "$(on_host h1 fleet-mark 2>&1)" "$MARK" "  ... /usr/local/bin kept its program (found on PATH)"
assert_eq "$(on_host h1 test -e /etc/fleet-volatile && echo there || echo gone)" gone "  ... the rest of /etc is fresh"
assert_eq "$(on_host h1 systemctl is-enabled fleet-marker.service 2>&1)/$(on_host h1 cat /run/fleet-marker 2>&1)" \
	"enabled/$MARK" "  ... the enabled unit stayed enabled and ran at boot (no first-boot preset)"
assert_eq "$(on_host h1 journalctl --list-boots --no-pager -q 2>/dev/null | grep -c .)" 2 "  ... its journal has both boots"
assert_eq "$(on_host h1 hostname)/$(on_host h1 getent hosts h3 | awk '{print $1}')" "h1/$(fleet_host_ip h3)" \
	"  ... hostname and /etc/hosts again"
ok "  ... reaches h2 again" on_host h1 busybox ping -c1 -W2 "$(fleet_host_ip h2)"
ok "  ... and is still isolated" fleet_check_isolated h1

# --------------------------------------------- clean poweroff and boot ---
echo "$MARK" | fleet_put h2 /var/lib/fleet-mark
spid=${FLEET_SYSTEMD_PID[h2]}
time_ms off_ms fleet_host_poweroff h2; rc=$?
assert_eq "$rc" 0 "h2: fleet_host_poweroff is clean (${off_ms} ms)"
ok_fails "  ... its systemd is gone" pid_alive "$spid"
ok "  ... no leftovers" fleet_host_leftovers h2
ok "  ... a second poweroff is a no-op" fleet_host_poweroff h2
if fleet_host_boot h2; then pass "h2 boots again: ${FLEET_STATE[h2]} (${FLEET_BOOT_MS[h2]} ms)"
else fail "h2 boots again"; bail_out "h2 did not boot again"; fi
assert_match "$(on_host h2 journalctl -b -1 -q --no-pager 2>&1 | tail -n 5)" 'Journal stopped' \
	"  ... its previous boot ended with a clean shutdown (journal)"
assert_eq "$(on_host h2 cat /var/lib/fleet-mark 2>&1)" "$MARK" "  ... /var kept its file"
ok "  ... reaches h1" on_host h2 busybox ping -c1 -W2 "$(fleet_host_ip h1)"
fleet_host_boot h2 2>/dev/null; rc=$?
assert_eq "$rc" 1 "booting a running host is refused"

# ------------------------------------------------------------- images ---
if build_busybox_image fleetbb v1 >"$TEST_TMPDIR/build.log" 2>&1; then
	pass "build a busybox image"
	ref=$(fleet_push "$(image_ref fleetbb v1)" fleet/bb:v1 2>"$TEST_TMPDIR/push.log"); rc=$?
	assert_eq "$rc/$ref" "0/$FLEET_REGISTRY/fleet/bb:v1" "fleet_push into the registry node" || diag_file "$TEST_TMPDIR/push.log"
	assert_eq "$(on_host h3 curl -fsS --max-time 5 "http://$FLEET_REGISTRY/v2/fleet/bb/tags/list" | jq -r '.tags[]')" v1 \
		"h3 lists the tag through the registry API"
	digest=$(skopeo inspect --format '{{.Digest}}' "$(image_ref fleetbb v1)" 2>/dev/null)
	assert_eq "$(on_host h3 skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$ref" 2>&1)" "$digest" \
		"h3 inspects it with skopeo: the digest pushed"
else
	fail "build a busybox image"; diag_file "$TEST_TMPDIR/build.log" 20
fi

# ----------------------------------------------------------- teardown ---
pids=() pidnss=()
for h in "${HOSTS[@]}"; do pids+=("${FLEET_SYSTEMD_PID[$h]}" "${FLEET_NSPAWN_PID[$h]}"); pidnss+=("${_FLEET_NSP[$h:NSPAWN_PIDNS]}"); done
regpid=${_FLEET_PID[reg]}
time_ms down_ms fleet_down; rc=$?
assert_eq "$rc" 0 "fleet_down is clean (${down_ms} ms)"
assert_eq "$(ip netns list | grep -cF "$TEST_RUN_ID")" 0 "no netns named with $TEST_RUN_ID"
assert_eq "$(ip -o link show type veth 2>/dev/null | grep -c .)" "$(grep -c . <<<"$_FLEET_VETH0")" "no veth in the root netns"
ok_fails "no nspawn process of this run" pgrep -f -- "-M $FLEET_MID-"
left=""
for p in "${pids[@]}" "$regpid"; do pid_alive "$p" && left+=" $p"; done
for p in /proc/[0-9]*; do
	ns=$(readlink "$p/ns/pid" 2>/dev/null) || continue
	for n in "${pidnss[@]}"; do [[ "$ns" == "$n" ]] && left+=" ${p#/proc/}"; done
done
assert_eq "$left" "" "no host's systemd, nspawn, pid-namespace process or the registry is left"
cgl=""
for cg in $(_cgroup_dirs); do for d in "$cg/$FLEET_MID"-*; do [[ -d "$d" ]] && cgl+=" $d"; done; done
assert_eq "$cgl" "" "no cgroup of this run"
assert_eq "$(grep -lF -e "$FLEET_ID" -e "$FLEET_MID" /proc/[0-9]*/mountinfo 2>/dev/null | grep -c .)" 0 \
	"no mount naming this run in any mount namespace"
ok "fleet_leftovers: nothing" fleet_leftovers
ok "fleet_down again is a no-op" fleet_down

diag "TIME selftest-fleet: $(( $(now_ms) - T_START )) ms"
done_testing
