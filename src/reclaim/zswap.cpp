#include "reclaim/zswap.hpp"

#include <fmt/format.h>

#include <array>
#include <list>
#include <stdexcept>
#include <unordered_map>

#include "core/rng.hpp"
#include "guest/kernel.hpp"

namespace memvirt {

namespace {

// mm/zbud.c on 4 KiB pages.
constexpr std::uint32_t kChunkBytes = 64;                                       // CHUNK_SIZE
constexpr std::uint32_t kPoolChunks = (kPageSize - kChunkBytes) / kChunkBytes;  // NCHUNKS: 63
constexpr std::uint32_t kMaxCompressedBytes = kPageSize - 2 * kChunkBytes;  // zbud_alloc's limit
constexpr unsigned kReclaimRetries = 8;  // zbud_zpool_shrink(): zbud_reclaim_page(pool, 8)

std::uint32_t chunks_of(std::uint32_t bytes) {
  return (bytes + kChunkBytes - 1) / kChunkBytes;
}

}  // namespace

struct Zswap::Guest final : PageHooks {
  static constexpr std::uint32_t kSameFilled = UINT32_MAX;
  static constexpr std::uint32_t kNoSlot = UINT32_MAX;

  struct Entry {
    Fingerprint content;
    std::uint32_t zpage = kSameFilled;  // the zbud page, or kSameFilled
    bool last = false;                  // which buddy
  };
  struct ZbudPage {
    Gfn frame{0};
    std::uint32_t first_chunks = 0, last_chunks = 0;
    std::uint32_t first_slot = kNoSlot, last_slot = kNoSlot;
    std::list<std::uint32_t>::iterator lru_pos;
    std::list<std::uint32_t>::iterator unbuddied_pos;
    bool unbuddied = false;
    std::uint32_t unbuddied_chunks = 0;  // the list it is on
    bool under_reclaim = false;
    [[nodiscard]] std::uint32_t free_chunks() const {
      return kPoolChunks - first_chunks - last_chunks;
    }
  };

  Guest(Zswap& o, const VmHandle& h) : owner(o), vm(h) {}

  [[nodiscard]] std::uint64_t limit_pages() const {
    return vm.kernel->total_pages() * owner.cfg_.max_pool_percent / 100;
  }
  // zswap_is_full() and zswap_can_accept().
  [[nodiscard]] bool is_full() const { return pool_pages > limit_pages(); }
  [[nodiscard]] bool can_accept() const {
    return vm.kernel->total_pages() * owner.cfg_.accept_threshold_percent / 100 *
               owner.cfg_.max_pool_percent / 100 >
           pool_pages;
  }

  void charge(Op op, std::uint64_t n = 1) const { vm.vcpu->charge(owner.env_.costs->cost(op) * n); }

  bool on_swap_out(std::uint32_t slot, Fingerprint content) override {
    // zswap_frontswap_store()
    owner.stats_.stores.add();
    if (entries.contains(slot)) {
      owner.stats_.duplicate_entry.add();
      drop(slot);
    }
    if (is_full()) {
      owner.stats_.pool_limit_hit.add();
      reached_full = true;
      queue_shrink();
      return false;
    }
    if (reached_full) {
      if (!can_accept()) return false;
      reached_full = false;
    }
    if (owner.cfg_.same_filled_pages) {
      // zswap_is_page_same_filled(): a word-by-word scan that stops at the first difference.
      if (owner.cfg_.compression_profile->same_filled(owner.cfg_.compressor, content)) {
        charge(Op::kMemcmpPage);
        entries.emplace(slot, Entry{content, kSameFilled, false});
        ++same_filled;
        owner.stats_.same_filled_stores.add();
        count_stored();
        return true;
      }
      charge(Op::kMemcmpPageDiffer);
    }
    charge(compressor_ops(owner.cfg_.compressor).compress);
    const std::uint32_t bytes =
        owner.cfg_.compression_profile->compressed_bytes(owner.cfg_.compressor, content);
    if (bytes > kMaxCompressedBytes) {
      owner.stats_.reject_compress_poor.add();
      return false;
    }
    const std::optional<std::pair<std::uint32_t, bool>> buddy = zbud_alloc(chunks_of(bytes), slot);
    if (!buddy) {
      owner.stats_.reject_alloc_fail.add();
      return false;
    }
    entries.emplace(slot, Entry{content, buddy->first, buddy->second});
    count_stored();
    return true;
  }

