// `memvirt bench tmem`: real files of this machine, split into 4 KiB pages, put into and got
// back from a real tmem pool (Tmem over BytesTmemBackend, one private ephemeral pool) with
// each compressor, without and with dedup; beside it the compressor library alone on the
// same pages (compress and decompress each page, no pool): the ceiling the pool is held to.
// Every page got back is checked against the original bytes.
//
// `bench tmem --profile-out` instead measures the compression profile
// (host/compression_profile.hpp) from lists of files per content class.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench_tmem/page_set.hpp"
#include "host/compression.hpp"
#include "host/compression_profile.hpp"

namespace memvirt {

struct TmemBenchConfig {
  std::vector<PageGroup> groups;
  std::uint64_t pages_per_group = 16384;
  std::uint64_t seed = 1;  // order in which a folder's files are sampled
  std::vector<Compressor> compressors = {Compressor::kLzo1x1, Compressor::kLz4, Compressor::kZstd};
  bool run_pool = true;
};

// The default groups: binaries under /usr/bin and /usr/lib/x86_64-linux-gnu, text under
// /usr/share/doc and /usr/share/common-licenses, and `source_tree` when not empty.
std::vector<PageGroup> default_tmem_groups(const std::string& source_tree);

// The compressor library alone: compress, then decompress, every page.
struct LibraryPass {
  double compress_cpu_s = 0, decompress_cpu_s = 0;
  std::uint64_t pages = 0;
  std::uint64_t stored_bytes = 0;                 // compressed when smaller than a page, else 4096
  std::uint64_t raw_pages = 0;                    // pages whose compressed form was not smaller
  std::vector<std::uint64_t> group_stored_bytes;  // by PageSet group
  std::uint64_t mismatches = 0;                   // pages that did not decompress to the original
  [[nodiscard]] double size_ratio() const;        // page bytes / stored bytes
};

// One pool run: put every page, then get every page back.
struct PoolPass {
  bool dedup = false;
  double put_cpu_s = 0, get_cpu_s = 0;
  std::uint64_t puts = 0, stored = 0, got = 0, mismatches = 0;
  std::uint64_t apparent_pages = 0, pages_used = 0;  // after the puts (Xen's counters)
  std::uint64_t deduped_puts = 0, compressed_puts = 0, compress_poor = 0, zero_puts = 0;
  std::uint64_t backend_bytes = 0;          // the slab's memory, metadata included
  std::uint64_t pages_used_after_gets = 0;  // 0: the exclusive gets emptied the pool
  [[nodiscard]] double size_ratio() const;  // apparent pages / pages used
  [[nodiscard]] double slab_ratio() const;  // apparent bytes / backend bytes
};

struct CompressorRun {
  Compressor compressor;
  std::string library;
  LibraryPass library_pass;
  std::optional<PoolPass> pool, pool_dedup;
};

struct TmemBenchResult {
  TmemBenchConfig config;
  std::vector<PageSetGroup> groups;
  std::uint64_t pages = 0;
  std::vector<CompressorRun> runs;
  std::string skipped_pool;  // why the pool passes did not run; empty when they ran
};

// Progress of the long passes, for a terminal line.
class TmemBenchProgress {
 public:
  virtual ~TmemBenchProgress() = default;
  virtual void reading(std::uint64_t /*pages*/) {}
  virtual void pass(std::string_view /*compressor*/, std::string_view /*what*/,
                    std::uint64_t /*done*/, std::uint64_t /*total*/) {}
  virtual void pass_done() {}
};

// Pages per CPU-second, 0 when nothing was timed.
double pages_per_cpu_second(std::uint64_t pages, double cpu_s);

LibraryPass run_library_pass(Compressor c, const PageSet& pages, TmemBenchProgress& progress);
// Needs the pools (host/tmem.hpp).
PoolPass run_pool_pass(Compressor c, bool dedup, const PageSet& pages, TmemBenchProgress& progress);
TmemBenchResult run_tmem_bench(const TmemBenchConfig& cfg, TmemBenchProgress& progress);

// -- the compression profile

struct ProfileClassInput {
  ContentClass content_class;
  std::string list_file;  // files of the class, one per line
};
// The pages of each class's files (PageSet::read_list's sampling) compressed by every
// compressor; `provenance_json` goes into the profile as it is.
CompressionProfile measure_compression_profile(const std::vector<ProfileClassInput>& classes,
                                               std::uint64_t max_pages_per_class,
                                               std::uint64_t max_pages_per_file,
                                               const std::string& provenance_json,
                                               TmemBenchProgress& progress);

}  // namespace memvirt
