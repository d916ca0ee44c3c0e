#include "scenario/scenario.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lab/lab_config.hpp"
#include "report/report.hpp"
#include "scenario/experiment.hpp"
#include "scenario/experiments.hpp"
#include "test_util.hpp"
#include "translation/experiment.hpp"
#include "translation/run.hpp"

namespace memvirt {
namespace {

namespace fs = std::filesystem;

using testing::temp_dir;
using testing::with_source_profile;
using testing::write_file;

const char* kSmall = R"(name: small
seed: 3
calibration: profiles/default.yaml
host:
  memory: 8GiB
  vm_budget: 3GiB
vm:
  memory: 512MiB
  boot: {footprint: 32MiB, shared_fraction: 0.5}
  workloads:
    - type: periodic_alloc
      period: 10min
      amount: {dist: constant, value: 256MiB}
      mean_in_use: 32MiB
experiment:
  type: fixed
  vms: 6
  duration: 1h
  warmup: 10min
  sample_interval: 30s
  checks: cheap
)";

std::string small_scenario(const fs::path& dir) {
  return write_file(dir / "small.yaml", with_source_profile(kSmall));
}

TEST(Scenario, SameSeedGivesIdenticalResults) {
  const fs::path dir = temp_dir();
  const Scenario s = load_scenario(small_scenario(dir));
  const std::string a = results_json(s, run_experiment(s)).dump();
  const std::string b = results_json(s, run_experiment(s)).dump();
  EXPECT_EQ(a, b);
  const Scenario other = load_scenario(small_scenario(dir), {"seed=4"});
  EXPECT_NE(a, results_json(other, run_experiment(other)).dump());
}

TEST(Scenario, PeriodicAllocAveragesItsMeanInUse) {
  // One VM, one long run: the time-averaged memory in use beyond the boot footprint comes
  // out at mean_in_use (32 MiB) although each period touches 256 MiB.
  const fs::path dir = temp_dir();
  const Scenario s = load_scenario(small_scenario(dir),
                                   {"experiment.vms=1", "experiment.duration=5h",
                                    "experiment.sample_interval=5s", "experiment.checks=cheap"});
  const ExperimentResult r = run_experiment(s);
  const auto& rows = r.run.series.rows();
  const auto& cols = r.run.series.columns();
  const auto in_use_col = static_cast<std::size_t>(
      std::find(cols.begin(), cols.end(), "guest_in_use_gib") - cols.begin());
  double sum = 0;
  std::size_t n = 0;
  for (const auto& row : rows) {
    if (row[0] < 600) continue;
    sum += row[in_use_col];
    ++n;
  }
  const double mean_mib = sum / static_cast<double>(n) * 1024;
  // In use = footprint (32 MiB) + program's mean (32 MiB) + a little kernel slack.
  EXPECT_NEAR(mean_mib - 32, 32, 3);
  EXPECT_GE(r.run.workload_cycles, 28U);
}

TEST(Scenario, DensityIsTheLargestCountWithinBudget) {
  const fs::path dir = temp_dir();
  const Scenario s =
      load_scenario(small_scenario(dir),
                    {"experiment.type=density", "experiment.checks=cheap", "experiment.vms=0"});
  const ExperimentResult r = run_experiment(s);
  ASSERT_GT(r.vms, 0U);
  bool saw_next_fail = false;
  ASSERT_TRUE(r.search.has_value());
  for (const auto& t : *r.search) {
    if (t.vms <= r.vms) {
      EXPECT_TRUE(t.fits) << t.vms;
    }
    if (t.vms == r.vms + 1) {
      EXPECT_FALSE(t.fits);
      saw_next_fail = true;
    }
  }
  EXPECT_TRUE(saw_next_fail);
  EXPECT_LE(r.run.host_peak_gib, 3.0);
  // Each VM touches its footprint plus one period's 256 MiB: (3 GiB) / 288 MiB = 10.
  EXPECT_EQ(r.vms, 10U);
}

TEST(Scenario, WritesTheThreeOutputs) {
  const fs::path dir = temp_dir();
  // Full invariant checks (every table walked) at every sample of this short run.
  const Scenario s =
      load_scenario(small_scenario(dir), {"experiment.duration=20min", "experiment.checks=full"});
  const ExperimentResult r = run_experiment(s);
  write_outputs((dir / "out").string(), s, r);
  for (const char* f : {"config.yaml", "results.json", "timeseries.csv"}) {
    EXPECT_TRUE(fs::exists(dir / "out" / f)) << f;
  }
  const auto j = nlohmann::json::parse(std::ifstream(dir / "out" / "results.json"));
  for (const char* k : {"experiment", "vms", "host_memory_gib", "cpu_percent"})
    EXPECT_TRUE(j.contains(k)) << k;
  for (const char* k : {"min", "avg", "max"}) EXPECT_TRUE(j["host_memory_gib"].contains(k));
  EXPECT_EQ(j["vms"], 6);
  // The effective configuration is itself a valid scenario that reproduces the run.
  const Scenario again = load_scenario((dir / "out" / "config.yaml").string());
  EXPECT_EQ(results_json(again, run_experiment(again)).dump(), results_json(s, r).dump());
}

TEST(Scenario, CommandLineRunIsByteIdenticalTwice) {
  const char* bin = std::getenv("MEMVIRT_BIN");
  if (bin == nullptr) GTEST_SKIP() << "MEMVIRT_BIN not set: run this test through ctest";
  const fs::path dir = temp_dir();
  const std::string sc = small_scenario(dir);
  for (const char* out : {"a", "b"}) {
    const std::string cmd = std::string(bin) + " run -q " + sc +
                            " -p experiment.duration=20min -o " + (dir / out).string() +
                            " > /dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  EXPECT_EQ(testing::whole_file(dir / "a" / "results.json"),
            testing::whole_file(dir / "b" / "results.json"));
  EXPECT_EQ(testing::whole_file(dir / "a" / "timeseries.csv"),
            testing::whole_file(dir / "b" / "timeseries.csv"));
}

struct BadCase {
  const char* name;
  const char* replace;  // text in kSmall to replace
  const char* with;
  const char* expect;  // expected in the message: "file:line: field"
};

void PrintTo(const BadCase& c, std::ostream* os) {
  *os << c.name;
}

class ScenarioErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ScenarioErrors, NameFileLineAndField) {
  const BadCase& c = GetParam();
  const fs::path dir = temp_dir();
  std::string text = with_source_profile(kSmall);
  const auto at = text.find(c.replace);
  ASSERT_NE(at, std::string::npos) << c.replace;
  text.replace(at, std::string(c.replace).size(), c.with);
  const std::string file = write_file(dir / "bad.yaml", text);
  try {
    load_scenario(file);
    FAIL() << "accepted: " << c.name;
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ScenarioErrors,
    ::testing::Values(
        BadCase{"unknown_key", "  vm_budget: 3GiB", "  vm_budgett: 3GiB",
                "bad.yaml:6: host.vm_budgett: unknown key"},
        BadCase{"bad_unit", "memory: 8GiB", "memory: 8Gb",
                "bad.yaml:5: host.memory: '8Gb' has unknown size unit"},
        BadCase{"negative", "memory: 512MiB", "memory: -512MiB",
                "bad.yaml:8: vm.memory: '-512MiB' is negative"},
        BadCase{"impossible", "memory: 512MiB", "memory: 16GiB",
                "bad.yaml:8: vm.memory: exceeds host memory"},
        BadCase{"budget", "vm_budget: 3GiB", "vm_budget: 9GiB",
                "bad.yaml:6: host.vm_budget: exceeds host memory"},
        BadCase{"footprint", "footprint: 32MiB", "footprint: 1GiB",
                "bad.yaml:9: vm.boot.footprint: must be below guest memory"},
        BadCase{"fraction", "shared_fraction: 0.5", "shared_fraction: 1.5",
                "vm.boot.shared_fraction: 1.5 is out of range"},
        BadCase{"workload_type", "type: periodic_alloc", "type: periodic",
                "bad.yaml:11: vm.workloads[0].type: 'periodic' is not one of"},
        BadCase{"duration", "duration: 1h", "duration: 1 hour",
                "bad.yaml:18: experiment.duration: '1 hour' has unknown time unit"},
        BadCase{"experiment", "type: fixed", "type: dense",
                "bad.yaml:16: experiment.type: 'dense' is not one of: fixed, density"},
        BadCase{"vms", "vms: 6", "vms: 0", "bad.yaml:17: experiment.vms: 0 is out of range"},
        BadCase{"hold_and_mean", "mean_in_use: 32MiB", "mean_in_use: 32MiB\n      hold: 1min",
                "vm.workloads[0]: give exactly one of"},
        BadCase{"mean_too_big", "mean_in_use: 32MiB", "mean_in_use: 1GiB",
                "vm.workloads[0].mean_in_use: exceeds the mean amount"},
        BadCase{"profile", "calibration: ", "calibration: nowhere.yaml #",
                "bad.yaml:3: calibration: 'nowhere.yaml' not found"},
        BadCase{"not_a_map", "  boot: {footprint: 32MiB, shared_fraction: 0.5}", "  boot: 7",
                "bad.yaml:9: vm.boot: expected a map"},
        BadCase{"syntax", "workloads:", "workloads: [", "bad.yaml:"},
        BadCase{"swap_without_disk", "  boot: {", "  kernel: {swap: 1GiB}\n  boot: {",
                "bad.yaml:8: vm.disk: must be larger than kernel.swap"},
        BadCase{"dirty_limits", "  boot: {",
                "  kernel: {dirty_background_ratio: 30, dirty_ratio: 20}\n  boot: {",
                "bad.yaml:9: vm.kernel.dirty_background_ratio: must be below dirty_ratio"},
        BadCase{"lru_start", "  boot: {", "  kernel: {anon_lru_start: middle}\n  boot: {",
                "bad.yaml:9: vm.kernel.anon_lru_start: 'middle' is not one of"},
        BadCase{"file_reader_without_disk", "    - type: periodic_alloc",
                "    - type: file_reader\n      size: 64MiB\n    - type: periodic_alloc",
                "bad.yaml:11: vm.workloads[0].type: file_reader needs a disk"},
        BadCase{"file_reader_pattern", "    - type: periodic_alloc",
                "    - type: file_reader\n      size: 64MiB\n      pattern: zigzag\n"
                "    - type: periodic_alloc",
                "bad.yaml:13: vm.workloads[0].pattern: 'zigzag' is not one of"},
        BadCase{"disk_bandwidth", "  vm_budget: 3GiB", "  vm_budget: 3GiB\n  disk: {bandwidth: 0B}",
                "bad.yaml:7: host.disk.bandwidth"},
        BadCase{"kernel_build_without_disk", "    - type: periodic_alloc",
                "    - type: kernel_build\n    - type: periodic_alloc",
                "bad.yaml:11: vm.workloads[0].type: kernel_build needs a disk"},
        BadCase{"kernel_build_small_disk", "  workloads:\n    - type: periodic_alloc",
                "  disk: 64MiB\n  workloads:\n    - type: kernel_build\n    - type: periodic_alloc",
                "bad.yaml:10: vm.disk: leaves 64 MiB for the filesystem"},
        BadCase{"kernel_build_jobs", "    - type: periodic_alloc",
                "    - type: kernel_build\n      jobs: 0\n    - type: periodic_alloc",
                "bad.yaml:12: vm.workloads[0].jobs: 0 is out of range"},
        BadCase{"kernel_build_anon_fraction", "    - type: periodic_alloc",
                "    - type: kernel_build\n      anon_fraction: 1.5\n    - type: periodic_alloc",
                "bad.yaml:12: vm.workloads[0].anon_fraction: 1.5 is out of range"},
        BadCase{"kernel_build_reuse_negative", "    - type: periodic_alloc",
                "    - type: kernel_build\n      reuse: -0.1\n    - type: periodic_alloc",
                "bad.yaml:12: vm.workloads[0].reuse: -0.1 is out of range"},
        BadCase{"kernel_build_reuse_above_one", "    - type: periodic_alloc",
                "    - type: kernel_build\n      reuse: 1.5\n    - type: periodic_alloc",
                "bad.yaml:12: vm.workloads[0].reuse: 1.5 is out of range"},
        BadCase{"kernel_build_request", "    - type: periodic_alloc",
                "    - type: kernel_build\n      request: 100\n    - type: periodic_alloc",
                "bad.yaml:12: vm.workloads[0].request: must be at least one page"},
        BadCase{"kernel_build_profile", "    - type: periodic_alloc",
                "    - type: kernel_build\n      profile: nowhere.json\n    - type: periodic_alloc",
                "bad.yaml:12: vm.workloads[0].profile: 'nowhere.json' not found"},
        BadCase{"hypervisor", "  vm_budget: 3GiB", "  vm_budget: 3GiB\n  hypervisor: esx",
                "bad.yaml:7: host.hypervisor: 'esx' is not one of"},
        BadCase{"dom0_on_kvm", "  vm_budget: 3GiB", "  vm_budget: 3GiB\n  dom0_memory: 256MiB",
                "bad.yaml:7: host.dom0_memory: only with hypervisor: xen"},
        BadCase{"dom0_too_big", "  vm_budget: 3GiB",
                "  vm_budget: 3GiB\n  hypervisor: xen\n  dom0_memory: 8GiB",
                "bad.yaml:8: host.dom0_memory: must be below host memory"},
        BadCase{"max_memory_on_kvm", "  memory: 512MiB", "  memory: 512MiB\n  max_memory: 1GiB",
                "bad.yaml:9: vm.max_memory: only with host.hypervisor: xen"},
        BadCase{"max_memory_below_memory", "  vm_budget: 3GiB\nvm:\n  memory: 512MiB",
                "  vm_budget: 3GiB\n  hypervisor: xen\nvm:\n  memory: 512MiB\n  max_memory: 256MiB",
                "bad.yaml:10: vm.max_memory: must be at least vm.memory"},
        BadCase{"selfballoon_on_kvm", "experiment:", "reclaim:\n  - impl: selfballoon\nexperiment:",
                "bad.yaml:16: reclaim[0].impl: selfballoon runs on Xen"},
        BadCase{"selfballoon_driver", "  vm_budget: 3GiB",
                "  vm_budget: 3GiB\n  hypervisor: xen\nreclaim:\n  - impl: selfballoon\n"
                "    driver: balloond",
                "bad.yaml:10: reclaim[0].driver: 'balloond' is not one of"},
        BadCase{"selfballoon_reserved_xenballoond", "  vm_budget: 3GiB",
                "  vm_budget: 3GiB\n  hypervisor: xen\nreclaim:\n  - impl: selfballoon\n"
                "    driver: xenballoond\n    reserved: 10MiB",
                "bad.yaml:11: reclaim[0].reserved: only with driver: kernel"},
        BadCase{"selfballoon_selfshrinking_xenballoond", "  vm_budget: 3GiB",
                "  vm_budget: 3GiB\n  hypervisor: xen\nreclaim:\n  - impl: selfballoon\n"
                "    driver: xenballoond\n    selfshrinking: true",
                "bad.yaml:11: reclaim[0].selfshrinking: only with driver: kernel"},
        BadCase{"selfballoon_frontswap_hysteresis", "  vm_budget: 3GiB",
                "  vm_budget: 3GiB\n  hypervisor: xen\nreclaim:\n  - impl: selfballoon\n"
                "    frontswap_hysteresis: 0",
                "bad.yaml:10: reclaim[0].frontswap_hysteresis:"},
        BadCase{"selfballoon_frontswap_inertia", "  vm_budget: 3GiB",
                "  vm_budget: 3GiB\n  hypervisor: xen\nreclaim:\n  - impl: selfballoon\n"
                "    frontswap_inertia: soon",
                "bad.yaml:10: reclaim[0].frontswap_inertia:"},
        BadCase{"tmem_compressor", "  vm_budget: 3GiB",
                "  vm_budget: 3GiB\n  hypervisor: xen\nreclaim:\n  - impl: tmem\n"
                "    compressor: lzma",
                "bad.yaml:10: reclaim[0].compressor: 'lzma' is not one of"},
        BadCase{"tmem_profile", "  vm_budget: 3GiB",
                "  vm_budget: 3GiB\n  hypervisor: xen\nreclaim:\n  - impl: tmem\n"
                "    compress: true\n    compression_profile: nowhere.json",
                "bad.yaml:11: reclaim[0].compression_profile: 'nowhere.json' not found"}),
    [](const auto& test_case) { return std::string(test_case.param.name); });

TEST(ScenarioErrors, MissingFileIsNamed) {
  try {
    load_scenario("/nonexistent/x.yaml");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.yaml: cannot open file"),
              std::string::npos);
  }
}

