// The guest's page cache, reclaim, writeback and swap: units, emergent behaviour and property
// tests against a reference model of what every file page and anonymous page must hold.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <map>

#include "disk_guest.hpp"
#include "guest/kernel_internal.hpp"
#include "guest/run_array.hpp"
#include "test_util.hpp"
#include "workload/workload.hpp"

namespace memvirt {
namespace {

using testing::DiskGuest;

constexpr std::uint64_t kMiB = 1ULL << 20;
std::uint64_t pages_of(std::uint64_t mib) {
  return mib * kMiB / kPageSize;
}

TEST(RunArray, ReadsBackEveryValueAndStaysSmallForRuns) {
  rc::check("get returns what set stored", [] {
    RunArray a(4096);
    std::map<std::uint64_t, std::uint32_t> ref;
    const auto ops =
        *rc::gen::container<std::vector<std::pair<std::uint32_t, std::uint32_t>>>(rc::gen::pair(
            rc::gen::inRange<std::uint32_t>(0, 4096), rc::gen::inRange<std::uint32_t>(0, 40)));
    std::uint32_t run = 100;
    for (const auto& [i, v] : ops) {
      // Mostly values that continue a run, some arbitrary, some deletions.
      const std::uint32_t value = v < 4 ? 0 : (v < 30 ? run + i : v * 7919);
      a.set(i, value);
      if (value == 0) {
        ref.erase(i);
      } else {
        ref[i] = value;
      }
      if (v == 39) run += 1000;
    }
    for (std::uint32_t i = 0; i < 4096; ++i) {
      const auto it = ref.find(i);
      RC_ASSERT(a.get(i) == (it == ref.end() ? 0U : it->second));
    }
  });
  RunArray seq(1 << 20);
  for (std::uint32_t i = 0; i < (1U << 20); ++i) seq.set(i, 5'000'000 - i);  // descending
  for (std::uint32_t i = 0; i < (1U << 20); i += 4097) EXPECT_EQ(seq.get(i), 5'000'000 - i);
  EXPECT_LT(seq.memory_bytes(), (1U << 20) / 8);  // under 1 bit per entry, not 4 bytes
}

TEST(Lru, TakesPagesOldestFirstAndSkipsThoseThatLeft) {
  PageMetaTable pages(8192);
  Lru lru(pages);
  for (std::uint32_t g = 0; g < 10; ++g) lru.add(Gfn{g}, LruList::kInactiveFile);
  lru.remove(Gfn{3});
  lru.add(Gfn{0}, LruList::kActiveFile);
  lru.add(Gfn{5}, LruList::kInactiveFile);  // back to the head
  lru.add_tail(Gfn{9}, LruList::kInactiveFile);
  EXPECT_EQ(lru.size(LruList::kInactiveFile), 8U);
  lru.check();
  std::vector<std::uint32_t> order;
  while (const auto g = lru.take_tail(LruList::kInactiveFile)) order.push_back(g->value());
  EXPECT_EQ(order, (std::vector<std::uint32_t>{9, 1, 2, 4, 6, 7, 8, 5}));
  EXPECT_EQ(lru.size(LruList::kInactiveFile), 0U);
  EXPECT_EQ(lru.size(LruList::kActiveFile), 1U);
}

TEST(PageCache, GrowsIntoFreeMemoryAndServesRereadsFromMemory) {
  DiskGuest g(Bytes{256 * kMiB});
  const FileId f = g.kernel->create_file(Bytes{128 * kMiB}, 42);
  const std::uint64_t free_before = g.kernel->meminfo().free;
  g.read(f, 0, pages_of(128));
  const Meminfo m = g.kernel->meminfo();
  EXPECT_EQ(m.cached, pages_of(128));
  EXPECT_EQ(free_before - m.free, pages_of(128));
  const std::uint64_t sectors = g.kernel->stats().sectors_read.value();
  EXPECT_EQ(sectors, pages_of(128) * kSectorsPerPage);
  g.read(f, 0, pages_of(128));
  EXPECT_EQ(g.kernel->stats().sectors_read.value(), sectors);  // all hits
  EXPECT_EQ(g.kernel->meminfo().active_file, pages_of(128));   // second access activates
  g.kernel->check(true);
}

TEST(PageCache, ReadaheadGrowsToReadAheadKb) {
  DiskGuest g(Bytes{256 * kMiB});
  const FileId f = g.kernel->create_file(Bytes{4 * kMiB}, 1);
  g.read(f, 0, pages_of(4));
  // Sequential reads of one page at a time: windows of 4, 8, 16, 32, 32, ... pages.
  const std::uint64_t ios = g.kernel->stats().sectors_read.value() / kSectorsPerPage;
  EXPECT_EQ(ios, pages_of(4));
  EXPECT_LT(g.waits, pages_of(4) / 16);
  EXPECT_EQ(g.kernel->stats().major_faults.value(), 0U);  // read(2) waits are not page faults
}

TEST(PageCache, ReclaimEvictsCleanFileMemoryForAnonymousMemory) {
  DiskGuest g(Bytes{256 * kMiB});
  const FileId f = g.kernel->create_file(Bytes{200 * kMiB}, 7);
  g.read(f, 0, pages_of(200));
  const std::uint64_t region = g.kernel->mmap(g.pid, Bytes{160 * kMiB});
  UniqueContent content(1, 0, 0);
  const TouchResult r =
      g.kernel->touch(g.pid, region, pages_of(160), [&](std::uint64_t) { return content.next(); });
  EXPECT_EQ(r.status, TouchStatus::kDone);
  EXPECT_EQ(r.pages, pages_of(160));
  EXPECT_GT(g.kernel->stats().pgsteal.value(), pages_of(100));
  EXPECT_EQ(g.kernel->stats().oom_kills.value(), 0U);
  g.kernel->check(true);
}

TEST(PageCache, WithoutSwapAnonymousMemoryEndsInTheOomKiller) {
  DiskGuest g(Bytes{128 * kMiB});
  const std::uint32_t hog = g.kernel->spawn("hog");
  const std::uint64_t region = g.kernel->mmap(hog, Bytes{256 * kMiB});
  UniqueContent content(1, 0, 0);
  const TouchResult r =
      g.kernel->touch(hog, region, pages_of(256), [&](std::uint64_t) { return content.next(); });
  EXPECT_EQ(r.status, TouchStatus::kKilled);
  EXPECT_EQ(g.kernel->stats().oom_kills.value(), 1U);
  EXPECT_EQ(g.kernel->stats().pswpout.value(), 0U);
}

// A read that needs a page when none is free allocates it as filemap_create_folio() does:
// direct reclaim retried while it makes progress (here by swapping out anonymous memory that
// a first pass only ages), not an end of the read for want of memory.
TEST(PageCache, AReadWithOnlyAnonymousMemoryLeftSwapsItOut) {
  DiskGuest g(Bytes{128 * kMiB}, Bytes{256 * kMiB});
  const std::uint32_t hog = g.kernel->spawn("hog");
  const std::uint64_t region = g.kernel->mmap(hog, Bytes{96 * kMiB});
  UniqueContent content(1, 0, 0);
  ASSERT_EQ(
      g.kernel->touch(hog, region, pages_of(96), [&](std::uint64_t) { return content.next(); })
          .status,
      TouchStatus::kDone);
  // A balloon driver takes the rest of free memory (allocations that never reclaim).
  std::vector<Gfn> balloon;
  while (const std::optional<Gfn> page = g.kernel->try_alloc_pages(0, 0)) balloon.push_back(*page);
  ASSERT_GT(balloon.size(), pages_of(16));
  const std::uint64_t swapped = g.kernel->stats().pswpout.value();
  const FileId f = g.kernel->create_file(Bytes{32 * kMiB}, 7);
  const TouchResult r = g.read(f, 0, pages_of(32));
  EXPECT_EQ(r.status, TouchStatus::kDone);
  EXPECT_EQ(r.pages, pages_of(32));
  EXPECT_EQ(g.kernel->stats().oom_kills.value(), 0U);
  EXPECT_GT(g.kernel->stats().pswpout.value(), swapped);
  EXPECT_TRUE(g.kernel->process(hog)->alive);
  for (const Gfn page : balloon) g.kernel->free_pages(0, page, 0);
  g.kernel->check(true);
}

TEST(PageCache, DirtyPagesStayNearTheDirtyLimit) {
  DiskGuest g(Bytes{512 * kMiB});
  const FileId f = g.kernel->create_file(Bytes{0}, 0, Bytes{1024 * kMiB});
  UniqueContent content(3, 0, 0);
  std::uint64_t peak = 0;
  for (std::uint64_t mib = 0; mib < 1024; mib += 4) {
    g.write(f, pages_of(mib), pages_of(4), [&](std::uint64_t) { return content.next(); });
    const Meminfo m = g.kernel->meminfo();
    peak = std::max(peak, m.dirty + m.writeback);
  }
  // dirty_ratio 20 % of about 470 MiB of dirtyable memory, and a request or two beyond it.
  EXPECT_LT(peak, pages_of(110));
  EXPECT_GT(peak, pages_of(40));
  EXPECT_GT(g.kernel->stats().dirty_throttled.value(), 0U);
  g.settle();
  EXPECT_EQ(g.kernel->meminfo().dirty, 0U);  // the flusher's periodic pass wrote the rest
  g.kernel->check(true);
}

// A file page reads back what was last written to it, across eviction, writeback and re-read;
// an anonymous page reads back across swap-out and swap-in.
TEST(PageCache, EveryPageReadsBackWhatWasLastWritten) {
  rc::check([] {
    // Small enough that the file and the anonymous memory do not fit together.
    DiskGuest g(Bytes{16 * kMiB}, Bytes{32 * kMiB});
    const std::uint64_t file_pages = pages_of(24);
    const FileId f = g.kernel->create_file(Bytes{file_pages * kPageSize}, 11);
    const std::uint64_t anon_pages = pages_of(12);
    const std::uint64_t region = g.kernel->mmap(g.pid, Bytes{anon_pages * kPageSize});
    std::map<std::uint64_t, Fingerprint> file_ref;
    std::vector<Fingerprint> anon_ref(anon_pages);
    UniqueContent content(*rc::gen::arbitrary<std::uint32_t>(), 0, 0);
    std::uint64_t touched = 0;
    // The same file mapped shared (writes are the file's) and private (writes are copies).
    const std::uint64_t shared = g.kernel->mmap_file(g.pid, f, true);
    const std::uint64_t priv = g.kernel->mmap_file(g.pid, f, false);
    std::map<std::uint64_t, Fingerprint> private_ref;
    const auto file_want = [&](std::uint64_t page) {
      const auto it = file_ref.find(page);
      return it != file_ref.end() ? it->second : make_fingerprint(image_page_hash(11, page));
    };
    const int steps = *rc::gen::inRange(20, 60);
    for (int s = 0; s < steps; ++s) {
      const int op = *rc::gen::inRange(0, 9);
      const std::uint64_t first = *rc::gen::inRange<std::uint64_t>(0, file_pages - 1024);
      const std::uint64_t n = *rc::gen::inRange<std::uint64_t>(1, 1024);
      if (op == 0) {
        g.read(f, first, n);
      } else if (op == 1) {
        g.write(f, first, n, [&](std::uint64_t page) {
          const Fingerprint fp = content.next();
          file_ref[page] = fp;
          return fp;
        });
      } else if (op == 2 && touched < anon_pages) {
        const std::uint64_t k = std::min(anon_pages - touched, n);
        const TouchResult r = g.run(
            [&](std::uint64_t done) {
              return g.kernel->touch(g.pid, region, k - done, [&](std::uint64_t i) {
                anon_ref[i] = content.next();
                return anon_ref[i];
              });
            },
            k);
        RC_ASSERT(r.status == TouchStatus::kDone);
        touched += k;
      } else if (op == 3 && touched > 0) {
        const std::uint64_t page = *rc::gen::inRange<std::uint64_t>(0, touched);
        const Fingerprint fp = content.next();
        g.run([&](std::uint64_t) { return g.kernel->access(g.pid, region, page, true, fp); }, 1);
        anon_ref[page] = fp;
      } else if (op == 4) {
        g.settle();
      } else if (op == 5 || op == 6) {
        // Writes through a mapping, to n pages from `first`.
        for (std::uint64_t page = first; page < first + std::min<std::uint64_t>(n, 64); ++page) {
          const Fingerprint fp = content.next();
          g.run(
              [&](std::uint64_t) {
                return g.kernel->access(g.pid, op == 5 ? shared : priv, page, true, fp);
              },
              1);
          (op == 5 ? file_ref : private_ref)[page] = fp;
        }
      } else if (op == 7 || op == 8) {
        for (std::uint64_t page = first; page < first + std::min<std::uint64_t>(n, 64); ++page) {
          Fingerprint got;
          g.run(
              [&](std::uint64_t) {
                return g.kernel->access(g.pid, op == 7 ? shared : priv, page, false, Fingerprint{},
                                        &got);
              },
              1);
          const auto own = private_ref.find(page);
          // A private mapping sees the file until it writes the page.
          RC_ASSERT(got == (op == 8 && own != private_ref.end() ? own->second : file_want(page)));
        }
      }
      g.kernel->check(s % 8 == 0);
      g.host.check_accounting();
    }
    RC_CLASSIFY(g.kernel->stats().pswpout.value() > 0, "swapped out");
    RC_CLASSIFY(g.kernel->stats().pgsteal.value() > 0, "reclaimed");
    RC_CLASSIFY(g.kernel->stats().pages_written_back.value() > 0, "wrote back");
    RC_CLASSIFY(g.kernel->meminfo().mapped > 0, "file pages mapped");
    for (std::uint64_t page = 0; page < file_pages; ++page) {
      RC_ASSERT(g.kernel->file_content(f, page) == file_want(page));
    }
    for (const auto& [page, fp] : private_ref) {
      Fingerprint got;
      g.run(
          [&](std::uint64_t) {
            return g.kernel->access(g.pid, priv, page, false, Fingerprint{}, &got);
          },
          1);
      RC_ASSERT(got == fp);
    }
    // Reading through the page cache returns the same, once every page came back in.
    for (std::uint64_t page = 0; page < touched; ++page) {
      Fingerprint got;
      g.run(
          [&](std::uint64_t) {
            return g.kernel->access(g.pid, region, page, false, Fingerprint{}, &got);
          },
          1);
      RC_ASSERT(got == anon_ref[page]);
    }
    for (const auto& [page, fp] : file_ref) {
      g.read(f, page, 1);
      RC_ASSERT(g.kernel->file_content(f, page) == fp);
    }
    g.kernel->check(true);
  });
}

}  // namespace
}  // namespace memvirt

