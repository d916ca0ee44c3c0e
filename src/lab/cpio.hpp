// The "newc" cpio format the Linux kernel unpacks as an initramfs. Written here because it
// is a few lines: a 110-byte ASCII header, the name, the data, each padded to 4 bytes. The
// writer is deterministic (inode numbers in order of addition, mtime 0, owner root), so the
// same inputs give the same archive. Archives concatenate: the kernel unpacks each in turn,
// later files replacing earlier ones.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace memvirt {

class CpioWriter {
 public:
  // Paths are relative to the archive root, without a leading '/'. Parents must be added
  // before their children.
  void directory(const std::string& path, std::uint32_t mode = 0755);
  void file(const std::string& path, std::string_view data, std::uint32_t mode = 0644);
  void symlink(const std::string& path, const std::string& target);
  void char_device(const std::string& path, std::uint32_t major, std::uint32_t minor,
                   std::uint32_t mode = 0600);
  // Appends the trailer and returns the archive; the writer is then empty.
  std::string finish();

 private:
  void entry(const std::string& name, std::uint32_t mode, std::string_view data,
             std::uint32_t rdev_major = 0, std::uint32_t rdev_minor = 0);
  std::string out_;
  std::uint32_t next_inode_ = 1;
};

struct CpioEntry {
  std::string name;
  std::uint32_t mode = 0;
  std::string data;  // file contents or symlink target
  std::uint32_t rdev_major = 0, rdev_minor = 0;
};

// Reads a newc archive (or several concatenated, with zero padding between them). Throws
// std::runtime_error on a malformed header or a missing trailer.
std::vector<CpioEntry> read_cpio(std::string_view archive);

}  // namespace memvirt
