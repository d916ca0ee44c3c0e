// `memvirt bench tmem` on a small folder of files the test makes: pages are read as the page
// cache holds them, the compressor library gives every page back, the pools (when built in)
// give every page back equal, the profile it measures loads, and the command's errors are one
// line with a non-zero exit.
#include "bench_tmem/tmem_bench.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench_tmem/page_set.hpp"
#include "bench_tmem/report.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "host/compression_profile.hpp"
#include "test_util.hpp"

namespace memvirt {
namespace {

namespace fs = std::filesystem;

// A folder with text-like files and random (incompressible) files, with a file whose size is
// not a multiple of a page and an empty one.
struct Files {
  fs::path dir = testing::temp_dir();
  fs::path text = dir / "text";
  fs::path random = dir / "random";
  Files() {
    fs::create_directories(text / "sub");
    fs::create_directories(random);
    for (int f = 0; f < 4; ++f) {
      std::ofstream out(text / (f % 2 ? "sub" : "") / fmt::format("notes{}.txt", f));
      for (int line = 0; line < 400 + f * 50; ++line) {
        out << "line " << line << ": the page cache keeps clean pages of file " << f << "\n";
      }
    }
    std::ofstream(text / "empty.txt");
    std::uint64_t x = 1;
    for (int f = 0; f < 2; ++f) {
      std::ofstream out(random / fmt::format("blob{}.bin", f), std::ios::binary);
      for (int i = 0; i < 3 * 512 + 17 * f; ++i) {
        x = splitmix64(x);
        out.write(reinterpret_cast<const char*>(&x), sizeof x);
      }
    }
  }
  [[nodiscard]] std::vector<PageGroup> groups() const {
    return {{"text", {text}, FileFilter::kNotCompressed}, {"random", {random}, FileFilter::kAny}};
  }
};

std::uint64_t expected_pages(const fs::path& dir) {
  if (fs::is_regular_file(dir)) return (fs::file_size(dir) + kPageSize - 1) / kPageSize;
  std::uint64_t pages = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) pages += (e.file_size() + kPageSize - 1) / kPageSize;
  }
  return pages;
}

TEST(TmemBenchPages, FilesBecomePagesWithZeroPaddedTails) {
  const Files f;
  const PageSet set = PageSet::read(f.groups(), 1'000'000);
  ASSERT_EQ(set.groups().size(), 2U);
  EXPECT_EQ(set.groups()[0].pages, expected_pages(f.text));
  EXPECT_EQ(set.groups()[1].pages, expected_pages(f.random));
  EXPECT_EQ(set.pages(), expected_pages(f.dir));
  // Each file's pages are its bytes, the last page padded with zeros.
  for (const PageSetFile& file : set.files()) {
    std::ifstream in(file.path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    for (std::uint32_t p = 0; p < file.pages; ++p) {
      const auto page = set.page(file.first_page + p);
      for (std::size_t b = 0; b < kPageSize; ++b) {
        const std::size_t at = p * kPageSize + b;
        const auto want = at < bytes.size() ? static_cast<std::byte>(bytes[at]) : std::byte{0};
        ASSERT_EQ(page[b], want) << file.path << " page " << p << " byte " << b;
      }
    }
  }
  // A page limit cuts each group, and no file gives more than 1/64 of it (at least a page).
  const PageSet small = PageSet::read(f.groups(), 3);
  EXPECT_EQ(small.groups()[0].pages, 3U);
  EXPECT_EQ(small.groups()[1].pages, 2U) << "two files, a page each";
  for (const PageSetFile& file : small.files()) EXPECT_LE(file.pages, 1U) << file.path;
}

TEST(TmemBenchPages, MissingPathNamesTheGroup) {
  try {
    (void)PageSet::read({{"source", {"/nonexistent/tree"}, FileFilter::kAny}}, 10);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.place().field, "source");
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tree"), std::string::npos);
  }
}

TEST(TmemBench, EveryCompressorGivesEveryPageBack) {
  const Files f;
  TmemBenchConfig cfg;
  cfg.groups = f.groups();
  cfg.run_pool = false;  // the pool passes have their own test below
  TmemBenchProgress quiet;
  const TmemBenchResult r = run_tmem_bench(cfg, quiet);
  ASSERT_EQ(r.runs.size(), 3U);
  for (const CompressorRun& run : r.runs) {
    const LibraryPass& l = run.library_pass;
    EXPECT_EQ(l.pages, r.pages);
    EXPECT_EQ(l.mismatches, 0U);
    EXPECT_GT(l.compress_cpu_s, 0);
    // Text compresses; random bytes do not, and are kept raw.
    const double text = static_cast<double>(r.groups[0].pages * kPageSize) /
                        static_cast<double>(l.group_stored_bytes[0]);
    const double random = static_cast<double>(r.groups[1].pages * kPageSize) /
                          static_cast<double>(l.group_stored_bytes[1]);
    EXPECT_GT(text, 2.0) << run.library;
    EXPECT_LT(random, 1.2) << run.library << ": only blob1's zero-padded last page compresses";
    EXPECT_GE(l.raw_pages, 6U) << "the random files' full pages stay raw";
  }
  std::ostringstream table;
  print_tmem_report(table, r);
  EXPECT_NE(table.str().find("lzo1x-1"), std::string::npos);
  const nlohmann::json j = tmem_bench_json(r);
  EXPECT_EQ(j["pages"], r.pages);
  EXPECT_EQ(j["compressors"].size(), 3U);
}

