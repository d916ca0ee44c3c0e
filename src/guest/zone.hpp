// A memory zone of the guest kernel: the buddy allocator (orders 0..10), watermarks and the
// per-CPU page lists, following Linux's mm/page_alloc.c (v4.4 for the per-CPU sizing used by
// seed 000's guests; the buddy algorithm is the same in current kernels).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/types.hpp"
#include "guest/hooks.hpp"
#include "guest/page_list.hpp"
#include "guest/page_meta.hpp"

namespace memvirt {

inline constexpr unsigned kMaxOrder = 11;  // MAX_ORDER: orders 0..10
inline constexpr unsigned kPageblockOrder = 9;
inline constexpr unsigned kShuffleOrder = kMaxOrder - 1;  // SHUFFLE_ORDER

// The guest's page metadata and list nodes, shared by its zones.
struct MemMap {
  PageMetaTable pages;
  PageListPool lists;
  std::vector<PageHooks*> hooks;
  [[nodiscard]] PageMeta operator[](Gfn g) const { return pages.get(g); }
  PageMeta& mut(Gfn g) { return pages.mut(g); }
};

struct PerCpuPages {
  PageList list;
  std::uint32_t batch = 1;
  std::uint32_t high = 6;
};

struct Watermarks {
  std::uint64_t min = 0, low = 0, high = 0;
};

class Zone {
 public:
  Zone(std::string name, MemMap& map, Gfn start, std::uint32_t pages, unsigned cpus);

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] Gfn start() const { return start_; }
  [[nodiscard]] Gfn end() const { return Gfn{start_.value() + pages_}; }
  [[nodiscard]] std::uint32_t managed_pages() const { return pages_; }
  [[nodiscard]] bool contains(Gfn g) const { return g >= start_ && g < end(); }
  // NR_FREE_PAGES: pages in the buddy lists (not on per-CPU lists, not isolated).
  [[nodiscard]] std::uint64_t free_pages() const { return nr_free_pages_; }
  [[nodiscard]] std::uint64_t pcp_pages() const;
  [[nodiscard]] const PageList& free_list(unsigned order) const { return free_area_[order]; }
  PageList& free_list(unsigned order) { return free_area_[order]; }
  [[nodiscard]] const Watermarks& watermarks() const { return wmark_; }
  void set_watermarks(Watermarks w) { wmark_ = w; }
  std::vector<std::uint64_t>& lowmem_reserve() { return lowmem_reserve_; }
  [[nodiscard]] std::uint64_t lowmem_reserve(unsigned classzone) const {
    return classzone < lowmem_reserve_.size() ? lowmem_reserve_[classzone] : 0;
  }
  void set_pcp(std::uint32_t batch, std::uint32_t high);
  [[nodiscard]] const PerCpuPages& pcp(unsigned cpu) const { return pcp_[cpu]; }

  // __zone_watermark_ok(): can `order` be allocated leaving `mark` + reserve free pages?
  [[nodiscard]] bool watermark_ok(unsigned order, std::uint64_t mark, unsigned classzone) const;

  // buffered_rmqueue()/rmqueue(): order 0 from the CPU's list (refilled with `batch` pages
  // from the buddy lists when empty), higher orders from the buddy lists. Invalid Gfn (max)
  // when the zone has no block of that order. Does not call hooks.
  Gfn rmqueue(unsigned cpu, unsigned order);
  // free_hot_cold_page() for order 0 (to the CPU's list, draining `batch` to the buddy lists
  // when `high` is reached); __free_pages_ok() for higher orders.
  void free_pages(unsigned cpu, Gfn gfn, unsigned order);
  // drain_pages(): empties every per-CPU list into the buddy lists.
  void drain_pcp();

  // __free_one_page(): merges with free buddies and puts the block on a free list, at the
  // tail when the next-higher buddy is free (it may merge soon), else at the head.
  // `notify` is false for blocks a mechanism puts back (FPI_SKIP_REPORT_NOTIFY): they do not
  // call on_buddy_free.
  void free_one_page(Gfn gfn, unsigned order, bool notify = true);
  // Takes a free block off its list (for isolation by a mechanism). The block must be a
  // buddy head.
  void del_from_free_list(Gfn gfn);
  // __isolate_free_page(): takes a free block of the buddy lists for a mechanism, if the
  // zone stays above its min watermark once the block is gone (as if it were allocated).
  // Returns false, leaving the block, otherwise.
  bool isolate(Gfn gfn);
  // Gives an isolated block back to the buddy lists (with merging) without notifying
  // on_buddy_free, like __putback_isolated_page.
  void putback_isolated(Gfn gfn, unsigned order);
  // list_rotate_to_front() on the free list of `gfn`'s order: the block becomes the head.
  void rotate_free_list_to(Gfn gfn);
  // Page shuffling (CONFIG_SHUFFLE_PAGE_ALLOCATOR with page_alloc.shuffle=1): blocks of
  // order >= kShuffleOrder go to the head or the tail of their list at random, and
  // shuffle_free_lists() permutes the lists of those orders, as at boot.
  void enable_shuffle(std::uint64_t seed);
  void shuffle_free_lists();
  [[nodiscard]] const PageListPool& lists() const { return map_.lists; }

  // Graded checks: cheap counts, or a full walk of every list and page. Throws on violation.
  void check(bool full) const;

  static constexpr Gfn kNoPage{UINT32_MAX};

 private:
  void add_to_free_list(Gfn gfn, unsigned order, bool tail);
  Gfn rmqueue_smallest(unsigned order);
  void expand(Gfn gfn, unsigned low, unsigned high);
  [[nodiscard]] bool page_is_buddy(Gfn buddy, unsigned order) const;

  std::string name_;
  MemMap& map_;
  Gfn start_;
  std::uint32_t pages_;
  std::array<PageList, kMaxOrder> free_area_{};
  std::uint64_t nr_free_pages_ = 0;
  Watermarks wmark_;
  std::vector<std::uint64_t> lowmem_reserve_;
  std::vector<PerCpuPages> pcp_;
  bool shuffle_ = false;
  std::uint64_t shuffle_state_ = 0;  // splitmix64 stream for head-or-tail picks
};

}  // namespace memvirt
