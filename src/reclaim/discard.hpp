// The host side of guest memory handed back through virtio (balloon inflation, hinting,
// free page reporting): QEMU discards each range with one madvise call.
#pragma once

#include <cstdint>

#include "core/cost.hpp"
#include "host/host_memory.hpp"

namespace memvirt {

enum class DiscardMode : std::uint8_t {
  kDontNeed,  // MADV_DONTNEED: the frame goes now; the next guest touch faults in a zeroed page
  kFree,      // MADV_FREE: the frame stays until the host needs memory
};

// Discards `pages` guest pages from `gfn` in one call and returns the host CPU time of it.
CpuTime host_discard(HostMemory& host, const CostProfile& costs, VmId vm, Gfn gfn,
                     std::uint32_t pages, DiscardMode mode);

}  // namespace memvirt
