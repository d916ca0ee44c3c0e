// The host side: where the VMM places guest memory in host physical memory, the nested page
// table built from that placement, the VMM segment and the escape filter.
//
// The VMM segment maps the largest guest RAM range (all guest memory above the I/O gap, or all
// of it after hot-unplug) onto one contiguous host range, which the host obtains by compaction.
// Guest pages outside the segment are backed by host pages from scattered 2 MiB blocks. Escaped
// pages (pages the host must back elsewhere, e.g. with hard faults) are chosen at random among
// the backed guest pages inside the segment, remapped to other host frames in the nested table,
// and inserted in the escape filter.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "translation/escape_filter.hpp"
#include "translation/guest_layout.hpp"
#include "translation/page_table.hpp"

namespace memvirt::translation {

struct HostLayoutConfig {
  PageSize page_size = PageSize::k4K;
  std::uint32_t escaped_pages = 0;
  std::uint32_t filter_bits = 256;
  std::uint32_t filter_hashes = 4;
  std::uint64_t seed = 1;
};

struct HostLayout {
  std::unique_ptr<NestedPageTable> table;
  VmmSegment segment;
  std::unique_ptr<EscapeFilter> filter;  // null when no filter is configured
  std::vector<std::uint64_t> escaped;    // escaped guest page numbers, sorted
};

HostLayout build_host_layout(const GuestLayout& guest, const HostLayoutConfig& c);

}  // namespace memvirt::translation
