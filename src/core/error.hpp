// Errors the user can fix: bad scenario files, flags, traces. They carry the place (file, line,
// field) so the message points at what to change; the command prints them on one line and
// exits with status 2.
#pragma once

#include <stdexcept>
#include <string>

namespace memvirt {

struct SourcePlace {
  std::string file;   // empty when the value came from the command line
  int line = 0;       // 1-based; 0 when unknown
  std::string field;  // dotted path of the key, e.g. "vms.guest.memory"
};

class InputError : public std::runtime_error {
 public:
  InputError(SourcePlace place, const std::string& what);
  [[nodiscard]] const SourcePlace& place() const { return place_; }

 private:
  SourcePlace place_;
};

// Format "file:line: field: message" leaving out the parts that are unknown.
std::string format_place(const SourcePlace& place, const std::string& message);

}  // namespace memvirt
