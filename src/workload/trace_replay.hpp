#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "workload/chunked_toucher.hpp"
#include "workload/trace.hpp"
#include "workload/workload.hpp"

namespace memvirt {

// Replays a memory-usage trace: at each row the program grows (mmap and touch the difference)
// or shrinks (munmap its newest memory first) to the row's amount.
class TraceReplay final : public Workload {
 public:
  struct Config {
    std::shared_ptr<const Trace> trace;
    bool loop = false;
    bool random_phase = false;
    Duration phase{};
    std::uint64_t chunk_pages = 0;
  };
  static Config config_from(Params& p);
  explicit TraceReplay(Config c) : cfg_(std::move(c)) {}

  void start(const WorkloadEnv& env) override {
    env_ = env;
    content_.emplace(env.seed, env.vm_index, 3000 + env.workload_index);
    pid_ = env.kernel->spawn("trace");
    Duration phase = cfg_.phase;
    if (cfg_.random_phase) {
      Rng rng(env.seed, "workload.trace", env.vm_index * 1024 + env.workload_index);
      const auto span = std::max<std::int64_t>(1, cfg_.trace->points.back().time.ns());
      phase = Duration{static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(span)))};
    }
    origin_ = env.queue->now() + phase;
    schedule(origin_ + cfg_.trace->points[0].time);
  }
  [[nodiscard]] const WorkloadStats& stats() const override { return stats_; }

 private:
  void schedule(TimePoint when) {
    env_.queue->at(std::max(when, env_.queue->now()), EventQueue::kWorkload,
                   [this](TimePoint) { apply(); });
  }

  void apply() {
    if (!*env_.vm_alive) return;
    const Process* p = env_.kernel->process(pid_);
    if (p == nullptr || !p->alive) {
      pid_ = env_.kernel->spawn("trace");
      regions_.clear();
    }
    const std::uint64_t target = cfg_.trace->points[row_].in_use.pages();
    const std::uint64_t current = env_.kernel->process(pid_)->rss_pages;
    if (target > current) {
      const std::uint64_t region = env_.kernel->mmap(pid_, Bytes::from_pages(target - current));
      regions_.push_back(region);
      ChunkedToucher::run(env_, pid_, region, target - current, cfg_.chunk_pages, &*content_,
                          &stats_, [this](TouchStatus st) {
                            if (st != TouchStatus::kDone) stats_.killed.add();
                            advance();
                          });
      return;
    }
    std::uint64_t excess = current - target;
    while (excess > 0 && !regions_.empty()) {
      const Process* proc = env_.kernel->process(pid_);
      std::uint64_t touched = 0;
      for (const auto& r : proc->regions) {
        if (r.id == regions_.back()) touched = r.touched;
      }
      if (touched <= excess) {
        env_.kernel->munmap(pid_, regions_.back());
        regions_.pop_back();
        excess -= touched;
        stats_.pages_freed.add(touched);
      } else {
        env_.kernel->munmap_tail(pid_, regions_.back(), excess);
        stats_.pages_freed.add(excess);
        excess = 0;
      }
    }
    advance();
  }

  void advance() {
    if (!*env_.vm_alive) return;
    const auto& points = cfg_.trace->points;
    if (++row_ == points.size()) {
      stats_.cycles.add();
      if (!cfg_.loop) return;
      row_ = 0;
      // A cycle lasts until the last row's time; the next cycle's rows follow from there.
      origin_ = origin_ + points.back().time;
    }
    schedule(origin_ + points[row_].time);
  }

  Config cfg_;
  WorkloadEnv env_;
  std::optional<UniqueContent> content_;
  WorkloadStats stats_;
  std::uint32_t pid_ = 0;
  std::vector<std::uint64_t> regions_;
  std::size_t row_ = 0;
  TimePoint origin_{};
};

}  // namespace memvirt
