// Enum values as scenario files spell them: parsed once (Params::option), written back by
// the writers, never compared as strings in the models.
#pragma once

#include <array>
#include <cstddef>

namespace memvirt {

// The scenario's spelling of one value of an enum.
template <typename E>
struct Spelling {
  E value;
  const char* name;
};

// The spelling of `value`; every value of the enum has one.
template <typename E, std::size_t N>
[[nodiscard]] constexpr const char* spelling_of(const std::array<Spelling<E>, N>& spellings,
                                                E value) {
  for (const auto& s : spellings) {
    if (s.value == value) return s.name;
  }
  return "?";
}

}  // namespace memvirt