namespace memvirt {
namespace {

// A hot file of 60 % of memory, read again and again while a scan twice the size of memory
// streams past it. Resident share of the hot file at the end.
double hot_share_after_scan(bool workingset) {
  DiskGuest g(Bytes{128 * kMiB}, Bytes{0}, workingset, Duration::millis(1));
  const std::uint64_t hot_pages = pages_of(72);
  const FileId hot = g.kernel->create_file(Bytes{hot_pages * kPageSize}, 5);
  const FileId scan = g.kernel->create_file(Bytes{256 * kMiB}, 6);
  g.read(hot, 0, hot_pages);
  g.read(hot, 0, hot_pages);  // the second read activates it
  const std::uint64_t step = pages_of(2);
  std::uint64_t hot_at = 0;
  for (std::uint64_t at = 0; at < pages_of(256); at += step) {
    g.read(scan, at, step);
    g.read(hot, hot_at, step);
    hot_at = (hot_at + step) % hot_pages;
  }
  g.kernel->check(true);
  return static_cast<double>(g.resident(hot, 0, hot_pages)) / static_cast<double>(hot_pages);
}

// The split LRU protects an active hot set from a scan with or without refault detection:
// the scan's pages are read once and leave from the inactive list.
TEST(PageCache, AnActiveHotSetSurvivesAScanLargerThanMemory) {
  const double on = hot_share_after_scan(true);
  const double off = hot_share_after_scan(false);
  std::printf("hot set resident after the scan: workingset on %.3f, off %.3f\n", on, off);
  EXPECT_GT(on, 0.9);
  EXPECT_GT(off, 0.9);
}

// A stale active set of 40 % of memory (read twice, then never again) and a new hot set of
// 70 %, larger than the inactive list, read in a loop. The active list is not shrunk while
// the inactive list is the larger. Without refault detection each page of the new set is
// evicted before its next read and never activated; with it, its refaults are activated and
// it displaces the stale set. Share of the eighth loop's reads served from memory.
double new_set_share(bool workingset) {
  DiskGuest g(Bytes{128 * kMiB}, Bytes{0}, workingset, Duration::millis(1));
  const FileId stale = g.kernel->create_file(Bytes{48 * kMiB}, 5);
  g.read(stale, 0, pages_of(48));
  g.read(stale, 0, pages_of(48));
  const std::uint64_t hot_pages = pages_of(84);
  const FileId hot = g.kernel->create_file(Bytes{hot_pages * kPageSize}, 6);
  for (int loop = 0; loop < 7; ++loop) g.read(hot, 0, hot_pages);
  const std::uint64_t before = g.kernel->stats().sectors_read.value();
  g.read(hot, 0, hot_pages);
  const std::uint64_t read = (g.kernel->stats().sectors_read.value() - before) / kSectorsPerPage;
  g.kernel->check(true);
  return 1.0 - static_cast<double>(read) / static_cast<double>(hot_pages);
}

TEST(PageCache, WorkingsetDetectionLetsANewHotSetDisplaceAStaleActiveSet) {
  const double on = new_set_share(true);
  const double off = new_set_share(false);
  std::printf("new hot set hit rate: workingset on %.3f, off %.3f\n", on, off);
  EXPECT_GT(on, 0.8);
  EXPECT_LT(off, 0.3);
}

}  // namespace
}  // namespace memvirt

