// The text of a table cell or heading: an fmt format string over named values, the names of
// a sweep's axes, axis entries and results ("{host_avg:.1f} / {host_max:.1f}").
#pragma once

#include <fmt/format.h>

#include <map>
#include <string>

namespace memvirt::sweep {

// A named value: a number (a result), a text (an axis value), or nothing (a result a run did
// not report), which prints as "-" whatever the format asks.
struct CellValue {
  enum class Kind { kNone, kNumber, kText };
  Kind kind = Kind::kNone;
  double number = 0;
  std::string text;
  static CellValue none() { return {}; }
  static CellValue of(double v) { return {Kind::kNumber, v, {}}; }
  static CellValue of(std::string t) { return {Kind::kText, 0, std::move(t)}; }
};

using CellValues = std::map<std::string, CellValue>;

// `format` with `values` by name. A text value is written as it is, whatever its format spec.
// Throws fmt::format_error for a bad format or a name not in `values`.
std::string format_cell(const std::string& format, const CellValues& values);

}  // namespace memvirt::sweep

// A number's spec applies to a number; text and nothing ignore it.
template <>
struct fmt::formatter<memvirt::sweep::CellValue> : fmt::formatter<double> {
  template <typename Context>
  auto format(const memvirt::sweep::CellValue& v, Context& ctx) const -> decltype(ctx.out()) {
    using Kind = memvirt::sweep::CellValue::Kind;
    if (v.kind == Kind::kNumber) return fmt::formatter<double>::format(v.number, ctx);
    const std::string& text = v.kind == Kind::kText ? v.text : std::string("-");
    return std::copy(text.begin(), text.end(), ctx.out());
  }
};
