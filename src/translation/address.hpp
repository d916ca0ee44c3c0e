// Address spaces of translation: guest virtual (gVA), guest physical (gPA) and host physical
// (hPA). Each is its own strong type, so a walker cannot feed a guest-physical address where a
// host-physical one belongs. In native modes the guest physical space plays the role of the
// machine's physical space.
#pragma once

#include <cstdint>

#include "core/types.hpp"

namespace memvirt::translation {

struct GvaTag {};
struct GpaTag {};
struct HpaTag {};
using Gva = StrongInt<GvaTag, std::uint64_t>;
using Gpa = StrongInt<GpaTag, std::uint64_t>;
using Hpa = StrongInt<HpaTag, std::uint64_t>;

// x86-64 leaf sizes; the value is the radix level the leaf sits at (0 = PTE).
enum class PageSize : std::uint8_t { k4K = 0, k2M = 1, k1G = 2 };
inline constexpr unsigned kPageSizes = 3;

constexpr unsigned page_shift(PageSize s) {
  return 12U + 9U * static_cast<unsigned>(s);
}
constexpr std::uint64_t page_bytes(PageSize s) {
  return 1ULL << page_shift(s);
}
constexpr const char* page_size_name(PageSize s) {
  switch (s) {
    case PageSize::k4K:
      return "4KiB";
    case PageSize::k2M:
      return "2MiB";
    case PageSize::k1G:
      return "1GiB";
  }
  return "?";
}
constexpr PageSize smaller(PageSize a, PageSize b) {
  return static_cast<std::uint8_t>(a) < static_cast<std::uint8_t>(b) ? a : b;
}

// A direct segment: [base, limit) of the input space translates to input + offset with no
// walk (Basu et al., ISCA 2013). base == limit disables it, as the seed's hardware does.
template <typename In, typename Out>
struct Segment {
  std::uint64_t base = 0;
  std::uint64_t limit = 0;
  std::int64_t offset = 0;
  [[nodiscard]] bool enabled() const { return limit > base; }
  [[nodiscard]] bool contains(In a) const { return a.value() >= base && a.value() < limit; }
  [[nodiscard]] Out translate(In a) const {
    return Out{a.value() + static_cast<std::uint64_t>(offset)};
  }
};
using GuestSegment = Segment<Gva, Gpa>;  // BASE_G, LIMIT_G, OFFSET_G
using VmmSegment = Segment<Gpa, Hpa>;    // BASE_V, LIMIT_V, OFFSET_V

}  // namespace memvirt::translation