namespace memvirt {
namespace {

TEST(Swap, AnonymousMemoryLargerThanTheGuestSwapsOutAndReadsBack) {
  DiskGuest g(Bytes{64 * kMiB}, Bytes{64 * kMiB});
  const std::uint64_t pages = pages_of(96);
  const std::uint64_t region = g.kernel->mmap(g.pid, Bytes{pages * kPageSize});
  const TouchResult r = g.run(
      [&](std::uint64_t done) {
        return g.kernel->touch(g.pid, region, pages - done,
                               [](std::uint64_t i) { return make_fingerprint(i + 1); });
      },
      pages);
  const GuestStats& st = g.kernel->stats();
  ASSERT_EQ(r.status, TouchStatus::kDone)
      << "touched " << r.pages << " scanned " << st.pgscan.value() << " stolen "
      << st.pgsteal.value() << " swapped out " << st.pswpout.value() << " kswapd "
      << st.kswapd_wakeups.value();
  ASSERT_EQ(r.pages, pages);
  EXPECT_GT(g.kernel->stats().pswpout.value(), pages_of(32));
  EXPECT_EQ(g.kernel->stats().oom_kills.value(), 0U);
  g.kernel->check(true);
  for (std::uint64_t i = 0; i < pages; ++i) {
    Fingerprint got;
    g.run(
        [&](std::uint64_t) {
          return g.kernel->access(g.pid, region, i, false, Fingerprint{}, &got);
        },
        1);
    ASSERT_EQ(got, make_fingerprint(i + 1)) << i;
  }
  EXPECT_GT(g.kernel->stats().pswpin.value(), 0U);
  g.kernel->check(true);
}

}  // namespace
}  // namespace memvirt

