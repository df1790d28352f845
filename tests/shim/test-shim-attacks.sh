#!/bin/bash
# The shim against a hostile payload or a hostile config: device nodes, a
# working directory that is one of the shim's own fds (CVE-2024-21626),
# writable binds of the image store, and sd_notify abuse (EXTEND_TIMEOUT_USEC
# during stop, STATUS= floods, a systemd that does not read). Each case
# failed before the fix that it names.
. "$(dirname "$0")/libtest-shim.sh"
require_shim

B=$TMP/bundle
out=$TMP/out
make_bundle "$B"

# --- 1. /dev is nodev: a node made there is useless -------------------------
# The payload gets CAP_MKNOD on purpose (the old default set had it): mknod
# may work on the tmpfs, but opening the node must not reach the device. The
# node is a copy of /dev/null (1:3), which every device cgroup allows, so
# only the mount's nodev can stop it (a disk would be 7:N or 253:N).
edit_config "$B" '
caps = c["process"]["capabilities"]["bounding"] + ["CAP_MKNOD"]
for k in ("bounding", "effective", "permitted"): c["process"]["capabilities"][k] = caps
c["process"]["args"] = ["/sysctr-probe", "mknod", "/dev/null-copy", "1", "3"]'
(cd "$B" && "$SHIM" --name=mknod) >"$out" 2>&1
ok "a device node made in /dev cannot be opened (config /dev tmpfs)" grep -Eq '^(mknod=EPERM|open=(EACCES|EPERM))$' "$out"
diag "$(tr '\n' ' ' <"$out")"
# the shim's own /dev (no /dev mount in the config)
edit_config "$B" 'c["mounts"] = [m for m in c["mounts"] if not m["destination"].startswith("/dev")]'
(cd "$B" && "$SHIM" --name=mknod) >"$out" 2>&1
ok "a device node made in /dev cannot be opened (shim's /dev)" grep -Eq '^(mknod=EPERM|open=(EACCES|EPERM))$' "$out"
# the standard nodes still work
make_bundle "$B" cat /dev/zero
edit_config "$B" 'c["process"]["args"] = ["/sysctr-probe", "write", "/dev/null", "x"]'
(cd "$B" && "$SHIM" --name=devnull) >"$out" 2>&1
expect_kv "$out" write OK

# --- 2. working directory through a leaked fd (CVE-2024-21626) --------------
# With the payload as pid 1 (no init), the shim's O_PATH fds of the bundle and
# rootfs were still open at chdir(): /proc/self/fd/N/.. led to the host root.
rm -f /sysctr-escape
for n in 3 4 5 6 7 8; do
  make_bundle "$B" cwd
  edit_config "$B" "c['process']['cwd'] = '/proc/self/fd/$n'; c['annotations'] = {'org.sysctr.init': 'false'}"
  (cd "$B" && "$SHIM" --name=cwd) >"$out" 2>&1
  if [ -e /sysctr-escape ]; then
    fail "cwd /proc/self/fd/$n: the payload wrote /sysctr-escape on the host"
    rm -f /sysctr-escape
  else
    pass "cwd /proc/self/fd/$n: nothing written on the host ($(grep -m1 -E 'getcwd=|process.cwd' "$out" | cut -c1-80))"
  fi
done
# with the default init too
make_bundle "$B" cwd
edit_config "$B" "c['process']['cwd'] = '/proc/self/fd/3'"
(cd "$B" && "$SHIM" --name=cwd) >"$out" 2>&1
ok "cwd /proc/self/fd/3 with the init: nothing written on the host" test ! -e /sysctr-escape
rm -f /sysctr-escape

# --- 3. the store is never writable from a container ------------------------
# A bundle laid out as sysctr lays it out: STATE/containers/NAME.0, STATE/repo.
S=$TMP/state
SB=$S/containers/victim.0
mkdir -p "$S/repo/objects" "$S/containers"
echo original >"$S/repo/objects/obj"
make_bundle "$SB" write /mnt/pwned x
mkdir -p "$SB/rootfs/mnt" "$SB/rootfs/host" "$SB/rootfs/etc"
echo root:x:0:0::/root:/bin/sh >"$SB/rootfs/etc/passwd"
for src in rootfs/etc ../../repo "$S/repo" "$S" "$SB"; do
  edit_config "$SB" "c['mounts'].append({'destination': '/mnt', 'type': 'bind', 'source': '$src', 'options': ['rbind', 'rw']})"
  (cd "$SB" && "$SHIM" --name=victim) >"$out" 2>&1
  rc=$?
  if [ $rc = 125 ] && grep -q 'writable bind of sysctr' "$out"; then
    pass "rw bind of $src refused ($(grep -m1 'sysctr-shim' "$out" | cut -c1-100))"
  else
    fail "rw bind of $src was not refused (rc $rc): $(tr '\n' ' ' <"$out" | cut -c1-200)"
  fi
  edit_config "$SB" "c['mounts'].pop()"
