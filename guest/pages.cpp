// pages: writes `count` pages of the contents memhog writes with content=CLASS (touch_contents)
// to standard output, so their compression can be measured on the host with the same bytes
// (scripts/measure-synthetic-compression.sh).
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "marker.hpp"
#include "programs.hpp"
#include "touch.hpp"

namespace guest {

int pages_main(Args& a) {
  const std::string tag = a.tag();
  const std::uint64_t cls = a.number("class");
  const std::uint64_t base = a.number("base", 0);
  const std::uint64_t count = a.number("count");
  a.check_all_read();
  if (cls > 7) fail(tag, "class must be a content class, 0 to 7");
  constexpr std::uint64_t kBatch = 256;
  std::vector<unsigned char> buf(kBatch * kPage);
  for (std::uint64_t done = 0; done < count;) {
    const std::uint64_t n = std::min(kBatch, count - done);
    touch_contents(buf.data(), n * kPage, static_cast<unsigned>(cls), base, done);
    std::size_t off = 0;
    while (off < n * kPage) {
      const ssize_t w = write(1, buf.data() + off, n * kPage - off);
      if (w <= 0) fail(tag, "write to standard output failed");
      off += static_cast<std::size_t>(w);
    }
    done += n;
  }
  return 0;
}

}  // namespace guest
