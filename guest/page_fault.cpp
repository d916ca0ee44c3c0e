// will-it-scale's page_fault1 and page_fault2 in process mode, the benchmarks seed 002 ran to
// measure the cost of free page reporting: each task repeatedly maps `size` (will-it-scale's
// MEMSIZE, 128 MiB), writes one byte
// per page, and unmaps it; page_fault1 maps anonymous memory, page_fault2 a private mapping
// of a tmpfs file (copy-on-write faults). Every second the total operation count (pages
// faulted by all tasks) goes out as a marker.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "marker.hpp"
#include "programs.hpp"
#include "touch.hpp"

namespace guest {
namespace {

[[noreturn]] void task(int kind, Thp thp, std::uint64_t mem_size, std::atomic<std::uint64_t>* ops,
                       const std::string& tag) {
  int fd = -1;
  if (kind == 2) {
    char name[] = "/tmp/willitscale.XXXXXX";
    fd = mkstemp(name);
    if (fd < 0) fail(tag, "mkstemp in /tmp failed");
    unlink(name);
    if (ftruncate(fd, static_cast<off_t>(mem_size)) != 0) fail(tag, "ftruncate failed");
  }
  for (;;) {
    void* p = kind == 1 ? map_anonymous(mem_size, thp)
                        : mmap(nullptr, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == nullptr || p == MAP_FAILED) fail(tag, "mmap failed");
    auto* c = static_cast<volatile char*>(p);
    for (std::uint64_t i = 0; i < mem_size; i += kPage) {
      c[i] = 0;
      ops->fetch_add(1, std::memory_order_relaxed);
    }
    munmap(p, mem_size);
  }
}

}  // namespace

int page_fault_main(Args& a) {
  const std::string tag = a.tag();
  const int kind = static_cast<int>(a.number("kind"));
  const std::uint64_t tasks = a.number("tasks", 1);
  const Thp thp = a.number("thp", 0) != 0 ? Thp::kAlways : Thp::kNever;
  const std::uint64_t size = a.number("size", 128ULL << 20);  // will-it-scale's MEMSIZE
  const std::uint64_t duration = a.number("duration");
  const std::uint64_t start = a.number("start", 0);
  a.check_all_read();
  if (kind != 1 && kind != 2) fail(tag, "kind must be 1 or 2");
  if (tasks == 0) fail(tag, "tasks must be at least 1");
  if (size < kPage) fail(tag, "size must be at least one page");

  sleep_until(now_ns() + start);
  // One counter per task on its own cache line, shared with the children.
  constexpr std::size_t kStride = 64 / sizeof(std::atomic<std::uint64_t>);
  void* shared =
      mmap(nullptr, tasks * 64, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) fail(tag, "mmap of the counters failed");
  auto* counters = static_cast<std::atomic<std::uint64_t>*>(shared);
  std::vector<pid_t> children;
  const std::uint64_t t0 = now_ns();
  marker(tag, "start", "tasks=" + std::to_string(tasks));
  for (std::uint64_t i = 0; i < tasks; ++i) {
    const pid_t child = fork();
    if (child < 0) fail(tag, "fork failed");
    if (child == 0) task(kind, thp, size, &counters[i * kStride], tag);
    children.push_back(child);
  }
  auto total = [&] {
    std::uint64_t sum = 0;
    for (std::uint64_t i = 0; i < tasks; ++i) {
      sum += counters[i * kStride].load(std::memory_order_relaxed);
    }
    return sum;
  };
  const std::uint64_t end = t0 + duration;
  for (std::uint64_t tick = t0 + kNsPerSecond; tick < end; tick += kNsPerSecond) {
    sleep_until(tick);
    marker(tag, "progress", "ops=" + std::to_string(total()));
  }
  sleep_until(end);
  const std::uint64_t ops = total();
  const std::uint64_t elapsed = now_ns() - t0;
  for (pid_t c : children) kill(c, SIGKILL);
  for (pid_t c : children) waitpid(c, nullptr, 0);
  marker(tag, "end",
         "ops=" + std::to_string(ops) + " ns=" + std::to_string(elapsed) + " ops_per_s=" +
             std::to_string(static_cast<std::uint64_t>(static_cast<double>(ops) * 1e9 /
                                                       static_cast<double>(elapsed))));
  marker(tag, "done");
  return 0;
}

}  // namespace guest
