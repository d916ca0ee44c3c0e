// memvirt-guest: the programs the lab runs inside its guests, in one static binary.
//   memvirt-guest PROGRAM TAG [key=value ...]
//   memvirt-guest marker TAG EVENT [key=value ...]   print a marker
//   memvirt-guest set TAG PATH VALUE                 write a kernel setting, report what reads back
//   memvirt-guest pages TAG class=C count=N [base=B]  memhog's content=C pages to stdout
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "marker.hpp"
#include "programs.hpp"

namespace {

// Writes VALUE to PATH (sysfs, procfs) and reports the value read back, which the host
// compares with the one it asked for.
int set_main(const std::string& tag, const std::string& path, const std::string& value) {
  const int fd = open(path.c_str(), O_WRONLY);
  if (fd < 0) guest::fail(tag, "cannot open " + path + " for writing: " + std::strerror(errno));
  const std::string text = value + "\n";
  const ssize_t n = write(fd, text.data(), text.size());
  const int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    guest::fail(tag, "cannot write " + value + " to " + path + ": " + std::strerror(err));
  }
  std::string back;
  if (FILE* f = std::fopen(path.c_str(), "r")) {
    char buf[256];
    if (std::fgets(buf, sizeof buf, f) != nullptr) back = buf;
    std::fclose(f);
  }
  while (!back.empty() && (back.back() == '\n' || back.back() == ' ')) back.pop_back();
  guest::marker(tag, "set", "path=" + path + " value=" + back);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: memvirt-guest PROGRAM TAG [key=value ...]\n");
    return 2;
  }
  const std::string program = argv[1];
  const std::string tag = argv[2];
  if (program == "marker") {
    if (argc < 4) guest::fail(tag, "marker needs an event");
    std::string fields;
    for (int i = 4; i < argc; ++i) fields += std::string(fields.empty() ? "" : " ") + argv[i];
    guest::marker(tag, argv[3], fields);
    return 0;
  }
  if (program == "set") {
    if (argc != 5) guest::fail(tag, "set needs PATH VALUE");
    return set_main(tag, argv[3], argv[4]);
  }
  guest::Args args(tag, argc, argv, 3);
  if (program == "memhog") return guest::memhog_main(args);
  if (program == "periodic_alloc") return guest::periodic_alloc_main(args);
  if (program == "page_fault") return guest::page_fault_main(args);
  if (program == "trace") return guest::trace_main(args);
  if (program == "meminfo") return guest::meminfo_main(args);
  if (program == "file_reader") return guest::file_reader_main(args);
  if (program == "pages") return guest::pages_main(args);
  guest::fail(tag, "unknown program " + program);
}
