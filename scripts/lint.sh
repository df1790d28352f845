#!/bin/bash
# Static analysis: cppcheck and clang-tidy over src/, shellcheck (warnings
# and errors) over every shell script git tracks. The macro definitions
# below only teach cppcheck what GLib's and jansson's iteration and
# cleanup macros are (it cannot expand them from the system headers); they
# are not suppressions of findings.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
build=${1:-build}
rc=0
cppcheck --library=gtk --enable=warning,portability --inline-suppr --quiet --error-exitcode=1 \
  -I src/lib -I src/shim -I "$build" -D_GNU_SOURCE \
  '-DG_DEFINE_AUTOPTR_CLEANUP_FUNC(a,b)=' '-DG_DEFINE_QUARK(a,b)=' '-DG_DEFINE_TYPE(a,b,c)=' \
  '-Djson_array_foreach(a,i,v)=for(i=0;(v=json_array_get(a,i));i++)' \
  '-Djson_object_foreach(o,k,v)=for(k=0;(v=0);)' \
  src/ || rc=1
if command -v clang-tidy >/dev/null && [[ -f $build/compile_commands.json ]]; then
  # bugprone/cert/security checks; see .clang-tidy for the ones left out and why
  # -Wformat=2 makes GLib's own inline functions in /usr/include trip
  # format-nonliteral; that is not this code.
  # (clang-tidy exits non-zero on findings: read its output, not its status)
  out=$(find src -name '*.c' -print0 | xargs -0 clang-tidy -p "$build" --quiet --extra-arg=-Wno-format-nonliteral 2>/dev/null)
  if grep -E 'warning:|error:' <<<"$out"; then rc=1; fi
fi
if command -v shellcheck >/dev/null; then
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z '*.sh' .ci/run data/sysctr.bash-completion
  else
    find . -name '*.sh' -not -path './build*' -print0; printf '%s\0' .ci/run data/sysctr.bash-completion
  fi | xargs -0 -r shellcheck -x -S warning -f gcc || rc=1
else
  echo "lint: shellcheck not installed" >&2
  rc=1
fi
exit $rc
