#include "core/units.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>

namespace memvirt {
namespace {

struct Unit {
  std::string_view name;
  double factor;
};

// Splits "12.5GiB" into 12.5 and "GiB"; leading/trailing spaces allowed.
bool split_number(std::string_view text, double* number, std::string_view* unit, std::string* why) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  if (text.empty()) {
    *why = "empty value";
    return false;
  }
  if (text.front() == '-') {
    *why = fmt::format("'{}' is negative", text);
    return false;
  }
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.' ||
                             text[i] == 'e' || text[i] == 'E' || text[i] == '+')) {
    // Stop before a unit that starts with 'e' (there is none) but allow exponents like 1e6.
    ++i;
  }
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + i, *number);
  if (ec != std::errc{} || ptr != text.data() + i || i == 0) {
    *why = fmt::format("'{}' is not a number with a unit", text);
    return false;
  }
  std::string_view rest = text.substr(i);
  while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.front())))
    rest.remove_prefix(1);
  *unit = rest;
  if (!std::isfinite(*number)) {
    *why = fmt::format("'{}' is not finite", text);
    return false;
  }
  return true;
}

}  // namespace

std::optional<Bytes> parse_bytes(std::string_view text, std::string* why) {
  static constexpr Unit kUnits[] = {
      {"", 1},
      {"B", 1},
      {"kB", 1e3},
      {"KB", 1e3},
      {"MB", 1e6},
      {"GB", 1e9},
      {"TB", 1e12},
      {"KiB", 1024.0},
      {"MiB", 1048576.0},
      {"GiB", 1073741824.0},
      {"TiB", 1099511627776.0},
      {"K", 1024.0},
      {"M", 1048576.0},
      {"G", 1073741824.0},
      {"T", 1099511627776.0},
  };
  double number = 0;
  std::string_view unit;
  if (!split_number(text, &number, &unit, why)) return std::nullopt;
  for (const auto& u : kUnits) {
    if (u.name == unit) {
      const double value = number * u.factor;
      if (value >= 1.8e19) {
        *why = fmt::format("'{}' is too large", text);
        return std::nullopt;
      }
      if (value != std::floor(value)) {
        *why = fmt::format("'{}' is not a whole number of bytes", text);
        return std::nullopt;
      }
      return Bytes{static_cast<std::uint64_t>(value)};
    }
  }
  *why = fmt::format("'{}' has unknown size unit '{}' (use B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)",
                     text, unit);
  return std::nullopt;
}

std::optional<Duration> parse_duration(std::string_view text, std::string* why) {
  static constexpr Unit kUnits[] = {
      {"", 1e9},    {"ns", 1},     {"us", 1e3},   {"ms", 1e6},    {"s", 1e9},
      {"sec", 1e9}, {"min", 60e9}, {"h", 3600e9}, {"d", 86400e9},
  };
  double number = 0;
  std::string_view unit;
  if (!split_number(text, &number, &unit, why)) return std::nullopt;
  for (const auto& u : kUnits) {
    if (u.name == unit) {
      const double value = number * u.factor;
      if (value >= 9.2e18) {
        *why = fmt::format("'{}' is too long", text);
        return std::nullopt;
      }
      return Duration{static_cast<std::int64_t>(std::llround(value))};
    }
  }
  *why = fmt::format("'{}' has unknown time unit '{}' (use ns, us, ms, s, min, h, d)", text, unit);
  return std::nullopt;
}

std::string format_bytes(Bytes b) {
  const double v = static_cast<double>(b.value());
  if (v >= 1099511627776.0) return fmt::format("{:.2f} TiB", v / 1099511627776.0);
  if (v >= 1073741824.0) return fmt::format("{:.2f} GiB", v / 1073741824.0);
  if (v >= 1048576.0) return fmt::format("{:.1f} MiB", v / 1048576.0);
  if (v >= 1024.0) return fmt::format("{:.1f} KiB", v / 1024.0);
  return fmt::format("{} B", b.value());
}

std::string format_duration(Duration d) {
  const double s = d.seconds();
  if (s >= 3600)
    return fmt::format("{}h{:02}m{:02}s", static_cast<long>(s) / 3600,
                       (static_cast<long>(s) / 60) % 60, static_cast<long>(s) % 60);
  if (s >= 60)
    return fmt::format("{}m{:02}s", static_cast<long>(s) / 60, static_cast<long>(s) % 60);
  if (s >= 1) return fmt::format("{:.2f}s", s);
  if (s >= 1e-3) return fmt::format("{:.2f}ms", s * 1e3);
  if (s >= 1e-6) return fmt::format("{:.2f}us", s * 1e6);
  return fmt::format("{}ns", d.ns());
}

}  // namespace memvirt
