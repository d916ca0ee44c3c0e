// The launch experiment (seed 001's procedure) and the page fault benchmarks (seed 002's),
// on small guests.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/error.hpp"
#include "scenario/experiment.hpp"
#include "scenario/scenario.hpp"
#include "test_util.hpp"

namespace memvirt {
namespace {

namespace fs = std::filesystem;
using testing::temp_dir;
using testing::with_source_profile;
using testing::write_file;

// 256 MiB guests whose program touches 192 MiB and exits, on a host of 1 GiB.
const char* kLaunch = R"(name: launch
seed: 1
calibration: profiles/default.yaml
host: {memory: 1GiB}
vm:
  memory: 256MiB
  boot: {footprint: 16MiB, time: 5s}
  workloads:
    - {type: memhog, size: 192MiB, then: exit}
reclaim: []
experiment: {type: launch, max_vms: 10, duration: 30min, sample_interval: 5s}
)";

ExperimentResult run_text(const std::string& text, const std::vector<std::string>& overrides = {}) {
  const fs::path dir = temp_dir();
  const Scenario s =
      load_scenario(write_file(dir / "s.yaml", with_source_profile(text)), overrides);
  return run_experiment(s);
}

std::string with_reclaim(const std::string& reclaim) {
  std::string text = kLaunch;
  text.replace(text.find("reclaim: []"), 11, "reclaim: [" + reclaim + "]");
  return text;
}

TEST(LaunchExperiment, GuestsThatKeepTheirMemoryRunOutAfterAFew) {
  const ExperimentResult r = run_text(kLaunch);
  // Each guest keeps 16 + 192 MiB on the host: 4 fit in 1 GiB, the fifth's program does not.
  EXPECT_EQ(r.vms, 4U);
  EXPECT_TRUE(r.run.exceeded);
  EXPECT_EQ(r.run.vms, 5U);
}

TEST(LaunchExperiment, ReturningFreedMemoryCarriesMoreGuests) {
  const unsigned none = run_text(kLaunch).vms;
  for (const std::string reclaim :
       {"{impl: reporting}", "{impl: reporting, order: 0}", "{impl: ppr}"}) {
    const ExperimentResult r = run_text(with_reclaim(reclaim));
    EXPECT_EQ(r.vms, 10U) << reclaim;  // every guest up to max_vms
    EXPECT_FALSE(r.run.exceeded) << reclaim;
  }
  // Hinting v8's fixed array: 192 MiB freed merges into fewer than 1000 free blocks, the
  // array never fills, and nothing is hinted; the count stays where it was.
  EXPECT_EQ(run_text(with_reclaim("{impl: hinting}")).vms, none);
  EXPECT_EQ(run_text(with_reclaim("{impl: hinting, entries: 16}")).vms, 10U);
}

TEST(LaunchExperiment, SameSeedSameCount) {
  const ExperimentResult a = run_text(with_reclaim("{impl: hinting}"));
  const ExperimentResult b = run_text(with_reclaim("{impl: hinting}"));
  EXPECT_EQ(a.vms, b.vms);
  EXPECT_EQ(a.run.events, b.run.events);
  EXPECT_EQ(a.run.host_avg_gib, b.run.host_avg_gib);
}

// One 1 GiB guest: memhog, then page_fault1 with THP and page_fault2.
const char* kPageFault = R"(name: pf
seed: 1
calibration: profiles/default.yaml
host: {memory: 4GiB}
vm:
  memory: 1GiB
  vcpus: 2
  boot: {footprint: 32MiB, time: 1s}
  workloads:
    - {type: memhog, size: 900MiB, then: exit}
    - {type: page_fault1, thp: true, tasks: 2, size: 16MiB, start: 40s, duration: 250ms}
    - {type: page_fault2, tasks: 2, size: 16MiB, start: 45s, duration: 250ms}
reclaim: []
experiment: {type: fixed, vms: 1, duration: 50s, sample_interval: 1s}
)";

