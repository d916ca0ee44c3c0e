#include "reclaim/tmem_frontends.hpp"

#include <fmt/format.h>

#include <array>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "host/tmem_bytes.hpp"
#include "reclaim/xen.hpp"

namespace memvirt {

namespace {

constexpr unsigned kSwizzleBits = 4;  // drivers/xen/tmem.c: SWIZ_BITS

TmemOid file_object(FileKey f) {
  return TmemOid{{f.inode, 0, 0}};
}
TmemOid swap_object(std::uint32_t slot) {
  return TmemOid{{slot >> kSwizzleBits, 0, 0}};
}
std::uint32_t swap_index(std::uint32_t slot) {
  return slot & ((1U << kSwizzleBits) - 1);
}

}  // namespace

struct TmemFrontends::Guest final : PageHooks {
  Guest(TmemFrontends& o, const VmHandle& h) : owner(o), vm(h) {}

  [[nodiscard]] TmemClientId client() const { return vm.id.value(); }
  // The bytes the host holds for a content (the bytes backend compresses real bytes).
  TmemPage page_of(Fingerprint fp) {
    if (!owner.bytes_) return TmemPage{fp, {}};
    generate_page_bytes(fp, scratch);
    return TmemPage{fp, scratch};
  }
  std::optional<TmemPoolId> fs_pool(std::uint32_t fs) {
    // cleancache_init_fs() at mount: a private ephemeral pool.
    if (const auto it = fs_pools.find(fs); it != fs_pools.end()) return it->second;
    const std::optional<TmemPoolId> pool = owner.tmem_->new_pool(client(), {});
    if (pool) fs_pools.emplace(fs, *pool);
    return pool;
  }

  void on_cache_evict(FileKey file, std::uint64_t page, Fingerprint content) override {
    if (!owner.cfg_.cleancache) return;
    const std::optional<TmemPoolId> pool = fs_pool(file.fs);
    if (!pool) return;
    TmemWork w;
    owner.tmem_->put(client(), *pool, file_object(file), static_cast<std::uint32_t>(page),
                     page_of(content), &w);
    owner.stats_.cleancache_puts.add();  // a put always appears to succeed
    owner.charge(*this, w);
  }
  std::optional<Fingerprint> on_cache_miss(FileKey file, std::uint64_t page) override {
    if (!owner.cfg_.cleancache) return std::nullopt;
    const auto it = fs_pools.find(file.fs);
    if (it == fs_pools.end()) return std::nullopt;
    TmemWork w;
    const std::optional<Fingerprint> got =
        owner.tmem_->get(client(), it->second, file_object(file), static_cast<std::uint32_t>(page),
                         owner.bytes_ ? std::span<std::byte>(scratch) : std::span<std::byte>{}, &w);
    (got ? owner.stats_.cleancache_succ_gets : owner.stats_.cleancache_failed_gets).add();
    owner.charge(*this, w);
    return got;
  }
  void on_invalidate_page(FileKey file, std::uint64_t page) override {
    const auto it = fs_pools.find(file.fs);
    if (it == fs_pools.end()) return;
    owner.tmem_->flush_page(client(), it->second, file_object(file),
                            static_cast<std::uint32_t>(page));
    owner.stats_.cleancache_invalidates.add();
  }
  void on_invalidate_file(FileKey file) override {
    const auto it = fs_pools.find(file.fs);
    if (it == fs_pools.end()) return;
    owner.tmem_->flush_object(client(), it->second, file_object(file));
    owner.stats_.cleancache_invalidates.add();
  }
  void on_invalidate_fs(std::uint32_t fs) override {
    const auto it = fs_pools.find(fs);
    if (it == fs_pools.end()) return;
    owner.tmem_->destroy_pool(client(), it->second);
    fs_pools.erase(it);
    owner.stats_.cleancache_invalidates.add();
  }

  bool on_swap_out(std::uint32_t slot, Fingerprint content) override {
    if (!owner.cfg_.frontswap || !swap_pool) return false;
    // A slot stored before is invalidated first (__frontswap_store's duplicate case).
    if (stored.contains(slot)) forget_slot(slot);
    TmemWork w;
    const Tmem::PutResult r = owner.tmem_->put(client(), *swap_pool, swap_object(slot),
                                               swap_index(slot), page_of(content), &w);
    owner.charge(*this, w);
    if (r != Tmem::PutResult::kStored) {
      owner.stats_.frontswap_failed_stores.add();
      return false;  // to the swap disk
    }
    stored.insert(slot);
    owner.stats_.frontswap_succ_stores.add();
    return true;
  }
  std::optional<Fingerprint> on_swap_in(std::uint32_t slot) override {
    if (!stored.contains(slot)) return std::nullopt;
    TmemWork w;
    const std::optional<Fingerprint> got =
        owner.tmem_->get(client(), *swap_pool, swap_object(slot), swap_index(slot),
                         owner.bytes_ ? std::span<std::byte>(scratch) : std::span<std::byte>{}, &w);
    if (!got) throw std::logic_error("frontswap: a stored slot is missing from its pool");
    owner.stats_.frontswap_loads.add();
    owner.charge(*this, w);
    return got;
  }
  [[nodiscard]] bool in_frontswap(std::uint32_t slot) const override {
    return stored.contains(slot);
  }
  void on_swap_free(std::uint32_t slot) override {
    if (!stored.contains(slot)) return;
    forget_slot(slot);
    owner.stats_.frontswap_invalidates.add();
  }
  void forget_slot(std::uint32_t slot) {
    owner.tmem_->flush_page(client(), *swap_pool, swap_object(slot), swap_index(slot));
    stored.erase(slot);
  }

