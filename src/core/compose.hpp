// Scenario files that compose. A file may say `base: other.yaml` (relative to the file that
// says it): its tree is then the base's with this file's values on top, by the rules of
// merge_layer (core/params.hpp). Bases chain. `base` is not part of the tree, and `name` is
// not inherited: only the file named on the command line gives it.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/params.hpp"

namespace memvirt {

// Values that a file of another kind writes onto a scenario (a sweep's `set:` and the values of
// its axes): a map merged by merge_layer's rules, like a file of the chain, so that each value
// keeps its place: an error in it names `file` and the value's line, not the command line.
struct OverrideLayer {
  std::string file;
  YAML::Node tree;
};

// Loads `file`, the chain of its bases, then `layers` in order and the "key.path=value"
// overrides on top, and returns the composed tree; `ctx` learns which file (and line) wrote
// each value. Throws InputError: a file that cannot be read, a base that is missing (naming
// the line that names it), a chain that comes back to a file it passed (naming the files), a
// bad key path.
YAML::Node compose_file(const std::string& file, const std::vector<std::string>& overrides,
                        ParamContext& ctx, const std::vector<OverrideLayer>& layers = {});

// What every scenario loader starts with: the composed tree, its context, a view of it and
// the keys every scenario has, read in this order (so they lead the effective configuration).
struct ScenarioTree {
  YAML::Node root;
  std::shared_ptr<ParamContext> ctx;
  Params params;     // over root
  std::string name;  // default: the stem of the file named
  std::string description;
  std::uint64_t seed = 1;
};
// `kind`, when not empty, is the value the key `kind` must have, read before the others.
ScenarioTree load_scenario_tree(const std::string& file, const std::vector<std::string>& overrides,
                                const std::string& kind = "",
                                const std::vector<OverrideLayer>& layers = {});

}  // namespace memvirt
