#!/bin/bash
# The whole test suite: dependencies, a build installed into a temporary
# prefix (units name the shim by its installed path; the booted test
# systemd binds that prefix), meson test, then the same suites under
# AddressSanitizer+UBSan, then short fuzz runs, then cross builds for arm64
# and armhf with their unit tests under qemu-user (scripts/cross.sh;
# SYSCTR_NO_CROSS=1 skips them). The last line is the total:
# "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
[[ $(id -u) == 0 ]] || { echo "run as root (the tests boot a systemd and make namespaces)"; exit 1; }
bash scripts/deps.sh

work=${SYSCTR_TEST_WORK:-/var/tmp/sysctr-test-$$}
prefix=$work/prefix
rm -rf "$work"; mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

passed=0 failed=0 skipped=0
tally() { # meson's testlog.json (of a build dir, or a file of such lines): one JSON object per test
  local log=$1
  [[ -d $log ]] && log=$log/meson-logs/testlog.json
  [[ -f $log ]] || { failed=$((failed+1)); return; }
  local p f s
  p=$(jq -s '[.[]|select(.result=="OK" or .result=="EXPECTEDFAIL")]|length' "$log")
  f=$(jq -s '[.[]|select(.result=="FAIL" or .result=="TIMEOUT" or .result=="ERROR" or .result=="UNEXPECTEDPASS")]|length' "$log")
  s=$(jq -s '[.[]|select(.result=="SKIP")]|length' "$log")
  passed=$((passed+p)) failed=$((failed+f)) skipped=$((skipped+s))
}

echo "== build (prefix $prefix)"
meson setup "$work/build" --prefix="$prefix" >/dev/null && ninja -C "$work/build" >/dev/null && meson install -C "$work/build" >/dev/null \
  || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
echo "== meson test"
meson test -C "$work/build" --print-errorlogs --num-processes 2 ${SYSCTR_TEST_ARGS:-}
tally "$work/build"

echo "== static analysis (cppcheck, clang-tidy, shellcheck)"
if bash scripts/lint.sh "$work/build"; then passed=$((passed+1)); echo "lint: clean"; else failed=$((failed+1)); echo "lint: findings above"; fi

if [[ -z "${SYSCTR_NO_ASAN:-}" ]]; then
  echo "== meson test under ASan+UBSan (unit, integration, shim suites)"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  if meson setup "$work/asan" --prefix="$prefix-asan" -Db_sanitize=address,undefined -Db_lundef=false >/dev/null \
     && ninja -C "$work/asan" >/dev/null && meson install -C "$work/asan" >/dev/null; then
    meson test -C "$work/asan" --print-errorlogs --num-processes 2 --suite unit --suite integration --suite shim
    tally "$work/asan"
  else
    echo "sanitizer build failed"; failed=$((failed+1))
  fi
fi

if [[ -z "${SYSCTR_NO_FUZZ:-}" && -x scripts/fuzz.sh ]]; then
  echo "== fuzz smoke runs"
  if bash scripts/fuzz.sh --smoke "$work/fuzz"; then passed=$((passed+1)); else failed=$((failed+1)); fi
fi

if [[ -z "${SYSCTR_NO_CROSS:-}" ]]; then
  echo "== ARM: cross builds (arm64, armhf), unit tests under qemu-user"
  bash scripts/cross.sh "$work/cross"
  for a in ${SYSCTR_CROSS_ARCHES:-arm64 armhf}; do # ARCH.steps.json: the build and the shim under qemu-user
    if [[ -f $work/cross/$a.steps.json ]]; then
      tally "$work/cross/$a.steps.json"
      [[ -f $work/cross/$a/meson-logs/testlog.json ]] && tally "$work/cross/$a"
    else
      failed=$((failed+1))
    fi
  done
fi

echo "$passed passed, $failed failed$( ((skipped)) && echo ", $skipped skipped")"
((failed == 0))
