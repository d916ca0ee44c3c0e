// Scenario files that compose: `base:`, the merge rules, and where errors point.
#include "core/compose.hpp"

#include <gtest/gtest.h>

#include <utility>

#include "test_util.hpp"

namespace memvirt {
namespace {

namespace fs = std::filesystem;
using testing::temp_dir;
using testing::write_file;

// A base and a file on it, composed, with a context that knows where values came from.
struct Composed {
  std::shared_ptr<ParamContext> ctx;
  YAML::Node root;
  Params params() { return Params(root, "", ctx); }
};

Composed compose(const std::string& file, const std::vector<std::string>& overrides = {}) {
  Composed c;
  c.ctx = std::make_shared<ParamContext>(file);
  c.root = compose_file(file, overrides, *c.ctx);
  return c;
}

// Where the unknown-key check of `read` on `c` finds its first unknown key; a test failure
// when it finds none.
template <typename Read>
SourcePlace unknown_key_place(Read& read, Composed& c) {
  try {
    read(c);
  } catch (const InputError& e) {
    return e.place();
  }
  ADD_FAILURE() << "unknown key accepted";
  return {};
}

const char* kBase = R"(name: base-name
seed: 7
host:
  memory: 256GiB
  vm_budget: 230GiB
reclaim:
  - impl: ppr
    reclaim_period: 10s
  - impl: pageone
    merge_period: 600s
experiment: {type: density, duration: 2h}
)";

TEST(Compose, DerivedValueOverridesBaseAndMapsMergeKeyByKey) {
  const fs::path dir = temp_dir();
  write_file(dir / "base.yaml", kBase);
  const std::string file = write_file(dir / "d.yaml", "base: base.yaml\nhost:\n  memory: 64GiB\n");
  Composed c = compose(file);
  Params p = c.params();
  Params host = p.child("host");
  EXPECT_EQ(host.bytes("memory", Bytes{0}, ""), Bytes{64ULL << 30});      // the derived value
  EXPECT_EQ(host.bytes("vm_budget", Bytes{0}, ""), Bytes{230ULL << 30});  // the base's, kept
  EXPECT_EQ(p.integer("seed", 0, ""), 7);
  EXPECT_EQ(p.sequence("reclaim").size(), 2U);
  EXPECT_FALSE(std::as_const(c.root)["base"]);
  EXPECT_EQ(c.ctx->file_of("host.memory"), file);
  EXPECT_EQ(c.ctx->file_of("host.vm_budget"), (dir / "base.yaml").string());
}

TEST(Compose, ListsAndScalarsReplaceWholesale) {
  const fs::path dir = temp_dir();
  write_file(dir / "base.yaml", kBase);
  const std::string file = write_file(
      dir / "d.yaml", "base: base.yaml\nreclaim:\n  - impl: ksm\nexperiment: {type: fixed}\n");
  Composed c = compose(file);
  Params p = c.params();
  auto list = p.sequence("reclaim");
  ASSERT_EQ(list.size(), 1U);
  EXPECT_EQ(list[0].string("impl", "", ""), "ksm");
  EXPECT_FALSE(list[0].has("reclaim_period"));
  EXPECT_EQ(p.child("experiment").string("type", "", ""), "fixed");
  EXPECT_EQ(p.child("experiment").duration("duration", Duration{0}, ""), Duration::seconds(7200));
}

TEST(Compose, DottedKeysAndNumberKeyedMapsAddressListElements) {
  const fs::path dir = temp_dir();
  write_file(dir / "base.yaml", kBase);
  const std::string dotted = write_file(
      dir / "dotted.yaml", "base: base.yaml\nreclaim.1.merge_period: 200s\nexperiment.vms: 9\n");
  const std::string nested =
      write_file(dir / "nested.yaml",
                 "base: base.yaml\nreclaim:\n  1: {merge_period: 200s}\nexperiment:\n  vms: 9\n");
  const std::string mixed =
      write_file(dir / "mixed.yaml", "base: base.yaml\nreclaim: {1.merge_period: 200s}\n");
  for (const std::string& file : {dotted, nested, mixed}) {
    Composed c = compose(file);
    Params p = c.params();
    auto list = p.sequence("reclaim");
    ASSERT_EQ(list.size(), 2U) << file;
    EXPECT_EQ(list[1].duration("merge_period", Duration{0}, ""), Duration::seconds(200)) << file;
    EXPECT_EQ(list[1].string("impl", "", ""), "pageone") << file;  // the rest of the entry
    EXPECT_EQ(list[0].duration("reclaim_period", Duration{0}, ""), Duration::seconds(10));
    EXPECT_EQ(c.ctx->file_of("reclaim[1].merge_period"), file);
    EXPECT_EQ(c.ctx->file_of("reclaim[1].impl"), (dir / "base.yaml").string());
  }
  Composed c = compose(dotted);
  EXPECT_EQ(c.params().child("experiment").integer("vms", 0, ""), 9);
  EXPECT_EQ(c.params().child("experiment").string("type", "", ""), "density");
}

TEST(Compose, TheIndexOnePastTheEndAddsAnEntry) {
  const fs::path dir = temp_dir();
  write_file(dir / "base.yaml", kBase);
  const std::string file = write_file(
      dir / "d.yaml", "base: base.yaml\nreclaim.2.impl: ksm\nreclaim:\n  3: {impl: reporting}\n");
  Composed c = compose(file);
  auto list = c.params().sequence("reclaim");
  ASSERT_EQ(list.size(), 4U);
  EXPECT_EQ(list[2].string("impl", "", ""), "ksm");
  EXPECT_EQ(list[3].string("impl", "", ""), "reporting");
  // With no list in the base, a map of indices makes one.
  const std::string fresh =
      write_file(dir / "fresh.yaml", "base: base.yaml\nextra: {0: {a: 1}, 1: {a: 2}}\n");
  Composed f = compose(fresh);
  ASSERT_TRUE(std::as_const(f.root)["extra"].IsSequence());
  EXPECT_EQ(std::as_const(f.root)["extra"].size(), 2U);
}

TEST(Compose, AGapIndexNamesTheDerivedFileAndLine) {
  const fs::path dir = temp_dir();
  write_file(dir / "base.yaml", kBase);
  const std::string dotted =
      write_file(dir / "dotted.yaml", "base: base.yaml\nseed: 2\nreclaim.3.impl: ksm\n");
  const std::string nested =
      write_file(dir / "nested.yaml", "base: base.yaml\nreclaim:\n  0: {impl: ksm}\n  5: {}\n");
  for (const auto& [file, line] : {std::pair{dotted, 3}, std::pair{nested, 4}}) {
    try {
      compose(file);
      FAIL() << "accepted a gap: " << file;
    } catch (const InputError& e) {
      EXPECT_EQ(e.place().file, file);
      EXPECT_EQ(e.place().line, line);
      EXPECT_NE(std::string(e.what()).find("'reclaim' is a list of 2"), std::string::npos)
          << e.what();
    }
  }
}

TEST(Compose, ABadValueInTheBaseNamesTheBaseFileAndLine) {
  const fs::path dir = temp_dir();
  std::string base = kBase;
  base.replace(base.find("600s"), 4, "600 seconds");
  const std::string base_file = write_file(dir / "base.yaml", base);
  const std::string file = write_file(dir / "d.yaml", "base: base.yaml\nseed: 2\n");
  Composed c = compose(file);
  try {
    c.params().sequence("reclaim")[1].duration("merge_period", Duration{0}, "");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.place().file, base_file);
    EXPECT_EQ(e.place().line, 10);
    EXPECT_EQ(e.place().field, "reclaim[1].merge_period");
  }
  // The derived file's own bad value names the derived file.
  const std::string bad = write_file(dir / "bad.yaml", "base: base.yaml\n\nseed: lots\n");
  try {
    compose(bad).params().integer("seed", 0, "");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.place().file, bad);
    EXPECT_EQ(e.place().line, 3);
  }
}

