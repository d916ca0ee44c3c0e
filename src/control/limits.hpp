// The operator's bounds on each guest's balloon target: `--min` and `--max` for every guest,
// `--limit NAME=MIN:MAX` for one. A bound is a size ("512MiB") or a share of the guest's
// memory ("50%"), so one default fits guests of different sizes. A policy's requests are
// clamped into [min, max] (policy/policy.hpp, clamp_actions), and max is never more than the
// guest's memory.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.hpp"

namespace memvirt {

class MemoryBound {
 public:
  static MemoryBound size(Bytes b) { return MemoryBound(b, 0, false); }
  static MemoryBound share(double fraction) { return MemoryBound(Bytes{0}, fraction, true); }
  // "512MiB", "2GiB", "1073741824" (bytes) or "50%" (0% to 100%); nullopt with *why otherwise.
  static std::optional<MemoryBound> parse(std::string_view text, std::string* why);

  // The bound for a guest of `memory`, rounded down to whole pages.
  [[nodiscard]] Bytes of(Bytes memory) const;
  [[nodiscard]] std::string text() const;
  // Whether this bound is above `o` for every guest; false when that depends on the guest's
  // memory (a size against a share).
  [[nodiscard]] bool always_above(const MemoryBound& o) const;

 private:
  MemoryBound(Bytes b, double f, bool is_share) : size_(b), share_(f), is_share_(is_share) {}
  Bytes size_;
  double share_;
  bool is_share_;
};

struct GuestBounds {
  MemoryBound min = MemoryBound::share(0.5);
  MemoryBound max = MemoryBound::share(1.0);
};

class GuestLimits {
 public:
  // Bounds of guests without a --limit of their own.
  explicit GuestLimits(GuestBounds defaults = {}) : defaults_(defaults) {}

  // Reads `--min`, `--max` (empty: the defaults above) and every `--limit NAME=MIN:MAX`
  // (either side may be empty: that bound is the default). Throws InputError naming the
  // flag and the value on malformed text, a name given twice, or a size min above a size max.
  static GuestLimits parse(const std::string& min, const std::string& max,
                           const std::vector<std::string>& limits);

  // The bounds of the guest called `name`.
  [[nodiscard]] GuestBounds bounds_of(const std::string& name) const;
  // The names that have a --limit, in order.
  [[nodiscard]] std::vector<std::string> named() const;

 private:
  struct Override {
    std::optional<MemoryBound> min, max;
  };
  GuestBounds defaults_;
  std::map<std::string, Override> per_vm_;
};

// [min, max] of a guest of `memory`: max at most memory. nullopt with *why when min > max.
struct ResolvedBounds {
  Bytes min, max;
};
std::optional<ResolvedBounds> resolve_bounds(const GuestBounds& b, Bytes memory, std::string* why);

}  // namespace memvirt
