#!/bin/bash
# The trust boundary at install and update (--root): a container granted
# nothing is locked down; whatever an image adds beyond that is asked for,
# refused without the grant (nothing left behind), installed with it, and
# recorded; an update never widens the grant; what is never granted stays
# refused with --privileged; host files belong to whoever sysctr created
# them for; hostile hostfs paths and budgets cannot wedge or exhaust the
# host. Every image here is built by the test itself.
# shellcheck disable=SC2016 # single-quoted $VARS are template text
. "$SYSCTR_SRCDIR/tests/lib/libtest.sh"
. "$SYSCTR_SRCDIR/tests/lib/images.sh"
. "$SYSCTR_SRCDIR/tests/offline/lib-offline.sh"
require_root
require_cmd umoci jq busybox

R=$TEST_TMPDIR/root; mkdir -p "$R/etc"
C=$R/var/lib/sysctr/containers
snap() { tree_listing "$R" >"$TEST_TMPDIR/snap.$1"; }
same_as() { tree_listing "$R" | diff "$TEST_TMPDIR/snap.$1" - >"$TEST_TMPDIR/snap.diff"; }

# --------------------------------------------------- a container granted nothing
build_busybox_image plain v1 "" --config.cmd=-c --config.cmd='sleep 1000' || bail_out "cannot build plain"
run_sc "$R" install --system --name=plain "$(image_ref plain v1)"
assert_eq "$SC_RC" 0 "a plain image installs with no grant" || diag "$SC_ERR"
CFG=$C/plain.0/config.json
assert_eq "$(jq -c '[.process.capabilities.bounding[]]|sort' "$CFG")" \
	'["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_FSETID","CAP_KILL","CAP_NET_BIND_SERVICE","CAP_SETFCAP","CAP_SETGID","CAP_SETPCAP","CAP_SETUID","CAP_SYS_CHROOT"]' \
	"default capabilities are podman's (no MKNOD, NET_RAW, AUDIT_WRITE)"
assert_match "$(jq -r '.mounts[]|select(.destination=="/dev").options|join(",")' "$CFG")" '(^|,)nodev(,|$)' "/dev is nodev"
assert_eq "$(jq -r '.linux.seccomp.defaultAction + " " + (.linux.seccomp.defaultErrnoRet|tostring)' "$CFG")" \
	"SCMP_ACT_ERRNO 38" "a default seccomp filter (unknown syscalls: ENOSYS)"
assert_eq "$(jq -r '.linux.seccomp.architectures|join(",")' "$CFG")" "SCMP_ARCH_X86_64,SCMP_ARCH_X86,SCMP_ARCH_X32" \
	"seccomp architectures for an amd64 image"
assert_file "$C/plain.0/seccomp.bpf" "the filter was compiled at install (seccomp.bpf in the deployment)"
assert_eq "$(jq -r '.linux.maskedPaths|index("/sys/devices/virtual/powercap") != null' "$CFG")" true "powercap masked"
assert_eq "$(jq -r .process.noNewPrivileges "$CFG")" true "noNewPrivileges"
U=$R/etc/systemd/system/plain.service
assert_eq "$(grep -E '^Device(Policy|Allow)=' "$U" | tr '\n' ' ')" "DevicePolicy=closed DeviceAllow=char-pts rw " \
	"unit: DevicePolicy=closed, standard nodes and ptys only"
assert_eq "$(jq -c .privileges "$C/plain.0/info.json")" '{"asked":{},"granted":{}}' "info.json: asked nothing, granted nothing"
list=$(sc "$R" list --json)
assert_eq "$(jq -c '.[]|select(.name=="plain")|[.granted,.network]' <<<"$list")" '[{},"host"]' "list --json: granted nothing, host network"
assert_contains "$(sc "$R" list)" "GRANTED" "list: a GRANTED column"

# A config.json.template equal to what sysctr derives asks for nothing.
BASE=$TEST_TMPDIR/base.json
jq 'del(.annotations) | .hostname = "$NAME"' "$CFG" >"$BASE"

