#include "core/compose.hpp"

#include <fmt/format.h>

#include <filesystem>

namespace memvirt {
namespace {

namespace fs = std::filesystem;

struct Layer {
  std::string file;  // as named: on the command line, or the base beside the file naming it
  YAML::Node tree;
};

// Where two names of a file are the same file.
std::string identity(const std::string& file) {
  std::error_code ec;
  const fs::path p = fs::weakly_canonical(fs::path(file), ec);
  return ec ? fs::path(file).lexically_normal().string() : p.string();
}

// The layer's keys but `base` (and `name`, for a base): the values it writes.
YAML::Node values_of(const YAML::Node& tree, bool is_base) {
  YAML::Node out(YAML::NodeType::Map);
  for (const auto& kv : tree) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
    if (key == "base" || (is_base && key == "name")) continue;
    out.force_insert(kv.first, kv.second);
  }
  return out;
}

}  // namespace

YAML::Node compose_file(const std::string& file, const std::vector<std::string>& overrides,
                        ParamContext& ctx, const std::vector<OverrideLayer>& layers) {
  // The chain, from the file named down to the last base.
  std::vector<Layer> chain{{file, load_yaml_file(file)}};
  std::vector<std::string> seen{identity(file)};
  while (true) {
    const Layer& top = chain.back();
    const YAML::Node& tree = top.tree;  // read-only: yaml-cpp's [] would write
    const YAML::Node base = tree["base"];
    if (!base) break;
    const int line = base.Mark().line + 1;
    if (!base.IsScalar() || base.Scalar().empty()) {
      throw InputError(SourcePlace{top.file, line, "base"}, "expected the name of a file");
    }
    const fs::path name(base.Scalar());
    const std::string next =
        name.is_absolute() ? name.string()
                           : (fs::path(top.file).parent_path() / name).lexically_normal().string();
    const std::string id = identity(next);
    for (std::size_t i = 0; i < seen.size(); ++i) {
      if (seen[i] != id) continue;
      std::string cycle;
      for (std::size_t j = i; j < chain.size(); ++j) cycle += chain[j].file + " -> ";
      throw InputError(SourcePlace{top.file, line, "base"},
                       fmt::format("bases form a cycle: {}{}", cycle, next));
    }
    if (!fs::exists(next)) {
      throw InputError(SourcePlace{top.file, line, "base"},
                       fmt::format("base file '{}' not found", next));
    }
    seen.push_back(id);
    chain.push_back(Layer{next, load_yaml_file(next)});
  }

  YAML::Node root(YAML::NodeType::Map);
  ctx.set_origin("", file, chain.front().tree.Mark().line + 1);
  for (std::size_t i = chain.size(); i-- > 0;) {
    merge_layer(root, values_of(chain[i].tree, i > 0), chain[i].file, ctx);
  }
  for (const OverrideLayer& layer : layers) merge_layer(root, layer.tree, layer.file, ctx);
  apply_overrides(root, overrides, ctx);
  return root;
}

ScenarioTree load_scenario_tree(const std::string& file, const std::vector<std::string>& overrides,
                                const std::string& kind, const std::vector<OverrideLayer>& layers) {
  auto ctx = std::make_shared<ParamContext>(file);
  YAML::Node root = compose_file(file, overrides, *ctx, layers);
  ScenarioTree t{root, ctx, Params(root, "", ctx), "", "", 1};
  if (!kind.empty()) t.params.choice("kind", kind, {kind}, "scenario kind");
  t.name = t.params.string("name", fs::path(file).stem().string(), "scenario name");
  t.description = t.params.string("description", "", "what the scenario reproduces");
  t.seed =
      static_cast<std::uint64_t>(t.params.integer("seed", 1, "seed of every random stream", 0));
  return t;
}

}  // namespace memvirt
