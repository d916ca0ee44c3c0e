#include "reclaim/hinting.hpp"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "core/error.hpp"
#include "reclaim/mechanism_rig.hpp"
#include "reclaim/random_program.hpp"

namespace memvirt {
namespace {

using testing::Rig;

TEST(Hinting, AFullArrayOfDistinctFreeBlocksIsHintedAndReturned) {
  Rig r(Bytes{64ULL << 20});
  auto& h = r.add<FreePageHinting>(HintingConfig{});
  r.start();
  GuestKernel& k = *r.f.kernel;
  const std::vector<Gfn> pages = r.take_all_pages();
  // Every other page: holes that cannot merge, each its own free block.
  std::vector<Gfn> holes;
  for (std::size_t i = 0; i < pages.size(); i += 2) holes.push_back(pages[i]);
  ASSERT_GT(holes.size(), 2500U);
  const std::uint64_t before = r.f.host.frames_used();
  for (std::size_t i = 0; i < 2500; ++i) k.free_pages(0, holes[i], 0);
  // Two full arrays of 1000 distinct blocks went to the host; 500 wait in the array.
  EXPECT_EQ(h.stats().thread_runs.value(), 2U);
  EXPECT_EQ(h.recorded(r.f.vm), 500U);
  EXPECT_GT(h.stats().pages_hinted.value(), 1900U);
  EXPECT_EQ(before - r.f.host.frames_used(), h.stats().pages_hinted.value());
  // Of the first 2000 holes only the two whose free filled the array stay backed: the hook
  // runs before the page reaches the allocator, so the thread finds it still in use.
  std::size_t backed = 0;
  for (std::size_t i = 0; i < 2000; ++i)
    backed += r.f.host.state(r.f.vm, holes[i]) != PageState::kUnbacked;
  EXPECT_EQ(backed, 2U);
  k.check(true);
  r.f.host.check_full();
}

TEST(Hinting, MemoryFreedInMergingBlocksWaitsInAPartFilledArray) {
  // The stated weakness of the fixed-size array: a large contiguous free merges into few
  // blocks, the array never fills with 1000 distinct ones, and nothing is hinted.
  Rig r(Bytes{256ULL << 20});
  auto& h = r.add<FreePageHinting>(HintingConfig{});
  r.start();
  GuestKernel& k = *r.f.kernel;
  const auto pid = k.spawn("hog");
  const auto region = k.mmap(pid, Bytes{128ULL << 20});
  k.touch(pid, region, Bytes{128ULL << 20}.pages(),
          [](std::uint64_t i) { return make_fingerprint(i + 1); });
  k.exit(pid);
  EXPECT_GT(h.stats().scans.value(), 0U);
  EXPECT_GT(h.stats().entries_dropped.value(), 0U);
  EXPECT_EQ(h.stats().thread_runs.value(), 0U);
  EXPECT_EQ(h.stats().pages_hinted.value(), 0U);
  EXPECT_GT(h.recorded(r.f.vm), 0U);
  EXPECT_LT(h.recorded(r.f.vm), 1000U);
  EXPECT_EQ(r.f.host.frames_used(), Bytes{128ULL << 20}.pages());
}

TEST(Hinting, BadParametersNameTheirField) {
  auto ctx = std::make_shared<ParamContext>("s.yaml");
  Params ok(YAML::Load("{entries: 32}"), "reclaim.0", ctx);
  EXPECT_EQ(FreePageHinting::config_from(ok).entries, 32U);
  Params bad(YAML::Load("{entries: 0}"), "reclaim.0", ctx);
  EXPECT_THROW(FreePageHinting::config_from(bad), InputError);
}

RC_GTEST_PROP(Hinting, GuestReadsBackWhatItWroteWhileHinting, ()) {
  Rig r(Bytes{24ULL << 20});
  HintingConfig c;
  c.entries = *rc::gen::inRange(1U, 1200U);
  r.add<FreePageHinting>(c);
  r.start();
  GuestKernel& k = *r.f.kernel;
  testing::RandomProgram program(k, 4000);
  const int steps = *rc::gen::inRange(1, 40);
  for (int s = 0; s < steps; ++s) {
    switch (*rc::gen::inRange(0, 4)) {
      case 0:
        program.map_and_touch();
        break;
      case 1:
        program.unmap();
        break;
      case 2:
        program.unmap_tail();
        break;
      default:
        program.rewrite();
        break;
    }
    r.f.host.check_accounting();
    k.check(false);
  }
  program.check_reads();
  k.check(true);
  r.f.host.check_full();
}

}  // namespace
}  // namespace memvirt
