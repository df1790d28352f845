#!/bin/bash
# Start-to-exit of a trivial payload in a full container: sysctr-shim vs
# runc, crun, bubblewrap, and `unshare -mpiuf --mount-proc` as the floor, all
# in one hyperfine run; then the steady-state PSS of the shim's resident
# processes while a sleeping payload runs. The config carries sysctr's
# default seccomp filter (runc and crun compile it at every start; the shim
# loads what --check compiled at install, and "shim-compile" shows a start
# without that cache).
#
#   bench/shim-start.sh [SHIM] [PROBE]
# Defaults: build/src/shim/sysctr-shim and build/tests/shim/sysctr-probe
# (or $SYSCTR_BUILDDIR). Needs root, hyperfine, python3.
set -u
SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
BUILDDIR=${SYSCTR_BUILDDIR:-$SRCDIR/build}
SHIM=$(realpath "${1:-$BUILDDIR/src/shim/sysctr-shim}")
PROBE=$(realpath "${2:-$BUILDDIR/tests/shim/sysctr-probe}")
RUNS=${RUNS:-50}

die () { echo "shim-start: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root"
[ -x "$SHIM" ] || die "no shim at $SHIM (build first, or pass its path)"
[ -x "$PROBE" ] || die "no probe at $PROBE"
command -v hyperfine >/dev/null || die "hyperfine not installed"

TMP=$(mktemp -d /tmp/sysctr-bench.XXXXXX)
cleanup () {
  [ -n "${SLEEPER:-}" ] && kill -KILL "$SLEEPER" 2>/dev/null
  runc --root "$TMP/runc" delete -f sysctr-bench >/dev/null 2>&1
  crun --root "$TMP/crun" delete -f sysctr-bench >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT

B=$TMP/bundle
mkdir -p "$B/rootfs"/{proc,dev,sys,run,tmp}
cp "$PROBE" "$B/rootfs/sysctr-probe"
# with_seccomp CONFIG: the default seccomp filter, as sysctr gives a
# container granted nothing (runc and crun run it too)
with_seccomp () {
  python3 - "$1" "$SRCDIR/data/seccomp.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
p = json.load(open(sys.argv[2]))
p["architectures"] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
c["linux"]["seccomp"] = p
json.dump(c, open(sys.argv[1], "w"), indent=1)
PY
}
python3 "$SRCDIR/tests/shim/make-config.py" true >"$B/config.json"
with_seccomp "$B/config.json"
# the filter compiled once, as sysctr install does
"$SHIM" --check --bundle="$B" >/dev/null || die "sysctr-shim --check failed"
# the same bundle without that cache: compiled at every start
NC=$TMP/nocache
mkdir -p "$NC" && cp "$B/config.json" "$NC/" && ln -s "$B/rootfs" "$NC/rootfs.link" && cp -a "$B/rootfs" "$NC/rootfs"
rm -f "$NC/rootfs.link"
# runc/crun get the same bundle; the shim ignores nothing here.

declare -a names cmds
add () { names+=("$1"); cmds+=("$2"); }
try () { # NAME COMMAND: keep it if one run succeeds, else say why not
  local out
  if out=$(bash -c "$2" 2>&1 </dev/null); then
    add "$1" "$2"
  else
    echo "not measured: $1: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
  fi
}

try floor "unshare -mpiuf --mount-proc $B/rootfs/sysctr-probe true"
try sysctr-shim "$SHIM --bundle=$B"
try shim-compile "$SHIM --bundle=$NC"
try bwrap "bwrap --ro-bind $B/rootfs / --proc /proc --dev /dev --unshare-pid --unshare-ipc --unshare-uts /sysctr-probe true"
# bubblewrap loading the very same compiled filter (--seccomp FD): the
# closest peer doing the same work
python3 - "$B/seccomp.bpf" "$TMP/filter.bpf" <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
i = d.index(b"key="); j = d.index(b"\n", i); k = j + 1 + int(d[i + 4:j])
j2 = d.index(b"\n", k)
open(sys.argv[2], "wb").write(d[j2 + 1:j2 + 1 + int(d[k + 4:j2])])
PY

try runc "runc --root $TMP/runc run --bundle $B sysctr-bench"
try crun "crun --root $TMP/crun run --bundle $B sysctr-bench"

args=()
for i in "${!names[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$TMP/result.json" "${args[@]}" >"$TMP/hyperfine.txt" 2>&1 \
  || { cat "$TMP/hyperfine.txt"; die "hyperfine failed"; }

python3 - "$TMP/result.json" <<'PY'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
med = {k: v["median"] * 1000 for k, v in res.items()}
floor = med.get("floor")
runc = med.get("runc")
print("\n%-12s %10s %10s %10s %10s" % ("runtime", "median ms", "mean ms", "x floor", "runc / it"))
for k, v in res.items():
    m = med[k]
    print("%-12s %10.2f %10.2f %10s %10s" % (
        k, m, v["mean"] * 1000,
        "%.2f" % (m / floor) if floor else "-",
        "%.1f" % (runc / m) if runc else "-"))
PY

# bubblewrap can load the same compiled filter (--seccomp FD), which needs a
# redirection hyperfine -N cannot make: the same loop for both, so the loop
# costs the same on each side.
loop () { # N COMMAND...: mean ms per start
  local n=$1 t0 t1; shift
  t0=$(date +%s%N)
  for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 9<"$TMP/filter.bpf" || return 1; done
  t1=$(date +%s%N)
  awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN { printf "%.2f", (b - a) / n / 1e6 }'
}
BW=(bwrap --ro-bind "$B/rootfs" / --proc /proc --dev /dev --unshare-pid --unshare-ipc --unshare-uts /sysctr-probe true)
echo
echo "with the same filter loaded (a shell loop of $RUNS starts each, mean ms per start):"
echo "  sysctr-shim (seccomp.bpf):  $(loop "$RUNS" "$SHIM" --bundle="$B")"
echo "  bwrap --seccomp:            $(loop "$RUNS" bwrap --seccomp 9 "${BW[@]:1}")"
echo "  bwrap, no filter:           $(loop "$RUNS" "${BW[@]}")"

# Steady-state memory of what stays resident: the shim (unit main pid) and
# the container's init (a fork of the shim).
python3 "$SRCDIR/tests/shim/make-config.py" sleep 30 >"$B/config.json"
with_seccomp "$B/config.json"
"$SHIM" --check --bundle="$B" >/dev/null || die "sysctr-shim --check failed"
"$SHIM" --bundle="$B" & SLEEPER=$!
sleep 0.5
pss () { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null; }
rss () { awk '/^Rss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null; }
init_pid=$(pgrep -P "$SLEEPER" | head -n1)
shim_pss=$(pss "$SLEEPER"); init_pss=$(pss "$init_pid")
echo
echo "resident while a sleeping payload runs:"
echo "  sysctr-shim (unit main pid $SLEEPER): PSS ${shim_pss:-?} KiB, RSS $(rss "$SLEEPER") KiB"
echo "  container init (pid 1 inside, $init_pid): PSS ${init_pss:-?} KiB, RSS $(rss "$init_pid") KiB"
echo "  total PSS: $(( ${shim_pss:-0} + ${init_pss:-0} )) KiB (goal: < 1024 KiB)"
