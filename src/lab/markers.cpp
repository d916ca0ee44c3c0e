#include "lab/markers.hpp"

#include <cstdlib>
#include <sstream>

namespace memvirt {

std::string Marker::field(const std::string& key) const {
  for (const auto& [k, v] : fields) {
    if (k == key) return v;
  }
  return {};
}

std::optional<Marker> parse_marker(std::string_view line) {
  constexpr std::string_view kPrefix = "@@memvirt ";
  const auto at = line.find(kPrefix);
  if (at == std::string_view::npos) return std::nullopt;
  std::string rest(line.substr(at + kPrefix.size()));
  while (!rest.empty() && (rest.back() == '\r' || rest.back() == '\n')) rest.pop_back();
  std::istringstream in(rest);
  std::string time;
  Marker m;
  if (!(in >> time >> m.tag >> m.event)) return std::nullopt;
  char* end = nullptr;
  m.guest_s = std::strtod(time.c_str(), &end);
  if (end == time.c_str() || *end != '\0') return std::nullopt;
  std::string word;
  while (in >> word) {
    const auto eq = word.find('=');
    if (eq == std::string::npos || eq == 0) {
      // A value with spaces: the word belongs to the value before it.
      if (m.fields.empty()) return std::nullopt;
      m.fields.back().second += " " + word;
      continue;
    }
    m.fields.emplace_back(word.substr(0, eq), word.substr(eq + 1));
  }
  return m;
}

}  // namespace memvirt
