// PPR with real threads over real memory: guests allocate, write, verify and free pages while
// the recycler discards free pages concurrently. No page in use may ever be discarded (a
// discarded page reads back as zeros). Run under ThreadSanitizer in CI (scripts/test.sh).
#include "real/ppr_real.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "core/rng.hpp"

namespace memvirt {
namespace {

void fill(std::byte* p, std::uint64_t tag) {
  for (std::size_t i = 0; i < 4096; i += 8) {
    const std::uint64_t w = splitmix64(tag + i);
    std::memcpy(p + i, &w, 8);
  }
}

bool check(const std::byte* p, std::uint64_t tag) {
  for (std::size_t i = 0; i < 4096; i += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, p + i, 8);
    if (w != splitmix64(tag + i)) return false;
  }
  return true;
}

TEST(RealPpr, NoPageInUseIsEverDiscardedUnderConcurrentRecycling) {
  // Few pages, so the recycler keeps meeting the pages the guests are freeing and taking back.
  constexpr std::uint32_t kPagesPerGuest = 16;
  constexpr int kGuests = 2;
  constexpr int kRounds = 60000;
  // The recycler yields while it holds a page between its protocol steps, so a guest gets to
  // run inside each window a wrong order of the steps (or a fault that does not wait) would
  // leave open, instead of only when the scheduler happens to preempt it there.
  std::atomic<std::uint64_t> windows{0};
  RealPprMemory mem(kPagesPerGuest * kGuests, [&windows](std::uint32_t) {
    ++windows;
    std::this_thread::yield();
  });
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> recycled{0};
  std::atomic<int> corrupted{0};
  std::thread recycler([&] {
    while (!stop.load()) recycled += mem.recycle_pass();
  });
  std::vector<std::thread> guests;
  for (int gi = 0; gi < kGuests; ++gi) {
    guests.emplace_back([&, gi] {
      Rng rng(1, "guest", static_cast<std::uint64_t>(gi));
      const std::uint32_t base = static_cast<std::uint32_t>(gi) * kPagesPerGuest;
      std::vector<std::uint64_t> tag(kPagesPerGuest, 0);  // 0: free
      for (int round = 1; round <= kRounds; ++round) {
        const auto i = static_cast<std::uint32_t>(rng.below(kPagesPerGuest));
        const std::uint32_t page = base + i;
        if (tag[i] == 0) {
          mem.on_alloc(page);
          std::byte* p = mem.access(page);
          tag[i] = splitmix64(static_cast<std::uint64_t>(page) << 32 |
                              static_cast<std::uint64_t>(round));
          fill(p, tag[i]);
          if (!check(mem.access(page), tag[i])) ++corrupted;
        } else {
          // The page was in use since it was written: it must still hold its data.
          if (!check(mem.access(page), tag[i])) ++corrupted;
          mem.on_free(page);
          tag[i] = 0;
          if ((round & 1) == 0) {
            // Hot reuse, as per-CPU lists do: allocate the page just freed and write it at
            // once, racing the recycler that may have seen its mark. Every other time, first
            // give the recycler the chance to see the mark and start on the page.
            if ((round & 2) == 0) std::this_thread::yield();
            mem.on_alloc(page);
            tag[i] = splitmix64(static_cast<std::uint64_t>(page) << 32 |
                                static_cast<std::uint64_t>(round) | 1ULL << 31);
            fill(mem.access(page), tag[i]);
            if (!check(mem.access(page), tag[i])) ++corrupted;
          }
        }
      }
      // Whatever is still allocated must have survived every pass.
      for (std::uint32_t j = 0; j < kPagesPerGuest; ++j) {
        if (tag[j] != 0 && !check(mem.access(base + j), tag[j])) ++corrupted;
      }
    });
  }
  for (auto& g : guests) g.join();
  stop = true;
  recycler.join();
  EXPECT_EQ(corrupted.load(), 0);
  EXPECT_GT(recycled.load(), 0U) << "the recycler never found a free page: the test did not race";
  EXPECT_GT(windows.load(), 0U);
}

TEST(RealPpr, RecyclingReallyGivesMemoryBack) {
  RealPprMemory mem(1024);
  for (std::uint32_t p = 0; p < 1024; ++p) {
    mem.on_alloc(p);
    fill(mem.access(p), p + 1);
  }
  EXPECT_EQ(mem.backed_pages(), 1024U);
  for (std::uint32_t p = 0; p < 1024; p += 2) mem.on_free(p);
  EXPECT_EQ(mem.recycle_pass(), 512U);
  EXPECT_EQ(mem.backed_pages(), 512U);
  // Recycled pages read back as zeros once faulted in again; the others keep their data.
  mem.on_alloc(0);
  const std::byte* zero = mem.access(0);
  EXPECT_TRUE(std::all_of(zero, zero + 4096, [](std::byte b) { return b == std::byte{0}; }));
  EXPECT_TRUE(check(mem.access(1), 2));
}

}  // namespace
}  // namespace memvirt
