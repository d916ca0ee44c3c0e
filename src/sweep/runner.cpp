#include "sweep/runner.hpp"

#include <fmt/format.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <list>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "record/output_dir.hpp"
#include "report/report.hpp"
#include "scenario/experiment.hpp"
#include "translation/run.hpp"

namespace memvirt::sweep {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::optional<std::string> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The pool's state, shared by the coordinating thread and the runs' threads under one mutex.
class Pool {
 public:
  Pool(const SweepPlan& plan, const PoolOptions& opt) : plan_(plan), opt_(opt) {}

  PoolOutcome run() {
    PoolOutcome out;
    for (std::size_t i = 0; i < plan_.runs.size(); ++i) {
      if (run_is_done((fs::path(opt_.out_dir) / plan_.runs[i].folder).string(), plan_.runs[i])) {
        out.resumed.push_back(i);
      } else {
        pending_.push_back(i);
      }
    }
    board_.runs = plan_.runs.size();
    board_.finished = out.resumed.size();
    to_run_ = pending_.size();
    start_ = Clock::now();
    std::map<std::size_t, std::thread> threads;
    {
      std::unique_lock lock(mutex_);
      while (true) {
        // A finished run's thread is joined at once: an exited thread keeps its stack until
        // it is, and a sweep may have thousands of runs.
        for (const std::size_t i : exited_) {
          threads.at(i).join();
          threads.erase(i);
        }
        exited_.clear();
        if (!failed_) admit(threads, out);
        publish();
        if (running_.empty() && (pending_.empty() || failed_)) break;
        changed_.wait(lock);
      }
    }
    for (auto& [i, t] : threads) t.join();
    out.ran = std::move(ran_);
    out.failed = std::move(failures_);
    return out;
  }

 private:
  struct Running {
    std::optional<std::uint64_t> bytes;
    double fraction = 0;
  };

  // Whether run `i` may start beside the running ones (mutex held).
  [[nodiscard]] bool fits(std::size_t i) const {
    if (running_.empty()) return true;
    const std::optional<std::uint64_t>& bytes = plan_.runs[i].memory.bytes;
    if (!bytes) return false;
    if (opt_.memory_budget == 0) return true;
    std::uint64_t used = *bytes;
    for (const auto& [index, r] : running_) {
      if (!r.bytes) return false;
      used += *r.bytes;
    }
    return used <= opt_.memory_budget;
  }

  // Starts the pending runs that fit, in order (mutex held).
  void admit(std::map<std::size_t, std::thread>& threads, PoolOutcome& out) {
    const unsigned jobs = std::max(1U, opt_.jobs);
    for (auto it = pending_.begin(); it != pending_.end() && running_.size() < jobs;) {
      if (!fits(*it)) {
        ++it;
        continue;
      }
      const std::size_t i = *it;
      it = pending_.erase(it);
      running_[i] = Running{plan_.runs[i].memory.bytes, 0};
      out.peak_running = std::max(out.peak_running, running_.size());
      threads.emplace(i, std::thread([this, i] { work(i); }));
    }
  }

  // The board, to the progress sink (mutex held).
  void publish() {
    if (opt_.progress == nullptr) return;
    board_.running = running_.size();
    const bool room = running_.size() < std::max(1U, opt_.jobs);
    board_.waiting_for_memory = room && !failed_ ? pending_.size() : 0;
    double work = static_cast<double>(board_.done + board_.failed);
    for (const auto& [index, r] : running_) work += r.fraction;
    board_.work_done = to_run_ > 0 ? work / static_cast<double>(to_run_) : 1;
    board_.elapsed_s = std::chrono::duration<double>(Clock::now() - start_).count();
    opt_.progress->update(board_);
  }

  void advanced(std::size_t i, double fraction) {
    const std::lock_guard lock(mutex_);
    running_[i].fraction = std::clamp(fraction, 0.0, 1.0);
    publish();
  }

  // What one run's experiment reports: its share of simulated time (a density search's
  // trials each start again from nothing).
  class Sink final : public ExperimentProgress {
   public:
    Sink(Pool& pool, std::size_t index) : pool_(pool), index_(index) {}
    void begin_trial(unsigned /*vms*/) override {}
    void end_trial(const Trial& /*t*/) override {}
    void update(double simulated_s, double total_s) override {
      pool_.advanced(index_, total_s > 0 ? simulated_s / total_s : 0);
    }

   private:
    Pool& pool_;
    std::size_t index_;
  };

  void work(std::size_t i) {
    const PlannedRun& run = plan_.runs[i];
    const auto t0 = Clock::now();
    std::string error;
    try {
      execute(i, run);
    } catch (const std::exception& e) {
      error = e.what();
    }
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    const std::lock_guard lock(mutex_);
    running_.erase(i);
    if (error.empty()) {
      ++board_.done;
      ran_.push_back(i);
    } else {
      ++board_.failed;
      failed_ = true;
      failures_.emplace_back(i, error);
    }
    if (opt_.progress != nullptr) opt_.progress->run_done(run, wall, error);
    exited_.push_back(i);
    changed_.notify_all();
  }

  void execute(std::size_t i, const PlannedRun& run) {
    const fs::path final = fs::path(opt_.out_dir) / run.folder;
    const fs::path temp =
        final.parent_path() / fmt::format(".{}.partial", final.filename().string());
    fs::create_directories(final.parent_path());
    fs::remove_all(temp);
    try {
      write_run(i, run, temp);
    } catch (...) {
      std::error_code ignored;
      fs::remove_all(temp, ignored);
      throw;
    }
    fs::remove_all(final);
    fs::rename(temp, final);
  }

  // The run's files, whole, in `temp`.
  void write_run(std::size_t i, const PlannedRun& run, const fs::path& temp) {
    if (const auto* s = std::get_if<Scenario>(run.scenario.get())) {
      Sink sink(*this, i);
      // One thread per run: the pool runs the runs side by side.
      const ExperimentResult r = run_experiment(*s, &sink, 1);
      write_outputs(temp.string(), *s, r);
    } else {
      const auto& t = std::get<translation::TranslationScenario>(*run.scenario);
      const auto results =
          translation::run_translation(t, [&](std::size_t w, const std::string& /*name*/) {
            advanced(i, static_cast<double>(w) / static_cast<double>(t.workloads.size()));
          });
      write_translation_outputs(temp.string(), t, results);
    }
    // The planned bytes, whose hash a rerun compares: they name the sweep's point.
    OutputDir(temp.string()).write("config.yaml", [&](std::ostream& f) { f << run.config_text; });
  }

  const SweepPlan& plan_;
  const PoolOptions& opt_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::list<std::size_t> pending_;
  std::map<std::size_t, Running> running_;
  std::vector<std::size_t> exited_;  // runs whose threads are ending, to be joined
  std::vector<std::size_t> ran_;
  std::vector<std::pair<std::size_t, std::string>> failures_;
  bool failed_ = false;
  std::size_t to_run_ = 0;
  SweepBoard board_;
  Clock::time_point start_;
};

}  // namespace

bool run_is_done(const std::string& dir, const PlannedRun& run) {
  const std::optional<std::string> config = read_file(fs::path(dir) / "config.yaml");
  if (!config || content_hash(*config) != run.config_hash) return false;
  const std::optional<std::string> results = read_file(fs::path(dir) / "results.json");
  return results && nlohmann::json::accept(*results);
}

PoolOutcome run_pool(const SweepPlan& plan, const PoolOptions& opt) {
  fs::create_directories(opt.out_dir);
  return Pool(plan, opt).run();
}

}  // namespace memvirt::sweep
