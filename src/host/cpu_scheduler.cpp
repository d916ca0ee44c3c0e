#include "host/cpu_scheduler.hpp"

#include <algorithm>
#include <stdexcept>

namespace memvirt {
namespace {

// The longest step one armed event covers. A completion further away (a tiny share over a
// huge work) is reached by an event that fires early, completes nothing and re-arms.
constexpr std::int64_t kMaxStepNs = 1'000'000'000'000'000'000;  // about 31 years

}  // namespace

CpuScheduler::CpuScheduler(EventQueue& queue, unsigned host_cpus)
    : queue_(queue), host_cpus_(host_cpus), created_(queue.now()), last_update_(queue.now()) {
  if (host_cpus == 0) throw std::invalid_argument("a host needs at least one CPU");
}

GroupId CpuScheduler::add_group(unsigned cpus) {
  if (cpus == 0) throw std::invalid_argument("a scheduling group needs at least one CPU");
  Group g;
  g.cpus = cpus;
  groups_.push_back(std::move(g));
  return GroupId{static_cast<std::uint32_t>(groups_.size() - 1)};
}

std::uint32_t CpuScheduler::index_of(GroupId group) const {
  if (group.value() >= groups_.size()) throw std::invalid_argument("unknown scheduling group");
  return group.value();
}

std::uint64_t CpuScheduler::alloc_numerator(const Group& g) const {
  const std::uint64_t k = g.finishing.size();
  return std::min<std::uint64_t>(k, g.cpus) * std::min<std::uint64_t>(demand_, host_cpus_);
}

namespace {

// a * num / den * 2^bits, rounded down or up, without overflow for a < 2^80, num and
// den < 2^40 and bits <= 32.
template <typename Fixed>
Fixed scaled_ratio(Fixed a, std::uint64_t num, std::uint64_t den, unsigned bits, bool up) {
  const Fixed product = a * num;
  const Fixed q = product / den;
  const Fixed r = product % den;
  return (q << bits) + ((r << bits) + (up ? den - 1 : 0)) / den;
}

}  // namespace

CpuScheduler::Fixed CpuScheduler::service_gain(const Group& g, std::int64_t ns) const {
  const std::uint64_t k = g.finishing.size();
  if (k == 0 || ns <= 0) return 0;
  const Fixed ps = static_cast<Fixed>(ns) * 1000U;
  return scaled_ratio(ps, alloc_numerator(g), demand_ * k, kFractionBits, true);
}

CpuScheduler::Fixed CpuScheduler::consumed_gain(const Group& g, std::int64_t ns) const {
  if (g.finishing.empty() || ns <= 0) return 0;
  const Fixed ps = static_cast<Fixed>(ns) * 1000U;
  return scaled_ratio(ps, alloc_numerator(g), demand_, kFractionBits, false);
}

CpuScheduler::Fixed CpuScheduler::group_service_now(const Group& g) const {
  return g.service + service_gain(g, (queue_.now() - last_update_).ns());
}

void CpuScheduler::advance() {
  const std::int64_t ns = (queue_.now() - last_update_).ns();
  if (ns <= 0) return;
  for (Group& g : groups_) {
    if (g.finishing.empty()) continue;
    g.service += service_gain(g, ns);
    g.consumed += consumed_gain(g, ns);
  }
  busy_ps_ += static_cast<std::uint64_t>(ns) * 1000U * std::min<std::uint64_t>(demand_, host_cpus_);
  last_update_ = queue_.now();
}

TaskId CpuScheduler::run(GroupId group, CpuTime work, std::function<void(TimePoint)> done) {
  const std::uint32_t index = index_of(group);
  advance();
  Group& g = groups_[index];
  const std::uint64_t id = next_task_++;
  const Fixed start = g.service;
  const Fixed finish = start + (static_cast<Fixed>(work.ps) << kFractionBits);
  tasks_.emplace(id, Task{index, start, finish, std::move(done)});
  if (g.finishing.size() < g.cpus) ++demand_;
  g.finishing.emplace(finish, id);
  stats_.tasks_started.add();
  stats_.rate_changes.add();
  rearm();
  return TaskId{id};
}

void CpuScheduler::remove_task(std::uint64_t id, const Task& t) {
  Group& g = groups_[t.group];
  g.finishing.erase({t.finish, id});
  if (g.finishing.size() < g.cpus) --demand_;
}

CpuTime CpuScheduler::cancel(TaskId task) {
  const auto it = tasks_.find(task.value());
  if (it == tasks_.end()) return CpuTime{};
  advance();
  const Task& t = it->second;
  const Group& g = groups_[t.group];
  const Fixed done = std::min(g.service, t.finish) - t.start;
  remove_task(it->first, t);
  tasks_.erase(it);
  stats_.tasks_cancelled.add();
  stats_.rate_changes.add();
  rearm();
  return CpuTime{static_cast<std::uint64_t>(done >> kFractionBits)};
}

std::int64_t CpuScheduler::ns_to_gain(const Group& g, Fixed left) const {
  if (left == 0) return 0;
  const Fixed longest = service_gain(g, kMaxStepNs);
  if (longest < left) return kMaxStepNs;
  // Estimate from the rate, then bracket the answer (gain(lo) < left <= gain(hi)) and
  // bisect: the estimate is within a nanosecond or two, so this costs a few evaluations.
  const long double per_ns =
      static_cast<long double>(longest) / static_cast<long double>(kMaxStepNs);
  const long double estimate = static_cast<long double>(left) / per_ns;
  std::int64_t hi = estimate >= static_cast<long double>(kMaxStepNs)
                        ? kMaxStepNs
                        : std::max<std::int64_t>(1, static_cast<std::int64_t>(estimate) + 1);
  for (std::int64_t step = 1; service_gain(g, hi) < left; step *= 2) {
    hi = std::min(kMaxStepNs, hi + step);
  }
  std::int64_t lo = hi - 1;
  for (std::int64_t step = 1; lo > 0 && service_gain(g, lo) >= left; step *= 2) {
    hi = lo;
    lo = std::max<std::int64_t>(0, lo - step);
  }
  while (hi - lo > 1) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    (service_gain(g, mid) >= left ? hi : lo) = mid;
  }
  return hi;
}

