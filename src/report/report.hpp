// Writers: results.json, timeseries.csv, the effective configuration, and the terminal
// summary. Models never print; these format what the models counted.
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "record/output_dir.hpp"
#include "scenario/experiment.hpp"
#include "scenario/scenario.hpp"

namespace memvirt {

// Everything deterministic about a run (no wall-clock values): same scenario and seed give
// byte-identical output.
nlohmann::json results_json(const Scenario& s, const ExperimentResult& r);

// Writes config.yaml, results.json and timeseries.csv into `dir` (created if missing).
void write_outputs(const std::string& dir, const Scenario& s, const ExperimentResult& r);

// The human summary printed after a run.
void print_summary(std::ostream& out, const Scenario& s, const ExperimentResult& r);

}  // namespace memvirt
