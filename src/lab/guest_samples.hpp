// The counters the guests' sampler (guest/meminfo.cpp) reports that the lab's results are
// built from as numbers, not read as 0 when garbled: swap traffic (/proc/vmstat's pswpin and
// pswpout, in each meminfo marker) and zswap's debugfs counters (the zswap marker). A marker
// without them, or with a value that is not a decimal number, is a LabError naming the field.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "lab/markers.hpp"

namespace memvirt {

// pswpin and pswpout of a meminfo marker: pages read from and written to the swap device
// (Linux counts swap-device I/O only: zswap stores and loads are not in them, its writeback
// is).
struct GuestSwapCounters {
  std::uint64_t pswpin = 0, pswpout = 0;
  static GuestSwapCounters parse(const Marker& m);
};

// A zswap marker: /sys/kernel/debug/zswap's files at the sample, and the sampler's peaks.
struct GuestZswapSample {
  std::uint64_t stored_pages = 0;
  std::uint64_t pool_total_size = 0;  // bytes: zbud's pool pages x 4096
  std::uint64_t same_filled_pages = 0;
  std::uint64_t written_back_pages = 0;
  std::uint64_t pool_limit_hit = 0;
  std::uint64_t stored_pages_max = 0, pool_total_size_max = 0;  // since the sampler started
  // Every field of the marker, as the guest named it (the ones above, reject_*,
  // duplicate_entry, ...), in the marker's order.
  std::vector<std::pair<std::string, std::uint64_t>> counters;

  // Throws LabError when one of the fields above is missing or any field is not a number.
  static GuestZswapSample parse(const Marker& m);
};

}  // namespace memvirt
