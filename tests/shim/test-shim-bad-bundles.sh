#!/bin/bash
# Bad bundles fail before any privileged step (no clone, no mount), exit 125,
# with one clear line on stderr.
. "$(dirname "$0")/libtest-shim.sh"
require_shim

# bad NAME EXPECTED-MESSAGE-REGEX: run the shim on $TMP/NAME
bad () {
  local name=$1 re=$2 rc
  local b=$TMP/$name
  (cd "$b" && "$SHIM" --name=bad) >"$TMP/out" 2>"$TMP/err"; rc=$?
  ok "$name: exit 125 (got $rc)" test "$rc" = 125
  ok "$name: one line on stderr" test "$(wc -l <"$TMP/err")" = 1
  if grep -Eq "$re" "$TMP/err"; then pass "$name: message matches /$re/"; else fail "$name: message /$re/, got: $(cat "$TMP/err")"; fi
  if command -v strace >/dev/null; then
    (cd "$b" && strace -f -qq -o "$TMP/strace" -e trace=clone,clone3,unshare,mount,move_mount,fsmount,setns,setrlimit "$SHIM" --name=bad) >/dev/null 2>&1
    # CLONE_UNTRACED|CLONE_VM: LeakSanitizer's tracer thread at exit (sanitizer builds)
    if grep -E '(clone|clone3|unshare|mount|move_mount|fsmount|setns|setrlimit)\(' "$TMP/strace" | grep -vq 'CLONE_UNTRACED'; then
      fail "$name: nothing privileged before the refusal: $(head -c 300 "$TMP/strace")"
    else
      pass "$name: no clone/mount/setns/setrlimit before the refusal"
    fi
  else
    skip "$name: nothing privileged before the refusal" "strace not installed, cannot trace the syscalls"
  fi
}

make_bundle "$TMP/missing-rootfs"; rm -rf "$TMP/missing-rootfs/rootfs"
bad missing-rootfs '^sysctr-shim: rootfs /.*/missing-rootfs/rootfs: No such file or directory$'

make_bundle "$TMP/symlink-rootfs"; mv "$TMP/symlink-rootfs/rootfs" "$TMP/symlink-rootfs/real"
ln -s real "$TMP/symlink-rootfs/rootfs"
bad symlink-rootfs '^sysctr-shim: rootfs .*/symlink-rootfs/rootfs: is a symlink'

make_bundle "$TMP/bad-json"; echo '{"process": ' > "$TMP/bad-json/config.json"
bad bad-json '^sysctr-shim: .*/bad-json/config.json: invalid JSON at line'

make_bundle "$TMP/no-config"; rm "$TMP/no-config/config.json"
bad no-config '^sysctr-shim: .*/no-config/config.json: No such file or directory$'

make_bundle "$TMP/unknown-ns"
edit_config "$TMP/unknown-ns" 'c["linux"]["namespaces"].append({"type": "time"})'
bad unknown-ns 'linux.namespaces\[4\]: unknown namespace type "time"'

make_bundle "$TMP/user-ns"
edit_config "$TMP/user-ns" 'c["linux"]["namespaces"].append({"type": "user"}); c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 1}]'
bad user-ns 'user namespaces are not supported'

make_bundle "$TMP/unmapped-user"
edit_config "$TMP/unmapped-user" 'c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 1}]'
bad unmapped-user 'linux.uidMappings: user namespaces are not supported'

make_bundle "$TMP/nfs-mount"
edit_config "$TMP/nfs-mount" 'c["mounts"].append({"destination": "/mnt", "type": "nfs", "source": "server:/export"})'
bad nfs-mount 'mounts\[8\]: unsupported mount type "nfs" on /mnt'

make_bundle "$TMP/wrongdev"
edit_config "$TMP/wrongdev" 'c["linux"]["devices"] = [{"path": "/dev/null", "type": "c", "major": 1, "minor": 5}]'
bad wrongdev 'linux.devices\[0\]: /dev/null on this host is not the character device 1:5'

make_bundle "$TMP/nodev"
edit_config "$TMP/nodev" 'c["linux"]["devices"] = [{"path": "/dev/vport2p1", "type": "c", "major": 249, "minor": 1}]'
bad nodev 'linux.devices\[0\]: /dev/vport2p1 on this host: No such file or directory'

make_bundle "$TMP/hooks"
edit_config "$TMP/hooks" 'c["hooks"] = {"prestart": [{"path": "/usr/bin/true"}]}'
bad hooks 'hooks.prestart: hooks are not supported'

make_bundle "$TMP/host-sysctl"
edit_config "$TMP/host-sysctl" 'c["linux"]["sysctl"] = {"vm.swappiness": "0"}'
bad host-sysctl 'linux.sysctl: vm.swappiness is not namespaced'

make_bundle "$TMP/unknown-key"
edit_config "$TMP/unknown-key" 'c["process"]["scheduler"] = {"policy": "SCHED_FIFO"}'
bad unknown-key 'process.scheduler: unsupported key'

make_bundle "$TMP/missing-bind-source"
edit_config "$TMP/missing-bind-source" 'c["mounts"].append({"destination": "/data", "type": "bind", "source": "/nonexistent/sysctr", "options": ["rbind"]})'
bad missing-bind-source 'bind source /nonexistent/sysctr: No such file or directory'

# Ignored with exactly one warning line each, and the container still runs.
make_bundle "$TMP/ignored" true
edit_config "$TMP/ignored" 'c["linux"]["resources"] = {"memory": {"limit": 1000000}}; c["linux"]["cgroupsPath"] = "/machine/x"; c["platform"] = {"os": "linux", "arch": "amd64"}; c["annotations"] = {"com.example": "1"}'
(cd "$TMP/ignored" && "$SHIM") >"$TMP/out" 2>"$TMP/err"; rc=$?
ok "ignored fields: runs (rc $rc)" test "$rc" = 0
ok "ignored fields: 4 warning lines" test "$(grep -c '^sysctr-shim: warning: ' "$TMP/err")" = 4
diag "$(cat "$TMP/err")"

done_testing
