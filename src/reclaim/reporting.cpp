#include "reclaim/reporting.hpp"

#include <algorithm>

namespace memvirt {

struct FreePageReporting::Device final : PageHooks {
  Device(FreePageReporting& o, const VmHandle& h) : owner(o), vm(h) {}
  // page_reporting_notify_free(): called at the end of __free_one_page.
  void on_buddy_free(Zone& /*zone*/, Gfn /*gfn*/, PageOrder order) override {
    if (order.value() >= owner.cfg_.order) owner.request(*this);
  }

  FreePageReporting& owner;
  VmHandle vm;
  ReportingState state = ReportingState::kIdle;
  std::vector<GuestBlock> sgl;  // isolated blocks awaiting the report
};

FreePageReporting::FreePageReporting(ReportingConfig cfg) : cfg_(cfg) {}
FreePageReporting::~FreePageReporting() = default;

ReportingConfig FreePageReporting::config_from(Params& p) {
  ReportingConfig c;
  c.order = static_cast<unsigned>(p.integer(
      "order", c.order, "page_reporting_order: smallest block reported (default pageblock_order 9)",
      0, kMaxOrder - 1));
  c.delay = p.duration("delay", c.delay, "PAGE_REPORTING_DELAY: from a request to the work");
  if (c.delay.ns() <= 0) p.fail("delay", "must be positive");
  c.capacity = static_cast<unsigned>(
      p.integer("capacity", c.capacity, "PAGE_REPORTING_CAPACITY: blocks per report", 1, 4096));
  c.discard = p.option("discard", DiscardMode::kDontNeed, kDiscardModeSpellings,
                       "host discard: dontneed (QEMU) or free (the MADV_FREE RFC)");
  return c;
}

void FreePageReporting::start(const MechanismEnv& env) {
  env_ = env;
  qemu_.start(env);
}

void FreePageReporting::attach(const VmHandle& vm) {
  Device& d = devices_.add(std::make_unique<Device>(*this, vm));
  qemu_.attach();
  // page_reporting_register() begins with a request: the initial flush of every zone.
  request(d);
}

void FreePageReporting::detach(VmId vm) {
  devices_.remove(vm);
}

ReportingState FreePageReporting::state(VmId vm) const {
  const Device* d = devices_.find(vm);
  return d != nullptr ? d->state : ReportingState::kIdle;
}

void FreePageReporting::request(Device& d) {
  // __page_reporting_request(): only a request from IDLE schedules the work; a request
  // during a pass makes the pass schedule another.
  if (d.state == ReportingState::kRequested) return;
  const ReportingState old = d.state;
  d.state = ReportingState::kRequested;
  if (old != ReportingState::kIdle) return;
  stats_.requests.add();
  const VmId id = d.vm.id;
  env_.queue->after(cfg_.delay, EventQueue::kGuest, [this, id](TimePoint) { process(id); });
}

void FreePageReporting::process(VmId vm) {
  Device* d = devices_.find(vm);
  if (d == nullptr) return;  // the VM is gone
  stats_.passes.add();
  d->state = ReportingState::kActive;
  for (auto& zone : d->vm.kernel->zones()) process_zone(*d, *zone);
  // Still ACTIVE: nobody asked for more, go idle. REQUESTED: a free or a spent budget
  // asked for another pass.
  if (d->state == ReportingState::kRequested) {
    env_.queue->after(cfg_.delay, EventQueue::kGuest, [this, vm](TimePoint) { process(vm); });
  } else {
    d->state = ReportingState::kIdle;
  }
}

void FreePageReporting::process_zone(Device& d, Zone& zone) {
  // Enough free memory to guarantee progress with a full scatterlist isolated.
  const std::uint64_t watermark =
      zone.watermarks().low + (static_cast<std::uint64_t>(cfg_.capacity) << cfg_.order);
  if (!zone.watermark_ok(0, watermark, 0)) {
    stats_.zones_skipped.add();
    return;
  }
  for (unsigned order = cfg_.order; order < kMaxOrder; ++order) cycle(d, zone, order);
  if (!d.sgl.empty()) report_and_drain(d);  // the leftover before going idle
}

void FreePageReporting::cycle(Device& d, Zone& zone, unsigned order) {
  const PageList& list = zone.free_list(order);
  if (list.empty()) return;
  const PageListPool& lists = zone.lists();
  const CostProfile& costs = *env_.costs;
  // Over a sixteenth of the list per pass, plus one call for blocks left from the list
  // before; "all pages on an idle system in about 30 seconds".
  std::int64_t budget = (list.count + cfg_.capacity * 16 - 1) / (cfg_.capacity * 16);
  std::uint32_t walked = 0;
  std::uint32_t node = list.head;
  Gfn stop_at = Zone::kNoPage;  // the block to rotate to the head when leaving early
  while (node != 0) {
    const std::uint32_t next = lists.next(node);
    const Gfn block = lists.gfn(node);
    ++walked;
    if (d.vm.kernel->memmap()[block].reported()) {
      node = next;
      continue;
    }
    if (budget < 0) {
      d.state = ReportingState::kRequested;
      stats_.budget_exhausted.add();
      stop_at = block;
      break;
    }
    if (d.sgl.size() < cfg_.capacity) {
      if (!zone.isolate(block)) {
        stats_.isolate_failures.add();
        stop_at = block;
        break;
      }
      d.sgl.push_back({block, order});
      node = next;
      continue;
    }
    // The scatterlist is full: resume later from this block, which becomes the head.
    if (list.head != node) zone.rotate_free_list_to(block);
    report_and_drain(d);
    --budget;
    node = list.head;
  }
  if (stop_at != Zone::kNoPage && list.count > 0 && lists.gfn(list.head) != stop_at) {
    zone.rotate_free_list_to(stop_at);
  }
  stats_.blocks_walked.add(walked);
  d.vm.vcpu->charge(costs.cost(Op::kStructPageVisit) * walked);
}

void FreePageReporting::report_and_drain(Device& d) {
  stats_.report_calls.add();
  // The guest adds the list to the reporting queue, kicks the host and waits for the ack.
  qemu_.request(d.vm, d.sgl, cfg_.discard,
                env_.costs->cost(Op::kStructPageVisit) * (2 * d.sgl.size()));
  for (const GuestBlock& b : d.sgl) {
    stats_.blocks_reported.add();
    stats_.pages_reported.add(b.pages());
  }
  // page_reporting_drain(): back to the buddy lists; a block that merged on the way back is
  // a new, larger, unreported block.
  MemMap& map = d.vm.kernel->memmap();
  put_back_isolated(*d.vm.kernel, d.sgl, [&](const GuestBlock& b) {
    const PageMeta m = map[b.gfn];
    if (m.state() == GuestPageState::kBuddy && m.order().value() == b.order) {
      map.mut(b.gfn).set_reported(true);
      stats_.pages_flagged.add(b.pages());
    }
  });
  d.sgl.clear();
}

void FreePageReporting::visit_columns(StatsVisitor& v) const {
  v.counter("pages_reported", stats_.pages_reported);
}

void FreePageReporting::visit_stats(StatsVisitor& v) const {
  v.counter("requests", stats_.requests);
  v.counter("passes", stats_.passes);
  v.counter("report_calls", stats_.report_calls);
  v.counter("blocks_reported", stats_.blocks_reported);
  v.counter("pages_reported", stats_.pages_reported);
  v.counter("pages_flagged_reported", stats_.pages_flagged);
  v.counter("budget_exhausted", stats_.budget_exhausted);
  v.counter("isolate_failures", stats_.isolate_failures);
  v.counter("zones_skipped", stats_.zones_skipped);
  v.counter("blocks_walked", stats_.blocks_walked);
}

}  // namespace memvirt
