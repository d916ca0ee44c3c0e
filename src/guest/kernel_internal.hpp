// The guest kernel's I/O and swap state, shared by its source files (kernel.cpp, filemap.cpp,
// swap.cpp, writeback.cpp, vmscan.cpp) and by no one else.
#pragma once

#include <functional>
#include <vector>

#include "guest/kernel.hpp"
#include "guest/run_array.hpp"

namespace memvirt {

// A new anonymous page as a fault leaves it: mapped, young and dirty (no copy anywhere).
inline PageFlags new_anon_flags() {
  PageFlags f;
  f.set(PageFlags::kSwapBacked);
  f.set(PageFlags::kMapped);
  f.set(PageFlags::kYoung);
  f.set(PageFlags::kDirty);
  return f;
}

// One request to the disk: the pages it reads into or writes from.
struct GuestKernel::Io {
  std::uint64_t id = 0;
  bool write = false;
  std::vector<Gfn> pages;
  std::function<void(Io&)> on_done;
};

// The swap partition: slots of one page, the contents written to them, and the swap cache.
struct GuestKernel::Swap {
  std::uint32_t slots = 0;
  std::uint64_t first_sector = 0;
  std::uint32_t used = 0;
  std::uint32_t cursor = 0;  // next-fit allocation, as scan_swap_map's clusters
  std::vector<bool> in_use;
  std::vector<Fingerprint> content;  // what each slot holds on disk
  std::vector<MappingOwner> user;    // the page table entry last set to each slot
  RunArray cache;                    // slot -> SlotEntry::frame of its swap cache page
  RunArray slot_of_frame;            // gfn -> slot + 1, for swap cache pages
};

// Hash of (file content, page) for image files: the same in every guest.
inline std::uint64_t image_page_hash(std::uint64_t content, std::uint64_t page) {
  return splitmix64(content ^ splitmix64(page + 0x51ED27D5A1F3C9B7ULL));
}

}  // namespace memvirt
