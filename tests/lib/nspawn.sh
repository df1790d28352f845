# shellcheck shell=bash
# nspawn.sh — boot a throw-away systemd (systemd-nspawn --volatile=yes -D /) and
# run commands in it.  Needs libtest.sh sourced first.  Root only.
#
#   nspawn_boot                  # boots, waits for running/degraded
#   in_systemd systemctl is-active foo.service
#   systemd_journal -u foo.service
#   (teardown is registered with the cleanup registry; nspawn_teardown runs it now)
#
# What was checked on this machine (Debian 12, systemd 252, no systemd as PID 1,
# hybrid cgroups: v1 controllers + name=systemd + cgroup2 at /sys/fs/cgroup/unified)
# and how the lib deals with it:
#
# * Boot: `systemd-nspawn --register=no --keep-unit --volatile=yes -D / -M NAME -b
#   systemd.firstboot=off` works; the root is a fresh tmpfs, the host /usr is
#   bound read-only, /etc starts empty (systemd populates passwd etc.), /var and
#   /var/lib/sysctr are on the tmpfs, /tmp is nspawn's own tmpfs.  Boot to
#   "degraded"/"running" takes about 1–2 s.
#
# * Because /etc is empty the booted systemd runs first-boot `preset-all`, and
#   with Debian's implicit "enable *" it ENABLES EVERY UNIT any installed
#   package ships: docker-registry (would bind :5000 in the shared network
#   namespace), postgresql, podman*, cni-dhcp, nftables (would load a ruleset),
#   systemd-networkd, apt timers...  The lib therefore binds a preset file
#   `disable *` at /etc/systemd/system-preset/00-sysctr-test.preset (so
#   preset-all enables nothing), and passes `systemd.mask=UNIT` on the
#   container's command line for units that are pulled in statically
#   (NSPAWN_MASK; only units that exist are masked, see next point).
#
# * Do NOT mask `etcd.service`: a mask is a /run/systemd/generator.early/etcd.service
#   symlink, which sysctr rightly treats as a foreign unit named etcd and refuses
#   `--name=etcd`.  etcd-server is not installed here (images.sh only downloads
#   the .deb), so there is nothing to mask anyway.
#
# * cgroups: with --keep-unit nspawn stays in the caller's cgroup and creates
#   `payload/` and `supervisor/` below it.  Started from the root cgroup, two
#   parallel runs would share /sys/fs/cgroup/systemd/payload/system.slice/...
#   (each container's systemd would see and kill the other's services), and the
#   dirs are left behind.  So the lib moves the nspawn process into its own
#   cgroup `<our cgroup>/NAME` in the name=systemd and the cgroup2 hierarchy
#   first, and removes that subtree at teardown.  The v1 controllers stay
#   read-only inside (MemoryMax= etc. not enforced; see DESIGN.md).
#
# * Network: shared with the host (no --private-network), so a registry on
#   host 127.0.0.1:PORT is reachable from inside and every port must come from
#   alloc_port (registry.sh).
#
# * Binds (same path inside): SYSCTR_PREFIX (install prefix, so units can name
#   the shim by its absolute path), TEST_TMPDIR (so oci:DIR refs, images and
#   scratch files are visible on both sides), plus NSPAWN_BINDS / NSPAWN_BINDS_RO
#   (space-separated SRC[:DST]).  Binds below /tmp work: nspawn mounts its /tmp
#   tmpfs first, the binds on top, and Debian does not enable tmp.mount.
#   /var/lib/sysctr needs no bind: it is on the volatile tmpfs root and dies
#   with the container.
#
# * /etc inside starts (nearly) empty: no /etc/hosts (so "localhost" does not
#   resolve: the lib writes a minimal /etc/hosts after boot), no
#   /etc/alternatives (so /usr/bin/awk, vi, ... are dangling: bound read-only
#   from the host, with /etc/ssl/certs and the ld.so cache; NSPAWN_HOST_ETC), no
#   /etc/containers (tests create policy.json, certs.d, auth.json inside, the
#   container's /etc is a writable tmpfs), and no /etc/systemd/system or
#   /etc/tmpfiles.d (created after boot, as a real host has them).
#
# * Environment: nsenter keeps the caller's environment, so in_systemd starts
#   commands with a clean one (env -i) plus PATH/LANG and the variables named in
#   IN_SYSTEMD_ENV.
#
# * Teardown: SIGTERM to systemd-nspawn makes it send SIGRTMIN+3 to the
#   container's systemd, which powers off cleanly (~1.3 s); after
#   NSPAWN_STOP_TIMEOUT the container's PID 1 is SIGKILLed (that kills the whole
#   pid namespace) and then nspawn.  machinectl is not usable (--register=no).
#   Mounts live in nspawn's private mount namespace and vanish with it.
#
# Env read: SYSCTR_PREFIX, NSPAWN_HOST_ETC, NSPAWN_MASK (replaces the default list),
#   NSPAWN_MASK_EXTRA, NSPAWN_BINDS, NSPAWN_BINDS_RO, NSPAWN_ARGS (extra nspawn
#   options), NSPAWN_BOOT_TIMEOUT (s, default 90), NSPAWN_STOP_TIMEOUT (s,
#   default 20), IN_SYSTEMD_ENV.
# Env set by nspawn_boot: NSPAWN_NAME NSPAWN_PID SYSTEMD_PID NSPAWN_PIDNS
#   NSPAWN_DIR NSPAWN_LOG NSPAWN_BOOT_MS NSPAWN_STATE (running|degraded)
#   NSPAWN_CGROUPS; by nspawn_teardown: NSPAWN_TEARDOWN_MS NSPAWN_STOPPED_PID
#   (and NSPAWN_PID/SYSTEMD_PID emptied).

