#include "lab/guest_samples.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>

#include "lab/lab_error.hpp"

namespace memvirt {
namespace {

[[noreturn]] void bad(const Marker& m, const std::string& what) {
  throw LabError(fmt::format("{} marker at guest time {:.3f} s: {}", m.event, m.guest_s, what));
}

// A decimal number with nothing after it.
std::uint64_t number(const Marker& m, const std::string& key, const std::string& text) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
    bad(m, fmt::format("{}='{}' is not a number", key, text));
  }
  errno = 0;
  const unsigned long long v = std::strtoull(text.c_str(), nullptr, 10);
  if (errno == ERANGE) bad(m, fmt::format("{}='{}' is out of range", key, text));
  return v;
}

std::uint64_t required(const Marker& m, const std::string& key) {
  for (const auto& [k, v] : m.fields) {
    if (k == key) return number(m, key, v);
  }
  bad(m, fmt::format("no {} field", key));
}

}  // namespace

GuestSwapCounters GuestSwapCounters::parse(const Marker& m) {
  return {required(m, "pswpin"), required(m, "pswpout")};
}

GuestZswapSample GuestZswapSample::parse(const Marker& m) {
  GuestZswapSample z;
  for (const auto& [k, v] : m.fields) z.counters.emplace_back(k, number(m, k, v));
  z.stored_pages = required(m, "stored_pages");
  z.pool_total_size = required(m, "pool_total_size");
  z.same_filled_pages = required(m, "same_filled_pages");
  z.written_back_pages = required(m, "written_back_pages");
  z.pool_limit_hit = required(m, "pool_limit_hit");
  z.stored_pages_max = required(m, "stored_pages_max");
  z.pool_total_size_max = required(m, "pool_total_size_max");
  return z;
}

}  // namespace memvirt
