// Parameters declared where they are read. A component receives a Params view of its part of
// the scenario tree and asks for each value with a default and a description; the view records
// the value it used, so the effective configuration (defaults included) can be written beside
// the results, and any key that nothing asked for is reported as unknown with its line.
#pragma once

#include <yaml-cpp/yaml.h>

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/spelling.hpp"
#include "core/types.hpp"

namespace memvirt {

// The place of a value given on the command line (-p) rather than in a file.
inline constexpr const char* kCommandLine = "command line -p";

// Shared by every view of one scenario: the file names, the effective tree, what was read.
class ParamContext {
 public:
  explicit ParamContext(std::string file) : file_(std::move(file)) {}
  // The scenario file named on the command line.
  [[nodiscard]] const std::string& file() const { return file_; }

  // Where values were written, for trees composed of layers (merge_layer): `path` (a param
  // path, "reclaim[0].order") and what is under it came from `file`; `line` is the line of
  // its key, used for nodes the composition made (they carry no mark of their own).
  void set_origin(const std::string& path, const std::string& file, int line);
  // Forgets the origins recorded under `path` (not `path` itself): it was replaced wholesale.
  void clear_origins_under(const std::string& path);
  // The file that wrote `path`: that of its longest recorded prefix, else file().
  [[nodiscard]] const std::string& file_of(const std::string& path) const;
  // The file beside which a relative file name given at `path` resolves: file_of(path), or
  // file() for a value given on the command line.
  [[nodiscard]] const std::string& anchor_of(const std::string& path) const;
  // A fresh context over the same files, for reading the same tree again: nothing read yet.
  [[nodiscard]] std::shared_ptr<ParamContext> sibling() const;

  // File, line and field of `path`, whose node is `node` (undefined or a container the
  // composition made: the line recorded with the path's origin).
  [[nodiscard]] SourcePlace place(const std::string& path, const YAML::Node& node) const;
  void record(const std::string& path, const YAML::Node& value, const std::string& description);
  void mark_read(const std::string& path) { read_.insert(path); }
  [[nodiscard]] bool was_read(const std::string& path) const { return read_.count(path) > 0; }
  // The effective configuration: every parameter read, with its value.
  [[nodiscard]] const YAML::Node& effective() const { return effective_; }
  // Throws InputError for the first key under `root` that no component read.
  void check_all_read(const YAML::Node& root) const;

 private:
  struct Origin {
    std::string file;
    int line = 0;
  };
  [[nodiscard]] const Origin* origin_of(const std::string& path) const;
  void check_node(const YAML::Node& node, const std::string& path) const;
  std::string file_;
  std::map<std::string, Origin> origins_;
  std::set<std::string> read_;
  YAML::Node effective_ = YAML::Node(YAML::NodeType::Map);
};

// `name` found as Params::data_file finds it, relative names resolved beside `anchor` (a
// file) first; empty when not found.
std::string resolve_data_file(const std::string& anchor, const std::string& name);

class Params {
 public:
  Params(YAML::Node node, std::string path, std::shared_ptr<ParamContext> ctx);

  // Optional value with a default. Throws InputError (file, line, field) on a bad value.
  Bytes bytes(const std::string& key, Bytes def, const std::string& description);
  Duration duration(const std::string& key, Duration def, const std::string& description);
  double real(const std::string& key, double def, const std::string& description,
              double min = -1e300, double max = 1e300);
  std::int64_t integer(const std::string& key, std::int64_t def, const std::string& description,
                       std::int64_t min = 0, std::int64_t max = INT64_MAX);
  bool boolean(const std::string& key, bool def, const std::string& description);
  // A data file the scenario names (a profile): the name as written is recorded; the path
  // returned is found absolute, beside the scenario file that names it, in the working
  // directory, or in the source tree, in that order. Not found: InputError at the key.
  std::string data_file(const std::string& key, const std::string& def,
                        const std::string& description);
  std::string string(const std::string& key, const std::string& def,
                     const std::string& description);
  // One of `choices`; the error lists them.
  std::string choice(const std::string& key, const std::string& def,
                     const std::vector<std::string>& choices, const std::string& description);

  // An enum-valued key, parsed once: one of the spellings (the error lists them).
  template <typename E, std::size_t N>
  E option(const std::string& key, E def, const std::array<Spelling<E>, N>& spellings,
           const std::string& description) {
    std::vector<std::string> names;
    for (const auto& s : spellings) names.emplace_back(s.name);
    const std::string got = choice(key, spelling_of(spellings, def), names, description);
    for (const auto& s : spellings) {
      if (got == s.name) return s.value;
    }
    return def;  // not reached: choice() accepts only the spellings
  }

  // Required variants: a missing key is an error.
  Bytes required_bytes(const std::string& key, const std::string& description);
  std::int64_t required_integer(const std::string& key, const std::string& description,
                                std::int64_t min = 0, std::int64_t max = INT64_MAX);

  // The value at `key` as written, of any shape (undefined when absent), recorded as it is,
  // its whole subtree read: for values that another reader interprets, such as a sweep's axis
  // values, which are a scenario's values.
  YAML::Node node(const std::string& key, const std::string& description);

  [[nodiscard]] bool has(const std::string& key) const;
  // Whether `key` is there as a single value (`policy: none`), not a map or list.
  [[nodiscard]] bool has_scalar(const std::string& key) const;
  // A sub-map view; a missing key gives an empty view (all defaults).
  Params child(const std::string& key);
  // Elements of a sequence; a missing key gives none.
  std::vector<Params> sequence(const std::string& key);

  // Error at this key (or at this view when key is empty).
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] const std::shared_ptr<ParamContext>& context() const { return ctx_; }

 private:
  [[nodiscard]] std::string key_path(const std::string& key) const;
  std::optional<YAML::Node> lookup(const std::string& key);
  std::string scalar(const std::string& key, const YAML::Node& n);

  YAML::Node node_;
  std::string path_;
  std::shared_ptr<ParamContext> ctx_;
};

// Loads a scenario file; a missing or malformed file is an InputError naming it.
YAML::Node load_yaml_file(const std::string& file);

// Merges `layer`, the tree written in `file`, onto the map `root`, and records in `ctx` where
// each value it writes came from:
// - a map merges into a map, key by key, recursively;
// - a scalar or a list replaces what was there, and so does anything put where nothing or
//   null was; a map cannot go onto a single value;
// - a dotted key ("experiment.vms: 10") stands for nested maps, at any level;
// - a number addresses a list's element: a key "reclaim.0.order", or a map whose keys are
//   numbers merged onto a list ("reclaim: {0: {order: 0}}"). The index one past the end
//   adds an entry; a larger one is an error. A map of numbers put where nothing was is a list.
// The containers the layer adds are made anew; its keys and single values are put in as
// they are (yaml-cpp shares the node), so their line marks stay. Throws InputError naming
// `file`, the line of the key and the field.
void merge_layer(YAML::Node& root, const YAML::Node& layer, const std::string& file,
                 ParamContext& ctx);

// Applies "a.b.c=value" overrides onto `root`: each is a one-key layer on top (merge_layer),
// written on the command line. The value is always a single value (text).
void apply_overrides(YAML::Node& root, const std::vector<std::string>& overrides,
                     ParamContext& ctx);

// Canonical text for a value, exact and readable: "4GiB", "150MB" stays bytes-exact.
std::string canonical_bytes(Bytes b);
std::string canonical_duration(Duration d);

}  // namespace memvirt