[[ -n "${_NSPAWN_SH:-}" ]] && return 0
_NSPAWN_SH=1

: "${NSPAWN_BOOT_TIMEOUT:=90}"
: "${NSPAWN_STOP_TIMEOUT:=20}"
# host /etc entries bound read-only (/usr symlinks into /etc/alternatives, e.g.
# awk; CA certificates; the loader cache)
: "${NSPAWN_HOST_ETC:=alternatives ssl/certs ld.so.cache ld.so.conf ld.so.conf.d}"
: "${NSPAWN_MASK:=docker-registry.service postgresql.service postgresql@.service
podman.service podman.socket podman-auto-update.service podman-auto-update.timer
podman-restart.service podman-clean-transient.service podman-kube@.service
cni-dhcp.service cni-dhcp.socket nftables.service
docker.service docker.socket containerd.service
systemd-networkd.service systemd-networkd.socket systemd-networkd-wait-online.service
systemd-resolved.service systemd-timesyncd.service systemd-network-generator.service
apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer
dpkg-db-backup.timer getty@tty1.service}"

_unit_exists() {
	local d
	for d in /etc/systemd/system /lib/systemd/system /usr/lib/systemd/system; do
		[[ -e "$d/$1" ]] && return 0
	done
	return 1
}

# _cgroup_dirs   print "MOUNTPOINT/OURPATH" for the name=systemd and cgroup2
#                hierarchies we are in (one per line)
_cgroup_dirs() {
	local id ctrl path mp
	while IFS=: read -r id ctrl path; do
		mp=""
		if [[ "$id" == 0 ]]; then
			mp=$(awk '$3=="cgroup2"{print $2; exit}' /proc/self/mounts)
		elif [[ "$ctrl" == name=systemd ]]; then
			mp=$(awk '$3=="cgroup" && $4 ~ /(^|,)name=systemd(,|$)/{print $2; exit}' /proc/self/mounts)
		fi
		[[ -n "$mp" && -d "$mp" ]] && echo "$mp${path%/}"
	done </proc/self/cgroup
}

