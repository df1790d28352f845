# shellcheck shell=bash
# fleet.sh — several throw-away booted systemds ("test hosts") on a private
# network, plus a registry host, for live tests that need more than one
# machine (an etcd cluster, flannel).  Needs libtest.sh and nspawn.sh sourced
# first.  Root only.
#
#   fleet_net_up                          # switch netns + bridge
#   fleet_registry_start reg 10.213.0.2   # FLEET_REGISTRY=10.213.0.2:5000
#   fleet_host_add h1 10.213.0.11         # netns, veth, persistent state
#   fleet_host_boot h1                    # boots it
#   on_host h1 systemctl is-active foo.service
#   fleet_push "$(image_ref etcd v1)" etcd:v1   # into the registry host
#   fleet_host_kill h1; fleet_host_boot h1      # crash and boot again
#   (teardown is registered with the cleanup registry; fleet_down runs it now)
#
# The fleet's state lives in this shell's variables: call the functions that
# change it (fleet_net_up, fleet_*_add, fleet_registry_start, fleet_host_boot,
# _poweroff, _kill, fleet_down) directly, not in $(...), a pipeline or `ok`
# (which runs its command in a subshell); `ok ... on_host ...`,
# `ok ... fleet_check_isolated ...` and the like are fine.
#
# Network.  Every run makes its own "switch" network namespace fl-$TEST_RUN_ID
# holding a bridge br0 (no address), and one namespace per node
# fl-$TEST_RUN_ID-NAME.  A node's link is a veth pair made inside the switch
# (vN on br0) with its peer moved straight into the node namespace as eth0, so
# no veth ever appears in the machine's root namespace and veth names stay
# short (≤15 chars) without carrying the run id.  Nodes get FLEET_SUBNET
# addresses (default 10.213.0.0/24; the same for every run, which is fine:
# each run has its own switch), lo up, and no default route: traffic can only
# go between the nodes of this run.  The machine's loopback is not reachable
# (127.0.0.1 inside a node is the node's own lo), see fleet_check_isolated.
#
# Kinds of node:
#   host      a booted systemd (nspawn_boot with --network-namespace-path,
#             --private-network, --hostname=NAME); all namespaces incl. net
#             entered by on_host
#   registry  Debian's docker-registry ($DOCKER_REGISTRY_BIN) started with
#             `ip netns exec`, listening on IP:5000; no systemd
#   client    just a namespace on the bridge (in_netns NAME CMD...), e.g. to
#             run etcdctl against the cluster from outside its hosts
#
# What each host gets (besides what nspawn_boot always does: volatile root,
# host /usr read-only, presets "disable *", masks, SYSCTR_PREFIX and
# TEST_TMPDIR bound at the same path):
#   $FLEET_DIR/NAME/var             bound at /var (journal kept: var/log/journal)
#   $FLEET_DIR/NAME/etc/SUB         bound at /etc/SUB, for every SUB of
#                                   FLEET_ETC_DIRS at fleet_host_add time
#   $FLEET_DIR/NAME/usr-local-bin   bound at /usr/local/bin (writable)
#   $FLEET_DIR/NAME/machine-id      bound read-only at /etc/machine-id: fixed
#                                   per host, so no boot is a first boot
#                                   (first-boot preset-all would apply the
#                                   "disable *" preset to the persistent
#                                   /etc/systemd/system and disable what the
#                                   test enabled) and the journal directory
#                                   stays the same across boots
#   extra SRC:DST binds given to fleet_host_add, FLEET_BINDS, FLEET_BINDS_RO
#   hostname NAME; /etc/hosts naming every node of the fleet (rewritten on
#   every running host when a node is added)
# The state survives fleet_host_poweroff and fleet_host_kill; the rest of /etc
# and everything outside the binds is a fresh tmpfs on every boot.  The netns
# (address, sysctls) outlives a boot too, but its eth0 is up only while the
# host is booted: a host that is down does not answer at all (no ping, no TCP
# reset from its kernel), like a crashed machine.
#
# Checked on this machine (Debian 12, systemd 252, iproute2 6.1):
# * nspawn 252 --network-namespace-path=/run/netns/X puts the container in X;
#   in_systemd (nsenter -a) then lands in X too.  Alone, it gives the
#   container no CAP_NET_ADMIN and a read-only /proc/sys/net (nspawn does not
#   count X as a private network); with --private-network as well it still
#   uses X (no new netns, no host0) and treats it as the container's own:
#   CAP_NET_ADMIN kept, /proc/sys/net writable, as on a real host (flannel).
# * --hostname=NAME sets the hostname, so the machine name (used by
#   nspawn_boot for the cgroup subtree and /run/systemd/nspawn/propagate/)
#   can carry the run id: fleet-$TEST_RUN_ID-NAME, unique across parallel
#   runs, and not containing the netns name (nspawn_leftovers greps the
#   mount table for the machine name; /run/netns/fl-... mounts must not match).
# * --resolv-conf=off: no /etc/resolv.conf inside (nspawn would copy the
#   machine's, naming a nameserver the hosts have no route to); names of the
#   fleet resolve through /etc/hosts.
# * The read-only machine-id bind makes systemd-machine-id-commit.service run
#   and fail (state "degraded"): it is masked, so a fresh host is "running".
# * nspawn_boot pushes a global `nspawn_teardown` cleanup that acts on the
#   NSPAWN_* globals.  The fleet runs every nspawn.sh function with the host's
#   values swapped into those globals and the caller's restored afterwards,
#   drops that cleanup again (only when the caller has no systemd of its own:
#   it would be that one's) and registers `fleet_host_poweroff NAME` instead.
# * `ip netns delete` of a node whose veth is still up leaves the veth in the
#   switch for a moment (namespaces die asynchronously): the fleet deletes the
#   veth first.
# * No ping(8) on this machine: busybox ping works inside the hosts (they keep
#   CAP_NET_RAW).
#
# Env read: FLEET_SUBNET (CIDR, default 10.213.0.0/24), FLEET_DIR (default
#   $TEST_TMPDIR/fleet), FLEET_ETC_DIRS (default "systemd/system tmpfiles.d
#   containers sysctr"), FLEET_BINDS / FLEET_BINDS_RO (SRC[:DST], every host,
#   read at boot), FLEET_NSPAWN_ARGS (extra nspawn options for every host),
#   DOCKER_REGISTRY_BIN, plus what nspawn.sh reads (NSPAWN_MASK_EXTRA,
#   IN_SYSTEMD_ENV, NSPAWN_BOOT_TIMEOUT...).
# Set: FLEET_ID (switch netns name), FLEET_MID (prefix of the machine names),
#   FLEET_NODES (names in order), per node
#   FLEET_IP[NAME] FLEET_NETNS[NAME] FLEET_KIND[NAME]; per host
#   FLEET_MACHINE[NAME] FLEET_SYSTEMD_PID[NAME] FLEET_NSPAWN_PID[NAME]
#   FLEET_STATE[NAME] FLEET_BOOT_MS[NAME] FLEET_BOOTS[NAME] (boots so far);
#   FLEET_REGISTRY (IP:5000 of the last registry started), FLEET_REGISTRY_NODE,
#   FLEET_PROBE_PORT.
#
# Functions:
#   fleet_net_up                    switch netns + bridge + probe (idempotent)
#   fleet_host_add NAME IP [SRC:DST...]   host netns, veth, state dirs, extra binds
#   fleet_host_boot NAME            boot (or boot again) with its state; waits
#                                   for running/degraded
#   fleet_host_poweroff NAME        clean poweroff (nspawn_teardown); idempotent
#   fleet_host_kill NAME            crash: SIGKILL all its processes at once, reap, clean up
#   fleet_host_running NAME         0 if its systemd is alive
#   fleet_host_leftovers NAME       nspawn_leftovers for that host
#   on_host NAME CMD...             in_systemd for that host
#   on_host_sh NAME SCRIPT [ARGS...]    /bin/sh -c SCRIPT in that host
#   fleet_put NAME PATH [MODE]      write stdin to PATH inside the host
#   fleet_journal NAME [ARGS...]    the host's journal of this boot
#   fleet_host_dir NAME             print its state directory
#   fleet_host_ip NAME / fleet_netns NAME   print its IP / netns name
#   fleet_client_add NAME IP        a bare netns on the bridge
#   in_netns NAME CMD...            run CMD (root's mount namespace) in a node's netns
#   fleet_registry_start NAME IP    the registry node; sets FLEET_REGISTRY
#   fleet_push SRC-REF REPO:TAG     skopeo copy into it (from its netns); prints the ref
#   fleet_probe_start               a listener on the machine's 127.0.0.1 (for
#                                   the check; fleet_net_up starts it)
#   fleet_check_isolated NAME       the node cannot reach the machine's
#                                   loopback, has only the subnet route, no
#                                   default route; prints why not
#   fleet_down                      tear everything down now (idempotent)
#   fleet_leftovers                 print what is left of the fleet; 0 if nothing

