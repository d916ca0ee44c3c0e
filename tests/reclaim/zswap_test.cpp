// zswap in a guest with a swap disk: compressed stores into zbud pages of the guest's own
// memory, the pool limit with its accept threshold, write-back to the disk, and the guest
// reading back exactly what it wrote.
#include "reclaim/zswap.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "core/error.hpp"
#include "guest/disk_guest.hpp"
#include "scenario/scenario.hpp"
#include "workload/workload.hpp"

namespace memvirt {
namespace {

using testing::DiskGuest;

constexpr std::uint64_t kMiB = 1ULL << 20;
constexpr std::uint64_t pages_of(std::uint64_t mib) {
  return mib * kMiB / kPageSize;
}

std::shared_ptr<const CompressionProfile> measured_profile() {
  static const auto profile = std::make_shared<const CompressionProfile>(
      CompressionProfile::load(testing::source_path("profiles/compression/kernel-build.json")));
  return profile;
}

struct ZswapGuest {
  explicit ZswapGuest(std::uint64_t guest_mib, std::uint64_t swap_mib, ZswapConfig cfg = {})
      : g(Bytes{guest_mib * kMiB}, Bytes{swap_mib * kMiB}), zswap([&] {
          if (!cfg.compression_profile) cfg.compression_profile = measured_profile();
          return cfg;
        }()) {
    env.queue = &g.queue;
    env.host = &g.host;
    env.accounts = &accounts;
    env.costs = &g.costs;
    zswap.start(env);
    zswap.attach(VmHandle{g.vm, 0, g.kernel.get(), &g.vcpu});
  }
  // Touches `mib` of fresh anonymous memory with contents of class `cls`, and returns them.
  std::map<std::uint64_t, Fingerprint> fill(std::uint64_t mib, ContentClass cls) {
    region = g.kernel->mmap(g.pid, Bytes{mib * kMiB});
    UniqueContent content(1, 0, 0, cls);
    std::map<std::uint64_t, Fingerprint> written;
    g.run(
        [&](std::uint64_t done) {
          return g.kernel->touch(g.pid, region, pages_of(mib) - done, [&](std::uint64_t i) {
            const Fingerprint fp = content.next();
            written[i] = fp;
            return fp;
          });
        },
        pages_of(mib));
    return written;
  }
  // Reads every `step`th page back (faulting it in) and checks its content.
  void read_back(const std::map<std::uint64_t, Fingerprint>& written, std::uint64_t step) {
    for (std::uint64_t i = 0; i < written.size(); i += step) {
      const TouchResult r = g.run(
          [&](std::uint64_t) { return g.kernel->access(g.pid, region, i, false, Fingerprint{}); },
          1);
      ASSERT_EQ(r.status, TouchStatus::kDone);
      ASSERT_EQ(g.kernel->read(g.pid, region, i), written.at(i)) << "page " << i;
    }
  }
  DiskGuest g;
  Zswap zswap;
  Accounts accounts;
  MechanismEnv env;
  std::uint64_t region = 0;
};

TEST(Zswap, StoresCompressedPagesInTheGuestsMemoryAndEveryPageReadsBack) {
  ZswapGuest t(64, 256);
  const auto written = t.fill(96, ContentClass::kSource);
  const ZswapStats& s = t.zswap.stats();
  const std::uint64_t stored = t.zswap.stored_pages(t.g.vm);
  const std::uint64_t pool = t.zswap.pool_total_size(t.g.vm) / kPageSize;
  EXPECT_GT(stored, pages_of(8));
  // zbud keeps at most two compressed pages in a pool page; sources often fit two.
  EXPECT_GT(stored, pool * 5 / 4);
  EXPECT_LE(stored, pool * 2);
  // The pool stays within max_pool_percent of the guest's RAM (a store checks before it adds).
  EXPECT_LE(t.zswap.pool_pages_max(t.g.vm), t.g.kernel->total_pages() * 20 / 100 + 1);
  EXPECT_GT(s.pool_limit_hit.value(), 0U);  // 96 MiB of sources do not fit 20% of 64 MiB
  EXPECT_GT(t.g.kernel->stats().pswpout.value(), 0U);
  t.zswap.check();
  t.read_back(written, 7);
  EXPECT_GT(s.loads.value(), 0U);
  t.g.kernel->exit(t.g.pid);
  t.g.settle();
  EXPECT_EQ(t.zswap.stored_pages(t.g.vm), 0U);  // freed slots dropped their entries
  EXPECT_EQ(t.zswap.pool_total_size(t.g.vm), 0U);
  t.zswap.check();
  t.g.kernel->check(true);
}

TEST(Zswap, ZeroPagesTakeNoPoolMemoryAndIncompressiblePagesGoToTheDisk) {
  ZswapGuest zeros(64, 256);
  const std::uint64_t region = zeros.g.kernel->mmap(zeros.g.pid, Bytes{96 * kMiB});
  zeros.g.run(
      [&](std::uint64_t done) {
        return zeros.g.kernel->touch(zeros.g.pid, region, pages_of(96) - done,
                                     [](std::uint64_t) { return kZeroContent; });
      },
      pages_of(96));
  EXPECT_GT(zeros.zswap.same_filled_pages(zeros.g.vm), pages_of(16));
  EXPECT_EQ(zeros.zswap.same_filled_pages(zeros.g.vm), zeros.zswap.stored_pages(zeros.g.vm));
  EXPECT_EQ(zeros.zswap.pool_total_size(zeros.g.vm), 0U);
  EXPECT_EQ(zeros.g.kernel->stats().pswpout.value(), 0U);  // none reached the disk
  zeros.zswap.check();

  ZswapGuest opaque(64, 256);
  const auto written = opaque.fill(96, ContentClass::kOpaque);
  EXPECT_EQ(opaque.zswap.stored_pages(opaque.g.vm), 0U);
  EXPECT_GT(opaque.zswap.stats().reject_compress_poor.value(), pages_of(16));
  EXPECT_GT(opaque.g.kernel->stats().pswpout.value(), pages_of(16));
  opaque.read_back(written, 13);
  opaque.g.kernel->check(true);
}

TEST(Zswap, AFullPoolRejectsUntilBelowTheAcceptThresholdAndWritesBackToTheDisk) {
  ZswapConfig cfg;
  cfg.max_pool_percent = 5;
  ZswapGuest t(64, 256, cfg);
  const auto written = t.fill(112, ContentClass::kCompilerHeap);
  const ZswapStats& s = t.zswap.stats();
  EXPECT_GT(s.pool_limit_hit.value(), 0U);
  EXPECT_GT(s.written_back_pages.value(), 0U);  // the shrink worker wrote the oldest back
  EXPECT_LE(t.zswap.pool_pages_max(t.g.vm), t.g.kernel->total_pages() * 5 / 100 + 1);
  // Stores rejected while full went to the disk, and written-back pages too.
  EXPECT_GT(t.g.kernel->stats().pswpout.value(), s.written_back_pages.value());
  t.zswap.check();
  // Readahead brings clusters whose slots are partly in zswap, partly on the disk.
  t.read_back(written, 3);
  t.zswap.check();
  t.g.kernel->check(true);
}

TEST(Zswap, AFullPoolAcceptsAgainOnlyBelowTheAcceptThreshold) {
  // Fill until full, free it all (munmap invalidates every slot), fill again.
  const auto second_fill_stores = [](std::uint32_t threshold) {
    ZswapConfig cfg;
    cfg.max_pool_percent = 5;
    cfg.accept_threshold_percent = threshold;
    ZswapGuest t(64, 256, cfg);
    t.fill(112, ContentClass::kCompilerHeap);
    EXPECT_GT(t.zswap.stats().pool_limit_hit.value(), 0U);
    t.g.kernel->munmap(t.g.pid, t.region);
    EXPECT_EQ(t.zswap.pool_total_size(t.g.vm), 0U);
    const std::uint64_t before = t.zswap.stats().succ_stores.value();
    t.fill(112, ContentClass::kCompilerHeap);
    t.zswap.check();
    return t.zswap.stats().succ_stores.value() - before;
  };
  // zswap_can_accept() with a threshold of 0 is never true: a pool once full stays closed
  // (6.1 reopens it only there, not when the shrink worker makes room).
  EXPECT_EQ(second_fill_stores(0), 0U);
  EXPECT_GT(second_fill_stores(90), pages_of(2));
}

TEST(Zswap, IsDeterministic) {
  const auto run = [] {
    ZswapGuest t(64, 256);
    t.fill(96, ContentClass::kCompilerHeap);
    const ZswapStats& s = t.zswap.stats();
    return std::tuple{t.zswap.stored_pages(t.g.vm), t.zswap.pool_total_size(t.g.vm),
                      s.written_back_pages.value(), t.g.kernel->stats().pswpout.value()};
  };
  EXPECT_EQ(run(), run());
}

TEST(ZswapConfig, RefusesWhatTheKernelDoesNotHave) {
  const auto dir = testing::temp_dir();
  const auto load = [&](const std::string& zswap) {
    const auto file = dir / "s.yaml";
    std::ofstream(file) << "host: {memory: 2GiB}\nvm: {memory: 256MiB}\nreclaim:\n  - impl: zswap\n"
                        << zswap;
    return load_scenario(file.string());
  };
  const auto refused = [&](const std::string& zswap, const std::string& what) {
    try {
      load(zswap);
      ADD_FAILURE() << "accepted: " << zswap;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  EXPECT_NO_THROW(load(""));
  refused("    zpool: zsmalloc\n", "s.yaml:5");
  refused("    zpool: zsmalloc\n", "reclaim[0].zpool");
  refused("    compressor: deflate\n", "reclaim[0].compressor");
  refused("    max_pool_percent: 0\n", "reclaim[0].max_pool_percent");
  refused("    max_pool_percent: 101\n", "reclaim[0].max_pool_percent");
  refused("    accept_threshold_percent: -1\n", "reclaim[0].accept_threshold_percent");
  refused("    same_filled_pages: maybe\n", "reclaim[0].same_filled_pages");
  refused("    compression_profile: /nonexistent.json\n", "compression_profile");
  refused("    pool_limit: 3\n", "pool_limit");
}

}  // namespace
}  // namespace memvirt
