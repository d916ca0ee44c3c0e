// A sweep's progress on stderr: on a terminal, one line redrawn in place (runs done, running,
// waiting for memory, the ETA); a line for each run as it finishes, on a terminal or not.
#pragma once

#include <cstdio>

#include "sweep/runner.hpp"

namespace memvirt::sweep {

class TerminalSweepProgress final : public SweepProgress {
 public:
  // `bar`: redraw the line (stderr is a terminal and the user did not ask for quiet);
  // `lines`: print a line per finished run.
  TerminalSweepProgress(bool bar, bool lines) : bar_(bar), lines_(lines) {}
  void update(const SweepBoard& board) override;
  void run_done(const PlannedRun& run, double wall_s, const std::string& error) override;
  // Clears the redrawn line.
  void finish();

 private:
  bool bar_;
  bool lines_;
  SweepBoard last_;
};

}  // namespace memvirt::sweep
