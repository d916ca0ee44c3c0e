// Measured compressed sizes of pages, per compressor and content class: what the simulator's
// tmem (FingerprintTmemBackend) charges a page of a class, from real pages of that class
// compressed by the real compressors (scripts/measure-compression.sh writes the file).
// Format `memvirt-compression-profile/1`: profiles/compression/README.md.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "host/compression.hpp"
#include "host/content.hpp"

namespace memvirt {

// One class's pages under one compressor.
struct CompressionClassStats {
  std::uint64_t pages = 0;       // pages measured
  double mean_stored_bytes = 0;  // stored form: compressed when smaller than a page, else raw
  double raw_share = 0;          // pages whose compressed form was not smaller than a page
  double zero_share = 0;         // pages of zeros
  double same_filled_share = 0;  // other pages of one repeated 8-byte word (zswap's test)
  std::vector<std::uint32_t> quantiles;  // stored bytes at shares 0, 1/(n-1), ..., 1; n >= 2

  // From every page's stored bytes (kPageSize when stored raw).
  static CompressionClassStats from_sizes(std::vector<std::uint32_t> stored_bytes,
                                          std::uint64_t zero_pages, std::uint64_t same_filled_pages,
                                          unsigned quantile_points = 21);
};

class CompressionProfile {
 public:
  // Reads a profile; throws InputError naming the file and the field on anything wrong.
  static CompressionProfile load(const std::string& path);

  [[nodiscard]] bool has(Compressor c) const;
  // Bytes a page of content `fp` takes compressed by `c`; kPageSize when it does not compress
  // below a page. Deterministic in fp: its class's distribution (content_class(fp)) sampled
  // at a share chosen by a hash of fp, the same share for every compressor (a page that
  // compresses well under one compresses well under all). The zero page takes what the
  // compressor makes of a page of zeros; kOpaque pages never compress. Throws InputError
  // naming the file and field when the profile lacks `c` or the class.
  [[nodiscard]] std::uint32_t compressed_bytes(Compressor c, Fingerprint fp) const;
  // Whether content `fp` is a page of one repeated 8-byte word (zswap's same-filled test):
  // the zero page, and the measured zero and same-filled shares of its class, taken at the
  // small end of the share compressed_bytes() samples (those pages compress best).
  [[nodiscard]] bool same_filled(Compressor c, Fingerprint fp) const;
  // Page bytes over mean stored bytes: 1 for kOpaque unless measured; InputError when missing.
  [[nodiscard]] double mean_ratio(Compressor c, ContentClass k) const;
  // The class's measurement, or nullptr.
  [[nodiscard]] const CompressionClassStats* stats(Compressor c, ContentClass k) const;
  [[nodiscard]] const std::string& library(Compressor c) const;
  [[nodiscard]] std::uint32_t zero_page_bytes(Compressor c) const;
  [[nodiscard]] const std::string& file() const { return file_; }

  // Building a profile (the measurement); to_json() writes what load() reads.
  void set_compressor(Compressor c, std::string library, std::uint32_t zero_page_bytes);
  void set_stats(Compressor c, ContentClass k, CompressionClassStats s);
  // `provenance_json`: a JSON object (what files, which machine, tool versions).
  void set_provenance(std::string provenance_json) {
    provenance_json_ = std::move(provenance_json);
  }
  [[nodiscard]] std::string to_json() const;

 private:
  struct PerCompressor {
    bool present = false;
    std::string library;
    std::uint32_t zero_page_bytes = 0;
    std::array<std::optional<CompressionClassStats>, 8> classes;
  };
  [[nodiscard]] const PerCompressor& require(Compressor c) const;
  [[nodiscard]] const CompressionClassStats& require(Compressor c, ContentClass k) const;

  std::array<PerCompressor, 3> compressors_;
  std::string provenance_json_ = "{}";
  std::string file_;  // where it was loaded from, for errors
};

class Params;

// The `compression_profile` parameter of a component that compresses with `c` (its
// `compressor` parameter): declared in `p`, loaded when `load`, and refused at `compressor`
// when the profile has no measurements for it. nullptr when not loaded.
std::shared_ptr<const CompressionProfile> compression_profile_param(Params& p, Compressor c,
                                                                    bool load = true);

}  // namespace memvirt
