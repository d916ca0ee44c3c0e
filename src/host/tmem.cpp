#include "host/tmem.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <stdexcept>

namespace memvirt {

// --- Fingerprint backend ---------------------------------------------------------------------

FingerprintTmemBackend::FingerprintTmemBackend(SizeFn compressed_bytes)
    : compressed_bytes_(std::move(compressed_bytes)) {}

TmemData FingerprintTmemBackend::prepare(const TmemPage& page, bool compress) {
  TmemData d;
  d.content = page.content;
  d.zero = page.content == kZeroContent;
  d.size = static_cast<std::uint32_t>(kPageSize);
  if (compress) {
    const std::uint32_t c = compressed_bytes_(page.content);
    if (c < kPageSize) {
      d.size = c;
      d.compressed = true;
    }
  }
  // Equal contents have equal stored forms, so equal first bytes.
  d.first_byte = static_cast<std::uint8_t>(splitmix64(page.content.value()) & 0xFF);
  return d;
}

std::uint64_t FingerprintTmemBackend::keep(TmemData&& data) {
  return data.content.value();
}

Fingerprint FingerprintTmemBackend::load(std::uint64_t handle, std::span<std::byte>) {
  return Fingerprint{handle};
}

int FingerprintTmemBackend::compare(const TmemData& a, std::uint64_t b) const {
  return a.content.value() < b ? -1 : (a.content.value() > b ? 1 : 0);
}

int FingerprintTmemBackend::compare(std::uint64_t a, std::uint64_t b) const {
  return a < b ? -1 : (a > b ? 1 : 0);
}

// --- Structures ------------------------------------------------------------------------------

// Orders descriptors by their stored forms; finds a prepared page's twin. Counts comparisons.
struct Tmem::ContentOrder {
  using is_transparent = void;
  const TmemBackend* backend;
  Counter* compares;
  bool operator()(const Descriptor* a, const Descriptor* b) const;
  bool operator()(const TmemData& a, const Descriptor* b) const;
  bool operator()(const Descriptor* a, const TmemData& b) const;
};

struct Tmem::Tree {
  explicit Tree(ContentOrder order) : set(order) {}
  std::set<Descriptor*, ContentOrder> set;
};

struct Tmem::Descriptor {
  std::uint64_t handle = 0;
  std::uint32_t size = 0;  // bytes of memory it takes (0: an eliminated zero page)
  std::uint32_t refs = 0;  // pages holding it
  bool compressed = false;
  bool ephemeral = true;
  bool in_tree = false;
  std::set<Descriptor*, ContentOrder>::iterator tree_position;  // unlinked without comparing
  std::uint8_t first_byte = 0;
  std::optional<TmemClientId> charged;  // the client whose maxmem a persistent copy counts in
};

bool Tmem::ContentOrder::operator()(const Descriptor* a, const Descriptor* b) const {
  compares->add();
  return backend->compare(a->handle, b->handle) < 0;
}
bool Tmem::ContentOrder::operator()(const TmemData& a, const Descriptor* b) const {
  compares->add();
  return backend->compare(a, b->handle) < 0;
}
bool Tmem::ContentOrder::operator()(const Descriptor* a, const TmemData& b) const {
  compares->add();
  return backend->compare(b, a->handle) > 0;
}

struct Tmem::Page {
  Pool* pool = nullptr;
  PageKey key;
  Descriptor* data = nullptr;
  // The global LRU of ephemeral pages.
  Page* prev = nullptr;
  Page* next = nullptr;
  bool second_chance_taken = false;
};

struct Tmem::Pool {
  TmemPoolFlags flags;
  std::array<std::uint64_t, 2> uuid{};
  std::vector<TmemClientId> sharers;  // the creator first; private pools have one
  std::map<PageKey, std::unique_ptr<Page>> pages;
};

struct Tmem::Client {
  std::uint64_t maxmem_pages = 0;
  std::function<std::uint64_t()> domain_pages;
  std::array<Pool*, 16> pools{};
  std::vector<std::unique_ptr<Pool>> private_pools;
  std::uint64_t persistent_raw = 0, persistent_bytes = 0;  // memory charged to the domain
};

struct Tmem::Lru {
  Page* head = nullptr;
  Page* tail = nullptr;
  std::uint64_t length = 0;
  void push_back(Page* p) {
    p->prev = tail;
    p->next = nullptr;
    (tail != nullptr ? tail->next : head) = p;
    tail = p;
    ++length;
  }
  void remove(Page* p) {
    (p->prev != nullptr ? p->prev->next : head) = p->next;
    (p->next != nullptr ? p->next->prev : tail) = p->prev;
    p->prev = p->next = nullptr;
    --length;
  }
};

void TmemCounters::visit(StatsVisitor& v) const {
  v.counter("puts", puts);
  v.counter("good_puts", good_puts);
  v.counter("dup_puts_replaced", dup_puts_replaced);
  v.counter("dup_puts_flushed", dup_puts_flushed);
  v.counter("no_mem_puts", no_mem_puts);
  v.counter("maxmem_puts", maxmem_puts);
  v.counter("frozen_puts", frozen_puts);
  v.counter("gets", gets);
  v.counter("found_gets", found_gets);
  v.counter("flushes", flushes);
  v.counter("flush_objects", flush_objects);
  v.counter("evictions", evictions);
  v.counter("relinquished", relinquished);
  v.counter("deduped_puts", deduped_puts);
  v.counter("compressed_puts", compressed_puts);
  v.counter("compress_poor", compress_poor);
  v.counter("zero_puts", zero_puts);
  v.counter("compares", compares);
}

// --- Tmem ------------------------------------------------------------------------------------

Tmem::Tmem(TmemConfig cfg, TmemBackend& backend, std::function<std::uint64_t()> heap_free_pages)
    : cfg_(cfg),
      backend_(backend),
      heap_free_pages_(std::move(heap_free_pages)),
      lru_(std::make_unique<Lru>()) {
  for (auto& t : dedup_trees_)
    t = std::make_unique<Tree>(ContentOrder{&backend_, &counters_.compares});
}

Tmem::~Tmem() {
  for (auto& [id, c] : clients_) {
    for (auto& p : c->private_pools) {
      while (!p->pages.empty()) remove_page(*p, p->pages.begin());
    }
  }
  for (auto& p : shared_pools_) {
    while (!p->pages.empty()) remove_page(*p, p->pages.begin());
  }
}

void Tmem::new_client(TmemClientId client, std::uint64_t maxmem_pages,
                      std::function<std::uint64_t()> domain_pages) {
  if (clients_.contains(client))
    throw std::logic_error(fmt::format("tmem: client {} exists", client));
  auto c = std::make_unique<Client>();
  c->maxmem_pages = maxmem_pages;
  c->domain_pages = std::move(domain_pages);
  clients_.emplace(client, std::move(c));
}

void Tmem::destroy_client(TmemClientId client) {
  const auto it = clients_.find(client);
  if (it == clients_.end()) return;
  for (unsigned i = 0; i < it->second->pools.size(); ++i) {
    if (it->second->pools[i] != nullptr) destroy_pool(client, TmemPoolId{i});
  }
  clients_.erase(it);
}

std::optional<TmemPoolId> Tmem::new_pool(TmemClientId client, TmemPoolFlags flags,
                                         std::array<std::uint64_t, 2> uuid) {
  Client& c = *clients_.at(client);
  const auto slot = std::find(c.pools.begin(), c.pools.end(), nullptr);
  if (slot == c.pools.end()) return std::nullopt;
  Pool* pool = nullptr;
  if (flags.shared) {
    for (auto& p : shared_pools_) {
      if (p->uuid == uuid && p->flags.persistent == flags.persistent) pool = p.get();
    }
    if (pool == nullptr) {
      if (shared_pools_.size() >= 16) return std::nullopt;
      shared_pools_.push_back(std::make_unique<Pool>());
      pool = shared_pools_.back().get();
      pool->flags = flags;
      pool->uuid = uuid;
    }
    if (std::find(pool->sharers.begin(), pool->sharers.end(), client) != pool->sharers.end()) {
      return TmemPoolId{static_cast<std::uint32_t>(std::find(c.pools.begin(), c.pools.end(), pool) -
                                                   c.pools.begin())};
    }
  } else {
    c.private_pools.push_back(std::make_unique<Pool>());
    pool = c.private_pools.back().get();
    pool->flags = flags;
  }
  pool->sharers.push_back(client);
  *slot = pool;
  return TmemPoolId{static_cast<std::uint32_t>(slot - c.pools.begin())};
}

Tmem::Pool* Tmem::find_pool(TmemClientId client, TmemPoolId pool) {
  const auto it = clients_.find(client);
  if (it == clients_.end() || pool.value() >= it->second->pools.size()) return nullptr;
  return it->second->pools[pool.value()];
}

void Tmem::destroy_pool(TmemClientId client, TmemPoolId id) {
  Pool* pool = find_pool(client, id);
  if (pool == nullptr) return;
  Client& c = *clients_.at(client);
  c.pools[id.value()] = nullptr;
  std::erase(pool->sharers, client);
  if (!pool->sharers.empty()) return;  // a shared pool lives while a sharer is left
  while (!pool->pages.empty()) remove_page(*pool, pool->pages.begin());
  if (pool->flags.shared) {
    std::erase_if(shared_pools_, [pool](const auto& p) { return p.get() == pool; });
  } else {
    std::erase_if(c.private_pools, [pool](const auto& p) { return p.get() == pool; });
  }
}

std::uint64_t Tmem::bytes_to_pages(std::uint64_t bytes) const {
  return (bytes + kPageSize - 1) / kPageSize;
}

std::uint64_t Tmem::pages_used() const {
  return raw_pages_ + bytes_to_pages(compressed_bytes_);
}

std::uint64_t Tmem::ephemeral_pages_used() const {
  return ephemeral_raw_pages_ + bytes_to_pages(ephemeral_compressed_bytes_);
}

std::uint64_t Tmem::persistent_pages(TmemClientId client) const {
  const auto it = clients_.find(client);
  if (it == clients_.end()) return 0;
  return it->second->persistent_raw + bytes_to_pages(it->second->persistent_bytes);
}

std::uint64_t Tmem::client_pages(TmemClientId client, bool persistent) const {
  const auto it = clients_.find(client);
  if (it == clients_.end()) return 0;
  std::uint64_t n = 0;
  for (const auto& p : it->second->private_pools) {
    if (p->flags.persistent == persistent) n += p->pages.size();
  }
  return n;
}

bool Tmem::evict_one() {
  // tmem_evict(): the oldest ephemeral page; one whose content other pages share gets one
  // second chance at the tail.
  for (Page* p = lru_->head; p != nullptr; p = lru_->head) {
    if (p->data != nullptr && p->data->refs > 1 && !p->second_chance_taken) {
      p->second_chance_taken = true;
      lru_->remove(p);
      lru_->push_back(p);
      continue;
    }
    Pool& pool = *p->pool;
    remove_page(pool, pool.pages.find(p->key));
    counters_.evictions.add();
    return true;
  }
  return false;
}

bool Tmem::ensure_available(TmemWork* work) {
  // tmem_ensure_avail_pages(): evict until a whole MiB is free, giving up after ten tries
  // that found nothing to evict.
  unsigned failed = cfg_.max_failed_evictions;
  while (heap_free_pages_() < cfg_.free_reserve_pages) {
    if (evict_one()) {
      if (work != nullptr) ++work->evictions;
    } else if (failed-- == 0) {
      return false;
    }
  }
  return true;
}

std::uint64_t Tmem::relinquish(std::uint64_t pages) {
  const std::uint64_t before = pages_used();
  while (heap_free_pages_() < pages && evict_one()) counters_.relinquished.add();
  return before - pages_used();
}

void Tmem::release_content(Descriptor* d) {
  if (--d->refs > 0) return;
  // pcd_disassociate(): the node is unlinked where it is, as rb_erase does.
  if (d->in_tree) dedup_trees_[d->first_byte]->set.erase(d->tree_position);
  if (d->size == kPageSize) {
    --raw_pages_;
    if (d->ephemeral) --ephemeral_raw_pages_;
  } else {
    compressed_bytes_ -= d->size;
    if (d->ephemeral) ephemeral_compressed_bytes_ -= d->size;
  }
  if (d->charged) {
    Client& c = *clients_.at(*d->charged);
    (d->size == kPageSize ? c.persistent_raw : c.persistent_bytes) -=
        d->size == kPageSize ? 1 : d->size;
  }
  if (d->size > 0) backend_.release(d->handle);
  delete d;
}

void Tmem::remove_page(Pool& pool, std::map<PageKey, std::unique_ptr<Page>>::iterator it) {
  Page* p = it->second.get();
  if (pool.flags.persistent) {
    --persistent_count_;
  } else {
    lru_->remove(p);
  }
  release_content(p->data);
  --page_count_;
  pool.pages.erase(it);
}

Tmem::Descriptor* Tmem::store_content(const TmemPage& page, bool ephemeral,
                                      std::optional<TmemClientId> charged, TmemWork* work,
                                      PutResult* failure) {
  const bool dedup = ephemeral && cfg_.dedup;
  TmemData data = backend_.prepare(page, cfg_.compress);
  if (work != nullptr && cfg_.compress) ++work->compressions;
  if (data.zero && !(cfg_.dedup && cfg_.compress)) {
    // Trailing-zero elimination: nothing is stored.
    counters_.zero_puts.add();
    auto* d = new Descriptor{};
    d->size = 0;
    d->refs = 1;
    d->ephemeral = ephemeral;
    d->handle = 0;
    return d;
  }
  Tree* tree = dedup ? dedup_trees_[data.first_byte].get() : nullptr;
  if (tree != nullptr) {
    const std::uint64_t before = counters_.compares.value();
    const auto it = tree->set.find(data);
    if (work != nullptr) {
      work->compares += static_cast<std::uint32_t>(counters_.compares.value() - before);
    }
    if (it != tree->set.end()) {
      counters_.deduped_puts.add();
      ++(*it)->refs;
      return *it;
    }
  }
  const std::uint32_t size = data.size;
  const std::uint64_t need = size == kPageSize ? 1
                                               : bytes_to_pages(compressed_bytes_ + size) -
                                                     bytes_to_pages(compressed_bytes_);
  if (heap_free_pages_() < need) {
    *failure = PutResult::kNoMemory;
    return nullptr;
  }
  if (charged) {
    Client& c = *clients_.at(*charged);
    const std::uint64_t persistent_after =
        c.persistent_raw + bytes_to_pages(c.persistent_bytes + (size == kPageSize ? 0 : size)) +
        (size == kPageSize ? 1 : 0);
    if (c.domain_pages() + persistent_after > c.maxmem_pages) {
      counters_.maxmem_puts.add();
      *failure = PutResult::kOverMaxmem;
      return nullptr;
    }
    (size == kPageSize ? c.persistent_raw : c.persistent_bytes) += size == kPageSize ? 1 : size;
  }
  auto* d = new Descriptor{};
  d->size = size;
  d->compressed = data.compressed;
  d->first_byte = data.first_byte;
  d->ephemeral = ephemeral;
  d->charged = charged;
  d->refs = 1;
  if (cfg_.compress) (data.compressed ? counters_.compressed_puts : counters_.compress_poor).add();
  d->handle = backend_.keep(std::move(data));
  if (size == kPageSize) {
    ++raw_pages_;
    if (ephemeral) ++ephemeral_raw_pages_;
  } else {
    compressed_bytes_ += size;
    if (ephemeral) ephemeral_compressed_bytes_ += size;
  }
  if (tree != nullptr) {
    d->in_tree = true;
    d->tree_position = tree->set.insert(d).first;
  }
  return d;
}

Tmem::PutResult Tmem::put(TmemClientId client, TmemPoolId id, const TmemOid& oid,
                          std::uint32_t index, const TmemPage& page, TmemWork* work) {
  counters_.puts.add();
  Pool* pool = find_pool(client, id);
  if (pool == nullptr) return PutResult::kNoPool;
  if (frozen_) {
    counters_.frozen_puts.add();
    return PutResult::kFrozen;
  }
  const bool ephemeral = !pool->flags.persistent;
  ensure_available(work);
  const PageKey key{oid, index};
  auto it = pool->pages.find(key);
  const bool duplicate = it != pool->pages.end();
  if (duplicate) {
    // A put of a handle already held replaces it; the old copy never outlives a failed put.
    remove_page(*pool, it);
  }
  if (work != nullptr) ++work->copies;
  // Persistent pages of a private pool count against its client's maxmem.
  const std::optional<TmemClientId> charged =
      ephemeral || pool->flags.shared ? std::nullopt : std::optional{client};
  PutResult failure = PutResult::kNoMemory;
  Descriptor* d = store_content(page, ephemeral, charged, work, &failure);
  if (d == nullptr) {
    if (duplicate) {
      counters_.dup_puts_flushed.add();
    } else if (failure == PutResult::kNoMemory) {
      counters_.no_mem_puts.add();
    }
    return failure;
  }
  if (duplicate) counters_.dup_puts_replaced.add();
  auto p = std::make_unique<Page>();
  p->pool = pool;
  p->key = key;
  p->data = d;
  if (ephemeral) {
    lru_->push_back(p.get());
  } else {
    persistent_max_ = std::max(persistent_max_, ++persistent_count_);
  }
  pool->pages.emplace(key, std::move(p));
  ++page_count_;
  pages_max_ = std::max(pages_max_, pages_used());
  apparent_max_ = std::max(apparent_max_, page_count_);
  counters_.good_puts.add();
  return PutResult::kStored;
}

std::optional<Fingerprint> Tmem::get(TmemClientId client, TmemPoolId id, const TmemOid& oid,
                                     std::uint32_t index, std::span<std::byte> out,
                                     TmemWork* work) {
  counters_.gets.add();
  Pool* pool = find_pool(client, id);
  if (pool == nullptr) return std::nullopt;
  const auto it = pool->pages.find(PageKey{oid, index});
  if (it == pool->pages.end()) return std::nullopt;
  Page* p = it->second.get();
  Fingerprint content = kZeroContent;
  if (p->data->size > 0) {
    content = backend_.load(p->data->handle, out);
    if (work != nullptr && p->data->compressed) ++work->decompressions;
  } else if (!out.empty()) {
    std::fill(out.begin(), out.end(), std::byte{0});
  }
  if (work != nullptr) ++work->copies;
  counters_.found_gets.add();
  if (!pool->flags.persistent) {
    if (!pool->flags.shared) {
      remove_page(*pool, it);  // exclusive: the page leaves a private ephemeral pool
    } else {
      lru_->remove(p);
      lru_->push_back(p);
    }
  }
  return content;
}

bool Tmem::flush_page(TmemClientId client, TmemPoolId id, const TmemOid& oid, std::uint32_t index) {
  Pool* pool = find_pool(client, id);
  if (pool == nullptr) return false;
  const auto it = pool->pages.find(PageKey{oid, index});
  if (it == pool->pages.end()) return false;
  remove_page(*pool, it);
  counters_.flushes.add();
  return true;
}

std::uint64_t Tmem::flush_object(TmemClientId client, TmemPoolId id, const TmemOid& oid) {
  Pool* pool = find_pool(client, id);
  if (pool == nullptr) return 0;
  counters_.flush_objects.add();
  std::uint64_t n = 0;
  auto it = pool->pages.lower_bound(PageKey{oid, 0});
  while (it != pool->pages.end() && it->first.first == oid) {
    auto next = std::next(it);
    remove_page(*pool, it);
    it = next;
    ++n;
  }
  return n;
}

void Tmem::check_counts() const {
  const auto fail = [](const std::string& what) { throw std::logic_error("tmem: " + what); };
  if (persistent_count_ > page_count_) fail("more persistent pages than pages");
  if (page_count_ - persistent_count_ != lru_->length) {
    fail(fmt::format("{} ephemeral pages counted, {} on the LRU", page_count_ - persistent_count_,
                     lru_->length));
  }
  if (pages_max_ < pages_used()) fail("the peak is below the current pages");
}

void Tmem::check() const {
  std::uint64_t pages = 0, ephemeral = 0;
  std::unordered_map<const Descriptor*, std::uint32_t> refs;
  const auto fail = [](const std::string& what) { throw std::logic_error("tmem: " + what); };
  const auto walk = [&](const Pool& pool) {
    for (const auto& [key, p] : pool.pages) {
      if (p->pool != &pool || p->key != key) fail("a page's pool or key is wrong");
      ++pages;
      ++refs[p->data];
      if (!pool.flags.persistent) ++ephemeral;
      if (pool.flags.persistent != !p->data->ephemeral) fail("a descriptor's kind is wrong");
    }
  };
  for (const auto& [id, c] : clients_) {
    for (const auto& p : c->private_pools) walk(*p);
  }
  for (const auto& p : shared_pools_) walk(*p);
  if (pages != page_count_) fail(fmt::format("{} pages counted, {} held", page_count_, pages));
  if (ephemeral != lru_->length) fail("the LRU does not hold every ephemeral page");
  if (pages - ephemeral != persistent_count_) fail("the persistent page count is wrong");
  std::uint64_t raw = 0, bytes = 0, walked = 0;
  for (const Page* p = lru_->head; p != nullptr; p = p->next) {
    if (p->pool->flags.persistent) fail("a persistent page is on the LRU");
    ++walked;
  }
  if (walked != lru_->length) fail("the LRU's length is wrong");
  for (const auto& [d, n] : refs) {
    if (d->refs != n) fail(fmt::format("a descriptor has {} references, {} pages", d->refs, n));
    if (d->size == kPageSize) {
      ++raw;
    } else {
      bytes += d->size;
    }
    if (d->size > 0 && !backend_.verify(d->handle)) fail("a stored page does not verify");
    if (d->refs > 1 && !d->in_tree) fail("a shared descriptor is not in a dedup tree");
  }
  if (raw != raw_pages_ || bytes != compressed_bytes_) fail("memory held does not add up");
  std::unordered_map<TmemClientId, std::pair<std::uint64_t, std::uint64_t>> charged;
  for (const auto& [d, n] : refs) {
    if (!d->charged) continue;
    auto& c = charged[*d->charged];
    (d->size == kPageSize ? c.first : c.second) += d->size == kPageSize ? 1 : d->size;
  }
  for (const auto& [id, c] : clients_) {
    if (charged[id] != std::pair{c->persistent_raw, c->persistent_bytes}) {
      fail(fmt::format("client {}'s persistent memory does not add up", id));
    }
  }
  std::uint64_t in_trees = 0;
  for (const auto& t : dedup_trees_) in_trees += t->set.size();
  std::uint64_t tree_descriptors = 0;
  for (const auto& [d, n] : refs) tree_descriptors += d->in_tree ? 1 : 0;
  if (in_trees != tree_descriptors) fail("a dedup tree holds a descriptor no page holds");
}

}  // namespace memvirt
