#include "core/error.hpp"

namespace memvirt {

std::string format_place(const SourcePlace& place, const std::string& message) {
  std::string out;
  if (!place.file.empty()) {
    out += place.file;
    if (place.line > 0) out += ":" + std::to_string(place.line);
    out += ": ";
  }
  if (!place.field.empty()) out += place.field + ": ";
  out += message;
  return out;
}

InputError::InputError(SourcePlace place, const std::string& what)
    : std::runtime_error(format_place(place, what)), place_(std::move(place)) {}

}  // namespace memvirt
