// CPU cost accounting. Every modelled operation charges its cost, taken from a calibration
// profile, to an account (a guest's vCPUs, a host daemon, a pool of worker threads). CPU% is
// derived: busy time over virtual time, per thread of the account.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/params.hpp"
#include "core/types.hpp"

namespace memvirt {

// Operations whose cost the profile holds. Add an entry here and in kOpInfo together.
enum class Op : std::uint8_t {
  kFirstTouchFault,         // trap, allocate, zero and map one 4 KiB page (a kernel's anon fault)
  kZeroFillPage,            // memset of one 4 KiB page by a program
  kMadviseDontneedSingle,   // madvise(MADV_DONTNEED) of one page, one call per page
  kMadviseDontneedBatched,  // per page of a madvise(MADV_DONTNEED) over a large range
  kXxh64Page,               // xxh64 of one 4 KiB page
  kJhash2Page,              // jhash2 of one 4 KiB page (KSM checksum before Linux 6.x xxh64)
  kMemcmpPage,              // memcmp of two equal 4 KiB pages
  kMemcmpPageDiffer,        // memcmp of two pages that differ (returns at the first difference)
  kMprotectPage,            // write-protect one page (page-table update, TLB flush)
  kBitmapScanWord,          // scan one 64-bit word of a page bitmap for set bits
  kAtomicBitUpdate,         // one atomic set or clear of a bit in a shared page bitmap
  kVirtqueueRequest,        // one virtqueue request to the host and its answer
  kStructPageVisit,         // a kernel walk step that touches a cold struct page
  kKsmScanPage,             // ksmd's own work per page it scans, beyond checksum and trees
  kKernelPteUpdate,         // write-protect or replace one PTE from inside the host kernel
  kPageCacheReadPage,       // read(2) of one cached 4 KiB page (lookup and copy to the program)
  kPageCacheWritePage,      // write(2) of one 4 KiB page into the page cache (it becomes dirty)
  kReclaimCleanPage,        // reclaim's work to take one clean page out of the page cache
  kPageCopy,                // memcpy of one 4 KiB page (tmem's copy in or out)
  kLzoCompressPage,         // LZO1X-1 compression of one 4 KiB page
  kLzoDecompressPage,       // LZO1X decompression of one compressed page
  kLz4CompressPage,         // LZ4 compression of one 4 KiB page
  kLz4DecompressPage,       // LZ4 decompression of one compressed page
  kZstdCompressPage,        // zstd (level 3) compression of one 4 KiB page
  kZstdDecompressPage,      // zstd decompression of one compressed page
  kCount
};

struct OpInfo {
  std::string_view key;
  std::string_view description;
  // Operations that calibration cannot measure on an ordinary host carry a published or
  // estimated value; a profile may omit them and then gets this one. 0: must be measured.
  double reference_ns = 0;
  std::string_view reference_source = {};
};
inline constexpr std::array<OpInfo, static_cast<std::size_t>(Op::kCount)> kOpInfo{{
    {"first_touch_fault", "first write to an anonymous page: fault, allocate, zero, map"},
    {"zero_fill_page", "memset of one 4 KiB page"},
    {"madvise_dontneed_single", "madvise(MADV_DONTNEED) of a single page per call"},
    {"madvise_dontneed_batched", "per page of one madvise(MADV_DONTNEED) over 64 MiB"},
    {"xxh64_page", "xxh64 hash of one 4 KiB page"},
    {"jhash2_page", "jhash2 (Jenkins lookup3 over 32-bit words) of one 4 KiB page"},
    {"memcmp_page", "memcmp of two equal 4 KiB pages"},
    {"memcmp_page_differ", "memcmp of two different 4 KiB pages (early exit)"},
    {"mprotect_page", "mprotect of one page read-only, per page (page-table update, TLB flush)"},
    {"bitmap_scan_word", "scan of one 64-bit bitmap word (64 pages) for set bits"},
    {"atomic_bit_update", "atomic set or clear of one bit in a shared bitmap"},
    {"virtqueue_request",
     "one virtqueue request: guest kick (VM exit), host handler, used-buffer interrupt", 5000,
     "estimate, not measured: a VM exit and entry cost about 1-2 us on recent x86 "
     "(kvm-unit-tests vmexit), plus QEMU's handler and the interrupt back; a process cannot "
     "measure it and this machine's nested PVM cannot run the guest that could"},
    {"struct_page_visit", "one step of a kernel list walk touching a cold struct page", 90,
     "estimate, not measured: one DRAM access, about 90 ns (U. Drepper, What every "
     "programmer should know about memory, 2007)"},
    {"ksm_scan_page",
     "ksmd's work per page scanned beyond its checksum, tree comparisons and merges: finding "
     "the page through the page tables, its rmap_item, page reference and lock",
     3100,
     "measured by memvirt bench dedup --shared 0 --zero 0 --rewritten 0 (65,536 unique pages, "
     "Linux 6.18, AMD EPYC VM, 2026-11-22): ksmd CPU per page scanned minus the model's other "
     "charges, 3.03-3.21 us in 3 runs; a process cannot measure it without running KSM"},
    {"kernel_pte_update",
     "write-protect or replace one page-table entry from inside the host kernel, TLB flush "
     "included (KSM's write_protect_page and replace_page)",
     170,
     "measured by memvirt bench dedup --shared 1 --zero 0 --rewritten 0 (16,384 contents in 4 "
     "copies, Linux 6.18, AMD EPYC VM, 2026-11-22): ksmd CPU minus the model's other charges, "
     "per PTE its merges update, -0.12 to +0.33 us in 3 runs (mean 0.17); a process can only "
     "time mprotect, whose system call and VMA split cost ten times more"},
    {"page_cache_read_page", "read(2) of one cached 4 KiB page in 128 KiB calls", 315,
     "measured by scripts/measure-page-cache.py (256 MiB file on ext4, Linux 6.18, AMD EPYC "
     "VM, 2026-12-01): 311-325 ns per page in 6 runs"},
    {"page_cache_write_page", "write(2) of one 4 KiB page over a cached page in 128 KiB calls", 410,
     "measured by scripts/measure-page-cache.py (256 MiB file on ext4, Linux 6.18, AMD EPYC "
     "VM, 2026-12-01): 396-434 ns per page in 6 runs"},
    {"reclaim_clean_page", "take one clean, unmapped page out of the page cache and free it", 165,
     "measured by scripts/measure-page-cache.py as posix_fadvise(POSIX_FADV_DONTNEED) of "
     "cached clean pages (invalidate_mapping_pages, the per-page work of __remove_mapping "
     "without the LRU scan), Linux 6.18, AMD EPYC VM, 2026-12-01: 162 and 169 ns per page"},
    // Compressor costs are measured on pages of real files found on the calibrating machine,
    // half ELF executables and libraries (/usr/bin, /usr/lib/x86_64-linux-gnu), half C headers
    // (/usr/include): the binary and header classes of the kernel-build profile
    // (profiles/compression/kernel-build.json). The source field records the pages' mean
    // compression ratio, or says when generated pages had to stand in.
    {"page_copy", "memcpy of one 4 KiB page to another, both out of cache"},
    {"lzo_compress_page",
     "LZO1X-1 (liblzo2 lzo1x_1_compress) of one 4 KiB page of real files: half binaries, "
     "half C headers"},
    {"lzo_decompress_page",
     "LZO1X decompression (lzo1x_decompress_safe) of one page LZO1X-1 compressed, real files"},
    {"lz4_compress_page",
     "LZ4_compress_default of one 4 KiB page of real files: half binaries, half C headers"},
    {"lz4_decompress_page", "LZ4_decompress_safe of one page LZ4 compressed, real files"},
    {"zstd_compress_page",
     "zstd level 3 (Linux crypto/zstd.c parameters) of one 4 KiB page of real files: half "
     "binaries, half C headers"},
    {"zstd_decompress_page", "ZSTD_decompressDCtx of one page zstd compressed, real files"},
}};

// Picoseconds of CPU time, exact and additive.
struct CpuTime {
  std::uint64_t ps = 0;
  CpuTime& operator+=(CpuTime o) {
    ps += o.ps;
    return *this;
  }
  CpuTime operator*(std::uint64_t n) const { return CpuTime{ps * n}; }
  CpuTime operator+(CpuTime o) const { return CpuTime{ps + o.ps}; }
  auto operator<=>(const CpuTime&) const = default;
  static CpuTime from(Duration d) { return CpuTime{static_cast<std::uint64_t>(d.ns()) * 1000}; }
  [[nodiscard]] Duration duration() const { return Duration{static_cast<std::int64_t>(ps / 1000)}; }
};

class CostProfile {
 public:
  CostProfile();
  // Reads a profile file; every operation must be present, each with ns (or cycles at the
  // profile's cpu_ghz) and a source.
  static CostProfile load(const std::string& file);
  static CostProfile from_params(Params p);

