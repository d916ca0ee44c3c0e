// Time from contention: guests' processes share their vCPUs, and vCPUs share the host's CPUs
// (host.cpus), so a CPU-bound benchmark's rate follows the CPUs it gets.
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

// page_fault1 is CPU-bound: each task faults, zeroes and unmaps its region over and over.
const char* kBusy = R"(name: busy
seed: 1
calibration: profiles/default.yaml
host: {memory: 2GiB, cpus: 4}
vm:
  memory: 256MiB
  vcpus: 2
  boot: {footprint: 16MiB, time: 100ms}
  workloads:
    - {type: page_fault1, tasks: 2, size: 1MiB, start: 0s, duration: 200ms}
reclaim: []
experiment: {type: fixed, vms: 1, duration: 400ms, sample_interval: 100ms}
)";

ExperimentResult run_busy(const std::vector<std::string>& overrides,
                          const std::string& text = kBusy) {
  const fs::path dir = temp_dir();
  return run_experiment(
      load_scenario(write_file(dir / "s.yaml", with_source_profile(text)), overrides));
}

double ops_per_vm(const ExperimentResult& r) {
  return r.run.workload_ops_per_s.at(0) / static_cast<double>(r.run.vms);
}

TEST(CpuContention, ProcessesShareTheirVcpus) {
  const double two = ops_per_vm(run_busy({}));
  const double one = ops_per_vm(run_busy({"vm.vcpus=1"}));
  ASSERT_GT(two, 0);
  // Two tasks on one vCPU each run half the time.
  EXPECT_NEAR(one / two, 0.5, 0.03);
}

TEST(CpuContention, VcpusShareTheHostCpus) {
  const double alone = ops_per_vm(run_busy({}));
  // Two VMs of two busy vCPUs on two host CPUs: each vCPU runs half the time.
  const double shared = ops_per_vm(run_busy({"experiment.vms=2", "host.cpus=2"}));
  EXPECT_NEAR(shared / alone, 0.5, 0.03);
  // On four host CPUs the same two VMs run as fast as one.
  const double enough = ops_per_vm(run_busy({"experiment.vms=2"}));
  EXPECT_NEAR(enough / alone, 1.0, 0.03);
  // Without host.cpus every vCPU has a CPU of its own.
  std::string unstated_text = kBusy;
  unstated_text.replace(unstated_text.find(", cpus: 4"), 9, "");
  const double unstated = ops_per_vm(run_busy({"experiment.vms=3"}, unstated_text));
  EXPECT_NEAR(unstated / alone, 1.0, 0.03);
}

TEST(CpuContention, CpuTimeIsTheSameWorkOnlySpreadOverMoreTime) {
  const ExperimentResult alone = run_busy({});
  const ExperimentResult shared = run_busy({"host.cpus=1"});
  // Half the CPU: half the iterations in the window, each costing the same vCPU time.
  const double per_op_alone =
      alone.run.vcpu_seconds / static_cast<double>(alone.run.workload_cycles);
  const double per_op_shared =
      shared.run.vcpu_seconds / static_cast<double>(shared.run.workload_cycles);
  EXPECT_NEAR(per_op_shared / per_op_alone, 1.0, 0.05);
  EXPECT_LT(shared.run.vcpu_seconds, 0.6 * alone.run.vcpu_seconds);
}

TEST(CpuContention, BadHostCpusAndKhugepagedValuesAreErrors) {
  try {
    run_busy({"host.cpus=0"});
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("host.cpus"), std::string::npos) << e.what();
  }
  EXPECT_THROW(run_busy({"host.cpus=two"}), InputError);
  EXPECT_THROW(run_busy({"vm.kernel.khugepaged=perhaps"}), InputError);
}

}  // namespace
}  // namespace memvirt
