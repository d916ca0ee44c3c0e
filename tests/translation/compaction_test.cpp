// Host compaction as a process: the share of time without a VMM segment follows from the
// fragmentation rate and the compaction speed, and the translators see exactly that timeline.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.hpp"
#include "test_util.hpp"
#include "translation/experiment.hpp"
#include "translation/host_compaction.hpp"

namespace memvirt::translation {
namespace {

HostCompactionConfig bursts(double per_s, double migrate_ns, Duration wake) {
  HostCompactionConfig c;
  c.events_per_s = per_s;
  c.pages_per_event = 512;
  c.migrate_page_ns = migrate_ns;
  c.wake_interval = wake;
  return c;
}

TEST(HostCompaction, NoFragmentationNoDegradedTime) {
  const auto t = simulate_host_compaction(HostCompactionConfig{}, 1 << 20, 60e9, 1, 0);
  EXPECT_TRUE(t.degraded.empty());
  EXPECT_EQ(t.stats.degraded_share(), 0.0);
  EXPECT_EQ(t.stats.fragmentation_events, 0U);
  EXPECT_EQ(t.stats.daemon_busy_ns, 0.0);
}

TEST(HostCompaction, InitialFragmentationIsCompactedOnceAtMigrationSpeed) {
  HostCompactionConfig c;
  c.initial_fragmentation = 0.5;
  c.migrate_page_ns = 1000;
  const auto t = simulate_host_compaction(c, 1000, 1e6, 1, 0);
  ASSERT_EQ(t.degraded.size(), 1U);
  EXPECT_EQ(t.degraded[0].begin_ns, 0.0);
  EXPECT_DOUBLE_EQ(t.degraded[0].end_ns, 500 * 1000.0);  // 500 pages x 1 us
  EXPECT_EQ(t.stats.segment_builds, 1U);
  EXPECT_DOUBLE_EQ(t.stats.pages_migrated, 500.0);
  EXPECT_DOUBLE_EQ(t.stats.degraded_share(), 0.5);
}

// A daemon that starts at once is a single server: the range is dirty while it has work, so
// the degraded share is its utilisation, rate x pages per burst x cost per page.
TEST(HostCompaction, DegradedShareIsTheDaemonsUtilisationWhenItWakesAtOnce) {
  const auto c = bursts(10, 20'000, Duration{0});
  const auto t = simulate_host_compaction(c, 1 << 20, 2000e9, 7, 0);
  const double rho = 10 * 512 * 20'000e-9;  // 0.1024
  EXPECT_NEAR(t.stats.degraded_share(), rho, 0.1 * rho);
  EXPECT_NEAR(t.stats.daemon_cpu_share(), t.stats.degraded_share(), 1e-9);
  EXPECT_NEAR(static_cast<double>(t.stats.fragmentation_events), 20'000, 600);
}

TEST(HostCompaction, FasterCompactionAndRarerBurstsDegradeLess) {
  const Duration wake = Duration::millis(500);
  const double slow = simulate_host_compaction(bursts(2, 200'000, wake), 1 << 20, 600e9, 3, 0)
                          .stats.degraded_share();
  const double fast =
      simulate_host_compaction(bursts(2, 2'000, wake), 1 << 20, 600e9, 3, 0).stats.degraded_share();
  const double rare = simulate_host_compaction(bursts(0.2, 2'000, wake), 1 << 20, 600e9, 3, 0)
                          .stats.degraded_share();
  EXPECT_GT(slow, fast);
  EXPECT_GT(fast, rare);
  EXPECT_GT(rare, 0.0);
  // A daemon that checks every T leaves the range dirty from the first burst of an interval
  // to its end: a share of 1 - (1 - e^-lT) / lT, here lT = 1 (migration itself is ~0.2%).
  EXPECT_NEAR(fast, 1 - (1 - std::exp(-1.0)), 0.03);
}

TEST(HostCompaction, SameSeedSameTimeline) {
  const auto c = bursts(5, 5'000, Duration::millis(100));
  const auto a = simulate_host_compaction(c, 1 << 18, 30e9, 9, 2);
  const auto b = simulate_host_compaction(c, 1 << 18, 30e9, 9, 2);
  const auto other = simulate_host_compaction(c, 1 << 18, 30e9, 10, 2);
  ASSERT_EQ(a.degraded.size(), b.degraded.size());
  for (std::size_t i = 0; i < a.degraded.size(); ++i) {
    EXPECT_EQ(a.degraded[i].begin_ns, b.degraded[i].begin_ns);
    EXPECT_EQ(a.degraded[i].end_ns, b.degraded[i].end_ns);
  }
  EXPECT_NE(a.stats.degraded_ns, other.stats.degraded_ns);
}

const char* kScenario = R"(kind: translation
name: compaction
seed: 3
references: 200000
warmup_references: 20000
host:
  compaction: {duration: 20s, wake_interval: 100ms, pages_per_event: 512}
configurations:
  - {name: native, mode: base_native}
  - {name: dd, mode: dual_direct}
  - {name: dd-frag, mode: dual_direct, compaction: {fragmentation_events_per_s: 3, migrate_page_ns: 20000}}
  - {name: dd-frag-fast, mode: dual_direct, compaction: {fragmentation_events_per_s: 3, migrate_page_ns: 2000}}
  - {name: vd-frag, mode: vmm_direct, compaction: {fragmentation_events_per_s: 3, migrate_page_ns: 20000}}
  - {name: gd, mode: guest_direct}
workloads:
  - {name: gups, type: gups, log2_words: 20}
)";

TEST(HostCompactionScenario, TranslatorsDegradeForTheSimulatedShare) {
  const auto dir = memvirt::testing::temp_dir();
  const auto file = memvirt::testing::write_file(dir / "c.yaml", kScenario);
  const TranslationScenario s = load_translation_scenario(file, {});
  const auto r = run_translation(s);
  const auto& w = r[0];
  const auto& dd = w.configs[1];
  const auto& frag = w.configs[2];
  const auto& fast = w.configs[3];
  const auto& vd = w.configs[4];
  ASSERT_TRUE(dd.compaction && frag.compaction && fast.compaction && vd.compaction);
  EXPECT_FALSE(w.configs[0].compaction);  // no VMM segment, no process
  EXPECT_FALSE(w.configs[5].compaction);
  EXPECT_EQ(dd.compaction->degraded_ns, 0.0);
  EXPECT_EQ(dd.degraded_references, 0U);

  const double share = frag.compaction->degraded_share();
  EXPECT_GT(share, 0.02);
  EXPECT_NEAR(
      static_cast<double>(frag.degraded_references) / static_cast<double>(frag.stats.references),
      share, 1e-3);
  EXPECT_GT(share, fast.compaction->degraded_share());
  // Same host events for every configuration of a workload.
  EXPECT_EQ(frag.compaction->fragmentation_events, vd.compaction->fragmentation_events);
  EXPECT_DOUBLE_EQ(vd.compaction->degraded_ns, frag.compaction->degraded_ns);
  // Without its VMM segment Dual Direct walks like Guest Direct.
  EXPECT_GT(frag.stats.walks, dd.stats.walks);
  EXPECT_GT(frag.degraded_walks, frag.stats.walks / 2);
  EXPECT_GT(frag.degraded_l1_misses, 0U);
}

TEST(HostCompactionScenario, BadValueNamesItsField) {
  const auto dir = memvirt::testing::temp_dir();
  std::string text = kScenario;
  text.replace(text.find("migrate_page_ns: 2000}"), 22, "migrate_page_ns: 0}");
  const auto file = memvirt::testing::write_file(dir / "bad.yaml", text);
  try {
    load_translation_scenario(file, {});
    FAIL() << "accepted a zero migration cost";
  } catch (const InputError& e) {
    EXPECT_EQ(e.place().file, file);
    EXPECT_EQ(e.place().line, 12);
    EXPECT_EQ(e.place().field, "configurations[3].compaction.migrate_page_ns");
  }
  text = kScenario;
  text.replace(text.find("pages_per_event: 512"), 20, "pages_per_evnt: 512");
  const auto file2 = memvirt::testing::write_file(dir / "bad2.yaml", text);
  try {
    load_translation_scenario(file2, {});
    FAIL() << "accepted an unknown key";
  } catch (const InputError& e) {
    EXPECT_EQ(e.place().line, 7);
    EXPECT_EQ(e.place().field, "host.compaction.pages_per_evnt");
  }
}

}  // namespace
}  // namespace memvirt::translation
