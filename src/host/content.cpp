#include "host/content.hpp"

#include <cstring>

namespace memvirt {

void generate_page_bytes(Fingerprint fp, std::span<std::byte> page) {
  if (fp.value() == 0) {
    std::memset(page.data(), 0, page.size());
    return;
  }
  const unsigned random_words_per_8 = compressibility_class(fp) + 1;
  const std::uint64_t pattern = splitmix64(fp.value() ^ 0xA5A5A5A5A5A5A5A5ULL);
  const std::size_t words = page.size() / sizeof(std::uint64_t);
  std::uint64_t state = fp.value();
  for (std::size_t i = 0; i < words; ++i) {
    std::uint64_t w = pattern;
    if ((i & 7) < random_words_per_8) {
      state = splitmix64(state + i);
      w = state;
    }
    std::memcpy(page.data() + i * sizeof(w), &w, sizeof(w));
  }
}

}  // namespace memvirt
