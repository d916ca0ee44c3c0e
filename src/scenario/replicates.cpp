#include "scenario/replicates.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/rng.hpp"

namespace memvirt {

std::uint64_t replicate_seed(std::uint64_t scenario_seed, unsigned index) {
  if (index == 0) return scenario_seed;
  return splitmix64(scenario_seed ^ splitmix64(name_hash("replicate") ^ splitmix64(index))) >> 1;
}

double aggregate(std::span<const double> values, Aggregate how) {
  if (values.empty()) throw std::invalid_argument("aggregate: no values");
  std::vector<double> v(values.begin(), values.end());
  // Summed in order of value, so the result does not depend on the replicates' order.
  std::sort(v.begin(), v.end());
  auto first = v.begin();
  auto last = v.end();
  if (how == Aggregate::kTrimmedMean) {
    if (v.size() < 3) throw std::invalid_argument("aggregate: trimmed_mean needs three values");
    ++first;
    --last;
  }
  if (*first == *(last - 1)) return *first;
  double sum = 0;
  for (auto it = first; it != last; ++it) sum += *it;
  return sum / static_cast<double>(last - first);
}

namespace {

// The replicates' progress, passed on to one sink one call at a time.
class ProgressBoard {
 public:
  ProgressBoard(ExperimentProgress& out, std::vector<ReplicateState> states)
      : out_(out), states_(std::move(states)) {}

  void begin_trial(unsigned vms) {
    const std::lock_guard lock(mutex_);
    if (begun_) return;
    begun_ = true;
    out_.begin_trial(vms);
  }
  void end_trial(const Trial& t) {
    const std::lock_guard lock(mutex_);
    out_.end_trial(t);
  }
  void update(std::size_t index, double simulated_s, double total_s) {
    const std::lock_guard lock(mutex_);
    ReplicateState& st = states_[index];
    st.started = true;
    st.simulated_s = simulated_s;
    st.total_s = total_s;
    out_.replicates(states_);
  }
  void done(std::size_t index, const Replicate& r) {
    const std::lock_guard lock(mutex_);
    ReplicateState& st = states_[index];
    st.started = true;
    st.done = true;
    st.simulated_s = st.total_s;
    out_.replicate_done(index, r);
    out_.replicates(states_);
  }

 private:
  std::mutex mutex_;
  ExperimentProgress& out_;
  std::vector<ReplicateState> states_;
  bool begun_ = false;
};

// What one replicate's experiment reports, onto the board.
class ReplicateSink final : public ExperimentProgress {
 public:
  ReplicateSink(ProgressBoard& board, std::size_t index) : board_(board), index_(index) {}
  void begin_trial(unsigned vms) override { board_.begin_trial(vms); }
  void end_trial(const Trial& t) override { board_.end_trial(t); }
  void update(double simulated_s, double total_s) override {
    board_.update(index_, simulated_s, total_s);
  }

 private:
  ProgressBoard& board_;
  std::size_t index_;
};

}  // namespace

ExperimentResult run_replicates(const Scenario& s, ExperimentProgress* progress, unsigned jobs) {
  const unsigned n = std::max(1U, s.experiment.replicates);
  // Each replicate reads only its own copy of the scenario; the copies are made here, before
  // any thread starts.
  std::vector<Scenario> scenarios(n, s);
  std::vector<ReplicateState> states(n);
  for (unsigned i = 0; i < n; ++i) {
    scenarios[i].seed = replicate_seed(s.seed, i);
    states[i].seed = scenarios[i].seed;
    states[i].total_s = s.experiment.duration.seconds();
  }
  std::optional<ProgressBoard> board;
  if (progress != nullptr) board.emplace(*progress, states);

  std::vector<std::optional<ExperimentResult>> results(n);
  std::vector<std::exception_ptr> errors(n);
  std::atomic<unsigned> next{0};
  std::atomic<bool> failed{false};
  auto work = [&] {
    // Replicates are taken in order, so every one below a failed one has been started.
    while (!failed.load()) {
      const unsigned i = next.fetch_add(1);
      if (i >= n) return;
      try {
        std::optional<ReplicateSink> sink;
        if (board) sink.emplace(*board, i);
        ExperimentResult r = s.experiment.spec->make()->run(scenarios[i], sink ? &*sink : nullptr);
        if (board) board->done(i, Replicate{scenarios[i].seed, r.run});
        results[i] = std::move(r);
      } catch (...) {
        errors[i] = std::current_exception();
        failed.store(true);
      }
    }
  };
  const unsigned threads = std::clamp(jobs, 1U, n);
  if (threads == 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (unsigned t = 0; t < threads; ++t) pool.emplace_back(work);
    for (std::thread& t : pool) t.join();
  }
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }

  ExperimentResult out = std::move(*results[0]);
  out.aggregate = s.experiment.aggregate;
  out.replicates.reserve(n);
  out.replicates.push_back(Replicate{scenarios[0].seed, out.run});
  for (unsigned i = 1; i < n; ++i) {
    out.replicates.push_back(Replicate{scenarios[i].seed, std::move(results[i]->run)});
  }
  return out;
}

}  // namespace memvirt
