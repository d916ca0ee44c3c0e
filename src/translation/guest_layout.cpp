#include "translation/guest_layout.hpp"

#include <algorithm>
#include <stdexcept>

#include "core/rng.hpp"

namespace memvirt::translation {

namespace {

constexpr std::uint64_t k2M = 2ULL << 20, k4G = 4ULL << 30;
constexpr std::uint64_t kLowKernel = 16ULL << 20;  // page tables of a guest without high RAM

std::uint64_t align_up(std::uint64_t x, std::uint64_t a) {
  return (x + a - 1) / a * a;
}

// Hands out guest-physical memory in chunks of one page size from a list of free 2 MiB blocks
// (shuffled: a fragmented guest's buddy allocator), sequentially inside each block.
class ScatteredFrames {
 public:
  ScatteredFrames(std::vector<std::uint64_t> blocks, std::uint64_t chunk)
      : blocks_(std::move(blocks)), chunk_(chunk) {}
  std::uint64_t take() {
    if (chunk_ > k2M) {
      // 1 GiB pages are reserved at boot (hugetlbfs), before the kernel fragments memory:
      // any 1 GiB aligned block start will do.
      while (next_ < blocks_.size()) {
        const std::uint64_t b = blocks_[next_++];
        if (b % chunk_ == 0) return b;
      }
      throw std::invalid_argument("guest memory: no free 1 GiB page left");
    }
    if (offset_ == 0 || offset_ == k2M) {
      if (next_ >= blocks_.size()) throw std::invalid_argument("guest memory: too small");
      current_ = blocks_[next_++];
      offset_ = 0;
    }
    const std::uint64_t at = current_ + offset_;
    offset_ += chunk_;
    return at;
  }