TEST(PageFaultBenchmarks, CountFaultsPerSecondAndReportingCostsLittle) {
  const ExperimentResult base = run_text(kPageFault);
  std::string text = kPageFault;
  text.replace(text.find("reclaim: []"), 11, "reclaim: [{impl: reporting}]");
  const ExperimentResult rep = run_text(text);
  ASSERT_EQ(base.run.workload_ops_per_s.size(), 3U);
  EXPECT_EQ(base.run.workload_ops_per_s[0], 0.0);  // memhog is not a benchmark
  for (std::size_t w : {1U, 2U}) {
    EXPECT_GT(base.run.workload_ops_per_s[w], 1e5) << w;
    // Reporting makes re-used blocks fault on the host: slower, but not by much.
    EXPECT_LT(rep.run.workload_ops_per_s[w], base.run.workload_ops_per_s[w]) << w;
    EXPECT_GT(rep.run.workload_ops_per_s[w], 0.8 * base.run.workload_ops_per_s[w]) << w;
  }
  // With reporting the guest gave memhog's memory back before the benchmarks.
  EXPECT_LT(rep.run.host_avg_gib, base.run.host_avg_gib);
}

TEST(PageFaultBenchmarks, BadFieldsAreNamed) {
  std::string text = kPageFault;
  const std::string from = "{type: page_fault2, tasks: 2";
  text.replace(text.find(from), from.size(), "{type: page_fault2, thp: true, tasks: 2");
  try {
    run_text(text);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("vm.workloads[2].thp"), std::string::npos) << e.what();
  }
  EXPECT_THROW(run_text(kPageFault, {"vm.workloads.1.tasks=0"}), InputError);
  EXPECT_THROW(run_text(kPageFault, {"vm.workloads.1.duration=0s"}), InputError);
  EXPECT_THROW(run_text(kPageFault, {"vm.kernel.shuffle=perhaps"}), InputError);
  EXPECT_THROW(run_text(kLaunch, {"experiment.type=launched"}), InputError);
}

}  // namespace
}  // namespace memvirt

namespace memvirt {
namespace {

TEST(BootTransient, MemoryTouchedWhileBootingIsFreedBeforeTheWorkloads) {
  const char* text = R"(name: boot
seed: 1
calibration: profiles/default.yaml
host: {memory: 2GiB}
vm:
  memory: 512MiB
  boot: {footprint: 64MiB, transient: 32MiB, time: 5s}
reclaim: []
experiment: {type: fixed, vms: 1, duration: 1min, sample_interval: 1s}
)";
  const ExperimentResult kept = run_text(text);
  // Without a mechanism the host keeps what the boot touched, freed or not.
  EXPECT_NEAR(kept.run.host_max_gib, 96.0 / 1024, 1e-9);
  std::string with = text;
  with.replace(with.find("reclaim: []"), 11, "reclaim: [{impl: reporting, order: 0}]");
  const ExperimentResult reported = run_text(with);
  // With reporting the freed part goes back; the footprint stays.
  EXPECT_LT(reported.run.host_min_gib, 70.0 / 1024);
  EXPECT_GE(reported.run.host_min_gib, 64.0 / 1024);
  EXPECT_THROW(run_text(text, {"vm.boot.transient=448MiB"}), InputError);
}

}  // namespace
}  // namespace memvirt

namespace memvirt {
namespace {

// memhog in a guest that must swap to hold it: a fault that waits for reclaim's swap writes
// sleeps until they complete and the program touches on, to the end of its memory.
TEST(MemhogSwapping, WaitsForSwapWritesAndTouchesEverything) {
  const ExperimentResult r = run_text(R"(name: swapping
seed: 1
calibration: profiles/default.yaml
host: {memory: 2GiB, disk: {seek: 12.67ms, bandwidth: 100MB}}
vm:
  memory: 256MiB
  disk: 512MiB
  kernel: {swap: 384MiB}
  workloads:
    - {type: memhog, size: 320MiB, hold: 600s, content: header}
reclaim: []
experiment: {type: fixed, vms: 1, duration: 30s, sample_interval: 1s}
)");
  const nlohmann::json& w = r.run.stats["vm"]["workloads"][0];
  EXPECT_EQ(w["pages_touched"], 320 * 256) << w;
  EXPECT_EQ(w["killed"], 0) << w;
  EXPECT_GT(r.run.pswpout, 64u * 256) << "more than 64 MiB had to go to swap";
}

}  // namespace
}  // namespace memvirt
