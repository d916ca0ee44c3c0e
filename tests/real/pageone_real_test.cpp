// PageONE over real memory: merges only pages unchanged for two merge periods, copy-on-write
// on a write to a merged page, zero pages discarded, the process's RSS really drops, and with
// guest threads writing while work threads merge, every read returns the last write. The
// threaded test runs under ThreadSanitizer (the tsan test preset).
#include "real/pageone_real.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "core/rng.hpp"
#include "real/ppr_real.hpp"
#include "real/process_memory.hpp"

namespace memvirt {
namespace {

using PageBytes = std::array<std::byte, kPageSize>;

// ThreadSanitizer maps shadow memory for every page the engine reads, so the process's RSS
// says nothing about the engine's frames there.
#if defined(__SANITIZE_THREAD__)
constexpr bool kRssIsMeaningful = false;
#else
constexpr bool kRssIsMeaningful = true;
#endif

// Page content for a tag: 0 is a page of zeros; equal tags give equal pages.
PageBytes content(std::uint64_t tag) {
  PageBytes p{};
  if (tag == 0) return p;
  for (std::size_t i = 0; i < p.size(); i += 8) {
    const std::uint64_t w = splitmix64(tag * 4096 + i);
    std::memcpy(p.data() + i, &w, 8);
  }
  return p;
}

bool holds(RealPageOne& m, std::uint32_t page, std::uint64_t tag) {
  const PageBytes want = content(tag);
  const RealPageOne::Reader r = m.read(page);
  return std::memcmp(r.bytes().data(), want.data(), want.size()) == 0;
}

RealPageOneConfig config(unsigned threads = 2) {
  RealPageOneConfig c;
  c.work_threads = threads;
  return c;
}

TEST(RealPageOne, MergesOnlyPagesUnchangedForTwoPeriods) {
  RealPageOne m(256, config());
  for (const std::uint32_t p : {10U, 20U, 30U}) m.store(p, content(7));
  EXPECT_EQ(m.merge_pass().pages_merged, 0U);  // written in the period before: dirty
  EXPECT_EQ(m.merge_pass().pages_merged, 0U);  // one clean period
  m.store(30, content(7));                     // rewritten (same bytes): dirty again
  const RealPageOnePass third = m.merge_pass();
  EXPECT_EQ(third.pages_merged, 2U);  // 10 and 20: two clean periods
  EXPECT_EQ(third.pages_hashed, 2U);
  EXPECT_EQ(m.shared_frames(), 1U);
  EXPECT_EQ(m.merge_pass().pages_merged, 0U);  // 30: one clean period so far
  EXPECT_EQ(m.merge_pass().pages_merged, 1U);  // 30 joins the shared frame
  EXPECT_EQ(m.merged_pages(), 3U);
  EXPECT_EQ(m.shared_frames(), 1U);
  EXPECT_EQ(m.pages_saved(), 2U);
  EXPECT_EQ(m.private_pages(), 0U);
  for (const std::uint32_t p : {10U, 20U, 30U}) EXPECT_TRUE(holds(m, p, 7));
}

TEST(RealPageOne, NeighbouringCopiesOfOneContentAllMergeInOnePass) {
  // A work thread compares a page with its twin only after hashing the next page; the next
  // page may need the very candidate that comparison holds.
  RealPageOne m(64, config(1));
  for (std::uint32_t p = 0; p < 8; ++p) m.store(p, content(5));
  m.merge_pass();
  m.merge_pass();
  EXPECT_EQ(m.merge_pass().pages_merged, 8U);
  EXPECT_EQ(m.shared_frames(), 1U);
  EXPECT_EQ(m.pages_saved(), 7U);
  for (std::uint32_t p = 0; p < 8; ++p) EXPECT_TRUE(holds(m, p, 5));
}

TEST(RealPageOne, StablePagesAreHashedOnce) {
  RealPageOne m(128, config(1));
  for (std::uint32_t p = 0; p < 64; ++p) m.store(p, content(100 + p));  // all different
  for (int i = 0; i < 6; ++i) m.merge_pass();
  EXPECT_EQ(m.stats().pages_hashed.value(), 64U);
  EXPECT_EQ(m.stats().pages_merged.value(), 0U);
  EXPECT_EQ(m.private_pages(), 64U);
}

TEST(RealPageOne, WriteToAMergedPageCopiesItFirst) {
  RealPageOne m(64, config());
  m.store(1, content(5));
  m.store(2, content(5));
  for (int i = 0; i < 3; ++i) m.merge_pass();
  ASSERT_EQ(m.merged_pages(), 2U);
  ASSERT_EQ(m.frames_used(), 1U);
  {
    // The writer sees the shared content before changing one byte of it.
    const RealPageOne::Writer w = m.write(2);
    const PageBytes old = content(5);
    EXPECT_EQ(std::memcmp(w.bytes().data(), old.data(), old.size()), 0);
    w.bytes()[100] = std::byte{0x5a};
  }
  EXPECT_EQ(m.cow_breaks(), 1U);
  EXPECT_TRUE(holds(m, 1, 5));  // the other mapping keeps the shared content
  PageBytes want = content(5);
  want[100] = std::byte{0x5a};
  PageBytes got{};
  m.load(2, got);
  EXPECT_EQ(got, want);
  EXPECT_EQ(m.merged_pages(), 1U);
  EXPECT_EQ(m.frames_used(), 2U);
  EXPECT_EQ(m.pages_saved(), 0U);
  // The last mapping's write frees the shared frame.
  m.store(1, content(6));
  EXPECT_EQ(m.shared_frames(), 0U);
  EXPECT_TRUE(holds(m, 1, 6));
}

// The first page of a pair keeps its frame as the shared frame, so writing it while others
// still map that frame must put its new bytes somewhere else.
TEST(RealPageOne, WritingThePageWhoseFrameIsSharedLeavesTheOthersIntact) {
  RealPageOne m(64, config(1));
  for (const std::uint32_t p : {1U, 2U, 3U}) m.store(p, content(5));
  for (int i = 0; i < 3; ++i) m.merge_pass();
  ASSERT_EQ(m.merged_pages(), 3U);
  ASSERT_EQ(m.frames_used(), 1U);
  for (const std::uint32_t p : {1U, 2U, 3U}) {
    m.store(p, content(10 + p));  // page 1's frame is the shared one
    for (const std::uint32_t q : {1U, 2U, 3U}) {
      EXPECT_TRUE(holds(m, q, q <= p ? 10 + q : 5)) << "after writing " << p << ", page " << q;
    }
  }
  EXPECT_EQ(m.shared_frames(), 0U);
  EXPECT_EQ(m.private_pages(), 3U);
  EXPECT_EQ(m.cow_breaks(), 3U);
  // They merge again with new twins, wherever their bytes now live.
  for (const std::uint32_t p : {4U, 5U, 6U}) m.store(p, content(10 + p - 3));
  for (int i = 0; i < 3; ++i) m.merge_pass();
  EXPECT_EQ(m.shared_frames(), 3U);
  EXPECT_EQ(m.pages_saved(), 3U);
  for (const std::uint32_t p : {1U, 2U, 3U}) {
    EXPECT_TRUE(holds(m, p, 10 + p));
    EXPECT_TRUE(holds(m, p + 3, 10 + p));
  }
}

TEST(RealPageOne, ZeroPagesAreDiscardedAndReadBackAsZeros) {
  RealPageOne m(64, config());
  for (std::uint32_t p = 0; p < 8; ++p) m.store(p, content(0));
  m.store(8, content(9));
  EXPECT_EQ(m.private_pages(), 9U);
  for (int i = 0; i < 3; ++i) m.merge_pass();
  EXPECT_EQ(m.stats().zero_pages.value(), 8U);
  EXPECT_EQ(m.private_pages(), 1U);
  EXPECT_EQ(m.pages_saved(), 8U);
  for (std::uint32_t p = 0; p < 8; ++p) EXPECT_TRUE(holds(m, p, 0));
  EXPECT_TRUE(holds(m, 63, 0));  // never written
  {
    const RealPageOne::Writer w = m.write(3);  // a discarded page comes back as zeros
    EXPECT_TRUE(std::all_of(w.bytes().begin(), w.bytes().end(),
                            [](std::byte b) { return b == std::byte{0}; }));
    w.bytes()[0] = std::byte{1};
  }
  EXPECT_EQ(m.pages_saved(), 7U);
  EXPECT_EQ(m.private_pages(), 2U);
}

TEST(RealPageOne, MergingGivesFramesBackToTheKernel) {
  constexpr std::uint32_t kPages = 8192;  // 32 MiB
  RealPageOne m(kPages, config());
  const std::uint64_t rss0 = process_rss_bytes();
  for (std::uint32_t p = 0; p < kPages; ++p) m.store(p, content(1 + p % 4));
  const std::uint64_t rss1 = process_rss_bytes();
  // Pass 3 merges; a page whose twin another work thread held at that moment waits for pass 4.
  for (int i = 0; i < 4; ++i) m.merge_pass();
  const std::uint64_t rss2 = process_rss_bytes();
  EXPECT_EQ(m.shared_frames(), 4U);
  EXPECT_EQ(m.pages_saved(), kPages - 4);
  for (std::uint32_t p = 0; p < kPages; p += 97) EXPECT_TRUE(holds(m, p, 1 + p % 4));
  if (!kRssIsMeaningful) GTEST_SKIP() << "RSS includes ThreadSanitizer's shadow memory";
  const double filled_mib = static_cast<double>(rss1 - rss0) / (1 << 20);
  EXPECT_GT(filled_mib, 0.9 * 32);
  ASSERT_LT(rss2, rss1);
  const double freed_mib = static_cast<double>(rss1 - rss2) / (1 << 20);
  EXPECT_GT(freed_mib, 0.9 * 32) << "merged pages must leave the process's RSS";
}

TEST(RealPageOne, SkipsPagesPprKnowsToBeFree) {
  RealPprMemory ppr(64);
  RealPageOneConfig cfg = config();
  cfg.known_free = [&ppr](std::uint32_t page) { return ppr.marked_free(page); };
  RealPageOne m(64, cfg);
  for (std::uint32_t p = 0; p < 8; ++p) m.store(p, content(3));
  for (std::uint32_t p = 4; p < 8; ++p) ppr.on_free(p);  // the guest freed these
  for (int i = 0; i < 3; ++i) m.merge_pass();
  EXPECT_EQ(m.stats().skipped_free.value(), 4U);
  EXPECT_EQ(m.merged_pages(), 4U);
  for (std::uint32_t p = 4; p < 8; ++p) ppr.on_alloc(p);  // in use again: they merge too
  m.merge_pass();
  EXPECT_EQ(m.merged_pages(), 8U);
  EXPECT_EQ(m.shared_frames(), 1U);
}

// Guest threads write and read their pages while the work threads merge, copy-on-write breaks
// merged pages and zero pages come and go. Every read must return the last write. A page's
// expected bytes are two halves, each the matching half of content(tag).
TEST(RealPageOneThreaded, GuestsReadBackTheirLastWritesWhileWorkersMerge) {
  constexpr std::uint32_t kPagesPerGuest = 96;
  constexpr int kGuests = 2;
  constexpr int kRounds = 6000;
  constexpr int kMinPasses = 40;
  constexpr std::size_t kHalf = kPageSize / 2;
  RealPageOne m(kPagesPerGuest * kGuests, config(2));
  std::atomic<bool> stop{false};
  std::atomic<int> corrupted{0};
  std::atomic<std::uint32_t> written_pages{0};
  std::atomic<int> passes{0};
  std::thread daemon([&] {
    while (!stop.load()) {
      m.merge_pass();
      ++passes;
    }
  });
  auto holds_halves = [&](std::uint32_t page, std::uint64_t first, std::uint64_t second) {
    const PageBytes a = content(first);
    const PageBytes b = content(second);
    const RealPageOne::Reader r = m.read(page);
    return std::memcmp(r.bytes().data(), a.data(), kHalf) == 0 &&
           std::memcmp(r.bytes().data() + kHalf, b.data() + kHalf, kHalf) == 0;
  };
  std::vector<std::thread> guests;
  for (int gi = 0; gi < kGuests; ++gi) {
    guests.emplace_back([&, gi] {
      Rng rng(7, "guest", static_cast<std::uint64_t>(gi));
      const std::uint32_t base = static_cast<std::uint32_t>(gi) * kPagesPerGuest;
      std::vector<std::array<std::uint64_t, 2>> tag(kPagesPerGuest, {0, 0});
      std::vector<bool> written(kPagesPerGuest, false);
      // Run until enough passes overlapped the guests' work and a write met a merged page,
      // however the threads are scheduled (bounded, so a broken engine fails, not hangs).
      for (int round = 0; round < kRounds || ((passes.load() < kMinPasses || m.cow_breaks() == 0) &&
                                              round < 100 * kRounds);
           ++round) {
        const auto i = static_cast<std::uint32_t>(rng.below(kPagesPerGuest));
        if (!holds_halves(base + i, tag[i][0], tag[i][1])) ++corrupted;
        if (rng.below(4) != 0) continue;  // mostly reads, so pages stay stable and merge
        // Zeros, one of five contents every guest uses, or content of this page alone.
        const std::uint64_t kind = rng.below(8);
        const std::uint64_t t = kind == 0  ? 0
                                : kind < 6 ? kind
                                           : 1000 + (base + i) * 100000 + round;
        if (!written[i]) ++written_pages;
        written[i] = true;
        if (rng.below(2) == 0) {
          m.store(base + i, content(t));
          tag[i] = {t, t};
        } else {
          // A partial write: only the second half changes, so the first half must still be
          // what the page held (its shared copy, if it was merged).
          const PageBytes want = content(t);
          const RealPageOne::Writer w = m.write(base + i);
          std::memcpy(w.bytes().data() + kHalf, want.data() + kHalf, kHalf);
          tag[i][1] = t;
        }
        if (!holds_halves(base + i, tag[i][0], tag[i][1])) ++corrupted;
        if ((round & 15) == 0) std::this_thread::yield();
      }
      for (std::uint32_t i = 0; i < kPagesPerGuest; ++i) {
        if (!holds_halves(base + i, tag[i][0], tag[i][1])) ++corrupted;
      }
    });
  }
  for (auto& g : guests) g.join();
  stop = true;
  daemon.join();
  EXPECT_EQ(corrupted.load(), 0);
  EXPECT_GT(m.stats().pages_merged.value(), 0U) << "nothing merged: the test did not race";
  EXPECT_GT(m.stats().zero_pages.value(), 0U);
  EXPECT_GT(m.cow_breaks(), 0U);
  // Every page written is private, merged or a discarded zero page.
  EXPECT_EQ(m.private_pages() + m.merged_pages() + m.discarded_zero_pages(), written_pages.load());
  EXPECT_LE(m.shared_frames(), m.merged_pages());
}

}  // namespace
}  // namespace memvirt
