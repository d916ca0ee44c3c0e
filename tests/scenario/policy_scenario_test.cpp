// Policies in the simulator: what a scenario must give them, what they do to a fleet, and
// the controller's safety properties on a guest whose demand steps up.
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

// Two 1 GiB guests read 600 MiB of files into their page caches, sit idle, then one program
// in each takes 700 MiB at 200 s for 30 s: demand that steps up after the cache was taken.
const char* kStep = R"(name: step
seed: 1
calibration: profiles/default.yaml
host:
  memory: 8GiB
  cpus: 2
  disk: {seek: 12.67ms, bandwidth: 100MB}
vm:
  memory: 1GiB
  disk: 4GiB
  kernel: {swap: 512MiB}
  boot: {footprint: 100MiB, time: 3s}
  workloads:
    - {type: file_reader, files: 1, size: 600MiB, request: 128KiB, passes: 1, start: 1s}
    - {type: memhog, size: 700MiB, start: 200s, hold: 30s}
reclaim:
  - {impl: balloon, stats_interval: 2s, deflate_on_oom: true}
POLICY
experiment: {type: fixed, vms: 2, duration: 400s, sample_interval: 5s, checks: full}
)";

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

std::string step_with(const std::string& policy) {
  return replaced(with_source_profile(kStep), "POLICY", policy);
}

ExperimentResult run_text(const std::string& text) {
  const Scenario s = load_scenario(write_file(temp_dir() / "s.yaml", text));
  return run_experiment(s);
}

std::string load_error(const std::string& text) {
  try {
    load_scenario(write_file(temp_dir() / "bad.yaml", text));
  } catch (const InputError& e) {
    return e.what();
  }
  return "accepted";
}

TEST(PolicyScenario, RefusesWhatThePolicyCannotSeeOrActThrough) {
  EXPECT_NE(load_error(step_with("policy: {impl: memvirt}"))
                .find("policy.min_memory: memvirt moves balloon targets"),
            std::string::npos);
  EXPECT_NE(load_error(step_with("policy: {impl: mom, min_memory: 128MiB}"))
                .find("policy.impl: mom tunes KSM: add a 'ksm' entry to reclaim"),
            std::string::npos);
  const std::string no_stats = replaced(step_with("policy: {impl: memvirt, min_memory: 128MiB}"),
                                        ", stats_interval: 2s", "");
  EXPECT_NE(load_error(no_stats).find("reads the balloon stats queue"), std::string::npos)
      << load_error(no_stats);
  const std::string no_balloon = replaced(
      step_with("policy: {impl: dmc, min_memory: 128MiB}"),
      "reclaim:\n  - {impl: balloon, stats_interval: 2s, deflate_on_oom: true}", "reclaim: []");
  EXPECT_NE(load_error(no_balloon).find("dmc acts through the balloon"), std::string::npos)
      << load_error(no_balloon);
  const std::string no_deflate = replaced(step_with("policy: {impl: memvirt, min_memory: 128MiB}"),
                                          ", deflate_on_oom: true", "");
  EXPECT_NE(load_error(no_deflate).find("set the balloon's deflate_on_oom: true"),
            std::string::npos)
      << load_error(no_deflate);
  EXPECT_NE(load_error(step_with("policy: {impl: squeeze}")).find("'squeeze' is not one of"),
            std::string::npos);
  EXPECT_NE(load_error(step_with("policy: {impl: senpai, min_memory: 2GiB}"))
                .find("policy.min_memory: is more than vm.memory"),
            std::string::npos);
}

TEST(PolicyScenario, ControllerTakesBackIdleCacheAndMeetsTheStep) {
  const ExperimentResult none = run_text(step_with(""));
  const ExperimentResult ours = run_text(step_with("policy: {impl: memvirt, min_memory: 128MiB}"));
  // The same work gets done, with no OOM kill in the guests or on the host.
  EXPECT_EQ(ours.run.guest_oom_kills, 0U);
  EXPECT_EQ(ours.run.vms_killed, 0U);
  ASSERT_TRUE(none.run.completion_s);
  ASSERT_TRUE(ours.run.completion_s);
  // Demand met within a stated time: the step's 30 s hold ends at most 15 s later than on an
  // unconstrained host.
  EXPECT_LE(*ours.run.completion_s, *none.run.completion_s + 15);
  // The guests that swapped waited for it, and PSI counted the wait.
  EXPECT_GT(ours.run.pswpout, 0U);
  EXPECT_GT(ours.run.memory_stall_s, 10 * none.run.memory_stall_s + 1);
  // The idle cache went back to the host: less host memory on average.
  EXPECT_LT(ours.run.host_avg_gib, 0.8 * none.run.host_avg_gib);
}

TEST(PolicyScenario, BaselineGivesTheSlowdownAgainstAnUnconstrainedHost) {
  // memvirt's controller on a host that holds the guests; the baseline has no policy.
  const std::string text =
      replaced(replaced(step_with("policy: {impl: memvirt, min_memory: 128MiB}"), "memory: 8GiB",
                        "memory: 2560MiB"),
               "sample_interval: 5s", "sample_interval: 5s, baseline: true");
  const ExperimentResult r = run_text(text);
  ASSERT_TRUE(r.baseline);
  ASSERT_TRUE(r.slowdown);
  ASSERT_TRUE(r.run.completion_s);
  ASSERT_TRUE(r.baseline->completion_s);
  EXPECT_DOUBLE_EQ(*r.slowdown, *r.run.completion_s / *r.baseline->completion_s - 1);
  EXPECT_EQ(r.baseline->vms_killed, 0U);
  // The baseline ran without the policy: no balloon took the cache, nothing swapped.
  EXPECT_GT(r.run.pswpout, 0U);
  EXPECT_EQ(r.baseline->pswpout, 0U);
  EXPECT_NE(load_error(replaced(text, "checks: full", "checks: full, replicates: 3"))
                .find("experiment.baseline: a baseline runs with one replicate"),
            std::string::npos);
}

