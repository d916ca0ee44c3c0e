#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <memory>

#include "workload/trace.hpp"
#include "workload/workload.hpp"

namespace memvirt {

SizeDistribution SizeDistribution::from_params(Params p) {
  SizeDistribution d;
  const std::string dist =
      p.choice("dist", "constant", {"constant", "uniform", "truncated_exponential"},
               "distribution of the amount");
  if (dist == "constant") {
    d.kind_ = Kind::kConstant;
    d.min_ = d.max_ = p.required_bytes("value", "the amount");
  } else if (dist == "uniform") {
    d.kind_ = Kind::kUniform;
    d.min_ = p.bytes("min", Bytes{0}, "smallest amount");
    d.max_ = p.required_bytes("max", "largest amount");
    if (d.max_ < d.min_) p.fail("max", "is smaller than min");
  } else {
    d.kind_ = Kind::kTruncatedExponential;
    const Bytes mean = p.required_bytes("mean", "mean amount");
    d.max_ = p.required_bytes("max", "largest amount (the exponential is truncated here)");
    if (mean.value() == 0 || mean >= d.max_) p.fail("mean", "must be above 0 and below max");
    // Solve for the rate whose truncation at max has the requested mean:
    // mean(r) = 1/r - M / (exp(r M) - 1), decreasing in r. Bisection on r.
    const double M = static_cast<double>(d.max_.value());
    const double target = static_cast<double>(mean.value());
    if (target >= M / 2) p.fail("mean", "must be below max/2 for a decreasing density");
    double lo = 1e-30, hi = 1.0;
    for (int i = 0; i < 200; ++i) {
      const double r = std::sqrt(lo * hi);
      const double m = 1 / r - M / std::expm1(r * M);
      (m > target ? lo : hi) = r;
    }
    d.rate_ = std::sqrt(lo * hi);
  }
  return d;
}

Bytes SizeDistribution::draw(Rng& rng) const {
  auto page_round = [](double b) {
    return Bytes{static_cast<std::uint64_t>(b) & ~(kPageSize - 1)};
  };
  switch (kind_) {
    case Kind::kConstant:
      return max_;
    case Kind::kUniform:
      return page_round(static_cast<double>(min_.value()) +
                        rng.uniform() * static_cast<double>(max_.value() - min_.value()));
    case Kind::kTruncatedExponential: {
      // Inverse CDF of the exponential restricted to [0, max].
      const double M = static_cast<double>(max_.value());
      const double u = rng.uniform();
      return page_round(-std::log1p(u * std::expm1(-rate_ * M)) / rate_);
    }
  }
  return max_;
}

Bytes SizeDistribution::mean() const {
  switch (kind_) {
    case Kind::kConstant:
      return max_;
    case Kind::kUniform:
      return Bytes{(min_.value() + max_.value()) / 2};
    case Kind::kTruncatedExponential: {
      const double M = static_cast<double>(max_.value());
      return Bytes{static_cast<std::uint64_t>(1 / rate_ - M / std::expm1(rate_ * M))};
    }
  }
  return max_;
}

namespace {

// Touches a region in chunks, one event per chunk, so that virtual time advances by the
// cost of each chunk and other VMs interleave.
class ChunkedToucher {
 public:
  using Done = std::function<void(TouchStatus)>;
  static void run(const WorkloadEnv& env, std::uint32_t pid, std::uint64_t region,
                  std::uint64_t pages, std::uint64_t chunk, UniqueContent* content,
                  WorkloadStats* stats, const Done& done) {
    env.queue->after(Duration{0}, EventQueue::kWorkload,
                     [env, pid, region, pages, chunk, content, stats, done](TimePoint) {
                       step(env, pid, region, pages, chunk, content, stats, done);
                     });
  }