void CpuScheduler::rearm() {
  // The earliest nanosecond at which a task's work is done, over every group.
  bool any = false;
  TimePoint next = TimePoint::max();
  for (const Group& g : groups_) {
    if (g.finishing.empty()) continue;
    any = true;
    const Fixed finish = g.finishing.begin()->first;
    const Fixed left = finish > g.service ? finish - g.service : 0;
    next = std::min(next, last_update_ + Duration{ns_to_gain(g, left)});
  }
  if (!any) {
    ++generation_;  // nothing runs: a pending event is stale
    armed_ = false;
    return;
  }
  if (armed_ && armed_at_ <= next) return;  // fires first, completes nothing, re-arms
  const std::uint64_t gen = ++generation_;
  armed_ = true;
  armed_at_ = next;
  queue_.at(next, EventQueue::kHost, [this, gen](TimePoint) { on_event(gen); });
}

void CpuScheduler::on_event(std::uint64_t generation) {
  if (generation != generation_) return;
  armed_ = false;
  // An event armed before a later completion replaced it: nothing is due, and the rates
  // have not changed, so the work done is left to be brought up to date in one step later.
  bool due = false;
  for (const Group& g : groups_) {
    due = due || (!g.finishing.empty() && g.finishing.begin()->first <= group_service_now(g));
  }
  if (!due) {
    rearm();
    return;
  }
  advance();
  std::vector<std::uint64_t> finished;
  for (const Group& g : groups_) {
    for (const auto& [finish, id] : g.finishing) {
      if (finish > g.service) break;
      finished.push_back(id);
    }
  }
  std::sort(finished.begin(), finished.end());
  std::vector<std::function<void(TimePoint)>> callbacks;
  callbacks.reserve(finished.size());
  for (const std::uint64_t id : finished) {
    const auto it = tasks_.find(id);
    remove_task(id, it->second);
    callbacks.push_back(std::move(it->second.done));
    tasks_.erase(it);
    stats_.tasks_completed.add();
  }
  if (!finished.empty()) stats_.rate_changes.add();
  rearm();
  const TimePoint now = queue_.now();
  for (auto& done : callbacks) {
    if (done) done(now);
  }
}

CpuTime CpuScheduler::progress(TaskId task) const {
  const auto it = tasks_.find(task.value());
  if (it == tasks_.end()) return CpuTime{};
  const Task& t = it->second;
  const Fixed service = group_service_now(groups_[t.group]);
  return CpuTime{
      static_cast<std::uint64_t>((std::min(service, t.finish) - t.start) >> kFractionBits)};
}

unsigned CpuScheduler::runnable(GroupId group) const {
  return static_cast<unsigned>(groups_[index_of(group)].finishing.size());
}

double CpuScheduler::task_rate(GroupId group) const {
  const Group& g = groups_[index_of(group)];
  if (g.finishing.empty()) return 0;
  return static_cast<double>(alloc_numerator(g)) /
         static_cast<double>(demand_ * g.finishing.size());
}

double CpuScheduler::group_cpus(GroupId group) const {
  const Group& g = groups_[index_of(group)];
  if (g.finishing.empty()) return 0;
  return static_cast<double>(alloc_numerator(g)) / static_cast<double>(demand_);
}

CpuTime CpuScheduler::consumed(GroupId group) const {
  const Group& g = groups_[index_of(group)];
  const Fixed total = g.consumed + consumed_gain(g, (queue_.now() - last_update_).ns());
  return CpuTime{static_cast<std::uint64_t>(total >> kFractionBits)};
}

CpuTime CpuScheduler::busy() const {
  const auto ns = static_cast<std::uint64_t>((queue_.now() - last_update_).ns());
  return CpuTime{busy_ps_ + ns * 1000U * std::min<std::uint64_t>(demand_, host_cpus_)};
}

double CpuScheduler::utilisation() const {
  const std::int64_t elapsed = (queue_.now() - created_).ns();
  if (elapsed <= 0) return 0;
  return static_cast<double>(busy().ps) /
         (static_cast<double>(host_cpus_) * static_cast<double>(elapsed) * 1000.0);
}

void CpuScheduler::visit(StatsVisitor& v) const {
  v.counter("tasks_started", stats_.tasks_started);
  v.counter("tasks_completed", stats_.tasks_completed);
  v.counter("tasks_cancelled", stats_.tasks_cancelled);
  v.counter("rate_changes", stats_.rate_changes);
  v.value("busy_cpu_s", static_cast<double>(busy().ps) * 1e-12);
  v.value("utilisation", utilisation());
}

void CpuScheduler::visit_group(GroupId group, StatsVisitor& v) const {
  v.value("cpu_s", static_cast<double>(consumed(group).ps) * 1e-12);
}

}  // namespace memvirt
