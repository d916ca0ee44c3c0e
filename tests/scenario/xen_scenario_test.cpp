// Seed 003's host end to end: Xen partitioning, self-ballooning and tmem in whole runs.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "scenario/experiment.hpp"
#include "scenario/scenario.hpp"
#include "test_util.hpp"

namespace memvirt {
namespace {

namespace fs = std::filesystem;
using testing::temp_dir;
using testing::with_source_profile;
using testing::write_file;

// Two guests that read the same 256 MiB of files twice, in 128 MiB each, on a Xen host with
// fallow memory: what their page caches drop, tmem can keep.
const char* kReaders = R"(name: readers
seed: 2
calibration: profiles/default.yaml
host: {memory: 1GiB, hypervisor: xen, dom0_memory: 128MiB, cpus: 2}
vm:
  memory: 160MiB
  max_memory: 256MiB
  disk: 1GiB
  boot: {footprint: 24MiB}
  workloads:
    - {type: file_reader, size: 64MiB, files: 4, passes: 3}
reclaim:
  - {impl: selfballoon}
  - {impl: tmem, dedup: true}
experiment: {type: fixed, vms: 2, duration: 10min, sample_interval: 10s, checks: full}
)";

// The scenario with its reclaim list replaced by `reclaim` (YAML), when given.
ExperimentResult run_readers(const std::string& reclaim = {}) {
  std::string text = kReaders;
  if (!reclaim.empty()) {
    const auto from = text.find("reclaim:");
    const auto to = text.find("experiment:");
    text.replace(from, to - from, "reclaim: " + reclaim + "\n");
  }
  const fs::path dir = temp_dir();
  return run_experiment(load_scenario(write_file(dir / "s.yaml", with_source_profile(text))));
}

TEST(XenScenario, TmemKeepsWhatThePageCachesDropAndRunsAreDeterministic) {
  const ExperimentResult with = run_readers();
  ASSERT_TRUE(with.run.tmem.has_value());
  ASSERT_TRUE(with.run.completion_s.has_value());
  EXPECT_GT(with.run.tmem->pages_max, 0U);
  // Both guests read the same files: dedup holds more pages than it has memory for.
  EXPECT_GT(with.run.tmem->apparent_pages_max, with.run.tmem->pages_max);
  const ExperimentResult again = run_readers();
  EXPECT_EQ(with.run.sectors_read, again.run.sectors_read);
  EXPECT_EQ(with.run.tmem->apparent_pages_max, again.run.tmem->apparent_pages_max);
  EXPECT_EQ(*with.run.completion_s, *again.run.completion_s);
  EXPECT_EQ(with.run.stats.dump(), again.run.stats.dump());
  // Without tmem the rereads go to the disk.
  const ExperimentResult without = run_readers("[{impl: selfballoon}]");
  EXPECT_FALSE(without.run.tmem.has_value());
  EXPECT_LT(with.run.sectors_read, without.run.sectors_read);
}

TEST(XenScenario, PartitionedMemoryIsTheReservationsNotTheTouchedPages) {
  const ExperimentResult r = run_readers("[]");
  // dom0 128 MiB and two reservations of 160 MiB, from the first sample to the last.
  EXPECT_NEAR(r.run.host_max_gib, (128.0 + 2 * 160.0) / 1024.0, 1e-9);
}

}  // namespace
}  // namespace memvirt
