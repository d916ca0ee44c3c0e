// The lab's guest image, built from Debian packages: the cloud kernel
// (linux-image-cloud-amd64), its virtio modules (balloon, console, block; ext4 is built in),
// busybox (busybox-static) and memvirt's own guest programs (memvirt-guest, built with the
// project), in an initramfs whose /init loads
// the modules, applies the guest's settings and runs its workloads. Each guest gets its own
// small archive appended (its /etc/memvirt/vm.sh), so one image serves every scenario.
#pragma once

#include <string>
#include <vector>

namespace memvirt {

struct ImageOptions {
  std::string dir;     // the image folder (created)
  std::string kernel;  // vmlinuz to use; empty: the newest /boot/vmlinuz-*-cloud-amd64
  std::string modules_root = "/lib/modules";
  std::string busybox = "/bin/busybox";
  std::string guest_programs;  // memvirt-guest; empty: beside the running memvirt
};

struct GuestImage {
  std::string dir;
  std::string kernel;     // the kernel copied into the image folder
  std::string initramfs;  // the base initramfs
  std::string kernel_release;
  std::vector<std::string> modules;  // in load order
  std::string digest;                // of kernel and initramfs together
  bool rebuilt = false;              // false when the folder already held this image
};

// The virtio modules the guest loads, as named in the task; their dependencies come first.
const std::vector<std::string>& guest_modules();

// Builds the image in memory and writes it to opt.dir unless the folder already holds the
// same bytes. Deterministic: the same packages and guest programs give the same files.
// Throws LabError naming what is missing (kernel, modules, busybox, guest programs).
GuestImage build_image(const ImageOptions& opt);

// The load order of `wanted` modules from a modules.dep file's text: each module after the
// modules it depends on, each once. Throws LabError when a module is not listed.
std::vector<std::string> module_load_order(const std::string& modules_dep,
                                           const std::vector<std::string>& wanted);

// memvirt-guest beside the running executable (or in its parent folder, for test binaries);
// empty when not found.
std::string default_guest_programs();

// The default image folder: lab-image beside the running executable's build folder.
std::string default_image_dir();

// The newest Debian cloud kernel in /boot, or empty.
std::string find_cloud_kernel(const std::string& boot_dir = "/boot");

// An archive to append to the image for one guest: /etc/memvirt/vm.sh and other files,
// given as (path without leading '/', contents).
std::string guest_archive(const std::vector<std::pair<std::string, std::string>>& files);

}  // namespace memvirt
