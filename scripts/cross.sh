#!/bin/bash
# ARM builds of sysctr, tested under emulation (issue 17): cross builds for
# arm64 and armhf with Debian's cross compilers and multiarch -dev packages
# (cross/ARCH.ini), their unit tests and the shim's config test run by
# `meson test` under qemu-user, the static sysctr-shim tried on a trivial
# bundle under qemu-user (--check, then a run: qemu-user cannot run a
# container, so that is a SKIP saying why), the CLI pulling an image into a
# --root store under qemu-user, and binary sizes against the floor (a
# stripped static program that only calls write(), same cross compiler).
#
#   bash scripts/cross.sh [WORKDIR]        (default /var/tmp/sysctr-cross)
#
# As root on Debian 12 amd64: adds the foreign architectures and installs
# what is missing with apt-get (never removing a package); safe to run again.
# Keeps in WORKDIR, per architecture: ARCH/ (the meson build; its
# meson-logs/testlog.json), ARCH.steps.json (the build and the checks of
# the shim and the CLI, one JSON line each in testlog.json's form: result OK,
# FAIL or SKIP), ARCH.log (setup and build output), ARCH.sizes. Ends with a
# summary per architecture; exits 1 if anything failed. SYSCTR_CROSS_ARCHES="arm64"
# limits the architectures.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
[[ $(id -u) == 0 ]] || { echo "run as root (installs packages)"; exit 1; }
work=${1:-/var/tmp/sysctr-cross}
read -ra arches <<<"${SYSCTR_CROSS_ARCHES:-arm64 armhf}"
mkdir -p "$work" || exit 1
work=$(cd "$work" && pwd)

triplet() { case $1 in arm64) echo aarch64-linux-gnu ;; armhf) echo arm-linux-gnueabihf ;; esac; }
qemu() { case $1 in arm64) echo qemu-aarch64-static ;; armhf) echo qemu-arm-static ;; esac; }
oci_arch() { case $1 in arm64) echo arm64 ;; armhf) echo arm ;; esac; }
for a in "${arches[@]}"; do
  [[ -n $(triplet "$a") ]] || { echo "unknown architecture $a (arm64, armhf)"; exit 1; }
  rm -f "$work/$a.steps.json"
done

# step ARCH NAME RESULT [REASON]: one line of ARCH.steps.json
step() {
  jq -cn --arg n "cross-$1 $2" --arg r "$3" --arg why "${4:-}" '{name: $n, result: $r} + if $why != "" then {reason: $why} else {} end' \
    >>"$work/$1.steps.json"
  printf '%-5s %s%s\n' "$3" "cross-$1 $2" "${4:+: $4}"
}

# ---- packages --------------------------------------------------------------
# What the project links (meson.build), for each foreign architecture. Not
# here: libgpgme-dev, because it and what it depends on (libgpg-error-dev,
# libassuan-dev) are not "Multi-Arch: same": its :arm64 or :armhf would
# replace the amd64 one the native build needs. The cross builds are made
# with -Dgpg=auto, so without GPG (signedBy requirements refuse). Installing
# a multiarch library also brings the amd64 one to the same version.
libs=(libglib2.0-dev libostree-dev libcurl4-openssl-dev libarchive-dev libjansson-dev libsystemd-dev libssl-dev
      libseccomp-dev libzstd-dev libyaml-dev pkgconf)
t0=$SECONDS
for a in "${arches[@]}"; do
  dpkg --print-foreign-architectures | grep -qx "$a" || { echo "dpkg --add-architecture $a"; dpkg --add-architecture "$a"; }
done
want=(qemu-user-static jq python3)
for a in "${arches[@]}"; do
  want+=("crossbuild-essential-$a")
  for p in "${libs[@]}"; do want+=("$p:$a"); done
done
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "Installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends --no-remove "${missing[@]}" >"$work/apt.log" 2>&1; }; then
    tail -20 "$work/apt.log"
    for a in "${arches[@]}"; do step "$a" packages FAIL "apt-get install failed: $work/apt.log"; done
    exit 1
  fi
fi
t_packages=$((SECONDS - t0))
echo "packages: ${t_packages}s"

