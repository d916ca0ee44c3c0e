// Self-ballooning: the guest sizes its own balloon from its own memory need, Committed_AS, and
// gives the rest to Xen (where tmem absorbs it). Two drivers:
//  - kernel: drivers/xen/xen-selfballoon.c (Linux 3.1+, the seed's in-kernel patch went
//    there): every 5 s, goal = Committed_AS + totalreserve_pages + reserved_mb; the target
//    moves from the current size by (cur - goal) / 8 down or (goal - cur) / 1 up; never below
//    a floor: totalreserve + min_usable_mb, or, when that is 0, a piecewise linear function
//    of the useful memory U = max_pfn - totalreserve (U < 16 MiB: no ballooning; < 64 MiB:
//    16 + (U - 16) / 2; < 512 MiB: 40 + (U - 40) / 8; else 99 + (U - 99) / 32, plus the
//    reserve).
//  - xenballoond: the 2010 user-space daemon (Xen's tools/xenballoon/xenballoond): every 1 s,
//    goal = Committed_AS, down-hysteresis 10, up 1, floor the balloon driver's
//    minimum_target() (136 MiB for a 384 MiB guest).
// Frontswap self-shrinking (kernel driver, on by default as drivers/xen/tmem.c's
// `selfshrinking`): each run first looks at frontswap's pages; when they have not grown for
// frontswap_inertia (3) runs in a row, it pulls 1/frontswap_hysteresis (20) of them back into
// the guest (all when at most 20 are left) by a partial swapoff (frontswap_shrink), and the
// goal makes room for them (goal += frontswap pages).
// max_pfn is the memory the domain booted with. The balloon driver then moves the domain
// towards the target (XenHost).
#pragma once

#include <optional>

#include "reclaim/mechanism.hpp"
#include "reclaim/per_vm.hpp"

namespace memvirt {

class TmemFrontends;

enum class SelfBalloonDriver : std::uint8_t { kKernel, kXenballoond };
inline constexpr std::array<Spelling<SelfBalloonDriver>, 2> kSelfBalloonDriverSpellings{
    {{SelfBalloonDriver::kKernel, "kernel"}, {SelfBalloonDriver::kXenballoond, "xenballoond"}}};

struct SelfBalloonConfig {
  SelfBalloonDriver driver = SelfBalloonDriver::kKernel;
  Duration interval = Duration::seconds(5);
  std::uint32_t down_hysteresis = 8;
  std::uint32_t up_hysteresis = 1;
  Bytes reserved{0};                        // selfballoon_reserved_mb
  Bytes min_usable{0};                      // selfballoon_min_usable_mb; 0: the piecewise floor
  bool selfshrinking = true;                // tmem.selfshrinking (kernel driver only)
  std::uint32_t frontswap_hysteresis = 20;  // frontswap_hysteresis
  std::uint32_t frontswap_inertia = 3;      // frontswap_inertia
};

struct SelfBalloonStats {
  Counter steps;                   // worker runs that set a target
  Counter floored_steps;           // steps the floor raised
  Counter frontswap_shrinks;       // frontswap_shrink() calls
  Counter frontswap_pages_unused;  // pages they brought back into the guest
  void visit(StatsVisitor& v) const;
};

class SelfBalloon final : public Mechanism {
 public:
  using Config = SelfBalloonConfig;
  explicit SelfBalloon(SelfBalloonConfig cfg);
  ~SelfBalloon() override;
  static SelfBalloonConfig config_from(Params& p);

  [[nodiscard]] std::string name() const override { return "selfballoon"; }
  void start(const MechanismEnv& env) override;
  void attach(const VmHandle& vm) override;
  void detach(VmId vm) override;
  void visit_stats(StatsVisitor& v) const override;

  // frontswap_selfshrink(): the pages frontswap should shrink to, given `cur` pages now and
  // the guest's shrink state (updated); nullopt when it waits (grown, or inertia).
  struct ShrinkState {
    std::uint64_t last_pages = 0;
    std::uint32_t inertia_counter = 0;
  };
  [[nodiscard]] std::optional<std::uint64_t> selfshrink_target(std::uint64_t cur,
                                                               ShrinkState& st) const;
  // One worker run's target (pages) for a guest of `cur` pages, wanting `committed` pages,
  // with `totalreserve` pages reserved and `max_pfn` pages of boot memory: the formulas above.
  [[nodiscard]] std::uint64_t target_pages(std::uint64_t cur, std::uint64_t committed,
                                           std::uint64_t totalreserve, std::uint64_t max_pfn,
                                           bool* floored = nullptr) const;
  [[nodiscard]] const SelfBalloonStats& stats() const { return stats_; }

 private:
  struct Guest;
  void step(VmId vm);

  SelfBalloonConfig cfg_;
  MechanismEnv env_;
  TmemFrontends* frontswap_ = nullptr;  // the tmem front ends, when the guests have them
  PerVm<Guest> guests_;
  SelfBalloonStats stats_;
};

// calculate_totalreserve_pages(): per zone, its high watermark plus its largest lowmem
// reserve, at most its pages.
std::uint64_t totalreserve_pages(const GuestKernel& k);

}  // namespace memvirt
