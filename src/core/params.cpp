#include "core/params.hpp"

#include <fmt/format.h>

#include <cmath>
#include <fstream>

#include "core/units.hpp"

namespace memvirt {

SourcePlace ParamContext::place(const std::string& path, const YAML::Node& node) const {
  if (overrides_.count(path) > 0) return SourcePlace{"command line -p", 0, path};
  int line = 0;
  if (node.IsDefined() && node.Mark().line >= 0) line = node.Mark().line + 1;
  return SourcePlace{file_, line, path};
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

void apply_overrides(YAML::Node& root, const std::vector<std::string>& overrides,
                     ParamContext& ctx) {
  for (const auto& o : overrides) {
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw InputError(SourcePlace{"command line -p", 0, o}, "expected key.path=value");
    }
    const std::string path = o.substr(0, eq);
    const std::string value = o.substr(eq + 1);
    // A numeric part indexes a list: "reclaim.0.reclaim_period" is reclaim[0].reclaim_period.
    // The index one past the end adds an entry: "reclaim.0.impl=ksm" on an empty list.
    std::string param_path;
    YAML::Node cursor = root;
    std::size_t start = 0;
    while (true) {
      const std::size_t dot = path.find('.', start);
      const std::string part = path.substr(start, dot - start);
      if (part.empty()) throw InputError(SourcePlace{"command line -p", 0, path}, "empty key");
      const bool index = cursor.IsSequence();
      if (index) {
        if (part.find_first_not_of("0123456789") != std::string::npos ||
            std::stoul(part) > cursor.size()) {
          throw InputError(SourcePlace{"command line -p", 0, path},
                           fmt::format("'{}' is a list of {}: give an index up to that", param_path,
                                       cursor.size()));
        }
        if (std::stoul(part) == cursor.size()) cursor.push_back(YAML::Node(YAML::NodeType::Map));
        param_path += "[" + part + "]";
      } else {
        param_path += (param_path.empty() ? "" : ".") + part;
      }
      if (dot == std::string::npos) {
        if (index) {
          cursor[std::stoul(part)] = value;
        } else {
          cursor[part] = value;
        }
        break;
      }
      YAML::Node next = index ? cursor[std::stoul(part)] : cursor[part];
      if (!next.IsDefined() || next.IsNull()) {
        // A list when the next part is an index ("reclaim.0.impl" with no `reclaim:` yet).
        const std::size_t after = path.find('.', dot + 1);
        const std::string next_part = path.substr(dot + 1, after - dot - 1);
        const bool list =
            !next_part.empty() && next_part.find_first_not_of("0123456789") == std::string::npos;
        next = YAML::Node(list ? YAML::NodeType::Sequence : YAML::NodeType::Map);
        if (index) {
          cursor[std::stoul(part)] = next;
        } else {
          cursor[part] = next;
        }
      } else if (!next.IsMap() && !next.IsSequence()) {
        throw InputError(SourcePlace{"command line -p", 0, path},
                         fmt::format("'{}' is a single value, not a map or list", param_path));
      }
      cursor.reset(next);
      start = dot + 1;
    }
    ctx.mark_override(param_path);
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
