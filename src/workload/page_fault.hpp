#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "workload/workload.hpp"

namespace memvirt {

// will-it-scale's page_fault1 and page_fault2 in process mode: each task maps MEMSIZE,
// stores a byte in every page and unmaps, over and over; an operation is one page faulted
// in. page_fault1 maps anonymous memory (with THP, one fault fills 2 MiB); page_fault2 maps
// a file privately, so each fault copies the file's page (the file stays in the page cache).
class PageFault final : public Workload {
 public:
  struct Config {
    bool file_backed = false;  // page_fault2
    bool thp = false;
    unsigned tasks = 1;
    Bytes size{128ULL << 20};  // MEMSIZE
    Duration start{};
    Duration duration = Duration::seconds(10);
  };
  // page_fault2 when `file_backed`.
  static Config config_from(Params& p, bool file_backed);
  explicit PageFault(Config c) : cfg_(c) {}

  void start(const WorkloadEnv& env) override {
    env_ = env;
    begin_ = env.queue->now() + cfg_.start;
    end_ = begin_ + cfg_.duration;
    env.queue->at(begin_, EventQueue::kWorkload, [this](TimePoint) {
      stats_.measured = cfg_.duration;
      for (unsigned t = 0; t < cfg_.tasks; ++t) {
        Task task;
        task.cpu = t % env_.kernel->vcpus();
        task.pid = env_.kernel->spawn(cfg_.file_backed ? "page_fault2" : "page_fault1");
        if (cfg_.file_backed) {
          // The file's pages, read into the page cache once and kept.
          const std::uint64_t file = env_.kernel->mmap(task.pid, cfg_.size);
          env_.kernel->touch(
              task.pid, file, cfg_.size.pages(), [](std::uint64_t) { return kZeroContent; },
              task.cpu);
        }
        tasks_.push_back(task);
      }
      for (std::size_t t = 0; t < tasks_.size(); ++t) iterate(t);
    });
  }
  [[nodiscard]] const WorkloadStats& stats() const override { return stats_; }

 private:
  struct Task {
    std::uint32_t pid = 0;
    unsigned cpu = 0;
  };
  void iterate(std::size_t t) {
    if (!*env_.vm_alive) return;
    const TimePoint now = env_.queue->now();
    GuestKernel& k = *env_.kernel;
    const Task& task = tasks_[t];
    const Process* p = k.process(task.pid);
    if (now >= end_ || p == nullptr || !p->alive) {
      if (++tasks_done_ == tasks_.size() && env_.finished) env_.finished();
      return;
    }
    const std::uint64_t region = k.mmap(task.pid, cfg_.size, cfg_.thp);
    const TouchResult r = k.touch(
        task.pid, region, cfg_.size.pages(), [](std::uint64_t) { return kZeroContent; }, task.cpu,
        false);
    CpuTime spent = r.guest + r.host;
    if (cfg_.file_backed) {
      // Each copy-on-write fault copies the file's 4 KiB page: a page of memcpy.
      const CpuTime copy = k.costs().cost(Op::kZeroFillPage) * r.pages;
      k.charge_vcpu(copy);
      spent += copy;
    }
    if (r.status == TouchStatus::kDone) spent += k.munmap(task.pid, region, task.cpu);
    stats_.pages_touched.add(r.pages);
    stats_.cycles.add();
    if (!k.process(task.pid)->alive) {
      iterate(t);  // killed: the task ends
      return;
    }
    k.run(task.pid, spent, [this, t, pages = r.pages] {
      // Operations count when their iteration ends inside the measured window.
      if (env_.queue->now() <= end_) stats_.operations.add(pages);
      iterate(t);
    });
  }

  Config cfg_;
  WorkloadEnv env_;
  WorkloadStats stats_;
  TimePoint begin_{}, end_{};
  std::vector<Task> tasks_;
  std::size_t tasks_done_ = 0;
};

}  // namespace memvirt
