// cleancache and frontswap over Xen's tmem (mm/cleancache.c, mm/frontswap.c and the Xen front
// end drivers/xen/tmem.c, Linux 3.x), with tmem's dedup and compression switched on for the
// host (Xen's `tmem_dedup`, `tmem_compress`).
//
// cleancache: each filesystem gets a private ephemeral pool when first used (init_fs at
// mount); a clean page leaving the page cache is put (object = inode, index = page), and a
// put always appears to succeed; a page cache miss tries a get before the disk (exclusive);
// truncate and unlink flush the page or the object, umount destroys the pool.
// frontswap: one private persistent pool per guest; swap-out stores (object = slot >> 4,
// index = slot & 15, the front end's swizzle), a failed store falls to the swap disk;
// swap-in loads (the pool keeps the page); a freed slot is flushed.
//
// Each operation's CPU (the hypercall's copy, compression, dedup comparisons) is charged to
// the guest's vCPUs, where the hypercall runs.
#pragma once

#include <memory>
#include <optional>

#include "host/compression.hpp"
#include "host/compression_profile.hpp"
#include "host/tmem.hpp"
#include "reclaim/mechanism.hpp"
#include "reclaim/per_vm.hpp"

namespace memvirt {

struct TmemFrontendsConfig {
  bool cleancache = true;
  bool frontswap = true;
  bool dedup = false;
  bool compress = false;
  Compressor compressor = Compressor::kLzo1x1;  // Xen 4.0's tmh_compress: LZO1X-1
  // Measured compressed sizes by content class; needed when compressing.
  std::shared_ptr<const CompressionProfile> compression_profile;
};

struct TmemFrontendsStats {
  Counter cleancache_puts, cleancache_succ_gets, cleancache_failed_gets, cleancache_invalidates;
  Counter frontswap_succ_stores, frontswap_failed_stores, frontswap_loads, frontswap_invalidates;
  void visit(StatsVisitor& v) const;
};

class TmemFrontends final : public Mechanism {
 public:
  using Config = TmemFrontendsConfig;
  explicit TmemFrontends(TmemFrontendsConfig cfg);
  ~TmemFrontends() override;
  static TmemFrontendsConfig config_from(Params& p);

  [[nodiscard]] std::string name() const override { return "tmem"; }
  void start(const MechanismEnv& env) override;
  void attach(const VmHandle& vm) override;
  void detach(VmId vm) override;
  void visit_stats(StatsVisitor& v) const override;
  void visit_columns(StatsVisitor& v) const override;

  [[nodiscard]] const TmemFrontendsStats& stats() const { return stats_; }
  // Pages in frontswap of one guest (frontswap_curr_pages), for self-shrinking.
  [[nodiscard]] std::uint64_t frontswap_pages(VmId vm) const;
  [[nodiscard]] bool frontswap_enabled() const { return cfg_.frontswap; }

 private:
  struct Guest;
  void charge(const Guest& g, const TmemWork& w);

  TmemFrontendsConfig cfg_;
  MechanismEnv env_;
  Tmem* tmem_ = nullptr;
  bool bytes_ = false;  // the host keeps real bytes: tmem compresses real bytes too
  PerVm<Guest> guests_;
  TmemFrontendsStats stats_;
};

}  // namespace memvirt
