// `memvirt sweep`: a sweep file's points run, resumed where an earlier invocation left off,
// and tabulated. The parts: sweep_file (reading), plan (points and runs, all loaded before any
// runs), runner (the local pool, admission by memory, resume), tables (sweep.csv, summary.csv,
// Markdown tables and gnuplot plots).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sweep/plan.hpp"
#include "sweep/runner.hpp"
#include "sweep/sweep_file.hpp"
#include "sweep/tables.hpp"

namespace memvirt::sweep {

struct SweepOptions {
  std::string out_dir;  // empty: out/<sweep name>
  unsigned jobs = 1;
  std::uint64_t memory_budget = 0;  // bytes; 0: no limit
  SweepProgress* progress = nullptr;
  std::vector<ScenarioExtension> extensions;  // sections of the scenarios a layer above reads
};

struct SweepResult {
  SweepSpec spec;
  SweepPlan plan;
  std::string out_dir;
  PoolOutcome pool;
  TablesOutcome tables;
};

// Reads, plans and runs `file` into opt.out_dir, then writes its tables. Throws InputError,
// before any run starts, for anything wrong in the sweep file or in any point's scenario, and
// when another sweep is writing the same folder. A run that fails is in result.pool.failed;
// the tables are written all the same, from what is done.
SweepResult run_sweep(const std::string& file, const SweepOptions& opt);

}  // namespace memvirt::sweep
