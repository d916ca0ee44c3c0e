#!/usr/bin/env bash
# Installs the Debian 12 packages memvirt builds and tests with (run as root). Installs only
# what is missing, so a second run costs a second.
set -euo pipefail
packages=(
  g++ cmake ninja-build pkg-config git
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libfmt-dev libxxhash-dev
  liblzo2-dev liblz4-dev libzstd-dev
  libgtest-dev libgmock-dev librapidcheck-dev libbenchmark-dev
  gnuplot-nox
  qemu-system-x86 linux-image-cloud-amd64 busybox-static e2fsprogs
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "memvirt setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
