#include "host/compressors.hpp"

#include <lz4.h>
#include <lzo/lzo1x.h>
// ZSTD_compress_advanced is the kernel's call (zstd_compress_cctx); libzstd deprecates it for
// ZSTD_compress2, which would shrink the tables to the page's size and so compress unlike
// the kernel.
#define ZSTD_STATIC_LINKING_ONLY
#define ZSTD_DISABLE_DEPRECATE_WARNINGS
#include <zstd.h>

#include <stdexcept>
#include <string>

namespace memvirt {
namespace {

void check_sizes(std::span<const std::byte> page, std::span<std::byte> out, std::size_t need) {
  if (page.size() != kCompressPageBytes) {
    throw std::invalid_argument("compress: input is " + std::to_string(page.size()) +
                                " bytes, not one page");
  }
  if (out.size() < need) {
    throw std::invalid_argument("compress: output has " + std::to_string(out.size()) +
                                " bytes, needs " + std::to_string(need));
  }
}

// lzo_init() checks the library's build against its headers; once per process is enough,
// and repeating it is harmless.
void lzo_init_once() {
  static const int status = lzo_init();
  if (status != LZO_E_OK) throw std::runtime_error("liblzo2: lzo_init failed");
}

}  // namespace

std::unique_ptr<PageCompressor> make_page_compressor(Compressor kind) {
  switch (kind) {
    case Compressor::kLzo1x1:
      return std::make_unique<LzoPageCompressor>();
    case Compressor::kLz4:
      return std::make_unique<Lz4PageCompressor>();
    case Compressor::kZstd:
      return std::make_unique<ZstdPageCompressor>();
  }
  throw std::invalid_argument("make_page_compressor: unknown compressor");
}

// -- LZO1X-1

LzoPageCompressor::LzoPageCompressor() : work_(new std::byte[LZO1X_1_MEM_COMPRESS]) {
  lzo_init_once();
}
LzoPageCompressor::~LzoPageCompressor() = default;

std::string LzoPageCompressor::library() const {
  return std::string("liblzo2 ") + lzo_version_string() + " lzo1x_1_compress";
}

std::size_t LzoPageCompressor::max_compressed_bytes() const {
  // liblzo2's documented worst case for LZO1X: in + in/16 + 64 + 3.
  return kCompressPageBytes + kCompressPageBytes / 16 + 64 + 3;
}

std::size_t LzoPageCompressor::compress(std::span<const std::byte> page, std::span<std::byte> out) {
  check_sizes(page, out, max_compressed_bytes());
  lzo_uint out_len = out.size();
  const int r =
      lzo1x_1_compress(reinterpret_cast<const unsigned char*>(page.data()), page.size(),
                       reinterpret_cast<unsigned char*>(out.data()), &out_len, work_.get());
  if (r != LZO_E_OK) throw std::runtime_error("lzo1x_1_compress failed: " + std::to_string(r));
  return out_len;
}

bool LzoPageCompressor::decompress(std::span<const std::byte> in, std::span<std::byte> page) {
  if (page.size() != kCompressPageBytes) return false;
  lzo_uint out_len = page.size();
  const int r =
      lzo1x_decompress_safe(reinterpret_cast<const unsigned char*>(in.data()), in.size(),
                            reinterpret_cast<unsigned char*>(page.data()), &out_len, nullptr);
  return r == LZO_E_OK && out_len == kCompressPageBytes;
}

// -- LZ4

Lz4PageCompressor::Lz4PageCompressor()
    : state_(new std::byte[static_cast<std::size_t>(LZ4_sizeofState())]) {}
Lz4PageCompressor::~Lz4PageCompressor() = default;

std::string Lz4PageCompressor::library() const {
  return std::string("liblz4 ") + LZ4_versionString() +
         " LZ4_compress_default (LZ4_compress_fast_extState, acceleration 1)";
}

std::size_t Lz4PageCompressor::max_compressed_bytes() const {
  return static_cast<std::size_t>(LZ4_COMPRESSBOUND(kCompressPageBytes));
}

std::size_t Lz4PageCompressor::compress(std::span<const std::byte> page, std::span<std::byte> out) {
  check_sizes(page, out, max_compressed_bytes());
  // LZ4_compress_default is this call with its state on the stack; the state here is ours.
  const int n = LZ4_compress_fast_extState(
      state_.get(), reinterpret_cast<const char*>(page.data()), reinterpret_cast<char*>(out.data()),
      static_cast<int>(page.size()), static_cast<int>(out.size()), 1);
  if (n <= 0) throw std::runtime_error("LZ4_compress_fast_extState failed");
  return static_cast<std::size_t>(n);
}

bool Lz4PageCompressor::decompress(std::span<const std::byte> in, std::span<std::byte> page) {
  if (page.size() != kCompressPageBytes || in.size() > static_cast<std::size_t>(INT32_MAX)) {
    return false;
  }
  const int n = LZ4_decompress_safe(reinterpret_cast<const char*>(in.data()),
                                    reinterpret_cast<char*>(page.data()),
                                    static_cast<int>(in.size()), static_cast<int>(page.size()));
  return n == static_cast<int>(kCompressPageBytes);
}

// -- zstd

struct ZstdPageCompressor::Contexts {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  // The kernel's parameters: level 3 for an input of unknown size (crypto/zstd.c
  // zstd_params()), not the smaller tables libzstd would pick knowing the page's size.
  ZSTD_parameters params = ZSTD_getParams(kLevel, 0, 0);
  ~Contexts() {
    ZSTD_freeCCtx(cctx);
    ZSTD_freeDCtx(dctx);
  }
};

ZstdPageCompressor::ZstdPageCompressor() : ctx_(std::make_unique<Contexts>()) {
  if (ctx_->cctx == nullptr || ctx_->dctx == nullptr) {
    throw std::runtime_error("libzstd: cannot create contexts");
  }
}
ZstdPageCompressor::~ZstdPageCompressor() = default;

std::string ZstdPageCompressor::library() const {
  return std::string("libzstd ") + ZSTD_versionString() +
         " ZSTD_compress_advanced, level 3, ZSTD_getParams(3, 0, 0)";
}

std::size_t ZstdPageCompressor::max_compressed_bytes() const {
  return ZSTD_COMPRESSBOUND(kCompressPageBytes);
}

std::size_t ZstdPageCompressor::compress(std::span<const std::byte> page,
                                         std::span<std::byte> out) {
  check_sizes(page, out, max_compressed_bytes());
  const std::size_t n = ZSTD_compress_advanced(ctx_->cctx, out.data(), out.size(), page.data(),
                                               page.size(), nullptr, 0, ctx_->params);
  if (ZSTD_isError(n) != 0) {
    throw std::runtime_error(std::string("ZSTD_compress_advanced: ") + ZSTD_getErrorName(n));
  }
  return n;
}

bool ZstdPageCompressor::decompress(std::span<const std::byte> in, std::span<std::byte> page) {
  if (page.size() != kCompressPageBytes) return false;
  const std::size_t n =
      ZSTD_decompressDCtx(ctx_->dctx, page.data(), page.size(), in.data(), in.size());
  return ZSTD_isError(n) == 0 && n == kCompressPageBytes;
}

}  // namespace memvirt
