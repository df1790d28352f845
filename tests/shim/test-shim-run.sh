#!/bin/bash
# The shim run directly on a probe bundle: what the payload sees, exit
# statuses, signals, notify relay, fd hygiene.
. "$(dirname "$0")/libtest-shim.sh"
require_shim

B=$TMP/bundle
make_bundle "$B" report
out=$TMP/report.txt

# fd 7 leaks into the shim (no CLOEXEC): it must not reach the payload
(cd "$B" && "$SHIM" --name=probe 7</dev/null >"$out" 2>"$TMP/err"); rc=$?
ok "shim runs the probe (exit $rc)" test "$rc" = 0
[ -s "$TMP/err" ] && diag "stderr: $(cat "$TMP/err")"
expect_kv "$out" hostname probebox
expect_kv "$out" pid 2
expect_kv "$out" ppid 1
expect_kv "$out" write_root EROFS
expect_kv "$out" write_tmp OK
ok "root mounted read-only" grep -q '^root_opts=ro,' "$out"
ok "/proc nosuid,nodev,noexec" grep -q '^proc_opts=rw,nosuid,nodev,noexec' "$out"
ok "/sys read-only" grep -q '^sys_opts=ro,' "$out"
ok "/proc/sys read-only" grep -q '^proc_sys_opts=ro,' "$out"
expect_kv "$out" masked:/proc/keys devnull
expect_kv "$out" masked:/proc/acpi emptydir
expect_kv "$out" masked:/sys/firmware emptydir
ok "/proc/kcore masked or absent" grep -Eq '^masked:/proc/kcore=(devnull|ENOENT)' "$out"
expect_kv "$out" dev_null chr
expect_kv "$out" dev_pts_ptmx present
# CAP_CHOWN(0) CAP_KILL(5) CAP_NET_BIND_SERVICE(10)
expect_kv "$out" CapEff 0000000000000421
expect_kv "$out" CapBnd 0000000000000421
expect_kv "$out" CapInh 0000000000000000
expect_kv "$out" NoNewPrivs 1
expect_kv "$out" fds 0,1,2
expect_kv "$out" sd_listen_fds 0
expect_kv "$out" notify_socket unset
# the host is unaffected
ok "host hostname unchanged" test "$(hostname)" != probebox

# The init (pid 1) keeps no fd a payload could walk out through: before the
# fix it held O_PATH fds of the host's bundle and rootfs, and
# "cat /proc/1/fd/3/config.json" read the host's file. fd 7 leaks in again.
edit_config "$B" 'c["process"]["args"] = ["/sysctr-probe", "init-fds"]'
(cd "$B" && NOTIFY_SOCKET=$TMP/unused.sock "$SHIM" --name=probe 7</dev/null) >"$out" 2>"$TMP/err"
[ -s "$TMP/err" ] && diag "stderr: $(cat "$TMP/err")"
expect_kv "$out" init_fds_opened 0
# 0-2, the status pipe, and until the payload's execve() is seen the sync socket
ok "init holds no fd beyond 0-2, its status pipe and the sync socket" grep -Eq '^init_fds=(EACCES|[0-9]+(,[0-9]+){0,4})$' "$out"
diag "$(grep '^init_fd' "$out")"
edit_config "$B" 'c["process"]["args"] = ["/sysctr-probe", "cat", "/proc/1/fd/3/config.json"]'
(cd "$B" && "$SHIM" --name=probe) >"$out" 2>&1
ok "the host's config.json is not readable through /proc/1/fd" sh -c "! grep -q ociVersion '$out'"
edit_config "$B" 'c["process"]["args"] = ["/sysctr-probe", "report"]'

# payload as pid 1 (no init)
edit_config "$B" 'c["annotations"] = {"org.sysctr.init": "false"}'
(cd "$B" && "$SHIM") >"$out" 2>&1
expect_kv "$out" pid 1
edit_config "$B" 'del c["annotations"]'

