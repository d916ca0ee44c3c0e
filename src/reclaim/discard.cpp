#include "reclaim/discard.hpp"

#include "reclaim/mechanism.hpp"

namespace memvirt {

void VirtioHost::start(const MechanismEnv& env) {
  host_ = env.host;
  costs_ = env.costs;
  account_ = &env.accounts->get("qemu_discard", 0);
}

void VirtioHost::attach() {
  account_->add_threads(1);
}

RequestCost VirtioHost::request(const VmHandle& vm, std::span<const GuestBlock> blocks,
                                DiscardMode mode, CpuTime guest_work) {
  RequestCost c = notify(vm, guest_work);
  CpuTime discards{};
  for (const GuestBlock& b : blocks) {
    const std::uint32_t pages = b.pages();
    for (std::uint32_t i = 0; i < pages; ++i) {
      const Gfn g{b.gfn.value() + i};
      if (mode == DiscardMode::kDontNeed) {
        host_->discard(vm.id, g);
      } else {
        host_->lazy_free(vm.id, g);
      }
    }
    // A single page costs a whole call; a large range costs a per-page share of one.
    discards += pages == 1 ? costs_->cost(Op::kMadviseDontneedSingle)
                           : costs_->cost(Op::kMadviseDontneedBatched) * pages;
  }
  account_->charge(discards);
  c.host += discards;
  return c;
}

RequestCost VirtioHost::notify(const VmHandle& vm, CpuTime guest_work) {
  const RequestCost c{guest_work + costs_->cost(Op::kVirtqueueRequest),
                      costs_->cost(Op::kVirtqueueRequest)};
  vm.vcpu->charge(c.guest);
  account_->charge(c.host);
  return c;
}

void put_back_isolated(GuestKernel& kernel, std::span<const GuestBlock> blocks,
                       const std::function<void(const GuestBlock&)>& after_each) {
  for (const GuestBlock& b : blocks) {
    kernel.zone_of(b.gfn).putback_isolated(b.gfn, b.order);
    if (after_each) after_each(b);
  }
}

}  // namespace memvirt