# shellcheck disable=SC2034  # FLEET_* are for the caller, NSPAWN_* for nspawn.sh
[[ -n "${_FLEET_SH:-}" ]] && return 0
_FLEET_SH=1

: "${FLEET_SUBNET:=10.213.0.0/24}"
: "${FLEET_DIR:=$TEST_TMPDIR/fleet}"
: "${FLEET_ETC_DIRS:=systemd/system tmpfiles.d containers sysctr}"
: "${DOCKER_REGISTRY_BIN:=/usr/bin/docker-registry}"
FLEET_ID=fl-$TEST_RUN_ID      # switch netns; nodes' netns are $FLEET_ID-NAME
FLEET_MID=fleet-$TEST_RUN_ID  # hosts' machine names are $FLEET_MID-NAME
FLEET_NODES=()
FLEET_REGISTRY="" FLEET_REGISTRY_NODE="" FLEET_PROBE_PORT=""
declare -gA FLEET_IP=() FLEET_NETNS=() FLEET_KIND=() FLEET_MACHINE=() FLEET_SYSTEMD_PID=() \
	FLEET_NSPAWN_PID=() FLEET_STATE=() FLEET_BOOT_MS=() FLEET_BOOTS=()
declare -gA _FLEET_NSP=() _FLEET_SAVED=() _FLEET_ETC=() _FLEET_XBINDS=() _FLEET_VETH=() _FLEET_PID=()
_FLEET_NET=0 _FLEET_N=0 _FLEET_VETH0="" _FLEET_PROBE_PID="" _FLEET_STOPPED=()
# nspawn.sh's per-systemd globals, swapped per host
_FLEET_NSVARS="NSPAWN_NAME NSPAWN_PID SYSTEMD_PID NSPAWN_PIDNS NSPAWN_DIR NSPAWN_LOG NSPAWN_BOOT_MS
NSPAWN_STATE NSPAWN_CGROUPS NSPAWN_TEARDOWN_MS NSPAWN_STOPPED_PID NSPAWN_BINDS NSPAWN_BINDS_RO NSPAWN_ARGS"

