// Deterministic discrete-event queue. Events fire in (time, priority, sequence) order, where the
// sequence number is the order of scheduling, so two runs of the same scenario fire the same
// events in the same order.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/types.hpp"

namespace memvirt {

class EventQueue {
 public:
  using Action = std::function<void(TimePoint)>;

  // Lower priority values fire first among events at the same time.
  enum Priority : std::int32_t {
    kHost = 0,
    kDaemon = 10,
    kGuest = 20,
    kWorkload = 30,
    kSample = 90
  };

  [[nodiscard]] TimePoint now() const { return now_; }
  // Schedules `action` at `when` (not before now). Returns the event's sequence number.
  std::uint64_t at(TimePoint when, std::int32_t priority, Action action);
  std::uint64_t after(Duration delay, std::int32_t priority, Action action) {
    return at(now_ + delay, priority, std::move(action));
  }
  // Fires the next event if its time is <= until. Returns false when none qualified.
  bool step(TimePoint until);
  [[nodiscard]] bool empty() const { return heap_.empty(); }
  [[nodiscard]] TimePoint next_time() const;
  [[nodiscard]] std::uint64_t fired() const { return fired_; }
  // Moves the clock forward to `t` when no event remains before it.
  void advance_to(TimePoint t);

 private:
  struct Key {
    TimePoint when;
    std::int32_t priority;
    std::uint64_t seq;
    std::uint32_t slot;
  };
  static bool later(const Key& a, const Key& b);
  std::vector<Key> heap_;
  std::vector<Action> actions_;
  std::vector<std::uint32_t> free_slots_;
  TimePoint now_{};
  std::uint64_t next_seq_ = 0;
  std::uint64_t fired_ = 0;
};

// A daemon that runs every `period` until stopped. `body` returns the delay to its next run
// (normally the period; daemons that work in slices may return less).
class PeriodicDaemon {
 public:
  using Body = std::function<Duration(TimePoint)>;
  PeriodicDaemon(EventQueue& queue, std::int32_t priority, Body body)
      : queue_(queue), priority_(priority), body_(std::move(body)) {}
  void start(Duration first_delay);
  void stop() { running_ = false; }
  [[nodiscard]] bool running() const { return running_; }

 private:
  void schedule(Duration delay);
  EventQueue& queue_;
  std::int32_t priority_;
  Body body_;
  bool running_ = false;
  std::uint64_t generation_ = 0;
};

}  // namespace memvirt
