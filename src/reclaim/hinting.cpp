#include "reclaim/hinting.hpp"

#include <algorithm>

namespace memvirt {

namespace {

using Entry = GuestBlock;

// get_buddy_page(): the free block head that contains `page`, if the page is free.
std::optional<Gfn> containing_free_block(const MemMap& map, Gfn page, std::uint64_t& visits) {
  for (unsigned order = 0; order < kMaxOrder; ++order) {
    const Gfn head{page.value() & ~((1U << order) - 1)};
    ++visits;
    const PageMeta m = map[head];
    if (m.state() == GuestPageState::kBuddy && m.order().value() >= order) return head;
  }
  return std::nullopt;
}

}  // namespace

struct FreePageHinting::Vm final : PageHooks {
  Vm(FreePageHinting& o, const VmHandle& h) : owner(o), vm(h) {}

  // guest_free_page(), from arch_free_page().
  void on_free(Gfn gfn, PageOrder order) override {
    if (array.size() == owner.cfg_.entries) {
      owner.stats_.frees_missed.add();
      return;
    }
    owner.stats_.frees_recorded.add();
    array.push_back({gfn, order.value()});
    if (array.size() == owner.cfg_.entries) {
      // Per-CPU pages are not PageBuddy: drain them so the rescan finds them free.
      for (auto& z : vm.kernel->zones()) z->drain_pcp();
      scan_array();
    }
  }

  // scan_array() and pack_array().
  void scan_array() {
    owner.stats_.scans.add();
    const MemMap& map = vm.kernel->memmap();
    std::uint64_t visits = 0;
    std::uint64_t compares = 0;
    std::vector<bool> keep(array.size(), true);
    for (std::size_t i = 0; i < array.size(); ++i) {
      const PageMeta m = map[array[i].gfn];
      ++visits;
      if (m.state() == GuestPageState::kBuddy) continue;
      const std::optional<Gfn> head = containing_free_block(map, array[i].gfn, visits);
      if (!head) continue;  // allocated again: kept, the thread will skip it
      // if_exist(): a linear search of the whole array.
      compares += array.size();
      const bool recorded =
          std::any_of(array.begin(), array.end(), [&](const Entry& e) { return e.gfn == *head; });
      if (recorded) {
        keep[i] = false;
        owner.stats_.entries_dropped.add();
      } else {
        array[i] = {*head, map[*head].order().value()};
      }
    }
    std::vector<Entry> packed;
    packed.reserve(owner.cfg_.entries);
    for (std::size_t i = 0; i < array.size(); ++i) {
      if (keep[i]) packed.push_back(array[i]);
    }
    array = std::move(packed);
    const CostProfile& costs = *owner.env_.costs;
    vm.vcpu->charge(costs.cost(Op::kStructPageVisit) * visits +
                    costs.cost(Op::kBitmapScanWord) * compares);
    if (array.size() == owner.cfg_.entries) hinting_thread();
  }

  // hinting_fn(): isolate, report, give back.
  void hinting_thread() {
    owner.stats_.thread_runs.add();
    GuestKernel& k = *vm.kernel;
    const MemMap& map = k.memmap();
    const CostProfile& costs = *owner.env_.costs;
    std::uint64_t visits = 0;
    std::vector<Entry> isolated;
    for (const Entry& e : array) {
      const std::uint32_t end = e.gfn.value() + (1U << e.order);
      std::uint32_t pfn = e.gfn.value();
      while (pfn < end && isolated.size() < owner.cfg_.entries) {
        const std::optional<Gfn> head = containing_free_block(map, Gfn{pfn}, visits);
        if (!head) {
          ++pfn;  // in use (page_ref_count) or on a per-CPU list
          continue;
        }
        const unsigned order = map[*head].order().value();
        if (k.zone_of(*head).isolate(*head)) {
          isolated.push_back({*head, order});
          owner.stats_.blocks_isolated.add();
        } else {
          owner.stats_.isolate_failures.add();
        }
        pfn = head->value() + (1U << order);
      }
    }
    array.clear();
    const CpuTime walk = costs.cost(Op::kStructPageVisit) * visits;
    if (isolated.empty()) {
      vm.vcpu->charge(walk);
      return;
    }
    // hyperlist_ready(): one request carries the list; the host discards each range.
    owner.qemu_.request(vm, isolated, DiscardMode::kDontNeed, walk);
    for (const Entry& e : isolated) owner.stats_.pages_hinted.add(e.pages());
    // Back to the buddy lists directly (free_one_page), not through arch_free_page.
    put_back_isolated(k, isolated);
  }

  FreePageHinting& owner;
  VmHandle vm;
  std::vector<Entry> array;  // kvm_pt of vCPU 0
};

FreePageHinting::FreePageHinting(HintingConfig cfg) : cfg_(cfg) {}
FreePageHinting::~FreePageHinting() = default;

HintingConfig FreePageHinting::config_from(Params& p) {
  HintingConfig c;
  c.entries = static_cast<unsigned>(p.integer(
      "entries", c.entries, "MAX_FGPT_ENTRIES: per-CPU array of freed blocks", 1, 1 << 20));
  return c;
}

void FreePageHinting::start(const MechanismEnv& env) {
  env_ = env;
  qemu_.start(env);
}

void FreePageHinting::attach(const VmHandle& vm) {
  vms_.add(std::make_unique<Vm>(*this, vm));
  qemu_.attach();
}

void FreePageHinting::detach(VmId vm) {
  vms_.remove(vm);
}

std::size_t FreePageHinting::recorded(VmId vm) const {
  const Vm* s = vms_.find(vm);
  return s != nullptr ? s->array.size() : 0;
}

void FreePageHinting::visit_columns(StatsVisitor& v) const {
  v.counter("pages_hinted", stats_.pages_hinted);
}

void FreePageHinting::visit_stats(StatsVisitor& v) const {
  v.counter("frees_recorded", stats_.frees_recorded);
  v.counter("frees_missed", stats_.frees_missed);
  v.counter("scans", stats_.scans);
  v.counter("entries_dropped", stats_.entries_dropped);
  v.counter("thread_runs", stats_.thread_runs);
  v.counter("blocks_isolated", stats_.blocks_isolated);
  v.counter("isolate_failures", stats_.isolate_failures);
  v.counter("pages_hinted", stats_.pages_hinted);
}

}  // namespace memvirt
