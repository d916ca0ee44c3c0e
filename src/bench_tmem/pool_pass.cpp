// The pool passes of `bench tmem`: every page put into a private ephemeral pool of a real
// Tmem over BytesTmemBackend, then every page got back (exclusive gets empty the pool).
#include <xxhash.h>

#include <cstring>
#include <limits>
#include <stdexcept>

#include "bench_tmem/cpu_clock.hpp"
#include "bench_tmem/tmem_bench.hpp"
#include "host/tmem.hpp"
#include "host/tmem_bytes.hpp"

namespace memvirt {
namespace {

constexpr std::uint64_t kProgressEvery = 4096;
// The heap is never short: the pass measures the pool's work, not eviction.
constexpr std::uint64_t kAmpleHeapPages = std::uint64_t{1} << 40;

}  // namespace

PoolPass run_pool_pass(Compressor c, bool dedup, const PageSet& pages,
                       TmemBenchProgress& progress) {
  const std::uint64_t n = pages.pages();
  // Handles: each file an object, each page its index; contents as fingerprints of the bytes
  // (equal bytes, equal content; zeros the zero content), which the backend only carries.
  struct Handle {
    TmemOid oid;
    std::uint32_t index = 0;
    Fingerprint content;
  };
  std::vector<Handle> handles(n);
  for (std::size_t f = 0; f < pages.files().size(); ++f) {
    const PageSetFile& file = pages.files()[f];
    for (std::uint32_t p = 0; p < file.pages; ++p) {
      Handle& h = handles[file.first_page + p];
      h.oid.words = {f, 0, 0};
      h.index = p;
    }
  }
  const std::vector<std::byte> zeros(kPageSize, std::byte{0});
  for (std::uint64_t i = 0; i < n; ++i) {
    const auto page = pages.page(i);
    handles[i].content =
        std::memcmp(page.data(), zeros.data(), kPageSize) == 0
            ? kZeroContent
            : make_fingerprint(XXH64(page.data(), kPageSize, 0), ContentClass::kUnmeasured);
  }

  BytesTmemBackend backend(c);
  TmemConfig cfg;
  cfg.dedup = dedup;
  cfg.compress = true;
  Tmem tmem(cfg, backend, [] { return kAmpleHeapPages; });
  constexpr TmemClientId kClient = 1;
  tmem.new_client(kClient, std::numeric_limits<std::uint64_t>::max() / 2, [] { return 0; });
  const auto pool = tmem.new_pool(kClient, TmemPoolFlags{false, false});
  if (!pool) throw std::logic_error("bench tmem: no pool");

  PoolPass r;
  r.dedup = dedup;
  const char* name = spelling_of(kCompressorSpellings, c);
  const char* put_what = dedup ? "pool put (dedup)" : "pool put";
  const double t0 = thread_cpu_seconds();
  for (std::uint64_t i = 0; i < n; ++i) {
    const Handle& h = handles[i];
    if (tmem.put(kClient, *pool, h.oid, h.index, TmemPage{h.content, pages.page(i)}) ==
        Tmem::PutResult::kStored) {
      ++r.stored;
    }
    if (i % kProgressEvery == 0) progress.pass(name, put_what, i, n);
  }
  r.put_cpu_s = thread_cpu_seconds() - t0;
  r.puts = n;
  r.apparent_pages = tmem.apparent_pages();
  r.pages_used = tmem.pages_used();
  const TmemCounters& k = tmem.counters();
  r.deduped_puts = k.deduped_puts.value();
  r.compressed_puts = k.compressed_puts.value();
  r.compress_poor = k.compress_poor.value();
  r.zero_puts = k.zero_puts.value();
  r.backend_bytes = backend.memory().total_bytes();
  tmem.check();  // every count agrees and every stored copy verifies (not timed)

  std::vector<std::byte> back(n * kPageSize);
  std::vector<bool> found(n);
  const char* get_what = dedup ? "pool get (dedup)" : "pool get";
  const double t1 = thread_cpu_seconds();
  for (std::uint64_t i = 0; i < n; ++i) {
    const Handle& h = handles[i];
    found[i] =
        tmem.get(kClient, *pool, h.oid, h.index, std::span(back).subspan(i * kPageSize, kPageSize))
            .has_value();
    if (i % kProgressEvery == 0) progress.pass(name, get_what, i, n);
  }
  r.get_cpu_s = thread_cpu_seconds() - t1;
  for (std::uint64_t i = 0; i < n; ++i) {
    if (!found[i]) continue;
    ++r.got;
    if (std::memcmp(back.data() + i * kPageSize, pages.page(i).data(), kPageSize) != 0) {
      ++r.mismatches;
    }
  }
  r.pages_used_after_gets = tmem.pages_used();
  progress.pass_done();
  return r;
}

}  // namespace memvirt
