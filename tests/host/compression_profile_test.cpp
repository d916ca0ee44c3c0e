// The compression profile: what it writes it reads back; compressed_bytes() is a function of
// the fingerprint that follows the measured distribution; bad files fail naming file and field.
#include "host/compression_profile.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "test_util.hpp"

namespace memvirt {
namespace {

using nlohmann::json;

// A profile with two classes under lz4: source uniform over 1000..3000 bytes with 10% raw,
// object all raw.
CompressionProfile sample_profile() {
  CompressionProfile p;
  p.set_provenance(R"({"sources": "test"})");
  p.set_compressor(Compressor::kLz4, "liblz4 test", 27);
  std::vector<std::uint32_t> sizes;
  for (std::uint32_t i = 0; i < 900; ++i) sizes.push_back(1000 + i * 2000 / 899);
  for (int i = 0; i < 100; ++i) sizes.push_back(4096);
  p.set_stats(Compressor::kLz4, ContentClass::kSource,
              CompressionClassStats::from_sizes(sizes, 0, 0));
  p.set_stats(Compressor::kLz4, ContentClass::kObject,
              CompressionClassStats::from_sizes(std::vector<std::uint32_t>(50, 4096), 0, 0));
  return p;
}

std::string write_profile(const std::string& text) {
  return testing::write_file(testing::temp_dir() / "profile.json", text);
}

TEST(CompressionClassStats, FromSizesSummarizes) {
  const auto s = CompressionClassStats::from_sizes({4096, 100, 300, 200, 4096}, 1, 1, 5);
  EXPECT_EQ(s.pages, 5U);
  EXPECT_DOUBLE_EQ(s.mean_stored_bytes, (4096.0 * 2 + 600) / 5);
  EXPECT_DOUBLE_EQ(s.raw_share, 0.4);
  EXPECT_DOUBLE_EQ(s.zero_share, 0.2);
  EXPECT_DOUBLE_EQ(s.same_filled_share, 0.2);
  ASSERT_EQ(s.quantiles.size(), 5U);
  EXPECT_EQ(s.quantiles.front(), 100U);
  EXPECT_EQ(s.quantiles.back(), 4096U);
  EXPECT_TRUE(std::is_sorted(s.quantiles.begin(), s.quantiles.end()));
}

TEST(CompressionProfile, WritesWhatItLoads) {
  const CompressionProfile p = sample_profile();
  const std::string path = write_profile(p.to_json());
  const CompressionProfile q = CompressionProfile::load(path);
  EXPECT_TRUE(q.has(Compressor::kLz4));
  EXPECT_FALSE(q.has(Compressor::kZstd));
  EXPECT_EQ(q.library(Compressor::kLz4), "liblz4 test");
  EXPECT_EQ(q.zero_page_bytes(Compressor::kLz4), 27U);
  const auto* a = p.stats(Compressor::kLz4, ContentClass::kSource);
  const auto* b = q.stats(Compressor::kLz4, ContentClass::kSource);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(a->pages, b->pages);
  EXPECT_EQ(a->quantiles, b->quantiles);
  EXPECT_NEAR(a->mean_stored_bytes, b->mean_stored_bytes, 0.01);
  EXPECT_NEAR(q.mean_ratio(Compressor::kLz4, ContentClass::kSource), 4096.0 / a->mean_stored_bytes,
              1e-3);
  EXPECT_EQ(q.to_json(), p.to_json());
}

TEST(CompressionProfile, CompressedBytesIsAFunctionOfTheFingerprint) {
  const CompressionProfile p = sample_profile();
  const CompressionProfile q = CompressionProfile::load(write_profile(p.to_json()));
  for (std::uint64_t d = 0; d < 1000; ++d) {
    const Fingerprint fp = make_fingerprint(d * 7919, ContentClass::kSource);
    EXPECT_EQ(p.compressed_bytes(Compressor::kLz4, fp), q.compressed_bytes(Compressor::kLz4, fp));
    EXPECT_EQ(p.compressed_bytes(Compressor::kLz4, fp), p.compressed_bytes(Compressor::kLz4, fp));
  }
}

TEST(CompressionProfile, CompressedBytesFollowsTheMeasuredDistribution) {
  const CompressionProfile p = sample_profile();
  const auto* s = p.stats(Compressor::kLz4, ContentClass::kSource);
  constexpr int kDraws = 20000;
  double sum = 0;
  int raw = 0;
  for (int d = 0; d < kDraws; ++d) {
    const std::uint32_t n = p.compressed_bytes(
        Compressor::kLz4, make_fingerprint(static_cast<std::uint64_t>(d), ContentClass::kSource));
    EXPECT_GE(n, s->quantiles.front());
    EXPECT_LE(n, 4096U);
    sum += n;
    raw += n == 4096 ? 1 : 0;
  }
  EXPECT_NEAR(static_cast<double>(raw) / kDraws, s->raw_share, 0.01);
  EXPECT_NEAR(sum / kDraws, s->mean_stored_bytes, 0.02 * s->mean_stored_bytes);
  // A class that never compressed stays raw.
  for (std::uint64_t d = 0; d < 100; ++d) {
    EXPECT_EQ(p.compressed_bytes(Compressor::kLz4, make_fingerprint(d, ContentClass::kObject)),
              4096U);
  }
}

TEST(CompressionProfile, ZeroOpaqueAndUnmeasuredPages) {
  const CompressionProfile p = sample_profile();
  EXPECT_EQ(p.compressed_bytes(Compressor::kLz4, kZeroContent), 27U);
  EXPECT_EQ(p.compressed_bytes(Compressor::kLz4, make_fingerprint(5, ContentClass::kOpaque)),
            4096U);
  EXPECT_DOUBLE_EQ(p.mean_ratio(Compressor::kLz4, ContentClass::kOpaque), 1.0);
  try {
    (void)p.compressed_bytes(Compressor::kLz4, make_fingerprint(5, ContentClass::kUnmeasured));
    FAIL() << "an unmeasured class must be an error";
  } catch (const InputError& e) {
    EXPECT_EQ(e.place().field, "compressors.lz4.classes.unmeasured");
  }
  try {
    (void)p.compressed_bytes(Compressor::kZstd, make_fingerprint(5, ContentClass::kSource));
    FAIL() << "a compressor the profile lacks must be an error";
  } catch (const InputError& e) {
    EXPECT_EQ(e.place().field, "compressors.zstd");
  }
}

// Loads `text` and expects an InputError naming the file and `field`.
void expect_bad(const std::string& text, const std::string& field) {
  const std::string path = write_profile(text);
  try {
    (void)CompressionProfile::load(path);
    FAIL() << "loaded a bad profile; expected an error at " << field;
  } catch (const InputError& e) {
    EXPECT_EQ(e.place().file, path);
    EXPECT_EQ(e.place().field, field) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(CompressionProfile, BadFilesNameFileAndField) {
  const json good = json::parse(sample_profile().to_json());
  {
    json j = good;
    j["compressors"]["lz4"]["classes"]["source"].erase("raw_share");
    expect_bad(j.dump(), "compressors.lz4.classes.source.raw_share");
  }
  {
    json j = good;
    j["compressors"]["lz4"]["classes"]["source"]["pages"] = "many";
    expect_bad(j.dump(), "compressors.lz4.classes.source.pages");
  }
  {
    json j = good;
    j["format"] = "memvirt-compression-profile/0";
    expect_bad(j.dump(), "format");
  }
  {
    json j = good;
    j.erase("provenance");
    expect_bad(j.dump(), "provenance");
  }
  {
    json j = good;
    j["compressors"]["lz5"] = j["compressors"]["lz4"];
    expect_bad(j.dump(), "compressors.lz5");
  }
  {
    json j = good;
    j["compressors"]["lz4"]["classes"]["sauce"] = j["compressors"]["lz4"]["classes"]["source"];
    expect_bad(j.dump(), "compressors.lz4.classes.sauce");
  }
  {
    json j = good;
    j["compressors"]["lz4"]["classes"]["source"]["quantiles"][3] = 1;
    expect_bad(j.dump(), "compressors.lz4.classes.source.quantiles[3]");
  }
  {
    json j = good;
    j["compressors"]["lz4"]["classes"]["source"]["raw_share"] = 1.5;
    expect_bad(j.dump(), "compressors.lz4.classes.source.raw_share");
  }
  expect_bad("{ not json", "");
}

TEST(CompressionProfile, MissingFileIsAnInputError) {
  EXPECT_THROW((void)CompressionProfile::load("/nonexistent/profile.json"), InputError);
}

TEST(CompressionProfile, TheMeasuredKernelBuildProfileLoads) {
  const std::string path = testing::source_path("profiles/compression/kernel-build.json");
  const CompressionProfile p = CompressionProfile::load(path);
  for (const auto& c : kCompressorSpellings) {
    ASSERT_TRUE(p.has(c.value)) << c.name;
    for (const ContentClass k :
         {ContentClass::kSource, ContentClass::kHeader, ContentClass::kObject,
          ContentClass::kBinary, ContentClass::kCompilerHeap, ContentClass::kText}) {
      EXPECT_NE(p.stats(c.value, k), nullptr) << c.name << " " << static_cast<int>(k);
      EXPECT_GE(p.mean_ratio(c.value, k), 1.0);
    }
  }
}

}  // namespace
}  // namespace memvirt
