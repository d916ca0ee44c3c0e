// zswap (mm/zswap.c, Linux 6.1 as Debian 12 ships it): a compressed cache for swap pages in the
// guest's own memory, frontswap's living descendant.
//
// A page leaving for swap is stored when it can be: a page filled with one repeated word is
// kept as that word (same_filled_pages, no pool memory); any other page is compressed and kept
// in the zpool when the compressed copy fits a zbud buddy. The pool is limited to
// max_pool_percent of the guest's RAM: a store that finds it full is rejected (the page goes
// to the swap disk), marks the pool full, and queues the shrink worker, which writes back the
// least recently stored zbud page (both buddies) to the swap disk; once marked full, stores
// are rejected until the pool falls below accept_threshold_percent of its limit. A load keeps
// the entry (6.1 has no exclusive loads); a freed slot drops it.
//
// zbud (mm/zbud.c): pool pages of 64 chunks of 64 bytes, the first chunk the page's header,
// each holding at most two compressed pages (the first and the last buddy). An allocation
// takes an unbuddied page with enough free chunks (first fit by free chunks), else a new
// page; a compressed page larger than 62 chunks cannot be stored. Pool pages are allocated
// from the guest's free memory inside reclaim (PF_MEMALLOC: below the watermarks). The shrink
// worker's swap cache page comes from the reserves too, where Linux's GFP_KERNEL allocation
// would reclaim for it; the page is freed once its write completes.
#pragma once

#include <memory>

#include "core/spelling.hpp"
#include "host/compression.hpp"
#include "host/compression_profile.hpp"
#include "reclaim/mechanism.hpp"
#include "reclaim/per_vm.hpp"

namespace memvirt {

enum class Zpool : std::uint8_t { kZbud };
inline constexpr std::array<Spelling<Zpool>, 1> kZpoolSpellings{{{Zpool::kZbud, "zbud"}}};

struct ZswapConfig {
  Compressor compressor = Compressor::kLzo1x1;  // CONFIG_ZSWAP_COMPRESSOR_DEFAULT (6.1: lzo)
  Zpool zpool = Zpool::kZbud;                   // CONFIG_ZSWAP_ZPOOL_DEFAULT (6.1: zbud)
  std::uint32_t max_pool_percent = 20;
  std::uint32_t accept_threshold_percent = 90;
  bool same_filled_pages = true;
  // Measured compressed sizes by content class (profiles/compression/).
  std::shared_ptr<const CompressionProfile> compression_profile;
};

// The counters of /sys/kernel/debug/zswap.
struct ZswapStats {
  Counter stores, loads, invalidates;  // frontswap calls that reached zswap
  Counter succ_stores;                 // stores zswap kept
  Counter same_filled_stores;
  Counter written_back_pages;
  Counter pool_limit_hit;
  Counter reject_reclaim_fail, reject_alloc_fail, reject_compress_poor;
  Counter duplicate_entry;
  void visit(StatsVisitor& v) const;
};

class Zswap final : public Mechanism {
 public:
  using Config = ZswapConfig;
  explicit Zswap(ZswapConfig cfg);
  ~Zswap() override;
  static ZswapConfig config_from(Params& p);

  [[nodiscard]] std::string name() const override { return "zswap"; }
  void start(const MechanismEnv& env) override;
  void attach(const VmHandle& vm) override;
  void detach(VmId vm) override;
  void visit_stats(StatsVisitor& v) const override;
  void visit_columns(StatsVisitor& v) const override;

  [[nodiscard]] const ZswapStats& stats() const { return stats_; }
  // debugfs stored_pages and pool_total_size (bytes) of one guest, and the peak of the first.
  [[nodiscard]] std::uint64_t stored_pages(VmId vm) const;
  [[nodiscard]] std::uint64_t stored_pages_max(VmId vm) const;
  [[nodiscard]] std::uint64_t pool_total_size(VmId vm) const;
  [[nodiscard]] std::uint64_t pool_pages_max(VmId vm) const;
  [[nodiscard]] std::uint64_t same_filled_pages(VmId vm) const;
  // Each guest's pool: chunks, buddies and entries agree (walked when `full`; the cheap
  // check compares the counts only).
  void check(bool full = true) const override;

 private:
  struct Guest;
  ZswapConfig cfg_;
  MechanismEnv env_;
  PerVm<Guest> guests_;
  ZswapStats stats_;
};

}  // namespace memvirt
