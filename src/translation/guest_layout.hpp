// The guest side of contiguity (seed 004 section "self-ballooning"): where the guest OS puts a
// workload's memory in guest physical space, and how much of the primary region a guest segment
// can map.
//
// Guest RAM follows QEMU's pc machine: RAM up to below_4g (QEMU: 3.5 GiB when the guest has at
// least that much) from 0, the I/O gap up to 4 GiB, the rest from 4 GiB. Before the workload
// starts, a share of the 2 MiB blocks holds unmovable kernel pages (`fragmentation`); only runs
// of clean blocks are contiguous. Without self-ballooning the guest segment maps the largest
// clean run (up to the primary region's size) and the rest of the region is paged from
// scattered blocks. With self-ballooning the balloon takes the region's size out of the guest
// and the VMM hot-adds as much, contiguous, above the top of guest memory, so the whole region
// is one segment. Hot-unplug around the I/O gap moves all but `low_memory_kept` of the memory
// below the gap above 4 GiB, so one VMM segment can span guest memory.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "translation/address.hpp"
#include "translation/page_table.hpp"
#include "translation/workloads/workload.hpp"

namespace memvirt::translation {

struct GpaRange {
  std::uint64_t begin = 0, end = 0;  // [begin, end)
  [[nodiscard]] std::uint64_t bytes() const { return end - begin; }
};

struct GuestLayoutConfig {
  std::uint64_t memory = 0;                // guest RAM
  std::uint64_t below_4g = 0xE0000000ULL;  // QEMU pc: 3.5 GiB of RAM below the I/O gap
  double fragmentation = 0.0;              // share of 2 MiB blocks with unmovable pages
  bool self_ballooning = false;
  bool hot_unplug_io_gap = false;
  std::uint64_t low_memory_kept = 1ULL << 30;  // RAM left below the gap after hot-unplug
  PageSize page_size = PageSize::k4K;          // guest pages backing the workload
  std::uint64_t seed = 1;
};

struct GuestLayout {
  std::unique_ptr<GuestPageTable> table;
  GuestSegment segment;       // BASE_G/LIMIT_G/OFFSET_G for the primary region
  std::vector<GpaRange> ram;  // guest RAM after hot-unplug and hot-add
  std::vector<std::pair<std::uint64_t, PageSize>> backed;  // gPA pages in use (data, tables)
  std::uint64_t primary_bytes = 0;
  std::uint64_t primary_in_segment = 0;  // bytes of the primary region the segment maps
  std::uint64_t largest_free_run = 0;    // before self-ballooning
  std::uint64_t ballooned = 0, hot_added = 0, unplugged = 0;
};

// Builds the guest table for `regions` (the first is the primary region). Throws
// std::invalid_argument when the regions do not fit in guest memory.
GuestLayout build_guest_layout(const std::vector<Region>& regions, const GuestLayoutConfig& c);

}  // namespace memvirt::translation
