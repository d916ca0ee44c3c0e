// Real pages for `memvirt bench tmem`: files of the machine read into memory and split into
// 4 KiB pages, as the page cache holds them (a file's last page is padded with zeros).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/types.hpp"

namespace memvirt {

// Which files of a folder a group takes.
enum class FileFilter : std::uint8_t {
  kAny,            // every regular file
  kElf,            // executables and shared libraries (ELF magic)
  kNotCompressed,  // every file but those already compressed (.gz, .xz, .bz2, .zst, ...) and
                   // ELF files (a built source tree's objects are not source)
};

struct PageGroup {
  std::string name;                          // e.g. "binary", "text", "source"
  std::vector<std::filesystem::path> paths;  // files, or folders read recursively
  FileFilter filter = FileFilter::kAny;
};

struct PageSetFile {
  std::string path;
  std::uint32_t group = 0;
  std::uint64_t first_page = 0;
  std::uint32_t pages = 0;
};

struct PageSetGroup {
  std::string name;
  std::uint64_t files_found = 0;    // files the filter took
  std::uint64_t files_read = 0;     // files read, whole or in part
  std::uint64_t files_skipped = 0;  // unreadable
  std::uint64_t pages = 0;
};

// Pages back to back in one buffer.
class PageSet {
 public:
  [[nodiscard]] std::uint64_t pages() const { return bytes_.size() / kPageSize; }
  [[nodiscard]] std::span<const std::byte> page(std::uint64_t i) const {
    return {bytes_.data() + i * kPageSize, kPageSize};
  }
  [[nodiscard]] const std::vector<PageSetFile>& files() const { return files_; }
  [[nodiscard]] const std::vector<PageSetGroup>& groups() const { return groups_; }
  // The group of page i.
  [[nodiscard]] std::uint32_t group_of(std::uint64_t i) const { return page_group_[i]; }

  // Reads up to `max_pages` pages per group. A folder's files are taken in an order shuffled
  // by `seed`, so a limit samples the whole folder rather than its first subfolders; a file
  // larger than what is left, or than 1/64 of `max_pages`, is cut to its first pages. With `stride`
  // > 1 only every stride-th page of each file is kept (sampling one large file evenly). Throws
  // InputError naming the group when a path does not exist; unreadable files are counted and
  // skipped. `progress(pages so far)` is called now and then.
  static PageSet read(const std::vector<PageGroup>& groups, std::uint64_t max_pages,
                      std::uint64_t seed = 1,
                      const std::function<void(std::uint64_t)>& progress = {});
  // The pages of the files listed in `list_file` (one path per line) as one group named
  // `name`: of a file longer than `max_file_pages` pages every k-th page, about
  // `max_file_pages` of them (0: no limit), then of all those every stride-th page when there
  // are more than `max_pages`. Throws InputError naming the list and line of a missing file.
  static PageSet read_list(const std::string& name, const std::string& list_file,
                           std::uint64_t max_pages, std::uint64_t max_file_pages = 0);

 private:
  // `file_stride`: every k-th page of this file; `stride`: of those, every stride-th across
  // files.
  bool add_file(const std::filesystem::path& p, std::uint32_t group, std::uint64_t max_pages,
                std::uint64_t stride, std::uint64_t file_stride = 1);

  std::vector<std::byte> bytes_;
  std::vector<std::uint32_t> page_group_;
  std::vector<PageSetFile> files_;
  std::vector<PageSetGroup> groups_;
  std::uint64_t pages_seen_ = 0;  // pages read, kept or not (stride sampling)
};

}  // namespace memvirt