namespace memvirt {
namespace {

// Accesses every page of a file region once (reads, or writes of `fp`).
void access_all(DiskGuest& g, std::uint64_t region, std::uint64_t pages, bool write,
                Fingerprint fp = Fingerprint{}) {
  for (std::uint64_t page = 0; page < pages; ++page) {
    const TouchResult r =
        g.run([&](std::uint64_t) { return g.kernel->access(g.pid, region, page, write, fp); }, 1);
    ASSERT_EQ(r.status, TouchStatus::kDone);
  }
}

TEST(FileMapping, PagesFaultInAroundTheFaultAndCountAsMapped) {
  DiskGuest g(Bytes{256 * kMiB});
  const std::uint64_t pages = pages_of(8);
  const FileId f = g.kernel->create_file(Bytes{pages * kPageSize}, 5);
  const std::uint64_t region = g.kernel->mmap_file(g.pid, f, true);
  const std::uint64_t committed = g.kernel->committed_as_pages();
  access_all(g, region, pages, false);
  // Read around each fault: read_ahead_kb centred on it, so a walk from the start brings
  // half a window of new pages per major fault (no async readahead on PG_readahead pages).
  EXPECT_EQ(g.kernel->stats().major_faults.value(), pages / 16 - 1);
  EXPECT_EQ(g.kernel->stats().minor_faults.value(), pages);
  EXPECT_EQ(g.kernel->meminfo().mapped, pages);
  EXPECT_EQ(g.kernel->process(g.pid)->rss_pages, pages);
  EXPECT_EQ(g.kernel->committed_as_pages(), committed);  // a shared mapping commits nothing
  // Mapped again: no fault.
  access_all(g, region, pages, false);
  EXPECT_EQ(g.kernel->stats().minor_faults.value(), pages);
  g.kernel->munmap(g.pid, region);
  EXPECT_EQ(g.kernel->meminfo().mapped, 0U);
  EXPECT_EQ(g.kernel->process(g.pid)->rss_pages, 0U);
  EXPECT_EQ(g.kernel->file(f).cached, pages);  // the page cache keeps them
  g.kernel->check(true);
}

TEST(FileMapping, PrivateWritesAreCopiesAndSharedWritesDirtyTheFile) {
  DiskGuest g(Bytes{256 * kMiB});
  const std::uint64_t pages = pages_of(2);
  const FileId f = g.kernel->create_file(Bytes{pages * kPageSize}, 5);
  const std::uint64_t committed = g.kernel->committed_as_pages();
  const std::uint64_t priv = g.kernel->mmap_file(g.pid, f, false);
  EXPECT_EQ(g.kernel->committed_as_pages(), committed + pages);
  const Fingerprint mine = make_fingerprint(77);
  access_all(g, priv, pages, true, mine);
  EXPECT_EQ(g.kernel->meminfo().dirty, 0U);
  EXPECT_EQ(g.kernel->meminfo().anon, pages);    // each written page is an anonymous copy
  EXPECT_EQ(g.kernel->meminfo().mapped, pages);  // the copies; the file pages are unmapped
  EXPECT_EQ(g.kernel->file_content(f, 0), make_fingerprint(image_page_hash(5, 0)));
  const std::uint64_t shared = g.kernel->mmap_file(g.pid, f, true);
  const Fingerprint theirs = make_fingerprint(78);
  access_all(g, shared, pages, true, theirs);
  EXPECT_EQ(g.kernel->meminfo().dirty, pages);
  EXPECT_EQ(g.kernel->file_content(f, 1), theirs);
  Fingerprint got;
  g.run([&](std::uint64_t) { return g.kernel->access(g.pid, priv, 1, false, {}, &got); }, 1);
  EXPECT_EQ(got, mine);  // the private copy keeps its own write
  g.kernel->check(true);
  g.kernel->exit(g.pid);
  EXPECT_EQ(g.kernel->committed_as_pages(), committed);
  EXPECT_EQ(g.kernel->meminfo().mapped, 0U);
  g.kernel->check(true);
}

TEST(FileMapping, ReclaimUnmapsPagesAndTheyFaultBackFromDisk) {
  DiskGuest g(Bytes{64 * kMiB});
  const std::uint64_t pages = pages_of(16);
  const FileId f = g.kernel->create_file(Bytes{pages * kPageSize}, 5);
  const std::uint64_t region = g.kernel->mmap_file(g.pid, f, false);
  access_all(g, region, pages, false);
  ASSERT_EQ(g.kernel->meminfo().mapped, pages);
  // A scan of a file twice the guest's memory pushes the mapping's pages out.
  const FileId big = g.kernel->create_file(Bytes{128 * kMiB}, 6);
  g.read(big, 0, pages_of(128));
  const std::uint64_t mapped = g.kernel->meminfo().mapped;
  EXPECT_LT(mapped, pages);
  EXPECT_EQ(g.kernel->process(g.pid)->rss_pages, mapped);
  g.kernel->check(true);
  const std::uint64_t major = g.kernel->stats().major_faults.value();
  access_all(g, region, pages, false);
  EXPECT_GT(g.kernel->stats().major_faults.value(), major);
  g.kernel->check(true);
}

TEST(FileMapping, TruncateUnmapsAndAccessBeyondTheEndIsAnError) {
  DiskGuest g(Bytes{128 * kMiB});
  const std::uint64_t pages = 64;
  const FileId f = g.kernel->create_file(Bytes{pages * kPageSize}, 5);
  const std::uint64_t region = g.kernel->mmap_file(g.pid, f, true);
  access_all(g, region, pages, false);
  g.kernel->truncate(f, 16);
  EXPECT_EQ(g.kernel->meminfo().mapped, 16U);
  EXPECT_EQ(g.kernel->process(g.pid)->rss_pages, 16U);
  EXPECT_THROW(g.kernel->access(g.pid, region, 20, false, {}), std::out_of_range);
  g.kernel->check(true);
  g.kernel->unlink(f);
  EXPECT_EQ(g.kernel->meminfo().mapped, 0U);
  g.kernel->munmap(g.pid, region);
  g.kernel->check(true);
}

}  // namespace
}  // namespace memvirt

