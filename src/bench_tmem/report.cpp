#include "bench_tmem/report.hpp"

#include <fmt/format.h>

#include "record/output_dir.hpp"

namespace memvirt {
namespace {

std::string rate(double pages_per_s) {
  return pages_per_s > 0 ? fmt::format("{:.0f}", pages_per_s) : std::string("-");
}

// Library pages per CPU-second over the pool's: how many times slower the pool is.
double overhead(double library_rate, double pool_rate) {
  return pool_rate > 0 ? library_rate / pool_rate : 0;
}

nlohmann::json pool_json(const PoolPass& p, const LibraryPass& lib) {
  const double put = pages_per_cpu_second(p.puts, p.put_cpu_s);
  const double get = pages_per_cpu_second(p.got, p.get_cpu_s);
  return {{"dedup", p.dedup},
          {"puts", p.puts},
          {"stored", p.stored},
          {"got", p.got},
          {"mismatches", p.mismatches},
          {"put_cpu_s", p.put_cpu_s},
          {"get_cpu_s", p.get_cpu_s},
          {"put_pages_per_cpu_s", put},
          {"get_pages_per_cpu_s", get},
          {"apparent_pages", p.apparent_pages},
          {"pages_used", p.pages_used},
          {"size_ratio", p.size_ratio()},
          {"slab_ratio", p.slab_ratio()},
          {"deduped_puts", p.deduped_puts},
          {"compressed_puts", p.compressed_puts},
          {"compress_poor", p.compress_poor},
          {"zero_puts", p.zero_puts},
          {"backend_bytes", p.backend_bytes},
          {"pages_used_after_gets", p.pages_used_after_gets},
          {"put_overhead_vs_library",
           overhead(pages_per_cpu_second(lib.pages, lib.compress_cpu_s), put)},
          {"get_overhead_vs_library",
           overhead(pages_per_cpu_second(lib.pages, lib.decompress_cpu_s), get)}};
}

}  // namespace

void print_tmem_report(std::ostream& out, const TmemBenchResult& r) {
  out << fmt::format("memvirt bench tmem: {} pages of real files ({} MiB)\n", r.pages,
                     r.pages * kPageSize >> 20);
  for (const PageSetGroup& g : r.groups) {
    out << fmt::format("  {:<10} {:>8} pages from {} files ({} found, {} unreadable)\n", g.name,
                       g.pages, g.files_read, g.files_found, g.files_skipped);
  }
  out << "\n  compressor library alone (compress + decompress each page, no pool): the ceiling\n";
  out << fmt::format("  {:<9}{:>12}{:>12}{:>9}{:>8}", "", "compress", "decompress", "ratio",
                     "raw %");
  for (const PageSetGroup& g : r.groups) out << fmt::format("{:>10}", g.name);
  out << "\n" << fmt::format("  {:<9}{:>12}{:>12}\n", "", "pages/CPU-s", "pages/CPU-s");
  for (const CompressorRun& run : r.runs) {
    const LibraryPass& l = run.library_pass;
    out << fmt::format("  {:<9}{:>12}{:>12}{:>9.2f}{:>8.1f}",
                       spelling_of(kCompressorSpellings, run.compressor),
                       rate(pages_per_cpu_second(l.pages, l.compress_cpu_s)),
                       rate(pages_per_cpu_second(l.pages, l.decompress_cpu_s)), l.size_ratio(),
                       100.0 * static_cast<double>(l.raw_pages) / static_cast<double>(l.pages));
    for (std::size_t g = 0; g < r.groups.size(); ++g) {
      const double stored = static_cast<double>(l.group_stored_bytes[g]);
      out << fmt::format(
          "{:>10.2f}",
          stored > 0 ? static_cast<double>(r.groups[g].pages * kPageSize) / stored : 0.0);
    }
    out << (l.mismatches ? fmt::format("  {} PAGES DIFFER", l.mismatches) : std::string()) << "\n";
  }
  if (!r.skipped_pool.empty()) {
    out << "\n  pools: not run, " << r.skipped_pool << "\n";
    return;
  }
  out << "\n  tmem pool (private ephemeral, compression on): put every page, get every page back\n";
  out << fmt::format("  {:<9}{:>7}{:>12}{:>12}{:>9}{:>8}{:>10}{:>10}{:>10}  {}\n", "", "dedup",
                     "put", "get", "ratio", "slab", "put ovh", "get ovh", "deduped", "pages back");
  for (const CompressorRun& run : r.runs) {
    const LibraryPass& l = run.library_pass;
    for (const auto* p : {&run.pool, &run.pool_dedup}) {
      if (!*p) continue;
      const PoolPass& pp = **p;
      const double put = pages_per_cpu_second(pp.puts, pp.put_cpu_s);
      const double get = pages_per_cpu_second(pp.got, pp.get_cpu_s);
      out << fmt::format(
          "  {:<9}{:>7}{:>12}{:>12}{:>9.2f}{:>8.2f}{:>9.2f}x{:>9.2f}x{:>10}  {}\n",
          spelling_of(kCompressorSpellings, run.compressor), pp.dedup ? "on" : "off", rate(put),
          rate(get), pp.size_ratio(), pp.slab_ratio(),
          overhead(pages_per_cpu_second(l.pages, l.compress_cpu_s), put),
          overhead(pages_per_cpu_second(l.pages, l.decompress_cpu_s), get), pp.deduped_puts,
          pp.mismatches == 0 && pp.got == pp.puts
              ? std::string("all equal")
              : fmt::format("{} DIFFER, {} of {} found", pp.mismatches, pp.got, pp.puts));
    }
  }
  out << "  put and get in pages per CPU-second; ratio: apparent pages / pages of memory used\n"
         "  (Xen's counters); slab: apparent bytes / the bytes backend's memory (slots rounded to\n"
         "  32 bytes, chunks, metadata); ovh: the library's pages per CPU-second over the pool's\n";
}

nlohmann::json tmem_bench_json(const TmemBenchResult& r) {
  nlohmann::json j;
  nlohmann::json groups = nlohmann::json::array();
  for (const PageGroup& g : r.config.groups) {
    nlohmann::json paths = nlohmann::json::array();
    for (const auto& p : g.paths) paths.push_back(p.string());
    groups.push_back({{"name", g.name}, {"paths", paths}});
  }
  j["config"] = {{"groups", groups},
                 {"pages_per_group", r.config.pages_per_group},
                 {"seed", r.config.seed},
                 {"pools", r.config.run_pool}};
  nlohmann::json read = nlohmann::json::array();
  for (const PageSetGroup& g : r.groups) {
    read.push_back({{"name", g.name},
                    {"pages", g.pages},
                    {"files_found", g.files_found},
                    {"files_read", g.files_read},
                    {"files_skipped", g.files_skipped}});
  }
  j["pages"] = r.pages;
  j["groups"] = read;
  nlohmann::json runs = nlohmann::json::array();
  for (const CompressorRun& run : r.runs) {
    const LibraryPass& l = run.library_pass;
    nlohmann::json by_group = nlohmann::json::object();
    for (std::size_t g = 0; g < r.groups.size(); ++g) {
      by_group[r.groups[g].name] = {
          {"stored_bytes", l.group_stored_bytes[g]},
          {"size_ratio", l.group_stored_bytes[g] > 0
                             ? static_cast<double>(r.groups[g].pages * kPageSize) /
                                   static_cast<double>(l.group_stored_bytes[g])
                             : 0.0}};
    }
    nlohmann::json e = {
        {"compressor", spelling_of(kCompressorSpellings, run.compressor)},
        {"library", run.library},
        {"library_alone",
         {{"pages", l.pages},
          {"compress_cpu_s", l.compress_cpu_s},
          {"decompress_cpu_s", l.decompress_cpu_s},
          {"compress_pages_per_cpu_s", pages_per_cpu_second(l.pages, l.compress_cpu_s)},
          {"decompress_pages_per_cpu_s", pages_per_cpu_second(l.pages, l.decompress_cpu_s)},
          {"stored_bytes", l.stored_bytes},
          {"raw_pages", l.raw_pages},
          {"size_ratio", l.size_ratio()},
          {"mismatches", l.mismatches},
          {"groups", by_group}}}};
    if (run.pool) e["pool"] = pool_json(*run.pool, l);
    if (run.pool_dedup) e["pool_dedup"] = pool_json(*run.pool_dedup, l);
    runs.push_back(e);
  }
  j["compressors"] = runs;
  if (!r.skipped_pool.empty()) j["pools_skipped"] = r.skipped_pool;
  return j;
}

void write_tmem_outputs(const std::string& dir, const TmemBenchResult& r) {
  const OutputDir out(dir);
  out.write("results.json", [&](std::ostream& f) { f << tmem_bench_json(r).dump(2) << "\n"; });
}

}  // namespace memvirt
