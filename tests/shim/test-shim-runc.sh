#!/bin/bash
# The same bundle under runc (and crun): the probe must report the same
# view for hostname, read-only root and capabilities.
. "$(dirname "$0")/libtest-shim.sh"
require_root

B=$TMP/bundle
make_bundle "$B" report
(cd "$B" && "$SHIM") >"$TMP/shim.out" 2>&1 || diag "shim failed: $(cat "$TMP/shim.out")"

for rt in runc crun; do
  if ! command -v $rt >/dev/null; then
    skip "$rt: not installed"
    continue
  fi
  id=sysctr-test-$$-$rt
  (cd "$B" && $rt --root "$TMP/$rt-state" run "$id") </dev/null >"$TMP/$rt.out" 2>"$TMP/$rt.err"; rc=$?
  $rt --root "$TMP/$rt-state" delete -f "$id" >/dev/null 2>&1
  if [ $rc != 0 ] || ! grep -q '^hostname=' "$TMP/$rt.out"; then
    skip "$rt run failed here (rc $rc): $(head -c 200 "$TMP/$rt.err" | tr '\n' ' ')"
    continue
  fi
  for key in hostname write_root CapEff CapBnd CapPrm NoNewPrivs masked:/proc/keys masked:/sys/firmware write_tmp; do
    a=$(grep -m1 "^$key=" "$TMP/shim.out" | cut -d= -f2-)
    b=$(grep -m1 "^$key=" "$TMP/$rt.out" | cut -d= -f2-)
    check "$key: sysctr-shim '$a' = $rt '$b'" test "$a" = "$b"
  done
  ra=$(grep -m1 '^root_opts=' "$TMP/shim.out" | cut -d= -f2 | cut -d, -f1)
  rb=$(grep -m1 '^root_opts=' "$TMP/$rt.out" | cut -d= -f2 | cut -d, -f1)
  check "root mount: sysctr-shim '$ra' = $rt '$rb'" test "$ra" = "$rb"
  diag "$rt pid=$(grep -m1 '^pid=' "$TMP/$rt.out" | cut -d= -f2) (sysctr-shim: $(grep -m1 '^pid=' "$TMP/shim.out" | cut -d= -f2), its init is pid 1)"
done

done_testing
