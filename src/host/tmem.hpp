// Transcendent memory: Xen's hypervisor-side page pools (xen/common/tmem.c as of Xen 4.0).
//
// Clients (domains) create pools, ephemeral or persistent, private or shared, and put, get
// and flush single pages named by (pool, object, index). Contents are copied in and out;
// tmem holds its pages in memory nothing else uses (the hypervisor's free heap).
//
// Contract, as Xen's:
//  - put of an existing handle replaces the data; when the new copy cannot be stored the old
//    one is dropped too and the put fails: a stale copy is never readable.
//  - get from a private ephemeral pool is exclusive (the page leaves the pool); a shared
//    ephemeral pool keeps it and moves it to the LRU tail; a persistent pool keeps it.
//  - only ephemeral pages are ever evicted, from the head of one global LRU; a deduplicated
//    page whose content other pages still share gets one second chance. Persistent pages
//    stay until flushed or their pool is destroyed.
//  - a persistent put fails once the client's domain pages plus its persistent pages reach
//    its maxmem (persistent pages are charged to the domain).
//  - before a put, ephemeral pages are evicted until a whole MiB of the heap is free (at
//    most 10 failed evictions); a put that still finds no memory fails.
//  - dedup (ephemeral pools only) compares full contents in 256 trees keyed by the first
//    byte and shares one reference-counted content descriptor; compression keeps a page's
//    compressed form only when it is smaller than a page, else the raw page. Without both
//    dedup and compression, an all-zero page stores no data (trailing-zero elimination).
//  - relinquish() gives ephemeral pages back to the heap at once, for a domain that needs
//    memory; a frozen tmem refuses every put (xend's freeze, flush, thaw around a domain
//    build).
// Every operation returns what it did (copies, compressions, comparisons) so callers charge
// their own costs; the pools never read a clock and never print.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "core/stats.hpp"
#include "core/types.hpp"
#include "host/content.hpp"

namespace memvirt {

// A page handed to tmem: its content, and its bytes when the backend keeps real bytes.
struct TmemPage {
  Fingerprint content;
  std::span<const std::byte> bytes;  // empty for the fingerprint backend
};

// A page in the form tmem keeps it: compressed when asked and smaller than a page, else raw.
struct TmemData {
  Fingerprint content;
  std::vector<std::byte> bytes;  // the stored form (bytes backend only)
  std::uint32_t size = 0;        // bytes the stored form takes: kPageSize raw, less compressed
  bool compressed = false;
  bool zero = false;            // every byte is zero
  std::uint8_t first_byte = 0;  // of the stored form: dedup's tree
};

// Where the pools keep page data: fingerprints with compressed sizes from a measured profile
// (the simulator), or real bytes compressed by a real compressor (real-memory mode). Equal
// contents have equal stored forms (the compressors are deterministic), so dedup compares
// stored forms, as Xen's pcd trees do.
class TmemBackend {
 public:
  virtual ~TmemBackend() = default;
  // The page's stored form; with `compress`, its compressed form when that is smaller.
  virtual TmemData prepare(const TmemPage& page, bool compress) = 0;
  // Keeps a prepared page; returns its handle.
  virtual std::uint64_t keep(TmemData&& data) = 0;
  // The kept page's content; its bytes go to `out` (4 KiB) when the backend keeps bytes
  // (decompressed when kept compressed).
  virtual Fingerprint load(std::uint64_t handle, std::span<std::byte> out) = 0;
  // <0, 0 or >0: any total order consistent with equality of stored forms.
  [[nodiscard]] virtual int compare(const TmemData& a, std::uint64_t b) const = 0;
  [[nodiscard]] virtual int compare(std::uint64_t a, std::uint64_t b) const = 0;
  virtual void release(std::uint64_t handle) = 0;
  // True when `handle` still holds exactly what was kept.
  [[nodiscard]] virtual bool verify(std::uint64_t handle) const = 0;
};

// The fingerprint backend: a page's compressed size is a function of its content, given by
// `compressed_bytes` (a measured profile; kPageSize when the page does not compress).
class FingerprintTmemBackend final : public TmemBackend {
 public:
  using SizeFn = std::function<std::uint32_t(Fingerprint)>;
  explicit FingerprintTmemBackend(SizeFn compressed_bytes);
  TmemData prepare(const TmemPage& page, bool compress) override;
  std::uint64_t keep(TmemData&& data) override;
  Fingerprint load(std::uint64_t handle, std::span<std::byte> out) override;
  [[nodiscard]] int compare(const TmemData& a, std::uint64_t b) const override;
  [[nodiscard]] int compare(std::uint64_t a, std::uint64_t b) const override;
  void release(std::uint64_t) override {}
  [[nodiscard]] bool verify(std::uint64_t) const override { return true; }

