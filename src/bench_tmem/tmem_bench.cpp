#include "bench_tmem/tmem_bench.hpp"

#include <cstring>
#include <memory>

#include "bench_tmem/cpu_clock.hpp"
#include "core/error.hpp"
#include "host/compressors.hpp"

namespace memvirt {
namespace {

constexpr std::uint64_t kProgressEvery = 4096;  // pages between progress reports

// zswap's test (zswap_is_page_same_filled): every machine word equals the first.
bool same_filled(std::span<const std::byte> page, std::uint64_t* word) {
  std::uint64_t first;
  std::memcpy(&first, page.data(), sizeof first);
  for (std::size_t off = sizeof first; off < page.size(); off += sizeof first) {
    std::uint64_t w;
    std::memcpy(&w, page.data() + off, sizeof w);
    if (w != first) return false;
  }
  *word = first;
  return true;
}

}  // namespace

std::vector<PageGroup> default_tmem_groups(const std::string& source_tree) {
  std::vector<PageGroup> g = {
      {"binary", {"/usr/bin", "/usr/lib/x86_64-linux-gnu"}, FileFilter::kElf},
      {"text", {"/usr/share/doc", "/usr/share/common-licenses"}, FileFilter::kNotCompressed},
  };
  if (!source_tree.empty()) g.push_back({"source", {source_tree}, FileFilter::kNotCompressed});
  return g;
}

double LibraryPass::size_ratio() const {
  return stored_bytes == 0
             ? 0
             : static_cast<double>(pages * kPageSize) / static_cast<double>(stored_bytes);
}

double PoolPass::size_ratio() const {
  return pages_used == 0 ? 0
                         : static_cast<double>(apparent_pages) / static_cast<double>(pages_used);
}

double PoolPass::slab_ratio() const {
  return backend_bytes == 0
             ? 0
             : static_cast<double>(apparent_pages * kPageSize) / static_cast<double>(backend_bytes);
}

double pages_per_cpu_second(std::uint64_t pages, double cpu_s) {
  return cpu_s > 0 ? static_cast<double>(pages) / cpu_s : 0;
}

LibraryPass run_library_pass(Compressor c, const PageSet& pages, TmemBenchProgress& progress) {
  const auto comp = make_page_compressor(c);
  const std::uint64_t n = pages.pages();
  // Compressed forms back to back, so that decompression reads what compression wrote.
  std::vector<std::byte> out(n * comp->max_compressed_bytes());
  std::vector<std::uint32_t> sizes(n);
  LibraryPass r;
  r.pages = n;
  r.group_stored_bytes.assign(pages.groups().size(), 0);
  const char* name = spelling_of(kCompressorSpellings, c);
  const double t0 = thread_cpu_seconds();
  for (std::uint64_t i = 0; i < n; ++i) {
    sizes[i] = static_cast<std::uint32_t>(comp->compress(
        pages.page(i),
        std::span(out).subspan(i * comp->max_compressed_bytes(), comp->max_compressed_bytes())));
    if (i % kProgressEvery == 0) progress.pass(name, "library compress", i, n);
  }
  r.compress_cpu_s = thread_cpu_seconds() - t0;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint32_t stored = sizes[i] < kPageSize ? sizes[i] : kPageSize;
    r.stored_bytes += stored;
    r.group_stored_bytes[pages.group_of(i)] += stored;
    if (sizes[i] >= kPageSize) ++r.raw_pages;
  }
  auto compressed = [&](std::uint64_t i) {
    return std::span(out).subspan(i * comp->max_compressed_bytes(), sizes[i]);
  };
  // Timed alone: a clock read per page would cost as much as an LZ4 decompression.
  std::vector<std::byte> back(kPageSize);
  const double t1 = thread_cpu_seconds();
  for (std::uint64_t i = 0; i < n; ++i) {
    if (sizes[i] < kPageSize) {
      (void)comp->decompress(compressed(i), back);
    } else {
      std::memcpy(back.data(), pages.page(i).data(), kPageSize);  // kept raw: a copy out
    }
    if (i % kProgressEvery == 0) progress.pass(name, "library decompress", i, n);
  }
  r.decompress_cpu_s = thread_cpu_seconds() - t1;
  for (std::uint64_t i = 0; i < n; ++i) {
    if (sizes[i] >= kPageSize) continue;
    if (!comp->decompress(compressed(i), back) ||
        std::memcmp(back.data(), pages.page(i).data(), kPageSize) != 0) {
      ++r.mismatches;
    }
  }
  progress.pass_done();
  return r;
}