TEST(PolicyScenario, PartitioningRefusesGuestsThatWouldOvercommit) {
  const std::string text =
      replaced(replaced(step_with("policy: {impl: partition}"), "vms: 2", "vms: 9"),
               "duration: 400s", "duration: 20s");
  const ExperimentResult r = run_text(text);
  EXPECT_EQ(r.run.vms, 9U);
  EXPECT_EQ(r.run.vms_refused, 1U);  // eight 1 GiB guests fill 8 GiB
}

TEST(PolicyScenario, KsmtunedStopsKsmWhileTheGuestsFit) {
  const std::string text =
      replaced(replaced(step_with("policy: {impl: ksmtuned}"), "  - {impl: balloon",
                        "  - {impl: ksm}\n  - {impl: balloon"),
               "duration: 400s", "duration: 150s");
  const ExperimentResult r = run_text(text);
  // 2 GiB of guests and 20% of 8 GiB fit: from its first tick (60 s) ksmd is stopped, so
  // it scans at most the first minute's batches.
  const ExperimentResult free_running = run_text(replaced(text, "policy: {impl: ksmtuned}", ""));
  const auto scanned = [](const ExperimentResult& e) {
    for (const auto& a : e.run.cpu) {
      if (a.name == "ksmd") return a.cpu_seconds;
    }
    return -1.0;
  };
  EXPECT_GT(scanned(free_running), 0);
  EXPECT_LT(scanned(r), 0.5 * scanned(free_running));
}

TEST(PolicyScenario, SameSeedSameTrajectory) {
  const std::string text = step_with("policy: {impl: memvirt, min_memory: 128MiB}");
  const ExperimentResult a = run_text(text);
  const ExperimentResult b = run_text(text);
  EXPECT_EQ(a.run.events, b.run.events);
  EXPECT_EQ(a.run.host_avg_gib, b.run.host_avg_gib);
  EXPECT_EQ(a.run.memory_stall_s, b.run.memory_stall_s);
}

// 1 GiB guests, each touching 700 MiB for a while: on a 4 GiB host five fit, a sixth is
// more than the host has.
const char* kCarry = R"(name: carry
seed: 3
calibration: profiles/default.yaml
host: {memory: 4GiB, cpus: 2}
vm:
  memory: 1GiB
  boot: {footprint: 100MiB, time: 1s}
  workloads:
    - {type: memhog, size: 600MiB, start: 1s, hold: 10s}
POLICY
experiment: {type: carry, duration: 60s, sample_interval: 5s, max_vms: 64}
)";

ExperimentResult run_carry(const std::string& policy) {
  return run_text(replaced(with_source_profile(kCarry), "POLICY", policy));
}

bool tried(const ExperimentResult& r, unsigned vms, bool carried, const std::string& why) {
  for (const Trial& t : *r.search) {
    if (t.vms == vms) return t.fits == carried && t.why_not.find(why) != std::string::npos;
  }
  return false;
}

TEST(CarryExperiment, FindsTheLargestCountWithoutKillsOrRefusals) {
  const ExperimentResult none = run_carry("");
  ASSERT_TRUE(none.search);
  EXPECT_EQ(none.vms, 5U);
  EXPECT_TRUE(tried(none, 5, true, ""));
  EXPECT_TRUE(tried(none, 6, false, "killed by the host"));
  ASSERT_TRUE(none.slowdown);
  EXPECT_LE(*none.slowdown, 0.10);
  ASSERT_TRUE(none.baseline);
  EXPECT_EQ(none.run.vms, 5U);
  // Partitioning gives every guest its whole size: four of 1 GiB, then it refuses.
  const ExperimentResult partition = run_carry("policy: {impl: partition}");
  EXPECT_EQ(partition.vms, 4U);
  EXPECT_TRUE(tried(partition, 5, false, "refused by the policy"));
  // The same scenario and seed search the same counts to the same answer.
  const ExperimentResult again = run_carry("");
  ASSERT_EQ(again.search->size(), none.search->size());
  for (std::size_t i = 0; i < none.search->size(); ++i) {
    EXPECT_EQ((*again.search)[i].vms, (*none.search)[i].vms);
    EXPECT_EQ((*again.search)[i].slowdown, (*none.search)[i].slowdown);
  }
}

TEST(CarryExperiment, ABoundOfZeroCarriesOnlyCountsWithNoSlowdown) {
  const std::string text = replaced(with_source_profile(kCarry), "POLICY", "");
  const ExperimentResult r =
      run_text(replaced(text, "max_vms: 64", "max_vms: 64, max_slowdown: 0"));
  for (const Trial& t : *r.search) {
    if (t.fits) {
      ASSERT_TRUE(t.slowdown);
      EXPECT_LE(*t.slowdown, 0.0);
    }
  }
  EXPECT_NE(load_error(replaced(text, "max_vms: 64", "max_vms: 64, max_slowdown: -1"))
                .find("experiment.max_slowdown"),
            std::string::npos);
}

TEST(PolicyScenario, NoneSaysThereIsNoPolicy) {
  const Scenario s = load_scenario(write_file(temp_dir() / "s.yaml", step_with("policy: none")));
  EXPECT_FALSE(s.policy);
  EXPECT_NE(load_error(step_with("policy: nothing")).find("policy"), std::string::npos);
}

}  // namespace
}  // namespace memvirt