namespace memvirt {
namespace {

TEST(Filesystem, UnlinkedFilesLeaveTheirSpaceToTheNextFiles) {
  DiskGuest g(Bytes{64 * kMiB});
  const FileId a = g.kernel->create_file(Bytes{kMiB}, 1);
  const FileId b = g.kernel->create_file(Bytes{2 * kMiB}, 2);
  const FileId c = g.kernel->create_file(Bytes{kMiB}, 3);
  const std::uint64_t b_first = g.kernel->file(b).first_sector;
  g.kernel->unlink(b);
  // First fit: a smaller file goes into b's space, at its start.
  const FileId d = g.kernel->create_file(Bytes{kMiB}, 4);
  EXPECT_EQ(g.kernel->file(d).first_sector, b_first);
  // Once a and d are gone too, the free space before c is one extent of 3 MiB.
  const std::uint64_t a_first = g.kernel->file(a).first_sector;
  g.kernel->unlink(a);
  g.kernel->unlink(d);
  const FileId e = g.kernel->create_file(Bytes{3 * kMiB}, 5);
  EXPECT_EQ(g.kernel->file(e).first_sector, a_first);
  EXPECT_EQ(g.kernel->file(e).first_sector + pages_of(3) * kSectorsPerPage,
            g.kernel->file(c).first_sector);
  // Contents come with the file, not with the sectors.
  g.read(e, 0, pages_of(3));
  EXPECT_EQ(g.kernel->file_content(e, 0), make_fingerprint(image_page_hash(5, 0)));
  g.kernel->check(true);
}

TEST(Filesystem, AFullFilesystemTakesANewFileAfterAnUnlink) {
  DiskGuest g(Bytes{64 * kMiB});
  // DiskGuest's filesystem holds 64 GiB: 64 files of 1 GiB fill it.
  std::vector<FileId> files;
  for (int i = 0; i < 64; ++i) files.push_back(g.kernel->create_file(Bytes{1ULL << 30}, 1));
  EXPECT_THROW(g.kernel->create_file(Bytes{kMiB}, 2), std::length_error);
  g.kernel->unlink(files[10]);
  EXPECT_NO_THROW(g.kernel->create_file(Bytes{1ULL << 30}, 2));
  EXPECT_THROW(g.kernel->create_file(Bytes{kMiB}, 2), std::length_error);
}

}  // namespace
}  // namespace memvirt

