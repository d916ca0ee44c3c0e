// summary.csv's statistics against values computed by hand, the results.json paths results
// name, and table cells.
#include "sweep/tables.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "sweep/cells.hpp"
#include "sweep/statistics.hpp"

namespace memvirt::sweep {
namespace {

TEST(SweepStatistics, MeanDeviationIntervalAndTrimmedMeanAsComputedByHand) {
  // 2 4 4 4 5 5 7 9: mean 5, squares about it 32, sample sd sqrt(32 / 7); Student's t for 7
  // degrees of freedom at 0.975 is 2.364624 (tables), so the interval is +- t sd / sqrt(8).
  // Trimmed: 4 4 4 5 5 7, mean 29 / 6.
  const std::vector<double> v{5, 9, 4, 2, 4, 7, 4, 5};
  const Summary s = summarize(v, Aggregate::kTrimmedMean);
  EXPECT_EQ(s.n, 8U);
  EXPECT_DOUBLE_EQ(s.mean, 5.0);
  ASSERT_TRUE(s.sd && s.ci95 && s.trimmed_mean);
  EXPECT_DOUBLE_EQ(*s.sd, std::sqrt(32.0 / 7.0));
  EXPECT_NEAR(*s.ci95, 2.364624 * std::sqrt(32.0 / 7.0) / std::sqrt(8.0), 1e-6);
  EXPECT_DOUBLE_EQ(*s.trimmed_mean, 29.0 / 6.0);
  EXPECT_DOUBLE_EQ(s.value(), 29.0 / 6.0);

  // 1 2 6: mean 3, sd sqrt(14 / 2), t(2 dof) = 4.302653; trimmed: 2.
  const Summary three = summarize(std::vector<double>{6, 1, 2}, Aggregate::kTrimmedMean);
  EXPECT_NEAR(*three.ci95, 4.302653 * std::sqrt(7.0) / std::sqrt(3.0), 1e-6);
  EXPECT_DOUBLE_EQ(*three.trimmed_mean, 2.0);

  // Without trimming the table's value is the mean; one value has no spread.
  const Summary plain = summarize(v, Aggregate::kMean);
  EXPECT_FALSE(plain.trimmed_mean);
  EXPECT_DOUBLE_EQ(plain.value(), 5.0);
  const Summary one = summarize(std::vector<double>{0.1}, Aggregate::kMean);
  EXPECT_EQ(one.mean, 0.1);
  EXPECT_FALSE(one.sd);
  EXPECT_FALSE(one.ci95);
  // Equal values: their value exactly, and no spread.
  const Summary same = summarize(std::vector<double>{0.1, 0.1, 0.1}, Aggregate::kMean);
  EXPECT_EQ(same.mean, 0.1);
  EXPECT_EQ(*same.sd, 0.0);
  // The order of the values does not matter, to the last bit.
  const Summary reordered =
      summarize(std::vector<double>{2, 9, 5, 4, 7, 4, 5, 4}, Aggregate::kTrimmedMean);
  EXPECT_EQ(reordered.mean, s.mean);
  EXPECT_EQ(*reordered.sd, *s.sd);
  EXPECT_EQ(*reordered.ci95, *s.ci95);
}

TEST(SweepTables, ResultPathsWalkObjectsAndIndexLists) {
  const auto j = nlohmann::json::parse(
      R"({"run": {"ops": [1.5, 2.5], "vms": 3}, "cpu_percent": {"pageone_workers": 2.7}})");
  ASSERT_NE(find_result(j, "run.ops.1"), nullptr);
  EXPECT_EQ(find_result(j, "run.ops.1")->get<double>(), 2.5);
  EXPECT_EQ(find_result(j, "run.vms")->get<int>(), 3);
  EXPECT_EQ(find_result(j, "cpu_percent.pageone_workers")->get<double>(), 2.7);
  EXPECT_EQ(find_result(j, "run.ops.2"), nullptr);
  EXPECT_EQ(find_result(j, "run.missing"), nullptr);
  EXPECT_EQ(find_result(j, "run.vms.0"), nullptr);
}

TEST(SweepTables, GiveBackIsTheTimeFromThePeakToNinetyPercentOfTheWayDown) {
  // Peak 10 at t = 20; the lowest within 120 s is 0 (t = 60), so the target is 1.0, first
  // reached at t = 50: 30 s. The later dip below 0 (t = 200) is outside the window.
  const std::vector<double> t{0, 10, 20, 30, 40, 50, 60, 200};
  const std::vector<double> v{1, 5, 10, 8, 4, 1.0, 0, -5};
  EXPECT_EQ(*series_statistic(t, v, SeriesStatistic::kGiveBack), 30.0);
  EXPECT_EQ(*series_statistic(t, v, SeriesStatistic::kMax), 10.0);
  EXPECT_EQ(*series_statistic(t, v, SeriesStatistic::kMin), -5.0);
  EXPECT_EQ(*series_statistic(t, v, SeriesStatistic::kLast), -5.0);
  // Memory that never comes back: none.
  const std::vector<double> flat{1, 5, 10, 10, 10, 10, 10, 10};
  EXPECT_FALSE(series_statistic(t, flat, SeriesStatistic::kGiveBack));
  EXPECT_FALSE(series_statistic({}, {}, SeriesStatistic::kMax));
}

TEST(SweepTables, CellsFormatNumbersTextsAndNothing) {
  const CellValues v{{"avg", CellValue::of(153.456)},
                     {"period", CellValue::of(std::string("5s"))},
                     {"none", CellValue::none()}};
  EXPECT_EQ(format_cell("{period} / {avg:.1f} GiB, {none:.2f}", v), "5s / 153.5 GiB, -");
  EXPECT_THROW((void)format_cell("{avgg}", v), fmt::format_error);
}

}  // namespace
}  // namespace memvirt::sweep
