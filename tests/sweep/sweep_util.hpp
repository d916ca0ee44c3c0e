// Tiny scenarios and sweeps for the sweep tests: a run takes a few hundredths of a second.
#pragma once

#include <filesystem>
#include <string>

#include "test_util.hpp"

namespace memvirt::sweep::testing {

// Writes the tiny scenario beside a sweep file of `sweep_text` in `dir`; returns the sweep
// file's path.
inline std::string write_sweep(const std::filesystem::path& dir, const std::string& sweep_text) {
  // Two VMs, sampled every minute.
  memvirt::testing::write_file(dir / "tiny.yaml",
                               memvirt::testing::drawn_scenario_text("tiny", 2, "1min"));
  return memvirt::testing::write_file(dir / "sweep.yaml", sweep_text);
}

using memvirt::testing::whole_file;

}  // namespace memvirt::sweep::testing
