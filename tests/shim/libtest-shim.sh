# shellcheck shell=bash
# Shared helpers for the shim's TAP tests (sourced), on top of the one TAP
# library, tests/lib/libtest.sh (ok DESC CMD runs CMD; pass/fail record a
# result). Runs as root: the shim needs real namespaces and mounts.
set -u
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)/libtest.sh"

SHIM=${SYSCTR_SHIM_EXE:-${SYSCTR_BUILDDIR:-.}/src/shim/sysctr-shim}
PROBE=${SYSCTR_PROBE:-${SYSCTR_BUILDDIR:-.}/tests/shim/sysctr-probe}
LIBDIR=$(cd "$(dirname "$0")" && pwd)

# expect_kv FILE KEY VALUE: the probe reported KEY=VALUE
expect_kv () {
  local f=$1 k=$2 v=$3 got
  got=$(grep -m1 "^$k=" "$f" | cut -d= -f2-)
  if [ "$got" = "$v" ]; then pass "$k=$v"; else fail "$k=$v (got '$got')"; fi
}

require_shim () {
  require_root
  if [ ! -x "$SHIM" ] || [ ! -x "$PROBE" ]; then
    skip_all "shim or probe not built ($SHIM, $PROBE)"
  fi
}

# shellcheck disable=SC2034 # for the tests that source this
TMP=$TEST_TMPDIR

# make_bundle DIR [PROBE ARGS...]: a rootfs with only the static probe and
# the directories the default config mounts on.
make_bundle () {
  local b=$1; shift
  mkdir -p "$b/rootfs"/{proc,dev,sys,run,tmp}
  cp "$PROBE" "$b/rootfs/sysctr-probe"
  python3 "$LIBDIR/make-config.py" "$@" > "$b/config.json"
}

# edit_config DIR PYTHON-EXPRESSION-STATEMENTS: edit config.json as `c`
edit_config () {
  local b=$1; shift
  python3 - "$b/config.json" "$*" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
exec(sys.argv[2])
json.dump(c, open(p, "w"), indent=1)
PY
}

free_port () {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
