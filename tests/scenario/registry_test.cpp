// The pluggable families: names come from their registries, nothing falls back to a default,
// typed configurations are readable through the spec, and stats land at the entry's place.
#include "core/registry.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "reclaim/balloon.hpp"
#include "reclaim/ksm.hpp"
#include "reclaim/mechanism.hpp"
#include "report/report.hpp"
#include "scenario/experiments.hpp"
#include "scenario/scenario.hpp"
#include "test_util.hpp"
#include "workload/memhog.hpp"
#include "workload/workload.hpp"

namespace memvirt {
namespace {

namespace fs = std::filesystem;
using testing::temp_dir;
using testing::with_source_profile;
using testing::write_file;

// A scenario with the given `reclaim:`, `workloads:` and experiment lines.
std::string scenario_text(const std::string& reclaim, const std::string& workload,
                          const std::string& experiment = "{type: fixed, vms: 2, duration: 2min}") {
  return with_source_profile("host: {memory: 4GiB}\nvm:\n  memory: 512MiB\n  workloads:\n    - " +
                             workload + "\nreclaim: " + reclaim + "\nexperiment: " + experiment +
                             "\n");
}

std::string load_error(const std::string& text) {
  const fs::path dir = temp_dir();
  try {
    load_scenario(write_file(dir / "s.yaml", text));
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Registry, ParsesOnlyRegisteredNamesAndListsThemInTheError) {
  const MechanismRegistry r = make_mechanism_registry();
  for (const char* name : {"ppr", "ksm", "pageone", "reporting", "balloon", "hinting"}) {
    EXPECT_TRUE(r.contains(name)) << name;
  }
  const std::string e =
      load_error(scenario_text("[{impl: pageon}]", "{type: memhog, size: 64MiB}"));
  EXPECT_NE(e.find("reclaim[0].impl: 'pageon' is not one of: ppr, ksm, pageone, reporting, "
                   "balloon, hinting"),
            std::string::npos)
      << e;
}

TEST(Registry, AMissingNameIsAnErrorNotADefault) {
  // An entry without `impl` once became PageONE, and a workload without `type` memhog.
  const std::string m =
      load_error(scenario_text("[{reclaim_period: 5s}]", "{type: memhog, size: 64MiB}"));
  EXPECT_NE(m.find("reclaim[0]: missing 'impl'"), std::string::npos) << m;
  const std::string w = load_error(scenario_text("[]", "{size: 64MiB}"));
  EXPECT_NE(w.find("vm.workloads[0]: missing 'type'"), std::string::npos) << w;
  const std::string x = load_error(scenario_text("[]", "{type: memhogg, size: 64MiB}"));
  EXPECT_NE(x.find("vm.workloads[0].type: 'memhogg' is not one of: periodic_alloc, memhog"),
            std::string::npos)
      << x;
}

TEST(Registry, ANameRegisteredTwiceIsAProgrammingError) {
  MechanismRegistry r("mechanism", "impl");
  r.add<Ksm>("ksm");
  EXPECT_THROW(r.add<Ksm>("ksm"), std::logic_error);
  EXPECT_EQ(r.names(), std::vector<std::string>{"ksm"});
}

TEST(Registry, TheTypedConfigurationIsReadableThroughTheSpec) {
  const fs::path dir = temp_dir();
  const Scenario s = load_scenario(write_file(
      dir / "s.yaml",
      scenario_text("[{impl: ksm, pages_to_scan: 321}]", "{type: memhog, size: 64MiB, then: free}",
                    "{type: density, vms: 3}")));
  ASSERT_EQ(s.reclaim.size(), 1U);
  EXPECT_EQ(s.reclaim[0]->name(), "ksm");
  ASSERT_NE(s.reclaim[0]->as<Ksm>(), nullptr);
  EXPECT_EQ(s.reclaim[0]->as<Ksm>()->pages_to_scan, 321U);
  EXPECT_EQ(s.reclaim[0]->as<Balloon>(), nullptr);
  ASSERT_NE(s.vm.workloads[0]->as<Memhog>(), nullptr);
  EXPECT_FALSE(s.vm.workloads[0]->as<Memhog>()->exit_after);
  EXPECT_EQ(s.experiment.spec->name(), "density");
  EXPECT_EQ(s.experiment.spec->as<FixedExperiment>(), nullptr);
  ASSERT_NE(s.experiment.spec->as<DensityExperiment>(), nullptr);
  EXPECT_EQ(s.experiment.spec->as<DensityExperiment>()->vms, 3U);
}

TEST(StatsTree, TwoEntriesOfOneMechanismKeepTheirOwnStats) {
  // Two balloons with different targets: each entry's stats stay at its own place.
  const fs::path dir = temp_dir();
  const Scenario s = load_scenario(write_file(
      dir / "s.yaml", scenario_text("[{impl: balloon, targets: [{at: 10s, size: 64MiB}]},"
                                    " {impl: balloon, targets: [{at: 10s, size: 128MiB}]}]",
                                    "{type: memhog, size: 64MiB, then: free}")));
  const ExperimentResult r = run_experiment(s);
  const nlohmann::json j = results_json(s, r);
  ASSERT_TRUE(j.contains("stats")) << j.dump();
  const auto& reclaim = j["stats"]["reclaim"];
  ASSERT_EQ(reclaim.size(), 2U) << j["stats"].dump();
  EXPECT_EQ(reclaim[0]["impl"], "balloon");
  EXPECT_EQ(reclaim[1]["impl"], "balloon");
  // Both drivers inflate toward the larger of their VM's targets as they each see it; what
  // matters here is that both entries are there with their own counters.
  EXPECT_GT(reclaim[0]["pages_inflated"].get<double>(), 0);
  EXPECT_GT(reclaim[1]["pages_inflated"].get<double>(), 0);
  EXPECT_FALSE(j.contains("mechanisms"));
  // The guest kernels' and the programs' counters are reported too.
  EXPECT_GT(j["stats"]["vm"]["kernel"]["pages_allocated"].get<double>(), 0);
  EXPECT_EQ(j["stats"]["vm"]["workloads"][0]["type"], "memhog");
  EXPECT_GT(j["stats"]["vm"]["workloads"][0]["pages_touched"].get<double>(), 0);
  EXPECT_GT(j["stats"]["host"]["faults_in"].get<double>(), 0);
}

TEST(StatsTree, MechanismColumnsAreNamedByTheirPlace) {
  const fs::path dir = temp_dir();
  const Scenario s =
      load_scenario(write_file(dir / "s.yaml", scenario_text("[{impl: reporting, order: 0}]",
                                                             "{type: memhog, size: 64MiB}")));
  const ExperimentResult r = run_experiment(s);
  const auto& cols = r.run.series.columns();
  const auto it = std::find(cols.begin(), cols.end(), "reclaim[0].pages_reported");
  ASSERT_NE(it, cols.end());
  const auto col = static_cast<std::size_t>(it - cols.begin());
  ASSERT_FALSE(r.run.series.rows().empty());
  // Reported pages only grow, and the guest's freed memory gets reported.
  double last = 0;
  for (const auto& row : r.run.series.rows()) {
    ASSERT_EQ(row.size(), cols.size());
    EXPECT_GE(row[col], last);
    last = row[col];
  }
  EXPECT_GT(last, 0);
}

}  // namespace
}  // namespace memvirt