# nspawn_boot [NAME]    boot the throw-away systemd and wait until it is up.
#   Returns 0 when `systemctl is-system-running` says running or degraded.
#   On failure the console log tail is printed to stderr (teardown still runs
#   from the cleanup registry).
nspawn_boot() {
	local name=${1:-sysctr-test-$TEST_RUN_ID}
	name=${name:0:64}
	NSPAWN_NAME=$name
	NSPAWN_DIR=$TEST_TMPDIR/nspawn-$name
	NSPAWN_LOG=$NSPAWN_DIR/console.log
	mkdir -p "$NSPAWN_DIR"
	printf '# sysctr tests: enable nothing on first boot\ndisable *\n' >"$NSPAWN_DIR/00-sysctr-test.preset"

	local args=(--register=no --keep-unit --volatile=yes -D / -M "$name"
		--bind-ro="$NSPAWN_DIR/00-sysctr-test.preset:/etc/systemd/system-preset/00-sysctr-test.preset"
		--bind="$TEST_TMPDIR")
	if [[ -n "${SYSCTR_PREFIX:-}" ]]; then
		case $SYSCTR_PREFIX in
		/|/usr|/usr/*) ;; # /usr is bound already (read-only, as on the host)
		*) [[ -d "$SYSCTR_PREFIX" ]] && args+=(--bind="$SYSCTR_PREFIX") ;;
		esac
	fi
	local b
	for b in $NSPAWN_HOST_ETC; do [[ -e "/etc/$b" ]] && args+=(--bind-ro="/etc/$b"); done
	for b in ${NSPAWN_BINDS:-}; do args+=(--bind="$b"); done
	for b in ${NSPAWN_BINDS_RO:-}; do args+=(--bind-ro="$b"); done
	# shellcheck disable=SC2206
	args+=(${NSPAWN_ARGS:-})

	local initargs=(systemd.firstboot=off) u
	for u in $NSPAWN_MASK ${NSPAWN_MASK_EXTRA:-}; do
		_unit_exists "$u" && initargs+=("systemd.mask=$u")
	done

	# own cgroup subtree (see header)
	NSPAWN_CGROUPS=""
	local cg
	for cg in $(_cgroup_dirs); do
		mkdir -p "$cg/$name" && NSPAWN_CGROUPS+="$cg/$name "
	done

	local t0
	t0=$(now_ms)
	(
		for cg in $NSPAWN_CGROUPS; do echo "$BASHPID" >"$cg/cgroup.procs" || exit 97; done
		exec systemd-nspawn "${args[@]}" -b "${initargs[@]}"
	) </dev/null >"$NSPAWN_LOG" 2>&1 &
	NSPAWN_PID=$!
	echo "$NSPAWN_PID" >"$NSPAWN_DIR/nspawn.pid"
	cleanup_push "nspawn_teardown"
	export NSPAWN_NAME NSPAWN_DIR NSPAWN_LOG NSPAWN_PID NSPAWN_CGROUPS

	# find the container's PID 1 (host pid): the child of nspawn running systemd
	SYSTEMD_PID=""
	local deadline=$(( t0 + NSPAWN_BOOT_TIMEOUT * 1000 )) c
	while [[ -z "$SYSTEMD_PID" ]]; do
		for c in $(cat /proc/"$NSPAWN_PID"/task/*/children 2>/dev/null); do
			[[ "$(cat /proc/"$c"/comm 2>/dev/null)" == systemd ]] && SYSTEMD_PID=$c
		done
		[[ -n "$SYSTEMD_PID" ]] && break
		if ! pid_alive "$NSPAWN_PID" || (( $(now_ms) > deadline )); then
			echo "nspawn_boot: systemd-nspawn did not start systemd" >&2
			tail -n 30 "$NSPAWN_LOG" >&2
			return 1
		fi
		sleep 0.05
	done
	NSPAWN_PIDNS=$(readlink "/proc/$SYSTEMD_PID/ns/pid")
	# emergency teardown if this shell is SIGKILLed (see reaper_add)
	reaper_add "if grep -q systemd-nspawn /proc/$NSPAWN_PID/cmdline 2>/dev/null; then kill -TERM $NSPAWN_PID; i=0; while [ \$i -lt 50 ] && [ -d /proc/$NSPAWN_PID ]; do sleep 0.2; i=\$((i+1)); done; [ \"\$(readlink /proc/$SYSTEMD_PID/ns/pid)\" = '$NSPAWN_PIDNS' ] && kill -KILL $SYSTEMD_PID; kill -KILL $NSPAWN_PID; sleep 0.5; fi; for cg in $NSPAWN_CGROUPS; do find \$cg -depth -type d -exec rmdir {} + ; done; rmdir /run/systemd/nspawn/propagate/$NSPAWN_NAME"
	echo "$SYSTEMD_PID" >"$NSPAWN_DIR/systemd.pid"
	export SYSTEMD_PID NSPAWN_PIDNS

	# wait for the manager: is-system-running --wait needs its private socket,
	# which appears a moment after exec, so retry until it answers
	local st=""
	while :; do
		local left=$(( (deadline - $(now_ms)) / 1000 ))
		(( left < 1 )) && break
		st=$(timeout "$left" nsenter -t "$SYSTEMD_PID" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
			systemctl is-system-running --wait 2>/dev/null)
		# "offline" is also what systemd says very early in boot, before
		# /run/systemd/system exists: keep waiting while it is alive
		case $st in running|degraded|maintenance|stopping) break ;; esac
		pid_alive "$SYSTEMD_PID" || break
		sleep 0.1
	done
	NSPAWN_BOOT_MS=$(( $(now_ms) - t0 ))
	NSPAWN_STATE=$st
	export NSPAWN_BOOT_MS NSPAWN_STATE
	case $st in
	running|degraded)
		# a real host has these; the empty volatile /etc does not
		in_systemd mkdir -p /etc/systemd/system /etc/tmpfiles.d
		[[ -e /proc/$SYSTEMD_PID/root/etc/hosts ]] ||
			printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n' \
				"$name" | nspawn_put /etc/hosts
		return 0 ;;
	*)
		echo "nspawn_boot: system state '${st:-no answer}' after ${NSPAWN_BOOT_MS} ms" >&2
		tail -n 40 "$NSPAWN_LOG" >&2
		return 1 ;;
	esac
}

