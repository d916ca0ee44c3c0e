#include "lab/cpio.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace memvirt {
namespace {

constexpr std::uint32_t kDir = 0040000;
constexpr std::uint32_t kFile = 0100000;
constexpr std::uint32_t kSymlink = 0120000;
constexpr std::uint32_t kCharDev = 0020000;
constexpr std::size_t kHeader = 110;

void pad4(std::string& s) {
  while (s.size() % 4 != 0) s.push_back('\0');
}

std::uint32_t hex_field(std::string_view h, std::size_t index) {
  const std::string_view f = h.substr(6 + index * 8, 8);
  std::uint32_t v = 0;
  for (char c : f) {
    v <<= 4;
    if (c >= '0' && c <= '9') {
      v |= static_cast<std::uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v |= static_cast<std::uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      v |= static_cast<std::uint32_t>(c - 'A' + 10);
    } else {
      throw std::runtime_error("cpio: malformed header field");
    }
  }
  return v;
}

std::size_t round4(std::size_t n) {
  return (n + 3) & ~std::size_t{3};
}

}  // namespace

void CpioWriter::entry(const std::string& name, std::uint32_t mode, std::string_view data,
                       std::uint32_t rdev_major, std::uint32_t rdev_minor) {
  const bool dir = (mode & 0170000) == kDir;
  // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
  out_ += fmt::format(
      "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}"
      "{:08x}",
      name == "TRAILER!!!" ? 0 : next_inode_++, mode, 0, 0, dir ? 2 : 1, 0, data.size(), 0, 0,
      rdev_major, rdev_minor, name.size() + 1, 0);
  out_ += name;
  out_.push_back('\0');
  pad4(out_);
  out_.append(data);
  pad4(out_);
}

void CpioWriter::directory(const std::string& path, std::uint32_t mode) {
  entry(path, kDir | mode, {});
}

void CpioWriter::file(const std::string& path, std::string_view data, std::uint32_t mode) {
  entry(path, kFile | mode, data);
}

void CpioWriter::symlink(const std::string& path, const std::string& target) {
  entry(path, kSymlink | 0777, target);
}

void CpioWriter::char_device(const std::string& path, std::uint32_t major, std::uint32_t minor,
                             std::uint32_t mode) {
  entry(path, kCharDev | mode, {}, major, minor);
}

std::string CpioWriter::finish() {
  entry("TRAILER!!!", 0, {});
  std::string done = std::move(out_);
  out_.clear();
  next_inode_ = 1;
  return done;
}

std::vector<CpioEntry> read_cpio(std::string_view a) {
  std::vector<CpioEntry> entries;
  std::size_t pos = 0;
  bool trailer = false;  // the last entry read ended an archive
  while (pos < a.size()) {
    if (a[pos] == '\0') {  // padding between concatenated archives
      ++pos;
      continue;
    }
    if (a.size() - pos < kHeader || a.substr(pos, 6) != "070701") {
      throw std::runtime_error(fmt::format("cpio: no newc header at offset {}", pos));
    }
    const std::string_view h = a.substr(pos, kHeader);
    CpioEntry e;
    e.mode = hex_field(h, 1);
    const std::size_t size = hex_field(h, 6);
    e.rdev_major = hex_field(h, 9);
    e.rdev_minor = hex_field(h, 10);
    const std::size_t name_size = hex_field(h, 11);
    const std::size_t name_at = pos + kHeader;
    const std::size_t data_at = round4(name_at + name_size);
    if (name_size == 0 || data_at + size > a.size()) {
      throw std::runtime_error(fmt::format("cpio: entry at offset {} runs past the end", pos));
    }
    e.name = std::string(a.substr(name_at, name_size - 1));
    e.data = std::string(a.substr(data_at, size));
    pos = round4(data_at + size);
    trailer = e.name == "TRAILER!!!";
    if (trailer) continue;
    entries.push_back(std::move(e));
  }
  if (!trailer) throw std::runtime_error("cpio: no TRAILER!!! entry: the archive is truncated");
  return entries;
}

}  // namespace memvirt
