// PPR over real memory with real threads. Guest threads and the recycler share, lock-free, a
// mark bitmap and a per-page state over a real mmap arena; the recycler really discards pages
// with madvise(MADV_DONTNEED), so the process's RSS drops.
//
// The protocol (the same as the simulator's Ppr, see reclaim/ppr.hpp):
//   guest free:   after its last use of the page, set the mark.
//   guest alloc:  clear the mark, then access() the page before using it.
//   recycler:     "unmap" (state Private -> Recycling), then test-and-clear the mark; if it
//                 was set the page is free: discard it (state -> Unbacked); else restore it.
//   access():     waits while the recycler holds the page; an unbacked page is faulted in.
// All protocol operations are sequentially consistent, so a guest that cleared a mark after
// the recycler tested it always sees the page held and waits: no page in use is discarded.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

namespace memvirt {

class RealPprMemory {
 public:
  // Called by the recycler while it holds a page between two protocol steps (after the unmap,
  // after the test). Tests use it to widen the race windows a wrong protocol would leave open;
  // it does not change the protocol.
  using StepHook = std::function<void(std::uint32_t page)>;

  explicit RealPprMemory(std::uint32_t pages, StepHook between_steps = {});
  ~RealPprMemory();
  RealPprMemory(const RealPprMemory&) = delete;
  RealPprMemory& operator=(const RealPprMemory&) = delete;

  // Guest side (any thread; one thread per page at a time, as the guest's allocator ensures).
  void on_free(std::uint32_t page);
  void on_alloc(std::uint32_t page);
  // The page's 4 KiB, ready to read and write.
  std::byte* access(std::uint32_t page);

  // True while the page is marked free (a dedup scanner may skip it). Advisory: the mark can
  // change at once.
  [[nodiscard]] bool marked_free(std::uint32_t page) const {
    return ((marks_[page >> 6].load(std::memory_order_relaxed) >> (page & 63)) & 1) != 0;
  }

  // Host side: one pass over the marks. Returns the pages discarded.
  std::uint64_t recycle_pass();

  [[nodiscard]] std::uint32_t pages() const { return pages_; }
  [[nodiscard]] std::uint64_t backed_pages() const { return backed_.load(); }

 private:
  enum State : std::uint8_t { kUnbacked = 0, kPrivate = 1, kRecycling = 2 };
  std::uint32_t pages_;
  std::byte* arena_ = nullptr;
  std::unique_ptr<std::atomic<std::uint8_t>[]> state_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> marks_;
  std::atomic<std::uint64_t> backed_{0};
  StepHook between_steps_;
};

}  // namespace memvirt
