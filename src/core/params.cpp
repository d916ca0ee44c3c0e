#include "core/params.hpp"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <type_traits>

#include "core/units.hpp"

namespace memvirt {

namespace {

// True when `prefix` is `path` or one of its leading parts ("a" of "a.b" and of "a[0]").
bool is_path_prefix(const std::string& prefix, const std::string& path) {
  if (prefix.empty()) return true;
  if (path.size() < prefix.size() || path.compare(0, prefix.size(), prefix) != 0) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '.' || path[prefix.size()] == '[';
}

}  // namespace

void ParamContext::set_origin(const std::string& path, const std::string& file, int line) {
  origins_[path] = Origin{file, line};
}

void ParamContext::clear_origins_under(const std::string& path) {
  for (auto it = origins_.lower_bound(path); it != origins_.end();) {
    if (!path.empty() && it->first.compare(0, path.size(), path) != 0) break;
    if (it->first != path && is_path_prefix(path, it->first)) {
      it = origins_.erase(it);
    } else {
      ++it;
    }
  }
}

const ParamContext::Origin* ParamContext::origin_of(const std::string& path) const {
  std::string prefix = path;
  while (true) {
    if (const auto it = origins_.find(prefix); it != origins_.end()) return &it->second;
    if (prefix.empty()) return nullptr;
    const auto cut = prefix.find_last_of(".[");
    prefix.resize(cut == std::string::npos ? 0 : cut);
  }
}

const std::string& ParamContext::file_of(const std::string& path) const {
  const Origin* o = origin_of(path);
  return o != nullptr ? o->file : file_;
}

const std::string& ParamContext::anchor_of(const std::string& path) const {
  const std::string& file = file_of(path);
  return file == kCommandLine ? file_ : file;
}

std::shared_ptr<ParamContext> ParamContext::sibling() const {
  auto ctx = std::make_shared<ParamContext>(file_);
  ctx->origins_ = origins_;
  return ctx;
}

SourcePlace ParamContext::place(const std::string& path, const YAML::Node& node) const {
  const Origin* o = origin_of(path);
  const std::string& file = o != nullptr ? o->file : file_;
  if (file == kCommandLine) return SourcePlace{file, 0, path};
  int line = 0;
  if (node.IsDefined() && node.Mark().line >= 0) {
    line = node.Mark().line + 1;
  } else if (o != nullptr) {
    line = o->line;
  }
  return SourcePlace{file, line, path};
}

void ParamContext::record(const std::string& path, const YAML::Node& value,
                          const std::string& /*description*/) {
  read_.insert(path);
  // Build the nested map of the effective configuration. Sequence elements appear as
  // "name[3]" path segments and become sequences.
  YAML::Node cursor = effective_;
  std::size_t start = 0;
  std::vector<std::string> parts;
  while (true) {
    const std::size_t dot = path.find('.', start);
    parts.push_back(path.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  for (std::size_t i = 0; i < parts.size(); ++i) {
    std::string part = parts[i];
    std::optional<std::size_t> index;
    if (const auto bracket = part.find('['); bracket != std::string::npos) {
      index = std::stoul(part.substr(bracket + 1));
      part = part.substr(0, bracket);
    }
    const bool last = i + 1 == parts.size();
    if (index) {
      YAML::Node seq = cursor[part];
      if (!seq.IsSequence()) {
        seq = YAML::Node(YAML::NodeType::Sequence);
        cursor[part] = seq;
      }
      while (seq.size() <= *index) seq.push_back(YAML::Node(YAML::NodeType::Map));
      if (last) {
        seq[*index] = value;
        return;
      }
      cursor.reset(seq[*index]);
    } else {
      if (last) {
        cursor[part] = value;
        return;
      }
      YAML::Node next = cursor[part];
      if (!next.IsMap()) {
        next = YAML::Node(YAML::NodeType::Map);
        cursor[part] = next;
      }
      cursor.reset(next);
    }
  }
}

void ParamContext::check_node(const YAML::Node& node, const std::string& path) const {
  if (!path.empty() && was_read(path)) return;
  if (node.IsMap()) {
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      const std::string child = path.empty() ? key : path + "." + key;
      if (!was_read(child) && !kv.second.IsMap() && !kv.second.IsSequence()) {
        throw InputError(place(child, kv.first), "unknown key");
      }
      if (!was_read(child) && !was_read(child + "#")) {
        throw InputError(place(child, kv.first), "unknown key");
      }
      check_node(kv.second, child);
    }
  } else if (node.IsSequence()) {
    for (std::size_t i = 0; i < node.size(); ++i) {
      check_node(node[i], fmt::format("{}[{}]", path, i));
    }
  }
}

void ParamContext::check_all_read(const YAML::Node& root) const {
  check_node(root, "");
}

Params::Params(YAML::Node node, std::string path, std::shared_ptr<ParamContext> ctx)
    : node_(std::move(node)), path_(std::move(path)), ctx_(std::move(ctx)) {
  if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) {
    throw InputError(ctx_->place(path_, node_), "expected a map of keys");
  }
  // A section that exists counts as read as a container ("#"): its own keys are checked
  // one by one.
  if (!path_.empty()) ctx_->mark_read(path_ + "#");
}

std::string Params::key_path(const std::string& key) const {
  if (path_.empty()) return key;
  if (key.empty()) return path_;
  return path_ + "." + key;
}

void Params::fail(const std::string& key, const std::string& message) const {
  YAML::Node n = node_;
  if (!key.empty() && node_.IsMap() && node_[key]) n = node_[key];
  throw InputError(ctx_->place(key_path(key), n), message);
}

bool Params::has(const std::string& key) const {
  return node_.IsMap() && static_cast<bool>(node_[key]);
}

bool Params::has_scalar(const std::string& key) const {
  return has(key) && node_[key].IsScalar();
}

std::optional<YAML::Node> Params::lookup(const std::string& key) {
  if (!node_.IsMap()) return std::nullopt;
  YAML::Node n = node_[key];
  if (!n) return std::nullopt;
  return n;
}

std::string Params::scalar(const std::string& key, const YAML::Node& n) {
  if (!n.IsScalar()) fail(key, "expected a single value, found a map or list");
  return n.Scalar();
}

Bytes Params::bytes(const std::string& key, Bytes def, const std::string& description) {
  Bytes value = def;
  if (auto n = lookup(key)) {
    std::string why;
    auto parsed = parse_bytes(scalar(key, *n), &why);
    if (!parsed) fail(key, why);
    value = *parsed;
  }
  ctx_->record(key_path(key), YAML::Node(canonical_bytes(value)), description);
  return value;
}

Bytes Params::required_bytes(const std::string& key, const std::string& description) {
  if (!has(key)) fail("", fmt::format("missing required key '{}' ({})", key, description));
  return bytes(key, Bytes{0}, description);
}

Duration Params::duration(const std::string& key, Duration def, const std::string& description) {
  Duration value = def;
  if (auto n = lookup(key)) {
    std::string why;
    auto parsed = parse_duration(scalar(key, *n), &why);
    if (!parsed) fail(key, why);
    value = *parsed;
  }
  ctx_->record(key_path(key), YAML::Node(canonical_duration(value)), description);
  return value;
}

double Params::real(const std::string& key, double def, const std::string& description, double min,
                    double max) {
  double value = def;
  if (auto n = lookup(key)) {
    const std::string text = scalar(key, *n);
    try {
      std::size_t used = 0;
      value = std::stod(text, &used);
      if (used != text.size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      fail(key, fmt::format("'{}' is not a number", text));
    }
    if (!std::isfinite(value)) fail(key, fmt::format("'{}' is not finite", text));
  }
  if (value < min || value > max) {
    fail(key, fmt::format("{} is out of range [{}, {}]", value, min, max));
  }
  ctx_->record(key_path(key), YAML::Node(value), description);
  return value;
}

std::int64_t Params::integer(const std::string& key, std::int64_t def,
                             const std::string& description, std::int64_t min, std::int64_t max) {
  std::int64_t value = def;
  if (auto n = lookup(key)) {
    const std::string text = scalar(key, *n);
    try {
      std::size_t used = 0;
      value = std::stoll(text, &used);
      if (used != text.size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      fail(key, fmt::format("'{}' is not a whole number", text));
    }
  }
  if (value < min || value > max) {
    fail(key, fmt::format("{} is out of range [{}, {}]", value, min, max));
  }
  ctx_->record(key_path(key), YAML::Node(value), description);
  return value;
}

std::int64_t Params::required_integer(const std::string& key, const std::string& description,
                                      std::int64_t min, std::int64_t max) {
  if (!has(key)) fail("", fmt::format("missing required key '{}' ({})", key, description));
  return integer(key, 0, description, min, max);
}

bool Params::boolean(const std::string& key, bool def, const std::string& description) {
  bool value = def;
  if (auto n = lookup(key)) {
    const std::string text = scalar(key, *n);
    if (text == "true" || text == "yes" || text == "on") {
      value = true;
    } else if (text == "false" || text == "no" || text == "off") {
      value = false;
    } else {
      fail(key, fmt::format("'{}' is not true or false", text));
    }
  }
  ctx_->record(key_path(key), YAML::Node(value), description);
  return value;
}

std::string resolve_data_file(const std::string& anchor, const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path p(name);
  if (p.is_absolute()) return fs::exists(p) ? p.string() : std::string{};
  if (const fs::path beside = fs::path(anchor).parent_path() / p; fs::exists(beside)) {
    return beside.string();
  }
  if (fs::exists(p)) return p.string();
  if (const fs::path in_tree = fs::path(MEMVIRT_SOURCE_DIR) / p; fs::exists(in_tree)) {
    return in_tree.string();
  }
  return {};
}

std::string Params::data_file(const std::string& key, const std::string& def,
                              const std::string& description) {
  const std::string name = string(key, def, description);
  const std::string found = resolve_data_file(ctx_->anchor_of(key_path(key)), name);
  if (found.empty()) {
    fail(key, fmt::format("'{}' not found (beside the scenario, in the working directory or in "
                          "the source tree)",
                          name));
  }
  return found;
}

std::string Params::string(const std::string& key, const std::string& def,
                           const std::string& description) {
  std::string value = def;
  if (auto n = lookup(key)) value = scalar(key, *n);
  ctx_->record(key_path(key), YAML::Node(value), description);
  return value;
}

std::string Params::choice(const std::string& key, const std::string& def,
                           const std::vector<std::string>& choices,
                           const std::string& description) {
  std::string value = def;
  if (auto n = lookup(key)) value = scalar(key, *n);
  bool ok = false;
  for (const auto& c : choices) ok = ok || c == value;
  if (!ok) fail(key, fmt::format("'{}' is not one of: {}", value, fmt::join(choices, ", ")));
  ctx_->record(key_path(key), YAML::Node(value), description);
  return value;
}

YAML::Node Params::node(const std::string& key, const std::string& description) {
  const auto n = lookup(key);
  if (!n) return YAML::Node(YAML::NodeType::Undefined);
  ctx_->record(key_path(key), YAML::Clone(*n), description);
  return *n;
}

Params Params::child(const std::string& key) {
  YAML::Node n;
  if (auto found = lookup(key)) n = *found;
  return Params(n, key_path(key), ctx_);
}

std::vector<Params> Params::sequence(const std::string& key) {
  std::vector<Params> out;
  auto n = lookup(key);
  if (!n) return out;
  if (!n->IsSequence()) fail(key, "expected a list");
  ctx_->mark_read(key_path(key) + "#");
  for (std::size_t i = 0; i < n->size(); ++i) {
    out.emplace_back((*n)[i], fmt::format("{}[{}]", key_path(key), i), ctx_);
  }
  return out;
}

YAML::Node load_yaml_file(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw InputError(SourcePlace{file, 0, ""}, "cannot open file");
  try {
    YAML::Node root = YAML::Load(in);
    if (root.IsNull()) return YAML::Node(YAML::NodeType::Map);
    if (!root.IsMap()) throw InputError(SourcePlace{file, 1, ""}, "expected a map at the top");
    return root;
  } catch (const YAML::Exception& e) {
    throw InputError(SourcePlace{file, e.mark.line + 1, ""}, "YAML syntax: " + e.msg);
  }
}

namespace {

int line_of(const YAML::Node& node) {
  return node.IsDefined() && node.Mark().line >= 0 ? node.Mark().line + 1 : 0;
}

bool is_index(const std::string& part) {
  return !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
}

std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

std::string join_path(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

// One layer written onto a tree. Containers of the result are made here (fresh maps and
// lists); the layer's scalars and keys are put in as they are, with their marks, and the
// context records, per param path, the file and the line each value came from.
class LayerMerge {
 public:
  LayerMerge(const std::string& file, ParamContext& ctx) : file_(file), ctx_(ctx) {}

  // Every key of `map` (a map of the layer) onto `dst` (a map or a list of the result) at
  // `path`.
  void merge_map(YAML::Node dst, const YAML::Node& map, const std::string& path) {
    for (const auto& kv : map) {
      if (!kv.first.IsScalar()) fail(kv.first, path, "a key must be a name");
      const std::string key = kv.first.Scalar();
      put(dst, path, split_key(key), 0, Key{kv.first, join_path(path, key)}, kv.second);
    }
  }

 private:
  // A key of the layer and the field its errors name: the enclosing param path and the key
  // as written ("reclaim.5.order" on the command line).
  struct Key {
    const YAML::Node& node;
    std::string field;
  };

  [[noreturn]] void fail(const YAML::Node& key, const std::string& field,
                         const std::string& message) const {
    const int line = file_ == kCommandLine ? 0 : line_of(key);
    throw InputError(SourcePlace{file_, line, field}, message);
  }

  // Writes `value` at parts[i..] below `dst` (at `path`), making the containers the parts
  // name when they are missing.
  void put(YAML::Node dst, const std::string& path, const std::vector<std::string>& parts,
           std::size_t i, const Key& key, const YAML::Node& value) {
    const std::string& part = parts[i];
    if (part.empty()) fail(key.node, key.field, "empty key");
    const bool last = i + 1 == parts.size();
    const YAML::Node& cdst = dst;  // read-only access: yaml-cpp's [] would write
    std::string child;
    YAML::Node next;  // the node at `child`, when it exists
    if (dst.IsSequence()) {
      if (!is_index(part) || part.size() > 9 || std::stoul(part) > dst.size()) {
        fail(key.node, key.field,
             fmt::format("'{}' is a list of {}: give an index up to that", path, dst.size()));
      }
      const std::size_t index = std::stoul(part);
      child = fmt::format("{}[{}]", path, part);
      if (last) {
        assign(dst, index, child, key, value);
        return;
      }
      if (index < dst.size()) next.reset(cdst[index]);
    } else {
      child = join_path(path, part);
      if (last) {
        assign(dst, part, child, key, value);
        return;
      }
      if (const YAML::Node found = cdst[part]; found.IsDefined()) next.reset(found);
    }
    if (next.IsNull()) {
      const YAML::Node made = container_for(parts[i + 1]);
      if (dst.IsSequence()) {
        const std::size_t index = std::stoul(part);
        if (index == dst.size()) {
          dst.push_back(made);
        } else {
          YAML::Node element = cdst[index];
          element = made;
        }
      } else {
        store(dst, part, YAML::Node(part), made);
      }
      next.reset(made);
      ctx_.clear_origins_under(child);
      ctx_.set_origin(child, file_, line_of(key.node));
    } else if (!next.IsMap() && !next.IsSequence()) {
      fail(key.node, key.field, fmt::format("'{}' is a single value, not a map or list", child));
    }
    put(next, child, parts, i + 1, key, value);
  }

  // A list when the next part is an index ("reclaim.0.impl" with no `reclaim:` yet).
  static YAML::Node container_for(const std::string& next_part) {
    return YAML::Node(is_index(next_part) ? YAML::NodeType::Sequence : YAML::NodeType::Map);
  }

  // `value` at the map key or list index `slot` of `dst`, whose param path is `path`.
  template <typename Slot>
  void assign(YAML::Node dst, const Slot& slot, const std::string& path, const Key& key,
              const YAML::Node& value) {
    const YAML::Node& cdst = dst;
    YAML::Node existing;  // null when there is none
    if constexpr (std::is_same_v<Slot, std::size_t>) {
      if (slot < dst.size()) existing.reset(cdst[slot]);
    } else {
      if (const YAML::Node found = cdst[slot]; found.IsDefined()) existing.reset(found);
    }
    const bool present = !existing.IsNull();
    if (value.IsMap() && present) {
      if (existing.IsMap() || existing.IsSequence()) {
        merge_map(existing, value, path);
        return;
      }
      fail(key.node, key.field, fmt::format("'{}' is a single value, not a map or list", path));
    }
    // Replaced wholesale: what was recorded under it is gone.
    ctx_.clear_origins_under(path);
    ctx_.set_origin(path, file_, line_of(value) > 0 ? line_of(value) : line_of(key.node));
    const YAML::Node built = build(value, path);
    if constexpr (std::is_same_v<Slot, std::size_t>) {
      if (slot == dst.size()) {
        dst.push_back(built);
      } else {
        YAML::Node element = cdst[slot];
        element = built;
      }
    } else {
      // The layer's own key node when it is this key alone, so its line stays.
      const bool own_key = key.node.IsScalar() && key.node.Scalar() == slot;
      store(dst, slot, own_key ? key.node : YAML::Node(slot), built);
    }
  }

  // The result's copy of `value`: containers made anew (dotted keys expanded, maps of
  // indices made lists), scalars shared.
  YAML::Node build(const YAML::Node& value, const std::string& path) {
    if (value.IsSequence()) {
      YAML::Node seq(YAML::NodeType::Sequence);
      for (std::size_t i = 0; i < value.size(); ++i) {
        const std::string child = fmt::format("{}[{}]", path, i);
        ctx_.set_origin(child, file_, line_of(value[i]));
        seq.push_back(build(value[i], child));
      }
      return seq;
    }
    if (!value.IsMap()) return value;
    bool indices = value.size() > 0;
    for (const auto& kv : value) {
      indices = indices && kv.first.IsScalar() && is_index(split_key(kv.first.Scalar())[0]);
    }
    YAML::Node out(indices ? YAML::NodeType::Sequence : YAML::NodeType::Map);
    merge_map(out, value, path);
    return out;
  }

  // Sets `key: value` in `map`, in place of an existing entry of that name (key node too,
  // so an unknown-key error points at the layer's line) or after the others.
  static void store(YAML::Node map, const std::string& name, const YAML::Node& key,
                    const YAML::Node& value) {
    for (auto it = map.begin(); it != map.end(); ++it) {
      if (it->first.IsScalar() && it->first.Scalar() == name) {
        YAML::Node k = it->first;
        YAML::Node v = it->second;
        k = key;
        v = value;
        return;
      }
    }
    map.force_insert(key, value);
  }

  const std::string& file_;
  ParamContext& ctx_;
};

}  // namespace

void merge_layer(YAML::Node& root, const YAML::Node& layer, const std::string& file,
                 ParamContext& ctx) {
  if (!layer.IsMap()) return;
  LayerMerge(file, ctx).merge_map(root, layer, "");
}

void apply_overrides(YAML::Node& root, const std::vector<std::string>& overrides,
                     ParamContext& ctx) {
  for (const auto& o : overrides) {
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw InputError(SourcePlace{kCommandLine, 0, o}, "expected key.path=value");
    }
    YAML::Node layer(YAML::NodeType::Map);
    layer[o.substr(0, eq)] = o.substr(eq + 1);
    merge_layer(root, layer, kCommandLine, ctx);
  }
}

std::string canonical_bytes(Bytes b) {
  const std::uint64_t v = b.value();
  struct U {
    std::uint64_t f;
    const char* n;
  };
  static constexpr U kUnits[] = {
      {1ULL << 40, "TiB"},      {1ULL << 30, "GiB"},   {1ULL << 20, "MiB"}, {1ULL << 10, "KiB"},
      {1000000000000ULL, "TB"}, {1000000000ULL, "GB"}, {1000000ULL, "MB"},  {1000ULL, "kB"}};
  if (v == 0) return "0B";
  for (const auto& u : kUnits) {
    if (v % u.f == 0) return fmt::format("{}{}", v / u.f, u.n);
  }
  return fmt::format("{}B", v);
}

std::string canonical_duration(Duration d) {
  const std::int64_t v = d.ns();
  struct U {
    std::int64_t f;
    const char* n;
  };
  static constexpr U kUnits[] = {{3600'000'000'000, "h"},
                                 {60'000'000'000, "min"},
                                 {1'000'000'000, "s"},
                                 {1'000'000, "ms"},
                                 {1'000, "us"}};
  if (v == 0) return "0s";
  for (const auto& u : kUnits) {
    if (v % u.f == 0) return fmt::format("{}{}", v / u.f, u.n);
  }
  return fmt::format("{}ns", v);
}

}  // namespace memvirt