TEST(Compose, UnknownKeysNameTheFileThatWroteThem) {
  const fs::path dir = temp_dir();
  std::string base = kBase;
  base.replace(base.find("  vm_budget"), 11, "  vm_budgett");
  const std::string base_file = write_file(dir / "base.yaml", base);
  const std::string file = write_file(dir / "d.yaml", "base: base.yaml\nhost: {memory: 8GiB}\n");
  auto read_all = [](Composed& c) {
    Params p = c.params();
    p.string("name", "", "");
    p.integer("seed", 0, "");
    Params host = p.child("host");
    host.bytes("memory", Bytes{0}, "");
    host.bytes("vm_budget", Bytes{0}, "");
    for (Params m : p.sequence("reclaim")) {
      m.string("impl", "", "");
      m.duration("reclaim_period", Duration{0}, "");
      m.duration("merge_period", Duration{0}, "");
    }
    Params ex = p.child("experiment");
    ex.string("type", "", "");
    ex.duration("duration", Duration{0}, "");
    c.ctx->check_all_read(c.root);
  };
  Composed c = compose(file);
  const SourcePlace in_base = unknown_key_place(read_all, c);
  EXPECT_EQ(in_base.file, base_file);
  EXPECT_EQ(in_base.line, 5);
  EXPECT_EQ(in_base.field, "host.vm_budgett");
  // One in the derived file, written as a dotted key, names the derived file.
  write_file(dir / "base.yaml", kBase);
  const std::string typo =
      write_file(dir / "typo.yaml", "base: base.yaml\nseed: 3\nexperiment.vmz: 4\n");
  Composed t = compose(typo);
  const SourcePlace in_derived = unknown_key_place(read_all, t);
  EXPECT_EQ(in_derived.file, typo);
  EXPECT_EQ(in_derived.line, 3);
  EXPECT_EQ(in_derived.field, "experiment.vmz");
}