  std::optional<Fingerprint> on_swap_in(std::uint32_t slot) override {
    // zswap_frontswap_load(): the entry stays until its slot is freed.
    const auto it = entries.find(slot);
    if (it == entries.end()) return std::nullopt;
    owner.stats_.loads.add();
    charge(it->second.zpage == kSameFilled ? Op::kZeroFillPage
                                           : compressor_ops(owner.cfg_.compressor).decompress);
    return it->second.content;
  }

  [[nodiscard]] bool in_frontswap(std::uint32_t slot) const override {
    return entries.contains(slot);
  }

  void on_swap_free(std::uint32_t slot) override {
    if (!entries.contains(slot)) return;
    owner.stats_.invalidates.add();
    drop(slot);
  }

  void count_stored() {
    owner.stats_.succ_stores.add();
    stored_max = std::max<std::uint64_t>(stored_max, entries.size());
  }

  void drop(std::uint32_t slot) {
    const auto it = entries.find(slot);
    const Entry e = it->second;
    entries.erase(it);
    if (e.zpage == kSameFilled) {
      --same_filled;
      return;
    }
    zbud_free(e.zpage, e.last);
  }

  // zbud_alloc(): the page's index and whether the slot took the last buddy.
  std::optional<std::pair<std::uint32_t, bool>> zbud_alloc(std::uint32_t chunks,
                                                           std::uint32_t slot) {
    std::optional<std::uint32_t> id;
    for (std::uint32_t i = chunks; i < kPoolChunks && !id; ++i) {
      if (!unbuddied[i].empty()) {
        id = unbuddied[i].front();
        unlink_unbuddied(*id);
      }
    }
    if (!id) {
      const std::optional<Gfn> frame = vm.kernel->alloc_page_in_reclaim(0);
      if (!frame) return std::nullopt;
      if (!free_ids.empty()) {
        id = free_ids.back();
        free_ids.pop_back();
      } else {
        id = static_cast<std::uint32_t>(pages.size());
        pages.emplace_back();
      }
      pages[*id] = ZbudPage{};
      pages[*id].frame = *frame;
      pages[*id].lru_pos = lru.insert(lru.begin(), *id);
      ++pool_pages;
      pool_max = std::max(pool_max, pool_pages);
    }
    ZbudPage& z = pages[*id];
    const bool last = z.first_chunks != 0;
    (last ? z.last_chunks : z.first_chunks) = chunks;
    (last ? z.last_slot : z.first_slot) = slot;
    if (z.first_chunks == 0 || z.last_chunks == 0) link_unbuddied(*id);
    // The page holds new bytes: its content is unique.
    vm.kernel->host().write(
        vm.id, z.frame,
        make_unique_fingerprint(splitmix64(owner.env_.seed ^ ++writes), ContentClass::kOpaque));
    lru.splice(lru.begin(), lru, z.lru_pos);  // the most recently used at the head
    return std::pair{*id, last};
  }

  void link_unbuddied(std::uint32_t id) {
    ZbudPage& z = pages[id];
    z.unbuddied_chunks = z.free_chunks();
    auto& list = unbuddied[z.unbuddied_chunks];
    z.unbuddied_pos = list.insert(list.begin(), id);
    z.unbuddied = true;
  }

  void zbud_free(std::uint32_t id, bool last) {
    ZbudPage& z = pages[id];
    (last ? z.last_chunks : z.first_chunks) = 0;
    (last ? z.last_slot : z.first_slot) = kNoSlot;
    unlink_unbuddied(id);
    if (z.under_reclaim) return;  // zbud_reclaim_page() decides
    if (z.first_chunks == 0 && z.last_chunks == 0) {
      free_zbud_page(id);
      return;
    }
    link_unbuddied(id);
  }
  void unlink_unbuddied(std::uint32_t id) {
    ZbudPage& z = pages[id];
    if (!z.unbuddied) return;
    unbuddied[z.unbuddied_chunks].erase(z.unbuddied_pos);
    z.unbuddied = false;
  }
  void free_zbud_page(std::uint32_t id) {
    ZbudPage& z = pages[id];
    lru.erase(z.lru_pos);
    vm.kernel->free_pages(0, z.frame, 0);
    --pool_pages;
    free_ids.push_back(id);
  }

