#include "reclaim/ppr.hpp"

#include <bit>

namespace memvirt {

struct Ppr::VmState final : PageHooks {
  VmState(Ppr& owner, const VmHandle& handle)
      : ppr(owner), vm(handle), marks((handle.kernel->total_pages() + 63) / 64) {}

  void set(Gfn gfn, PageOrder order, bool mark) {
    const std::uint32_t n = order.pages();
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t g = gfn.value() + i;
      const std::uint64_t bit = 1ULL << (g & 63);
      if (mark) {
        marks[g >> 6] |= bit;
      } else {
        marks[g >> 6] &= ~bit;
      }
    }
    // The hooks work per page, without interrupts or locks: one atomic bit update each.
    vm.vcpu->charge(ppr.env_.costs->cost(Op::kAtomicBitUpdate) * n);
    (mark ? ppr.stats_.pages_marked : ppr.stats_.pages_unmarked).add(n);
  }
  void on_free(Gfn gfn, PageOrder order) override { set(gfn, order, true); }
  void on_alloc(Gfn gfn, PageOrder order) override { set(gfn, order, false); }

  Ppr& ppr;
  VmHandle vm;
  std::vector<std::uint64_t> marks;
};

Ppr::Ppr(PprConfig cfg) : cfg_(cfg) {}
Ppr::~Ppr() = default;

PprConfig Ppr::config_from(Params& p) {
  PprConfig c;
  c.reclaim_period = p.duration("reclaim_period", c.reclaim_period,
                                "time between recycling passes (seed 000: 10 s; 5 s in its table)");
  if (c.reclaim_period.ns() <= 0) p.fail("reclaim_period", "must be positive");
  c.work_threads = static_cast<unsigned>(
      p.integer("work_threads", 0,
                "threads that recycle pages (shared with PageONE); 0: the daemon", 0, 1024));
  return c;
}

void Ppr::start(const MechanismEnv& env) {
  env_ = env;
  daemon_account_ = &env.accounts->get("ppr_pageone_daemon", 1);
  worker_account_ = cfg_.work_threads > 0 ? &env.accounts->get("pageone_workers", cfg_.work_threads)
                                          : daemon_account_;
  daemon_ = std::make_unique<PeriodicDaemon>(*env.queue, EventQueue::kDaemon, [this](TimePoint) {
    recycle_pass();
    return cfg_.reclaim_period;
  });
  daemon_->start(cfg_.reclaim_period);
}

void Ppr::attach(const VmHandle& vm) {
  vms_.add(std::make_unique<VmState>(*this, vm));
}

void Ppr::detach(VmId vm) {
  vms_.remove(vm);
}

bool Ppr::known_free(VmId vm, Gfn gfn) const {
  const VmState* s = vms_.find(vm);
  return s != nullptr && (s->marks[gfn.value() >> 6] >> (gfn.value() & 63) & 1) != 0;
}

void Ppr::recycle_pass() {
  stats_.passes.add();
  const CpuTime scan = env_.costs->cost(Op::kBitmapScanWord);
  const CpuTime recycle = env_.costs->cost(Op::kMadviseDontneedSingle);
  HostMemory& host = *env_.host;
  for (auto& s : vms_) {
    daemon_account_->charge(scan * s->marks.size());
    stats_.words_scanned.add(s->marks.size());
    std::uint64_t recycled = 0;
    for (std::size_t w = 0; w < s->marks.size(); ++w) {
      std::uint64_t word = s->marks[w];
      if (word == 0) continue;
      // Unmap, then test-and-clear: the marks still set belong to pages still free.
      s->marks[w] = 0;
      while (word != 0) {
        const Gfn g{
            static_cast<std::uint32_t>(w * 64 + static_cast<unsigned>(std::countr_zero(word)))};
        word &= word - 1;
        const PageState st = host.state(s->vm.id, g);
        if (st == PageState::kPrivate || st == PageState::kShared) {
          host.map_zero(s->vm.id, g);
          ++recycled;
        }
      }
    }
    worker_account_->charge(recycle * recycled);
    stats_.pages_recycled.add(recycled);
  }
}

void Ppr::visit_columns(StatsVisitor& v) const {
  v.counter("pages_recycled", stats_.pages_recycled);
}

void Ppr::visit_stats(StatsVisitor& v) const {
  v.counter("pages_marked", stats_.pages_marked);
  v.counter("pages_unmarked", stats_.pages_unmarked);
  v.counter("pages_recycled", stats_.pages_recycled);
  v.counter("passes", stats_.passes);
  v.counter("bitmap_words_scanned", stats_.words_scanned);
}

}  // namespace memvirt
