// A lab guest's virtual disk (vm.disk): a raw image with an MBR partition table, the ext4
// filesystem the scenario's file_reader workloads read (partition 1, /dev/vda1) and, when
// vm.kernel.swap > 0, a swap partition after it (partition 2, /dev/vda2), as the simulator
// lays out its disk: the filesystem, then the swap.
//
// The files' bytes are generated on the host from each file's content identity (the value
// the simulator gives the file: the image's name hash plus the file's index for shared
// files, a per-VM draw otherwise): page p of a file is a stream of splitmix64 values seeded
// from (content, p), so files of equal identity are byte-identical in every guest, and no two
// pages are alike. The filesystem is made without root or loop devices by mke2fs -d from a
// staging folder, with a fixed UUID and hash seed and no journal (the simulator's guest has
// none); the swap partition's header is written here. The same spec gives the same layout and
// file bytes (mke2fs still stamps inode change times).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace memvirt {

// Where the partitions are, in bytes from the start of the image.
struct DiskLayout {
  std::uint64_t size = 0;                         // the whole image (vm.disk)
  std::uint64_t fs_offset = 0, fs_bytes = 0;      // partition 1
  std::uint64_t swap_offset = 0, swap_bytes = 0;  // partition 2; 0 bytes: none
};

// The filesystem from 1 MiB (where partitioning tools align the first partition) up to the
// swap partition, which takes the last `swap` bytes (rounded down to 4 KiB pages); the
// filesystem is whole 4 KiB blocks. fs_bytes is 0 when the disk leaves no room for it.
DiskLayout disk_layout(std::uint64_t disk_bytes, std::uint64_t swap_bytes);

struct DiskFile {
  std::string path;           // inside the filesystem, e.g. "w0/f1"
  std::uint64_t bytes = 0;    // size
  std::uint64_t content = 0;  // identity its bytes are generated from
};

struct DiskSpec {
  DiskLayout layout;
  std::vector<DiskFile> files;    // written onto the filesystem, in this order
  std::vector<std::string> dirs;  // empty folders the guest writes into, e.g. "w1"
};

// Bytes an ext4 filesystem of `fs_bytes` needs to hold files of the given sizes: their
// blocks, their extent and directory blocks, and the filesystem's own metadata (bitmaps,
// inode tables, superblock backups), an upper estimate. The plan refuses a disk the files do
// not fit on by this estimate.
std::uint64_t ext4_bytes_needed(std::uint64_t fs_bytes, const std::vector<std::uint64_t>& files);

// 4096 bytes: page `page` of a file of identity `content`.
void file_page(std::uint64_t content, std::uint64_t page, char* out);

// A digest of everything that determines the image (layout, files, folders, format version).
std::string disk_digest(const DiskSpec& spec);

// The master boot record: partition 1 type 0x83 (Linux), partition 2 type 0x82 (swap) when
// the layout has swap. 512 bytes.
std::string mbr_sector(const DiskLayout& layout);

// The first page of a swap area of `bytes` (mkswap's format, version 1, "SWAPSPACE2").
std::string swap_header(std::uint64_t bytes);

// mke2fs from PATH, /usr/sbin or /sbin; empty when not found.
std::string find_mke2fs();

// Builds the image at `path` (replacing it): a sparse file of layout.size with the MBR, the
// filesystem and the swap header. Stages the files in a folder beside `path`, removed
// afterwards. mke2fs's output goes to `log_file`. Throws LabError naming what failed.
void build_disk_image(const DiskSpec& spec, const std::string& path, const std::string& log_file);

// The image for `spec` in `cache_dir` (named by its digest), built when missing. Returns its
// path.
std::string cached_disk_image(const DiskSpec& spec, const std::string& cache_dir);

// Copies `from` to `to` keeping its holes, flushes the copy to the host's disk and drops both
// files from the host's page cache, so a guest starts with none of its disk cached on the host.
void copy_sparse(const std::string& from, const std::string& to);

}  // namespace memvirt
