#include "core/event_queue.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "core/cost.hpp"
#include "core/rng.hpp"
#include "core/stats.hpp"

namespace memvirt {
namespace {

TEST(EventQueue, FiresInTimeThenPriorityThenSchedulingOrder) {
  EventQueue q;
  std::vector<int> order;
  q.at(TimePoint{20}, 5, [&](TimePoint) { order.push_back(4); });
  q.at(TimePoint{10}, 9, [&](TimePoint) { order.push_back(3); });
  q.at(TimePoint{10}, 1, [&](TimePoint) { order.push_back(1); });
  q.at(TimePoint{10}, 1, [&](TimePoint) { order.push_back(2); });
  while (q.step(TimePoint::max())) {
  }
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(q.now(), TimePoint{20});
}

TEST(EventQueue, RefusesEventsInThePastAndStopsAtTheLimit) {
  EventQueue q;
  q.at(TimePoint{50}, 0, [](TimePoint) {});
  EXPECT_FALSE(q.step(TimePoint{49}));
  EXPECT_TRUE(q.step(TimePoint{50}));
  EXPECT_THROW(q.at(TimePoint{10}, 0, [](TimePoint) {}), std::logic_error);
}

TEST(PeriodicDaemon, ReschedulesItselfUntilStopped) {
  EventQueue q;
  std::vector<std::int64_t> runs;
  PeriodicDaemon d(q, 0, [&](TimePoint now) {
    runs.push_back(now.ns());
    return Duration{100};
  });
  d.start(Duration{5});
  while (q.step(TimePoint{350})) {
  }
  EXPECT_EQ(runs, (std::vector<std::int64_t>{5, 105, 205, 305}));
  d.stop();
  while (q.step(TimePoint{1000})) {
  }
  EXPECT_EQ(runs.size(), 4U);
}

TEST(Rng, StreamsAreReproducibleAndIndependent) {
  Rng a(7, "vm", 3), b(7, "vm", 3), c(7, "vm", 4), d(8, "vm", 3);
  for (int i = 0; i < 100; ++i) {
    const auto x = a.next();
    EXPECT_EQ(x, b.next());
    EXPECT_NE(x, c.next());
    EXPECT_NE(x, d.next());
  }
}

TEST(Rng, UniformAndBelowStayInRange) {
  Rng r(1, "t");
  double sum = 0;
  for (int i = 0; i < 100000; ++i) {
    const double u = r.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    ASSERT_LT(r.below(7), 7U);
  }
  EXPECT_NEAR(sum / 100000, 0.5, 0.01);
}

TEST(Stats, TimeWeightedGaugeIntegratesAStepFunction) {
  TimeWeightedGauge g;
  g.reset(TimePoint{0}, 10);
  g.set(TimePoint{100}, 30);  // 10 for 100 ns
  g.set(TimePoint{400}, 0);   // 30 for 300 ns
  g.close(TimePoint{500});    // 0 for 100 ns
  EXPECT_DOUBLE_EQ(g.mean(), (10.0 * 100 + 30.0 * 300) / 500);
  EXPECT_EQ(g.min(), 0);
  EXPECT_EQ(g.max(), 30);
}

TEST(CostAccount, PercentIsBusyTimeOverElapsedPerThread) {
  CostAccount a("daemon", 2);
  a.charge(CpuTime{500'000'000'000});  // 0.5 s
  EXPECT_DOUBLE_EQ(a.cpu_percent(Duration::seconds(10)), 2.5);
}

}  // namespace
}  // namespace memvirt
