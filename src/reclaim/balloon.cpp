#include "reclaim/balloon.hpp"

#include <algorithm>

namespace memvirt {

struct Balloon::Device final : PageHooks {
  Device(Balloon& o, const VmHandle& h) : owner(o), vm(h) {}
  // virtio_balloon_oom_notify(): give pages back rather than let a process die.
  std::uint64_t on_oom() override {
    if (!owner.cfg_.deflate_on_oom || pages.empty()) return 0;
    owner.stats_.oom_deflations.add();
    const std::uint64_t before = pages.size();
    owner.leak(*this, kOomPages);
    return before - pages.size();
  }

  Balloon& owner;
  VmHandle vm;
  std::uint64_t target = 0;  // num_pages, set by the host
  std::vector<Gfn> pages;    // the balloon's pages; actual = pages.size()
  bool work_queued = false;
  std::optional<BalloonStatsReport> last_stats;
};

Balloon::Balloon(BalloonConfig cfg) : cfg_(std::move(cfg)) {}
Balloon::~Balloon() = default;

BalloonConfig Balloon::config_from(Params& p) {
  BalloonConfig c;
  c.deflate_on_oom = p.boolean("deflate_on_oom", c.deflate_on_oom,
                               "VIRTIO_BALLOON_F_DEFLATE_ON_OOM: give 256 pages back on guest OOM");
  c.stats_interval = p.duration("stats_interval", c.stats_interval,
                                "host polling interval of the stats queue (0: off)");
  if (c.stats_interval.ns() < 0) p.fail("stats_interval", "must not be negative");
  Duration last{-1};
  for (Params t : p.sequence("targets")) {
    BalloonTarget target;
    target.at = t.duration("at", Duration{}, "when the host sets the size, from the VM's launch");
    target.size = t.required_bytes("size", "balloon size: memory taken from the guest");
    if (target.at.ns() < 0) t.fail("at", "must not be negative");
    if (target.at <= last) t.fail("at", "targets must be in increasing time order");
    last = target.at;
    c.targets.push_back(target);
  }
  return c;
}

void Balloon::start(const MechanismEnv& env) {
  env_ = env;
  qemu_.start(env);
}

void Balloon::attach(const VmHandle& vm) {
  devices_.add(std::make_unique<Device>(*this, vm));
  qemu_.attach();
  const VmId id = vm.id;
  for (const BalloonTarget& t : cfg_.targets) {
    env_.queue->after(t.at, EventQueue::kHost,
                      [this, id, pages = t.size.pages()](TimePoint) { set_target(id, pages); });
  }
  if (cfg_.stats_interval.ns() > 0) {
    env_.queue->after(cfg_.stats_interval, EventQueue::kHost,
                      [this, id](TimePoint) { poll_stats(id); });
  }
}

void Balloon::detach(VmId vm) {
  devices_.remove(vm);
}

void Balloon::set_target(VmId vm, std::uint64_t pages) {
  Device* d = devices_.find(vm);
  if (d == nullptr) return;
  // The driver never takes more than the guest has.
  d->target = std::min<std::uint64_t>(pages, d->vm.kernel->total_pages());
  kick(*d);  // virtballoon_changed(): queue the work
}

std::uint64_t Balloon::target_pages(VmId vm) const {
  const Device* d = devices_.find(vm);
  return d != nullptr ? d->target : 0;
}

std::uint64_t Balloon::actual_pages(VmId vm) const {
  const Device* d = devices_.find(vm);
  return d != nullptr ? d->pages.size() : 0;
}

const BalloonStatsReport* Balloon::last_stats(VmId vm) const {
  const Device* d = devices_.find(vm);
  return d != nullptr && d->last_stats ? &*d->last_stats : nullptr;
}

void Balloon::kick(Device& d) {
  if (d.work_queued) return;
  d.work_queued = true;
  const VmId id = d.vm.id;
  env_.queue->after(Duration{}, EventQueue::kGuest,
                    [this, id](TimePoint) { update_balloon_size(id); });
}

void Balloon::update_balloon_size(VmId vm) {
  Device* d = devices_.find(vm);
  if (d == nullptr) return;
  d->work_queued = false;
  const auto actual = static_cast<std::int64_t>(d->pages.size());
  const std::int64_t diff = static_cast<std::int64_t>(d->target) - actual;
  if (diff == 0) return;
  Duration took{};
  if (diff > 0) {
    const std::uint64_t before = d->pages.size();
    took = fill(*d, static_cast<std::uint64_t>(diff));
    if (d->pages.size() == before) took = took + kRetryDelay;  // "Out of puff!": msleep(200)
  } else {
    took = leak(*d, static_cast<std::uint64_t>(-diff));
  }
  // The work requeues itself until actual reaches the target.
  d->work_queued = true;
  env_.queue->after(took, EventQueue::kGuest, [this, vm](TimePoint) { update_balloon_size(vm); });
}

Duration Balloon::fill(Device& d, std::uint64_t pages) {
  const CostProfile& costs = *env_.costs;
  const std::uint64_t n = std::min<std::uint64_t>(pages, kArrayPfnsMax);
  std::vector<GuestBlock> got;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::optional<Gfn> g = d.vm.kernel->try_alloc_pages(0, 0);
    if (!g) {
      stats_.alloc_failures.add();
      break;
    }
    got.push_back({*g, 0});
  }
  const CpuTime visits = costs.cost(Op::kStructPageVisit) * n;
  if (got.empty()) {
    d.vm.vcpu->charge(visits);
    return visits.duration();
  }
  // tell_host(): the array goes to the inflate queue; QEMU discards page by page.
  const RequestCost c = qemu_.request(d.vm, got, DiscardMode::kDontNeed, visits);
  for (const GuestBlock& b : got) d.pages.push_back(b.gfn);
  stats_.inflate_requests.add();
  stats_.pages_inflated.add(got.size());
  return c.round_trip();
}