  void queue_shrink() {
    // queue_work(shrink_wq): the worker runs after this store has gone to the disk.
    if (shrink_queued) return;
    shrink_queued = true;
    const VmId id = vm.id;
    owner.env_.queue->after(Duration{}, EventQueue::kGuest, [&o = owner, id](TimePoint) {
      if (Guest* g = o.guests_.find(id)) g->shrink();
    });
  }

  // shrink_worker() -> zbud_reclaim_page(pool, 8).
  void shrink() {
    shrink_queued = false;
    for (unsigned i = 0; i < kReclaimRetries && !lru.empty(); ++i) {
      const std::uint32_t id = lru.back();
      ZbudPage& z = pages[id];
      unlink_unbuddied(id);
      z.under_reclaim = true;
      const std::uint32_t first = z.first_slot, last = z.last_slot;
      // The first eviction that fails leaves the other buddy alone.
      if (first == kNoSlot || write_back(first)) {
        if (last != kNoSlot) write_back(last);
      }
      ZbudPage& after = pages[id];
      after.under_reclaim = false;
      if (after.first_chunks == 0 && after.last_chunks == 0) {
        free_zbud_page(id);
        return;
      }
      if (after.first_chunks == 0 || after.last_chunks == 0) link_unbuddied(id);
      lru.splice(lru.begin(), lru, after.lru_pos);
    }
    owner.stats_.reject_reclaim_fail.add();
  }

  // zswap_writeback_entry()
  bool write_back(std::uint32_t slot) {
    const auto it = entries.find(slot);
    if (it == entries.end()) return true;  // invalidated meanwhile
    if (!vm.kernel->write_back_swap_slot(slot, it->second.content)) return false;
    charge(compressor_ops(owner.cfg_.compressor).decompress);  // into the new swap cache page
    owner.stats_.written_back_pages.add();
    drop(slot);
    return true;
  }

  void check() const {
    std::uint64_t used = 0, same = 0;
    for (const auto& [slot, e] : entries) {
      if (e.zpage == kSameFilled) {
        ++same;
        continue;
      }
      const ZbudPage& z = pages.at(e.zpage);
      if ((e.last ? z.last_slot : z.first_slot) != slot) {
        throw std::logic_error(fmt::format("zswap: slot {} is not in its zbud buddy", slot));
      }
      ++used;
    }
    if (same != same_filled) throw std::logic_error("zswap: same-filled count is off");
    std::uint64_t buddies = 0;
    for (const std::uint32_t id : lru) {
      const ZbudPage& z = pages[id];
      buddies += (z.first_chunks != 0 ? 1 : 0) + (z.last_chunks != 0 ? 1 : 0);
      if (z.first_chunks == 0 && z.last_chunks == 0) {
        throw std::logic_error("zswap: an empty zbud page is still in the pool");
      }
      if (z.unbuddied != (z.first_chunks == 0 || z.last_chunks == 0)) {
        throw std::logic_error("zswap: a zbud page is on the wrong list");
      }
    }
    if (buddies != used || lru.size() != pool_pages) {
      throw std::logic_error(
          fmt::format("zswap: {} entries in zbud pages, {} buddies, {} pages "
                      "on the LRU, {} counted",
                      used, buddies, lru.size(), pool_pages));
    }
  }

