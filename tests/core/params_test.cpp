#include "core/params.hpp"

#include <gtest/gtest.h>

#include "core/cost.hpp"
#include "test_util.hpp"

namespace memvirt {
namespace {

Params view(const std::string& yaml, std::shared_ptr<ParamContext>* ctx, YAML::Node* root) {
  *ctx = std::make_shared<ParamContext>("s.yaml");
  *root = YAML::Load(yaml);
  return Params(*root, "", *ctx);
}

TEST(Params, ReadsValuesWithUnitsAndRecordsDefaults) {
  std::shared_ptr<ParamContext> ctx;
  YAML::Node root;
  Params p = view("a:\n  size: 4GiB\n  every: 2s\n", &ctx, &root);
  Params a = p.child("a");
  EXPECT_EQ(a.bytes("size", Bytes{0}, "").value(), 4ULL << 30);
  EXPECT_EQ(a.duration("every", Duration{0}, "").ns(), 2'000'000'000);
  EXPECT_EQ(a.integer("count", 7, ""), 7);
  ctx->check_all_read(root);
  EXPECT_EQ(ctx->effective()["a"]["count"].as<int>(), 7);
  EXPECT_EQ(ctx->effective()["a"]["size"].as<std::string>(), "4GiB");
}

TEST(Params, UnknownKeyIsReportedWithFileLineAndPath) {
  std::shared_ptr<ParamContext> ctx;
  YAML::Node root;
  Params p = view("a:\n  size: 4GiB\n  szie: 3\n", &ctx, &root);
  p.child("a").bytes("size", Bytes{0}, "");
  try {
    ctx->check_all_read(root);
    FAIL() << "unknown key accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(e.place().file, "s.yaml");
    EXPECT_EQ(e.place().line, 3);
    EXPECT_EQ(e.place().field, "a.szie");
  }
}

TEST(Params, BadValueNamesItsLine) {
  std::shared_ptr<ParamContext> ctx;
  YAML::Node root;
  Params p = view("x: 1\ny: lots\n", &ctx, &root);
  try {
    p.integer("y", 0, "");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.place().line, 2);
    EXPECT_NE(std::string(e.what()).find("s.yaml:2: y:"), std::string::npos) << e.what();
  }
  EXPECT_THROW(p.integer("x", 0, "", 5, 10), InputError);
}

TEST(Params, OverridesReplaceAndCreateKeys) {
  auto ctx = std::make_shared<ParamContext>("s.yaml");
  YAML::Node root = YAML::Load("a:\n  b: 1\n");
  apply_overrides(root, {"a.b=2", "c.d=3GiB"}, *ctx);
  Params p(root, "", ctx);
  EXPECT_EQ(p.child("a").integer("b", 0, ""), 2);
  EXPECT_EQ(p.child("c").bytes("d", Bytes{0}, "").value(), 3ULL << 30);
  EXPECT_THROW(apply_overrides(root, {"novalue"}, *ctx), InputError);
  EXPECT_THROW(apply_overrides(root, {"a.b.c=1"}, *ctx), InputError);  // a.b is a scalar
  try {
    p.child("a").boolean("b", false, "");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.place().file, "command line -p");
  }
}

TEST(Params, OverridesReachListElements) {
  auto ctx = std::make_shared<ParamContext>("s.yaml");
  YAML::Node root = YAML::Load("reclaim:\n  - {impl: ppr, period: 10s}\n  - {impl: ksm}\n");
  apply_overrides(root, {"reclaim.0.period=5s", "reclaim.1.pages=7"}, *ctx);
  Params p(root, "", ctx);
  auto list = p.sequence("reclaim");
  EXPECT_EQ(list[0].duration("period", Duration{0}, "").ns(), 5'000'000'000);
  EXPECT_EQ(list[1].integer("pages", 0, ""), 7);
  try {
    list[0].boolean("period", false, "");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.place().file, "command line -p");  // the override is named, not the file
  }
  EXPECT_THROW(apply_overrides(root, {"reclaim.3.period=1s"}, *ctx), InputError);
  EXPECT_THROW(apply_overrides(root, {"reclaim.x.period=1s"}, *ctx), InputError);
}

TEST(CostProfile, DefaultProfileLoadsWithASourceForEveryOperation) {
  const CostProfile p = CostProfile::load(testing::source_path("profiles/default.yaml"));
  for (std::size_t i = 0; i < static_cast<std::size_t>(Op::kCount); ++i) {
    EXPECT_GT(p.cost(static_cast<Op>(i)).ps, 0U) << kOpInfo[i].key;
    EXPECT_FALSE(p.source(static_cast<Op>(i)).empty());
  }
}

TEST(CostProfile, RoundTripsThroughYamlAndRejectsMissingSources) {
  const CostProfile p = testing::unit_costs();
  auto ctx = std::make_shared<ParamContext>("p.yaml");
  YAML::Node root = YAML::Load(p.to_yaml());
  const CostProfile q = CostProfile::from_params(Params(root, "", ctx));
  for (std::size_t i = 0; i < static_cast<std::size_t>(Op::kCount); ++i) {
    EXPECT_EQ(q.cost(static_cast<Op>(i)).ps, p.cost(static_cast<Op>(i)).ps);
  }
  root["operations"]["xxh64_page"].remove("source");
  EXPECT_THROW(CostProfile::from_params(Params(root, "", ctx)), InputError);
}

}  // namespace
}  // namespace memvirt

namespace memvirt {
namespace {

TEST(Params, OverridesAppendListEntries) {
  auto ctx = std::make_shared<ParamContext>("s.yaml");
  YAML::Node root = YAML::Load("reclaim: []\n");
  apply_overrides(
      root, {"reclaim.0.impl=reporting", "reclaim.0.order=0", "reclaim.1.impl=ksm", "extra.0.a=1"},
      *ctx);
  Params p(root, "", ctx);
  auto list = p.sequence("reclaim");
  ASSERT_EQ(list.size(), 2U);
  EXPECT_EQ(list[0].string("impl", "", ""), "reporting");
  EXPECT_EQ(list[0].integer("order", 9, ""), 0);
  EXPECT_EQ(list[1].string("impl", "", ""), "ksm");
  ASSERT_EQ(p.sequence("extra").size(), 1U);  // a missing list is created by an index
  EXPECT_THROW(apply_overrides(root, {"reclaim.3.impl=ppr"}, *ctx), InputError);  // a gap
}

}  // namespace
}  // namespace memvirt
