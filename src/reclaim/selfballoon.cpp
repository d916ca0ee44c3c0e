#include "reclaim/selfballoon.hpp"

#include <algorithm>
#include <stdexcept>

#include "guest/zone.hpp"
#include "reclaim/tmem_frontends.hpp"
#include "reclaim/xen.hpp"

namespace memvirt {

namespace {
constexpr std::uint64_t mib_pages(std::uint64_t mib) {
  return mib << (20 - kPageShift);
}

// drivers/xen/balloon.c (2.6.18 to 2.6.32 PV kernels), minimum_target(): a piecewise linear
// function of max_pfn.
std::uint64_t minimum_target(std::uint64_t max_pfn, std::uint64_t current) {
  std::uint64_t min_pages = 0;
  if (max_pfn < mib_pages(128)) {
    min_pages = mib_pages(8) + (max_pfn >> 1);
  } else if (max_pfn < mib_pages(512)) {
    min_pages = mib_pages(40) + (max_pfn >> 2);
  } else if (max_pfn < mib_pages(2048)) {
    min_pages = mib_pages(104) + (max_pfn >> 3);
  } else {
    min_pages = mib_pages(296) + (max_pfn >> 5);
  }
  return std::min(min_pages, current);
}
}  // namespace

struct SelfBalloon::Guest final : PageHooks {
  explicit Guest(const VmHandle& h) : vm(h) {}
  VmHandle vm;
  ShrinkState shrink;
};

void SelfBalloonStats::visit(StatsVisitor& v) const {
  v.counter("steps", steps);
  v.counter("floored_steps", floored_steps);
  v.counter("frontswap_shrinks", frontswap_shrinks);
  v.counter("frontswap_pages_unused", frontswap_pages_unused);
}

std::uint64_t totalreserve_pages(const GuestKernel& k) {
  std::uint64_t total = 0;
  for (const auto& z : k.zones()) {
    std::uint64_t most = 0;
    for (unsigned j = 0; j < k.zones().size(); ++j) most = std::max(most, z->lowmem_reserve(j));
    total += std::min<std::uint64_t>(most + z->watermarks().high, z->managed_pages());
  }
  return total;
}

SelfBalloon::SelfBalloon(SelfBalloonConfig cfg) : cfg_(cfg) {}
SelfBalloon::~SelfBalloon() = default;

SelfBalloonConfig SelfBalloon::config_from(Params& p) {
  SelfBalloonConfig c;
  c.driver = p.option("driver", c.driver, kSelfBalloonDriverSpellings,
                      "kernel: xen-selfballoon.c (Linux 3.1+); xenballoond: the 2010 daemon");
  const bool kernel = c.driver == SelfBalloonDriver::kKernel;
  c.interval = p.duration("interval", Duration::seconds(kernel ? 5 : 1),
                          "time between worker runs (selfballoon_interval; xenballoond: 1 s)");
  if (c.interval.ns() <= 0) p.fail("interval", "must be positive");
  c.down_hysteresis = static_cast<std::uint32_t>(
      p.integer("down_hysteresis", kernel ? 8 : 10,
                "a shrink moves 1/N of the way to the goal (kernel: 8, xenballoond: 10)", 1, 1000));
  c.up_hysteresis = static_cast<std::uint32_t>(
      p.integer("up_hysteresis", 1, "a growth moves 1/N of the way to the goal", 1, 1000));
  if (kernel) {
    c.reserved = p.bytes("reserved", Bytes{0},
                         "selfballoon_reserved_mb: added to the goal (0 until Linux 3.x's "
                         "default of 10 % of RAM)");
    c.min_usable = p.bytes("min_usable", Bytes{0},
                           "selfballoon_min_usable_mb: the floor above the reserve; 0: the "
                           "driver's piecewise linear floor");
    c.selfshrinking = p.boolean("selfshrinking", true,
                                "frontswap self-shrinking (drivers/xen/tmem.c: on by default)");
    c.frontswap_hysteresis = static_cast<std::uint32_t>(p.integer(
        "frontswap_hysteresis", 20,
        "a self-shrink pulls back 1/N of frontswap's pages (frontswap_hysteresis)", 1, 1'000'000));
    c.frontswap_inertia = static_cast<std::uint32_t>(p.integer(
        "frontswap_inertia", 3,
        "runs without frontswap growth before a self-shrink (frontswap_inertia)", 0, 1'000'000));
  } else {
    for (const char* key :
         {"reserved", "min_usable", "selfshrinking", "frontswap_hysteresis", "frontswap_inertia"}) {
      if (p.has(key)) p.fail(key, "only with driver: kernel");
    }
    c.selfshrinking = false;  // xenballoond has no frontswap
  }
  return c;
}

void SelfBalloon::start(const MechanismEnv& env) {
  env_ = env;
  if (env.xen == nullptr) throw std::logic_error("selfballoon drives Xen's balloon: no Xen host");
  for (Mechanism* m : env.peers) {
    if (auto* t = dynamic_cast<TmemFrontends*>(m); t != nullptr && t->frontswap_enabled()) {
      frontswap_ = t;
    }
  }
}

std::optional<std::uint64_t> SelfBalloon::selfshrink_target(std::uint64_t cur,
                                                            ShrinkState& st) const {
  const std::uint64_t last = st.last_pages;
  st.last_pages = cur;
  if (cur == 0 || cur > last) {
    st.inertia_counter = cfg_.frontswap_inertia;
    return std::nullopt;
  }
  if (st.inertia_counter != 0 && --st.inertia_counter != 0) return std::nullopt;
  st.inertia_counter = cfg_.frontswap_inertia;
  if (cur <= cfg_.frontswap_hysteresis) return 0;
  return cur - cur / cfg_.frontswap_hysteresis;
}

void SelfBalloon::attach(const VmHandle& vm) {
  guests_.add(std::make_unique<Guest>(vm));
  env_.queue->after(cfg_.interval, EventQueue::kGuest, [this, id = vm.id](TimePoint) { step(id); });
}

void SelfBalloon::detach(VmId vm) {
  guests_.remove(vm);
}

std::uint64_t SelfBalloon::target_pages(std::uint64_t cur, std::uint64_t committed,
                                        std::uint64_t totalreserve, std::uint64_t max_pfn,
                                        bool* floored) const {
  const bool kernel = cfg_.driver == SelfBalloonDriver::kKernel;
  std::uint64_t goal = committed;
  std::uint64_t floor = 0;
  if (kernel) {
    goal += totalreserve + cfg_.reserved.pages();
    const std::uint64_t useful = max_pfn > totalreserve ? max_pfn - totalreserve : 0;
    if (cfg_.min_usable.pages() != 0) {
      floor = totalreserve + cfg_.min_usable.pages();
    } else if (useful < mib_pages(16)) {
      floor = max_pfn;  // not worth ballooning
    } else if (useful < mib_pages(64)) {
      floor = totalreserve + mib_pages(16) + ((useful - mib_pages(16)) >> 1);
    } else if (useful < mib_pages(512)) {
      floor = totalreserve + mib_pages(40) + ((useful - mib_pages(40)) >> 3);
    } else {
      floor = totalreserve + mib_pages(99) + ((useful - mib_pages(99)) >> 5);
    }
  } else {
    floor = minimum_target(max_pfn, max_pfn);
  }
  std::uint64_t target = cur;
  if (cur > goal) {
    target = cur - (cur - goal) / cfg_.down_hysteresis;
  } else if (cur < goal) {
    target = cur + (goal - cur) / cfg_.up_hysteresis;
  }
  if (floored != nullptr) *floored = target < floor;
  return std::max(target, floor);
}

void SelfBalloon::step(VmId vm) {
  Guest* g = guests_.find(vm);
  if (g == nullptr) return;
  GuestKernel& k = *g->vm.kernel;
  const bool shrinking = cfg_.selfshrinking && frontswap_ != nullptr;
  if (shrinking) {
    const std::uint64_t cur = frontswap_->frontswap_pages(vm);
    if (const std::optional<std::uint64_t> to = selfshrink_target(cur, g->shrink);
        to && *to < cur) {
      stats_.frontswap_shrinks.add();
      stats_.frontswap_pages_unused.add(k.unuse_frontswap(cur - *to));
    }
  }
  // With self-shrinking the goal leaves room for frontswap's pages to come back.
  const std::uint64_t need =
      k.committed_as_pages() + (shrinking ? frontswap_->frontswap_pages(vm) : 0);
  bool floored = false;
  const std::uint64_t target = target_pages(env_.xen->domain_pages(vm), need, totalreserve_pages(k),
                                            env_.xen->boot_pages(vm), &floored);
  env_.xen->set_target(vm, target);
  stats_.steps.add();
  if (floored) stats_.floored_steps.add();
  env_.queue->after(cfg_.interval, EventQueue::kGuest, [this, vm](TimePoint) { step(vm); });
}

void SelfBalloon::visit_stats(StatsVisitor& v) const {
  stats_.visit(v);
}

}  // namespace memvirt