  TmemFrontends& owner;
  VmHandle vm;
  std::unordered_map<std::uint32_t, TmemPoolId> fs_pools;
  std::optional<TmemPoolId> swap_pool;
  std::unordered_set<std::uint32_t> stored;  // frontswap_map: slots held in tmem
  std::array<std::byte, kPageSize> scratch{};
};

void TmemFrontendsStats::visit(StatsVisitor& v) const {
  v.counter("cleancache_puts", cleancache_puts);
  v.counter("cleancache_succ_gets", cleancache_succ_gets);
  v.counter("cleancache_failed_gets", cleancache_failed_gets);
  v.counter("cleancache_invalidates", cleancache_invalidates);
  v.counter("frontswap_succ_stores", frontswap_succ_stores);
  v.counter("frontswap_failed_stores", frontswap_failed_stores);
  v.counter("frontswap_loads", frontswap_loads);
  v.counter("frontswap_invalidates", frontswap_invalidates);
}

TmemFrontends::TmemFrontends(TmemFrontendsConfig cfg) : cfg_(std::move(cfg)) {}
TmemFrontends::~TmemFrontends() = default;

TmemFrontendsConfig TmemFrontends::config_from(Params& p) {
  TmemFrontendsConfig c;
  c.cleancache = p.boolean("cleancache", c.cleancache,
                           "clean pages leaving the page cache go to tmem (cleancache)");
  c.frontswap = p.boolean("frontswap", c.frontswap, "swap-outs go to tmem first (frontswap)");
  c.dedup = p.boolean("dedup", c.dedup,
                      "Xen's tmem_dedup: ephemeral pages of equal content "
                      "share one copy");
  c.compress = p.boolean("compress", c.compress,
                         "Xen's tmem_compress: pages kept compressed when that is smaller");
  c.compressor =
      p.option("compressor", c.compressor, kCompressorSpellings, "compressor (Xen 4.0: LZO1X-1)");
  c.compression_profile = compression_profile_param(p, c.compressor, c.compress);
  return c;
}

void TmemFrontends::start(const MechanismEnv& env) {
  env_ = env;
  if (env.xen == nullptr) throw std::logic_error("tmem runs in Xen: the host has no hypervisor");
  bytes_ = !env.host->store().inline_content();
  TmemConfig tc;
  tc.dedup = cfg_.dedup;
  tc.compress = cfg_.compress;
  std::unique_ptr<TmemBackend> backend;
  if (bytes_) {
    backend = std::make_unique<BytesTmemBackend>(cfg_.compressor);
  } else {
    std::shared_ptr<const CompressionProfile> profile = cfg_.compression_profile;
    const Compressor c = cfg_.compressor;
    backend =
        std::make_unique<FingerprintTmemBackend>([profile, c](Fingerprint fp) -> std::uint32_t {
          return profile ? profile->compressed_bytes(c, fp) : static_cast<std::uint32_t>(kPageSize);
        });
  }
  tmem_ = &env.xen->enable_tmem(tc, std::move(backend));
}

void TmemFrontends::attach(const VmHandle& vm) {
  Guest& g = guests_.add(std::make_unique<Guest>(*this, vm));
  // frontswap_init() at swapon: one private persistent pool.
  if (cfg_.frontswap) g.swap_pool = tmem_->new_pool(g.client(), {.persistent = true});
}

void TmemFrontends::detach(VmId vm) {
  guests_.remove(vm);  // the domain's pools go with it (XenHost::destroy_domain)
}

std::uint64_t TmemFrontends::frontswap_pages(VmId vm) const {
  const Guest* g = guests_.find(vm);
  return g != nullptr ? g->stored.size() : 0;
}

void TmemFrontends::charge(const Guest& g, const TmemWork& w) {
  const CostProfile& costs = *env_.costs;
  CpuTime t = costs.cost(Op::kPageCopy) * w.copies;
  if (cfg_.compress) {
    const CompressorOps ops = compressor_ops(cfg_.compressor);
    t += costs.cost(ops.compress) * w.compressions + costs.cost(ops.decompress) * w.decompressions;
  }
  // Dedup walks a tree of full comparisons; all but a match return at the first difference.
  t += costs.cost(Op::kMemcmpPageDiffer) * w.compares;
  g.vm.vcpu->charge(t);
}

void TmemFrontends::visit_columns(StatsVisitor& v) const {
  v.value("tmem_pages", static_cast<double>(tmem_ ? tmem_->pages_used() : 0));
  v.value("tmem_apparent_pages", static_cast<double>(tmem_ ? tmem_->apparent_pages() : 0));
  v.value("frontswap_pages", static_cast<double>(tmem_ ? tmem_->persistent_page_count() : 0));
}

void TmemFrontends::visit_stats(StatsVisitor& v) const {
  stats_.visit(v);
  if (tmem_ != nullptr) tmem_->counters().visit(v);
}

}  // namespace memvirt
