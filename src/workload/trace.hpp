// Memory-usage traces: a program's memory in use over time, one row per change, replayed in a
// guest. Format (CSV, '#' starts a comment, an optional header "time,in_use"):
//
//   time,in_use
//   0s,100MiB
//   30s,1.5GiB
//   90,0          <- bare numbers: seconds and bytes
//
// Times must increase. With `loop`, a cycle lasts until the last row's time, so a trace that
// starts at 0s and ends with a row at T repeats every T. Any bad row is an InputError naming
// the file, line and column.
#pragma once

#include <string>
#include <vector>

#include "core/types.hpp"

namespace memvirt {

struct TracePoint {
  Duration time;
  Bytes in_use;
};

struct Trace {
  std::string file;
  std::vector<TracePoint> points;
};

Trace load_trace(const std::string& file);

}  // namespace memvirt