namespace memvirt {
namespace {

struct InvalidationCount final : PageHooks {
  std::uint64_t files = 0, filesystems = 0;
  void on_invalidate_file(FileKey) override { ++files; }
  void on_invalidate_fs(std::uint32_t) override { ++filesystems; }
};

TEST(Filesystem, UmountWritesBackDropsTheCacheAndInvalidates) {
  DiskGuest g(Bytes{256 * kMiB});
  InvalidationCount hooks;
  g.kernel->add_hooks(&hooks);
  const FileId a = g.kernel->create_file(Bytes{4 * kMiB}, 1);
  const FileId b = g.kernel->create_file(Bytes{0}, 2, Bytes{kMiB});
  g.read(a, 0, pages_of(4));
  const Fingerprint written = make_fingerprint(99);
  g.write(b, 0, 1, [&](std::uint64_t) { return written; });
  ASSERT_GT(g.kernel->meminfo().cached, 0U);
  bool done = false;
  g.kernel->umount([&] { done = true; });
  g.settle();
  ASSERT_TRUE(done);
  EXPECT_EQ(g.kernel->meminfo().cached, 0U);
  EXPECT_EQ(g.kernel->meminfo().dirty, 0U);
  EXPECT_EQ(hooks.files, 2U);
  EXPECT_EQ(hooks.filesystems, 1U);
  // The files are on disk: read again from it, with what was written.
  const std::uint64_t sectors = g.kernel->stats().sectors_read.value();
  g.read(b, 0, 1);
  EXPECT_GT(g.kernel->stats().sectors_read.value(), sectors);
  EXPECT_EQ(g.kernel->file_content(b, 0), written);
  g.kernel->check(true);
  // A mapped file keeps the filesystem busy.
  g.kernel->mmap_file(g.pid, a, true);
  EXPECT_THROW(g.kernel->umount([] {}), std::logic_error);
  g.kernel->remove_hooks(&hooks);
}

}  // namespace
}  // namespace memvirt

