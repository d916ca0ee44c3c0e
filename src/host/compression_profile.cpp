#include "host/compression_profile.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/error.hpp"
#include "core/params.hpp"
#include "core/rng.hpp"
#include "core/types.hpp"

namespace memvirt {
namespace {

// A share in [0, 1) from the fingerprint alone, the same for every compressor.
double share_of(Fingerprint fp) {
  return static_cast<double>(splitmix64(fp.value() ^ 0x636f6d7072657373ULL) >> 11) * 0x1p-53;
}

using nlohmann::json;

constexpr const char* kFormat = "memvirt-compression-profile/1";

const char* name_of(Compressor c) {
  return spelling_of(kCompressorSpellings, c);
}
const char* name_of(ContentClass k) {
  return spelling_of(kContentClassSpellings, k);
}

// Reads one file's JSON tree, every error naming the file and the field.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}
  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw InputError(SourcePlace{file_, 0, field}, what);
  }
  const json& member(const json& obj, const std::string& path, const std::string& key) const {
    const std::string field = path.empty() ? key : path + "." + key;
    if (!obj.is_object()) fail(path, "must be an object");
    const auto it = obj.find(key);
    if (it == obj.end()) fail(field, "missing");
    return *it;
  }
  double number(const json& obj, const std::string& path, const std::string& key, double lo,
                double hi) const {
    const json& v = member(obj, path, key);
    const std::string field = path + "." + key;
    if (!v.is_number()) fail(field, "must be a number");
    const double x = v.get<double>();
    if (!(x >= lo && x <= hi)) fail(field, fmt::format("{} is outside [{}, {}]", x, lo, hi));
    return x;
  }
  std::uint64_t count(const json& obj, const std::string& path, const std::string& key,
                      std::uint64_t lo, std::uint64_t hi) const {
    const json& v = member(obj, path, key);
    const std::string field = path + "." + key;
    if (!v.is_number_unsigned()) fail(field, "must be a whole number, 0 or more");
    const auto x = v.get<std::uint64_t>();
    if (x < lo || x > hi) fail(field, fmt::format("{} is outside [{}, {}]", x, lo, hi));
    return x;
  }
  std::string text(const json& obj, const std::string& path, const std::string& key) const {
    const json& v = member(obj, path, key);
    if (!v.is_string()) fail(path.empty() ? key : path + "." + key, "must be a string");
    return v.get<std::string>();
  }

 private:
  std::string file_;
};

template <typename E, std::size_t N>
std::optional<E> parse_spelling(const std::array<Spelling<E>, N>& spellings, const std::string& s) {
  for (const auto& sp : spellings) {
    if (s == sp.name) return sp.value;
  }
  return std::nullopt;
}

template <typename E, std::size_t N>
std::string known(const std::array<Spelling<E>, N>& spellings) {
  std::string out;
  for (const auto& sp : spellings) out += (out.empty() ? "" : ", ") + std::string(sp.name);
  return out;
}

CompressionClassStats read_stats(const Reader& r, const json& obj, const std::string& path) {
  CompressionClassStats s;
  s.pages = r.count(obj, path, "pages", 1, UINT64_MAX);
  s.mean_stored_bytes = r.number(obj, path, "mean_stored_bytes", 1, kPageSize);
  s.raw_share = r.number(obj, path, "raw_share", 0, 1);
  s.zero_share = r.number(obj, path, "zero_share", 0, 1);
  s.same_filled_share = r.number(obj, path, "same_filled_share", 0, 1);
  const json& q = r.member(obj, path, "quantiles");
  const std::string qpath = path + ".quantiles";
  if (!q.is_array()) r.fail(qpath, "must be a list of stored sizes");
  if (q.size() < 2) r.fail(qpath, "needs at least 2 points (shares 0 and 1)");
  for (std::size_t i = 0; i < q.size(); ++i) {
    const std::string field = fmt::format("{}[{}]", qpath, i);
    if (!q[i].is_number_unsigned()) r.fail(field, "must be a whole number of bytes");
    const auto v = q[i].get<std::uint64_t>();
    if (v < 1 || v > kPageSize) r.fail(field, fmt::format("{} is outside [1, {}]", v, kPageSize));
    if (!s.quantiles.empty() && v < s.quantiles.back()) {
      r.fail(field, "quantiles must not decrease");
    }
    s.quantiles.push_back(static_cast<std::uint32_t>(v));
  }
  return s;
}

}  // namespace

