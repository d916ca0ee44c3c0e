// Strong types for the quantities the simulator mixes most often. Passing a plain integer where
// a guest frame number is expected, or a size where a duration is, is a compile error.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <limits>

namespace memvirt {

template <typename Tag, typename Rep>
class StrongInt {
 public:
  using rep_type = Rep;
  constexpr StrongInt() = default;
  constexpr explicit StrongInt(Rep v) : value_(v) {}
  [[nodiscard]] constexpr Rep value() const { return value_; }
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy misreads the defaulted comparison
  constexpr auto operator<=>(const StrongInt&) const = default;

 private:
  Rep value_{};
};

struct GfnTag {};
// Guest frame number: index of a 4 KiB page in a guest's physical memory.
using Gfn = StrongInt<GfnTag, std::uint32_t>;

inline constexpr std::uint32_t kPageShift = 12;
inline constexpr std::uint64_t kPageSize = 1ULL << kPageShift;

constexpr Gfn operator+(Gfn g, std::uint32_t n) {
  return Gfn{g.value() + n};
}
constexpr Gfn operator^(Gfn g, std::uint32_t n) {
  return Gfn{g.value() ^ n};
}

// Buddy allocation order: a block of 2^order pages.
class PageOrder {
 public:
  constexpr PageOrder() = default;
  constexpr explicit PageOrder(unsigned v) : value_(static_cast<std::uint8_t>(v)) {}
  [[nodiscard]] constexpr unsigned value() const { return value_; }
  [[nodiscard]] constexpr std::uint32_t pages() const { return 1U << value_; }
  constexpr auto operator<=>(const PageOrder&) const = default;

 private:
  std::uint8_t value_{0};
};

// A size in bytes.
class Bytes {
 public:
  constexpr Bytes() = default;
  constexpr explicit Bytes(std::uint64_t v) : value_(v) {}
  [[nodiscard]] constexpr std::uint64_t value() const { return value_; }
  [[nodiscard]] constexpr std::uint64_t pages() const { return value_ >> kPageShift; }
  [[nodiscard]] constexpr double gib() const { return static_cast<double>(value_) / (1ULL << 30); }
  [[nodiscard]] constexpr double mib() const { return static_cast<double>(value_) / (1ULL << 20); }
  static constexpr Bytes from_pages(std::uint64_t n) { return Bytes{n << kPageShift}; }
  constexpr auto operator<=>(const Bytes&) const = default;
  constexpr Bytes operator+(Bytes o) const { return Bytes{value_ + o.value_}; }
  constexpr Bytes operator-(Bytes o) const { return Bytes{value_ - o.value_}; }

 private:
  std::uint64_t value_{0};
};

// A span of virtual time in nanoseconds.
class Duration {
 public:
  constexpr Duration() = default;
  constexpr explicit Duration(std::int64_t ns) : ns_(ns) {}
  [[nodiscard]] constexpr std::int64_t ns() const { return ns_; }
  [[nodiscard]] constexpr double seconds() const { return static_cast<double>(ns_) * 1e-9; }
  // `s` seconds rounded to the nearest nanosecond, halves away from zero (std::llround, as
  // the scenario parser rounds), so Duration::seconds(4.1) is 4'100'000'000 ns. `s` must fit
  // (|s| < 9.2e9).
  static constexpr Duration seconds(double s) { return Duration{round_to_int(s * 1e9)}; }
  static constexpr Duration millis(std::int64_t ms) { return Duration{ms * 1'000'000}; }
  constexpr auto operator<=>(const Duration&) const = default;
  constexpr Duration operator+(Duration o) const { return Duration{ns_ + o.ns_}; }
  constexpr Duration operator-(Duration o) const { return Duration{ns_ - o.ns_}; }
  constexpr Duration& operator+=(Duration o) {
    ns_ += o.ns_;
    return *this;
  }

 private:
  // std::llround, which is constexpr only from C++23: truncate, then step away from zero
  // when the dropped fraction is at least one half. Both steps are exact in double for
  // |x| < 2^63 (a double of magnitude 2^52 or more is an integer).
  static constexpr std::int64_t round_to_int(double x) {
    const auto t = static_cast<std::int64_t>(x);
    const double fraction = x - static_cast<double>(t);
    if (fraction >= 0.5) return t + 1;
    if (fraction <= -0.5) return t - 1;
    return t;
  }

  std::int64_t ns_{0};
};

// A point in virtual time: nanoseconds since the start of the simulation.
class TimePoint {
 public:
  constexpr TimePoint() = default;
  constexpr explicit TimePoint(std::int64_t ns) : ns_(ns) {}
  [[nodiscard]] constexpr std::int64_t ns() const { return ns_; }
  [[nodiscard]] constexpr double seconds() const { return static_cast<double>(ns_) * 1e-9; }
  constexpr auto operator<=>(const TimePoint&) const = default;
  constexpr TimePoint operator+(Duration d) const { return TimePoint{ns_ + d.ns()}; }
  constexpr Duration operator-(TimePoint o) const { return Duration{ns_ - o.ns_}; }
  static constexpr TimePoint max() { return TimePoint{std::numeric_limits<std::int64_t>::max()}; }

 private:
  std::int64_t ns_{0};
};

}  // namespace memvirt

template <typename Tag, typename Rep>
struct std::hash<memvirt::StrongInt<Tag, Rep>> {
  std::size_t operator()(memvirt::StrongInt<Tag, Rep> v) const noexcept {
    return std::hash<Rep>{}(v.value());
  }
};