done
# through a symlink on the host
ln -sfn "$S/repo" "$TMP/innocent"
edit_config "$SB" "c['mounts'].append({'destination': '/mnt', 'type': 'bind', 'source': '$TMP/innocent', 'options': ['rbind', 'rw']})"
(cd "$SB" && "$SHIM" --name=victim) >"$out" 2>&1
ok "rw bind through a host symlink into the store refused" grep -q 'writable bind of sysctr' "$out"
edit_config "$SB" "c['mounts'].pop()"
# read-only is fine
edit_config "$SB" "c['mounts'].append({'destination': '/mnt', 'type': 'bind', 'source': 'rootfs/etc', 'options': ['rbind', 'ro']}); c['process']['args'] = ['/sysctr-probe', 'cat', '/mnt/passwd']"
(cd "$SB" && "$SHIM" --name=victim) >"$out" 2>&1
ok "ro bind of the container's own rootfs/etc works" grep -q '^root:x:0:0' "$out"
edit_config "$SB" "c['mounts'].pop()"
# a granted rw bind of a parent: the store inside it is read-only
edit_config "$SB" "c['mounts'].append({'destination': '/host', 'type': 'bind', 'source': '$TMP', 'options': ['rbind', 'rw']}); c['process']['args'] = ['/sysctr-probe', 'write', '/host/state/repo/objects/obj', 'pwned']"
(cd "$SB" && "$SHIM" --name=victim) >"$out" 2>&1
ok "rw bind of a parent: a store object is not writable inside it" grep -q '^write=EROFS$' "$out"
ok "the store object is unchanged" grep -qx original "$S/repo/objects/obj"
edit_config "$SB" "c['process']['args'] = ['/sysctr-probe', 'write', '/host/elsewhere', 'ok']"
(cd "$SB" && "$SHIM" --name=victim) >"$out" 2>&1
ok "rw bind of a parent: the rest of it stays writable" grep -q '^write=OK$' "$out"
rm -f "$TMP/elsewhere"

# --- 4. sd_notify abuse ------------------------------------------------------
# listen.py MODE ADDR SECONDS CMD...: bind ADDR, run CMD with NOTIFY_SOCKET,
# report what arrived. MODE "sigterm": SIGTERM the shim after 0.5 s, print
# the messages. "count": print how many datagrams arrived. "noread": never
# read; SIGTERM the shim after 1 s and report how long it took to exit.
cat >"$TMP/listen.py" <<'PY'
import os, signal, socket, subprocess, sys, time
mode, path, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
p = subprocess.Popen(sys.argv[4:], env=dict(os.environ, NOTIFY_SOCKET=path))
msgs = []
deadline = time.time() + secs
s.settimeout(0.05)
sent = False
while time.time() < deadline:
    if mode in ("sigterm", "noread") and not sent and time.time() > deadline - secs + (1.0 if mode == "noread" else 0.5):
        t0 = time.time(); p.send_signal(signal.SIGTERM); sent = True
    if mode == "noread":
        if sent and p.poll() is not None:
            break
        time.sleep(0.02)
        continue
    try:
        msgs.append(s.recv(65536).decode(errors="replace"))
    except socket.timeout:
        if p.poll() is not None and mode != "count":
            break
if mode == "noread":
    print("EXITED_IN=%s" % ("%.2f" % (time.time() - t0) if p.poll() is not None else "never"))
    p.kill()
elif mode == "count":
    print("DATAGRAMS=%d" % len(msgs))
    print("LAST=" + (msgs[-1].replace("\n", "|") if msgs else ""))
    p.kill()
else:
    for m in msgs:
        print("MSG:" + m.replace("\n", "|"))
p.wait()
PY
make_bundle "$B" term-extend
(cd "$B" && timeout 20 python3 "$TMP/listen.py" sigterm "$TMP/n1.sock" 5 "$SHIM" --name=ext) >"$out" 2>&1
ok "during stop: STATUS= still relayed" grep -q 'STATUS=stopping' "$out"
ok "during stop: EXTEND_TIMEOUT_USEC= dropped" sh -c "! grep -q EXTEND_TIMEOUT_USEC '$out'"
diag "$(tr '\n' ' ' <"$out")"

make_bundle "$B" notify-flood 20000 STATUS=busy
(cd "$B" && timeout 20 python3 "$TMP/listen.py" count "$TMP/n2.sock" 3 "$SHIM" --name=flood) >"$out" 2>&1
n=$(sed -n 's/^DATAGRAMS=//p' "$out")
if [ -n "$n" ] && [ "$n" -ge 1 ] && [ "$n" -le 60 ]; then pass "20000 STATUS= lines reached systemd as $n datagrams (coalesced)"; else fail "STATUS= flood: $n datagrams relayed (want 1..60)"; fi
ok "the last STATUS= is the one relayed" grep -q '^LAST=STATUS=busy$' "$out"

make_bundle "$B" notify-flood 5000 WATCHDOG=1
(cd "$B" && timeout 20 python3 "$TMP/listen.py" noread "$TMP/n3.sock" 8 "$SHIM" --name=slow) >"$out" 2>&1
t=$(sed -n 's/^EXITED_IN=//p' "$out")
if [ -n "$t" ] && [ "$t" != never ] && awk "BEGIN{exit !($t < 2)}"; then pass "systemd not reading: SIGTERM still forwarded, shim exited in ${t}s"; else fail "systemd not reading: shim exited in '$t' after SIGTERM"; fi

done_testing