TEST(Scenario, ShippedScenariosLoad) {
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(testing::source_path("scenarios"))) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    if (is_translation_scenario(entry.path().string())) {
      EXPECT_NO_THROW(translation::load_translation_scenario(entry.path().string(), {}))
          << entry.path();
    } else {
      EXPECT_NO_THROW(load_scenario(entry.path().string(), {}, {lab_extension()})) << entry.path();
    }
  }
  EXPECT_GT(files, 20U);
}

// A scenario on a base: the same effective configuration as the one file with the values of
// both, and its config.yaml a scenario of its own.
TEST(ScenarioBase, ComposesToTheScenarioWrittenOut) {
  const fs::path dir = temp_dir();
  fs::create_directories(dir / "family");
  small_scenario(dir / "family");
  const std::string derived = write_file(dir / "family" / "derived.yaml",
                                         "base: small.yaml\n"
                                         "experiment.vms: 2\n"
                                         "vm:\n"
                                         "  boot: {footprint: 16MiB}\n"
                                         "  workloads.0.period: 5min\n");
  std::string whole = with_source_profile(kSmall);
  whole.replace(whole.find("name: small"), 11, "name: derived");
  whole.replace(whole.find("vms: 6"), 6, "vms: 2");
  whole.replace(whole.find("footprint: 32MiB"), 16, "footprint: 16MiB");
  whole.replace(whole.find("period: 10min"), 13, "period: 5min");
  const std::string standalone = write_file(dir / "derived.yaml", whole);

  const Scenario a = load_scenario(derived, {"experiment.duration=20min"});
  const Scenario b = load_scenario(standalone, {"experiment.duration=20min"});
  EXPECT_EQ(a.name, "derived");
  YAML::Emitter ea;
  ea << a.effective;
  YAML::Emitter eb;
  eb << b.effective;
  EXPECT_EQ(std::string(ea.c_str()), std::string(eb.c_str()));
  EXPECT_EQ(std::string(ea.c_str()).find("base:"), std::string::npos);

  const ExperimentResult r = run_experiment(a);
  write_outputs((dir / "out").string(), a, r);
  const Scenario again = load_scenario((dir / "out" / "config.yaml").string());
  EXPECT_EQ(results_json(again, run_experiment(again)).dump(), results_json(a, r).dump());
  EXPECT_EQ(results_json(b, run_experiment(b)).dump(), results_json(a, r).dump());
}