# --------------------------------------------------- images that ask
# mkimg NAME [EXPORTS-DIR] [UMOCI-CONFIG-ARGS...]
mkimg() {
	local name=$1 ex=${2:-}; shift; (( $# )) && shift
	build_busybox_image "$name" v1 "$ex" --config.cmd=-c --config.cmd='sleep 1000' "$@" >/dev/null ||
		bail_out "cannot build $name"
}
# exports NAME: a fresh exports dir under $TEST_TMPDIR/x/NAME, printed
exports() { local d=$TEST_TMPDIR/x/$1; mkdir -p "$d/exports"; echo "$d"; }
# tmpl NAME JQ: config.json.template = the base config edited by JQ
tmpl() { local d; d=$(exports "$1"); jq "$2" "$BASE" >"$d/exports/config.json.template"; echo "$d"; }

d=$(tmpl same '.'); mkimg same "$d"
run_sc "$R" install --system --name=same "$(image_ref same v1)"
assert_eq "$SC_RC/$(jq -c .privileges.asked "$C/same.0/info.json" 2>/dev/null)" "0/{}" \
	"a config.json.template that is what sysctr derives asks for nothing" || diag "$SC_ERR"
sc "$R" uninstall same >/dev/null 2>&1

d=$(exports svcexec)
printf '[Unit]\nDescription=x\n[Service]\nExecStart=$EXEC_START\n  ExecStartPre = /bin/sh -c "echo pwned >/etc/pwned"\n' \
	>"$d/exports/service.template"
mkimg svcexec "$d"
mkimg labelunit "" --config.label=org.sysctr.unit=$'[Service]\nExecStart=$EXEC_START\nExecStartPre=/bin/sh -c true\n'
mkimg labelsock "" --config.label=org.sysctr.socket=$'[Socket]\nListenStream=127.0.0.1:1\nExecStartPre=/bin/sh -c true\n'
d=$(exports suid)
printf 'C /usr/local/bin/suid-sh - - - - ${DESTDIR}/rootfs/bin/busybox\nz /usr/local/bin/suid-sh 4755 0 0 - -\n' \
	>"$d/exports/tmpfiles.template"
mkimg suid "$d"
d=$(exports rmadmin); printf 'R /srv/admin - - - - -\n' >"$d/exports/tmpfiles.template"; mkimg rmadmin "$d"
d=$(exports cron); mkdir -p "$d/exports/hostfs/etc/cron.d"; echo '* * * * * root id' >"$d/exports/hostfs/etc/cron.d/evil"; mkimg cron "$d"
d=$(exports preload); mkdir -p "$d/exports/hostfs/etc"; echo /x.so >"$d/exports/hostfs/etc/ld.so.preload"; mkimg preload "$d"
d=$(exports dropin); mkdir -p "$d/exports/hostfs/etc/systemd/system/ssh.service.d"
printf '[Service]\nExecStartPre=/bin/sh -c id\n' >"$d/exports/hostfs/etc/systemd/system/ssh.service.d/evil.conf"; mkimg dropin "$d"
d=$(exports sshkey); mkdir -p "$d/exports/hostfs/k"; echo 'ssh-ed25519 AAAA evil' >"$d/exports/hostfs/k/key"
echo '{"renameFiles": {"/k/key": "/root/.ssh/authorized_keys"}}' >"$d/exports/manifest.json"; mkimg sshkey "$d"
d=$(tmpl rootrw '.mounts += [{"destination": "/host", "type": "bind", "source": "/", "options": ["rbind", "rw"]}]'); mkimg rootrw "$d"
d=$(tmpl hostpid '.linux.namespaces |= map(select(.type != "pid"))'); mkimg hostpid "$d"
d=$(tmpl allcaps '.process.capabilities.bounding += ["CAP_SYS_ADMIN", "CAP_SYS_MODULE"]'); mkimg allcaps "$d"
d=$(tmpl nnpoff '.process.noNewPrivileges = false'); mkimg nnpoff "$d"
d=$(tmpl noseccomp 'del(.linux.seccomp)'); mkimg noseccomp "$d"
mkimg debugshell "" --config.label=org.sysctr.wants=debug-shell.service
mkimg logind "" --config.label=org.sysctr.required-by=systemd-logind.service --config.label=org.sysctr.before=systemd-logind.service
mkimg ordered "" --config.label=org.sysctr.after=plain.service --config.label=org.sysctr.wanted-by=multi-user.target \
	--config.label=org.sysctr.requires=plain.service

# asks NAME PRIVILEGE DETAIL: refused without a grant (nothing left behind,
# the refusal names the flag), installed with --allow=PRIVILEGE, the grant
# recorded with DETAIL
asks() {
	local name=$1 priv=$2 detail=$3 ref
	ref=$(image_ref "$name" v1)
	snap a
	run_sc "$R" install --system --name="$name" "$ref"
	local last; last=$(tail -n1 <<<"$SC_ERR")
	if (( SC_RC != 0 )) && [[ "$last" == *"--allow=$priv"* ]] && same_as a && grep -qF -- "$detail" <<<"$SC_ERR"; then
		pass "$name: refused without --allow=$priv, nothing left behind"
	else
		fail "$name: not refused cleanly (rc $SC_RC)"; diag "$SC_ERR"; diag_file "$TEST_TMPDIR/snap.diff" 10
	fi
	run_sc "$R" install --system --allow="$priv" --name="$name" "$ref"
	if (( SC_RC == 0 )) && jq -e --arg p "$priv" --arg d "$detail" '.privileges.granted[$p] | index($d)' \
		"$C/$name.0/info.json" >/dev/null; then
		pass "$name: installed with --allow=$priv, granted \"$detail\" recorded"
	else
		fail "$name: --allow=$priv (rc $SC_RC)"; diag "$SC_ERR"; jq -c .privileges "$C/$name.0/info.json" 2>&1 | diag "$(cat)"
	fi
	sc "$R" uninstall --purge "$name" >/dev/null 2>&1
}
asks svcexec host-exec '[Service] ExecStartPre=/bin/sh -c "echo pwned >/etc/pwned"'
asks labelunit host-exec '[Service] ExecStartPre=/bin/sh -c true'
asks labelsock host-exec '[Socket] ExecStartPre=/bin/sh -c true'
asks suid host-files 'tmpfiles z /usr/local/bin/suid-sh mode 4755'
asks rmadmin host-files 'tmpfiles R /srv/admin'
asks cron host-files /etc/cron.d/evil
asks preload host-files /etc/ld.so.preload
asks dropin host-files /etc/systemd/system/ssh.service.d/evil.conf
asks sshkey host-files /root/.ssh/authorized_keys
asks rootrw host-mounts '/ (rw)'
asks hostpid host-namespaces "pid (the host's)"
asks allcaps capabilities CAP_SYS_ADMIN
asks nnpoff unconfined 'noNewPrivileges off (setuid programs gain privileges)'
asks noseccomp unconfined 'no seccomp filter'
asks debugshell unit-deps Wants=debug-shell.service
asks logind unit-deps Before=systemd-logind.service
assert_no_file "$R/etc/pwned" "nothing ran on the host"

run_sc "$R" install --system --name=ordered "$(image_ref ordered v1)"
assert_eq "$SC_RC/$(jq -c .privileges.asked "$C/ordered.0/info.json" 2>/dev/null)" "0/{}" \
	"ordering after, and requiring, another sysctr container asks for nothing" || diag "$SC_ERR"
sc "$R" uninstall ordered >/dev/null 2>&1

# --privileged: all of it, each detail recorded
run_sc "$R" install --system --privileged --name=allcaps "$(image_ref allcaps v1)"
assert_eq "$SC_RC/$(jq -c '.privileges.granted.capabilities' "$C/allcaps.0/info.json")" \
	'0/["CAP_SYS_ADMIN","CAP_SYS_MODULE"]' "--privileged grants what the image asks, with its details"
assert_contains "$SC_OUT" "is granted:" "install says what was granted"
sc "$R" uninstall allcaps >/dev/null 2>&1

run_sc "$R" install --system --allow=everything --name=x "$(image_ref plain v1)"
assert_eq "$SC_RC/$(one_line "$SC_ERR" && echo one)" "1/one" "--allow=unknown: one line" 
assert_contains "$SC_ERR" "known: host-exec, host-files" "  ... naming the known privileges"

# --------------------------------------------------- never granted
for src in rootfs/etc ../../repo /var/lib/sysctr; do
	d=$(tmpl "never$RANDOM" ".mounts += [{\"destination\": \"/mnt\", \"type\": \"bind\", \"source\": \"$src\", \"options\": [\"rbind\", \"rw\"]}]")
	mkimg never "$d"
	snap n
	run_sc "$R" install --system --privileged --name=never "$(image_ref never v1)"
	if (( SC_RC != 0 )) && [[ "$SC_ERR" == *"never allowed"* ]] && same_as n; then
		pass "a writable bind of $src is refused even with --privileged"
	else
		fail "a writable bind of $src (rc $SC_RC)"; diag "$SC_ERR"
	fi
done

# --------------------------------------------------- update never widens
build_busybox_image wid v1 "" --config.cmd=-c --config.cmd='sleep 1000' >/dev/null || bail_out wid
d=$(tmpl wid2 '.mounts += [{"destination": "/host", "type": "bind", "source": "/", "options": ["rbind", "rw"]}]')
build_busybox_image wid v2 "$d" --config.cmd=-c --config.cmd='sleep 1000' >/dev/null || bail_out wid2
d=$(tmpl wid3 '.mounts += [{"destination": "/host", "type": "bind", "source": "/", "options": ["rbind", "rw"]}, {"destination": "/e", "type": "bind", "source": "/etc", "options": ["rbind", "rw"]}]')
build_busybox_image wid v3 "$d" --config.cmd=-c --config.cmd='sleep 1000' >/dev/null || bail_out wid3
d=$(tmpl wid4 '.mounts += [{"destination": "/host", "type": "bind", "source": "/", "options": ["rbind", "ro"]}]')
build_busybox_image wid v4 "$d" --config.cmd=-c --config.cmd='sleep 1000' >/dev/null || bail_out wid4
run_sc "$R" install --system --name=wid --set AUTO_UPDATE=registry "$(image_ref wid v1)"
assert_eq "$SC_RC" 0 "wid v1 (asks nothing) installed"
snap w
run_sc "$R" update --rebase "$(image_ref wid v2)" wid
if (( SC_RC != 0 )) && [[ "$(tail -n1 <<<"$SC_ERR")" == *'sysctr update --allow=host-mounts wid'* ]] && same_as w; then
	pass "update to a version asking host-mounts: refused, the running deployment stays, the flag named"
else
	fail "update widening (rc $SC_RC)"; diag "$SC_ERR"; diag_file "$TEST_TMPDIR/snap.diff" 10
fi
assert_eq "$(readlink "$C/wid")" wid.0 "  ... still wid.0"
assert_eq "$(last_update "$R" wid)" "held back" "  ... the attempt is recorded as held back"
run_sc "$R" update --allow=host-mounts --rebase "$(image_ref wid v2)" wid
assert_eq "$SC_RC/$(readlink "$C/wid")" 0/wid.1 "update --allow=host-mounts deploys v2" || diag "$SC_ERR"
assert_eq "$(jq -c .privileges.granted "$C/wid.1/info.json")" '{"host-mounts":["/ (rw)"]}' "  ... the grant recorded"
snap w
run_sc "$R" update --rebase "$(image_ref wid v3)" wid
if (( SC_RC != 0 )) && [[ "$SC_ERR" == *'/etc (rw)'* ]] && ! grep -q '/ (rw)' <<<"$SC_ERR" && same_as w; then
	pass "v3 adds a bind of /etc under the granted host-mounts: refused, only /etc (rw) listed"
else
	fail "v3 widening within a granted privilege (rc $SC_RC)"; diag "$SC_ERR"
fi
run_sc "$R" update --rebase "$(image_ref wid v4)" wid
assert_eq "$SC_RC/$(readlink "$C/wid")" 0/wid.0 "v4 binds / read-only: covered by the rw grant, deployed" || diag "$SC_ERR"
# update --all (the timer) holds back what asks more, and goes on
build_busybox_image other v1 "" --config.cmd=-c --config.cmd='sleep 1000' >/dev/null
run_sc "$R" install --system --name=other --set AUTO_UPDATE=registry "$(image_ref other v1)"
build_busybox_image other v1 "" --config.cmd=-c --config.cmd='sleep 2000' >/dev/null # the tag moves
run_sc "$R" update --rebase "$(image_ref wid v1)" wid >/dev/null 2>&1 # back to v1 (asks nothing)
# the installed reference of wid is v1's; make v1 ask for more than granted
d=$(tmpl wid5 '.mounts += [{"destination": "/e", "type": "bind", "source": "/etc", "options": ["rbind", "rw"]}]')
build_busybox_image wid v1 "$d" --config.cmd=-c --config.cmd='sleep 1000' >/dev/null
run_sc "$R" update --all
assert_ne "$SC_RC" 0 "update --all: fails when a version is held back"
assert_contains "$SC_OUT" "1 updated, 1 held back" "update --all: other updated, wid held back"
assert_contains "$SC_ERR" "wid: not updated" "  ... saying which and why"
sc "$R" uninstall wid >/dev/null 2>&1; sc "$R" uninstall other >/dev/null 2>&1

# --------------------------------------------------- ownership by path
# Image "thief" ships, as a hostfs file, the exact bytes of plain's unit.
d=$(exports thief); mkdir -p "$d/exports/hostfs/etc/systemd/system"
cp "$R/etc/systemd/system/plain.service" "$d/exports/hostfs/etc/systemd/system/plain.service"
mkimg thief "$d"
snap o
run_sc "$R" install --system --privileged --name=thief "$(image_ref thief v1)"
if (( SC_RC != 0 )) && [[ "$SC_ERR" == *"belongs to container plain"* ]] && same_as o; then
	pass "another container's unit, byte for byte: refused (ownership is by path, not content)"
else
	fail "thief (rc $SC_RC)"; diag "$SC_ERR"
fi
# the same through an update of an installed image
build_busybox_image thief v0 "" --config.cmd=-c --config.cmd='sleep 1' >/dev/null
run_sc "$R" install --system --name=thief "$(image_ref thief v0)"
snap o
run_sc "$R" update --privileged --rebase "$(image_ref thief v1)" thief
if (( SC_RC != 0 )) && [[ "$SC_ERR" == *"belongs to container plain"* ]] && same_as o; then
	pass "  ... and through an update: refused, thief stays as it was"
else
	fail "thief update (rc $SC_RC)"; diag "$SC_ERR"
fi
sc "$R" uninstall thief >/dev/null 2>&1
assert_eq "$(jq -r '."/etc/systemd/system/plain.service"' "$C/.owners.json")" plain "owners: plain.service is plain's"

# --------------------------------------------------- hostile host paths
d=$(exports hf); mkdir -p "$d/exports/hostfs/etc/hf"; echo x >"$d/exports/hostfs/etc/hf/hf.conf"; mkimg hf "$d"
hostile_path() { # DESC SETUP-COMMAND EXPECT
	local desc=$1 setup=$2 expect=$3
	rm -rf "$R/etc/hf"; mkdir -p "$R/etc/hf"; eval "$setup"
	snap p
	run_sc "$R" install --system --privileged --name=hf "$(image_ref hf v1)"
	if (( SC_RC != 0 )) && one_line "$SC_ERR" && [[ "$SC_ERR" == *"$expect"* ]] && same_as p; then
		pass "hostfs path that is $desc: refused before the commit point ($expect)"
	else
		fail "hostfs path that is $desc (rc $SC_RC)"; diag "$SC_ERR"; diag_file "$TEST_TMPDIR/snap.diff" 10
	fi
	# nothing is wedged: another install and an uninstall work
	run_sc "$R" install --system --name=after "$(image_ref plain v1)"
	assert_eq "$SC_RC" 0 "  ... and the next command works" || diag "$SC_ERR"
	sc "$R" uninstall after >/dev/null 2>&1
}
hostile_path "a directory" 'mkdir "$R/etc/hf/hf.conf"' "is a directory"
hostile_path "a FIFO with no writer" 'mkfifo "$R/etc/hf/hf.conf"' "is a FIFO"
hostile_path "a dangling symlink" 'ln -s /nonexistent "$R/etc/hf/hf.conf"' "is a symlink"
hostile_path "a symlink to a host file" 'echo admin >"$R/etc/admin.conf"; ln -s /etc/admin.conf "$R/etc/hf/hf.conf"' "is a symlink"
rm -rf "$R/etc/hf" "$R/etc/admin.conf"
# a broken container is reported, the others go on
run_sc "$R" install --system --privileged --name=hf "$(image_ref hf v1)"
assert_eq "$SC_RC" 0 "hf installed" || diag "$SC_ERR"
rm "$R/etc/hf/hf.conf"; mkdir "$R/etc/hf/hf.conf"
run_sc "$R" install --system --name=after "$(image_ref plain v1)"
assert_eq "$SC_RC" 0 "a container whose host file became a directory does not wedge the next install" || diag "$SC_ERR"
assert_contains "$SC_ERR" "warning: hf:" "  ... it is reported"
run_sc "$R" uninstall after; run_sc "$R" uninstall hf
assert_eq "$SC_RC" 0 "  ... and it can still be uninstalled" || diag "$SC_ERR"
rm -rf "$R/etc/hf"

# --------------------------------------------------- budgets
# 100 hardlinks of one 16 MiB file: 1.6 GiB copied to the host from a
# 16 MiB layer (it used to be held in memory and written twice)
d=$(exports links); mkdir -p "$d/exports/hostfs/etc/links"
head -c $((16 * 1024 * 1024)) /dev/urandom >"$d/exports/hostfs/etc/links/f0"
for i in $(seq 1 99); do ln "$d/exports/hostfs/etc/links/f0" "$d/exports/hostfs/etc/links/f$i"; done
mkimg links "$d"; rm -rf "$d"
snap b
/usr/bin/time -f %M -o "$TEST_TMPDIR/rss" "$SYSCTR" --root="$R" install --system --privileged --name=links \
	"$(image_ref links v1)" >/dev/null 2>"$TEST_TMPDIR/links.err"
rc=$?
if (( rc != 0 )) && grep -q 'in all (at /etc/links/' "$TEST_TMPDIR/links.err" && same_as b; then
	pass "hostfs: 100 hardlinks of a 16 MiB file refused by the total budget, nothing left"
else
	fail "hostfs budget (rc $rc)"; diag_file "$TEST_TMPDIR/links.err"
fi
rss=$(tail -n1 "$TEST_TMPDIR/rss")
if (( rss < 200000 )); then pass "  ... in bounded memory (max RSS ${rss} KiB)"; else fail "  ... max RSS ${rss} KiB"; fi
# a 1000-deep directory chain in a layer: refused, no crash
deep=$TEST_TMPDIR/deep; p=$deep; for i in $(seq 1 1000); do p=$p/d; done; mkdir -p "$p"
mkimg deep "$deep"; rm -rf "$deep"
run_sc "$R" install --system --name=deep "$(image_ref deep v1)"
assert_eq "$SC_RC" 1 "a layer nesting 1000 directories: refused with exit 1 (no crash)"
assert_contains "$SC_ERR" "nested more than 512 directories deep" "  ... saying why"
# layers that cannot fit: refused before fetching (a 48 MiB store)
R3=$TEST_TMPDIR/small; mkdir -p "$R3"; mount -t tmpfs -o size=48m tmpfs "$R3" && cleanup_push umount -l "$R3"
d=$TEST_TMPDIR/big; mkdir -p "$d"; head -c $((20 * 1024 * 1024)) /dev/urandom >"$d/blob"
mkimg big "$d"; rm -rf "$d"
mkdir -p "$R3/etc"
run_sc "$R3" pull "$(image_ref big v1)"
assert_eq "$SC_RC" 1 "a pull that cannot fit in the store: refused"
assert_contains "$SC_ERR" "nothing was fetched" "  ... before fetching, saying how much is needed and free"
assert_eq "$(find "$R3/var/lib/sysctr/repo/objects" -type f | wc -l)" 0 "  ... no object stored"

# --------------------------------------------------- values by directive
d=$(exports esc)
printf '[Service]\nExecStart=$EXEC_START\n  Environment=G=$G\n  ExecStartPre=/bin/echo "$G"\n' >"$d/exports/service.template"
echo '{"defaultValues": {"G": "x"}}' >"$d/exports/manifest.json"
mkimg esc "$d"
for v in 'hi LD_PRELOAD=/x.so' 'a" "b'; do
	snap e
	run_sc "$R" install --system --privileged --name=esc --set "G=$v" "$(image_ref esc v1)"
	if (( SC_RC != 0 )) && one_line "$SC_ERR" && same_as e; then pass "indented line, --set G='$v': refused"; else fail "G='$v' (rc $SC_RC)"; diag "$SC_ERR"; fi
done

# what an image asks is shown as it is: no escape sequence of its own can
# redraw the consent text (\e[1A\e[2K would erase the line above)
d=$(exports spoof)
printf '[Service]\nExecStart=$EXEC_START\nExecStartPre=/bin/true \033[1A\033[2Knothing to see\n' >"$d/exports/service.template"
mkimg spoof "$d"
run_sc "$R" install --system --name=spoof "$(image_ref spoof v1)"
if (( SC_RC == 1 )) && ! grep -q $'\e' <<<"$SC_ERR" && grep -qF 'ExecStartPre=/bin/true \x1b[1A\x1b[2Knothing to see' <<<"$SC_ERR"; then
	pass "an escape sequence in what an image asks is shown escaped (\\x1b), never sent to the terminal"
else fail "an escape sequence in what an image asks is shown escaped"; diag "$(cat -v <<<"$SC_ERR")"; fi

sc "$R" uninstall plain >/dev/null 2>&1
done_testing
