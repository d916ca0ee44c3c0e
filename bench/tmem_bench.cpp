// Put and get of one page through a real tmem pool (Tmem over BytesTmemBackend, a private
// ephemeral pool, compression on) per compressor, on generated pages of the simulator's
// compressibility classes 0..6 in turn (class c: (c + 1) / 8 of the words random). Put
// compresses and copies the page in; get decompresses it out and takes it from the pool.
// Each iteration puts then gets 4096 pages; the counters give pages per second of each.
#include <benchmark/benchmark.h>

#include <chrono>
#include <limits>
#include <vector>

#include "host/content.hpp"
#include "host/tmem.hpp"
#include "host/tmem_bytes.hpp"

namespace memvirt {
namespace {

constexpr std::uint32_t kPages = 4096;

std::vector<std::byte> generated_pages() {
  std::vector<std::byte> bytes(std::size_t{kPages} * kPageSize);
  for (std::uint32_t i = 0; i < kPages; ++i) {
    generate_page_bytes(make_fingerprint(i + 1, i % 7),
                        std::span(bytes).subspan(std::size_t{i} * kPageSize, kPageSize));
  }
  return bytes;
}

void BM_TmemPutGet(benchmark::State& state) {
  const auto compressor = static_cast<Compressor>(state.range(0));
  const bool dedup = state.range(1) != 0;
  const std::vector<std::byte> pages = generated_pages();
  BytesTmemBackend backend(compressor);
  TmemConfig cfg;
  cfg.compress = true;
  cfg.dedup = dedup;
  Tmem tmem(cfg, backend, [] { return std::uint64_t{1} << 40; });
  tmem.new_client(1, std::numeric_limits<std::uint64_t>::max() / 2, [] { return 0; });
  const TmemPoolId pool = *tmem.new_pool(1, TmemPoolFlags{});
  std::vector<std::byte> out(kPageSize);
  double put_s = 0, get_s = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    for (std::uint32_t i = 0; i < kPages; ++i) {
      const auto page =
          std::span<const std::byte>(pages).subspan(std::size_t{i} * kPageSize, kPageSize);
      benchmark::DoNotOptimize(
          tmem.put(1, pool, TmemOid{{i / 64, 0, 0}}, i % 64, TmemPage{Fingerprint{i + 1}, page}));
    }
    auto t1 = std::chrono::steady_clock::now();
    for (std::uint32_t i = 0; i < kPages; ++i) {
      benchmark::DoNotOptimize(tmem.get(1, pool, TmemOid{{i / 64, 0, 0}}, i % 64, out));
    }
    auto t2 = std::chrono::steady_clock::now();
    put_s += std::chrono::duration<double>(t1 - t0).count();
    get_s += std::chrono::duration<double>(t2 - t1).count();
  }
  const double pages_done = static_cast<double>(state.iterations()) * kPages;
  state.counters["put_pages_per_s"] = put_s > 0 ? pages_done / put_s : 0;
  state.counters["get_pages_per_s"] = get_s > 0 ? pages_done / get_s : 0;
  state.SetLabel(spelling_of(kCompressorSpellings, compressor));
}
BENCHMARK(BM_TmemPutGet)
    ->ArgNames({"compressor", "dedup"})
    ->ArgsProduct({{0, 1, 2}, {0, 1}})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace memvirt
