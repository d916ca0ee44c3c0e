#include "bench_tmem/page_set.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <random>
#include <system_error>

#include "core/error.hpp"

namespace memvirt {
namespace fs = std::filesystem;
namespace {

bool is_elf(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::array<char, 4> magic{};
  return in.read(magic.data(), magic.size()) && std::memcmp(magic.data(),
                                                            "\x7f"
                                                            "ELF",
                                                            4) == 0;
}

bool is_compressed_name(const fs::path& p) {
  static constexpr std::array<std::string_view, 9> kExt = {".gz",   ".xz",  ".bz2", ".zst", ".lz4",
                                                           ".lzma", ".zip", ".png", ".jpg"};
  const std::string ext = p.extension().string();
  return std::find(kExt.begin(), kExt.end(), ext) != kExt.end();
}

bool takes(FileFilter f, const fs::path& p) {
  switch (f) {
    case FileFilter::kAny:
      return true;
    case FileFilter::kElf:
      return is_elf(p);
    case FileFilter::kNotCompressed:
      return !is_compressed_name(p) && !is_elf(p);
  }
  return false;
}

// Regular files (not symbolic links: a library's links would repeat it) under `root`.
void collect(const fs::path& root, FileFilter filter, std::vector<fs::path>& out) {
  std::error_code ec;
  if (fs::is_regular_file(fs::symlink_status(root, ec))) {
    if (takes(filter, root)) out.push_back(root);
    return;
  }
  for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec),
       end;
       it != end; it.increment(ec)) {
    if (ec) break;
    if (it->is_symlink(ec) || !it->is_regular_file(ec)) continue;
    if (takes(filter, it->path())) out.push_back(it->path());
  }
}

}  // namespace

bool PageSet::add_file(const fs::path& p, std::uint32_t group, std::uint64_t max_pages,
                       std::uint64_t stride, std::uint64_t file_stride) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return false;
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(p, ec);
  if (ec || size == 0) return ec ? false : true;
  const std::uint64_t file_pages = (size + kPageSize - 1) / kPageSize;
  PageSetFile f{p.string(), group, pages(), 0};
  std::vector<std::byte> page(kPageSize);
  for (std::uint64_t i = 0; i < file_pages && groups_[group].pages < max_pages; ++i) {
    std::fill(page.begin(), page.end(), std::byte{0});
    in.read(reinterpret_cast<char*>(page.data()), kPageSize);
    if (in.bad()) return false;
    in.clear();  // a short last page sets eof; its tail stays zero, as in the page cache
    if (i % file_stride != 0) continue;
    if (pages_seen_++ % stride != 0) continue;  // across files, so small files are sampled too
    bytes_.insert(bytes_.end(), page.begin(), page.end());
    page_group_.push_back(group);
    ++f.pages;
    ++groups_[group].pages;
  }
  files_.push_back(f);
  return true;
}

PageSet PageSet::read(const std::vector<PageGroup>& groups, std::uint64_t max_pages,
                      std::uint64_t seed, const std::function<void(std::uint64_t)>& progress) {
  PageSet set;
  for (std::uint32_t g = 0; g < groups.size(); ++g) {
    const PageGroup& group = groups[g];
    set.groups_.push_back(PageSetGroup{group.name});
    std::vector<fs::path> files;
    for (const fs::path& root : group.paths) {
      std::error_code ec;
      if (!fs::exists(root, ec)) {
        throw InputError(SourcePlace{"", 0, group.name},
                         root.string() + ": no such file or directory");
      }
      collect(root, group.filter, files);
    }
    std::sort(files.begin(), files.end());
    std::shuffle(files.begin(), files.end(), std::mt19937_64(seed + g));
    set.groups_[g].files_found = files.size();
    for (const fs::path& p : files) {
      if (set.groups_[g].pages >= max_pages) break;
      // At most 1/64 of the group from one file, so that a few large libraries do not fill it.
      const std::uint64_t file_cap =
          std::min(max_pages, set.groups_[g].pages + std::max<std::uint64_t>(1, max_pages / 64));
      if (set.add_file(p, g, file_cap, 1)) {
        ++set.groups_[g].files_read;
      } else {
        ++set.groups_[g].files_skipped;
      }
      if (progress && set.files_.size() % 256 == 0) progress(set.pages());
    }
  }
  if (progress) progress(set.pages());
  return set;
}

PageSet PageSet::read_list(const std::string& name, const std::string& list_file,
                           std::uint64_t max_pages, std::uint64_t max_file_pages) {
  std::ifstream in(list_file);
  if (!in) throw InputError(SourcePlace{list_file, 0, name}, "cannot read the file list");
  struct Listed {
    fs::path path;
    std::uint64_t file_stride;
  };
  std::vector<Listed> files;
  std::uint64_t total = 0;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.empty()) continue;
    std::error_code ec;
    const std::uintmax_t size = fs::file_size(line, ec);
    if (ec) throw InputError(SourcePlace{list_file, line_no, name}, line + ": " + ec.message());
    const std::uint64_t pages = (size + kPageSize - 1) / kPageSize;
    const std::uint64_t file_stride = max_file_pages > 0 && pages > max_file_pages
                                          ? (pages + max_file_pages - 1) / max_file_pages
                                          : 1;
    total += (pages + file_stride - 1) / file_stride;
    files.push_back({line, file_stride});
  }
  const std::uint64_t stride = total > max_pages ? (total + max_pages - 1) / max_pages : 1;
  PageSet set;
  set.groups_.push_back(PageSetGroup{name, files.size()});
  for (const Listed& f : files) {
    if (set.add_file(f.path, 0, max_pages, stride, f.file_stride)) {
      ++set.groups_[0].files_read;
    } else {
      ++set.groups_[0].files_skipped;
    }
  }
  return set;
}

}  // namespace memvirt
