// The page compressors memvirt models and runs: LZO1X-1 (Xen tmem's tmh_compress, zswap's
// first default), LZ4 and zstd (zswap's and zram's later choices).
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>

#include "core/cost.hpp"
#include "core/spelling.hpp"

namespace memvirt {

enum class Compressor : std::uint8_t { kLzo1x1, kLz4, kZstd };
inline constexpr std::array<Spelling<Compressor>, 3> kCompressorSpellings{{
    {Compressor::kLzo1x1, "lzo1x-1"},
    {Compressor::kLz4, "lz4"},
    {Compressor::kZstd, "zstd"},
}};

// The cost table's operations for one page through a compressor.
struct CompressorOps {
  Op compress, decompress;
};
inline CompressorOps compressor_ops(Compressor c) {
  switch (c) {
    case Compressor::kLzo1x1:
      return {Op::kLzoCompressPage, Op::kLzoDecompressPage};
    case Compressor::kLz4:
      return {Op::kLz4CompressPage, Op::kLz4DecompressPage};
    case Compressor::kZstd:
      return {Op::kZstdCompressPage, Op::kZstdDecompressPage};
  }
  throw std::logic_error("unknown compressor");
}

}  // namespace memvirt