  Zswap& owner;
  VmHandle vm;
  std::unordered_map<std::uint32_t, Entry> entries;  // the swap slot tree
  std::vector<ZbudPage> pages;
  std::vector<std::uint32_t> free_ids;
  std::list<std::uint32_t> lru;  // zbud pages, most recently used first
  std::array<std::list<std::uint32_t>, kPoolChunks> unbuddied;  // by free chunks
  std::uint64_t pool_pages = 0;
  std::uint64_t same_filled = 0;
  std::uint64_t stored_max = 0;
  std::uint64_t pool_max = 0;
  std::uint64_t writes = 0;
  bool reached_full = false;  // zswap_pool_reached_full
  bool shrink_queued = false;
};

void ZswapStats::visit(StatsVisitor& v) const {
  v.counter("stores", stores);
  v.counter("succ_stores", succ_stores);
  v.counter("loads", loads);
  v.counter("invalidates", invalidates);
  v.counter("same_filled_stores", same_filled_stores);
  v.counter("written_back_pages", written_back_pages);
  v.counter("pool_limit_hit", pool_limit_hit);
  v.counter("reject_reclaim_fail", reject_reclaim_fail);
  v.counter("reject_alloc_fail", reject_alloc_fail);
  v.counter("reject_compress_poor", reject_compress_poor);
  v.counter("duplicate_entry", duplicate_entry);
}

Zswap::Zswap(ZswapConfig cfg) : cfg_(std::move(cfg)) {}
Zswap::~Zswap() = default;

ZswapConfig Zswap::config_from(Params& p) {
  ZswapConfig c;
  c.compressor = p.option("compressor", c.compressor, kCompressorSpellings,
                          "zswap.compressor (6.1's default: lzo, LZO1X-1)");
  c.zpool = p.option("zpool", c.zpool, kZpoolSpellings, "zswap.zpool (6.1's default: zbud)");
  c.max_pool_percent = static_cast<std::uint32_t>(
      p.integer("max_pool_percent", c.max_pool_percent,
                "zswap.max_pool_percent: the pool's limit in percent of the guest's RAM", 1, 100));
  c.accept_threshold_percent = static_cast<std::uint32_t>(p.integer(
      "accept_threshold_percent", c.accept_threshold_percent,
      "zswap.accept_threshold_percent: a full pool accepts again below this share of its limit", 0,
      100));
  c.same_filled_pages = p.boolean("same_filled_pages", c.same_filled_pages,
                                  "zswap.same_filled_pages_enabled: a page of one repeated word "
                                  "is kept as the word");
  c.compression_profile = compression_profile_param(p, c.compressor);
  return c;
}

void Zswap::start(const MechanismEnv& env) {
  env_ = env;
}

void Zswap::attach(const VmHandle& vm) {
  guests_.add(std::make_unique<Guest>(*this, vm));
}

void Zswap::detach(VmId vm) {
  guests_.remove(vm);  // the pool's pages went with the guest's memory
}

void Zswap::visit_stats(StatsVisitor& v) const {
  stats_.visit(v);
}

void Zswap::visit_columns(StatsVisitor& v) const {
  std::uint64_t stored = 0, pool = 0;
  for (const auto& g : guests_) {
    stored += g->entries.size();
    pool += g->pool_pages;
  }
  v.value("zswap_stored_pages", static_cast<double>(stored));
  v.value("zswap_pool_pages", static_cast<double>(pool));
}

std::uint64_t Zswap::stored_pages(VmId vm) const {
  const Guest* g = guests_.find(vm);
  return g != nullptr ? g->entries.size() : 0;
}
std::uint64_t Zswap::stored_pages_max(VmId vm) const {
  const Guest* g = guests_.find(vm);
  return g != nullptr ? g->stored_max : 0;
}
std::uint64_t Zswap::pool_total_size(VmId vm) const {
  const Guest* g = guests_.find(vm);
  return g != nullptr ? g->pool_pages * kPageSize : 0;
}
std::uint64_t Zswap::pool_pages_max(VmId vm) const {
  const Guest* g = guests_.find(vm);
  return g != nullptr ? g->pool_max : 0;
}
std::uint64_t Zswap::same_filled_pages(VmId vm) const {
  const Guest* g = guests_.find(vm);
  return g != nullptr ? g->same_filled : 0;
}

void Zswap::check(bool full) const {
  for (const auto& g : guests_) {
    if (full) {
      g->check();
    } else if (g->lru.size() != g->pool_pages || g->same_filled > g->entries.size()) {
      throw std::logic_error("zswap: the pool's counts disagree");
    }
  }
}

}  // namespace memvirt