 private:
  std::vector<std::uint64_t> blocks_;
  std::uint64_t chunk_;
  std::size_t next_ = 0;
  std::uint64_t current_ = 0, offset_ = 0;
};

}  // namespace

GuestLayout build_guest_layout(const std::vector<Region>& regions, const GuestLayoutConfig& c) {
  if (regions.empty()) throw std::invalid_argument("guest layout: no regions");
  GuestLayout g;
  const std::uint64_t page = page_bytes(c.page_size);
  std::uint64_t footprint = 0;
  for (const auto& r : regions) footprint += align_up(r.bytes, page);
  const std::uint64_t table_area = align_up(footprint / 256 + (4ULL << 20), k2M);

  // RAM ranges.
  std::uint64_t low = std::min(c.memory, c.below_4g);
  if (c.hot_unplug_io_gap && low > c.low_memory_kept) {
    g.unplugged = low - c.low_memory_kept;
    low = c.low_memory_kept;
  }
  const std::uint64_t high = c.memory - low;
  g.ram.push_back({0, low});
  if (high > 0) g.ram.push_back({k4G, k4G + high});
  // Linux on x86-64 allocates kernel memory, page tables included, from ZONE_NORMAL, which is
  // the RAM above 4 GiB when there is any; ZONE_DMA32 below it is only a fallback.
  const std::uint64_t kernel_tables = high > table_area ? k4G : kLowKernel;
  if (kernel_tables + table_area > g.ram[high > table_area ? 1 : 0].end) {
    throw std::invalid_argument("guest layout: guest memory too small for the workload");
  }

  // Clean 2 MiB blocks, in address order; dirty ones hold unmovable kernel pages.
  Rng rng(c.seed, "translation.guest_layout.fragmentation");
  std::vector<std::uint64_t> clean;
  for (const auto& r : g.ram) {
    for (std::uint64_t b = r.begin; b + k2M <= r.end; b += k2M) {
      if (b < kLowKernel || (b >= kernel_tables && b < kernel_tables + table_area)) {
        continue;  // the kernel image and the page tables
      }
      if (rng.uniform() < c.fragmentation) continue;
      clean.push_back(b);
    }
  }
  std::uint64_t run_begin = 0, run_len = 0, best_begin = 0;
  for (std::size_t i = 0; i < clean.size(); ++i) {
    if (i == 0 || clean[i] != clean[i - 1] + k2M) {
      run_begin = clean[i];
      run_len = 0;
    }
    run_len += k2M;
    if (run_len > g.largest_free_run) {
      g.largest_free_run = run_len;
      best_begin = run_begin;
    }
  }

  g.table =
      std::make_unique<GuestPageTable>([next = kernel_tables, kernel_tables, table_area]() mutable {
        if (next >= kernel_tables + table_area)
          throw std::logic_error("guest page-table area full");
        const std::uint64_t at = next;
        next += 4096;
        return Gpa{at};
      });
  g.backed.emplace_back(kernel_tables, PageSize::k4K);  // marker: the table area, see below

  const Region& primary = regions.front();
  const std::uint64_t primary_base = primary.base.value() & ~(page - 1);
  g.primary_bytes = align_up(primary.base.value() + primary.bytes, page) - primary_base;
  // The guest segment: contiguous gPA for (a prefix of) the primary region.
  std::uint64_t seg_gpa = 0;
  if (c.self_ballooning) {
    g.ballooned = g.primary_bytes;
    // Linux hot-adds memory in 128 MiB sections; the guest pages need their own alignment.
    const std::uint64_t section = std::max<std::uint64_t>(128ULL << 20, page);
    g.hot_added = align_up(g.primary_bytes, section);
    seg_gpa = align_up(g.ram.back().end, section);
    if (g.ram.back().end == seg_gpa) {
      g.ram.back().end += g.hot_added;
    } else {
      g.ram.push_back({seg_gpa, seg_gpa + g.hot_added});
    }
    g.primary_in_segment = g.primary_bytes;
    // The balloon holds the same amount of the fragmented memory: drop it from the free list
    // (from the top, where it is least likely to be contiguous with anything we still use).
    const std::uint64_t blocks = std::min<std::uint64_t>(clean.size(), g.ballooned / k2M);
    clean.resize(clean.size() - blocks);
  } else {
    // Largest clean run, aligned for the page size, up to the region size.
    const std::uint64_t begin = align_up(best_begin, page);
    const std::uint64_t usable = best_begin + g.largest_free_run > begin
                                     ? (best_begin + g.largest_free_run - begin) / page * page
                                     : 0;
    g.primary_in_segment = std::min(usable, g.primary_bytes);
    seg_gpa = begin;
    const std::uint64_t used_end = seg_gpa + g.primary_in_segment;
    std::erase_if(clean, [&](std::uint64_t b) { return b >= seg_gpa && b < used_end; });
  }
  if (g.primary_in_segment > 0) {
    g.segment =
        GuestSegment{primary_base, primary_base + g.primary_in_segment,
                     static_cast<std::int64_t>(seg_gpa) - static_cast<std::int64_t>(primary_base)};
  }

  // The rest from scattered blocks, in a shuffled order.
  for (std::size_t i = clean.size(); i > 1; --i) std::swap(clean[i - 1], clean[rng.below(i)]);
  ScatteredFrames frames(std::move(clean), page);
  for (std::size_t ri = 0; ri < regions.size(); ++ri) {
    const Region& r = regions[ri];
    const std::uint64_t base = r.base.value() & ~(page - 1);
    const std::uint64_t end = align_up(r.base.value() + r.bytes, page);
    for (std::uint64_t va = base; va < end; va += page) {
      std::uint64_t gpa = 0;
      if (ri == 0 && va - base < g.primary_in_segment) {
        gpa = va + static_cast<std::uint64_t>(g.segment.offset);
      } else {
        gpa = frames.take();
      }
      g.table->map(Gva{va}, c.page_size, Gpa{gpa});
      g.backed.emplace_back(gpa, c.page_size);
    }
  }
  // The page-table pages actually allocated.
  g.backed.front() = {kernel_tables, PageSize::k4K};
  for (std::size_t t = 1; t < g.table->table_pages(); ++t) {
    g.backed.emplace_back(kernel_tables + 4096 * t, PageSize::k4K);
  }
  return g;
}

}  // namespace memvirt::translation