CompressionClassStats CompressionClassStats::from_sizes(std::vector<std::uint32_t> stored_bytes,
                                                        std::uint64_t zero_pages,
                                                        std::uint64_t same_filled_pages,
                                                        unsigned quantile_points) {
  CompressionClassStats s;
  if (stored_bytes.empty()) return s;
  const auto n = static_cast<double>(stored_bytes.size());
  std::sort(stored_bytes.begin(), stored_bytes.end());
  s.pages = stored_bytes.size();
  s.mean_stored_bytes =
      static_cast<double>(std::accumulate(stored_bytes.begin(), stored_bytes.end(), 0ULL)) / n;
  const auto raw = static_cast<std::size_t>(
      stored_bytes.end() - std::lower_bound(stored_bytes.begin(), stored_bytes.end(), kPageSize));
  s.raw_share = static_cast<double>(raw) / n;
  s.zero_share = static_cast<double>(zero_pages) / n;
  s.same_filled_share = static_cast<double>(same_filled_pages) / n;
  quantile_points = std::max(2U, quantile_points);
  for (unsigned i = 0; i < quantile_points; ++i) {
    // Nearest rank: the smallest size at least this share of pages do not exceed.
    const double share = static_cast<double>(i) / (quantile_points - 1);
    const auto rank = static_cast<std::size_t>(std::ceil(share * n));
    s.quantiles.push_back(
        stored_bytes[std::min(stored_bytes.size() - 1, rank == 0 ? 0 : rank - 1)]);
  }
  return s;
}

CompressionProfile CompressionProfile::load(const std::string& path) {
  const Reader r(path);
  std::ifstream in(path);
  if (!in) r.fail("", "cannot read the file");
  json root;
  try {
    root = json::parse(in);
  } catch (const json::parse_error& e) {
    r.fail("", std::string("not JSON: ") + e.what());
  }
  CompressionProfile p;
  p.file_ = path;
  const std::string format = r.text(root, "", "format");
  if (format != kFormat) r.fail("format", fmt::format("is '{}', expected '{}'", format, kFormat));
  const json& prov = r.member(root, "", "provenance");
  if (!prov.is_object()) r.fail("provenance", "must be an object (files, machine, tools)");
  p.provenance_json_ = prov.dump();
  const auto page_bytes = r.count(root, "", "page_bytes", 1, UINT32_MAX);
  if (page_bytes != kPageSize) {
    r.fail("page_bytes", fmt::format("is {}, memvirt's pages are {}", page_bytes, kPageSize));
  }
  const json& comps = r.member(root, "", "compressors");
  if (!comps.is_object() || comps.empty()) r.fail("compressors", "must be a non-empty object");
  for (const auto& [cname, centry] : comps.items()) {
    const std::string cpath = "compressors." + cname;
    const auto c = parse_spelling(kCompressorSpellings, cname);
    if (!c) r.fail(cpath, "unknown compressor (known: " + known(kCompressorSpellings) + ")");
    PerCompressor& pc = p.compressors_[static_cast<std::size_t>(*c)];
    pc.present = true;
    pc.library = r.text(centry, cpath, "library");
    pc.zero_page_bytes =
        static_cast<std::uint32_t>(r.count(centry, cpath, "zero_page_bytes", 1, kPageSize));
    const json& classes = r.member(centry, cpath, "classes");
    if (!classes.is_object()) r.fail(cpath + ".classes", "must be an object");
    for (const auto& [kname, kentry] : classes.items()) {
      const std::string kpath = cpath + ".classes." + kname;
      const auto k = parse_spelling(kContentClassSpellings, kname);
      if (!k) r.fail(kpath, "unknown content class (known: " + known(kContentClassSpellings) + ")");
      if (!kentry.is_object()) r.fail(kpath, "must be an object");
      pc.classes[static_cast<std::size_t>(*k)] = read_stats(r, kentry, kpath);
    }
  }
  return p;
}

bool CompressionProfile::has(Compressor c) const {
  return compressors_[static_cast<std::size_t>(c)].present;
}

const CompressionProfile::PerCompressor& CompressionProfile::require(Compressor c) const {
  const PerCompressor& pc = compressors_[static_cast<std::size_t>(c)];
  if (!pc.present) {
    throw InputError(SourcePlace{file_, 0, std::string("compressors.") + name_of(c)},
                     "the compression profile has no measurement of this compressor");
  }
  return pc;
}

const CompressionClassStats& CompressionProfile::require(Compressor c, ContentClass k) const {
  const auto& s = require(c).classes[static_cast<std::size_t>(k)];
  if (!s) {
    throw InputError(
        SourcePlace{file_, 0, fmt::format("compressors.{}.classes.{}", name_of(c), name_of(k))},
        "the compression profile has no measurement of this content class");
  }
  return *s;
}

