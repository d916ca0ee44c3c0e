#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "workload/chunked_toucher.hpp"
#include "workload/size_distribution.hpp"
#include "workload/workload.hpp"

namespace memvirt {

// Seed 000's application: every `period`, allocate an amount, touch all of it, hold it, free
// it. The hold is either given, or derived so that the time-averaged amount in use equals
// `mean_in_use` (what seed 000 states as the "average size").
class PeriodicAlloc final : public Workload {
 public:
  struct Config {
    Duration period;
    SizeDistribution amount;
    std::optional<Duration> hold;
    std::optional<Bytes> mean_in_use;
    bool random_phase = true;
    Duration phase{};
    std::uint64_t chunk_pages = 0;
  };
  static Config config_from(Params& p);
  explicit PeriodicAlloc(const Config& c) : cfg_(c) {}

  // The random draws of one VM's instance, in the order it makes them: the phase, then one
  // amount per cycle. The lab replays the same draws on a real guest.
  class Draws {
   public:
    Draws(const Config& c, std::uint64_t seed, std::uint64_t vm_index,
          std::uint64_t workload_index);
    Duration phase();
    Bytes amount() { return cfg_->amount.draw(rng_); }

   private:
    const Config* cfg_;
    Rng rng_;
  };

  void start(const WorkloadEnv& env) override {
    env_ = env;
    draws_.emplace(cfg_, env.seed, env.vm_index, env.workload_index);
    content_.emplace(env.seed, env.vm_index, 1000 + env.workload_index);
    pid_ = env.kernel->spawn("periodic_alloc");
    next_cycle_ = env.queue->now() + draws_->phase();
    env.queue->at(next_cycle_, EventQueue::kWorkload, [this](TimePoint t) { cycle(t); });
  }
  [[nodiscard]] const WorkloadStats& stats() const override { return stats_; }

 private:
  void cycle(TimePoint now) {
    if (!*env_.vm_alive) return;
    next_cycle_ = next_cycle_ + cfg_.period;
    const Process* p = env_.kernel->process(pid_);
    if (p == nullptr || !p->alive) pid_ = env_.kernel->spawn("periodic_alloc");
    amount_ = draws_->amount();
    if (amount_.pages() == 0) {
      schedule_next(now);
      return;
    }
    region_ = env_.kernel->mmap(pid_, amount_);
    touch_start_ = now;
    ChunkedToucher::run(env_, pid_, region_, amount_.pages(), cfg_.chunk_pages, &*content_, &stats_,
                        [this](TouchStatus st) { touched(st); });
  }

  void touched(TouchStatus st) {
    const TimePoint now = env_.queue->now();
    stats_.work_time = stats_.work_time + (now - touch_start_);
    if (st == TouchStatus::kKilled || st == TouchStatus::kOutOfMemory) {
      stats_.killed.add();
      schedule_next(now);
      return;
    }
    Duration hold = cfg_.hold.value_or(Duration{0});
    if (cfg_.mean_in_use) {
      // amount x (touch/2 + hold) / period = mean_in_use
      const double share =
          static_cast<double>(cfg_.mean_in_use->value()) / static_cast<double>(amount_.value());
      const double h = share * cfg_.period.seconds() - (now - touch_start_).seconds() / 2;
      hold = Duration::seconds(std::max(0.0, h));
    }
    env_.queue->after(hold, EventQueue::kWorkload, [this](TimePoint t) { release(t); });
  }

  void release(TimePoint now) {
    if (!*env_.vm_alive) return;
    const Process* p = env_.kernel->process(pid_);
    if (p != nullptr && p->alive) {
      const std::uint64_t before = p->rss_pages;
      env_.kernel->munmap(pid_, region_);
      stats_.pages_freed.add(before - env_.kernel->process(pid_)->rss_pages);
    }
    stats_.cycles.add();
    schedule_next(now);
  }

  void schedule_next(TimePoint now) {
    const TimePoint when = std::max(now, next_cycle_);
    env_.queue->at(when, EventQueue::kWorkload, [this](TimePoint t) { cycle(t); });
  }

  Config cfg_;
  WorkloadEnv env_;
  std::optional<Draws> draws_;
  std::optional<UniqueContent> content_;
  WorkloadStats stats_;
  std::uint32_t pid_ = 0;
  std::uint64_t region_ = 0;
  Bytes amount_{};
  TimePoint touch_start_{};
  TimePoint next_cycle_{};
};

}  // namespace memvirt