  [[nodiscard]] CpuTime cost(Op op) const { return costs_[static_cast<std::size_t>(op)]; }
  [[nodiscard]] double ns(Op op) const { return static_cast<double>(cost(op).ps) / 1000.0; }
  [[nodiscard]] const std::string& source(Op op) const {
    return sources_[static_cast<std::size_t>(op)];
  }
  [[nodiscard]] double cpu_ghz() const { return cpu_ghz_; }
  [[nodiscard]] const std::string& machine() const { return machine_; }
  void set(Op op, double ns, std::string source);
  void set_machine(std::string machine, double cpu_ghz) {
    machine_ = std::move(machine);
    cpu_ghz_ = cpu_ghz;
  }
  // The profile as YAML text, loadable by load().
  [[nodiscard]] std::string to_yaml() const;

 private:
  std::array<CpuTime, static_cast<std::size_t>(Op::kCount)> costs_{};
  std::array<std::string, static_cast<std::size_t>(Op::kCount)> sources_{};
  std::string machine_;
  double cpu_ghz_ = 0;
};

// Busy time of one role (a VM's vCPUs, a daemon, a worker pool) with its thread count.
class CostAccount {
 public:
  CostAccount(std::string name, unsigned threads) : name_(std::move(name)), threads_(threads) {}
  void charge(CpuTime t) { busy_ += t; }
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] unsigned threads() const { return threads_; }
  void add_threads(unsigned n) { threads_ += n; }
  [[nodiscard]] CpuTime busy() const { return busy_; }
  // Percent of one core, averaged per thread of the account, over `elapsed`.
  [[nodiscard]] double cpu_percent(Duration elapsed) const;

 private:
  std::string name_;
  unsigned threads_;
  CpuTime busy_{};
};

// The accounts of one simulation, in creation order.
class Accounts {
 public:
  // Returns the account with this name, creating it (with `threads`) the first time.
  CostAccount& get(const std::string& name, unsigned threads = 1);
  [[nodiscard]] const std::vector<std::unique_ptr<CostAccount>>& all() const { return accounts_; }

 private:
  std::vector<std::unique_ptr<CostAccount>> accounts_;
};

}  // namespace memvirt
