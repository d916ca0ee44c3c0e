#include "args.hpp"

#include <cerrno>
#include <cstdlib>

#include "marker.hpp"

namespace guest {

Args::Args(std::string tag, int argc, char** argv, int first) : tag_(std::move(tag)) {
  for (int i = first; i < argc; ++i) {
    const std::string a = argv[i];
    const auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0) fail(tag_, "argument is not key=value: " + a);
    values_[a.substr(0, eq)] = a.substr(eq + 1);
  }
}

std::string Args::text(const std::string& key) {
  const auto it = values_.find(key);
  if (it == values_.end()) fail(tag_, "missing argument " + key);
  read_.insert(key);
  return it->second;
}

std::string Args::text(const std::string& key, const std::string& def) {
  return values_.count(key) ? text(key) : def;
}

std::uint64_t Args::number(const std::string& key) {
  const std::string v = text(key);
  char* end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || v[0] == '-') {
    fail(tag_, "argument " + key + " is not a number: " + v);
  }
  return n;
}

std::uint64_t Args::number(const std::string& key, std::uint64_t def) {
  return values_.count(key) ? number(key) : def;
}

void Args::check_all_read() const {
  for (const auto& [k, v] : values_) {
    if (!read_.count(k)) fail(tag_, "unknown argument " + k);
  }
}

}  // namespace guest
