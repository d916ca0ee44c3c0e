// Sweep files and their points: axis expansion (cartesian and zipped), validation of every
// point before anything runs (errors at the sweep file's line), seeds as replicate seeds.
#include "sweep/plan.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "scenario/experiments.hpp"
#include "scenario/replicates.hpp"
#include "sweep/sweep.hpp"
#include "sweep_util.hpp"

namespace memvirt::sweep {
namespace {

namespace fs = std::filesystem;
using memvirt::testing::temp_dir;
using testing::write_sweep;

// The place of the InputError that `f` throws.
template <typename F>
SourcePlace error_place(F f, std::string* message = nullptr) {
  try {
    f();
  } catch (const InputError& e) {
    if (message != nullptr) *message = e.what();
    return e.place();
  }
  ADD_FAILURE() << "no InputError";
  return {};
}

TEST(SweepPlan, CartesianAxesGiveEveryCombinationTheFirstAxisSlowest) {
  const auto dir = temp_dir();
  const std::string file = write_sweep(dir, R"(scenario: tiny.yaml
axes:
  - key: vm.boot.footprint
    values: [16MiB, 32MiB]
  - key: experiment.vms
    name: vms
    values: [1, 2, 3]
)");
  const SweepPlan plan = plan_sweep(load_sweep(file));
  ASSERT_EQ(plan.points.size(), 6U);
  ASSERT_EQ(plan.runs.size(), 6U);
  EXPECT_EQ(plan.points[0].folder, "footprint=16MiB,vms=1");
  EXPECT_EQ(plan.points[1].folder, "footprint=16MiB,vms=2");
  EXPECT_EQ(plan.points[3].folder, "footprint=32MiB,vms=1");
  EXPECT_EQ(plan.points[5].folder, "footprint=32MiB,vms=3");
  const auto& s = std::get<Scenario>(*plan.runs[5].scenario);
  EXPECT_EQ(s.vm.boot.footprint, Bytes{32ULL << 20});
  EXPECT_EQ(s.experiment.spec->as<FixedExperiment>()->vms, 3U);
  EXPECT_EQ(s.seed, 3U);  // one seed: the scenario's own
}

TEST(SweepPlan, ZippedAxisTakesItsListsTogether) {
  const auto dir = temp_dir();
  const std::string file = write_sweep(dir, R"(scenario: tiny.yaml
axes:
  - name: size
    zip:
      - {key: vm.memory, values: [256MiB, 512MiB, 1GiB]}
      - {key: vm.boot.footprint, values: [8MiB, 16MiB, 64MiB]}
      - {name: note, values: [small, medium, large]}
    labels: [s, m, l]
  - key: experiment.vms
    values: [1, 2]
)");
  const SweepSpec spec = load_sweep(file);
  const SweepPlan plan = plan_sweep(spec);
  ASSERT_EQ(plan.points.size(), 6U);
  EXPECT_EQ(plan.points[0].folder, "size=s,vms=1");
  EXPECT_EQ(plan.points[5].folder, "size=l,vms=2");
  const auto& big = std::get<Scenario>(*plan.runs[4].scenario);
  EXPECT_EQ(big.vm.memory, Bytes{1ULL << 30});
  EXPECT_EQ(big.vm.boot.footprint, Bytes{64ULL << 20});
  const auto& small = std::get<Scenario>(*plan.runs[1].scenario);
  EXPECT_EQ(small.vm.memory, Bytes{256ULL << 20});
  EXPECT_EQ(small.vm.boot.footprint, Bytes{8ULL << 20});
  EXPECT_EQ(spec.axes[0].entries[2].texts[2], "large");
}

TEST(SweepPlan, ZippedListsOfDifferentLengthsFailAtTheZip) {
  const auto dir = temp_dir();
  const std::string file = write_sweep(dir, R"(scenario: tiny.yaml
axes:
  - zip:
      - {key: vm.memory, values: [256MiB, 512MiB]}
      - {key: vm.boot.footprint, values: [8MiB, 16MiB, 64MiB]}
)");
  std::string message;
  const SourcePlace at = error_place([&] { (void)load_sweep(file); }, &message);
  EXPECT_EQ(at.file, file);
  EXPECT_EQ(at.line, 5);
  EXPECT_EQ(at.field, "axes[0].zip[1].values");
  EXPECT_NE(message.find("differ in length"), std::string::npos) << message;
}

TEST(SweepPlan, AMisspeltScenarioKeyFailsAtItsLineOfTheSweepAndNothingStarts) {
  const auto dir = temp_dir();
  const std::string file = write_sweep(dir, R"(scenario: tiny.yaml
axes:
  - key: experiment.vms
    values: [1, 2]
  - key: vm.boot.footprnt
    name: footprint
    values: [16MiB, 32MiB]
)");
  const fs::path out = dir / "out";
  SweepOptions opt;
  opt.out_dir = out.string();
  std::string message;
  const SourcePlace at = error_place([&] { (void)run_sweep(file, opt); }, &message);
  EXPECT_EQ(at.file, file);
  EXPECT_EQ(at.line, 7);  // the line of the values the key was given
  EXPECT_EQ(at.field, "vm.boot.footprnt");
  EXPECT_NE(message.find("unknown key"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(out));
}

TEST(SweepPlan, ABadValueFailsAtItsOwnLineEvenInALaterPoint) {
  const auto dir = temp_dir();
  const std::string file = write_sweep(dir, R"(scenario: tiny.yaml
axes:
  - key: vm.boot.footprint
    values:
      - 16MiB
      - 32MiB
      - 48MoB
)");
  const fs::path out = dir / "out";
  SweepOptions opt;
  opt.out_dir = out.string();
  std::string message;
  const SourcePlace at = error_place([&] { (void)run_sweep(file, opt); }, &message);
  EXPECT_EQ(at.file, file);
  EXPECT_EQ(at.line, 7);
  EXPECT_EQ(at.field, "vm.boot.footprint");
  EXPECT_NE(message.find("MoB"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(out));  // the first two points did not run either
}

TEST(SweepPlan, ASetValueThatBreaksAPointFailsAtTheSetLine) {
  const auto dir = temp_dir();
  // Valid alone; with vm.memory at 64MiB the footprint is too large.
  const std::string file = write_sweep(dir, R"(scenario: tiny.yaml
set:
  vm.boot.footprint: 100MiB
axes:
  - key: vm.memory
    values: [512MiB, 64MiB]
)");
  const SourcePlace at = error_place([&] { (void)plan_sweep(load_sweep(file)); });
  EXPECT_EQ(at.file, file);
  EXPECT_EQ(at.line, 3);
  EXPECT_EQ(at.field, "vm.boot.footprint");
}

TEST(SweepPlan, SweepFileMistakesFailWithTheirLine) {
  const auto dir = temp_dir();
  struct Case {
    std::string text;
    int line;
    std::string field;
  };
  const std::vector<Case> cases{
      {"scenario: tiny.yaml\nseeds: 2\nsummery: {aggregate: mean}\n", 3, "summery"},
      {"scenario: missing.yaml\n", 1, "scenario"},
      {"scenario: tiny.yaml\naxes:\n  - key: scenario\n    values: [tiny.yaml, nope.yaml]\n", 4,
       "axes[0].values[1]"},
      {"scenario: tiny.yaml\nseeds: 2\nsummary: {aggregate: trimmed_mean}\n", 3,
       "summary.aggregate"},
      {"scenario: tiny.yaml\naxes:\n  - key: seed\n    name: s\n    values: [1, 2, 1]\n", 5,
       "axes[0].values"},
      {"scenario: tiny.yaml\naxes:\n  - key: seed\n    values: [1, 2]\n", 4, "axes[0].values"},
      {"scenario: tiny.yaml\nresults:\n  - host_memory_gib.avg\n  - {key: run.x, nam: y}\n", 4,
       "results[1].nam"},
      {"scenario: tiny.yaml\nresults: [host_memory_gib.avg]\ntables:\n  - file: t.md\n    "
       "columns:\n      - {heading: a, cell: \"{host_memory_gib_ag:.1f}\"}\n",
       6, "tables[0].columns[0].cell"},
      {"scenario: tiny.yaml\naxes:\n  - {key: seed, name: s, values: [1, 2]}\n  - {key: vm.vcpus, "
       "values: [1, 2]}\nresults: [host_memory_gib.avg]\nplots:\n  - {file: p.png, x: s, y: "
       "host_memory_gib_avg}\n",
       7, "plots[0].series"},
  };
  for (const Case& c : cases) {
    const std::string file = write_sweep(dir, c.text);
    std::string message;
    const SourcePlace at = error_place([&] { (void)plan_sweep(load_sweep(file)); }, &message);
    EXPECT_EQ(at.line, c.line) << c.text << message;
    EXPECT_EQ(at.field, c.field) << c.text << message;
  }
}

TEST(SweepPlan, TheScenarioAxisPicksTheBaseFile) {
  const auto dir = temp_dir();
  write_sweep(dir, "");
  memvirt::testing::write_file(dir / "other.yaml",
                               "base: tiny.yaml\nname: other\nexperiment:\n  vms: 3\n");
  const std::string file = memvirt::testing::write_file(dir / "s.yaml", R"(scenario: tiny.yaml
axes:
  - key: scenario
    name: variant
    values: [tiny.yaml, other.yaml]
    labels: [tiny, other]
)");
  const SweepPlan plan = plan_sweep(load_sweep(file));
  ASSERT_EQ(plan.runs.size(), 2U);
  EXPECT_EQ(std::get<Scenario>(*plan.runs[0].scenario).name, "tiny");
  EXPECT_EQ(std::get<Scenario>(*plan.runs[1].scenario).name, "other");
  EXPECT_EQ(plan.points[1].folder, "variant=other");
}

TEST(SweepPlan, SeedsAreTheSeedsReplicatesDeriveAndEachRunSaysItsOwn) {
  const auto dir = temp_dir();
  const std::string file = write_sweep(dir, R"(scenario: tiny.yaml
axes:
  - key: experiment.vms
    values: [1, 2]
seeds: 3
)");
  const SweepPlan plan = plan_sweep(load_sweep(file));
  ASSERT_EQ(plan.runs.size(), 6U);
  for (const PlannedRun& r : plan.runs) {
    EXPECT_EQ(r.seed, replicate_seed(3, r.replicate));
    EXPECT_EQ(std::get<Scenario>(*r.scenario).seed, r.seed);
    EXPECT_NE(r.config_text.find(fmt::format("seed: {}\n", r.seed)), std::string::npos);
  }
  EXPECT_EQ(plan.runs[4].folder, "vms=2/seed-1");
  // Every run's configuration is its own.
  for (std::size_t i = 0; i < plan.runs.size(); ++i) {
    for (std::size_t j = i + 1; j < plan.runs.size(); ++j) {
      EXPECT_NE(plan.runs[i].config_hash, plan.runs[j].config_hash);
    }
  }
}

TEST(SweepPlan, SeedsBesideAScenariosOwnReplicatesFail) {
  const auto dir = temp_dir();
  const std::string file = write_sweep(dir, R"(scenario: tiny.yaml
set: {experiment.replicates: 3}
seeds: 2
)");
  const SourcePlace at = error_place([&] { (void)plan_sweep(load_sweep(file)); });
  EXPECT_EQ(at.line, 3);
  EXPECT_EQ(at.field, "seeds");
}

TEST(SweepPlan, MemoryEstimateCountsEveryGuestPage) {
  const auto dir = temp_dir();
  const std::string file = write_sweep(dir, R"(scenario: tiny.yaml
axes:
  - key: experiment.vms
    values: [1, 4]
)");
  const SweepPlan plan = plan_sweep(load_sweep(file));
  // 512 MiB guests: 131072 pages each, at 13.1 bytes, beside the process's 64 MiB.
  const auto pages = [](unsigned vms) { return 131072.0 * vms; };
  EXPECT_EQ(*plan.runs[0].memory.bytes,
            (64ULL << 20) + static_cast<std::uint64_t>(pages(1) * 13.1));
  EXPECT_EQ(*plan.runs[1].memory.bytes,
            (64ULL << 20) + static_cast<std::uint64_t>(pages(4) * 13.1));
}

// A carry search may double up to max_vms, and each trial's unconstrained run holds them all.
TEST(SweepPlan, MemoryEstimateOfACarrySearchHoldsItsLargestTrial) {
  const auto dir = temp_dir();
  const std::string file = write_sweep(dir, R"(scenario: tiny.yaml
set:
  experiment: {type: carry, vms: 2, max_vms: 12}
)");
  const SweepPlan plan = plan_sweep(load_sweep(file));
  ASSERT_TRUE(plan.runs[0].memory.bytes.has_value()) << plan.runs[0].memory.basis;
  EXPECT_EQ(*plan.runs[0].memory.bytes,
            (64ULL << 20) + static_cast<std::uint64_t>(131072.0 * 12 * 13.1));
  EXPECT_NE(plan.runs[0].memory.basis.find("carry, trials up to 12 VMs"), std::string::npos)
      << plan.runs[0].memory.basis;
}

}  // namespace
}  // namespace memvirt::sweep
