#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "workload/chunked_toucher.hpp"
#include "workload/workload.hpp"

namespace memvirt {

// memhog: allocate `size`, touch all of it, hold, then exit (or free and stay), optionally
// repeated every `interval`. Every page it writes has a content no other page has, of content
// class `content` (random bytes, kOpaque, unless the scenario names a class).
class Memhog final : public Workload {
 public:
  struct Config {
    Bytes size;
    Duration start{};
    Duration hold{};
    std::int64_t repeat = 1;
    Duration interval{};
    bool exit_after = true;
    bool thp = false;
    std::uint64_t chunk_pages = 0;
    // The pages' content class; nullopt: not named in the scenario (random bytes here; the
    // lab's guest program then writes its own pattern).
    std::optional<ContentClass> content;
  };
  static Config config_from(Params& p);
  explicit Memhog(Config c) : cfg_(c) {}

  void start(const WorkloadEnv& env) override {
    env_ = env;
    content_.emplace(env.seed, env.vm_index, content_stream(env.workload_index),
                     cfg_.content.value_or(ContentClass::kOpaque));
    next_ = env.queue->now() + cfg_.start;
    env.queue->at(next_, EventQueue::kWorkload, [this](TimePoint t) { run_once(t); });
  }
  [[nodiscard]] const WorkloadStats& stats() const override { return stats_; }
  // The UniqueContent stream of the `workloads:` entry at `index`, for a guest program that
  // writes the same contents.
  static constexpr std::uint64_t content_stream(std::uint64_t index) { return 2000 + index; }

 private:
  void run_once(TimePoint now) {
    if (!*env_.vm_alive) return;
    next_ = now + cfg_.interval;
    pid_ = env_.kernel->spawn("memhog");
    region_ = env_.kernel->mmap(pid_, cfg_.size, cfg_.thp);
    ChunkedToucher::run(env_, pid_, region_, cfg_.size.pages(), cfg_.chunk_pages, &*content_,
                        &stats_, [this](TouchStatus st) {
                          if (st != TouchStatus::kDone) stats_.killed.add();
                          env_.queue->after(cfg_.hold, EventQueue::kWorkload,
                                            [this](TimePoint t) { finish(t); });
                        });
  }
  void finish(TimePoint now) {
    if (!*env_.vm_alive) return;
    const Process* p = env_.kernel->process(pid_);
    if (p != nullptr && p->alive) {
      stats_.pages_freed.add(p->rss_pages);
      if (cfg_.exit_after) {
        env_.kernel->exit(pid_);
      } else {
        env_.kernel->munmap(pid_, region_);
      }
    }
    stats_.cycles.add();
    if (++done_ < cfg_.repeat) {
      env_.queue->at(std::max(now, next_), EventQueue::kWorkload,
                     [this](TimePoint t) { run_once(t); });
    } else if (env_.finished) {
      env_.finished();
    }
  }

  Config cfg_;
  WorkloadEnv env_;
  std::optional<UniqueContent> content_;
  WorkloadStats stats_;
  std::uint32_t pid_ = 0;
  std::uint64_t region_ = 0;
  std::int64_t done_ = 0;
  TimePoint next_{};
};

}  // namespace memvirt
