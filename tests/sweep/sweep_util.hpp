// Tiny scenarios and sweeps for the sweep tests: a run takes a few hundredths of a second.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "test_util.hpp"

namespace memvirt::sweep::testing {

// Two VMs whose program's amounts are drawn from the seed, for 20 simulated minutes: different
// seeds give different numbers.
inline const char* kTinyScenario = R"(name: tiny
seed: 3
calibration: profiles/default.yaml
host:
  memory: 8GiB
vm:
  memory: 512MiB
  boot: {footprint: 32MiB, shared_fraction: 0.5}
  workloads:
    - type: periodic_alloc
      period: 10min
      amount: {dist: uniform, min: 64MiB, max: 256MiB}
      mean_in_use: 32MiB
experiment:
  type: fixed
  vms: 2
  duration: 20min
  warmup: 10min
  sample_interval: 1min
)";

// Writes the tiny scenario beside a sweep file of `sweep_text` in `dir`; returns the sweep
// file's path.
inline std::string write_sweep(const std::filesystem::path& dir, const std::string& sweep_text) {
  memvirt::testing::write_file(dir / "tiny.yaml",
                               memvirt::testing::with_source_profile(kTinyScenario));
  return memvirt::testing::write_file(dir / "sweep.yaml", sweep_text);
}

inline std::string slurp(const std::filesystem::path& p) {
  std::stringstream ss;
  ss << std::ifstream(p).rdbuf();
  return ss.str();
}

}  // namespace memvirt::sweep::testing