# ---- per architecture ------------------------------------------------------
floor_c=$work/floor.c
cat >"$floor_c" <<'EOF'
/* the floor: a static program that only calls write() */
#include <unistd.h>
int main (void) { return write (1, "", 0) != 0; }
EOF
# seccomp(2) as the shim's payload would install a filter: what qemu-user says
seccomp_c=$work/seccomp-probe.c
cat >"$seccomp_c" <<'EOF'
/* installs an allow-all seccomp filter as sysctr-shim's payload would; prints the error */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
int main (void)
{
  struct sock_filter f[] = { BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
  struct sock_fprog prog = { 1, f };
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return printf ("prctl(PR_SET_NO_NEW_PRIVS): %s\n", strerror (errno)), 1;
  if (syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
    return printf ("seccomp(SECCOMP_SET_MODE_FILTER): %s\n", strerror (errno)), 1;
  return printf ("seccomp(SECCOMP_SET_MODE_FILTER): ok\n"), 0;
}
EOF

declare -A summary
size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }
kib() { awk -v b="$1" 'BEGIN { printf "%.0f KiB", b / 1024 }'; }

for a in "${arches[@]}"; do
  t=$(triplet "$a") q=$(qemu "$a") b=$work/$a log=$work/$a.log
  echo "== $a ($t, tests under $q)"
  rm -rf "$b" "$b.bundle" "$b.image" "$b.image.tar" "$b.layout" "$b.root"
  t0=$SECONDS
  if meson setup "$b" --cross-file "cross/$a.ini" -Dgpg=auto >"$log" 2>&1 && ninja -C "$b" -j2 >>"$log" 2>&1; then
    gpg=$(grep -q 'HAVE_GPGME 1' "$b/config.h" && echo with || echo without)
    step "$a" build OK "$gpg GPG, $((SECONDS - t0)) s"
  else
    tail -30 "$log"
    step "$a" build FAIL "see $log"
    summary[$a]="build FAILED ($log)"
    continue
  fi
  t_build=$((SECONDS - t0))

  # unit tests and shim-config (tests/*/meson.build keep only these in a
  # cross build), each program run by the cross file's exe_wrapper
  t0=$SECONDS
  meson test -C "$b" --suite unit --suite shim --num-processes 2 --timeout-multiplier 4 --print-errorlogs
  t_test=$((SECONDS - t0))
  tl=$b/meson-logs/testlog.json
  if [[ -f $tl ]]; then
    tp=$(jq -s '[.[]|select(.result=="OK" or .result=="EXPECTEDFAIL")]|length' "$tl")
    tf=$(jq -s '[.[]|select(.result!="OK" and .result!="EXPECTEDFAIL" and .result!="SKIP")]|length' "$tl")
    tn=$(jq -rs '[.[]|.name|sub("^sysctr:";"")]|join(", ")' "$tl")
  else
    step "$a" "meson test" FAIL "no testlog.json"
    tp=0 tf=1 tn=
  fi

  # the static shim under qemu-user: a bundle as sysctr installs it (the
  # default seccomp profile for this architecture) around the static probe
  mkdir -p "$b.bundle/rootfs"/{proc,dev,sys,run,tmp}
  cp "$b/tests/shim/sysctr-probe" "$b.bundle/rootfs/"
  python3 tests/shim/make-config.py report >"$b.bundle/config.json"
  python3 - "$b.bundle/config.json" data/seccomp.json "$a" <<'PY'
import json, sys
path, profile, arch = sys.argv[1:]
c = json.load(open(path))
s = json.load(open(profile))
s["architectures"] = {"arm64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"], "armhf": ["SCMP_ARCH_ARM"]}[arch]
c["linux"]["seccomp"] = s
json.dump(c, open(path, "w"), indent=1)
PY
  shim=$b/src/shim/sysctr-shim
  if "$t-readelf" -d "$shim" 2>/dev/null | grep -q NEEDED; then linkage=dynamic; else linkage=static; fi
  if out=$(timeout 60 "$q" "$shim" --check --bundle="$b.bundle" 2>&1) && [[ -s $b.bundle/seccomp.bpf ]]; then
    step "$a" "shim --check" OK "config read, seccomp filter compiled for $a and kept"
    shim_check=ok
  else
    step "$a" "shim --check" FAIL "${out:-no seccomp.bpf written}"
    shim_check=FAILED
  fi
  out=$(timeout 60 "$q" "$shim" --bundle="$b.bundle" --name="qemu-$a" 2>&1); rc=$?
  "$t-gcc" -O2 -static -o "$work/$a.seccomp-probe" "$seccomp_c" 2>>"$log"
  sc=$("$q" "$work/$a.seccomp-probe" 2>&1)
  if ((rc == 0)); then
    step "$a" "shim run" OK "the probe ran in a container under qemu-user"
    shim_run=ok
  elif grep -q 'clone.*Invalid argument' <<<"$out"; then
    why="qemu-user cannot run a container: the shim said \"$(grep -m1 'clone' <<<"$out")\""
    why+=" (qemu-user refuses clone() with namespace flags, and a mount namespace is required);"
    why+=" past it, ${sc:-seccomp: no answer} (qemu-user cannot filter the guest's syscalls)"
    step "$a" "shim run" SKIP "$why"
    shim_run=SKIP
  else
    step "$a" "shim run" FAIL "exit $rc: $out"
    shim_run=FAILED
  fi

  # the CLI under qemu-user: an image of the static probe (an OCI layout,
  # tests/integration/mkimage.py) pulled into a --root store (OSTree,
  # libarchive, digests). Not `install`: it resolves paths in the image with
  # openat2(), which qemu-user 7.2 lacks (ENOSYS), and runs the installed
  # shim's --check, an ARM program qemu-user cannot exec without binfmt_misc.
  cli=$b/src/cli/sysctr r=$b.root
  mkdir -p "$b.image/bin" "$r"
  cp "$b/tests/shim/sysctr-probe" "$b.image/bin/probe"
  tar -C "$b.image" -cf "$b.image.tar" bin
  python3 tests/integration/mkimage.py --arch="$(oci_arch "$a")" "$b.layout" v1 "$b.image.tar" >/dev/null
  if out=$(timeout 120 "$q" "$cli" --root="$r" pull "oci:$b.layout:v1" 2>&1); then
    step "$a" "cli pull" OK "${out##*$'\n'}"
    cli_pull=ok
  else
    step "$a" "cli pull" FAIL "$out"
    cli_pull=FAILED
  fi

  # sizes: stripped and not (debugoptimized: -O2 -g), the floor from the same compiler
  "$t-gcc" -O2 -static -o "$work/$a.floor" "$floor_c" 2>>"$log"
  rows=() ratio=
  for f in "$b/src/cli/sysctr" "$shim" "$work/$a.floor"; do
    "$t-strip" -o "$f.stripped" "$f" 2>>"$log"
    rows+=("$(basename "$f"): $(kib "$(size_of "$f.stripped")") stripped, $(kib "$(size_of "$f")") unstripped")
  done
  ratio=$(awk -v s="$(size_of "$shim.stripped")" -v f="$(size_of "$work/$a.floor.stripped")" 'BEGIN { if (f) printf "%.2f", s / f }')
  printf '%s\n' "${rows[@]}" >"$work/$a.sizes"
  echo "shim ($linkage) / floor, stripped: ${ratio}x" >>"$work/$a.sizes"
  cat "$work/$a.sizes"
  summary[$a]="built $gpg GPG in ${t_build}s; meson test under $q: $tp passed, $tf failed in ${t_test}s ($tn)
      shim under $q: --check $shim_check, container run $shim_run; CLI under $q: pull $cli_pull
      sizes: ${rows[0]}; ${rows[1]} ($linkage); ${rows[2]/$a./}; shim/floor ${ratio}x"
done

echo "== summary (packages ${t_packages}s)"
for a in "${arches[@]}"; do
  echo "$a: ${summary[$a]:-not run}"
done
failures=0
for a in "${arches[@]}"; do
  for f in "$work/$a.steps.json" "$work/$a/meson-logs/testlog.json"; do
    [[ -f $f ]] || continue
    failures=$((failures + $(jq -s '[.[]|select(.result!="OK" and .result!="EXPECTEDFAIL" and .result!="SKIP")]|length' "$f")))
  done
done
echo "cross: $failures failed"
((failures == 0))
