# Shared helpers for the shim's TAP tests (sourced). Runs as root: the shim
# needs real namespaces and mounts.
set -u

SHIM=${SYSCTR_SHIM_EXE:-${SYSCTR_BUILDDIR:-.}/src/shim/sysctr-shim}
PROBE=${SYSCTR_PROBE:-${SYSCTR_BUILDDIR:-.}/tests/shim/sysctr-probe}
LIBDIR=$(cd "$(dirname "$0")" && pwd)

_tap_n=0
_tap_failed=0
ok () { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $*"; }
not_ok () { _tap_n=$((_tap_n + 1)); _tap_failed=1; echo "not ok $_tap_n - $*"; }
skip () { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n # SKIP $*"; }
diag () { echo "# $*" | sed '2,$s/^/# /'; }
done_testing () { echo "1..$_tap_n"; exit $_tap_failed; }

# check DESCRIPTION COMMAND...: ok if the command succeeds
check () {
  local d=$1; shift
  if "$@"; then ok "$d"; else not_ok "$d"; fi
}

# expect_kv FILE KEY VALUE: the probe reported KEY=VALUE
expect_kv () {
  local f=$1 k=$2 v=$3 got
  got=$(grep -m1 "^$k=" "$f" | cut -d= -f2-)
  if [ "$got" = "$v" ]; then ok "$k=$v"; else not_ok "$k=$v (got '$got')"; fi
}

require_root () {
  if [ "$(id -u)" != 0 ]; then
    echo "1..0 # SKIP needs root (namespaces, mounts)"
    exit 0
  fi
  if [ ! -x "$SHIM" ] || [ ! -x "$PROBE" ]; then
    echo "1..0 # SKIP shim or probe not built ($SHIM, $PROBE)"
    exit 0
  fi
}

TMP=$(mktemp -d /tmp/sysctr-shim-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

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
