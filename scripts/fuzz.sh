#!/bin/bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each one.
#   fuzz.sh --smoke [WORKDIR]   every target for FUZZ_SECONDS (default 20) s, from the seed corpora
#   fuzz.sh TARGET [SECONDS]    one target, longer
# New crashing inputs are saved as WORKDIR/crash-*; keep them in
# tests/fuzz/corpus/TARGET/ once fixed, as regression inputs.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
mode=${1:---smoke}
work=${2:-/var/tmp/sysctr-fuzz}
[[ $mode == --smoke ]] || work=/var/tmp/sysctr-fuzz
build=$work/build
mkdir -p "$work"
if [[ ! -f $build/build.ninja ]]; then
  CC=clang meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
ninja -C "$build" tests/fuzz/fuzz-reference tests/fuzz/fuzz-manifest tests/fuzz/fuzz-template \
  tests/fuzz/fuzz-layer tests/fuzz/fuzz-shim-config tests/fuzz/fuzz-policy >/dev/null
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
run() {
  local t=$1 secs=$2 corpus=$work/corpus-$1
  rm -rf "$corpus"; mkdir -p "$corpus"
  cp "$top/tests/fuzz/corpus/$t"/* "$corpus/" 2>/dev/null || true
  echo "fuzz: $t for ${secs}s"
  "$build/tests/fuzz/$t" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$work/crash-$t-" -print_final_stats=0 "$corpus" 2>"$work/$t.log" \
    || { echo "fuzz: $t FAILED (log: $work/$t.log)"; tail -30 "$work/$t.log"; return 1; }
  grep -E '^#[0-9]+.*DONE' "$work/$t.log" | tail -1 || true
}
if [[ $mode == --smoke ]]; then
  rc=0
  for t in fuzz-reference fuzz-manifest fuzz-template fuzz-layer fuzz-shim-config fuzz-policy; do
    run "$t" "${FUZZ_SECONDS:-20}" || rc=1
  done
  exit $rc
fi
run "$mode" "${2:-300}"
