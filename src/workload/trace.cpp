#include "workload/trace.hpp"

#include <fmt/format.h>

#include <fstream>

#include "core/error.hpp"
#include "core/units.hpp"

namespace memvirt {

Trace load_trace(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw InputError(SourcePlace{file, 0, ""}, "cannot open trace file");
  Trace t;
  t.file = file;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto comma = line.find(',');
    if (comma == std::string::npos || line.find(',', comma + 1) != std::string::npos) {
      throw InputError(SourcePlace{file, number, ""}, "expected two columns: time,in_use");
    }
    const std::string time_text = line.substr(0, comma);
    const std::string size_text = line.substr(comma + 1);
    if (t.points.empty() && time_text.find("time") != std::string::npos) continue;  // header
    std::string why;
    const auto time = parse_duration(time_text, &why);
    if (!time) throw InputError(SourcePlace{file, number, "time"}, why);
    const auto size = parse_bytes(size_text, &why);
    if (!size) throw InputError(SourcePlace{file, number, "in_use"}, why);
    if (!t.points.empty() && *time <= t.points.back().time) {
      throw InputError(SourcePlace{file, number, "time"},
                       fmt::format("'{}' does not come after the previous row", time_text));
    }
    t.points.push_back({*time, *size});
  }
  if (in.bad()) throw InputError(SourcePlace{file, number, ""}, "read error");
  if (t.points.empty()) throw InputError(SourcePlace{file, 0, ""}, "trace has no rows");
  return t;
}

}  // namespace memvirt
