// Property: whatever the layout (page sizes, fragmentation, self-ballooning, escapes), every
// mode translates every address to the host address the guest and nested tables give; the
// segments and caches only change the cost. And the linear model's formulas.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "translation/guest_layout.hpp"
#include "translation/host_layout.hpp"
#include "translation/linear_model.hpp"
#include "translation/translator.hpp"

namespace memvirt::translation {
namespace {

constexpr std::uint64_t kMiB = 1ULL << 20;

RC_GTEST_PROP(TranslationProperty, EveryModeAgreesWithTheTables, ()) {
  const auto guest_pages = *rc::gen::element(PageSize::k4K, PageSize::k2M);
  const auto host_pages = *rc::gen::element(PageSize::k4K, PageSize::k2M);
  GuestLayoutConfig gc;
  gc.memory = 2048 * kMiB;
  gc.page_size = guest_pages;
  gc.self_ballooning = *rc::gen::arbitrary<bool>();
  gc.hot_unplug_io_gap = *rc::gen::arbitrary<bool>();
  gc.fragmentation = *rc::gen::element(0.0, 0.05, 0.3);
  gc.seed = *rc::gen::inRange<std::uint64_t>(1, 1000);
  const std::uint64_t heap_bytes = *rc::gen::inRange<std::uint64_t>(1, 48) * kMiB;
  const std::vector<Region> regions{{"heap", Gva{HeapLayout::kHeapBase}, heap_bytes}};
  const GuestLayout g = build_guest_layout(regions, gc);
  HostLayoutConfig hc;
  hc.page_size = host_pages;
  hc.escaped_pages = *rc::gen::inRange<std::uint32_t>(0, 64);
  hc.filter_bits = *rc::gen::element(64U, 256U);
  hc.seed = gc.seed;
  const HostLayout h = build_host_layout(g, hc);

  std::vector<std::unique_ptr<Translator>> modes;
  for (unsigned m = 0; m < kModeNames.size(); ++m) {
    TranslatorSetup s;
    s.mode = static_cast<Mode>(m);
    s.cache.levels = {{4096, 4, 4}};
    s.cache.memory_cycles = 100;
    s.walk_cache = {2, 4, *rc::gen::element(0U, 8U)};
    s.guest_segment = g.segment;
    s.vmm_segment = h.segment;
    modes.push_back(
        std::make_unique<Translator>(s, *g.table, h.table.get(), h.filter.get(), &h.escaped));
  }
  const auto offsets = *rc::gen::container<std::vector<std::uint64_t>>(
      200, rc::gen::inRange<std::uint64_t>(0, heap_bytes));
  for (const std::uint64_t off : offsets) {
    const Gva va{HeapLayout::kHeapBase + off};
    const auto gw = g.table->walk(va);
    RC_ASSERT(gw.present);
    const Gpa gpa{gw.page_base.value() + (va.value() & (page_bytes(gw.size) - 1))};
    const auto hw = h.table->walk(gpa);
    RC_ASSERT(hw.present);
    const std::uint64_t expected = hw.page_base.value() + (gpa.value() & (page_bytes(hw.size) - 1));
    for (unsigned m = 0; m < modes.size(); ++m) {
      const std::uint64_t got = modes[m]->translate(va).value();
      // Native modes stop at the guest-physical address.
      RC_ASSERT(got == (is_virtualized(static_cast<Mode>(m)) ? expected : gpa.value()));
    }
  }
}

TEST(TranslationLinearModel, TableFourFormulas) {
  LinearModelInputs in;
  in.native_cycles_per_walk = 30;
  in.virtualized_cycles_per_walk = 80;
  in.native_walks = 1000;
  in.f_guest_segment = 0.9;
  in.f_vmm_segment = 0.75;
  in.f_both = 0.5;
  in.delta_vmm_direct = 5;
  in.delta_guest_direct = 1;
  EXPECT_DOUBLE_EQ(*linear_model_cycles(Mode::kDirectSegment, in), 30 * 0.1 * 1000);
  EXPECT_DOUBLE_EQ(*linear_model_cycles(Mode::kDualDirect, in), 30 * 0.5 * 1000);
  EXPECT_DOUBLE_EQ(*linear_model_cycles(Mode::kVmmDirect, in), (35 * 0.75 + 80 * 0.25) * 1000);
  EXPECT_DOUBLE_EQ(*linear_model_cycles(Mode::kGuestDirect, in), (31 * 0.9 + 80 * 0.1) * 1000);
  EXPECT_FALSE(linear_model_cycles(Mode::kBaseNative, in).has_value());
}

}  // namespace
}  // namespace memvirt::translation
