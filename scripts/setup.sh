#!/usr/bin/env bash
# Installs the Debian 12 packages memvirt builds and tests with (run as root): the lab boots the
# cloud kernel, or the generic one (linux-image-amd64) for zswap, which the cloud kernel lacks.
# Installs only what is missing, so a second run costs a second.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"
packages=(
  g++ cmake ninja-build pkg-config git
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libfmt-dev libxxhash-dev
  liblzo2-dev liblz4-dev libzstd-dev
  libgtest-dev libgmock-dev librapidcheck-dev libbenchmark-dev libboost-dev
  gnuplot-nox
  qemu-system-x86 linux-image-cloud-amd64 linux-image-amd64 busybox-static e2fsprogs
)
apt_install_missing "memvirt setup" "${packages[@]}"
