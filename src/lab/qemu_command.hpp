// The QEMU command line of one lab guest.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/spelling.hpp"
#include "core/types.hpp"

namespace memvirt {

// QEMU's cache mode for a disk image (-drive cache=).
enum class DiskCache : std::uint8_t { kNone, kWriteback, kWritethrough, kDirectsync, kUnsafe };
inline constexpr std::array<Spelling<DiskCache>, 5> kDiskCacheSpellings{
    {{DiskCache::kNone, "none"},
     {DiskCache::kWriteback, "writeback"},
     {DiskCache::kWritethrough, "writethrough"},
     {DiskCache::kDirectsync, "directsync"},
     {DiskCache::kUnsafe, "unsafe"}}};

struct QemuLaunch {
  std::string qemu;   // absolute path of qemu-system-x86_64
  std::string accel;  // kvm | tcg
  std::string name;   // vm0, ...
  Bytes memory;
  unsigned vcpus = 1;
  std::string kernel, initrd, append;
  std::string qmp_socket;       // QMP server socket QEMU creates; "@name": abstract namespace
  bool reporting = false;       // virtio-balloon free-page-reporting
  bool deflate_on_oom = false;  // virtio-balloon deflate-on-oom
  bool mem_merge = false;       // guest RAM madvise(MADV_MERGEABLE) for host KSM
  std::string disk;             // raw image for a virtio-blk disk (/dev/vda); empty: none
  DiskCache disk_cache = DiskCache::kNone;
  std::uint64_t disk_bps = 0;  // the disk's throttle, bytes per second (reads and writes); 0: none
};

// argv for execv: serial console on stdout, QMP on a UNIX socket, no other devices than the
// virtio balloon and, with `disk`, one virtio-blk disk; no reboot (a guest panic or reboot
// ends QEMU).
std::vector<std::string> qemu_argv(const QemuLaunch& l);

}  // namespace memvirt