# non-root user, ambient capability
edit_config "$B" 'c["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5]}; c["process"]["capabilities"]["inheritable"] = ["CAP_NET_BIND_SERVICE"]; c["process"]["capabilities"]["ambient"] = ["CAP_NET_BIND_SERVICE"]; c["process"]["capabilities"]["effective"] = ["CAP_NET_BIND_SERVICE"]; c["process"]["capabilities"]["permitted"] = ["CAP_NET_BIND_SERVICE"]'
(cd "$B" && "$SHIM") >"$out" 2>"$TMP/err"
[ -s "$TMP/err" ] && diag "stderr: $(cat "$TMP/err")"
expect_kv "$out" uid 1000
expect_kv "$out" CapEff 0000000000000400
expect_kv "$out" CapAmb 0000000000000400
expect_kv "$out" write_tmp OK
make_bundle "$B" report

# exit status passes through
edit_config "$B" 'c["process"]["args"] = ["/sysctr-probe", "exit", "3"]'
(cd "$B" && "$SHIM"); rc=$?
ok "payload exit 3 => shim exit 3 (got $rc)" test "$rc" = 3

# SIGTERM stops a sleeping payload at once, the shim dies of SIGTERM
for mode in init no-init; do
  if [ $mode = init ]; then
    edit_config "$B" 'c["process"]["args"] = ["/sysctr-probe", "sleep", "60"]; c.pop("annotations", None)'
  else
    edit_config "$B" 'c["process"]["args"] = ["/sysctr-probe", "sleep", "60"]; c["annotations"] = {"org.sysctr.init": "false"}'
  fi
  (cd "$B" && exec "$SHIM") & pid=$!
  sleep 0.3
  start=$(date +%s%N)
  kill -TERM $pid
  if [ $mode = init ]; then
    wait $pid; rc=$?
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    ok "[$mode] SIGTERM: shim killed by SIGTERM (status $rc), in ${ms} ms" test "$rc" = 143 -a "$ms" -lt 2000
  else
    # A handler-less pid 1 ignores SIGTERM: why the init is the default.
    sleep 0.5
    ok "[$mode] SIGTERM ignored by a handler-less pid 1 (documented opt-out)" kill -0 $pid
    kill -KILL $pid; wait $pid 2>/dev/null
  fi
done
edit_config "$B" 'c.pop("annotations", None)'

# SIGKILL of the shim kills the container (PDEATHSIG)
edit_config "$B" 'c["process"]["args"] = ["/sysctr-probe", "sleep", "61"]'
(cd "$B" && exec "$SHIM") & pid=$!
sleep 0.3
kill -KILL $pid; wait $pid 2>/dev/null
sleep 0.2
ok "shim SIGKILLed => no payload left" sh -c '! pgrep -f "^/sysctr-probe sleep 6[1]" >/dev/null'

# notify relay: allowed lines reach NOTIFY_SOCKET, others do not
edit_config "$B" 'c["process"]["args"] = ["/sysctr-probe", "notify", "READY=1", "MAINPID=1", "STATUS=serving", "FDSTORE=1"]'
for addr in "@sysctr-test-$$" "$TMP/notify.sock"; do
  (cd "$B" && python3 "$LIBDIR/notify-listen.py" "$addr" "$SHIM" --name=ntest) >"$out" 2>&1
  ok "notify ($addr): READY=1 and STATUS relayed" grep -q '^MSG:READY=1|STATUS=serving$' "$out"
  ok "notify ($addr): MAINPID/FDSTORE dropped" sh -c "! grep -q 'MAINPID\|FDSTORE' '$out'"
  ok "notify ($addr): shim exited 0" grep -q '^EXIT:0$' "$out"
done
ok "notify dir removed after exit" sh -c '! ls /run/sysctr/notify/ 2>/dev/null | grep -q "^ntest-"'
edit_config "$B" 'c["process"]["args"] = ["/sysctr-probe", "report"]'
(cd "$B" && python3 "$LIBDIR/notify-listen.py" "$TMP/notify2.sock" "$SHIM") >"$out" 2>&1
expect_kv "$out" notify_socket /run/sysctr/notify/notify
# without NOTIFY_SOCKET nothing is bound
(cd "$B" && env -u NOTIFY_SOCKET "$SHIM" --name=nonotify) >"$out" 2>&1
ok "no NOTIFY_SOCKET: no relay directory" sh -c '! ls /run/sysctr/notify/ 2>/dev/null | grep -q "^nonotify-"'

