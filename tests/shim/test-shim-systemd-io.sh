#!/bin/bash
# Socket activation with systemd's own tool: real LISTEN_FDS/LISTEN_PID.
. "$(dirname "$0")/libtest-shim.sh"
require_shim
if ! command -v systemd-socket-activate >/dev/null; then
  echo "1..0 # SKIP systemd-socket-activate not installed"
  exit 0
fi

B=$TMP/bundle
make_bundle "$B" report
for mode in init no-init; do
  if [ $mode = no-init ]; then
    want_pid=1
    edit_config "$B" 'c["annotations"] = {"org.sysctr.init": "false"}'
  else
    want_pid=2
  fi
  edit_config "$B" 'c["process"]["args"] = ["/sysctr-probe", "report"]'
  port=$(free_port)
  # fd 9 is open in the shim too (no CLOEXEC): it must not reach the payload
  (cd "$B" && exec systemd-socket-activate -l 127.0.0.1:$port --fdname=web "$SHIM" 9</dev/null) >"$TMP/out" 2>"$TMP/err" &
  sa=$!
  for _ in $(seq 50); do ss -ltn 2>/dev/null | grep -q ":$port " && break; sleep 0.05; done
  # the report runs only after a connection (systemd-socket-activate execs on the first one)
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" 2>/dev/null
  wait $sa
  expect_kv "$TMP/out" pid $want_pid
  expect_kv "$TMP/out" listen_pid $want_pid
  expect_kv "$TMP/out" sd_listen_fds 1
  expect_kv "$TMP/out" listen_fdnames web
  expect_kv "$TMP/out" fds 0,1,2,3

  edit_config "$B" 'c["process"]["args"] = ["/sysctr-probe", "accept"]'
  port=$(free_port)
  (cd "$B" && exec systemd-socket-activate -l 127.0.0.1:$port "$SHIM") >"$TMP/out" 2>"$TMP/err" &
  sa=$!
  for _ in $(seq 50); do ss -ltn 2>/dev/null | grep -q ":$port " && break; sleep 0.05; done
  reply=$(python3 -c "
import socket
s = socket.create_connection(('127.0.0.1', $port)); s.settimeout(5)
print(s.recv(600).decode().strip())" 2>&1)
  wait $sa; rc=$?
  ok "[$mode] payload accepted on fd 3: '$reply'" test "$reply" = "hello from pid $want_pid sd_listen_fds=1 fds=0,1,2,3"
  ok "[$mode] shim exited 0 (rc $rc)" test "$rc" = 0
done

# LISTEN_FDS meant for another process (LISTEN_PID not the shim) is not passed on
edit_config "$B" 'c["process"]["args"] = ["/sysctr-probe", "report"]'
(cd "$B" && LISTEN_FDS=1 LISTEN_PID=1 "$SHIM" 3</dev/null) >"$TMP/out" 2>&1
expect_kv "$TMP/out" listen_fds_env unset
expect_kv "$TMP/out" fds 0,1,2

done_testing