 private:
  static void step(const WorkloadEnv& env, std::uint32_t pid, std::uint64_t region,
                   std::uint64_t remaining, std::uint64_t chunk, UniqueContent* content,
                   WorkloadStats* stats, const Done& done) {
    if (!*env.vm_alive) return;
    const std::uint64_t n = std::min(remaining, chunk);
    const TouchResult r =
        env.kernel->touch(pid, region, n, [content](std::uint64_t) { return content->next(); });
    stats->pages_touched.add(r.pages);
    const Duration took = (r.guest + r.host).duration();
    if (r.status != TouchStatus::kDone || r.pages < n || remaining == n) {
      env.queue->after(took, EventQueue::kWorkload, [done, st = r.status, env](TimePoint) {
        if (*env.vm_alive) done(st);
      });
      return;
    }
    env.queue->after(took, EventQueue::kWorkload,
                     [env, pid, region, rest = remaining - n, chunk, content, stats, done](
                         TimePoint) { step(env, pid, region, rest, chunk, content, stats, done); });
  }
};

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
  explicit PeriodicAlloc(const Config& c) : cfg_(c) {}

  void start(const WorkloadEnv& env) override {
    env_ = env;
    rng_ = Rng(env.seed, "workload.periodic_alloc", env.vm_index * 1024 + env.workload_index);
    content_.emplace(env.seed, env.vm_index, 1000 + env.workload_index);
    pid_ = env.kernel->spawn("periodic_alloc");
    const Duration phase = cfg_.random_phase ? Duration{static_cast<std::int64_t>(rng_.below(
                                                   static_cast<std::uint64_t>(cfg_.period.ns())))}
                                             : cfg_.phase;
    next_cycle_ = env.queue->now() + phase;
    env.queue->at(next_cycle_, EventQueue::kWorkload, [this](TimePoint t) { cycle(t); });
  }
  [[nodiscard]] const WorkloadStats& stats() const override { return stats_; }

 private:
  void cycle(TimePoint now) {
    if (!*env_.vm_alive) return;
    next_cycle_ = next_cycle_ + cfg_.period;
    const Process* p = env_.kernel->process(pid_);
    if (p == nullptr || !p->alive) pid_ = env_.kernel->spawn("periodic_alloc");
    amount_ = cfg_.amount.draw(rng_);
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
  Rng rng_{0, ""};
  std::optional<UniqueContent> content_;
  WorkloadStats stats_;
  std::uint32_t pid_ = 0;
  std::uint64_t region_ = 0;
  Bytes amount_{};
  TimePoint touch_start_{};
  TimePoint next_cycle_{};
};

// memhog: allocate `size`, touch all of it, hold, then exit (or free and stay), optionally
// repeated every `interval`.
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
  };
  explicit Memhog(Config c) : cfg_(c) {}

  void start(const WorkloadEnv& env) override {
    env_ = env;
    content_.emplace(env.seed, env.vm_index, 2000 + env.workload_index);
    next_ = env.queue->now() + cfg_.start;
    env.queue->at(next_, EventQueue::kWorkload, [this](TimePoint t) { run_once(t); });
  }
  [[nodiscard]] const WorkloadStats& stats() const override { return stats_; }

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
    const TimePoint done = now + spent.duration();
    // Operations count when their iteration ends inside the measured window.
    if (done <= end_) stats_.operations.add(r.pages);
    env_.queue->at(done, EventQueue::kWorkload, [this, t](TimePoint) { iterate(t); });
  }

  Config cfg_;
  WorkloadEnv env_;
  WorkloadStats stats_;
  TimePoint begin_{}, end_{};
  std::vector<Task> tasks_;
  std::size_t tasks_done_ = 0;
};

}  // namespace