TmemBenchResult run_tmem_bench(const TmemBenchConfig& cfg, TmemBenchProgress& progress) {
  TmemBenchResult r;
  r.config = cfg;
  const PageSet pages = PageSet::read(cfg.groups, cfg.pages_per_group, cfg.seed,
                                      [&](std::uint64_t n) { progress.reading(n); });
  progress.pass_done();
  r.groups = pages.groups();
  r.pages = pages.pages();
  if (r.pages == 0) {
    throw InputError(SourcePlace{"", 0, "paths"}, "no readable file with data in the paths given");
  }
  if (!cfg.run_pool) r.skipped_pool = "not asked for (--library-only)";
  for (const Compressor c : cfg.compressors) {
    CompressorRun run{c, make_page_compressor(c)->library(), {}, {}, {}};
    run.library_pass = run_library_pass(c, pages, progress);
    if (cfg.run_pool) {
      run.pool = run_pool_pass(c, false, pages, progress);
      run.pool_dedup = run_pool_pass(c, true, pages, progress);
    }
    r.runs.push_back(std::move(run));
  }
  return r;
}

CompressionProfile measure_compression_profile(const std::vector<ProfileClassInput>& classes,
                                               std::uint64_t max_pages_per_class,
                                               std::uint64_t max_pages_per_file,
                                               const std::string& provenance_json,
                                               TmemBenchProgress& progress) {
  CompressionProfile profile;
  profile.set_provenance(provenance_json);
  std::vector<std::unique_ptr<PageCompressor>> comps;
  for (const auto& sp : kCompressorSpellings) {
    comps.push_back(make_page_compressor(sp.value));
    std::vector<std::byte> out(comps.back()->max_compressed_bytes());
    const std::vector<std::byte> zero(kPageSize, std::byte{0});
    const auto zero_bytes = static_cast<std::uint32_t>(comps.back()->compress(zero, out));
    profile.set_compressor(sp.value, comps.back()->library(), zero_bytes);
  }
  for (const ProfileClassInput& in : classes) {
    const char* cls = spelling_of(kContentClassSpellings, in.content_class);
    const PageSet pages =
        PageSet::read_list(cls, in.list_file, max_pages_per_class, max_pages_per_file);
    if (pages.pages() == 0) {
      throw InputError(SourcePlace{in.list_file, 0, cls}, "the files listed hold no data");
    }
    std::uint64_t zero = 0, same = 0;
    for (std::uint64_t i = 0; i < pages.pages(); ++i) {
      std::uint64_t word = 0;
      if (same_filled(pages.page(i), &word)) ++(word == 0 ? zero : same);
    }
    for (const auto& comp : comps) {
      std::vector<std::byte> out(comp->max_compressed_bytes());
      std::vector<std::byte> back(kPageSize);
      std::vector<std::uint32_t> stored(pages.pages());
      const char* name = spelling_of(kCompressorSpellings, comp->kind());
      for (std::uint64_t i = 0; i < pages.pages(); ++i) {
        const std::size_t n = comp->compress(pages.page(i), out);
        stored[i] =
            n < kPageSize ? static_cast<std::uint32_t>(n) : static_cast<std::uint32_t>(kPageSize);
        // A measurement of a compressor that does not give the page back would be worthless.
        if (n < kPageSize && (!comp->decompress(std::span(out).first(n), back) ||
                              std::memcmp(back.data(), pages.page(i).data(), kPageSize) != 0)) {
          throw std::runtime_error(std::string(name) + " did not restore a page of " + cls);
        }
        if (i % kProgressEvery == 0) progress.pass(name, cls, i, pages.pages());
      }
      profile.set_stats(comp->kind(), in.content_class,
                        CompressionClassStats::from_sizes(std::move(stored), zero, same));
    }
    progress.pass_done();
  }
  return profile;
}

}  // namespace memvirt
