#include "record/output_dir.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

void OutputDir::write(const std::string& name,
                      const std::function<void(std::ostream&)>& fill) const {
  const std::filesystem::path path = std::filesystem::path(dir_) / name;
  const std::filesystem::path temp =
      std::filesystem::path(dir_) / fmt::format(".{}.partial-{}", name, ::getpid());
  const auto fail = [&](const std::string& why) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    throw InputError(SourcePlace{path.string(), 0, ""}, "cannot write: " + why);
  };
  {
    std::ofstream f(temp);
    if (!f) fail(std::strerror(errno));
    try {
      fill(f);
    } catch (...) {
      f.close();
      std::error_code ignored;
      std::filesystem::remove(temp, ignored);
      throw;
    }
    f.flush();
    if (!f) fail(errno != 0 ? std::strerror(errno) : "the write failed (is the disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) fail(ec.message());
}

std::string config_yaml_text(const YAML::Node& effective, const std::string& scenario_file) {
  YAML::Emitter e;
  e << effective;
  return fmt::format("# Effective configuration of {} (defaults filled in)\n{}\n", scenario_file,
                     e.c_str());
}

void OutputDir::write_config(const YAML::Node& effective, const std::string& scenario_file) const {
  const std::string text = config_yaml_text(effective, scenario_file);
  write("config.yaml", [&](std::ostream& f) { f << text; });
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
