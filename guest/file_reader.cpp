// file_reader: reads (or writes) `files` files of `size` bytes in `dir` (named f0, f1, ...)
// through the guest's page cache with read(2) or write(2) calls of `request` bytes each, as
// the simulator's file_reader (src/workload/file_reader.cpp) does:
//   - one request at a time; sequential requests follow each other through a file (the last
//     one may be shorter), random ones start at a request-aligned offset drawn uniformly, and a
//     file is done after size / request of them;
//   - `passes` passes over the whole set, each pass ending with an "end" marker;
//   - with `rate` (bytes per second), a request starts no earlier than request / rate after
//     the one before it started;
//   - the first request starts `start` after the program.
// Reads go to the files the host put on the disk image. Writes create the files (f0, ... in
// `dir`) and fill every page with a unique stamp, so their pages become dirty page cache that
// the guest's flusher writes back; nothing calls fsync, as the simulated program does not.
// The random offsets are this program's own seeded draws, not the simulator's.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "marker.hpp"
#include "programs.hpp"
#include "touch.hpp"

namespace guest {
namespace {

// Reads or writes `len` bytes at `off`, as many calls as the kernel needs; false on error.
bool transfer(int fd, bool write_mode, char* buf, std::uint64_t len, std::uint64_t off) {
  std::uint64_t done = 0;
  while (done < len) {
    const ssize_t n = write_mode
                          ? pwrite(fd, buf + done, len - done, static_cast<off_t>(off + done))
                          : pread(fd, buf + done, len - done, static_cast<off_t>(off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) {  // end of file before the request's end: not the file the host made
      errno = ENODATA;
      return false;
    }
    done += static_cast<std::uint64_t>(n);
  }
  return true;
}

}  // namespace

int file_reader_main(Args& a) {
  const std::string tag = a.tag();
  const std::string dir = a.text("dir");
  const std::uint64_t files = a.number("files");
  const std::uint64_t size = a.number("size");
  const std::uint64_t request_arg = a.number("request");
  const bool random = a.text("pattern", "sequential") == "random";
  const std::uint64_t passes = a.number("passes", 1);
  const std::uint64_t rate = a.number("rate", 0);
  const std::uint64_t start = a.number("start", 0);
  const bool write_mode = a.number("write", 0) != 0;
  const std::uint64_t seed = a.number("seed", 0);
  a.check_all_read();
  if (files == 0 || size < kPage || request_arg < kPage || passes == 0) {
    fail(tag, "files, passes must be positive and size, request at least a page");
  }
  // Whole pages, as the simulator counts them, and at most the file.
  const std::uint64_t size_pages = size / kPage;
  const std::uint64_t request_pages = std::min(request_arg / kPage, size_pages);
  const std::uint64_t request = request_pages * kPage;
  const std::uint64_t file_bytes = size_pages * kPage;
  const std::uint64_t per_file = std::max<std::uint64_t>(size_pages / request_pages, 1);
  const std::uint64_t requests = random ? per_file : (file_bytes + request - 1) / request;

  void* mem = map_anonymous(request);
  if (mem == nullptr) fail(tag, "cannot map a buffer of " + std::to_string(request) + " bytes");
  char* buf = static_cast<char*>(mem);
  std::memset(buf, 0x5a, request);

  const std::uint64_t t0 = now_ns();
  sleep_until(t0 + start);
  std::vector<int> fds;
  for (std::uint64_t i = 0; i < files; ++i) {
    const std::string path = dir + "/f" + std::to_string(i);
    const int fd = write_mode ? open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644)
                              : open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(tag, "cannot open " + path + ": " + std::strerror(errno));
    fds.push_back(fd);
  }
  const std::uint64_t started = now_ns();
  marker(tag, "start", "files=" + std::to_string(files) + " bytes=" + std::to_string(file_bytes));
  Stamps stamps(seed, 0);
  std::uint64_t rng = mix(seed ^ 0x66696c65ULL);  // "file"
  std::uint64_t next_start = now_ns();
  std::uint64_t total = 0;
  for (std::uint64_t pass = 0; pass < passes; ++pass) {
    std::uint64_t pass_bytes = 0;
    for (std::uint64_t i = 0; i < files; ++i) {
      for (std::uint64_t r = 0; r < requests; ++r) {
        std::uint64_t off = r * request;
        if (random) {
          rng = mix(rng);
          off = (rng % per_file) * request;
        }
        const std::uint64_t len = std::min(request, file_bytes - off);
        if (rate > 0) sleep_until(next_start);
        const std::uint64_t req_start = now_ns();
        if (write_mode) {
          for (std::uint64_t p = 0; p < len; p += kPage) {
            const std::uint64_t s = stamps.next();
            std::memcpy(buf + p, &s, sizeof s);
          }
        }
        if (!transfer(fds[i], write_mode, buf, len, off)) {
          fail(tag, std::string(write_mode ? "write" : "read") + " of f" + std::to_string(i) +
                        " failed: " + std::strerror(errno));
        }
        keep(buf);
        pass_bytes += len;
        if (rate > 0) {
          next_start = req_start + static_cast<std::uint64_t>(static_cast<double>(request) * 1e9 /
                                                              static_cast<double>(rate));
        }
      }
    }
    total += pass_bytes;
    marker(tag, "end",
           "pass=" + std::to_string(pass) + " bytes=" + std::to_string(pass_bytes) +
               " seconds=" + std::to_string(static_cast<double>(now_ns() - started) / 1e9));
  }
  for (const int fd : fds) close(fd);
  marker(tag, "done",
         "bytes=" + std::to_string(total) +
             " seconds=" + std::to_string(static_cast<double>(now_ns() - started) / 1e9));
  return 0;
}

}  // namespace guest
