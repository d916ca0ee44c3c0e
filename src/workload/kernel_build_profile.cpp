#include "workload/kernel_build_profile.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace memvirt {
namespace {

using nlohmann::json;

constexpr const char* kFormat = "memvirt-kernel-build-profile/1";

// Typed access to the document, each failure an InputError naming the file and the field.
class Reader {
 public:
  explicit Reader(const std::string& file) : file_(file) {}

  [[noreturn]] void fail(const std::string& field, const std::string& message) const {
    throw InputError(SourcePlace{file_, 0, field}, message);
  }
  static std::string at(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }
  static std::string at(const std::string& path, std::size_t i) {
    return fmt::format("{}[{}]", path, i);
  }

  const json& key(const json& obj, const std::string& path, const std::string& k) const {
    if (!obj.is_object()) fail(path, "expected an object");
    const auto it = obj.find(k);
    if (it == obj.end()) fail(at(path, k), "missing");
    return *it;
  }
  const json& array(const json& v, const std::string& path, std::size_t min_size = 0) const {
    if (!v.is_array()) fail(path, "expected a list");
    if (v.size() < min_size) fail(path, fmt::format("expected at least {} entries", min_size));
    return v;
  }
  std::string text(const json& v, const std::string& path) const {
    if (!v.is_string()) fail(path, "expected a string");
    return v.get<std::string>();
  }
  double seconds(const json& v, const std::string& path) const {
    if (!v.is_number()) fail(path, "expected a number");
    const double d = v.get<double>();
    if (!std::isfinite(d) || d < 0) fail(path, fmt::format("{} is not a non-negative number", d));
    return d;
  }
  // Bytes or KiB: a whole number; -1 (the file was gone when it was looked at) reads as 0.
  std::uint64_t size(const json& v, const std::string& path) const {
    if (!v.is_number_integer()) fail(path, "expected a whole number");
    const auto n = v.get<std::int64_t>();
    if (n < -1) fail(path, fmt::format("{} is negative", n));
    return n < 0 ? 0 : static_cast<std::uint64_t>(n);
  }
  std::uint64_t index(const json& v, const std::string& path, std::uint64_t limit) const {
    if (!v.is_number_integer()) fail(path, "expected a whole number");
    const auto n = v.get<std::int64_t>();
    if (n < 0 || static_cast<std::uint64_t>(n) >= limit) {
      fail(path, fmt::format("{} is not an index of headers (0 to {})", n, limit - 1));
    }
    return static_cast<std::uint64_t>(n);
  }

 private:
  const std::string& file_;
};

// A unit or link as written, before the steps are put in start order.
struct Raw {
  bool link = false;
  std::size_t index = 0;  // in units or links
  double start_s = 0;
  std::string out;
  const json* entry = nullptr;
};

}  // namespace

std::uint64_t KernelBuildProfile::tree_pages() const {
  std::uint64_t n = 0;
  for (const TreeFile& f : tree) n += file_pages(f.bytes);
  return n;
}

std::uint64_t KernelBuildProfile::output_pages() const {
  std::uint64_t n = 0;
  for (const Step& s : steps) n += file_pages(s.out_bytes);
  return n;
}

