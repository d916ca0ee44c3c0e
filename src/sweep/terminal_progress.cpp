#include "sweep/terminal_progress.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "core/types.hpp"
#include "core/units.hpp"

namespace memvirt::sweep {

void TerminalSweepProgress::update(const SweepBoard& board) {
  last_ = board;
  if (!bar_) return;
  const double frac = std::clamp(board.work_done, 0.0, 1.0);
  const double eta = frac > 0 ? board.elapsed_s * (1 - frac) / frac : 0;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(frac * kWidth);
  std::string state = fmt::format("{} running", board.running);
  if (board.waiting_for_memory > 0) {
    state += fmt::format(", {} waiting for memory", board.waiting_for_memory);
  }
  if (board.failed > 0) state += fmt::format(", {} failed", board.failed);
  fmt::print(stderr, "\r\033[K  sweep [{}{}] {}/{} runs done ({}{})  ETA {}",
             std::string(filled, '#'), std::string(kWidth - filled, '.'),
             board.finished + board.done, board.runs, state,
             board.finished > 0 ? fmt::format(", {} from before", board.finished) : "",
             frac > 0 ? format_duration(Duration::seconds(eta)) : std::string("-"));
  std::fflush(stderr);
}

void TerminalSweepProgress::run_done(const PlannedRun& run, double wall_s,
                                     const std::string& error) {
  if (!lines_ && error.empty()) return;
  const std::string clear = bar_ ? "\r\033[K" : "";
  if (error.empty()) {
    fmt::print(stderr, "{}  {} done in {}\n", clear, run.folder,
               format_duration(Duration::seconds(wall_s)));
  } else {
    fmt::print(stderr, "{}  {} failed: {}\n", clear, run.folder, error);
  }
  update(last_);
}

void TerminalSweepProgress::finish() {
  if (bar_) fmt::print(stderr, "\r\033[K");
}

}  // namespace memvirt::sweep
