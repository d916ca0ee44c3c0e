// memhog: allocate `size` (with huge pages when `thp`), touch all of it, hold, then exit (or
// munmap and stay), repeated
// `repeat` times with run starts `interval` apart. Each run is a child process, as each
// simulated run is a new guest process: its memory returns to the guest when it exits, and an
// OOM kill ends only that run.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "marker.hpp"
#include "programs.hpp"
#include "touch.hpp"

namespace guest {

int memhog_main(Args& a) {
  const std::string tag = a.tag();
  const std::uint64_t size = a.number("size");
  const std::uint64_t start = a.number("start", 0);
  const std::uint64_t hold = a.number("hold", 0);
  const std::uint64_t repeat = a.number("repeat", 1);
  const std::uint64_t interval = a.number("interval", 0);
  const bool exit_after = a.text("then", "exit") == "exit";
  // As the simulator's thp key: huge pages only when asked (the guest's default is "always").
  const Thp thp = a.number("thp", 0) != 0 ? Thp::kAlways : Thp::kNever;
  const std::uint64_t seed = a.number("seed", 0);
  // content=CLASS content_base=BASE: the simulator's page contents (touch_contents), the
  // draws continuing from run to run as the simulated memhog's do; without them, every page
  // is 0x5a bytes under a unique first word (touch_unique).
  const std::uint64_t content = a.number("content", 8);
  const std::uint64_t content_base = a.number("content_base", 0);
  a.check_all_read();
  if (content > 8) fail(tag, "content must be a content class, 0 to 7");

  const std::uint64_t t0 = now_ns();
  std::uint64_t next = t0 + start;
  for (std::uint64_t run = 0; run < repeat; ++run) {
    sleep_until(next);
    next = now_ns() + interval;
    const std::string r = "run=" + std::to_string(run);
    int done[2];
    if (pipe(done) != 0) fail(tag, "pipe failed");
    const pid_t child = fork();
    if (child < 0) fail(tag, "fork failed");
    if (child == 0) {
      close(done[0]);
      marker(tag, "start", r + " bytes=" + std::to_string(size));
      void* p = map_anonymous(size, thp);
      if (p == nullptr) fail(tag, "mmap of " + std::to_string(size) + " bytes failed");
      if (content < 8) {
        touch_contents(p, size, static_cast<unsigned>(content), content_base, run * (size / kPage));
      } else {
        Stamps stamps(seed, run);
        touch_unique(p, size, stamps);
      }
      marker(tag, "touched", r);
      sleep_until(now_ns() + hold);
      if (exit_after) _exit(0);
      munmap(p, size);
      const char byte = 1;
      if (write(done[1], &byte, 1) != 1) _exit(1);
      // Freed and staying, as the simulated process does; the parent ends it at exit.
      for (;;) pause();
    }
    close(done[1]);
    if (exit_after) {
      int status = 0;
      waitpid(child, &status, 0);
      if (WIFSIGNALED(status)) {
        marker(tag, "killed", r + " signal=" + std::to_string(WTERMSIG(status)));
      } else {
        marker(tag, "end", r);
      }
    } else {
      char byte = 0;
      if (read(done[0], &byte, 1) == 1) {
        marker(tag, "end", r);
      } else {
        marker(tag, "killed", r);
      }
    }
    close(done[0]);
    if (next < now_ns()) next = now_ns();
  }
  marker(tag, "done");
  return 0;
}

}  // namespace guest