KernelBuildProfile load_kernel_build_profile(const std::string& file, bool overhead) {
  std::ifstream in(file);
  if (!in) throw InputError(SourcePlace{file, 0, ""}, "cannot open kernel build profile");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    const std::size_t upto = std::min<std::size_t>(e.byte, text.size());
    const auto line =
        1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(upto), '\n');
    std::string why = e.what();
    if (const auto colon = why.rfind(": "); colon != std::string::npos) why = why.substr(colon + 2);
    throw InputError(SourcePlace{file, static_cast<int>(line), ""}, "malformed JSON: " + why);
  }
  const Reader r(file);
  if (!doc.is_object()) r.fail("", "expected a JSON object (a kernel build profile)");
  if (const std::string format = r.text(r.key(doc, "", "format"), "format"); format != kFormat) {
    r.fail("format", fmt::format("'{}' is not a build profile ('{}')", format, kFormat));
  }

  KernelBuildProfile p;
  p.file = file;
  std::unordered_map<std::string, std::uint32_t> tree_index;
  const auto tree_file = [&](const std::string& path, std::uint64_t bytes) {
    const auto [it, added] = tree_index.emplace(path, static_cast<std::uint32_t>(p.tree.size()));
    if (added) p.tree.push_back({bytes, name_hash(path)});
    return it->second;
  };

  // Headers: [path, bytes, units, generated].
  const json& headers = r.array(r.key(doc, "", "headers"), "headers");
  std::vector<std::uint32_t> header_file(headers.size());
  for (std::size_t i = 0; i < headers.size(); ++i) {
    const std::string path = Reader::at("headers", i);
    const json& h = r.array(headers[i], path, 2);
    header_file[i] =
        tree_file(r.text(h[0], Reader::at(path, 0)), r.size(h[1], Reader::at(path, 1)));
  }

  const json& units = r.array(r.key(doc, "", "units"), "units");
  const json& links = r.array(r.key(doc, "", "links"), "links");
  if (units.empty()) r.fail("units", "no compile units");
  std::vector<Raw> raw;
  for (std::size_t i = 0; i < units.size(); ++i) {
    const std::string path = Reader::at("units", i);
    raw.push_back({false, i, r.seconds(r.key(units[i], path, "start_s"), path + ".start_s"),
                   r.text(r.key(units[i], path, "obj"), path + ".obj"), &units[i]});
  }
  for (std::size_t i = 0; i < links.size(); ++i) {
    const std::string path = Reader::at("links", i);
    raw.push_back({true, i, r.seconds(r.key(links[i], path, "start_s"), path + ".start_s"),
                   r.text(r.key(links[i], path, "out"), path + ".out"), &links[i]});
  }
  // Every output, for telling a link input made by a later step from a tree file.
  std::unordered_set<std::string> outputs;
  for (const Raw& e : raw) {
    if (!outputs.insert(e.out).second) {
      r.fail(Reader::at(e.link ? "links" : "units", e.index) + (e.link ? ".out" : ".obj"),
             fmt::format("'{}' is the output of another step too", e.out));
    }
  }
  std::stable_sort(raw.begin(), raw.end(), [](const Raw& a, const Raw& b) {
    if (a.start_s != b.start_s) return a.start_s < b.start_s;
    return !a.link && b.link;
  });

  std::unordered_map<std::string, std::uint32_t> made;  // output path -> step, so far
  for (const Raw& e : raw) {
    const json& j = *e.entry;
    const std::string path = Reader::at(e.link ? "links" : "units", e.index);
    KernelBuildProfile::Step s;
    s.link = e.link;
    s.out_bytes = r.size(r.key(j, path, e.link ? "out_bytes" : "obj_bytes"),
                         path + (e.link ? ".out_bytes" : ".obj_bytes"));
    s.out_hash = name_hash(e.out);
    s.cpu_s = r.seconds(r.key(j, path, "cpu_s"), path + ".cpu_s");
    s.max_rss_kib = r.size(r.key(j, path, "max_rss_kib"), path + ".max_rss_kib");
    const auto self = static_cast<std::uint32_t>(p.steps.size());
    if (!e.link) {
      ++p.units;
      s.reads.push_back(tree_file(r.text(r.key(j, path, "src"), path + ".src"),
                                  r.size(r.key(j, path, "src_bytes"), path + ".src_bytes")));
      const std::string hpath = path + ".headers";
      const json& ranges = r.array(r.key(j, path, "headers"), hpath);
      for (std::size_t k = 0; k < ranges.size(); ++k) {
        const std::string rpath = Reader::at(hpath, k);
        const json& range = r.array(ranges[k], rpath, 2);
        const std::uint64_t a = r.index(range[0], Reader::at(rpath, 0), headers.size());
        const std::uint64_t b = r.index(range[1], Reader::at(rpath, 1), headers.size());
        if (b < a) r.fail(rpath, fmt::format("[{}, {}] is not a range", a, b));
        for (std::uint64_t h = a; h <= b; ++h) s.reads.push_back(header_file[h]);
      }
    } else {
      ++p.links;
      const std::string ipath = path + ".inputs";
      const json& inputs = r.array(r.key(j, path, "inputs"), ipath);
      for (std::size_t k = 0; k < inputs.size(); ++k) {
        const std::string entry = Reader::at(ipath, k);
        const json& input = r.array(inputs[k], entry, 2);
        const std::string name = r.text(input[0], Reader::at(entry, 0));
        if (const auto it = made.find(name); it != made.end()) {
          s.reads.push_back(KernelBuildProfile::kStepOutput | it->second);
          p.steps[it->second].readers.push_back(self);
          ++s.step_inputs;
        } else if (outputs.contains(name)) {
          r.fail(Reader::at(entry, 0),
                 fmt::format("'{}' is made by a step that starts later (or by this one)", name));
        } else {
          // Not made by the build's steps (a linker script from make prepare): the tree's.
          s.reads.push_back(tree_file(name, r.size(input[1], Reader::at(entry, 1))));
        }
      }
    }
    made.emplace(e.out, self);
    p.steps.push_back(std::move(s));
  }

  if (overhead) {
    const auto cpu = [&](const std::string& phase) {
      const std::string path = "phases." + phase;
      const json& ph = r.key(r.key(doc, "", "phases"), "phases", phase);
      return r.seconds(r.key(ph, path, "user_s"), path + ".user_s") +
             r.seconds(r.key(ph, path, "sys_s"), path + ".sys_s");
    };
    p.clean_cpu_s = cpu("clean");
    p.prepare_cpu_s = cpu("prepare_after_clean");
    const json& totals = r.key(doc, "", "totals");
    p.rest_cpu_s = r.seconds(r.key(totals, "totals", "cpu_rest_s"), "totals.cpu_rest_s") +
                   r.seconds(r.key(totals, "totals", "cpu_other_compiler_calls_s"),
                             "totals.cpu_other_compiler_calls_s");
    const std::string cmd = "clean.deleted_by_ext..cmd";
    const json& by_ext = r.key(r.key(doc, "", "clean"), "clean", "deleted_by_ext");
    const json& c = r.key(by_ext, "clean.deleted_by_ext", ".cmd");
    const std::uint64_t files = r.size(r.key(c, cmd, "files"), cmd + ".files");
    const std::uint64_t bytes = r.size(r.key(c, cmd, "bytes"), cmd + ".bytes");
    p.cmd_bytes = files == 0 ? 0 : bytes / files;
  }
  return p;
}

}  // namespace memvirt
