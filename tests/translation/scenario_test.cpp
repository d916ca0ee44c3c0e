// Translation scenarios end to end: determinism, bad keys, and the shipped scenario files.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "test_util.hpp"
#include "translation/experiment.hpp"
#include "translation/report.hpp"
#include "translation/run.hpp"

namespace memvirt::translation {
namespace {

const char* kSmall = R"(kind: translation
name: tiny
seed: 5
references: 60000
warmup_references: 5000
configurations:
  - {name: native, mode: base_native}
  - {name: nested, mode: base_virtualized}
  - {name: ds, mode: direct_segment}
  - {name: dd, mode: dual_direct}
  - {name: dd-clean, mode: dual_direct, escape_filter: false}
  - {name: vd, mode: vmm_direct}
  - {name: gd, mode: guest_direct}
workloads:
  - {name: gups, type: gups, log2_words: 18}
  - {name: bfs, type: graph500, scale: 10}
  - {name: kv, type: memcached, items: 5000}
  - {name: cg, type: npb_cg, na: 500, nonzer: 5}
)";

std::string run_json(const std::string& file) {
  const TranslationScenario s = load_translation_scenario(file, {});
  return translation_results_json(s, run_translation(s)).dump(2);
}

TEST(TranslationScenario, SameSeedGivesIdenticalResults) {
  const auto dir = memvirt::testing::temp_dir();
  const auto file = memvirt::testing::write_file(dir / "tiny.yaml", kSmall);
  EXPECT_TRUE(is_translation_scenario(file));
  const std::string a = run_json(file);
  EXPECT_EQ(a, run_json(file));
  EXPECT_NE(a.find("\"experiment\": \"translation\""), std::string::npos);
}

TEST(TranslationScenario, SegmentsRemoveWalksAndNestedCostsMore) {
  const auto dir = memvirt::testing::temp_dir();
  const auto file = memvirt::testing::write_file(dir / "tiny.yaml", kSmall);
  const TranslationScenario s = load_translation_scenario(file, {});
  const auto r = run_translation(s);
  const auto& gups = r[0];
  const auto walks = [&](std::size_t i) { return gups.configs[i].stats.walks; };
  EXPECT_GT(walks(0), 1000U);
  EXPECT_EQ(walks(1), walks(0));        // same TLB reach, the 2D walk only costs more
  EXPECT_EQ(walks(2), 0U);              // direct segment
  EXPECT_LT(walks(3), walks(0) / 100);  // dual direct: escapes and false positives only
  EXPECT_EQ(walks(4), 0U);
  EXPECT_GT(derive(gups, gups.configs[1]).cycles_per_miss,
            derive(gups, gups.configs[0]).cycles_per_miss);
  EXPECT_TRUE(gups.configs[5].linear_model_cycles.has_value());
}

TEST(TranslationScenario, UnknownKeyNamesFileAndLine) {
  const auto dir = memvirt::testing::temp_dir();
  std::string text = kSmall;
  text += "mmu:\n  tlb:\n    l1_4k: {entries: 64, wayz: 4}\n";
  const auto file = memvirt::testing::write_file(dir / "bad.yaml", text);
  try {
    load_translation_scenario(file, {});
    FAIL() << "accepted an unknown key";
  } catch (const InputError& e) {
    EXPECT_EQ(e.place().file, file);
    EXPECT_EQ(e.place().line, 21);
    EXPECT_EQ(e.place().field, "mmu.tlb.l1_4k.wayz");
  }
}

TEST(TranslationScenario, BadPageSizeIsAnInputError) {
  const auto dir = memvirt::testing::temp_dir();
  std::string text = kSmall;
  text.replace(text.find("mode: base_native}"), 18, "mode: base_native, guest_pages: 8KiB}");
  const auto file = memvirt::testing::write_file(dir / "bad.yaml", text);
  try {
    load_translation_scenario(file, {});
    FAIL() << "accepted 8 KiB pages";
  } catch (const InputError& e) {
    EXPECT_EQ(e.place().line, 7);
    EXPECT_EQ(e.place().field, "configurations[0].guest_pages");
  }
}

TEST(TranslationScenario, ShippedScenariosLoad) {
  for (const char* name : {"scenarios/seed004-bigmemory.yaml", "scenarios/seed004-contiguity.yaml",
                           "scenarios/seed004-trace.yaml", "scenarios/seed004-footprint.yaml"}) {
    const std::string file = memvirt::testing::source_path(name);
    EXPECT_TRUE(is_translation_scenario(file)) << name;
    EXPECT_NO_THROW(load_translation_scenario(file, {})) << name;
  }
}

}  // namespace
}  // namespace memvirt::translation