# the shim can no longer poll (its fd limit lowered under the 3 fds it polls,
# while it runs): it ends the container and fails (125), it does not go on
# or report the payload's status as its own
make_bundle "$B" sleep 62
# (under ASan: LeakSanitizer cannot open /proc at exit with that fd limit)
(cd "$B" && ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" exec "$SHIM") >"$out" 2>&1 &
pid=$!
sleep 0.3
prlimit --pid "$pid" --nofile=2:2
kill -WINCH "$pid" # wakes its poll(); forwarded, and ignored by the payload
wait "$pid"; rc=$?
ok "poll() failing: the shim exits 125 (rc $rc)" test "$rc" = 125
ok "  ... saying why" grep -q '^sysctr-shim: poll: Invalid argument' "$out"
ok "  ... and no payload is left" sh -c '! pgrep -f "^/sysctr-probe sleep 6[2]" >/dev/null'

# a symlinked mount destination is resolved inside the root, never on the host
make_bundle "$B" cat /etc/marker
mkdir -p "$B/rootfs/etc" "$B/src"
echo inside > "$B/src/marker"
ln -s /etc "$B/rootfs/data"
edit_config "$B" 'c["mounts"].append({"destination": "/data", "type": "bind", "source": "src", "options": ["rbind", "ro"]})'
# in a mount namespace of our own (private: other tests' mounts stay out),
# the table before and after the shim: a mount made on the host side shows
mounts=$(unshare -m --propagation private sh -c 'md5sum </proc/self/mountinfo; (cd "$1" && "$2") >"$3" 2>&1; md5sum </proc/self/mountinfo' \
	sh "$B" "$SHIM" "$out")
ok "symlink /data -> /etc bound onto the rootfs's /etc" grep -qx inside "$out"
ok "host /etc untouched" test ! -e /etc/marker
ok "the mount table the shim was started from is unchanged" test "$(sed -n 1p <<<"$mounts")" = "$(sed -n 2p <<<"$mounts")"
rm -rf "$B/rootfs/etc"
(cd "$B" && "$SHIM") >"$out" 2>&1; rc=$?
ok "symlink /data -> /etc with no /etc in the rootfs: refused (rc $rc)" test "$rc" = 125
ok "  ... with one clear line" grep -q '^sysctr-shim: mount destination /data: /data is a symlink to /etc, which does not exist inside the rootfs' "$out"
diag "$(cat "$out")"

# sysctl: only namespaced keys
make_bundle "$B" cat /proc/sys/kernel/msgmax
edit_config "$B" 'c["linux"]["sysctl"] = {"kernel.msgmax": "12345"}'
(cd "$B" && "$SHIM") >"$out" 2>&1
ok "ipc sysctl applied in the container" grep -qx 12345 "$out"
ok "host kernel.msgmax untouched" test "$(cat /proc/sys/kernel/msgmax)" != 12345

# network + cgroup namespaces, a net.* sysctl, a cgroup mount, and the shim's
# own /dev when the config mounts none
make_bundle "$B" cat /proc/sys/net/ipv4/ip_forward
mkdir -p "$B/rootfs/cg"
edit_config "$B" 'c["linux"]["namespaces"] += [{"type": "network"}, {"type": "cgroup"}]; c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}; c["mounts"] = [m for m in c["mounts"] if not m["destination"].startswith("/dev")] + [{"destination": "/cg", "type": "cgroup", "source": "cgroup"}]'
host_fwd=$(cat /proc/sys/net/ipv4/ip_forward)
(cd "$B" && "$SHIM") >"$out" 2>&1
ok "net sysctl applied in the container's netns" grep -qx 1 "$out"
ok "host ip_forward untouched" test "$(cat /proc/sys/net/ipv4/ip_forward)" = "$host_fwd"
edit_config "$B" 'c["process"]["args"] = ["/sysctr-probe", "cat", "/proc/self/mountinfo"]'
(cd "$B" && "$SHIM") >"$out" 2>&1
ok "cgroup mount: host hierarchy bound read-only" sh -c "awk '\$5 == \"/cg\" {print \$6}' '$out' | grep -q '^ro,'"
ok "default /dev: tmpfs with /dev/null bound" sh -c "awk '{print \$5}' '$out' | grep -qx /dev/null"
ok "default /dev: devpts instance" sh -c "awk '{print \$5}' '$out' | grep -qx /dev/pts"

done_testing
