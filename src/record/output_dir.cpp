#include "record/output_dir.hpp"

#include <fmt/format.h>

#include <filesystem>

#include "core/error.hpp"

namespace memvirt {

OutputDir::OutputDir(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    throw InputError(SourcePlace{dir_, 0, "-o"}, "cannot create output folder: " + ec.message());
  }
}

std::ofstream OutputDir::open(const std::string& name) const {
  const std::string path = (std::filesystem::path(dir_) / name).string();
  std::ofstream f(path);
  if (!f) throw InputError(SourcePlace{path, 0, ""}, "cannot write");
  return f;
}

void OutputDir::write_config(const YAML::Node& effective, const std::string& scenario_file) const {
  auto f = open("config.yaml");
  YAML::Emitter e;
  e << effective;
  f << "# Effective configuration of " << scenario_file << " (defaults filled in)\n"
    << e.c_str() << "\n";
}

void write_timeseries_csv(const TimeSeries& series, std::ostream& out) {
  for (std::size_t i = 0; i < series.columns().size(); ++i) {
    out << (i ? "," : "") << series.columns()[i];
  }
  out << "\n";
  for (const auto& row : series.rows()) {
    for (std::size_t i = 0; i < row.size(); ++i)
      out << (i ? "," : "") << fmt::format("{:.6g}", row[i]);
    out << "\n";
  }
}

}  // namespace memvirt
