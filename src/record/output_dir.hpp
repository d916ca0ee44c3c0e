// An output folder and the time-series writer every run uses (the simulator, the lab, the
// translation experiments, bench dedup).
#pragma once

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <functional>
#include <ostream>
#include <string>

#include "core/stats.hpp"

namespace memvirt {

// Created on construction. Each file is written whole or not at all: `fill` writes it to a
// temporary file beside it, which is renamed over `name` only once every byte is written,
// so an interrupted run or a full disk never leaves a file that looks complete. A write
// that fails throws an InputError naming the path and the reason.
class OutputDir {
 public:
  explicit OutputDir(std::string dir);
  void write(const std::string& name, const std::function<void(std::ostream&)>& fill) const;
  // config.yaml: the effective configuration, itself a scenario that reproduces the run
  // (config_yaml_text).
  void write_config(const YAML::Node& effective, const std::string& scenario_file) const;
  [[nodiscard]] const std::string& path() const { return dir_; }

 private:
  std::string dir_;
};

// The bytes of config.yaml: a comment naming `scenario_file`, then the effective
// configuration. The same inputs give the same bytes, so a hash of them identifies a run's
// configuration (a sweep resumes by it).
std::string config_yaml_text(const YAML::Node& effective, const std::string& scenario_file);

// timeseries.csv: a header of column names, then one row per sample, six significant digits.
void write_timeseries_csv(const TimeSeries& series, std::ostream& out);

}  // namespace memvirt
