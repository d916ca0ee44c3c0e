// Markers the guest programs print on the serial console (see guest/marker.hpp):
//   "@@memvirt <guest seconds> <tag> <event> [key=value ...]"
// The host timestamps each on arrival, which aligns it with the host samples.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace memvirt {

struct Marker {
  double host_s = 0;   // seconds since the run started, when the line arrived
  unsigned vm = 0;     // launch index
  double guest_s = 0;  // the guest's monotonic clock
  std::string tag;     // "init", "sys", "w0", ...
  std::string event;   // "boot", "start", "touched", "end", "meminfo", "error", ...
  std::vector<std::pair<std::string, std::string>> fields;

  // The value of `key`, or empty.
  [[nodiscard]] std::string field(const std::string& key) const;
};

// Parses one console line; nullopt when it holds no marker. Console lines may carry other
// text before the marker (a kernel message cut by it); the marker runs to the end of line.
std::optional<Marker> parse_marker(std::string_view line);

}  // namespace memvirt
