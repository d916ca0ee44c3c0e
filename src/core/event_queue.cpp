#include "core/event_queue.hpp"

#include <algorithm>
#include <cassert>
#include <stdexcept>

namespace memvirt {

bool EventQueue::later(const Key& a, const Key& b) {
  if (a.when != b.when) return a.when > b.when;
  if (a.priority != b.priority) return a.priority > b.priority;
  return a.seq > b.seq;
}

std::uint64_t EventQueue::at(TimePoint when, std::int32_t priority, Action action) {
  if (when < now_) throw std::logic_error("event scheduled in the past");
  std::uint32_t slot = 0;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
    actions_[slot] = std::move(action);
  } else {
    slot = static_cast<std::uint32_t>(actions_.size());
    actions_.push_back(std::move(action));
  }
  const std::uint64_t seq = next_seq_++;
  heap_.push_back(Key{when, priority, seq, slot});
  std::push_heap(heap_.begin(), heap_.end(), later);
  return seq;
}

TimePoint EventQueue::next_time() const {
  return heap_.empty() ? TimePoint::max() : heap_.front().when;
}

bool EventQueue::step(TimePoint until) {
  if (heap_.empty() || heap_.front().when > until) return false;
  std::pop_heap(heap_.begin(), heap_.end(), later);
  const Key key = heap_.back();
  heap_.pop_back();
  now_ = key.when;
  Action action = std::move(actions_[key.slot]);
  actions_[key.slot] = nullptr;
  free_slots_.push_back(key.slot);
  ++fired_;
  action(now_);
  return true;
}

void EventQueue::advance_to(TimePoint t) {
  assert(heap_.empty() || heap_.front().when >= t);
  if (t > now_) now_ = t;
}

void PeriodicDaemon::start(Duration first_delay) {
  running_ = true;
  ++generation_;
  schedule(first_delay);
}

void PeriodicDaemon::schedule(Duration delay) {
  const std::uint64_t gen = generation_;
  queue_.after(delay, priority_, [this, gen](TimePoint now) {
    if (!running_ || gen != generation_) return;
    schedule(body_(now));
  });
}

}  // namespace memvirt
