// The lab's guest image, built from Debian packages: a Debian kernel (the cloud kernel,
// linux-image-cloud-amd64, or the generic one, linux-image-amd64, which has zswap), the
// modules the guest needs that the kernel does not build in (virtio balloon, console, block
// and PCI; ext4 and crc32c in the generic kernel), busybox (busybox-static) and memvirt's own
// guest programs (memvirt-guest, built with the project), in an initramfs whose /init loads
// the modules, applies the guest's settings and runs its workloads. Modules a scenario may
// need (zswap, its zpool and compressors) are in the image too, loaded by the guest's
// vm.sh (`load_module NAME`) only when it uses them. Each guest gets its own small archive
// appended (its /etc/memvirt/vm.sh), so one image serves every scenario. Each kernel's image
// has its own folder, <image folder>/<kernel release>/, so images of several kernels coexist.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/spelling.hpp"

namespace memvirt {

// Which Debian kernel package the guest boots.
enum class KernelFlavour : std::uint8_t {
  kCloud,    // linux-image-cloud-amd64: /boot/vmlinuz-*-cloud-amd64 (no zswap)
  kGeneric,  // linux-image-amd64: /boot/vmlinuz-<version>-amd64 (zswap, zbud, lzo built in)
};
inline constexpr std::array<Spelling<KernelFlavour>, 2> kKernelFlavourSpellings{
    {{KernelFlavour::kCloud, "cloud"}, {KernelFlavour::kGeneric, "generic"}}};

struct ImageOptions {
  std::string dir;     // the image folder (created); the image goes to <dir>/<kernel release>/
  std::string kernel;  // vmlinuz to use; empty: the newest of `flavour` in /boot
  KernelFlavour flavour = KernelFlavour::kCloud;
  std::string boot_dir = "/boot";
  std::string modules_root = "/lib/modules";
  std::string busybox = "/bin/busybox";
  std::string guest_programs;  // memvirt-guest; empty: beside the running memvirt
};

struct GuestImage {
  std::string dir;        // <image folder>/<kernel release>
  std::string kernel;     // the kernel copied into the image folder
  std::string initramfs;  // the base initramfs
  std::string kernel_release;
  std::vector<std::string> modules;  // loaded at boot, in load order
  // Modules of guest_optional_modules() the kernel has as modules: name -> the modules to
  // load for it, in load order (its dependencies first); in the image, not loaded at boot.
  std::map<std::string, std::vector<std::string>> optional_modules;
  // Modules of guest_modules() and guest_optional_modules() built into the kernel.
  std::set<std::string> builtin_modules;
  std::string digest;    // of kernel and initramfs together
  bool rebuilt = false;  // false when the folder already held this image

  // Whether the guest kernel has `module`, built in or in the image.
  [[nodiscard]] bool has_module(const std::string& module) const {
    return builtin_modules.count(module) > 0 || optional_modules.count(module) > 0;
  }
};

// The modules every guest needs (virtio and its PCI transport, the balloon, console and block
// drivers, ext4 and the crc32c it checksums with), loaded at boot unless built in; their
// dependencies come first.
const std::vector<std::string>& guest_modules();

// Modules a scenario may need, put into the image when the kernel has them as modules:
// zswap, its zpool (zbud) and its compressors (lzo, lz4, zstd).
const std::vector<std::string>& guest_optional_modules();

// Builds the image in memory and writes it to <opt.dir>/<kernel release> unless that folder
// already holds the same bytes. Deterministic: the same packages and guest programs give the
// same files. Throws LabError naming what is missing (kernel, modules, busybox, guest
// programs) or a module busybox insmod cannot load (a compressed one).
GuestImage build_image(const ImageOptions& opt);

// The load order of `wanted` modules from a modules.dep file's text: each module after the
// modules it depends on, each once. Modules named in `builtin` (a modules.builtin file's
// text) are left out, and so are dependencies built in. Throws LabError when a module is in
// neither.
std::vector<std::string> module_load_order(const std::string& modules_dep,
                                           const std::vector<std::string>& wanted,
                                           const std::string& modules_builtin = "");

// The module names a modules.builtin file lists ("kernel/mm/zswap.ko" -> "zswap").
std::set<std::string> builtin_module_names(const std::string& modules_builtin);

// memvirt-guest beside the running executable (or in its parent folder, for test binaries);
// empty when not found.
std::string default_guest_programs();

// The default image folder: lab-image beside the running executable's build folder.
std::string default_image_dir();

// The newest Debian kernel of `flavour` in `boot_dir`, or empty: vmlinuz-<version>-cloud-amd64
// for the cloud kernel, vmlinuz-<version>-amd64 (a version of digits, dots and dashes: not the
// cloud or real-time kernels) for the generic one.
std::string find_kernel(KernelFlavour flavour, const std::string& boot_dir = "/boot");
std::string find_cloud_kernel(const std::string& boot_dir = "/boot");

// The Debian package that installs the newest kernel of `flavour`.
const char* kernel_package(KernelFlavour flavour);

// An archive to append to the image for one guest: /etc/memvirt/vm.sh and other files,
// given as (path without leading '/', contents).
std::string guest_archive(const std::vector<std::pair<std::string, std::string>>& files);

}  // namespace memvirt
