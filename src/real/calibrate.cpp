#include "real/calibrate.hpp"

#include <fmt/format.h>
#include <sys/mman.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "core/rng.hpp"
#include "host/compressors.hpp"
#include "host/content.hpp"

namespace memvirt {
namespace {

using Clock = std::chrono::steady_clock;

class Mapping {
 public:
  explicit Mapping(std::size_t bytes) : len_(bytes) {
    void* p = mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("calibrate: mmap failed");
    base_ = static_cast<std::byte*>(p);
  }
  ~Mapping() { munmap(base_, len_); }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  [[nodiscard]] std::byte* page(std::size_t i) const { return base_ + i * 4096; }
  void touch_all() const {
    for (std::size_t off = 0; off < len_; off += 4096) base_[off] = std::byte{1};
  }

 private:
  std::byte* base_ = nullptr;
  std::size_t len_;
};

// Median over `repeats` of the ns per page that `body(pages)` takes.
template <typename Setup, typename Body>
double median_ns_per_page(const CalibrationOptions& opt, Setup setup, Body body) {
  std::vector<double> samples;
  for (int r = 0; r < opt.repeats; ++r) {
    setup();
    const auto t0 = Clock::now();
    body();
    const auto t1 = Clock::now();
    samples.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() /
                      static_cast<double>(opt.pages));
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// As median_ns_per_page, in CPU time of the measuring thread: pure computation (copies,
// compression) measured so on a busy machine does not count the time other programs run.
template <typename Body>
double median_cpu_ns_per_page(const CalibrationOptions& opt, Body body) {
  std::vector<double> samples;
  for (int r = 0; r < opt.repeats; ++r) {
    const double t0 = thread_cpu_ns();
    body();
    samples.push_back((thread_cpu_ns() - t0) / static_cast<double>(opt.pages));
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

std::pair<std::string, double> cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  double mhz = 0;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    const std::string value = line.substr(std::min(line.size(), colon + 2));
    if (key == "model name" && model == "unknown CPU") model = value;
    if (key == "cpu MHz" && mhz == 0) mhz = std::atof(value.c_str());
  }
  return {model, mhz / 1000.0};
}

volatile std::uint64_t g_sink;  // keeps measured results alive

// Bob Jenkins' lookup3 hash over 32-bit words, the algorithm of Linux's jhash2(), which KSM
// used as its page checksum (calc_checksum: jhash2(page, PAGE_SIZE / 4, 17)) until xxh64.
std::uint32_t rotl32(std::uint32_t x, int k) {
  return (x << k) | (x >> (32 - k));
}
std::uint32_t jhash2(const std::uint32_t* k, std::size_t length, std::uint32_t initval) {
  std::uint32_t a = 0xdeadbeef + (static_cast<std::uint32_t>(length) << 2) + initval;
  std::uint32_t b = a;
  std::uint32_t c = a;
  while (length > 3) {
    a += k[0];
    b += k[1];
    c += k[2];
    a -= c;
    a ^= rotl32(c, 4);
    c += b;
    b -= a;
    b ^= rotl32(a, 6);
    a += c;
    c -= b;
    c ^= rotl32(b, 8);
    b += a;
    a -= c;
    a ^= rotl32(c, 16);
    c += b;
    b -= a;
    b ^= rotl32(a, 19);
    a += c;
    c -= b;
    c ^= rotl32(b, 4);
    b += a;
    length -= 3;
    k += 3;
  }
  switch (length) {
    case 3:
      c += k[2];
      [[fallthrough]];
    case 2:
      b += k[1];
      [[fallthrough]];
    case 1:
      a += k[0];
      c ^= b;
      c -= rotl32(b, 14);
      a ^= c;
      a -= rotl32(c, 11);
      b ^= a;
      b -= rotl32(a, 25);
      c ^= b;
      c -= rotl32(b, 16);
      a ^= c;
      a -= rotl32(c, 4);
      b ^= a;
      b -= rotl32(a, 14);
      c ^= b;
      c -= rotl32(b, 24);
      break;
    default:
      break;
  }
  return c;
}

// Up to `pages` pages of the regular files under `roots` (sorted, symbolic links left out)
// that `take` accepts, appended to `out`; returns how many were added.
std::uint64_t read_file_pages(const std::vector<std::filesystem::path>& roots,
                              const std::function<bool(const std::filesystem::path&)>& take,
                              std::uint64_t pages, std::vector<std::byte>& out) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const fs::path& root : roots) {
    std::error_code ec;
    for (fs::recursive_directory_iterator
             it(root, fs::directory_options::skip_permission_denied, ec),
         end;
         it != end; it.increment(ec)) {
      if (ec) break;
      if (!it->is_symlink(ec) && it->is_regular_file(ec)) files.push_back(it->path());
    }
  }
  std::sort(files.begin(), files.end());
  std::uint64_t added = 0;
  std::vector<std::byte> page(4096);
  for (const fs::path& f : files) {
    if (added >= pages) break;
    if (!take(f)) continue;
    std::ifstream in(f, std::ios::binary);
    while (added < pages && in) {
      std::fill(page.begin(), page.end(), std::byte{0});
      in.read(reinterpret_cast<char*>(page.data()), 4096);
      if (in.gcount() == 0) break;
      out.insert(out.end(), page.begin(), page.end());
      ++added;
    }
  }
  return added;
}

bool is_elf(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::memcmp(magic,
                                          "\x7f"
                                          "ELF",
                                          4) == 0;
}

// Pages for the compressor costs: real files of this machine, half ELF binaries and half C
// headers (the kernel-build profile's binary and header classes); generated pages of class 3
// (half random words) fill in what the machine lacks. `how` says which.
std::vector<std::byte> compressor_pages(std::uint64_t pages, std::string* how) {
  std::vector<std::byte> out;
  const std::uint64_t bins =
      read_file_pages({"/usr/bin", "/usr/lib/x86_64-linux-gnu"}, is_elf, pages / 2, out);
  const std::uint64_t headers = read_file_pages(
      {"/usr/include"}, [](const std::filesystem::path& p) { return p.extension() == ".h"; },
      pages - bins, out);
  std::uint64_t generated = 0;
  std::vector<std::byte> page(4096);
  while (out.size() < pages * 4096) {
    generate_page_bytes(make_fingerprint(++generated, 3U), page);
    out.insert(out.end(), page.begin(), page.end());
  }
  *how = fmt::format(
      "{} pages of ELF files (/usr/bin, /usr/lib/x86_64-linux-gnu), {} of C "
      "headers (/usr/include){}",
      bins, headers, generated ? fmt::format(", {} generated (class 3)", generated) : "");
  return out;
}

}  // namespace

