// An output folder and the time-series writer every run uses (the simulator, the lab, the
// translation experiments, bench dedup).
#pragma once

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <ostream>
#include <string>

#include "core/stats.hpp"

namespace memvirt {

// Created on construction; files in it open for writing or throw an InputError naming the
// path.
class OutputDir {
 public:
  explicit OutputDir(std::string dir);
  [[nodiscard]] std::ofstream open(const std::string& name) const;
  // config.yaml: the effective configuration, itself a scenario that reproduces the run.
  void write_config(const YAML::Node& effective, const std::string& scenario_file) const;
  [[nodiscard]] const std::string& path() const { return dir_; }

 private:
  std::string dir_;
};

// timeseries.csv: a header of column names, then one row per sample, six significant digits.
void write_timeseries_csv(const TimeSeries& series, std::ostream& out);

}  // namespace memvirt
