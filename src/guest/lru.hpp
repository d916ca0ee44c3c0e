// The guest's LRU lists (split LRU, Linux 2.6.28+): inactive and active lists for anonymous
// and for file pages, and the unevictable list, one set per guest (one node).
//
// Each list is a FIFO queue of 4-byte entries (frame number and a 4-bit generation), with the
// head where pages are added and the tail where reclaim takes them. A page leaves a list by
// changing its flags (PageFlags::list()); its old entry goes stale and is skipped when
// reclaim reaches it, and a queue is compacted when stale entries pass an eighth of its live
// ones. A page's entry is live when the page is in use, on that list, and of the frame's
// current generation (a byte per frame, kept apart from the flags so that it survives the
// page being freed and reused); each add bumps the generation. This keeps the LRU at 4 bytes per
// page instead of the 8 of two links, with the same order as Linux's lists except that a page
// re-added 16 times before reclaim passes its oldest entry may be met at that entry's place.
//
// Contract: size(l) is the number of in-use pages whose flags name list l; take_tail(l)
// returns those pages in the order they were added (oldest first), each at most once per add.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "core/types.hpp"
#include "guest/page_meta.hpp"
#include "guest/ring_queue.hpp"

namespace memvirt {

enum class LruList : std::uint8_t {
  kNone = 0,
  kInactiveAnon = 1,
  kActiveAnon = 2,
  kInactiveFile = 3,
  kActiveFile = 4,
  kUnevictable = 5,
};
inline constexpr std::size_t kLruLists = 6;

inline constexpr bool is_file_lru(LruList l) {
  return l == LruList::kInactiveFile || l == LruList::kActiveFile;
}
inline constexpr bool is_active_lru(LruList l) {
  return l == LruList::kActiveAnon || l == LruList::kActiveFile;
}

// Frames this LRU can name (28 bits): 1 TiB of guest memory.
inline constexpr std::uint32_t kLruMaxPages = 1U << 28;

class Lru {
 public:
  explicit Lru(PageMetaTable& pages) : pages_(pages) { resize(pages.size()); }
  // The guest has `pages` frames.
  void resize(std::uint32_t pages) { gens_.resize((pages >> kGenShift) + 1); }

  // Puts in-use page `g` at the head of list `l`, taking it off the list it was on.
  void add(Gfn g, LruList l);
  // Puts `g` at the tail of list `l` (rotate_reclaimable_page: reclaim meets it next).
  void add_tail(Gfn g, LruList l);
  // Takes `g` off its list (it stays in use).
  void remove(Gfn g);
  // The oldest page of list `l`, taken off the list; nullopt when the list is empty.
  std::optional<Gfn> take_tail(LruList l);
  // The oldest page of list `l`, left on it; nullopt when the list is empty.
  std::optional<Gfn> tail(LruList l);
  // Moves the page tail(l) just returned to the head of `l`: the same as take_tail(l) then
  // add(g, l), without taking the page off its list in between (reclaim keeps most of the
  // pages it scans, and this is its hottest path).
  void rotate_tail(LruList l);
  [[nodiscard]] std::uint64_t size(LruList l) const { return live_[index(l)]; }
  [[nodiscard]] static LruList list_of(PageMeta m) {
    return static_cast<LruList>(m.flags().list());
  }
  // Whether anonymous lists keep a queue. Without swap Linux never scans them, so the model
  // only counts their pages; turning tracking on (swapon) queues them in frame order.
  void set_track_anon(bool on, std::uint32_t total_pages);
  [[nodiscard]] bool tracks_anon() const { return track_anon_; }
  [[nodiscard]] std::uint64_t memory_bytes() const;
  // Full check: every queued live entry names a page on that list, once. Throws.
  void check() const;

 private:
  static std::size_t index(LruList l) { return static_cast<std::size_t>(l); }
  [[nodiscard]] bool queued(LruList l) const {
    return l != LruList::kNone && (track_anon_ || is_file_lru(l) || l == LruList::kUnevictable);
  }
  [[nodiscard]] bool live(std::uint32_t entry, LruList l) const;
  void compact(LruList l);
  // Compacts queue `l` once its stale entries pass an eighth of its live ones (and 1024).
  void compact_if_stale(LruList l) {
    if (queues_[index(l)].size() > live_[index(l)] + live_[index(l)] / 8 + 1024) compact(l);
  }
  [[nodiscard]] unsigned gen(Gfn g) const {
    const auto& c = gens_[g.value() >> kGenShift];
    return c ? c[g.value() & ((1U << kGenShift) - 1)] : 0U;
  }
  unsigned bump_gen(Gfn g);
  static constexpr unsigned kGenShift = 12;

  PageMetaTable& pages_;
  std::array<RingQueue<std::uint32_t>, kLruLists> queues_{};
  std::array<std::uint64_t, kLruLists> live_{};
  bool track_anon_ = false;
  std::vector<std::unique_ptr<std::uint8_t[]>> gens_;  // by frame / 4096, made when first used
};

}  // namespace memvirt
