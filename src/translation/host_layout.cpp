#include "translation/host_layout.hpp"

#include <algorithm>

#include "core/rng.hpp"

namespace memvirt::translation {

namespace {
constexpr std::uint64_t k2M = 2ULL << 20;
constexpr std::uint64_t kHostTables = 256ULL << 20;   // nested page-table pages
constexpr std::uint64_t kHostSegment = 1ULL << 40;    // the compacted contiguous range
constexpr std::uint64_t kHostScattered = 1ULL << 39;  // other host memory
}  // namespace

HostLayout build_host_layout(const GuestLayout& guest, const HostLayoutConfig& c) {
  HostLayout h;
  const std::uint64_t page = page_bytes(c.page_size);
  h.table = std::make_unique<NestedPageTable>([next = kHostTables]() mutable {
    const std::uint64_t at = next;
    next += 4096;
    return Hpa{at};
  });
  const GpaRange* largest = &guest.ram.front();
  for (const auto& r : guest.ram) {
    if (r.bytes() > largest->bytes()) largest = &r;
  }
  const std::uint64_t seg_begin = (largest->begin + page - 1) / page * page;
  const std::uint64_t seg_end = largest->end / page * page;
  if (seg_end > seg_begin) {
    h.segment =
        VmmSegment{seg_begin, seg_end,
                   static_cast<std::int64_t>(kHostSegment) - static_cast<std::int64_t>(seg_begin)};
  }

  // Host pages to back: every host page overlapping a guest page in use.
  std::vector<std::uint64_t> host_pages;
  for (const auto& [gpa, size] : guest.backed) {
    const std::uint64_t end = gpa + page_bytes(size);
    for (std::uint64_t p = gpa / page * page; p < end; p += page) host_pages.push_back(p);
  }
  std::sort(host_pages.begin(), host_pages.end());
  host_pages.erase(std::unique(host_pages.begin(), host_pages.end()), host_pages.end());

  Rng rng(c.seed, "translation.host_layout");
  // Escaped 4 KiB guest pages inside the segment, among those in use.
  std::vector<std::uint64_t> candidates;
  for (const auto& [gpa, size] : guest.backed) {
    if (gpa >= seg_begin && gpa < seg_end) candidates.push_back(gpa >> 12);
  }
  for (std::uint32_t i = 0; i < c.escaped_pages && !candidates.empty(); ++i) {
    const std::size_t at = rng.below(candidates.size());
    h.escaped.push_back(candidates[at]);
    candidates[at] = candidates.back();
    candidates.pop_back();
  }
  std::sort(h.escaped.begin(), h.escaped.end());
  if (c.filter_bits > 0) {
    h.filter = std::make_unique<EscapeFilter>(c.filter_bits, c.filter_hashes, c.seed);
    // The guest's largest page size bounds the TLB entries formed over the segment.
    PageSize span = PageSize::k4K;
    for (const auto& entry : guest.backed) span = std::max(span, entry.second);
    for (auto gfn : h.escaped) h.filter->insert_escape(gfn << 12, span);
  }

  // Scattered backing: shuffled 2 MiB (or 1 GiB) host blocks, used sequentially inside.
  const std::uint64_t block = std::max(page, k2M);
  std::vector<std::uint64_t> outside;
  for (auto p : host_pages) {
    if (p < seg_begin || p >= seg_end) outside.push_back(p);
  }
  const std::uint64_t blocks_needed = (outside.size() * page + c.escaped_pages * k2M) / block + 2;
  std::vector<std::uint64_t> blocks(blocks_needed);
  for (std::uint64_t i = 0; i < blocks_needed; ++i) blocks[i] = kHostScattered + i * 2 * block;
  for (std::size_t i = blocks.size(); i > 1; --i) std::swap(blocks[i - 1], blocks[rng.below(i)]);
  std::size_t next_block = 0;
  std::uint64_t offset = block;
  auto take = [&](std::uint64_t bytes) {
    if (offset + bytes > block) {
      offset = 0;
      ++next_block;
    }
    const std::uint64_t at = blocks[next_block - 1] + offset;
    offset += bytes;
    return at;
  };

  for (auto p : host_pages) {
    const bool in_segment = p >= seg_begin && p < seg_end;
    const auto first_escaped = std::lower_bound(h.escaped.begin(), h.escaped.end(), p >> 12);
    const bool holds_escape = first_escaped != h.escaped.end() && *first_escaped < (p + page) >> 12;
    if (in_segment && !holds_escape) {
      h.table->map(Gpa{p}, c.page_size, h.segment.translate(Gpa{p}));
    } else if (in_segment) {
      // A large host page holding an escaped page is split: 4 KiB mappings, the escaped ones
      // to other frames.
      for (std::uint64_t q = p; q < p + page; q += 4096) {
        const bool escaped = std::binary_search(h.escaped.begin(), h.escaped.end(), q >> 12);
        h.table->map(Gpa{q}, PageSize::k4K,
                     escaped ? Hpa{take(4096)} : h.segment.translate(Gpa{q}));
      }
    } else {
      h.table->map(Gpa{p}, c.page_size, Hpa{take(page)});
    }
  }
  return h;
}

}  // namespace memvirt::translation
