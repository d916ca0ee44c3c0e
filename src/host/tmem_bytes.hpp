// Tmem's data over real bytes: pages compressed by a real compressor (host/compressors.hpp),
// kept in a slab of size classes the backend owns, read back decompressed.
//
// Stored form: the compressor's output when asked to compress and it is smaller than a page,
// else the raw page. TmemData::bytes holds the stored form followed by an 8-byte trailer, the
// xxh64 of the page's 4 KiB taken by prepare(); keep() takes the trailer off and keeps it for
// verify(). (TmemData has no checksum field; see the trailer's note in tmem_bytes.cpp.)
//
// Memory: stored forms live in 64 KiB chunks, one set per size class of 32 bytes (32, 64, ...,
// 4096), so a stored form wastes under 32 bytes to rounding; each kept page also takes an
// Entry (32 bytes) of metadata; chunks are allocated as classes fill and never returned
// (freed slots are reused). A raw page of zeros keeps no slot at all. memory() reports each.
//
// TmemData::content is carried through and returned by load(); nothing here depends on it, so
// pages read from real files may all carry one fingerprint.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "host/compression.hpp"
#include "host/compressors.hpp"
#include "host/tmem.hpp"

namespace memvirt {

class BytesTmemBackend final : public TmemBackend {
 public:
  static constexpr std::size_t kChecksumTrailerBytes = 8;
  static constexpr std::size_t kSlotGranule = 32;
  static constexpr std::size_t kChunkBytes = 64 * 1024;

  explicit BytesTmemBackend(Compressor compressor);
  ~BytesTmemBackend() override;
  BytesTmemBackend(const BytesTmemBackend&) = delete;
  BytesTmemBackend& operator=(const BytesTmemBackend&) = delete;

  // `page.bytes` must be one page (std::invalid_argument otherwise).
  TmemData prepare(const TmemPage& page, bool compress) override;
  // `data` must come from prepare() (std::invalid_argument when its trailer is missing).
  std::uint64_t keep(TmemData&& data) override;
  // `out` is one page, or empty to read only the content. Throws std::runtime_error when the
  // kept bytes no longer decompress (corruption).
  Fingerprint load(std::uint64_t handle, std::span<std::byte> out) override;
  [[nodiscard]] int compare(const TmemData& a, std::uint64_t b) const override;
  [[nodiscard]] int compare(std::uint64_t a, std::uint64_t b) const override;
  void release(std::uint64_t handle) override;
  [[nodiscard]] bool verify(std::uint64_t handle) const override;

  [[nodiscard]] Compressor compressor() const { return compressor_->kind(); }

  struct MemoryUse {
    std::uint64_t pages = 0;           // kept pages
    std::uint64_t stored_bytes = 0;    // their stored forms
    std::uint64_t slot_bytes = 0;      // slots holding them (stored bytes rounded up)
    std::uint64_t chunk_bytes = 0;     // chunks allocated (slots in use and free)
    std::uint64_t metadata_bytes = 0;  // entry table, free lists, chunk tables
    [[nodiscard]] std::uint64_t total_bytes() const { return chunk_bytes + metadata_bytes; }
  };
  [[nodiscard]] MemoryUse memory() const;

  // The kept stored form of `handle`, writable: for tests that corrupt it. Empty for a raw
  // page of zeros (it keeps no bytes).
  std::span<std::byte> stored_form_for_testing(std::uint64_t handle);

 private:
  struct Entry {
    Fingerprint content;
    std::uint64_t checksum = 0;
    std::uint32_t chunk = 0;
    std::uint32_t size = 0;  // stored form's bytes
    std::uint16_t slot = 0;
    std::uint8_t size_class = 0;
    bool in_use = false;
    bool compressed = false;
    bool zero_raw = false;  // a raw page of zeros: no slot
  };
  struct SizeClass {
    std::vector<std::unique_ptr<std::byte[]>> chunks;
    std::vector<std::uint32_t> free_slots;  // chunk << 16 | slot
  };
  static constexpr std::size_t kClasses = kCompressPageBytes / kSlotGranule;

  [[nodiscard]] const Entry& entry(std::uint64_t handle) const;
  [[nodiscard]] std::span<const std::byte> stored(const Entry& e) const;
  // Decodes `e` into `out` (one page); false when its bytes no longer decode.
  bool decode(const Entry& e, std::span<std::byte> out) const;

  std::unique_ptr<PageCompressor> compressor_;  // decompress changes its work memory
  std::vector<std::byte> scratch_;              // compressor output, before it is kept
  mutable std::vector<std::byte> verify_page_;  // verify()'s decoded page
  std::array<std::byte, kCompressPageBytes> zero_page_{};
  std::vector<Entry> entries_;  // by handle
  std::vector<std::uint64_t> free_handles_;
  std::array<SizeClass, kClasses> classes_;
  std::uint64_t pages_ = 0, stored_bytes_ = 0, slot_bytes_ = 0, chunk_bytes_ = 0;
};

}  // namespace memvirt
