// Writers: results.json, timeseries.csv, the effective configuration, and the terminal
// summary. Models never print; these format what the models counted.
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "scenario/experiment.hpp"
#include "scenario/scenario.hpp"

namespace memvirt {

// Everything deterministic about a run (no wall-clock values): same scenario and seed give
// byte-identical output.
nlohmann::json results_json(const Scenario& s, const ExperimentResult& r);

void write_timeseries_csv(const TimeSeries& series, std::ostream& out);

// An output folder: created on construction; files in it open for writing or throw an
// InputError naming the path. Writes config.yaml from an effective configuration.
class OutputDir {
 public:
  explicit OutputDir(std::string dir);
  [[nodiscard]] std::ofstream open(const std::string& name) const;
  void write_config(const YAML::Node& effective, const std::string& scenario_file) const;
  [[nodiscard]] const std::string& path() const { return dir_; }

 private:
  std::string dir_;
};

// Writes config.yaml, results.json and timeseries.csv into `dir` (created if missing).
void write_outputs(const std::string& dir, const Scenario& s, const ExperimentResult& r);

// The human summary printed after a run.
void print_summary(std::ostream& out, const Scenario& s, const ExperimentResult& r);

}  // namespace memvirt
