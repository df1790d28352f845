#!/bin/bash
# Installs everything sysctr needs to build, test, demo and benchmark on
# Debian 12, from Debian's archive only. Safe to run again.
set -euo pipefail
pkgs=(
  # build
  meson ninja-build pkg-config gcc clang libclang-rt-14-dev
  libostree-dev libsystemd-dev libcurl4-openssl-dev libarchive-dev libjansson-dev libglib2.0-dev libssl-dev libseccomp-dev libzstd-dev
  libgpgme-dev libyaml-dev
  # lint (scripts/lint.sh)
  cppcheck clang-tidy shellcheck
  # real parts the tests use: registry, image tools, systemd in nspawn, etcd client
  docker-registry skopeo umoci systemd-container etcd-client busybox-static ostree
  apache2-utils jq python3 python3-seccomp curl zstd openssl attr strace
  # signatures made and checked by the ecosystem's own tools (test-signatures.sh)
  gnupg python3-nacl
  # peers the benchmarks compare against
  runc crun podman bubblewrap hyperfine time
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "Installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The packaged registry starts itself on :5000 on install; tests run their own.
systemctl disable --now docker-registry >/dev/null 2>&1 || true
pkill -f '^/usr/bin/docker-registry serve /etc/docker/registry/config.yml' 2>/dev/null || true
