#include "workload/trace_replay.hpp"

#include <filesystem>

namespace memvirt {

TraceReplay::Config TraceReplay::config_from(Params& p) {
  Config c;
  c.chunk_pages = read_touch_chunk(p);
  const std::string file = p.string("file", "", "trace file (CSV: time,in_use)");
  if (file.empty()) p.fail("file", "missing: the trace to replay");
  namespace fs = std::filesystem;
  fs::path path(file);
  if (path.is_relative()) path = fs::path(p.context()->file()).parent_path() / path;
  c.trace = std::make_shared<const Trace>(load_trace(path.string()));
  c.loop = p.boolean("loop", false, "start over after the last row");
  const std::string phase = p.string("phase", "0s", "'random' (within the trace) or a duration");
  if (phase == "random") {
    c.random_phase = true;
  } else {
    c.phase = p.duration("phase", Duration{0}, "delay before the first row");
  }
  return c;
}

}  // namespace memvirt
