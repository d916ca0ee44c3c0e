// Real page compressors: one 4 KiB page at a time, as Xen tmem (tmh_compress) and Linux's
// zswap and zram run them.
//  - LZO1X-1 (liblzo2's lzo1x_1_compress): Xen tmem's compressor and zswap's first default
//    (Linux crypto/lzo.c).
//  - LZ4 (liblz4's LZ4_compress_default, acceleration 1): Linux crypto/lz4.c.
//  - zstd at level 3 with the parameters of an input of unknown size: Linux 6.1's
//    crypto/zstd.c (ZSTD_DEF_LEVEL 3, zstd_get_params(ZSTD_DEF_LEVEL, 0)), which zswap and
//    zram use through the crypto API.
// Each object owns its work memory (LZO's dictionary, LZ4's hash table, zstd's contexts), so
// one object serves one thread; make one per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "host/compression.hpp"

namespace memvirt {

inline constexpr std::size_t kCompressPageBytes = 4096;

class PageCompressor {
 public:
  virtual ~PageCompressor() = default;
  [[nodiscard]] virtual Compressor kind() const = 0;
  // The library, its version as loaded and the call, e.g. "liblz4 1.9.4 LZ4_compress_default".
  [[nodiscard]] virtual std::string library() const = 0;
  // Room `compress` may need for a page's compressed form; more than a page, since an
  // incompressible page grows.
  [[nodiscard]] virtual std::size_t max_compressed_bytes() const = 0;
  // Compresses `page` (exactly kCompressPageBytes) into `out`, which holds at least
  // max_compressed_bytes(). Returns the compressed size, which may exceed a page: the caller
  // decides whether to keep it. Deterministic: equal pages give equal compressed bytes.
  // Throws std::invalid_argument on wrong sizes, std::runtime_error if the library fails.
  virtual std::size_t compress(std::span<const std::byte> page, std::span<std::byte> out) = 0;
  // Decompresses `in` (a compressed form made by this compressor) into `page`
  // (kCompressPageBytes). Returns false, never throws, when `in` is corrupt or does not
  // decode to exactly one page; `page` is then unspecified.
  [[nodiscard]] virtual bool decompress(std::span<const std::byte> in,
                                        std::span<std::byte> page) = 0;
};

// A compressor of the given kind with its own work memory.
std::unique_ptr<PageCompressor> make_page_compressor(Compressor kind);

class LzoPageCompressor final : public PageCompressor {
 public:
  LzoPageCompressor();
  ~LzoPageCompressor() override;
  [[nodiscard]] Compressor kind() const override { return Compressor::kLzo1x1; }
  [[nodiscard]] std::string library() const override;
  [[nodiscard]] std::size_t max_compressed_bytes() const override;
  std::size_t compress(std::span<const std::byte> page, std::span<std::byte> out) override;
  [[nodiscard]] bool decompress(std::span<const std::byte> in, std::span<std::byte> page) override;

 private:
  std::unique_ptr<std::byte[]> work_;  // LZO1X_1_MEM_COMPRESS bytes
};

class Lz4PageCompressor final : public PageCompressor {
 public:
  Lz4PageCompressor();
  ~Lz4PageCompressor() override;
  [[nodiscard]] Compressor kind() const override { return Compressor::kLz4; }
  [[nodiscard]] std::string library() const override;
  [[nodiscard]] std::size_t max_compressed_bytes() const override;
  std::size_t compress(std::span<const std::byte> page, std::span<std::byte> out) override;
  [[nodiscard]] bool decompress(std::span<const std::byte> in, std::span<std::byte> page) override;

 private:
  std::unique_ptr<std::byte[]> state_;  // LZ4_sizeofState() bytes, 8-byte aligned
};

class ZstdPageCompressor final : public PageCompressor {
 public:
  // Linux's crypto/zstd.c level.
  static constexpr int kLevel = 3;
  ZstdPageCompressor();
  ~ZstdPageCompressor() override;
  ZstdPageCompressor(const ZstdPageCompressor&) = delete;
  ZstdPageCompressor& operator=(const ZstdPageCompressor&) = delete;
  [[nodiscard]] Compressor kind() const override { return Compressor::kZstd; }
  [[nodiscard]] std::string library() const override;
  [[nodiscard]] std::size_t max_compressed_bytes() const override;
  std::size_t compress(std::span<const std::byte> page, std::span<std::byte> out) override;
  [[nodiscard]] bool decompress(std::span<const std::byte> in, std::span<std::byte> page) override;

 private:
  struct Contexts;
  std::unique_ptr<Contexts> ctx_;
};

}  // namespace memvirt
