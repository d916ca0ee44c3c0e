#include "bench_dedup/content_mix.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace memvirt {
namespace {

void check_fraction(double v, const char* flag) {
  if (!(v >= 0.0 && v <= 1.0)) {
    throw InputError(SourcePlace{"", 0, flag}, "must be a fraction between 0 and 1");
  }
}

std::uint64_t share_of(std::uint64_t n, double fraction) {
  return static_cast<std::uint64_t>(std::llround(static_cast<double>(n) * fraction));
}

}  // namespace

ContentMix make_content_mix(const ContentMixConfig& cfg) {
  check_fraction(cfg.shared, "--shared");
  check_fraction(cfg.zero, "--zero");
  check_fraction(cfg.rewritten, "--rewritten");
  if (cfg.shared + cfg.zero + cfg.rewritten > 1.0 + 1e-9) {
    throw InputError(SourcePlace{"", 0, "--shared"},
                     "--shared, --zero and --rewritten add up to more than 1");
  }
  if (cfg.regions == 0) throw InputError(SourcePlace{"", 0, "--regions"}, "must be at least 1");
  const std::uint64_t pages = cfg.total.pages();
  if (pages < cfg.regions || pages > (1ULL << 26)) {
    throw InputError(SourcePlace{"", 0, "--size"},
                     "must hold between one page per region and 256 GiB");
  }
  ContentMix mix;
  mix.pages.resize(pages);
  const std::uint64_t per_region = pages / cfg.regions;
  const std::uint64_t shared = share_of(per_region, cfg.shared);
  const std::uint64_t zero = share_of(per_region, cfg.zero);
  const std::uint64_t rewritten = std::min(per_region - zero, share_of(per_region, cfg.rewritten));
  const std::uint64_t common = std::min(shared, per_region - zero - rewritten);
  mix.distinct_shared = cfg.regions > 1 ? common : 0;
  enum Kind : std::uint8_t { kShared, kZeroPage, kRewritten, kUnique };
  for (unsigned r = 0; r < cfg.regions; ++r) {
    // The region's slots, kinds in order, then shuffled so kinds interleave as in a guest.
    std::vector<std::pair<Kind, std::uint64_t>> slots;
    slots.reserve(per_region);
    for (std::uint64_t k = 0; k < common; ++k) slots.emplace_back(kShared, k);
    for (std::uint64_t k = 0; k < zero; ++k) slots.emplace_back(kZeroPage, 0);
    for (std::uint64_t k = 0; k < rewritten; ++k) slots.emplace_back(kRewritten, 0);
    while (slots.size() < per_region) slots.emplace_back(kUnique, 0);
    Rng rng(cfg.seed, "bench_dedup.layout", r);
    for (std::size_t i = slots.size(); i > 1; --i) std::swap(slots[i - 1], slots[rng.below(i)]);
    const std::uint64_t base = r * per_region;
    for (std::uint64_t i = 0; i < per_region; ++i) {
      const auto page = static_cast<std::uint32_t>(base + i);
      const auto [kind, k] = slots[i];
      switch (kind) {
        case kShared:
          // With one region a "common" content has no twin: it is unique in effect.
          mix.pages[page] = make_fingerprint(splitmix64(cfg.seed ^ splitmix64(k + 1)));
          if (cfg.regions > 1) {
            ++mix.shared_pages;
          } else {
            ++mix.unique_pages;
          }
          break;
        case kZeroPage:
          mix.pages[page] = kZeroContent;
          ++mix.zero_pages;
          break;
        case kRewritten:
          mix.pages[page] = rewritten_content(cfg, page, 0);
          mix.rewritten.push_back(page);
          break;
        case kUnique:
          mix.pages[page] =
              make_unique_fingerprint(splitmix64(cfg.seed * 0x9E3779B97F4A7C15ULL + page));
          ++mix.unique_pages;
          break;
      }
    }
  }
  // Pages beyond the last whole region hold unique contents.
  for (std::uint64_t page = per_region * cfg.regions; page < pages; ++page) {
    mix.pages[page] = make_unique_fingerprint(splitmix64(cfg.seed * 0x9E3779B97F4A7C15ULL + page));
    ++mix.unique_pages;
  }
  return mix;
}

Fingerprint rewritten_content(const ContentMixConfig& cfg, std::uint32_t page,
                              std::uint64_t generation) {
  return make_unique_fingerprint(
      splitmix64(splitmix64(cfg.seed ^ 0xD1B54A32D192ED03ULL) + page * 0x10000ULL + generation));
}

std::uint64_t rewrite_word(const ContentMixConfig& cfg, std::uint32_t page,
                           std::uint64_t generation) {
  // Distinct for distinct (page, generation): the generation in the high half, never zero.
  return (generation << 32 | page) ^ (splitmix64(cfg.seed) & 0xFFFFFFFF00000000ULL) ^
         0x8000000000000000ULL;
}

}  // namespace memvirt