 private:
  SizeFn compressed_bytes_;
};

using TmemClientId = std::uint32_t;
struct TmemPoolTag {};
using TmemPoolId = StrongInt<TmemPoolTag, std::uint32_t>;  // the client's pool number, 0..15

struct TmemOid {
  std::array<std::uint64_t, 3> words{};
  auto operator<=>(const TmemOid&) const = default;
};

struct TmemPoolFlags {
  bool persistent = false;
  bool shared = false;
};

struct TmemConfig {
  bool dedup = false;
  bool compress = false;
  std::uint64_t free_reserve_pages = 256;  // tmh_free_mb(): a whole MiB kept free
  unsigned max_failed_evictions = 10;      // tmem_ensure_avail_pages()
};

// Xen's counters (tmem.c's globals and per-client and per-pool fields).
struct TmemCounters {
  Counter puts, good_puts, dup_puts_replaced, dup_puts_flushed, no_mem_puts, maxmem_puts,
      frozen_puts;
  Counter gets, found_gets;
  Counter flushes, flush_objects, evictions, relinquished;
  Counter deduped_puts, compressed_puts, compress_poor, zero_puts;
  Counter compares;  // full content comparisons made by dedup
  void visit(StatsVisitor& v) const;
};

// What one operation did, for the caller's cost model.
struct TmemWork {
  std::uint32_t copies = 0;        // 4 KiB copies in or out
  std::uint32_t compressions = 0;  // compressor runs
  std::uint32_t decompressions = 0;
  std::uint32_t compares = 0;   // dedup's full content comparisons
  std::uint32_t evictions = 0;  // pages evicted to make room
};

class Tmem {
 public:
  enum class PutResult : std::uint8_t { kStored, kNoMemory, kOverMaxmem, kFrozen, kNoPool };
  // `heap_free_pages`: pages the hypervisor's heap has free now, tmem's own already taken out.
  Tmem(TmemConfig cfg, TmemBackend& backend, std::function<std::uint64_t()> heap_free_pages);
  ~Tmem();
  Tmem(const Tmem&) = delete;
  Tmem& operator=(const Tmem&) = delete;

  // A client for domain `client`, whose persistent pages plus `domain_pages()` stay within
  // `maxmem_pages`.
  void new_client(TmemClientId client, std::uint64_t maxmem_pages,
                  std::function<std::uint64_t()> domain_pages);
  // Destroys the client's pools (a domain's death).
  void destroy_client(TmemClientId client);
  // NEW_POOL: nullopt when the client has 16 pools already. A shared pool of an existing
  // `uuid` is joined, not created.
  std::optional<TmemPoolId> new_pool(TmemClientId client, TmemPoolFlags flags,
                                     std::array<std::uint64_t, 2> uuid = {});
  void destroy_pool(TmemClientId client, TmemPoolId pool);

  PutResult put(TmemClientId client, TmemPoolId pool, const TmemOid& oid, std::uint32_t index,
                const TmemPage& page, TmemWork* work = nullptr);
  // GET: the content (bytes to `out` when the backend keeps them), or nullopt on a miss.
  std::optional<Fingerprint> get(TmemClientId client, TmemPoolId pool, const TmemOid& oid,
                                 std::uint32_t index, std::span<std::byte> out = {},
                                 TmemWork* work = nullptr);
  bool flush_page(TmemClientId client, TmemPoolId pool, const TmemOid& oid, std::uint32_t index);
  // FLUSH_OBJECT: every page of the object; returns how many went.
  std::uint64_t flush_object(TmemClientId client, TmemPoolId pool, const TmemOid& oid);

