#include <gtest/gtest.h>

#include "core/error.hpp"
#include "test_util.hpp"
#include "translation/workloads/lackey_trace.hpp"

namespace memvirt::translation {
namespace {

TEST(TraceLackey, ParsesDataReferencesAndSkipsTheRest) {
  const auto t = parse_lackey_trace("t.lackey",
                                    "==42== Lackey, an example Valgrind tool\n"
                                    "# a comment\n"
                                    "I  04000b30,3\n"
                                    " S 1ffefffd08,8\n"
                                    "\n"
                                    " L 04022e10,8\r\n"
                                    " M 0402a5b0,4\n");
  EXPECT_EQ(t.addresses, (std::vector<std::uint64_t>{0x1ffefffd08, 0x04022e10, 0x0402a5b0}));
  EXPECT_EQ(t.instruction_fetches, 1U);
}

// Each bad line is reported with the file, its line number and the field at fault.
TEST(TraceLackey, BadInputNamesFileLineAndField) {
  struct Case {
    const char* text;
    int line;
    const char* field;
  };
  for (const Case c :
       {Case{" L 0400,8\n X 0400,8\n", 2, "operation"}, Case{"L 0400,8\n", 1, "operation"},
        Case{" L 04zz,8\n", 1, "address"}, Case{" L ,8\n", 1, "address"},
        Case{" L 0400\n", 1, "address"}, Case{"\n\n L 0400,x\n", 3, "size"},
        Case{" L 0400,0\n", 1, "size"}, Case{" L 0400,\n", 1, "size"},
        Case{" L 1000000000000,8\n", 1, "address"}, Case{"==1== only messages\n", 0, "trace"}}) {
    try {
      parse_lackey_trace("bad.lackey", c.text);
      ADD_FAILURE() << "accepted: " << c.text;
    } catch (const InputError& e) {
      EXPECT_EQ(e.place().file, "bad.lackey");
      EXPECT_EQ(e.place().line, c.line) << c.text;
      EXPECT_EQ(e.place().field, c.field) << c.text;
    }
  }
}

TEST(TraceLackey, MissingFileIsAnInputError) {
  EXPECT_THROW(load_lackey_trace("/nonexistent/x.lackey"), InputError);
}

TEST(TraceLackey, ShippedFixtureIsARealRecording) {
  const auto t =
      load_lackey_trace(memvirt::testing::source_path("tests/translation/data/sort200.lackey"));
  EXPECT_EQ(t.addresses.size(), 15000U);
}

}  // namespace
}  // namespace memvirt::translation
