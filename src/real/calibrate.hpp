// Measures, on the machine it runs on, the cost of the operations the simulator charges
// (kOpInfo in core/cost.hpp), and returns them as a profile scenarios can name.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/cost.hpp"

namespace memvirt {

struct CalibrationOptions {
  std::uint64_t pages = 16384;  // pages per measurement (64 MiB)
  int repeats = 5;              // the median of this many measurements is kept
};

// `log` receives one line per operation measured.
CostProfile calibrate(const CalibrationOptions& opt,
                      const std::function<void(const std::string&)>& log = {});

}  // namespace memvirt