std::uint32_t CompressionProfile::compressed_bytes(Compressor c, Fingerprint fp) const {
  const PerCompressor& pc = require(c);
  if (fp == kZeroContent) {
    return pc.zero_page_bytes < kPageSize ? pc.zero_page_bytes
                                          : static_cast<std::uint32_t>(kPageSize);
  }
  const ContentClass k = content_class(fp);
  if (k == ContentClass::kOpaque) return static_cast<std::uint32_t>(kPageSize);
  const CompressionClassStats& s = require(c, k);
  const double u = share_of(fp);
  if (u >= 1.0 - s.raw_share) return static_cast<std::uint32_t>(kPageSize);
  const double pos = u * static_cast<double>(s.quantiles.size() - 1);
  const auto i = static_cast<std::size_t>(pos);
  const double frac = pos - static_cast<double>(i);
  const double lo = s.quantiles[i];
  const double hi = s.quantiles[std::min(i + 1, s.quantiles.size() - 1)];
  const double v = std::round(lo + frac * (hi - lo));
  return static_cast<std::uint32_t>(std::clamp(v, 1.0, static_cast<double>(kPageSize - 1)));
}

bool CompressionProfile::same_filled(Compressor c, Fingerprint fp) const {
  if (fp == kZeroContent) return true;
  const ContentClass k = content_class(fp);
  if (k == ContentClass::kOpaque) return false;
  const CompressionClassStats& s = require(c, k);
  return share_of(fp) < s.zero_share + s.same_filled_share;
}

double CompressionProfile::mean_ratio(Compressor c, ContentClass k) const {
  const PerCompressor& pc = require(c);
  const auto& s = pc.classes[static_cast<std::size_t>(k)];
  if (!s && k == ContentClass::kOpaque) return 1.0;
  return static_cast<double>(kPageSize) / require(c, k).mean_stored_bytes;
}

const CompressionClassStats* CompressionProfile::stats(Compressor c, ContentClass k) const {
  const auto& s = compressors_[static_cast<std::size_t>(c)].classes[static_cast<std::size_t>(k)];
  return s ? &*s : nullptr;
}

const std::string& CompressionProfile::library(Compressor c) const {
  return require(c).library;
}

std::uint32_t CompressionProfile::zero_page_bytes(Compressor c) const {
  return require(c).zero_page_bytes;
}

void CompressionProfile::set_compressor(Compressor c, std::string library,
                                        std::uint32_t zero_page_bytes) {
  PerCompressor& pc = compressors_[static_cast<std::size_t>(c)];
  pc.present = true;
  pc.library = std::move(library);
  pc.zero_page_bytes = zero_page_bytes;
}

void CompressionProfile::set_stats(Compressor c, ContentClass k, CompressionClassStats s) {
  compressors_[static_cast<std::size_t>(c)].classes[static_cast<std::size_t>(k)] = std::move(s);
}

std::string CompressionProfile::to_json() const {
  json root;
  root["format"] = kFormat;
  root["provenance"] = json::parse(provenance_json_);
  root["page_bytes"] = kPageSize;
  json comps = json::object();
  for (const auto& sp : kCompressorSpellings) {
    const PerCompressor& pc = compressors_[static_cast<std::size_t>(sp.value)];
    if (!pc.present) continue;
    json classes = json::object();
    for (const auto& ks : kContentClassSpellings) {
      const auto& s = pc.classes[static_cast<std::size_t>(ks.value)];
      if (!s) continue;
      // Rounded so the file reads well; load() needs no more than this.
      auto round = [](double x, double per_unit) { return std::round(x * per_unit) / per_unit; };
      classes[ks.name] = json{{"pages", s->pages},
                              {"mean_stored_bytes", round(s->mean_stored_bytes, 100)},
                              {"raw_share", round(s->raw_share, 1e6)},
                              {"zero_share", round(s->zero_share, 1e6)},
                              {"same_filled_share", round(s->same_filled_share, 1e6)},
                              {"quantiles", s->quantiles}};
    }
    comps[sp.name] = json{
        {"library", pc.library}, {"zero_page_bytes", pc.zero_page_bytes}, {"classes", classes}};
  }
  root["compressors"] = comps;
  return root.dump(1) + "\n";
}

std::shared_ptr<const CompressionProfile> compression_profile_param(Params& p, Compressor c,
                                                                    bool load) {
  const std::string path =
      p.data_file("compression_profile", "profiles/compression/kernel-build.json",
                  "measured compressed sizes by content class (profiles/compression/)");
  if (!load) return nullptr;
  auto profile = std::make_shared<const CompressionProfile>(CompressionProfile::load(path));
  if (!profile->has(c)) {
    p.fail("compressor", fmt::format("the compression profile has no {} measurements",
                                     spelling_of(kCompressorSpellings, c)));
  }
  return profile;
}

}  // namespace memvirt
