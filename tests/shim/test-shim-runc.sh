#!/bin/bash
# The same bundle under runc (and crun): the probe must report the same
# view for hostname, read-only root and capabilities.
. "$(dirname "$0")/libtest-shim.sh"
require_shim

B=$TMP/bundle
make_bundle "$B" report
(cd "$B" && "$SHIM") >"$TMP/shim.out" 2>&1 || diag "shim failed: $(cat "$TMP/shim.out")"

for rt in runc crun; do
  if ! command -v $rt >/dev/null; then
    skip "$rt" "not installed"
    continue
  fi
  id=sysctr-test-$$-$rt
  (cd "$B" && $rt --root "$TMP/$rt-state" run "$id") </dev/null >"$TMP/$rt.out" 2>"$TMP/$rt.err"; rc=$?
  $rt --root "$TMP/$rt-state" delete -f "$id" >/dev/null 2>&1
  if [ $rc != 0 ] || ! grep -q '^hostname=' "$TMP/$rt.out"; then
    skip "$rt" "$rt run failed here (rc $rc): $(head -c 200 "$TMP/$rt.err" | tr '\n' ' ')"
    continue
  fi
  for key in hostname write_root CapEff CapBnd CapPrm NoNewPrivs masked:/proc/keys masked:/sys/firmware write_tmp; do
    a=$(grep -m1 "^$key=" "$TMP/shim.out" | cut -d= -f2-)
    b=$(grep -m1 "^$key=" "$TMP/$rt.out" | cut -d= -f2-)
    ok "$key: sysctr-shim '$a' = $rt '$b'" test "$a" = "$b"
  done
  ra=$(grep -m1 '^root_opts=' "$TMP/shim.out" | cut -d= -f2 | cut -d, -f1)
  rb=$(grep -m1 '^root_opts=' "$TMP/$rt.out" | cut -d= -f2 | cut -d, -f1)
  ok "root mount: sysctr-shim '$ra' = $rt '$rb'" test "$ra" = "$rb"
  diag "$rt pid=$(grep -m1 '^pid=' "$TMP/$rt.out" | cut -d= -f2) (sysctr-shim: $(grep -m1 '^pid=' "$TMP/shim.out" | cut -d= -f2), its init is pid 1)"
done

# What runc runs, the shim runs: the config `runc spec` writes, with only
# its args changed. runc spec asks for ambient capabilities without
# inheritable ones (runc skips them: so does the shim, with a warning) and
# a terminal (the shim runs without one, with a warning), and carries data
# options on its mounts; the payload must see the same as under runc.
if command -v runc >/dev/null; then
  S=$TMP/spec
  mkdir -p "$S/rootfs"/{proc,dev,sys} && cp "$PROBE" "$S/rootfs/sysctr-probe"
  (cd "$S" && runc spec) || fail "runc spec"
  edit_config "$S" 'c["process"]["args"] = ["/sysctr-probe", "report"]'
  (cd "$S" && "$SHIM" --name=spec) >"$TMP/spec-shim.out" 2>"$TMP/spec-shim.err"; rc=$?
  ok "runc spec's config, args changed: the shim runs it (rc $rc)" test $rc = 0
  ok "  ... saying it ignores the terminal" grep -q 'process.terminal: true ignored' "$TMP/spec-shim.err"
  ok "  ... and the ambient capabilities it cannot raise" grep -q 'ambient: 3 capabilities not both permitted and inheritable' "$TMP/spec-shim.err"
  id=sysctr-test-$$-spec
  edit_config "$S" 'c["process"]["terminal"] = False'  # runc needs a console socket for a terminal
  (cd "$S" && runc --root "$TMP/runc-state" run "$id") </dev/null >"$TMP/spec-runc.out" 2>"$TMP/spec-runc.err"; rc=$?
  runc --root "$TMP/runc-state" delete -f "$id" >/dev/null 2>&1
  if [ $rc != 0 ] || ! grep -q '^hostname=' "$TMP/spec-runc.out"; then
    skip "runc spec bundle" "runc run of runc spec's bundle failed here (rc $rc): $(head -c 200 "$TMP/spec-runc.err" | tr '\n' ' ')"
  else
    for key in hostname uid write_root CapEff CapBnd CapPrm CapAmb NoNewPrivs masked:/proc/keys masked:/proc/kcore; do
      a=$(grep -m1 "^$key=" "$TMP/spec-shim.out" | cut -d= -f2-)
      b=$(grep -m1 "^$key=" "$TMP/spec-runc.out" | cut -d= -f2-)
      ok "runc spec bundle, $key: sysctr-shim '$a' = runc '$b'" test "$a" = "$b"
    done
  fi
else
  skip "runc spec bundle" "runc not installed"
fi

# The default seccomp filter: the same verdicts under the shim and runc.
if command -v runc >/dev/null; then
  make_bundle "$TMP/sc" syscalls
  python3 - "$TMP/sc/config.json" "${SYSCTR_SRCDIR:-$LIBDIR/../..}/data/seccomp.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); p = json.load(open(sys.argv[2]))
p["architectures"] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
c["linux"]["seccomp"] = p
json.dump(c, open(sys.argv[1], "w"))
PY
  (cd "$TMP/sc" && "$SHIM" --name=sc) >"$TMP/sc-shim.out" 2>&1
  id=sysctr-test-$$-sc
  (cd "$TMP/sc" && runc --root "$TMP/runc-state" run "$id") </dev/null >"$TMP/sc-runc.out" 2>&1; rc=$?
  runc --root "$TMP/runc-state" delete -f "$id" >/dev/null 2>&1
  ok "the default filter under the shim: bpf() fails with EPERM" grep -q '^syscall:bpf=EPERM$' "$TMP/sc-shim.out"
  ok "  ... kexec_load() with EPERM" grep -q '^syscall:kexec_load=EPERM$' "$TMP/sc-shim.out"
  ok "  ... NETLINK_AUDIT sockets get EINVAL" grep -q '^syscall:socket_audit=Invalid argument$' "$TMP/sc-shim.out"
  if [ $rc = 0 ]; then
    ok "  ... every verdict the same as runc's with the same profile" diff <(grep '^syscall:' "$TMP/sc-shim.out") <(grep '^syscall:' "$TMP/sc-runc.out")
  else
    skip "seccomp verdicts against runc" "runc run failed here (rc $rc)"
  fi
fi

done_testing