  // Evicts ephemeral pages until `pages` are free in the heap or none is left to evict;
  // returns the pages of memory given back.
  std::uint64_t relinquish(std::uint64_t pages);
  void set_frozen(bool frozen) { frozen_ = frozen; }

  // Pages of memory tmem holds: raw pages plus compressed bytes packed into pages.
  [[nodiscard]] std::uint64_t pages_used() const;
  [[nodiscard]] std::uint64_t ephemeral_pages_used() const;
  // Pages clients have put and can get (before dedup and compression).
  [[nodiscard]] std::uint64_t apparent_pages() const { return page_count_; }
  [[nodiscard]] std::uint64_t persistent_pages(TmemClientId client) const;
  // Peaks since creation (Xen's max counters): memory held, pages held, persistent pages held.
  [[nodiscard]] std::uint64_t pages_max() const { return pages_max_; }
  [[nodiscard]] std::uint64_t apparent_pages_max() const { return apparent_max_; }
  [[nodiscard]] std::uint64_t persistent_page_count() const { return persistent_count_; }
  [[nodiscard]] std::uint64_t persistent_page_count_max() const { return persistent_max_; }
  [[nodiscard]] std::uint64_t client_pages(TmemClientId client, bool persistent) const;
  [[nodiscard]] const TmemCounters& counters() const { return counters_; }
  // Every count agrees with the structures and every stored copy verifies; throws
  // std::logic_error on a violation. check_counts() is the cheap grade: the counts agree with
  // one another and with the LRU's length.
  void check() const;
  void check_counts() const;

 private:
  struct Descriptor;  // a stored content (Xen's pcd, or the page itself without dedup)
  struct Page;        // Xen's pgp: one (object, index) of one pool
  struct Pool;
  struct Client;
  using PageKey = std::pair<TmemOid, std::uint32_t>;

  Pool* find_pool(TmemClientId client, TmemPoolId pool);
  bool ensure_available(TmemWork* work);
  bool evict_one();
  void remove_page(Pool& pool, std::map<PageKey, std::unique_ptr<Page>>::iterator it);
  // Stores the content, sharing a descriptor when dedup finds its twin; nullptr, with the
  // reason in *failure, when it cannot.
  Descriptor* store_content(const TmemPage& page, bool ephemeral,
                            std::optional<TmemClientId> charged, TmemWork* work,
                            PutResult* failure);
  void release_content(Descriptor* d);
  [[nodiscard]] std::uint64_t bytes_to_pages(std::uint64_t bytes) const;

  TmemConfig cfg_;
  TmemBackend& backend_;
  std::function<std::uint64_t()> heap_free_pages_;
  std::unordered_map<TmemClientId, std::unique_ptr<Client>> clients_;
  std::vector<std::unique_ptr<Pool>> shared_pools_;
  struct Lru;
  std::unique_ptr<Lru> lru_;  // every ephemeral page, oldest first
  struct ContentOrder;
  struct Tree;
  std::array<std::unique_ptr<Tree>, 256> dedup_trees_;  // by the stored form's first byte
  std::uint64_t page_count_ = 0;                        // pgps
  std::uint64_t persistent_count_ = 0;                  // pgps of persistent pools
  std::uint64_t pages_max_ = 0, apparent_max_ = 0, persistent_max_ = 0;
  std::uint64_t raw_pages_ = 0;         // descriptors stored raw (a page each)
  std::uint64_t compressed_bytes_ = 0;  // bytes of descriptors kept compressed
  std::uint64_t ephemeral_raw_pages_ = 0, ephemeral_compressed_bytes_ = 0;
  bool frozen_ = false;
  TmemCounters counters_;
};

}  // namespace memvirt
