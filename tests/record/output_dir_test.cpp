// Output files are written whole or not at all.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "core/error.hpp"
#include "lab/files.hpp"
#include "record/output_dir.hpp"
#include "test_util.hpp"

namespace memvirt {
namespace {

namespace fs = std::filesystem;

TEST(OutputDir, AnInterruptedWriteLeavesThePreviousFileAndNoPartialOne) {
  const fs::path dir = testing::temp_dir();
  const OutputDir out(dir.string());
  out.write("results.json", [](std::ostream& f) { f << "{\"complete\": true}\n"; });
  EXPECT_EQ(read_file(dir / "results.json"), "{\"complete\": true}\n");
  EXPECT_THROW(out.write("results.json",
                         [](std::ostream& f) {
                           f << "{\"comp";
                           throw std::runtime_error("interrupted");
                         }),
               std::runtime_error);
  EXPECT_EQ(read_file(dir / "results.json"), "{\"complete\": true}\n");
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    ++files;
    EXPECT_EQ(e.path().filename(), "results.json");
  }
  EXPECT_EQ(files, 1U);
}

TEST(OutputDir, AFileThatCannotBeWrittenIsAnInputErrorNamingIt) {
  const fs::path dir = testing::temp_dir();
  const OutputDir out(dir.string());
  fs::create_directory(dir / "results.json");  // a folder where the file should go
  try {
    out.write("results.json", [](std::ostream& f) { f << "x"; });
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("results.json"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace memvirt
