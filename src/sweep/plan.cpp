#include "sweep/plan.hpp"

#include <fmt/format.h>
#include <xxhash.h>

#include <map>

#include "record/output_dir.hpp"
#include "scenario/replicates.hpp"
#include "translation/run.hpp"

namespace memvirt::sweep {
namespace {

// A folder name from a label: letters, digits and . _ , = + - kept, anything else '-'.
std::string folder_safe(const std::string& text) {
  std::string out;
  for (const char c : text) {
    const bool keep = std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' ||
                      c == ',' || c == '=' || c == '+' || c == '-';
    out += keep ? c : '-';
  }
  if (out.empty() || out.front() == '.') out.insert(out.begin(), '_');
  return out;
}

}  // namespace

std::vector<Point> expand_points(const SweepSpec& s) {
  std::vector<Point> points;
  std::vector<std::size_t> at(s.axes.size(), 0);
  std::map<std::string, std::size_t> folders;
  while (true) {
    Point p;
    p.value = at;
    p.scenario = s.scenario;
    p.scenario_path = s.scenario_path;
    for (std::size_t a = 0; a < s.axes.size(); ++a) {
      const Axis& axis = s.axes[a];
      p.folder += (p.folder.empty() ? "" : ",") + axis.name + "=" + axis.labels[at[a]];
      for (const AxisEntry& e : axis.entries) {
        if (e.key == kScenarioKey) {
          p.scenario = e.texts[at[a]];
          p.scenario_path = scenario_beside(s.file, p.scenario);
        }
      }
    }
    p.folder = s.axes.empty() ? "default" : folder_safe(p.folder);
    if (const auto [it, fresh] = folders.emplace(p.folder, points.size()); !fresh) {
      throw InputError(SourcePlace{s.file, 0, "axes"},
                       fmt::format("two points get the folder '{}': give the axes labels that "
                                   "differ in letters or digits",
                                   p.folder));
    }
    points.push_back(std::move(p));
    // The next combination, the last axis fastest.
    std::size_t a = s.axes.size();
    while (a > 0) {
      --a;
      if (++at[a] < s.axes[a].size()) break;
      at[a] = 0;
      if (a == 0) return points;
    }
    if (s.axes.empty()) return points;
  }
}

std::vector<OverrideLayer> point_layers(const SweepSpec& s, const Point& p) {
  std::vector<OverrideLayer> layers = s.set;
  YAML::Node values(YAML::NodeType::Map);
  for (std::size_t a = 0; a < s.axes.size(); ++a) {
    for (const AxisEntry& e : s.axes[a].entries) {
      if (e.key.empty() || e.key == kScenarioKey) continue;
      // The sweep file's own key and value nodes, so the composed tree keeps their lines.
      values.force_insert(e.key_node, e.values[p.value[a]]);
    }
  }
  if (values.size() > 0) layers.push_back(OverrideLayer{s.file, values});
  return layers;
}

std::string content_hash(const std::string& bytes) {
  return fmt::format("{:016x}", XXH3_64bits(bytes.data(), bytes.size()));
}

SweepPlan plan_sweep(const SweepSpec& s, const std::vector<ScenarioExtension>& extensions) {
  SweepPlan plan;
  plan.points = expand_points(s);
  for (std::size_t i = 0; i < plan.points.size(); ++i) {
    const Point& point = plan.points[i];
    const std::vector<OverrideLayer> layers = point_layers(s, point);
    const bool translation = is_translation_scenario(point.scenario_path);
    auto load = [&](const std::vector<OverrideLayer>& with) -> std::shared_ptr<LoadedScenario> {
      if (translation) {
        return std::make_shared<LoadedScenario>(
            translation::load_translation_scenario(point.scenario_path, {}, with));
      }
      return std::make_shared<LoadedScenario>(
          load_scenario(point.scenario_path, {}, extensions, with));
    };
    std::shared_ptr<LoadedScenario> first = load(layers);
    const std::uint64_t base_seed = std::visit([](const auto& sc) { return sc.seed; },
                                               static_cast<const LoadedScenario&>(*first));
    if (const auto* sim = std::get_if<Scenario>(first.get());
        sim != nullptr && s.seeds > 1 && sim->experiment.replicates > 1) {
      throw InputError(s.seeds_place,
                       fmt::format("{} runs {} replicates itself (experiment.replicates); the "
                                   "sweep's seeds run them as points: add "
                                   "experiment.replicates: 1 under set:",
                                   point.scenario, sim->experiment.replicates));
    }
    for (unsigned r = 0; r < s.seeds; ++r) {
      PlannedRun run;
      run.point = i;
      run.replicate = r;
      run.seed = replicate_seed(base_seed, r);
      if (r == 0) {
        run.scenario = first;
      } else {
        // The seed as one more layer, so that config.yaml names it: the run is
        // `memvirt run <base> -p seed=<seed>` with the point's values, as replicate r of
        // experiment.replicates is.
        std::vector<OverrideLayer> with = layers;
        YAML::Node seed(YAML::NodeType::Map);
        seed["seed"] = std::to_string(run.seed);
        with.push_back(OverrideLayer{s.file, seed});
        run.scenario = load(with);
      }
      run.folder = s.seeds > 1 ? fmt::format("{}/seed-{}", point.folder, r) : point.folder;
      const YAML::Node& effective = std::visit(
          [](const auto& sc) -> const YAML::Node& { return sc.effective; }, *run.scenario);
      run.config_text = config_yaml_text(
          effective, fmt::format("{}, point {} of sweep {}", point.scenario, run.folder, s.name));
      run.config_hash = content_hash(run.config_text);
      run.memory = std::visit([](const auto& sc) { return estimate_memory(sc); }, *run.scenario);
      plan.runs.push_back(std::move(run));
    }
  }
  return plan;
}

}  // namespace memvirt::sweep
