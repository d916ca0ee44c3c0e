#include "host/cpu_scheduler.hpp"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/rng.hpp"

namespace memvirt {
namespace {

constexpr CpuTime ms(std::uint64_t n) {
  return CpuTime{n * 1'000'000'000ULL};
}
constexpr std::int64_t kMs = 1'000'000;  // ns

void drain(EventQueue& q) {
  while (q.step(TimePoint::max())) {
  }
}

// Starts a task and records when it completes.
struct Tracker {
  explicit Tracker(CpuScheduler& sched) : s(sched) {}
  CpuScheduler& s;
  std::map<std::uint64_t, std::int64_t> done;  // task id -> completion ns
  TaskId run(GroupId g, CpuTime work) {
    auto id = std::make_shared<std::uint64_t>(0);
    const TaskId t = s.run(g, work, [this, id](TimePoint now) { done[*id] = now.ns(); });
    *id = t.value();
    return t;
  }
  std::int64_t at(TaskId t) const {
    const auto it = done.find(t.value());
    return it == done.end() ? -1 : it->second;
  }
};

TEST(CpuScheduler, OneTaskAloneTakesItsWork) {
  EventQueue q;
  CpuScheduler s(q, 4);
  const GroupId vm = s.add_group(2);
  Tracker t(s);
  const TaskId a = t.run(vm, ms(3));
  EXPECT_TRUE(s.running(a));
  EXPECT_DOUBLE_EQ(s.task_rate(vm), 1.0);
  drain(q);
  EXPECT_EQ(t.at(a), 3 * kMs);
  EXPECT_FALSE(s.running(a));
  EXPECT_EQ(s.consumed(vm).ps, ms(3).ps);
  EXPECT_EQ(s.busy().ps, ms(3).ps);
  EXPECT_DOUBLE_EQ(s.utilisation(), 0.25);  // 1 CPU of 4 for the whole run
  EXPECT_EQ(s.stats().tasks_completed.value(), 1U);
}

TEST(CpuScheduler, TwoTasksOnOneCpuTakeTwiceAsLong) {
  EventQueue q;
  CpuScheduler s(q, 1);
  const GroupId vm = s.add_group(1);
  Tracker t(s);
  const TaskId a = t.run(vm, ms(1));
  const TaskId b = t.run(vm, ms(1));
  EXPECT_DOUBLE_EQ(s.task_rate(vm), 0.5);
  drain(q);
  EXPECT_EQ(t.at(a), 2 * kMs);
  EXPECT_EQ(t.at(b), 2 * kMs);
}

TEST(CpuScheduler, ShorterTaskLeavesAndTheOtherSpeedsUp) {
  EventQueue q;
  CpuScheduler s(q, 1);
  const GroupId vm = s.add_group(1);
  Tracker t(s);
  const TaskId a = t.run(vm, ms(1));
  const TaskId b = t.run(vm, ms(3));
  drain(q);
  EXPECT_EQ(t.at(a), 2 * kMs);  // half speed until done
  EXPECT_EQ(t.at(b), 4 * kMs);  // 1 ms done at 2 ms, then 2 ms alone
}

TEST(CpuScheduler, OneVcpuWithTwoTasksAgainstTwoVcpusOnTwoCpus) {
  EventQueue q;
  CpuScheduler s(q, 2);
  const GroupId small = s.add_group(1);
  const GroupId large = s.add_group(2);
  Tracker t(s);
  const TaskId a1 = t.run(small, ms(2));
  const TaskId a2 = t.run(small, ms(2));
  const TaskId b1 = t.run(large, ms(2));
  const TaskId b2 = t.run(large, ms(2));
  // D = 1 + 2 = 3 vCPUs on 2 CPUs: each vCPU gets 2/3.
  EXPECT_DOUBLE_EQ(s.group_cpus(small), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.group_cpus(large), 4.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.task_rate(small), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.task_rate(large), 2.0 / 3.0);
  drain(q);
  EXPECT_EQ(t.at(b1), 3 * kMs);
  EXPECT_EQ(t.at(b2), 3 * kMs);
  // At 3 ms each small task has done 1 ms; then its vCPU alone, shared by two: 1/2 each.
  EXPECT_EQ(t.at(a1), 5 * kMs);
  EXPECT_EQ(t.at(a2), 5 * kMs);
  EXPECT_EQ(s.consumed(small).ps, ms(4).ps);
  EXPECT_EQ(s.consumed(large).ps, ms(4).ps);
  EXPECT_EQ(s.busy().ps, ms(8).ps);        // 2 CPUs for 3 ms, 1 for 2 ms
  EXPECT_DOUBLE_EQ(s.utilisation(), 0.8);  // 8 / (2 * 5)
}

TEST(CpuScheduler, VmCannotUseMoreCpusThanItsVcpus) {
  EventQueue q;
  CpuScheduler s(q, 8);
  const GroupId vm = s.add_group(2);
  Tracker t(s);
  for (int i = 0; i < 4; ++i) t.run(vm, ms(1));
  EXPECT_DOUBLE_EQ(s.group_cpus(vm), 2.0);
  EXPECT_DOUBLE_EQ(s.task_rate(vm), 0.5);
  drain(q);
  for (const auto& [id, at] : t.done) EXPECT_EQ(at, 2 * kMs) << id;
  EXPECT_EQ(s.busy().ps, ms(4).ps);
}

TEST(CpuScheduler, OvercommittedHostRunsEachVcpuAtHalfSpeed) {
  EventQueue q;
  CpuScheduler s(q, 2);
  std::vector<GroupId> vms;
  for (int i = 0; i < 4; ++i) vms.push_back(s.add_group(1));
  Tracker t(s);
  std::vector<TaskId> tasks;
  for (const GroupId vm : vms) tasks.push_back(t.run(vm, ms(1)));
  for (const GroupId vm : vms) EXPECT_DOUBLE_EQ(s.task_rate(vm), 0.5);
  drain(q);
  for (const TaskId task : tasks) EXPECT_EQ(t.at(task), 2 * kMs);
  EXPECT_DOUBLE_EQ(s.utilisation(), 1.0);
  for (const GroupId vm : vms) EXPECT_EQ(s.consumed(vm).ps, ms(1).ps);
}

TEST(CpuScheduler, HostGroupCompetesLikeAVm) {
  EventQueue q;
  CpuScheduler s(q, 2);
  const GroupId vm = s.add_group(2);
  const GroupId dom0 = s.add_group(2);  // dom0's 2 vCPUs, or QEMU's I/O threads
  Tracker t(s);
  const TaskId guest = t.run(vm, ms(1));
  const TaskId io1 = t.run(dom0, ms(1));
  const TaskId io2 = t.run(dom0, ms(1));
  // D = 1 + 2 on 2 CPUs: every thread at 2/3.
  EXPECT_DOUBLE_EQ(s.task_rate(vm), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.task_rate(dom0), 2.0 / 3.0);
  drain(q);
  EXPECT_EQ(t.at(guest), 1'500'000);
  EXPECT_EQ(t.at(io1), 1'500'000);
  EXPECT_EQ(t.at(io2), 1'500'000);
}

TEST(CpuScheduler, CompletesAtTheFirstNanosecondItsWorkIsDone) {
  EventQueue q;
  CpuScheduler s(q, 3);
  std::vector<GroupId> vms;
  for (int i = 0; i < 7; ++i) vms.push_back(s.add_group(1));
  Tracker t(s);
  std::vector<TaskId> tasks;
  for (const GroupId vm : vms) tasks.push_back(t.run(vm, ms(1)));
  drain(q);
  // 3/7 of a CPU each: 7/3 ms = 2,333,333.33 ns.
  for (const TaskId task : tasks) EXPECT_EQ(t.at(task), 2'333'334);
  // The CPUs were busy to the end of that nanosecond: a little more than the work.
  EXPECT_EQ(s.busy().ps, 3ULL * 2'333'334'000ULL);
  std::uint64_t sum = 0;
  for (const GroupId vm : vms) sum += s.consumed(vm).ps;
  EXPECT_LE(sum, s.busy().ps);
  EXPECT_GE(sum + vms.size(), s.busy().ps);
}

// Work done is brought up to date at every arrival, here after 1 ns at a third of a CPU
// (333.33 ps, not a whole number of units): the rounding must not push a completion that is
// exactly on a nanosecond to the next one.
TEST(CpuScheduler, ArrivalElsewhereDoesNotDelayACompletionOnTheNanosecond) {
  EventQueue q;
  CpuScheduler s(q, 2);
  const GroupId a = s.add_group(1);
  const GroupId b = s.add_group(1);
  Tracker t(s);
  std::vector<TaskId> thirds;
  for (int i = 0; i < 3; ++i) thirds.push_back(t.run(a, ms(1)));
  TaskId other{};
  q.at(TimePoint{1}, EventQueue::kWorkload, [&](TimePoint) { other = t.run(b, ms(1)); });
  drain(q);
  // D = 2 on 2 CPUs: the arrival leaves group a's rate at 1/3.
  for (const TaskId task : thirds) EXPECT_EQ(t.at(task), 3 * kMs);
  EXPECT_EQ(t.at(other), 1 * kMs + 1);
  EXPECT_EQ(s.consumed(a).ps, ms(3).ps);
}

TEST(CpuScheduler, CancelStopsATaskAndReturnsItsProgress) {
  EventQueue q;
  CpuScheduler s(q, 1);
  const GroupId vm = s.add_group(1);
  Tracker t(s);
  const TaskId a = t.run(vm, ms(2));
  const TaskId b = t.run(vm, ms(2));
  CpuTime progress{};
  q.at(TimePoint{1 * kMs}, EventQueue::kWorkload, [&](TimePoint) {
    EXPECT_EQ(s.progress(b).ps, 500'000'000U);
    progress = s.cancel(b);
    EXPECT_FALSE(s.running(b));
    EXPECT_EQ(s.cancel(b).ps, 0U);  // once only
  });
  drain(q);
  EXPECT_EQ(progress.ps, 500'000'000U);  // half a CPU for 1 ms
  EXPECT_EQ(t.at(b), -1);                // its callback never ran
  EXPECT_EQ(t.at(a), 2'500'000);         // 0.5 ms done at 1 ms, then 1.5 ms alone
  EXPECT_EQ(s.consumed(vm).ps, ms(2).ps + progress.ps);
  EXPECT_EQ(s.stats().tasks_cancelled.value(), 1U);
  EXPECT_EQ(s.cancel(a).ps, 0U);  // completed: nothing to cancel
}

TEST(CpuScheduler, ZeroWorkCompletesNowFromAnEvent) {
  EventQueue q;
  q.advance_to(TimePoint{5});
  CpuScheduler s(q, 1);
  const GroupId vm = s.add_group(1);
  Tracker t(s);
  const TaskId a = t.run(vm, CpuTime{});
  EXPECT_EQ(t.at(a), -1);  // not from inside run()
  drain(q);
  EXPECT_EQ(t.at(a), 5);
}

TEST(CpuScheduler, DoneMayStartTheNextTask) {
  EventQueue q;
  CpuScheduler s(q, 1);
  const GroupId vm = s.add_group(1);
  std::vector<std::int64_t> ends;
  std::function<void(TimePoint)> next = [&](TimePoint now) {
    ends.push_back(now.ns());
    if (ends.size() < 3) s.run(vm, ms(1), next);
  };
  s.run(vm, ms(1), next);
  drain(q);
  EXPECT_EQ(ends, (std::vector<std::int64_t>{1 * kMs, 2 * kMs, 3 * kMs}));
}

TEST(CpuScheduler, RejectsBadArguments) {
  EventQueue q;
  EXPECT_THROW(CpuScheduler(q, 0), std::invalid_argument);
  CpuScheduler s(q, 2);
  EXPECT_THROW(s.add_group(0), std::invalid_argument);
  EXPECT_THROW(s.run(GroupId{3}, ms(1), nullptr), std::invalid_argument);
}

struct Recorder final : StatsVisitor {
  void counter(std::string_view name, const Counter& c) override {
    values[std::string(name)] = static_cast<double>(c.value());
  }
  void value(std::string_view name, double v) override { values[std::string(name)] = v; }
  std::map<std::string, double> values;
};

TEST(CpuScheduler, VisitsItsStats) {
  EventQueue q;
  CpuScheduler s(q, 2);
  const GroupId vm = s.add_group(1);
  s.run(vm, ms(4), nullptr);
  drain(q);
  Recorder r;
  s.visit(r);
  EXPECT_EQ(r.values["tasks_started"], 1);
  EXPECT_EQ(r.values["tasks_completed"], 1);
  EXPECT_DOUBLE_EQ(r.values["busy_cpu_s"], 0.004);
  EXPECT_DOUBLE_EQ(r.values["utilisation"], 0.5);
  Recorder g;
  s.visit_group(vm, g);
  EXPECT_DOUBLE_EQ(g.values["cpu_s"], 0.004);
}

// A random program: tasks arriving in random groups at random times, some cancelled later.
struct Op {
  std::int64_t at_ns;
  std::uint32_t group;
  CpuTime work;
  std::int64_t cancel_after_ns;  // < 0: never cancelled
};
struct Program {
  unsigned host_cpus;
  std::vector<unsigned> group_cpus;
  std::vector<Op> ops;  // by arrival time
};

Program random_program(Rng& rng, int tasks, bool cancels) {
  Program p;
  p.host_cpus = static_cast<unsigned>(1 + rng.below(4));
  const auto groups = 1 + rng.below(5);
  for (std::uint64_t g = 0; g < groups; ++g) {
    p.group_cpus.push_back(static_cast<unsigned>(1 + rng.below(4)));
  }
  std::int64_t t = 0;
  for (int i = 0; i < tasks; ++i) {
    t += static_cast<std::int64_t>(rng.below(3 * kMs));
    const std::int64_t cancel =
        cancels && rng.below(3) == 0 ? static_cast<std::int64_t>(rng.below(6 * kMs)) : -1;
    p.ops.push_back({t, static_cast<std::uint32_t>(rng.below(groups)),
                     CpuTime{rng.below(5'000'000'000ULL)}, cancel});
  }
  return p;
}

struct Outcome {
  std::vector<std::int64_t> done;     // per op: completion ns, -1 if cancelled
  std::vector<std::uint64_t> cancel;  // per op: progress returned by cancel
  std::vector<std::uint64_t> consumed;
  std::uint64_t busy = 0;
  std::int64_t end = 0;
  std::uint64_t events = 0;
  bool operator==(const Outcome&) const = default;
};

Outcome simulate(const Program& p) {
  EventQueue q;
  CpuScheduler s(q, p.host_cpus);
  std::vector<GroupId> groups;
  for (const unsigned c : p.group_cpus) groups.push_back(s.add_group(c));
  Outcome out;
  out.done.assign(p.ops.size(), -1);
  out.cancel.assign(p.ops.size(), 0);
  for (std::size_t i = 0; i < p.ops.size(); ++i) {
    q.at(TimePoint{p.ops[i].at_ns}, EventQueue::kWorkload, [&, i](TimePoint) {
      const TaskId id = s.run(groups[p.ops[i].group], p.ops[i].work,
                              [&out, i](TimePoint now) { out.done[i] = now.ns(); });
      if (p.ops[i].cancel_after_ns >= 0) {
        q.after(Duration{p.ops[i].cancel_after_ns}, EventQueue::kWorkload,
                [&, i, id](TimePoint) { out.cancel[i] = s.cancel(id).ps; });
      }
    });
  }
  drain(q);
  for (const GroupId g : groups) out.consumed.push_back(s.consumed(g).ps);
  out.busy = s.busy().ps;
  out.end = q.now().ns();
  out.events = q.fired();
  return out;
}

TEST(CpuScheduler, SameProgramGivesTheSameOutcome) {
  Rng a(11, "cpu_test"), b(11, "cpu_test"), c(12, "cpu_test");
  const Program pa = random_program(a, 300, true);
  const Program pb = random_program(b, 300, true);
  const Outcome first = simulate(pa);
  EXPECT_EQ(first, simulate(pb));
  EXPECT_FALSE(first == simulate(random_program(c, 300, true)));
}

// The fluid solution in long double, stepping from event to event: the reference the
// scheduler's integer arithmetic must follow. Returns completion times (ns, fractional).
std::vector<long double> fluid_reference(const Program& p) {
  struct Running {
    std::size_t op;
    long double left_ps;
  };
  std::vector<long double> done(p.ops.size(), -1);
  std::vector<std::vector<Running>> groups(p.group_cpus.size());
  long double now = 0;
  std::size_t next = 0;
  auto rate_of = [&](std::size_t g) {
    std::size_t demand = 0;
    for (std::size_t h = 0; h < groups.size(); ++h) {
      demand += std::min<std::size_t>(groups[h].size(), p.group_cpus[h]);
    }
    const long double k = groups[g].size();
    const long double share = std::min(1.0L, static_cast<long double>(p.host_cpus) / demand);
    return std::min(1.0L, p.group_cpus[g] / k) * share;
  };
  while (true) {
    long double first = INFINITY;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      for (const Running& r : groups[g]) first = std::min(first, r.left_ps / (rate_of(g) * 1000));
    }
    const long double arrival =
        next < p.ops.size() ? static_cast<long double>(p.ops[next].at_ns) - now : INFINITY;
    if (std::isinf(first) && std::isinf(arrival)) break;
    const long double step = std::min(first, arrival);
    std::vector<long double> rates(groups.size());
    for (std::size_t g = 0; g < groups.size(); ++g) {
      if (!groups[g].empty()) rates[g] = rate_of(g);
    }
    now += step;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      for (Running& r : groups[g]) r.left_ps -= rates[g] * step * 1000;
      std::erase_if(groups[g], [&](const Running& r) {
        if (r.left_ps > 1e-6L) return false;
        done[r.op] = now;
        return true;
      });
    }
    if (step == arrival) {
      groups[p.ops[next].group].push_back({next, static_cast<long double>(p.ops[next].work.ps)});
      ++next;
    }
  }
  return done;
}

// Without cancels: every completion within a nanosecond per event before it of the fluid
// solution, never sooner than its work, and the books balance.
RC_GTEST_PROP(CpuScheduler, FollowsTheFluidSolution, ()) {
  Rng rng(*rc::gen::arbitrary<std::uint64_t>(), "cpu_property");
  const Program p = random_program(rng, *rc::gen::inRange(1, 40), false);
  const Outcome out = simulate(p);
  const auto ref = fluid_reference(p);
  std::vector<long double> sorted_ref = ref;
  std::sort(sorted_ref.begin(), sorted_ref.end());
  std::uint64_t work = 0;
  for (std::size_t i = 0; i < p.ops.size(); ++i) {
    RC_ASSERT(out.done[i] >= 0);
    // Events before this completion: arrivals and completions up to it.
    const auto before = static_cast<long double>(
        std::upper_bound(sorted_ref.begin(), sorted_ref.end(), ref[i]) - sorted_ref.begin() +
        (std::upper_bound(p.ops.begin(), p.ops.end(), ref[i],
                          [](long double t, const Op& o) { return t < o.at_ns; }) -
         p.ops.begin()));
    RC_ASSERT(std::fabs(static_cast<long double>(out.done[i]) - ref[i]) <= before + 1);
    RC_ASSERT((out.done[i] - p.ops[i].at_ns) * 1000 >= static_cast<std::int64_t>(p.ops[i].work.ps));
    work += p.ops[i].work.ps;
  }
  std::uint64_t consumed = 0;
  for (const auto c : out.consumed) consumed += c;
  RC_ASSERT(consumed <= out.busy);
  RC_ASSERT(consumed + out.consumed.size() >= out.busy);
  // Completed tasks get at most the rest of their last nanosecond.
  RC_ASSERT(consumed + out.consumed.size() >= work);
  RC_ASSERT(consumed <= work + 1000 * p.ops.size());
}

// With cancels: the CPU time consumed is the work of the completed tasks plus the progress
// of the cancelled ones (within a nanosecond of CPU per task), and no task ends before its
// work could have been done at full speed.
RC_GTEST_PROP(CpuScheduler, ConservesWorkUnderCancels, ()) {
  Rng rng(*rc::gen::arbitrary<std::uint64_t>(), "cpu_cancels");
  const Program p = random_program(rng, *rc::gen::inRange(1, 60), true);
  const Outcome out = simulate(p);
  std::uint64_t accounted = 0;
  for (std::size_t i = 0; i < p.ops.size(); ++i) {
    const bool completed = out.done[i] >= 0;
    RC_ASSERT(completed || p.ops[i].cancel_after_ns >= 0);
    RC_ASSERT(!completed || out.cancel[i] == 0);
    RC_ASSERT(out.cancel[i] <= p.ops[i].work.ps);
    if (completed) {
      RC_ASSERT((out.done[i] - p.ops[i].at_ns) * 1000 >=
                static_cast<std::int64_t>(p.ops[i].work.ps));
      accounted += p.ops[i].work.ps;
    } else {
      // Cancelled: no more progress than the time it ran.
      RC_ASSERT(out.cancel[i] <= static_cast<std::uint64_t>(p.ops[i].cancel_after_ns) * 1000);
      accounted += out.cancel[i];
    }
  }
  std::uint64_t consumed = 0;
  for (const auto c : out.consumed) consumed += c;
  RC_ASSERT(consumed <= out.busy);
  RC_ASSERT(consumed + out.consumed.size() >= out.busy);
  RC_ASSERT(consumed + out.consumed.size() >= accounted);
  RC_ASSERT(consumed <= accounted + 1000 * p.ops.size());
}

}  // namespace
}  // namespace memvirt
