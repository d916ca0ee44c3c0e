#include "host/disk.hpp"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/rng.hpp"

namespace memvirt {
namespace {

// 100 sectors (51,200 bytes) take exactly 1 ms at this rate.
constexpr std::uint64_t kRate = 51'200'000;

DiskConfig test_config(bool sequential_no_seek = true) {
  DiskConfig c;
  c.seek = Duration::millis(5);
  c.bandwidth = Bytes{kRate};
  c.sequential_no_seek = sequential_no_seek;
  return c;
}

void drain(EventQueue& q) {
  while (q.step(TimePoint::max())) {
  }
}

struct Recorder final : StatsVisitor {
  void counter(std::string_view name, const Counter& c) override {
    values[std::string(name)] = static_cast<double>(c.value());
  }
  void value(std::string_view name, double v) override { values[std::string(name)] = v; }
  std::map<std::string, double> values;
};

TEST(HostDisk, SingleRequestTakesSeekPlusTransfer) {
  EventQueue q;
  HostDisk disk(q, DiskConfig{});  // the data-sheet defaults
  TimePoint done_at{-1};
  disk.submit({VmId{0}, false, 1000, 8, [&](TimePoint t) { done_at = t; }});
  EXPECT_EQ(disk.queue_depth(), 1U);
  drain(q);
  // 12.666667 ms of seek and rotation, 4096 bytes at 100 MB/s = 40.96 us.
  EXPECT_EQ(done_at.ns(), 12'666'667 + 40'960);
  EXPECT_EQ(disk.queue_depth(), 0U);
  EXPECT_EQ(disk.stats().requests.value(), 1U);
  EXPECT_EQ(disk.stats().seeks.value(), 1U);
  EXPECT_EQ(disk.stats().busy.ns(), 12'666'667 + 40'960);
  EXPECT_EQ(disk.stats().queue_wait.ns(), 0);
}

TEST(HostDisk, TransferTimeRoundsUpToTheNanosecond) {
  EventQueue q;
  DiskConfig c = test_config();
  c.seek = Duration{0};
  c.bandwidth = Bytes{3'000'000'000};  // 512 bytes: 170.67 ns
  HostDisk disk(q, c);
  TimePoint done_at;
  disk.submit({VmId{0}, true, 0, 1, [&](TimePoint t) { done_at = t; }});
  drain(q);
  EXPECT_EQ(done_at.ns(), 171);
}

TEST(HostDisk, ServesTwoVmsInSubmissionOrderWithQueueingDelay) {
  EventQueue q;
  HostDisk disk(q, test_config());
  std::vector<std::pair<char, std::int64_t>> completions;
  auto note = [&](char who) {
    return [&, who](TimePoint t) { completions.emplace_back(who, t.ns()); };
  };
  // Both at t = 0; B's request waits for A's.
  disk.submit({VmId{0}, false, 0, 100, note('a')});
  disk.submit({VmId{1}, true, 1'000'000, 100, note('b')});
  EXPECT_EQ(disk.queue_depth(), 2U);
  // At 1 ms VM 0 asks again: it queues behind B, not beside its own first request.
  q.at(TimePoint{1'000'000}, EventQueue::kGuest, [&](TimePoint) {
    disk.submit({VmId{0}, false, 5'000'000, 100, note('c')});
    EXPECT_EQ(disk.queue_depth(), 3U);
  });
  drain(q);
  const std::vector<std::pair<char, std::int64_t>> want{
      {'a', 6'000'000}, {'b', 12'000'000}, {'c', 18'000'000}};
  EXPECT_EQ(completions, want);
  // B waited 6 ms, C from 1 ms to 12 ms.
  EXPECT_EQ(disk.stats().queue_wait.ns(), 6'000'000 + 11'000'000);
  EXPECT_EQ(disk.stats().busy.ns(), 18'000'000);
  EXPECT_EQ(disk.queue_depth(), 0U);
}

TEST(HostDisk, SequentialRequestPaysNoSeek) {
  auto finish_of_second = [](bool no_seek, std::uint64_t second_sector, VmId second_vm) {
    EventQueue q;
    HostDisk disk(q, test_config(no_seek));
    TimePoint done_at;
    disk.submit({VmId{0}, false, 0, 100, nullptr});
    disk.submit({second_vm, false, second_sector, 100, [&](TimePoint t) { done_at = t; }});
    drain(q);
    return std::make_pair(done_at.ns(), disk.stats().seeks.value());
  };
  // Sector 100 follows sectors 0-99: 1 ms of transfer only.
  EXPECT_EQ(finish_of_second(true, 100, VmId{0}), std::make_pair(std::int64_t{7'000'000}, 1UL));
  // Adjacency is physical: it holds whichever VM sent the next request.
  EXPECT_EQ(finish_of_second(true, 100, VmId{1}), std::make_pair(std::int64_t{7'000'000}, 1UL));
  // One sector further, or with the rule off, the seek is paid.
  EXPECT_EQ(finish_of_second(true, 101, VmId{0}), std::make_pair(std::int64_t{12'000'000}, 2UL));
  EXPECT_EQ(finish_of_second(false, 100, VmId{0}), std::make_pair(std::int64_t{12'000'000}, 2UL));
  // Going back to the start of the previous request is not sequential either.
  EXPECT_EQ(finish_of_second(true, 0, VmId{0}), std::make_pair(std::int64_t{12'000'000}, 2UL));
}

TEST(HostDisk, CountsSectorsPerVm) {
  EventQueue q;
  HostDisk disk(q, test_config());
  disk.submit({VmId{0}, false, 0, 8, nullptr});
  disk.submit({VmId{2}, true, 64, 16, nullptr});
  disk.submit({VmId{0}, true, 128, 4, nullptr});
  disk.submit({VmId{2}, false, 256, 32, nullptr});
  disk.submit({VmId{2}, false, 512, 1, nullptr});
  drain(q);
  EXPECT_EQ(disk.sectors_read(VmId{0}), 8U);
  EXPECT_EQ(disk.sectors_written(VmId{0}), 4U);
  EXPECT_EQ(disk.sectors_read(VmId{2}), 33U);
  EXPECT_EQ(disk.sectors_written(VmId{2}), 16U);
  EXPECT_EQ(disk.sectors_read(VmId{1}), 0U);  // sent nothing
  EXPECT_EQ(disk.sectors_written(VmId{7}), 0U);
  EXPECT_EQ(disk.stats().sectors_read.value(), 41U);
  EXPECT_EQ(disk.stats().sectors_written.value(), 20U);
  EXPECT_EQ(disk.stats().requests.value(), 5U);

  Recorder total;
  disk.visit(total);
  EXPECT_EQ(total.values["requests"], 5);
  EXPECT_EQ(total.values["sectors_written"], 20);
  EXPECT_DOUBLE_EQ(total.values["busy_s"], disk.stats().busy.seconds());
  Recorder vm2;
  disk.visit_vm(VmId{2}, vm2);
  EXPECT_EQ(vm2.values["sectors_read"], 33);
  Recorder vm9;
  disk.visit_vm(VmId{9}, vm9);
  EXPECT_EQ(vm9.values["sectors_read"], 0);
}

TEST(HostDisk, CountsARequestWhenItCompletes) {
  EventQueue q;
  HostDisk disk(q, test_config());
  disk.submit({VmId{0}, false, 0, 100, nullptr});
  EXPECT_FALSE(q.step(TimePoint{5'999'999}));  // completes at 6 ms
  EXPECT_EQ(disk.sectors_read(VmId{0}), 0U);
  EXPECT_TRUE(disk.busy());
  drain(q);
  EXPECT_EQ(disk.sectors_read(VmId{0}), 100U);
  EXPECT_FALSE(disk.busy());
}

TEST(HostDisk, ZeroSectorRequestIsRejected) {
  EventQueue q;
  HostDisk disk(q, test_config());
  EXPECT_THROW(disk.submit({VmId{0}, false, 0, 0, nullptr}), std::invalid_argument);
  EXPECT_EQ(disk.queue_depth(), 0U);
}

DiskConfig parse(const std::string& text) {
  const YAML::Node n = YAML::Load(text);
  auto ctx = std::make_shared<ParamContext>("s.yaml");
  Params p(n, "host.disk", ctx);
  return HostDisk::config_from(p);
}

std::string error_field(const std::string& text) {
  try {
    parse(text);
  } catch (const InputError& e) {
    return e.place().field;
  }
  return "(accepted)";
}

TEST(HostDisk, ReadsItsParameters) {
  const DiskConfig d = parse("{}");
  EXPECT_EQ(d.seek.ns(), 12'666'667);
  EXPECT_EQ(d.bandwidth.value(), 100'000'000U);
  EXPECT_TRUE(d.sequential_no_seek);
  const DiskConfig c = parse("{seek: 4ms, bandwidth: 200MiB, sequential_no_seek: false}");
  EXPECT_EQ(c.seek.ns(), 4'000'000);
  EXPECT_EQ(c.bandwidth.value(), 200ULL << 20);
  EXPECT_FALSE(c.sequential_no_seek);
  EXPECT_EQ(parse("{seek: 0s}").seek.ns(), 0);  // a solid-state disk
}

TEST(HostDisk, BadParametersNameTheirField) {
  EXPECT_EQ(error_field("{bandwidth: 0}"), "host.disk.bandwidth");
  EXPECT_EQ(error_field("{bandwidth: -100MB}"), "host.disk.bandwidth");
  EXPECT_EQ(error_field("{bandwidth: fast}"), "host.disk.bandwidth");
  EXPECT_EQ(error_field("{seek: -1ms}"), "host.disk.seek");
  EXPECT_EQ(error_field("{sequential_no_seek: sometimes}"), "host.disk.sequential_no_seek");
  try {
    parse("{bandwidth: 0}");
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("positive"), std::string::npos) << e.what();
  }
}

struct Submission {
  std::int64_t at_ns;
  DiskRequest request;
};

// Random requests at random times from three VMs, a third of them sequential.
std::vector<Submission> random_submissions(std::uint64_t seed, int n) {
  Rng rng(seed, "disk_test");
  std::vector<Submission> out;
  std::int64_t t = 0;
  std::uint64_t next_sector = 0;
  for (int i = 0; i < n; ++i) {
    t += static_cast<std::int64_t>(rng.below(20'000'000));
    const auto sectors = static_cast<std::uint32_t>(1 + rng.below(256));
    // Sequential, one sector past it (not sequential), or anywhere.
    const std::uint64_t pick = rng.below(3);
    const std::uint64_t sector = pick == 0   ? next_sector
                                 : pick == 1 ? next_sector + 1
                                             : rng.below(1'000'000);
    next_sector = sector + sectors;
    out.push_back({t,
                   {VmId{static_cast<std::uint32_t>(rng.below(3))}, rng.below(2) == 0, sector,
                    sectors, nullptr}});
  }
  return out;
}

// Completion times of `subs` served by a disk of `cfg`.
std::vector<std::int64_t> serve(const std::vector<Submission>& subs, const DiskConfig& cfg,
                                DiskStats* stats = nullptr) {
  EventQueue q;
  HostDisk disk(q, cfg);
  std::vector<std::int64_t> done(subs.size(), -1);
  for (std::size_t i = 0; i < subs.size(); ++i) {
    q.at(TimePoint{subs[i].at_ns}, EventQueue::kGuest, [&, i](TimePoint) {
      DiskRequest r = subs[i].request;
      r.done = [&done, i](TimePoint t) { done[i] = t.ns(); };
      disk.submit(std::move(r));
    });
  }
  drain(q);
  if (stats != nullptr) *stats = disk.stats();
  return done;
}

TEST(HostDisk, SameRequestsGiveTheSameCompletions) {
  const auto subs = random_submissions(7, 200);
  DiskStats a_stats, b_stats;
  const auto a = serve(subs, DiskConfig{}, &a_stats);
  const auto b = serve(subs, DiskConfig{}, &b_stats);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a_stats.busy, b_stats.busy);
  EXPECT_EQ(a_stats.queue_wait, b_stats.queue_wait);
  EXPECT_EQ(a_stats.seeks.value(), b_stats.seeks.value());
  EXPECT_NE(a, serve(random_submissions(8, 200), DiskConfig{}));
}

// Against the FIFO recurrence: start = max(submit, previous finish), finish = start + seek
// (unless it follows the previous request's last sector) + ceil(bytes / rate).
RC_GTEST_PROP(HostDisk, CompletionsFollowTheFifoRecurrence, ()) {
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();
  const int n = *rc::gen::inRange(1, 60);
  DiskConfig cfg;
  cfg.seek = Duration{*rc::gen::inRange<std::int64_t>(0, 20'000'000)};
  cfg.bandwidth = Bytes{*rc::gen::inRange<std::uint64_t>(1, 400'000'000)};
  cfg.sequential_no_seek = *rc::gen::arbitrary<bool>();
  const auto subs = random_submissions(seed, n);
  DiskStats stats;
  const auto done = serve(subs, cfg, &stats);

  std::int64_t free_at = 0, busy = 0, wait = 0;
  std::uint64_t seeks = 0;
  std::optional<std::uint64_t> head;
  for (std::size_t i = 0; i < subs.size(); ++i) {
    const DiskRequest& r = subs[i].request;
    const std::int64_t start = std::max(subs[i].at_ns, free_at);
    const std::uint64_t bytes = std::uint64_t{r.sectors} * kSectorSize;
    const auto transfer = static_cast<std::int64_t>(
        (bytes * 1'000'000'000ULL + cfg.bandwidth.value() - 1) / cfg.bandwidth.value());
    const bool seq = cfg.sequential_no_seek && head && *head == r.sector;
    const std::int64_t service = transfer + (seq ? 0 : cfg.seek.ns());
    seeks += seq ? 0 : 1;
    head = r.sector + r.sectors;
    wait += start - subs[i].at_ns;
    busy += service;
    free_at = start + service;
    RC_ASSERT(done[i] == free_at);
  }
  RC_ASSERT(stats.busy.ns() == busy);
  RC_ASSERT(stats.queue_wait.ns() == wait);
  RC_ASSERT(stats.seeks.value() == seeks);
  RC_ASSERT(stats.requests.value() == subs.size());
}

}  // namespace
}  // namespace memvirt
