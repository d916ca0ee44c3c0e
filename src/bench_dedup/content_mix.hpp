// The content `memvirt bench dedup` fills memory with: `regions` equal regions (as VMs booted
// from one image), each holding the same set of shared contents, plus pages of zeros, pages
// unique to themselves, and volatile pages a writer thread keeps rewriting while the dedup
// engines scan. Every page's content is a fingerprint (host/content.hpp), so the real runs
// and the model see the same pages: equal fingerprints are equal bytes.
#pragma once

#include <cstdint>
#include <vector>

#include "core/types.hpp"
#include "host/content.hpp"

namespace memvirt {

struct ContentMixConfig {
  Bytes total{256ULL << 20};
  unsigned regions = 4;
  double shared = 0.5;      // share of each region holding the regions' common contents
  double zero = 0.1;        // share of pages of zeros
  double rewritten = 0.05;  // share of pages the writer rewrites while scanning
  std::uint64_t seed = 1;   // unique contents and the layout derive from it
};

struct ContentMix {
  std::vector<Fingerprint> pages;        // initial content of every page
  std::vector<std::uint32_t> rewritten;  // pages the writer rewrites, ascending
  std::uint64_t shared_pages = 0;        // pages holding a common content
  std::uint64_t distinct_shared = 0;     // common contents (each in every region)
  std::uint64_t zero_pages = 0;
  std::uint64_t unique_pages = 0;  // volatile pages not included
  // Pages that need no frame of their own once every duplicate is merged and every page of
  // zeros is shared or discarded (an upper bound for any engine).
  [[nodiscard]] std::uint64_t mergeable_pages() const {
    return shared_pages - distinct_shared + zero_pages;
  }
};

// Throws InputError (field named as the command's flag) on fractions outside [0, 1], fractions
// summing above 1, no regions, or fewer pages than regions.
ContentMix make_content_mix(const ContentMixConfig& cfg);

// The content the writer gives `page` on its `generation`-th rewrite (1, 2, ...): unique.
Fingerprint rewritten_content(const ContentMixConfig& cfg, std::uint32_t page,
                              std::uint64_t generation);

}  // namespace memvirt