WorkloadFactory make_workload_factory(Params p) {
  const std::string type =
      p.choice("type", "", {"periodic_alloc", "memhog", "trace", "page_fault1", "page_fault2"},
               "workload kind");
  const Bytes chunk = p.bytes("touch_chunk", Bytes{64ULL << 20},
                              "pages touched per event (granularity of virtual time)");
  if (chunk.pages() == 0) p.fail("touch_chunk", "must be at least one page");
  if (type == "periodic_alloc") {
    PeriodicAlloc::Config c;
    c.chunk_pages = chunk.pages();
    c.period = p.duration("period", Duration::seconds(1800), "time between allocations");
    if (c.period.ns() <= 0) p.fail("period", "must be positive");
    c.amount = SizeDistribution::from_params(p.child("amount"));
    if (!p.has("amount")) p.fail("amount", "missing: how much each period allocates");
    if (p.has("hold") == p.has("mean_in_use")) {
      p.fail("", "give exactly one of 'hold' (time the amount is kept) or 'mean_in_use'");
    }
    if (p.has("hold"))
      c.hold = p.duration("hold", Duration{0}, "time the amount is held after touching");
    if (p.has("mean_in_use")) {
      c.mean_in_use = p.bytes("mean_in_use", Bytes{0}, "time-averaged amount in use");
      if (*c.mean_in_use > c.amount.mean()) p.fail("mean_in_use", "exceeds the mean amount");
    }
    const std::string phase =
        p.string("phase", "random", "'random' (uniform in the period) or a duration");
    if (phase == "random") {
      c.random_phase = true;
    } else {
      c.random_phase = false;
      c.phase = p.duration("phase", Duration{0}, "offset of the first allocation");
    }
    return [c] { return std::make_unique<PeriodicAlloc>(c); };
  }
  if (type == "page_fault1" || type == "page_fault2") {
    PageFault::Config c;
    c.file_backed = type == "page_fault2";
    c.tasks =
        static_cast<unsigned>(p.integer("tasks", 1, "processes, each on its own vCPU", 1, 4096));
    c.thp = p.boolean("thp", false, "page_fault1 with madvise(MADV_HUGEPAGE) (seed 002)");
    if (c.thp && c.file_backed) p.fail("thp", "page_fault2 maps a file: no transparent huge pages");
    c.size = p.bytes("size", c.size, "MEMSIZE: memory each task maps per iteration");
    if (c.size.pages() == 0) p.fail("size", "must be at least one page");
    c.start = p.duration("start", Duration{0}, "delay after boot");
    c.duration = p.duration("duration", c.duration, "time over which operations are counted");
    if (c.duration.ns() <= 0) p.fail("duration", "must be positive");
    return [c] { return std::make_unique<PageFault>(c); };
  }
  if (type == "trace") {
    TraceReplay::Config c;
    c.chunk_pages = chunk.pages();
    const std::string file = p.string("file", "", "trace file (CSV: time,in_use)");
    if (file.empty()) p.fail("file", "missing: the trace to replay");
    namespace fs = std::filesystem;
    fs::path path(file);
    if (path.is_relative())
      path = fs::path(p.context()->anchor_of(p.path() + ".file")).parent_path() / path;
    c.trace = std::make_shared<const Trace>(load_trace(path.string()));
    c.loop = p.boolean("loop", false, "start over after the last row");
    const std::string phase = p.string("phase", "0s", "'random' (within the trace) or a duration");
    if (phase == "random") {
      c.random_phase = true;
    } else {
      c.phase = p.duration("phase", Duration{0}, "delay before the first row");
    }
    return [c] { return std::make_unique<TraceReplay>(c); };
  }
  Memhog::Config c;
  c.chunk_pages = chunk.pages();
  c.size = p.required_bytes("size", "amount to allocate and touch");
  if (c.size.pages() == 0) p.fail("size", "must be at least one page");
  c.start = p.duration("start", Duration{0}, "delay after boot");
  c.hold = p.duration("hold", Duration{0}, "time the memory is kept after touching");
  c.repeat = p.integer("repeat", 1, "number of runs", 1, 1'000'000);
  c.interval = p.duration("interval", Duration{0}, "time from one run's start to the next");
  c.exit_after =
      p.choice("then", "exit", {"exit", "free"}, "exit the process, or munmap and stay") == "exit";
  c.thp = p.boolean("thp", false, "map with madvise(MADV_HUGEPAGE): 2 MiB faults");
  return [c] { return std::make_unique<Memhog>(c); };
}

}  // namespace memvirt
