// Writers for `memvirt bench dedup`: the terminal report, results.json and timeline.csv.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "bench_dedup/dedup_bench.hpp"

namespace memvirt {

// The targets the report checks (issue: seed 000 in full).
inline constexpr double kEfficiencyTarget = 10.0;     // PageONE vs KSM pages per CPU-second
inline constexpr double kSteadyTimeTolerance = 0.25;  // model vs real KSM time to steady state

void print_dedup_report(std::ostream& out, const DedupBenchResult& r);
nlohmann::json dedup_json(const DedupBenchResult& r);
// Writes results.json and timeline.csv into `dir` (created if missing).
void write_dedup_outputs(const std::string& dir, const DedupBenchResult& r);

}  // namespace memvirt