_fleet_ip2int() {
	local a b c d
	IFS=. read -r a b c d <<<"$1"
	echo $(( (a << 24) | (b << 16) | (c << 8) | d ))
}

# _fleet_in_subnet IP    0 if IP is a host address of FLEET_SUBNET
_fleet_in_subnet() {
	[[ "$1" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || return 1
	local net=${FLEET_SUBNET%/*} len=${FLEET_SUBNET#*/} ip n mask
	ip=$(_fleet_ip2int "$1") n=$(_fleet_ip2int "$net")
	mask=$(( (0xffffffff << (32 - len)) & 0xffffffff ))
	(( (ip & mask) == (n & mask) && ip != n && ip != (n | (~mask & 0xffffffff)) ))
}

# fleet_net_up            the switch namespace with its bridge (idempotent)
fleet_net_up() {
	(( _FLEET_NET )) && return 0
	mkdir -p "$FLEET_DIR" || return 1
	_FLEET_VETH0=$(ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | sort)
	ip netns add "$FLEET_ID" || return 1
	cleanup_push "_fleet_net_down"
	reaper_add "ip netns delete $FLEET_ID 2>/dev/null"
	_FLEET_NET=1
	ip -n "$FLEET_ID" link set lo up &&
		ip -n "$FLEET_ID" link add br0 type bridge &&
		ip -n "$FLEET_ID" link set br0 up &&
		fleet_probe_start
}

_fleet_net_down() {
	(( _FLEET_NET )) || return 0
	ip netns delete "$FLEET_ID" 2>/dev/null
	_FLEET_NET=0
	return 0
}

# _fleet_node_add NAME IP KIND    netns with eth0 on the bridge
_fleet_node_add() {
	local name=$1 ip=$2 kind=$3
	[[ "$name" =~ ^[a-z0-9][a-z0-9-]{0,30}$ ]] || { echo "fleet: bad node name '$name'" >&2; return 2; }
	[[ -z "${FLEET_KIND[$name]:-}" ]] || { echo "fleet: node $name exists" >&2; return 2; }
	_fleet_in_subnet "$ip" || { echo "fleet: $ip is not a host address of $FLEET_SUBNET" >&2; return 2; }
	local n
	for n in "${FLEET_NODES[@]}"; do
		[[ "${FLEET_IP[$n]}" == "$ip" ]] && { echo "fleet: $ip is $n's already" >&2; return 2; }
	done
	fleet_net_up || return 1
	local ns=$FLEET_ID-$name veth=v$(( ++_FLEET_N ))
	ip netns add "$ns" || return 1
	FLEET_NODES+=("$name")
	FLEET_IP[$name]=$ip FLEET_NETNS[$name]=$ns FLEET_KIND[$name]=$kind _FLEET_VETH[$name]=$veth
	cleanup_push "_fleet_node_del $name"
	reaper_add "ip -n $FLEET_ID link delete $veth 2>/dev/null; ip netns delete $ns 2>/dev/null"
	mkdir -p "$FLEET_DIR/$name" || return 1
	ip -n "$ns" link set lo up &&
		ip -n "$FLEET_ID" link add "$veth" type veth peer name eth0 netns "$ns" &&
		ip -n "$FLEET_ID" link set "$veth" master br0 up &&
		ip -n "$ns" addr add "$ip/${FLEET_SUBNET#*/}" dev eth0 || return 1
	# a host's link is up only while it is booted
	[[ "$kind" == host ]] || ip -n "$ns" link set eth0 up || return 1
	_fleet_hosts_sync
}

_fleet_node_del() {
	local name=$1
	[[ -n "${FLEET_NETNS[$name]:-}" ]] || return 0
	ip -n "$FLEET_ID" link delete "${_FLEET_VETH[$name]}" 2>/dev/null
	ip netns delete "${FLEET_NETNS[$name]}" 2>/dev/null
	return 0
}

# fleet_host_add NAME IP [SRC:DST...]   a host: netns, veth, persistent state
#   ($FLEET_DIR/NAME, see header), and extra binds for every boot of it
fleet_host_add() {
	local name=$1 ip=$2
	shift 2 || return 2
	_fleet_node_add "$name" "$ip" host || return
	local d=$FLEET_DIR/$name sub
	FLEET_MACHINE[$name]=$FLEET_MID-$name FLEET_BOOTS[$name]=0
	_FLEET_ETC[$name]=$FLEET_ETC_DIRS _FLEET_XBINDS[$name]="$*"
	mkdir -p "$d/var/log/journal" "$d/usr-local-bin" || return 1
	for sub in $FLEET_ETC_DIRS; do mkdir -p "$d/etc/$sub" || return 1; done
	systemd-id128 new >"$d/machine-id" || return 1
}

# _fleet_with NAME CMD...   run CMD (an nspawn.sh function) with NAME's values
#   in the NSPAWN_* globals; the caller's are restored afterwards
_fleet_with() {
	local name=$1 v rc
	shift
	for v in $_FLEET_NSVARS; do _FLEET_SAVED[$v]=${!v-}; done
	for v in $_FLEET_NSVARS; do printf -v "$v" '%s' "${_FLEET_NSP[$name:$v]-}"; done
	"$@"; rc=$?
	for v in $_FLEET_NSVARS; do _FLEET_NSP[$name:$v]=${!v-}; done
	for v in $_FLEET_NSVARS; do printf -v "$v" '%s' "${_FLEET_SAVED[$v]}"; done
	FLEET_SYSTEMD_PID[$name]=${_FLEET_NSP[$name:SYSTEMD_PID]}
	FLEET_NSPAWN_PID[$name]=${_FLEET_NSP[$name:NSPAWN_PID]}
	return $rc
}

_fleet_boot_inner() {
	local name=$1 d=$FLEET_DIR/$1 sub
	NSPAWN_BINDS="$d/var:/var $d/usr-local-bin:/usr/local/bin"
	for sub in ${_FLEET_ETC[$name]}; do NSPAWN_BINDS+=" $d/etc/$sub:/etc/$sub"; done
	NSPAWN_BINDS+=" ${_FLEET_XBINDS[$name]} ${FLEET_BINDS:-}"
	NSPAWN_BINDS_RO="$d/machine-id:/etc/machine-id ${FLEET_BINDS_RO:-}"
	NSPAWN_ARGS="${_FLEET_SAVED[NSPAWN_ARGS]} --network-namespace-path=/run/netns/${FLEET_NETNS[$name]}"
	NSPAWN_ARGS+=" --hostname=$name ${FLEET_NSPAWN_ARGS:-}"
	NSPAWN_ARGS+=" --private-network --resolv-conf=off"
	NSPAWN_PID="" SYSTEMD_PID="" NSPAWN_PIDNS=""
	# the machine-id is a read-only bind: nothing to commit
	local NSPAWN_MASK_EXTRA="${NSPAWN_MASK_EXTRA:-} systemd-machine-id-commit.service"
	nspawn_boot "${FLEET_MACHINE[$name]}"
}

# fleet_host_boot NAME    boot host NAME (again, after a poweroff or a kill)
#   and wait until it is running/degraded; writes its /etc/hosts.  Sets
#   FLEET_SYSTEMD_PID[NAME] etc.  On failure the console tail is on stderr.
fleet_host_boot() {
	local name=$1
	[[ "${FLEET_KIND[$name]:-}" == host ]] || { echo "fleet_host_boot: no host $name" >&2; return 2; }
	if fleet_host_running "$name"; then
		echo "fleet_host_boot: $name is running" >&2; return 1
	fi
	# a previous boot that died by itself: clean up after it first
	[[ -n "${FLEET_NSPAWN_PID[$name]:-}" ]] && fleet_host_poweroff "$name"
	local log n rc
	log=$TEST_TMPDIR/nspawn-${FLEET_MACHINE[$name]}/console.log
	n=${FLEET_BOOTS[$name]}
	[[ -f "$log" ]] && mv -f "$log" "$log.$n"
	(( n == 0 )) && cleanup_push "fleet_host_poweroff $name"
	FLEET_BOOTS[$name]=$(( n + 1 ))
	ip -n "${FLEET_NETNS[$name]}" link set eth0 up || return 1
	_fleet_with "$name" _fleet_boot_inner "$name"; rc=$?
	# nspawn_boot registered `nspawn_teardown` for the globals: not ours
	[[ -z "${NSPAWN_PID:-}" ]] && cleanup_remove nspawn_teardown
	FLEET_STATE[$name]=${_FLEET_NSP[$name:NSPAWN_STATE]}
	FLEET_BOOT_MS[$name]=${_FLEET_NSP[$name:NSPAWN_BOOT_MS]}
	(( rc == 0 )) || return $rc
	_fleet_hosts_text | fleet_put "$name" /etc/hosts
}

# fleet_host_running NAME   0 if host NAME's systemd is alive
fleet_host_running() {
	local p=${FLEET_SYSTEMD_PID[$1]:-}
	[[ -n "$p" ]] && pid_alive "$p" && [[ "$(readlink "/proc/$p/ns/pid")" == "${_FLEET_NSP[$1:NSPAWN_PIDNS]:-}" ]]
}

# fleet_host_poweroff NAME   clean poweroff, then leftovers removed (the
#   semantics of nspawn_teardown); 1 if anything was left.  Idempotent.
fleet_host_poweroff() {
	[[ "${FLEET_KIND[$1]:-}" == host ]] || { echo "fleet_host_poweroff: no host $1" >&2; return 2; }
	[[ -n "${FLEET_NSPAWN_PID[$1]:-}" ]] || return 0
	_fleet_with "$1" nspawn_teardown
	_fleet_link_down "$1" $?
}

# _fleet_link_down NAME RC   a host that is down does not answer; returns RC
_fleet_link_down() {
	ip -n "${FLEET_NETNS[$1]}" link set eth0 down 2>/dev/null
	return "$2"
}

# fleet_host_kill NAME   crash host NAME: SIGKILL its PID 1 (the whole pid
#   namespace dies), reap nspawn, remove its cgroups.  1 if anything was left.
fleet_host_kill() {
	local name=$1
	[[ "${FLEET_KIND[$name]:-}" == host ]] || { echo "fleet_host_kill: no host $name" >&2; return 2; }
	local np=${FLEET_NSPAWN_PID[$name]:-}
	[[ -n "$np" ]] || { echo "fleet_host_kill: $name is not booted" >&2; return 1; }
	if fleet_host_running "$name"; then
		# a crash, as power loss is one: every process of the host dies at
		# the same moment (one kill(1) of all of its pid namespace), so none
		# can act on its systemd's death (a D-Bus connection reset) in the
		# moment before the kernel reaps the namespace. (Not SIGSTOP first:
		# nsenter stops itself when its child stops and would never reap it,
		# and the dying PID 1 waits for that forever.)
		local sp=${FLEET_SYSTEMD_PID[$name]} ns p pids=()
		ns=$(readlink "/proc/$sp/ns/pid")
		for p in /proc/[0-9]*; do
			[[ "$(readlink "$p/ns/pid" 2>/dev/null)" == "$ns" ]] && pids+=("${p#/proc/}")
		done
		kill -KILL "${pids[@]}" 2>/dev/null
	fi
	# nspawn exits once its payload died
	wait_until 15 eval "! pid_alive $np"
	_fleet_with "$name" nspawn_teardown
	_fleet_link_down "$name" $?
}

# fleet_host_leftovers NAME   print what is left of host NAME's last boot
#   (nspawn_leftovers: processes, nspawn, cgroups, mounts); 0 if nothing
fleet_host_leftovers() {
	[[ "${FLEET_KIND[$1]:-}" == host ]] || { echo "fleet: no host $1" >&2; return 2; }
	_fleet_with "$1" nspawn_leftovers
}

_fleet_need_host() {
	[[ "${FLEET_KIND[$1]:-}" == host ]] || { echo "fleet: no host $1" >&2; return 125; }
	[[ -n "${FLEET_SYSTEMD_PID[$1]:-}" ]] || { echo "fleet: host $1 is not booted" >&2; return 125; }
}

# on_host NAME CMD...     in_systemd for host NAME (all its namespaces)
on_host() {
	local name=$1
	shift
	_fleet_need_host "$name" || return
	SYSTEMD_PID=${FLEET_SYSTEMD_PID[$name]} in_systemd "$@"
}

# on_host_sh NAME SCRIPT [ARGS...]   /bin/sh -c SCRIPT inside host NAME
on_host_sh() { local name=$1 s=$2; shift 2; on_host "$name" /bin/sh -c "$s" sh "$@"; }

# fleet_put NAME PATH [MODE]   write stdin to PATH inside host NAME
fleet_put() {
	_fleet_need_host "$1" || return
	SYSTEMD_PID=${FLEET_SYSTEMD_PID[$1]} nspawn_put "$2" "${3:-0644}"
}

# fleet_journal NAME [JOURNALCTL ARGS...]   host NAME's journal of this boot
fleet_journal() {
	local name=$1
	shift
	_fleet_need_host "$name" || return
	SYSTEMD_PID=${FLEET_SYSTEMD_PID[$name]} systemd_journal "$@"
}

fleet_host_dir() { echo "$FLEET_DIR/$1"; }
fleet_host_ip() { [[ -n "${FLEET_IP[$1]:-}" ]] && echo "${FLEET_IP[$1]}"; }
fleet_netns() { [[ -n "${FLEET_NETNS[$1]:-}" ]] && echo "${FLEET_NETNS[$1]}"; }

# fleet_client_add NAME IP    a bare network namespace on the bridge
fleet_client_add() { _fleet_node_add "$1" "$2" client; }

# in_netns NAME CMD...    run CMD in node NAME's network namespace (the
#   machine's mount namespace and environment: no systemd involved)
in_netns() {
	local name=$1
	shift
	[[ -n "${FLEET_NETNS[$name]:-}" ]] || { echo "in_netns: no node $name" >&2; return 125; }
	ip netns exec "${FLEET_NETNS[$name]}" "$@"
}

# _fleet_hosts_text      /etc/hosts for the fleet
_fleet_hosts_text() {
	local n
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n'
	for n in "${FLEET_NODES[@]}"; do printf '%s\t%s\n' "${FLEET_IP[$n]}" "$n"; done
}

# _fleet_hosts_sync      rewrite /etc/hosts on every running host
_fleet_hosts_sync() {
	local n
	for n in "${FLEET_NODES[@]}"; do
		if [[ "${FLEET_KIND[$n]}" == host ]] && fleet_host_running "$n"; then
			_fleet_hosts_text | fleet_put "$n" /etc/hosts || return 1
		fi
	done
	return 0
}

# fleet_registry_start NAME IP   the registry node: docker-registry on IP:5000
#   in its own netns (config, storage and log in $FLEET_DIR/NAME).  Waits
#   until /v2/ answers.  Sets FLEET_REGISTRY=IP:5000 and FLEET_REGISTRY_NODE.
fleet_registry_start() {
	local name=$1 ip=$2
	_fleet_node_add "$name" "$ip" registry || return
	local d=$FLEET_DIR/$name
	mkdir -p "$d/storage" || return 1
	cat >"$d/config.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $d/storage
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $ip:5000
  secret: sysctr-fleet-$TEST_RUN_ID
EOF
	# ip netns exec execs the command itself: $! is docker-registry's pid
	ip netns exec "${FLEET_NETNS[$name]}" "$DOCKER_REGISTRY_BIN" serve "$d/config.yml" \
		</dev/null >"$d/registry.log" 2>&1 &
	local pid=$!
	_FLEET_PID[$name]=$pid
	cleanup_push "_fleet_registry_stop $name"
	reaper_add "grep -q docker-registry /proc/$pid/cmdline 2>/dev/null && kill -TERM $pid"
	if ! wait_until 20 _fleet_registry_answers "$name"; then
		echo "fleet_registry_start: registry on $ip:5000 did not come up" >&2
		tail -n 20 "$d/registry.log" >&2
		return 1
	fi
	FLEET_REGISTRY=$ip:5000 FLEET_REGISTRY_NODE=$name
	export FLEET_REGISTRY
}

_fleet_registry_answers() {
	[[ "$(in_netns "$1" curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
		"http://${FLEET_IP[$1]}:5000/v2/")" == 200 ]]
}

_fleet_registry_stop() {
	local pid=${_FLEET_PID[$1]:-}
	[[ -n "$pid" ]] || return 0
	kill_wait "$pid" 10
	_FLEET_PID[$1]=""
	_FLEET_STOPPED+=("$pid:registry $1")
}

# fleet_push SRC-REF REPO:TAG    copy an image (any skopeo source, e.g.
#   $(image_ref NAME TAG)) into the registry node as REPO:TAG, running skopeo
#   in the registry's netns.  Prints the reference (FLEET_REGISTRY/REPO:TAG).
fleet_push() {
	[[ -n "$FLEET_REGISTRY_NODE" ]] || { echo "fleet_push: no registry" >&2; return 1; }
	in_netns "$FLEET_REGISTRY_NODE" skopeo --insecure-policy copy -q --dest-tls-verify=false \
		"$1" "docker://$FLEET_REGISTRY/$2" >&2 || return 1
	echo "$FLEET_REGISTRY/$2"
}

# fleet_probe_start      start (once) an HTTP listener on the machine's
#   127.0.0.1:FLEET_PROBE_PORT in the root netns, answering "root-netns"
#   (fleet_net_up does; not in a subshell: its pid is kept for the cleanup)
fleet_probe_start() {
	[[ -n "$_FLEET_PROBE_PID" ]] && pid_alive "$_FLEET_PROBE_PID" && return 0
	local f=$FLEET_DIR/probe.port
	mkdir -p "$FLEET_DIR" && rm -f "$f"
	python3 -c '
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"root-netns\n")
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % srv.server_address[1])
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
srv.serve_forever()
' "$f" "$FLEET_ID" </dev/null >"$FLEET_DIR/probe.log" 2>&1 &
	_FLEET_PROBE_PID=$!
	[[ -z "$FLEET_PROBE_PORT" ]] && cleanup_push "_fleet_probe_stop"
	FLEET_PROBE_PORT=0
	reaper_add "grep -q $FLEET_ID /proc/$_FLEET_PROBE_PID/cmdline 2>/dev/null && kill -TERM $_FLEET_PROBE_PID"
	wait_until 10 test -s "$f" || { echo "fleet_probe_start: no listener" >&2; return 1; }
	read -r FLEET_PROBE_PORT <"$f"
}

_fleet_probe_stop() {
	[[ -n "$_FLEET_PROBE_PID" ]] || return 0
	kill_wait "$_FLEET_PROBE_PID" 5
	_FLEET_STOPPED+=("$_FLEET_PROBE_PID:probe")
	_FLEET_PROBE_PID=""
}

# _fleet_exec NAME CMD...   on_host for a booted host, else in_netns
_fleet_exec() {
	if [[ "${FLEET_KIND[$1]:-}" == host && -n "${FLEET_SYSTEMD_PID[$1]:-}" ]]; then on_host "$@"; else in_netns "$@"; fi
}

# fleet_check_isolated NAME   0 if node NAME (from inside the host when it is
#   booted) cannot reach the machine's loopback (fleet_probe_start's listener,
#   which must answer in the root netns), has only lo and eth0, only the
#   subnet's IPv4 route, no default route, and no route to anything else
#   (`ip route get`, which sends nothing).  Prints what is wrong.
fleet_check_isolated() {
	local name=$1 bad=0 out
	[[ -n "$FLEET_PROBE_PORT" ]] || { echo "fleet_check_isolated: no probe (fleet_net_up starts it)"; return 1; }
	if ! curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$FLEET_PROBE_PORT/"; then
		echo "the probe does not answer on the machine's 127.0.0.1:$FLEET_PROBE_PORT"; bad=1
	fi
	if out=$(_fleet_exec "$name" curl -sS --max-time 2 "http://127.0.0.1:$FLEET_PROBE_PORT/" 2>&1); then
		echo "$name reaches the machine's 127.0.0.1:$FLEET_PROBE_PORT: $out"; bad=1
	fi
	out=$(_fleet_exec "$name" ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort | tr '\n' ' ')
	[[ "$out" == "eth0 lo " ]] || { echo "$name has links: $out"; bad=1; }
	out=$(_fleet_exec "$name" ip -4 route show table all | grep -v -e '^local ' -e '^broadcast ')
	[[ "$out" == "$FLEET_SUBNET dev eth0 proto kernel scope link src ${FLEET_IP[$name]} " ||
		"$out" == "$FLEET_SUBNET dev eth0 proto kernel scope link src ${FLEET_IP[$name]}" ]] ||
		{ echo "$name has IPv4 routes: $out"; bad=1; }
	out=$(_fleet_exec "$name" sh -c 'ip -4 route show default; ip -6 route show default')
	[[ -z "$out" ]] || { echo "$name has a default route: $out"; bad=1; }
	if out=$(_fleet_exec "$name" ip route get 198.51.100.1 2>&1); then
		echo "$name has a route to 198.51.100.1: $out"; bad=1
	fi
	return $bad
}

# fleet_down              tear the whole fleet down now: hosts powered off,
#   registries and the probe stopped, namespaces deleted.  Idempotent (the
#   registered cleanups become no-ops).  1 if anything is left (printed).
fleet_down() {
	local i n rc=0
	for (( i=${#FLEET_NODES[@]}-1; i>=0; i-- )); do
		n=${FLEET_NODES[i]}
		case ${FLEET_KIND[$n]} in
		host) fleet_host_poweroff "$n" || rc=1 ;;
		registry) _fleet_registry_stop "$n" ;;
		esac
	done
	_fleet_probe_stop
	for (( i=${#FLEET_NODES[@]}-1; i>=0; i-- )); do _fleet_node_del "${FLEET_NODES[i]}"; done
	_fleet_net_down
	fleet_leftovers || rc=1
	return $rc
}

# fleet_leftovers         print what is left of this run's fleet (netns, veths
#   in the root netns, nspawn processes, cgroups, nspawn dirs, mounts naming
#   it, registry and probe processes); 0 if nothing
fleet_leftovers() {
	local left=0 out n cg
	out=$(ip netns list 2>/dev/null | grep -F -- "$FLEET_ID")
	[[ -n "$out" ]] && { echo "netns: $out"; left=1; }
	out=$(comm -13 <(printf '%s\n' "$_FLEET_VETH0") \
		<(ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | sort) | grep .)
	[[ -n "$out" ]] && { echo "veths in the root netns: $out"; left=1; }
	out=$(pgrep -a -f -- "systemd-nspawn .*-M $FLEET_MID-")
	[[ -n "$out" ]] && { echo "nspawn: $out"; left=1; }
	for cg in $(_cgroup_dirs); do
		for n in "$cg/$FLEET_MID"-*; do [[ -d "$n" ]] && { echo "cgroup $n"; left=1; }; done
	done
	for n in /run/systemd/nspawn/propagate/"$FLEET_MID"-*; do
		[[ -e "$n" ]] && { echo "$n"; left=1; }
	done
	out=$(grep -l -F -e "$FLEET_ID" -e "$FLEET_MID" /proc/[0-9]*/mountinfo 2>/dev/null)
	[[ -n "$out" ]] && { echo "mounts naming $FLEET_ID or $FLEET_MID in: $(tr '\n' ' ' <<<"$out")"; left=1; }
	# registries and the probe, running or stopped (their command lines name
	# this run's FLEET_DIR, so a reused pid does not count)
	local procs=("${_FLEET_STOPPED[@]}")
	for n in "${!_FLEET_PID[@]}"; do
		[[ -n "${_FLEET_PID[$n]}" ]] && procs+=("${_FLEET_PID[$n]}:registry $n")
	done
	[[ -n "$_FLEET_PROBE_PID" ]] && procs+=("$_FLEET_PROBE_PID:probe")
	for n in "${procs[@]}"; do
		pid_alive "${n%%:*}" && grep -qF "$FLEET_DIR" "/proc/${n%%:*}/cmdline" 2>/dev/null &&
			{ echo "${n#*:} (pid ${n%%:*})"; left=1; }
	done
	for n in "${FLEET_NODES[@]}"; do
		[[ "${FLEET_KIND[$n]}" == host ]] || continue
		out=$(fleet_host_leftovers "$n") || { echo "host $n: $out"; left=1; }
	done
	return $left
}
