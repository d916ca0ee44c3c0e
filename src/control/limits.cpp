#include "control/limits.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "core/error.hpp"
#include "core/units.hpp"

namespace memvirt {

std::optional<MemoryBound> MemoryBound::parse(std::string_view text, std::string* why) {
  if (!text.empty() && text.back() == '%') {
    const std::string_view number = text.substr(0, text.size() - 1);
    double percent = 0;
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), percent);
    if (number.empty() || ec != std::errc() || end != number.data() + number.size()) {
      *why = "expected a size (512MiB) or a share of the guest's memory (50%)";
      return std::nullopt;
    }
    if (!(percent >= 0 && percent <= 100)) {
      *why = "a share of the guest's memory is between 0% and 100%";
      return std::nullopt;
    }
    return share(percent / 100);
  }
  const std::optional<Bytes> b = parse_bytes(text, why);
  if (!b) {
    // A word where a number belongs: say both forms a bound can take.
    if (why->find("not a number") != std::string::npos) {
      *why = "expected a size (512MiB) or a share of the guest's memory (50%)";
    }
    return std::nullopt;
  }
  return size(*b);
}

Bytes MemoryBound::of(Bytes memory) const {
  if (!is_share_) return Bytes::from_pages(size_.pages());
  const double bytes = share_ * static_cast<double>(memory.value());
  return Bytes::from_pages(static_cast<std::uint64_t>(bytes) / kPageSize);
}

std::string MemoryBound::text() const {
  if (is_share_) return fmt::format("{:g}%", share_ * 100);
  return format_bytes(size_);
}

bool MemoryBound::always_above(const MemoryBound& o) const {
  if (is_share_ != o.is_share_) return false;
  return is_share_ ? share_ > o.share_ : size_ > o.size_;
}

namespace {

MemoryBound bound_of(const std::string& flag, const std::string& value, std::string_view text) {
  std::string why;
  const std::optional<MemoryBound> b = MemoryBound::parse(text, &why);
  if (!b) throw InputError(SourcePlace{"", 0, flag}, fmt::format("'{}': {}", value, why));
  return *b;
}

bool above(const std::optional<MemoryBound>& a, const std::optional<MemoryBound>& b) {
  return a && b && a->always_above(*b);
}

}  // namespace

GuestLimits GuestLimits::parse(const std::string& min, const std::string& max,
                               const std::vector<std::string>& limits) {
  GuestBounds d;
  if (!min.empty()) d.min = bound_of("--min", min, min);
  if (!max.empty()) d.max = bound_of("--max", max, max);
  if (above(d.min, d.max)) {
    if (min.empty()) {
      throw InputError(SourcePlace{"", 0, "--max"},
                       fmt::format("'{}' is less than --min's default, {}", max, d.min.text()));
    }
    throw InputError(SourcePlace{"", 0, "--min"},
                     fmt::format("'{}' is more than --max '{}'", min, max));
  }
  GuestLimits out(d);
  for (const std::string& spec : limits) {
    const auto eq = spec.find('=');
    const auto colon = spec.find(':', eq == std::string::npos ? 0 : eq);
    if (eq == std::string::npos || eq == 0 || colon == std::string::npos) {
      throw InputError(
          SourcePlace{"", 0, "--limit"},
          fmt::format("'{}': expected NAME=MIN:MAX (either bound may be empty)", spec));
    }
    const std::string name = spec.substr(0, eq);
    const std::string_view lo = std::string_view(spec).substr(eq + 1, colon - eq - 1);
    const std::string_view hi = std::string_view(spec).substr(colon + 1);
    if (lo.empty() && hi.empty()) {
      throw InputError(SourcePlace{"", 0, "--limit"},
                       fmt::format("'{}': gives neither a minimum nor a maximum", spec));
    }
    Override o;
    if (!lo.empty()) o.min = bound_of("--limit", spec, lo);
    if (!hi.empty()) o.max = bound_of("--limit", spec, hi);
    if (above(o.min ? o.min : d.min, o.max ? o.max : d.max)) {
      throw InputError(SourcePlace{"", 0, "--limit"},
                       fmt::format("'{}': the minimum is more than the maximum", spec));
    }
    if (!out.per_vm_.emplace(name, o).second) {
      throw InputError(SourcePlace{"", 0, "--limit"},
                       fmt::format("'{}': {} has a --limit already", spec, name));
    }
  }
  return out;
}

GuestBounds GuestLimits::bounds_of(const std::string& name) const {
  GuestBounds b = defaults_;
  if (const auto it = per_vm_.find(name); it != per_vm_.end()) {
    if (it->second.min) b.min = *it->second.min;
    if (it->second.max) b.max = *it->second.max;
  }
  return b;
}

std::vector<std::string> GuestLimits::named() const {
  std::vector<std::string> out;
  for (const auto& [name, o] : per_vm_) out.push_back(name);
  return out;
}

std::optional<ResolvedBounds> resolve_bounds(const GuestBounds& b, Bytes memory, std::string* why) {
  ResolvedBounds r{b.min.of(memory), std::min(b.max.of(memory), Bytes::from_pages(memory.pages()))};
  if (r.min > r.max) {
    *why = fmt::format("minimum {} ({}) is more than maximum {} ({}) for a guest of {}",
                       format_bytes(r.min), b.min.text(), format_bytes(r.max), b.max.text(),
                       format_bytes(memory));
    return std::nullopt;
  }
  return r;
}

}  // namespace memvirt