Duration Balloon::leak(Device& d, std::uint64_t pages) {
  const CostProfile& costs = *env_.costs;
  const std::uint64_t n = std::min<std::uint64_t>({pages, kArrayPfnsMax, d.pages.size()});
  if (n == 0) return Duration{};
  // The deflate queue tells the host first; the pages then return to the guest's allocator.
  const RequestCost c = qemu_.notify(d.vm, costs.cost(Op::kStructPageVisit) * n);
  for (std::uint64_t i = 0; i < n; ++i) {
    const Gfn g = d.pages.back();
    d.pages.pop_back();
    d.vm.kernel->free_pages(0, g, 0);
  }
  stats_.deflate_requests.add();
  stats_.pages_deflated.add(n);
  return c.round_trip();
}

void Balloon::poll_stats(VmId vm) {
  Device* d = devices_.find(vm);
  if (d == nullptr) return;
  // stats_request() -> update_balloon_stats(): what the guest's counters say now.
  const GuestKernel& k = *d->vm.kernel;
  BalloonStatsReport r;
  r.at = env_.queue->now();
  const auto set = [&](BalloonStatTag t, std::uint64_t v) {
    r.value[static_cast<unsigned>(t)] = v;
  };
  const Meminfo m = k.meminfo();
  const GuestStats& gs = k.stats();
  // The vm_events the driver reads: PSWPIN and PSWPOUT (sent as bytes, pages_to_bytes),
  // PGMAJFAULT and PGFAULT (counts).
  set(BalloonStatTag::kSwapIn, gs.pswpin.value() * kPageSize);
  set(BalloonStatTag::kSwapOut, gs.pswpout.value() * kPageSize);
  set(BalloonStatTag::kMajorFaults, gs.major_faults.value());
  set(BalloonStatTag::kMinorFaults, gs.anon_faults.value() + gs.minor_faults.value());
  set(BalloonStatTag::kMemFree, m.free * kPageSize);
  // si_meminfo()'s totalram: without deflate-on-oom, fill_balloon() takes each page out of
  // the managed count (adjust_managed_page_count); with it, MemTotal keeps them.
  const std::uint64_t total = cfg_.deflate_on_oom ? m.total : m.total - d->pages.size();
  set(BalloonStatTag::kMemTotal, total * kPageSize);
  set(BalloonStatTag::kAvailable, m.available * kPageSize);
  // global_node_page_state(NR_FILE_PAGES): the page cache, the swap cache included.
  set(BalloonStatTag::kCaches, (m.cached + m.swap_cached) * kPageSize);
  d->last_stats = r;
  stats_.stats_requests.add();
  qemu_.notify(d->vm, CpuTime{});
  env_.queue->after(cfg_.stats_interval, EventQueue::kHost,
                    [this, vm](TimePoint) { poll_stats(vm); });
}

void Balloon::visit_columns(StatsVisitor& v) const {
  std::uint64_t actual = 0;
  for (const auto& d : devices_) actual += d->pages.size();
  v.value("balloon_pages", static_cast<double>(actual));
}

void Balloon::visit_stats(StatsVisitor& v) const {
  v.counter("inflate_requests", stats_.inflate_requests);
  v.counter("deflate_requests", stats_.deflate_requests);
  v.counter("pages_inflated", stats_.pages_inflated);
  v.counter("pages_deflated", stats_.pages_deflated);
  v.counter("oom_deflations", stats_.oom_deflations);
  v.counter("alloc_failures", stats_.alloc_failures);
  v.counter("stats_requests", stats_.stats_requests);
  std::uint64_t actual = 0;
  for (const auto& d : devices_) actual += d->pages.size();
  v.value("balloon_pages", static_cast<double>(actual));
}

}  // namespace memvirt
