// A sweep's points and runs, every one loaded and validated before any runs: the cartesian
// product of the axes (a zipped axis gives its lists' values together), each point with each
// of the sweep's seeds. A run's scenario is the point's base file with the sweep's `set:` and
// the point's values merged on as layers (core/compose.hpp), the way -p overrides are, so its
// errors name the sweep file and the line of the value.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "scenario/scenario.hpp"
#include "sweep/memory_estimate.hpp"
#include "sweep/sweep_file.hpp"
#include "translation/experiment.hpp"

namespace memvirt::sweep {

struct Point {
  std::vector<std::size_t> value;  // per axis: the index of its value
  std::string folder;              // "reclaim_period=5s,merge_period=200s"
  std::string scenario;            // the base scenario, as written in the sweep file
  std::string scenario_path;       // ... and found
};

// The cartesian product of the axes, the first axis varying slowest; one point of no values
// when there are no axes. Throws InputError when two points would share a folder.
std::vector<Point> expand_points(const SweepSpec& s);

// The values a point writes onto its scenario: `set:`, then each axis's keys in order.
std::vector<OverrideLayer> point_layers(const SweepSpec& s, const Point& p);

using LoadedScenario = std::variant<Scenario, translation::TranslationScenario>;

struct PlannedRun {
  std::size_t point = 0;
  unsigned replicate = 0;  // 0 .. seeds-1
  std::uint64_t seed = 0;
  std::string folder;  // relative to the sweep's output folder
  std::string config_text;
  std::string config_hash;  // of config_text: how a finished run is recognised
  MemoryEstimate memory;
  std::shared_ptr<const LoadedScenario> scenario;
};

struct SweepPlan {
  std::vector<Point> points;
  std::vector<PlannedRun> runs;  // point by point, each point's seeds in order
};

// Loads every run. Throws InputError for the first point whose scenario does not load, naming
// the sweep file's line where the point's value came from it.
SweepPlan plan_sweep(const SweepSpec& s, const std::vector<ScenarioExtension>& extensions = {});

// The hash config_hash holds: 16 hex digits of XXH3 over the bytes.
std::string content_hash(const std::string& bytes);

}  // namespace memvirt::sweep