TEST(Compose, BasesChainAndACycleNamesTheFiles) {
  const fs::path dir = temp_dir();
  fs::create_directories(dir / "common");
  write_file(dir / "common" / "a.yaml", kBase);
  write_file(dir / "b.yaml", "base: common/a.yaml\nseed: 8\n");
  const std::string c_file = write_file(dir / "c.yaml", "base: b.yaml\nhost: {memory: 1GiB}\n");
  Composed c = compose(c_file);
  EXPECT_EQ(c.params().integer("seed", 0, ""), 8);
  EXPECT_EQ(c.params().child("host").bytes("vm_budget", Bytes{0}, ""), Bytes{230ULL << 30});
  EXPECT_EQ(c.ctx->file_of("host.vm_budget"), (dir / "common" / "a.yaml").string());

  write_file(dir / "x.yaml", "base: y.yaml\nseed: 1\n");
  write_file(dir / "y.yaml", "seed: 2\nbase: x.yaml\n");
  try {
    compose((dir / "x.yaml").string());
    FAIL() << "a cycle was accepted";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.place().file, (dir / "y.yaml").string());
    EXPECT_EQ(e.place().line, 2);
    EXPECT_NE(what.find("cycle"), std::string::npos) << what;
    EXPECT_NE(what.find("x.yaml -> "), std::string::npos) << what;
    EXPECT_NE(what.find("y.yaml -> "), std::string::npos) << what;
  }
  const std::string self = write_file(dir / "self.yaml", "base: self.yaml\n");
  EXPECT_THROW(compose(self), InputError);
}

TEST(Compose, AMissingBaseNamesTheLineThatNamesIt) {
  const fs::path dir = temp_dir();
  const std::string file = write_file(dir / "d.yaml", "seed: 2\nbase: nowhere.yaml\n");
  try {
    compose(file);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.place().file, file);
    EXPECT_EQ(e.place().line, 2);
    EXPECT_EQ(e.place().field, "base");
    EXPECT_NE(std::string(e.what()).find("nowhere.yaml' not found"), std::string::npos) << e.what();
  }
}

TEST(Compose, NameIsNotInheritedAndBaseIsNotAKey) {
  const fs::path dir = temp_dir();
  write_file(dir / "base.yaml", kBase);
  const std::string file = write_file(dir / "derived.yaml", "base: base.yaml\n");
  const ScenarioTree t = load_scenario_tree(file, {});
  EXPECT_EQ(t.name, "derived");  // not base-name
  EXPECT_EQ(t.seed, 7U);
  EXPECT_FALSE(t.root["base"]);
  EXPECT_FALSE(t.ctx->effective()["base"]);
  const std::string named = write_file(dir / "named.yaml", "base: base.yaml\nname: mine\n");
  EXPECT_EQ(load_scenario_tree(named, {}).name, "mine");
  EXPECT_EQ(load_scenario_tree((dir / "base.yaml").string(), {}).name, "base-name");
}

TEST(Compose, OverridesGoOnTopOfTheDerivedFile) {
  const fs::path dir = temp_dir();
  write_file(dir / "base.yaml", kBase);
  const std::string file =
      write_file(dir / "d.yaml", "base: base.yaml\nreclaim.1.merge_period: 200s\n");
  Composed c = compose(file, {"reclaim.1.merge_period=100s", "reclaim.2.impl=ksm", "seed=9"});
  Params p = c.params();
  auto list = p.sequence("reclaim");
  ASSERT_EQ(list.size(), 3U);
  EXPECT_EQ(list[1].duration("merge_period", Duration{0}, ""), Duration::seconds(100));
  EXPECT_EQ(list[2].string("impl", "", ""), "ksm");
  EXPECT_EQ(p.integer("seed", 0, ""), 9);
  try {
    list[1].boolean("merge_period", false, "");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.place().file, kCommandLine);
  }
  try {
    compose(file, {"reclaim.4.impl=ksm"});
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.place().file, kCommandLine);
    EXPECT_EQ(e.place().field, "reclaim.4.impl");
  }
  EXPECT_THROW(compose(file, {"host.memory.x=1"}), InputError);  // host.memory is a value
}

TEST(Compose, AMapCannotGoOntoASingleValue) {
  const fs::path dir = temp_dir();
  write_file(dir / "base.yaml", kBase);
  const std::string file = write_file(dir / "d.yaml", "base: base.yaml\nseed: {x: 1}\n");
  try {
    compose(file);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.place().file, file);
    EXPECT_EQ(e.place().line, 2);
    EXPECT_NE(std::string(e.what()).find("'seed' is a single value"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace memvirt