namespace memvirt {
namespace {

// Pages whose swap write is still in flight, written again or freed by an exit: their
// writeback ends with them, and Writeback returns to zero (a leak there once throttled every
// writer of the guest for good).
TEST(Swap, PagesWrittenOrFreedDuringTheirSwapWriteLeaveNoWriteback) {
  for (const bool exit_first : {false, true}) {
    DiskGuest g(Bytes{16 * kMiB}, Bytes{32 * kMiB});
    const std::uint64_t pages = pages_of(24);
    const std::uint64_t region = g.kernel->mmap(g.pid, Bytes{pages * kPageSize});
    UniqueContent content(1, 0, 0);
    // Touch until reclaim has to wait for its swap writes: they are in flight then.
    TouchResult r;
    for (std::uint64_t done = 0; done < pages; done += r.pages) {
      r = g.kernel->touch(g.pid, region, pages - done,
                          [&](std::uint64_t) { return content.next(); });
      if (r.status == TouchStatus::kBlocked) break;
      ASSERT_EQ(r.status, TouchStatus::kDone);
    }
    ASSERT_GT(g.kernel->meminfo().writeback, 0U) << "swap writes should be in flight";
    // Read back what is still in the swap cache: mapped again, its swap write in flight.
    const std::uint64_t touched = g.kernel->process(g.pid)->regions[0].touched;
    std::uint64_t read_back = 0;
    for (std::uint64_t page = 0; page < touched; ++page) {
      const SlotEntry e =
          g.kernel->slots().entry(g.kernel->process(g.pid)->regions[0].mapping, page);
      if (e.kind() != SlotKind::kSwap) continue;
      const TouchResult a = g.kernel->access(g.pid, region, page, false, {});
      if (a.status == TouchStatus::kDone) ++read_back;
      if (a.status != TouchStatus::kDone) break;  // the next needs the disk; enough
    }
    ASSERT_GT(read_back, 0U);
    ASSERT_GT(g.kernel->meminfo().writeback, 0U);
    if (!exit_first) {
      // Write every page still resident (some in the swap cache, under writeback).
      for (std::uint64_t page = 0; page < touched; ++page) {
        if (g.kernel->slots().entry(g.kernel->process(g.pid)->regions[0].mapping, page).kind() !=
            SlotKind::kFrame) {
          continue;
        }
        g.kernel->access(g.pid, region, page, true, content.next());
      }
      g.kernel->check(true);
    }
    g.kernel->exit(g.pid);
    g.kernel->check(true);
    g.settle();
    EXPECT_EQ(g.kernel->meminfo().writeback, 0U) << exit_first;
    g.kernel->check(true);
  }
}

}  // namespace
}  // namespace memvirt
