// Seed 000's application: every `period`, allocate an amount, touch all of it, hold it, free
// it. The amounts (and the phase) are the simulator's own draws for this VM, computed by the
// host and passed in a file, so real and simulated guests allocate the same sequence. The
// hold is given, or derived as the simulator derives it so that the time-averaged amount in
// use is `mean_in_use`. Each cycle runs in a child, so an OOM kill ends one cycle only.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "marker.hpp"
#include "programs.hpp"
#include "touch.hpp"

namespace guest {

int periodic_alloc_main(Args& a) {
  const std::string tag = a.tag();
  const std::uint64_t period = a.number("period");
  const std::uint64_t phase = a.number("phase", 0);
  const std::string amounts_file = a.text("amounts");
  const bool derived_hold = a.text("mean_in_use", "").size() > 0;
  const std::uint64_t hold = derived_hold ? 0 : a.number("hold");
  const std::uint64_t mean_in_use = derived_hold ? a.number("mean_in_use") : 0;
  const std::uint64_t seed = a.number("seed", 0);
  a.check_all_read();
  if (period == 0) fail(tag, "period must be positive");

  std::vector<std::uint64_t> amounts;
  if (FILE* f = std::fopen(amounts_file.c_str(), "r")) {
    unsigned long long v = 0;
    while (std::fscanf(f, "%llu", &v) == 1) amounts.push_back(v);
    std::fclose(f);
  } else {
    fail(tag, "cannot read " + amounts_file);
  }

  const std::uint64_t t0 = now_ns();
  std::uint64_t next = t0 + phase;
  for (std::size_t cycle = 0; cycle < amounts.size(); ++cycle) {
    sleep_until(next);
    next += period;
    const std::uint64_t amount = amounts[cycle] / kPage * kPage;
    const std::string c = "cycle=" + std::to_string(cycle);
    if (amount == 0) continue;
    const pid_t child = fork();
    if (child < 0) fail(tag, "fork failed");
    if (child == 0) {
      const std::uint64_t touch_start = now_ns();
      marker(tag, "start", c + " bytes=" + std::to_string(amount));
      void* p = map_anonymous(amount);
      if (p == nullptr) fail(tag, "mmap of " + std::to_string(amount) + " bytes failed");
      Stamps stamps(seed, cycle);
      touch_unique(p, amount, stamps);
      marker(tag, "touched", c);
      std::uint64_t h = hold;
      if (derived_hold) {
        // amount x (touch/2 + hold) / period = mean_in_use, as the simulator solves it.
        const double share = static_cast<double>(mean_in_use) / static_cast<double>(amount);
        const double touch = static_cast<double>(now_ns() - touch_start);
        h = static_cast<std::uint64_t>(
            std::max(0.0, share * static_cast<double>(period) - touch / 2));
      }
      sleep_until(now_ns() + h);
      keep(p);
      munmap(p, amount);
      _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (WIFSIGNALED(status)) {
      marker(tag, "killed", c + " signal=" + std::to_string(WTERMSIG(status)));
    } else {
      marker(tag, "end", c);
    }
  }
  marker(tag, "done");
  return 0;
}

}  // namespace guest