# nspawn_tree_binds TREE [SRC:DST...]   make the next nspawn_boot boot TREE's
#   units and state (an OS tree built with sysctr --root): its /etc
#   directories, its /var, its machine-id read-only (not a first boot, so
#   preset-all writes nothing into the tree), plus the binds given
nspawn_tree_binds() {
	local tree=$1 d
	shift
	NSPAWN_BINDS="$tree/var:/var${*:+ $*}"
	for d in "$tree"/etc/*/; do d=${d%/}; NSPAWN_BINDS+=" $d:/etc/${d##*/}"; done
	NSPAWN_BINDS_RO="$tree/etc/machine-id:/etc/machine-id"
	export NSPAWN_BINDS NSPAWN_BINDS_RO
}

# in_systemd CMD...      run CMD inside the booted systemd's namespaces
#   (all of them: mount, pid, uts, ipc, net, cgroup; root and cwd "/"), with a
#   clean environment.  stdin/stdout/stderr and the exit status are CMD's.
in_systemd() {
	[[ -n "${SYSTEMD_PID:-}" ]] || { echo "in_systemd: no booted systemd" >&2; return 125; }
	local envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
		SYSTEMD_PAGER= SYSTEMD_COLORS=0) v
	for v in ${IN_SYSTEMD_ENV:-}; do [[ -n "${!v+x}" ]] && envs+=("$v=${!v}"); done
	nsenter -t "$SYSTEMD_PID" -a env -i "${envs[@]}" "$@"
}

# in_systemd_sh SCRIPT [ARGS...]   run a /bin/sh script inside
in_systemd_sh() { local s=$1; shift; in_systemd /bin/sh -c "$s" sh "$@"; }

# in_systemctl ARGS...   systemctl inside, without pager or legend noise
in_systemctl() { in_systemd systemctl --no-pager "$@"; }

# nspawn_put PATH [MODE]  write stdin to PATH inside the container (dirs made)
nspawn_put() {
	in_systemd_sh 'mkdir -p "$(dirname "$1")" && cat >"$1" && chmod "$2" "$1"' "$1" "${2:-0644}"
}

# systemd_journal [JOURNALCTL ARGS...]   print the container's journal of this
#   boot (whole, or filtered, e.g. -u etcd.service), monotonic timestamps
systemd_journal() {
	in_systemd journalctl --no-pager -q -b -o short-monotonic "$@" 2>&1
}

# systemd_wait_active UNIT [TIMEOUT_S=30]   wait until UNIT is active
systemd_wait_active() {
	wait_until "${2:-30}" in_systemctl is-active -q "$1"
}

