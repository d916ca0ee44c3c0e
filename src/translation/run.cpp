#include "translation/run.hpp"

#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "core/compose.hpp"
#include "core/error.hpp"
#include "record/output_dir.hpp"
#include "translation/experiment.hpp"
#include "translation/report.hpp"

namespace memvirt {

bool is_translation_scenario(const std::string& file) {
  try {
    ParamContext ctx(file);
    const YAML::Node root = compose_file(file, {}, ctx);
    return root.IsMap() && root["kind"] && root["kind"].IsScalar() &&
           root["kind"].Scalar() == "translation";
  } catch (const std::exception&) {
    return false;
  }
}

void write_translation_outputs(const std::string& out_dir,
                               const translation::TranslationScenario& s,
                               const std::vector<translation::WorkloadResult>& results) {
  using namespace translation;
  const OutputDir out(out_dir);
  out.write_config(s.effective, s.file);
  out.write("results.json",
            [&](std::ostream& f) { f << translation_results_json(s, results).dump(2) << "\n"; });
  out.write("results.csv", [&](std::ostream& f) { write_translation_csv(results, f); });
}

int run_translation_scenario(const std::string& file, const std::vector<std::string>& overrides,
                             std::string out_dir, bool quiet) {
  namespace fs = std::filesystem;
  using namespace translation;
  const TranslationScenario s = load_translation_scenario(file, overrides);
  if (out_dir.empty()) out_dir = (fs::path("out") / s.name).string();
  const bool show = !quiet && isatty(STDERR_FILENO) != 0;
  const auto results = run_translation(s, [&](std::size_t i, const std::string& name) {
    if (show) fmt::print(stderr, "  workload {}/{}: {}\n", i + 1, s.workloads.size(), name);
  });
  write_translation_outputs(out_dir, s, results);
  print_translation_summary(std::cout, s, results);
  fmt::print("  results in {}/ (results.json, results.csv, config.yaml)\n", out_dir);
  return 0;
}

}  // namespace memvirt