TEST(TmemBench, PoolsGiveEveryPageBackAndDedupFindsCopies) {
  const Files f;
  // A copy of a text file: its pages are duplicates dedup can share.
  fs::copy_file(f.text / "notes0.txt", f.text / "sub" / "copy.txt");
  const std::uint64_t copy_pages = expected_pages(f.text / "notes0.txt");
  TmemBenchConfig cfg;
  cfg.groups = f.groups();
  TmemBenchProgress quiet;
  const TmemBenchResult r = run_tmem_bench(cfg, quiet);
  for (const CompressorRun& run : r.runs) {
    ASSERT_TRUE(run.pool && run.pool_dedup) << run.library;
    for (const PoolPass* p : {&*run.pool, &*run.pool_dedup}) {
      EXPECT_EQ(p->puts, r.pages);
      EXPECT_EQ(p->stored, r.pages);
      EXPECT_EQ(p->got, r.pages) << "every page put is found";
      EXPECT_EQ(p->mismatches, 0U) << "every page comes back equal";
      EXPECT_EQ(p->apparent_pages, r.pages);
      EXPECT_GT(p->pages_used, 0U);
      EXPECT_LT(p->pages_used, r.pages) << "text compresses";
      EXPECT_EQ(p->pages_used_after_gets, 0U) << "private ephemeral gets are exclusive";
      EXPECT_GT(p->put_cpu_s, 0);
    }
    EXPECT_EQ(run.pool->deduped_puts, 0U);
    EXPECT_GE(run.pool_dedup->deduped_puts, copy_pages);
    EXPECT_LE(run.pool_dedup->pages_used, run.pool->pages_used);
    // The pool keeps what the library makes of the pages, packed into pages.
    EXPECT_EQ(run.pool->compressed_puts, r.pages - run.library_pass.raw_pages);
  }
}

TEST(TmemBench, MeasuresAProfileThatLoads) {
  const Files f;
  const std::string text_list =
      testing::write_file(f.dir / "text.list", (f.text / "notes0.txt").string() + "\n" +
                                                   (f.text / "sub" / "notes1.txt").string() + "\n");
  const std::string random_list =
      testing::write_file(f.dir / "random.list", (f.random / "blob0.bin").string() + "\n");
  TmemBenchProgress quiet;
  const CompressionProfile p = measure_compression_profile(
      {{ContentClass::kText, text_list}, {ContentClass::kOpaque, random_list}}, 1000, 0,
      R"({"sources": "test files"})", quiet);
  const std::string path = testing::write_file(f.dir / "profile.json", p.to_json());
  const CompressionProfile q = CompressionProfile::load(path);
  for (const auto& c : kCompressorSpellings) {
    EXPECT_GT(q.mean_ratio(c.value, ContentClass::kText), 2.0) << c.name;
    EXPECT_DOUBLE_EQ(q.stats(c.value, ContentClass::kOpaque)->raw_share, 1.0) << c.name;
    EXPECT_EQ(
        q.stats(c.value, ContentClass::kText)->pages,
        expected_pages(f.text / "notes0.txt") + expected_pages(f.text / "sub" / "notes1.txt"));
  }
}

// The command, run as a program: its exit status and its first line of stderr.
std::pair<int, std::string> run_memvirt(const std::string& args) {
  const char* bin = std::getenv("MEMVIRT_BIN");
  const std::string err = (testing::temp_dir() / "stderr.txt").string();
  const int status = std::system(fmt::format("{} {} >/dev/null 2>{}", bin, args, err).c_str());
  std::ifstream in(err);
  std::string line;
  std::getline(in, line);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, line};
}

TEST(TmemBenchCommand, BadFlagsAndMissingPathsAreOneLineErrors) {
  if (std::getenv("MEMVIRT_BIN") == nullptr)
    GTEST_SKIP() << "MEMVIRT_BIN not set: run through ctest";
  auto [status, line] = run_memvirt("bench tmem --source /nonexistent/linux -q");
  EXPECT_EQ(status, 2);
  EXPECT_EQ(line, "memvirt: --source: /nonexistent/linux: no such file or directory");
  std::tie(status, line) = run_memvirt("bench tmem --compressor lz5 --no-defaults --text /tmp -q");
  EXPECT_EQ(status, 2);
  EXPECT_NE(line.find("--compressor"), std::string::npos) << line;
  std::tie(status, line) = run_memvirt("bench tmem --pages zero -q");
  EXPECT_NE(status, 0);
  EXPECT_NE(line.find("--pages"), std::string::npos) << line;
  std::tie(status, line) =
      run_memvirt("bench tmem --profile-out /tmp/x.json --class sauce=/tmp -q");
  EXPECT_EQ(status, 2);
  EXPECT_NE(line.find("--class"), std::string::npos) << line;
}

TEST(TmemBenchCommand, WritesResultsJson) {
  if (std::getenv("MEMVIRT_BIN") == nullptr)
    GTEST_SKIP() << "MEMVIRT_BIN not set: run through ctest";
  const Files f;
  const fs::path out = f.dir / "out";
  const auto [status, line] = run_memvirt(
      fmt::format("bench tmem --no-defaults --text {} --binary {} --library-only -q -o {}",
                  f.text.string(), f.random.string(), out.string()));
  // The random files are not ELF: the binary group is empty, the text group is not.
  EXPECT_EQ(status, 0) << line;
  std::ifstream in(out / "results.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["pages"], expected_pages(f.text));
  EXPECT_EQ(j["compressors"].size(), 3U);
}

}  // namespace
}  // namespace memvirt
