// cleancache and frontswap over Xen's tmem, on a guest with a disk and swap.
#include "reclaim/tmem_frontends.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "core/error.hpp"
#include "guest/disk_guest.hpp"
#include "reclaim/xen.hpp"
#include "scenario/scenario.hpp"
#include "workload/workload.hpp"

namespace memvirt {
namespace {

using testing::DiskGuest;

constexpr std::uint64_t kMiB = 1ULL << 20;
constexpr std::uint64_t pages_of(std::uint64_t mib) {
  return mib * kMiB / kPageSize;
}

// A guest of `guest_mib` (maxmem) on a Xen host of `host_mib`, built with `reservation_mib`
// (all of it when 0), its tmem front ends attached.
struct TmemGuest {
  explicit TmemGuest(std::uint64_t guest_mib, std::uint64_t host_mib, TmemFrontendsConfig cfg = {},
                     std::uint64_t swap_mib = 0, std::uint64_t reservation_mib = 0)
      : g(Bytes{guest_mib * kMiB}, Bytes{swap_mib * kMiB}),
        xen(g.queue, g.host, g.costs, pages_of(host_mib), 0),
        frontends(cfg) {
    env.queue = &g.queue;
    env.host = &g.host;
    env.xen = &xen;
    env.accounts = &accounts;
    env.costs = &g.costs;
    frontends.start(env);
    const VmHandle h{g.vm, 0, g.kernel.get(), &g.vcpu};
    EXPECT_TRUE(xen.create_domain(h, pages_of(reservation_mib != 0 ? reservation_mib : guest_mib)));
    frontends.attach(h);
  }
  DiskGuest g;
  XenHost xen;
  TmemFrontends frontends;
  Accounts accounts;
  MechanismEnv env;
};

TEST(Cleancache, EvictedCleanPagesComeBackFromTmemInsteadOfTheDisk) {
  TmemGuest t(64, 512);
  DiskGuest& g = t.g;
  const FileId f = g.kernel->create_file(Bytes{100 * kMiB}, 7);
  g.read(f, 0, pages_of(100));  // more than the guest holds: the first pages were evicted
  const std::uint64_t puts = t.frontends.stats().cleancache_puts.value();
  EXPECT_GT(puts, pages_of(30));
  EXPECT_GT(t.xen.tmem()->pages_used(), pages_of(30));
  const std::uint64_t sectors = g.kernel->stats().sectors_read.value();
  g.read(f, 0, pages_of(20));
  // Those pages came from tmem: no disk reads, and the exclusive gets removed them.
  EXPECT_EQ(g.kernel->stats().sectors_read.value(), sectors);
  EXPECT_GE(t.frontends.stats().cleancache_succ_gets.value(), pages_of(20));
  EXPECT_EQ(g.kernel->file_content(f, 3), make_fingerprint(image_page_hash(7, 3)));
  t.xen.check();
  g.kernel->check(true);
}

TEST(Cleancache, AGetReturnsTheLastContentPutAndTruncateInvalidates) {
  TmemGuest t(64, 512);
  DiskGuest& g = t.g;
  const FileId f = g.kernel->create_file(Bytes{8 * kMiB}, 3);
  const auto v1 = [](std::uint64_t p) { return make_fingerprint(1000 + p); };
  const auto v2 = [](std::uint64_t p) { return make_fingerprint(5000 + p); };
  const FileId big = g.kernel->create_file(Bytes{100 * kMiB}, 9);
  // Written, written back, pushed out of the page cache: the first content goes to tmem.
  const auto put_out = [&](const ContentFn& content) {
    g.write(f, 0, pages_of(8), content);
    g.settle();
    g.read(big, 0, pages_of(100));
    ASSERT_EQ(g.resident(f, 0, pages_of(8)), 0U);
  };
  put_out(v1);
  const std::uint64_t replaced = t.xen.tmem()->counters().dup_puts_replaced.value();
  put_out(v2);  // the second replaces it
  EXPECT_GT(t.xen.tmem()->counters().dup_puts_replaced.value(), replaced);
  const std::uint64_t sectors = g.kernel->stats().sectors_read.value();
  g.read(f, 0, pages_of(8));
  EXPECT_EQ(g.kernel->stats().sectors_read.value(), sectors);  // every page from tmem
  for (std::uint64_t p = 0; p < pages_of(8); p += 97) {
    EXPECT_EQ(g.kernel->file_content(f, p), make_fingerprint(5000 + p));  // never the stale 1000+
  }
  g.read(big, 0, pages_of(100));  // f out again, into tmem
  g.kernel->truncate(f, 0);
  EXPECT_GT(t.frontends.stats().cleancache_invalidates.value(), 0U);
  t.xen.check();
  g.kernel->check(true);
}

TEST(Frontswap, StoresSwapInTmemAndFallsBackToTheDiskWhenTmemIsFull) {
  // A host with 16 MiB of fallow memory above the guest's 64 MiB, and a maxmem of 96 MiB that
  // would allow 32: frontswap fills the heap, then the disk takes the rest.
  TmemFrontendsConfig swap_only;
  swap_only.cleancache = false;
  TmemGuest t(96, 64 + 16, swap_only, 256, 64);
  DiskGuest& g = t.g;
  const std::uint32_t pid = g.kernel->spawn("hog");
  const std::uint64_t region = g.kernel->mmap(pid, Bytes{120 * kMiB});
  UniqueContent content(1, 0, 0);
  std::map<std::uint64_t, Fingerprint> written;
  g.run(
      [&](std::uint64_t done) {
        return g.kernel->touch(pid, region, pages_of(120) - done, [&](std::uint64_t i) {
          const Fingerprint fp = content.next();
          written[i] = fp;
          return fp;
        });
      },
      pages_of(120));
  const TmemFrontendsStats& s = t.frontends.stats();
  EXPECT_GT(s.frontswap_succ_stores.value(), pages_of(10));
  EXPECT_GT(s.frontswap_failed_stores.value(), 0U);  // the rest went to the disk
  EXPECT_GT(g.kernel->stats().sectors_written.value(), 0U);
  EXPECT_LE(t.xen.tmem()->pages_used(), pages_of(16));
  // Everything reads back, from tmem or the disk.
  for (std::uint64_t i = 0; i < pages_of(120); i += 61) {
    const TouchResult r = g.run(
        [&](std::uint64_t) { return g.kernel->access(pid, region, i, false, Fingerprint{}); }, 1);
    ASSERT_EQ(r.status, TouchStatus::kDone);
    EXPECT_EQ(g.kernel->read(pid, region, i), written[i]) << i;
  }
  EXPECT_GT(s.frontswap_loads.value(), 0U);
  g.kernel->exit(pid);
  EXPECT_EQ(t.frontends.frontswap_pages(g.vm), 0U);  // freed slots were invalidated
  EXPECT_GT(s.frontswap_invalidates.value(), 0U);
  t.xen.check();
  g.kernel->check(true);
}

TEST(Frontswap, APartialSwapoffBringsItsPagesBackIntoTheGuest) {
  TmemFrontendsConfig swap_only;
  swap_only.cleancache = false;
  // maxmem 160 MiB, 96 of them the reservation: frontswap may hold 64.
  TmemGuest t(160, 512, swap_only, 256, 96);
  DiskGuest& g = t.g;
  const std::uint32_t pid = g.kernel->spawn("hog");
  const std::uint64_t kept = g.kernel->mmap(pid, Bytes{80 * kMiB});
  const std::uint64_t spill = g.kernel->mmap(pid, Bytes{60 * kMiB});
  UniqueContent content(1, 0, 0);
  std::map<std::uint64_t, Fingerprint> written;
  g.run(
      [&](std::uint64_t done) {
        return g.kernel->touch(pid, kept, pages_of(80) - done, [&](std::uint64_t i) {
          const Fingerprint fp = content.next();
          written[i] = fp;
          return fp;
        });
      },
      pages_of(80));
  g.run(
      [&](std::uint64_t done) {
        return g.kernel->touch(pid, spill, pages_of(60) - done,
                               [&](std::uint64_t) { return content.next(); });
      },
      pages_of(60));
  g.kernel->munmap(pid, spill);  // room to bring pages back
  const std::uint64_t before = t.frontends.frontswap_pages(g.vm);
  ASSERT_GT(before, pages_of(8));
  const std::uint64_t back = g.kernel->unuse_frontswap(pages_of(4));
  EXPECT_EQ(back, pages_of(4));
  EXPECT_EQ(t.frontends.frontswap_pages(g.vm), before - back);
  // The pages came back where they were, with their contents, and the rest still reads back.
  for (std::uint64_t i = 0; i < pages_of(80); i += 17) {
    const TouchResult r = g.run(
        [&](std::uint64_t) { return g.kernel->access(pid, kept, i, false, Fingerprint{}); }, 1);
    ASSERT_EQ(r.status, TouchStatus::kDone);
    ASSERT_EQ(g.kernel->read(pid, kept, i), written[i]) << i;
  }
  t.xen.check();
  g.kernel->check(true);
}

TEST(TmemFrontendsConfig, NeedsXenAndAKnownCompressor) {
  const auto dir = testing::temp_dir();
  const auto write = [&](const std::string& body) {
    const auto file = dir / "s.yaml";
    std::ofstream(file) << "host: {memory: 2GiB}\nvm: {memory: 256MiB}\n" << body;
    return file.string();
  };
  try {
    load_scenario(write("reclaim:\n  - impl: tmem\n"));
    FAIL() << "tmem on KVM was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("reclaim[0].impl: tmem runs on Xen"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace memvirt
