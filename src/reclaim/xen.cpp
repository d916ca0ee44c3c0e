#include "reclaim/xen.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace memvirt {

struct XenHost::Domain {
  VmHandle vm;
  std::uint64_t max_pages = 0;
  std::uint64_t boot_pages = 0;
  std::uint64_t target = 0;
  std::vector<Gfn> ballooned;  // guest frames with no memory behind them
  bool work_queued = false;
  [[nodiscard]] std::uint64_t pages() const { return vm.kernel->total_pages() - ballooned.size(); }
};

void XenStats::visit(StatsVisitor& v) const {
  v.counter("pages_decreased", pages_decreased);
  v.counter("pages_increased", pages_increased);
  v.counter("increase_shortfalls", increase_shortfalls);
  v.counter("domain_build_failures", domain_build_failures);
}

XenHost::XenHost(EventQueue& queue, HostMemory& host, const CostProfile& costs,
                 std::uint64_t capacity_pages, std::uint64_t dom0_pages)
    : queue_(queue), host_(host), costs_(costs), capacity_(capacity_pages), dom0_(dom0_pages) {
  if (dom0_ > capacity_) throw std::logic_error("xen: dom0 is larger than the host");
}

XenHost::~XenHost() = default;

XenHost::Domain* XenHost::find(VmId vm) {
  for (const auto& d : domains_) {
    if (d->vm.id == vm) return d.get();
  }
  return nullptr;
}

const XenHost::Domain* XenHost::find(VmId vm) const {
  for (const auto& d : domains_) {
    if (d->vm.id == vm) return d.get();
  }
  return nullptr;
}

std::uint64_t XenHost::used_pages() const {
  return dom0_ + domains_pages_ + (tmem_ ? tmem_->pages_used() : 0);
}

std::uint64_t XenHost::free_pages() const {
  const std::uint64_t used = used_pages();
  return used >= capacity_ ? 0 : capacity_ - used;
}

Tmem& XenHost::enable_tmem(TmemConfig cfg, std::unique_ptr<TmemBackend> backend) {
  if (tmem_) throw std::logic_error("xen: tmem is enabled twice");
  tmem_backend_ = std::move(backend);
  tmem_ = std::make_unique<Tmem>(cfg, *tmem_backend_, [this] { return free_pages(); });
  return *tmem_;
}

std::uint64_t XenHost::take_from_heap(std::uint64_t pages) {
  if (tmem_ && free_pages() < pages) tmem_->relinquish(pages);
  return std::min(pages, free_pages());
}

bool XenHost::create_domain(const VmHandle& vm, std::uint64_t pages) {
  const std::uint64_t total = vm.kernel->total_pages();
  pages = std::min(pages, total);
  // xend: freeze tmem, flush it for the shortfall, build the domain, thaw.
  if (tmem_) tmem_->set_frozen(true);
  const bool fits = take_from_heap(pages) == pages;
  if (tmem_) tmem_->set_frozen(false);
  if (!fits) {
    stats_.domain_build_failures.add();
    return false;
  }
  auto d = std::make_unique<Domain>();
  d->vm = vm;
  d->max_pages = total;
  d->boot_pages = pages;
  d->target = pages;
  // The frames above the initial reservation were never populated: the driver's initial
  // balloon holds them. The guest allocates them before anything runs, so they are free.
  for (std::uint64_t i = pages; i < total; ++i) {
    const std::optional<Gfn> g = vm.kernel->try_alloc_pages(0, 0);
    if (!g) throw std::logic_error("xen: a new domain's initial balloon does not fit");
    d->ballooned.push_back(*g);
  }
  domains_pages_ += d->pages();
  if (tmem_)
    tmem_->new_client(vm.id.value(), total, [this, id = vm.id] { return domain_pages(id); });
  domains_.push_back(std::move(d));
  return true;
}

void XenHost::destroy_domain(VmId vm) {
  const auto it = std::find_if(domains_.begin(), domains_.end(),
                               [vm](const auto& d) { return d->vm.id == vm; });
  if (it == domains_.end()) return;
  if (tmem_) tmem_->destroy_client(vm.value());
  domains_pages_ -= (*it)->pages();
  domains_.erase(it);
}