TEST(ScenarioBase, ErrorsAndRelativeFilesBelongToTheFileThatWroteThem) {
  const fs::path dir = temp_dir();
  fs::create_directories(dir / "common");
  // The base names its profile beside itself.
  fs::copy_file(testing::source_path("profiles/default.yaml"), dir / "common" / "costs.yaml",
                fs::copy_options::overwrite_existing);
  std::string base = kSmall;
  base.replace(base.find("profiles/default.yaml"), 21, "costs.yaml");
  base.replace(base.find("memory: 512MiB"), 14, "memory: 512MiB\n  vcpus: many");
  write_file(dir / "common" / "small.yaml", base);
  const std::string derived =
      write_file(dir / "derived.yaml", "base: common/small.yaml\nexperiment:\n  vms: 0\n");
  try {
    load_scenario(derived);
    FAIL() << "accepted";
  } catch (const InputError& e) {
    // The first bad value read is the base's.
    EXPECT_NE(std::string(e.what()).find("common/small.yaml:9: vm.vcpus:"), std::string::npos)
        << e.what();
  }
  const std::string bad_line = "\n  vcpus: many";
  base.replace(base.find(bad_line), bad_line.size(), "");
  write_file(dir / "common" / "small.yaml", base);
  try {
    load_scenario(derived);
    FAIL() << "accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("derived.yaml:3: experiment.vms: 0 is out of range"),
              std::string::npos)
        << e.what();
  }
  const Scenario s = load_scenario(derived, {"experiment.vms=2"});
  // Found beside the base file that names it, not beside the derived one.
  EXPECT_EQ(std::filesystem::path(s.profile_file).parent_path().filename(), "common");
  EXPECT_EQ(s.experiment.spec->as<FixedExperiment>()->vms, 2U);
  EXPECT_EQ(s.name, "derived");
}

}  // namespace
}  // namespace memvirt

namespace memvirt {
namespace {

TEST(ScenarioDocs, TheCompleteExampleInDocsLoads) {
  const std::string doc = testing::whole_file(testing::source_path("docs/scenarios.md"));
  const auto start = doc.find("```yaml\n");
  ASSERT_NE(start, std::string::npos);
  const auto end = doc.find("```", start + 8);
  const std::string text = with_source_profile(doc.substr(start + 8, end - start - 8));
  const fs::path dir = temp_dir();
  const Scenario s = load_scenario(write_file(dir / "doc.yaml", text));
  EXPECT_EQ(s.vm.workloads.size(), 2U);
  EXPECT_EQ(s.host.vm_budget, Bytes{230ULL << 30});
}

}  // namespace
}  // namespace memvirt