# nspawn_leftovers        print what is left of the container (processes in
#   its pid namespace, its cgroups, host mounts naming it); 0 if nothing
nspawn_leftovers() {
	local left=0 p ns cg
	if [[ -n "${NSPAWN_PIDNS:-}" ]]; then
		for p in /proc/[0-9]*; do
			ns=$(readlink "$p/ns/pid" 2>/dev/null) || continue
			if [[ "$ns" == "$NSPAWN_PIDNS" ]]; then
				echo "process ${p#/proc/}: $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"; left=1
			fi
		done
	fi
	local np=${NSPAWN_PID:-${NSPAWN_STOPPED_PID:-}}
	if [[ -n "$np" ]] && pid_alive "$np" && grep -q nspawn "/proc/$np/comm" 2>/dev/null; then
		echo "systemd-nspawn $np still running"; left=1
	fi
	for cg in ${NSPAWN_CGROUPS:-}; do
		[[ -d "$cg" ]] && { echo "cgroup $cg"; left=1; }
	done
	if [[ -n "${NSPAWN_NAME:-}" ]]; then
		if grep -F -e "$NSPAWN_NAME" /proc/self/mountinfo; then left=1; fi
		if [[ -e /run/systemd/nspawn/propagate/$NSPAWN_NAME ]]; then
			echo "/run/systemd/nspawn/propagate/$NSPAWN_NAME"; left=1
		fi
	fi
	return $left
}

# nspawn_teardown         power the container off (then kill it), wait, and
#   remove its cgroups.  Idempotent.  Returns 1 (and prints them) if anything
#   is left over.
nspawn_teardown() {
	[[ -n "${NSPAWN_PID:-}" ]] || return 0
	local t0 deadline
	t0=$(now_ms)
	if pid_alive "$NSPAWN_PID"; then
		kill -TERM "$NSPAWN_PID" 2>/dev/null
		deadline=$(( t0 + NSPAWN_STOP_TIMEOUT * 1000 ))
		while pid_alive "$NSPAWN_PID" && (( $(now_ms) < deadline )); do sleep 0.1; done
		if pid_alive "$NSPAWN_PID"; then
			echo "nspawn_teardown: clean poweroff timed out, killing" >&2
			[[ -n "${SYSTEMD_PID:-}" ]] && pid_alive "$SYSTEMD_PID" && kill -KILL "$SYSTEMD_PID" 2>/dev/null
			sleep 0.5
			kill -KILL "$NSPAWN_PID" 2>/dev/null
		fi
	fi
	wait "$NSPAWN_PID" 2>/dev/null
	NSPAWN_TEARDOWN_MS=$(( $(now_ms) - t0 ))
	export NSPAWN_TEARDOWN_MS
	# straggler processes in its pid namespace (should not exist once pid 1 died)
	local p ns
	if [[ -n "${NSPAWN_PIDNS:-}" ]]; then
		for p in /proc/[0-9]*; do
			ns=$(readlink "$p/ns/pid" 2>/dev/null) || continue
			[[ "$ns" == "$NSPAWN_PIDNS" ]] && kill -KILL "${p#/proc/}" 2>/dev/null
		done
	fi
	# cgroups: kill anything left, remove depth-first
	local cg d
	for cg in ${NSPAWN_CGROUPS:-}; do
		[[ -d "$cg" ]] || continue
		find "$cg" -depth -type d -print0 2>/dev/null | while IFS= read -r -d '' d; do
			xargs -r kill -KILL <"$d/cgroup.procs" 2>/dev/null
		done
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
			[[ -d "$cg" ]] || break
			sleep 0.2
		done
	done
	rmdir "/run/systemd/nspawn/propagate/$NSPAWN_NAME" 2>/dev/null
	local out rc=0
	out=$(nspawn_leftovers) || rc=1
	if (( rc )); then
		echo "nspawn_teardown: leftovers of $NSPAWN_NAME:" >&2
		printf '%s\n' "$out" >&2
	fi
	NSPAWN_STOPPED_PID=$NSPAWN_PID
	NSPAWN_PID="" SYSTEMD_PID=""
	return $rc
}

# in_sysctr ARGS...       run the installed sysctr inside the booted systemd
#   (SYSCTR_BIN, default $SYSCTR_PREFIX/bin/sysctr; SYSCTR_PREFIX is bound at
#   the same path, so units it writes can name the shim by its host path)
in_sysctr() {
	in_systemd "${SYSCTR_BIN:-${SYSCTR_PREFIX:-/usr/local}/bin/sysctr}" "$@"
}