void XenHost::set_target(VmId vm, std::uint64_t pages) {
  Domain* d = find(vm);
  if (d == nullptr) return;
  d->target = std::min(pages, d->max_pages);
  kick(*d);
}

std::uint64_t XenHost::target(VmId vm) const {
  const Domain* d = find(vm);
  return d != nullptr ? d->target : 0;
}

std::uint64_t XenHost::domain_pages(VmId vm) const {
  const Domain* d = find(vm);
  return d != nullptr ? d->pages() : 0;
}

std::uint64_t XenHost::max_pages(VmId vm) const {
  const Domain* d = find(vm);
  return d != nullptr ? d->max_pages : 0;
}

std::uint64_t XenHost::boot_pages(VmId vm) const {
  const Domain* d = find(vm);
  return d != nullptr ? d->boot_pages : 0;
}

void XenHost::kick(Domain& d) {
  if (d.work_queued) return;
  d.work_queued = true;
  queue_.after(Duration{}, EventQueue::kGuest,
               [this, id = d.vm.id](TimePoint) { balloon_process(id); });
}

void XenHost::balloon_process(VmId vm) {
  Domain* d = find(vm);
  if (d == nullptr) return;
  d->work_queued = false;
  const std::uint64_t current = d->pages();
  // Persistent tmem pages count against maxmem too.
  const std::uint64_t persistent = tmem_ ? tmem_->persistent_pages(vm.value()) : 0;
  const std::uint64_t ceiling = d->max_pages > persistent ? d->max_pages - persistent : 0;
  const std::uint64_t target = std::min(d->target, ceiling);
  if (target == current) return;
  std::uint64_t moved = 0;
  if (target > current) {
    // increase_reservation(): pages from Xen's heap back into the guest.
    const std::uint64_t want = std::min({target - current, kBalloonBatch, d->ballooned.size()});
    const std::uint64_t got = take_from_heap(want);
    for (std::uint64_t i = 0; i < got; ++i) {
      const Gfn g = d->ballooned.back();
      d->ballooned.pop_back();
      d->vm.kernel->free_pages(0, g, 0);
    }
    domains_pages_ += got;
    stats_.pages_increased.add(got);
    if (got < want) stats_.increase_shortfalls.add();
    moved = got;
  } else {
    // decrease_reservation(): pages the guest can spare without reclaim go back to Xen.
    const std::uint64_t want = std::min(current - target, kBalloonBatch);
    for (std::uint64_t i = 0; i < want; ++i) {
      const std::optional<Gfn> g = d->vm.kernel->try_alloc_pages(0, 0);
      if (!g) break;
      host_.discard(d->vm.id, *g);
      d->ballooned.push_back(*g);
      ++moved;
    }
    domains_pages_ -= moved;
    stats_.pages_decreased.add(moved);
  }
  const CpuTime work = costs_.cost(Op::kStructPageVisit) * std::max<std::uint64_t>(moved, 1);
  d->vm.vcpu->charge(work);
  d->work_queued = true;
  queue_.after(moved == 0 ? kRetryDelay : work.duration(), EventQueue::kGuest,
               [this, vm](TimePoint) { balloon_process(vm); });
}

void XenHost::visit_stats(StatsVisitor& v) const {
  stats_.visit(v);
  v.value("dom0_pages", static_cast<double>(dom0_));
  v.value("domain_pages", static_cast<double>(domains_pages_));
  v.value("free_pages", static_cast<double>(free_pages()));
}

void XenHost::check(bool full) const {
  std::uint64_t sum = 0;
  for (const auto& d : domains_) {
    if (d->ballooned.size() > d->vm.kernel->total_pages()) {
      throw std::logic_error("xen: a balloon holds more than its guest");
    }
    sum += d->pages();
  }
  if (sum != domains_pages_) {
    throw std::logic_error(
        fmt::format("xen: reservations add up to {} pages, {} counted", sum, domains_pages_));
  }
  if (used_pages() > capacity_) {
    throw std::logic_error(fmt::format("xen: {} pages used of {}", used_pages(), capacity_));
  }
  if (tmem_ && full) tmem_->check();
  if (tmem_ && !full) tmem_->check_counts();
}

}  // namespace memvirt