CostProfile calibrate(const CalibrationOptions& opt,
                      const std::function<void(const std::string&)>& log) {
  const std::size_t bytes = opt.pages * 4096;
  CostProfile profile;
  const auto [model, ghz] = cpu_model();
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  profile.set_machine(fmt::format("{}, measured by memvirt calibrate on {}", model, date),
                      ghz > 0 ? ghz : 1.0);
  const std::string how =
      fmt::format("memvirt calibrate on {} ({}), median of {} runs over {} pages", model, date,
                  opt.repeats, opt.pages);
  auto record = [&](Op op, double ns) {
    profile.set(op, ns, how);
    if (log) log(fmt::format("{:<26} {:>9.1f} ns", kOpInfo[static_cast<std::size_t>(op)].key, ns));
  };

  {
    std::unique_ptr<Mapping> m;
    record(Op::kFirstTouchFault,
           median_ns_per_page(
               opt, [&] { m = std::make_unique<Mapping>(bytes); }, [&] { m->touch_all(); }));
  }
  Mapping buf(bytes);
  buf.touch_all();
  record(Op::kZeroFillPage, median_ns_per_page(
                                opt, [] {},
                                [&] {
                                  for (std::size_t i = 0; i < opt.pages; ++i)
                                    std::memset(buf.page(i), 0, 4096);
                                  g_sink = static_cast<std::uint64_t>(*buf.page(opt.pages - 1));
                                }));
  record(Op::kMadviseDontneedSingle, median_ns_per_page(
                                         opt, [&] { buf.touch_all(); },
                                         [&] {
                                           for (std::size_t i = 0; i < opt.pages; ++i)
                                             madvise(buf.page(i), 4096, MADV_DONTNEED);
                                         }));
  record(Op::kMadviseDontneedBatched,
         median_ns_per_page(
             opt, [&] { buf.touch_all(); }, [&] { madvise(buf.page(0), bytes, MADV_DONTNEED); }));
  // Hash and compare pages with real content (incompressible random words).
  Rng rng(1, "calibrate");
  buf.touch_all();
  for (std::size_t i = 0; i < opt.pages; ++i) {
    auto* w = reinterpret_cast<std::uint64_t*>(buf.page(i));
    for (int k = 0; k < 512; ++k) w[k] = rng.next();
  }
  record(Op::kXxh64Page, median_ns_per_page(
                             opt, [] {},
                             [&] {
                               std::uint64_t h = 0;
                               for (std::size_t i = 0; i < opt.pages; ++i)
                                 h ^= XXH64(buf.page(i), 4096, 0);
                               g_sink = h;
                             }));
  record(Op::kJhash2Page, median_ns_per_page(
                              opt, [] {},
                              [&] {
                                std::uint32_t h = 0;
                                for (std::size_t i = 0; i < opt.pages; ++i) {
                                  h ^= jhash2(reinterpret_cast<const std::uint32_t*>(buf.page(i)),
                                              1024, 17);
                                }
                                g_sink = h;
                              }));
  Mapping copy(bytes);
  std::memcpy(copy.page(0), buf.page(0), bytes);
  record(Op::kMemcmpPage, median_ns_per_page(
                              opt, [] {},
                              [&] {
                                int acc = 0;
                                for (std::size_t i = 0; i < opt.pages; ++i)
                                  acc |= std::memcmp(buf.page(i), copy.page(i), 4096);
                                g_sink = static_cast<std::uint64_t>(acc);
                              }));
  {
    // The one use of this cost is a step of a content-tree walk (KSM's stable and unstable
    // trees): random pages differ in their first bytes, as unequal guest pages do, and each
    // step's page depends on the last comparison and lies anywhere in memory, so it misses the
    // caches. Comparing neighbouring pages instead would let the prefetcher hide that miss.
    std::vector<std::uint32_t> next(opt.pages);
    for (auto& n : next) n = static_cast<std::uint32_t>(rng.below(opt.pages));
    record(Op::kMemcmpPageDiffer, median_ns_per_page(
                                      opt, [] {},
                                      [&] {
                                        std::size_t cur = 0;
                                        int acc = 0;
                                        for (std::size_t i = 0; i < opt.pages; ++i) {
                                          const int c =
                                              std::memcmp(buf.page(cur), buf.page(next[i]), 4096);
                                          acc += c < 0;
                                          cur = (next[i] + (c < 0 ? 1 : 0)) % opt.pages;
                                        }
                                        g_sink = static_cast<std::uint64_t>(acc);
                                      }));
  }
  record(Op::kMprotectPage, median_ns_per_page(
                                opt, [&] { buf.touch_all(); },
                                [&] {
                                  for (std::size_t i = 0; i < opt.pages; ++i)
                                    mprotect(buf.page(i), 4096, PROT_READ);
                                  mprotect(buf.page(0), bytes, PROT_READ | PROT_WRITE);
                                }));
  {
    // A sparse bitmap (one bit set in 64 words), as a recycler finds it when little is free.
    std::vector<std::uint64_t> bitmap(opt.pages * 64, 0);
    for (std::size_t i = 0; i < bitmap.size(); i += 64) bitmap[i] = 1ULL << (i % 61);
    CalibrationOptions per_word = opt;
    per_word.pages = bitmap.size();
    record(Op::kBitmapScanWord, median_ns_per_page(
                                    per_word, [] {},
                                    [&] {
                                      std::uint64_t found = 0;
                                      for (const std::uint64_t w : bitmap) {
                                        for (std::uint64_t x = w; x != 0; x &= x - 1)
                                          found += static_cast<std::uint64_t>(__builtin_ctzll(x));
                                      }
                                      g_sink = found;
                                    }));
    std::vector<std::atomic<std::uint64_t>> shared(opt.pages / 64 + 1);
    record(Op::kAtomicBitUpdate, median_ns_per_page(
                                     opt, [] {},
                                     [&] {
                                       for (std::size_t i = 0; i < opt.pages; ++i) {
                                         const std::uint64_t bit = 1ULL << (i & 63);
                                         if ((i & 1) == 0) {
                                           shared[i >> 6].fetch_or(bit, std::memory_order_acq_rel);
                                         } else {
                                           shared[i >> 6].fetch_and(~bit,
                                                                    std::memory_order_acq_rel);
                                         }
                                       }
                                     }));
  }
  {
    // Copies between two buffers larger than the caches, as tmem copies guest pages.
    Mapping dst(bytes);
    dst.touch_all();
    const double copy_ns = median_cpu_ns_per_page(opt, [&] {
      for (std::size_t i = 0; i < opt.pages; ++i) std::memcpy(dst.page(i), buf.page(i), 4096);
      g_sink = static_cast<std::uint64_t>(*dst.page(opt.pages / 2));
    });
    profile.set(Op::kPageCopy, copy_ns, how + ", CPU time");
    if (log)
      log(fmt::format("{:<26} {:>9.1f} ns", kOpInfo[static_cast<std::size_t>(Op::kPageCopy)].key,
                      copy_ns));
  }
  {
    // Compression speed hardly depends on the cache, so 16 MiB of pages are enough.
    CalibrationOptions copt = opt;
    copt.pages = std::min<std::uint64_t>(opt.pages, 4096);
    std::string pages_how;
    const std::vector<std::byte> pages = compressor_pages(copt.pages, &pages_how);
    struct CompressorOps {
      Compressor kind;
      Op compress, decompress;
    };
    for (const CompressorOps& c :
         {CompressorOps{Compressor::kLzo1x1, Op::kLzoCompressPage, Op::kLzoDecompressPage},
          CompressorOps{Compressor::kLz4, Op::kLz4CompressPage, Op::kLz4DecompressPage},
          CompressorOps{Compressor::kZstd, Op::kZstdCompressPage, Op::kZstdDecompressPage}}) {
      const auto comp = make_page_compressor(c.kind);
      const std::size_t room = comp->max_compressed_bytes();
      std::vector<std::byte> out(copt.pages * room);
      std::vector<std::size_t> sizes(copt.pages);
      auto page = [&](std::size_t i) {
        return std::span<const std::byte>(pages).subspan(i * 4096, 4096);
      };
      const double compress_ns = median_cpu_ns_per_page(copt, [&] {
        for (std::size_t i = 0; i < copt.pages; ++i)
          sizes[i] = comp->compress(page(i), std::span(out).subspan(i * room, room));
      });
      std::size_t compressed = 0, stored = 0;
      for (const std::size_t n : sizes) {
        compressed += n < 4096 ? 1 : 0;
        stored += std::min<std::size_t>(n, 4096);
      }
      const std::string source = fmt::format(
          "memvirt calibrate on {} ({}), median of {} runs over {} pages, CPU time: {}; {} of them "
          "compress below a page, mean ratio {:.2f}",
          model, date, opt.repeats, copt.pages, pages_how, compressed,
          static_cast<double>(copt.pages * 4096) / static_cast<double>(stored));
      auto note = [&](Op op, double ns) {
        profile.set(op, ns, source);
        if (log)
          log(fmt::format("{:<26} {:>9.1f} ns", kOpInfo[static_cast<std::size_t>(op)].key, ns));
      };
      note(c.compress, compress_ns);
      // Per page decompressed: pages kept raw are never decompressed.
      std::vector<std::byte> back(4096);
      CalibrationOptions dopt = copt;
      dopt.pages = std::max<std::size_t>(compressed, 1);
      note(c.decompress, median_cpu_ns_per_page(dopt, [&] {
             bool ok = true;
             for (std::size_t i = 0; i < copt.pages; ++i) {
               if (sizes[i] < 4096) {
                 ok &= comp->decompress(std::span(out).subspan(i * room, sizes[i]), back);
               }
             }
             if (!ok) throw std::runtime_error("calibrate: a page did not decompress");
             g_sink = static_cast<std::uint64_t>(back[100]);
           }));
    }
  }
  return profile;
}

}  // namespace memvirt
