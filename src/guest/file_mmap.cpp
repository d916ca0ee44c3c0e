// File mappings (mm/filemap.c's filemap_fault, mm/memory.c's do_cow_fault and
// do_shared_fault, mm/rmap.c's try_to_unmap): page cache pages mapped into processes, the
// private copy on a write to a MAP_PRIVATE mapping, dirtying through a MAP_SHARED one.
#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "guest/kernel.hpp"
#include "guest/kernel_internal.hpp"

namespace memvirt {

std::uint64_t GuestKernel::mmap_file(std::uint32_t pid, FileId file, bool shared, bool exec) {
  Process& p = proc(pid);
  GuestFile& f = files_.at(file.value());
  if (!f.live) throw std::logic_error(fmt::format("mmap of unlinked file {}", file.value()));
  Region r;
  r.id = next_region_++;
  r.mapping = slots_.create(MappingKind::kAnon, pid);
  r.length_pages = f.pages;
  r.touched = f.pages;  // every page may be accessed: the file's are there to fault in
  r.file = file;
  r.shared = shared;
  r.exec = exec;
  r.file_mapped.assign(f.pages, false);
  // A private writable mapping may need a copy of every page: it counts in Committed_AS.
  if (!shared) committed_pages_ += r.length_pages;
  if (mapcount_.size() == 0) mapcount_.resize(map_.pages.size());
  f.mappers.emplace_back(pid, r.id);
  p.regions.push_back(std::move(r));
  return p.regions.back().id;
}

std::uint64_t GuestKernel::io_reading(Gfn g) const {
  for (const auto& [id, io] : io_) {
    if (std::find(io->pages.begin(), io->pages.end(), g) != io->pages.end()) return id;
  }
  return last_io_;
}

void GuestKernel::map_file_page(Process& p, Region& r, std::uint64_t page, Gfn g) {
  r.file_mapped[page] = true;
  ++p.rss_pages;
  const std::uint32_t count = mapcount_.get(g.value());
  mapcount_.set(g.value(), count + 1);
  if (count == 0) {
    PageFlags f = flags(g);
    f.set(PageFlags::kMapped);
    if (r.exec) f.set(PageFlags::kExec);
    set_flags(g, f);
    ++nr_mapped_;
  }
}

void GuestKernel::unmap_file_page(Process& p, Region& r, std::uint64_t page, Gfn g) {
  r.file_mapped[page] = false;
  --p.rss_pages;
  const std::uint32_t count = mapcount_.get(g.value());
  if (count == 0) throw std::logic_error("a mapped file page has no mapcount");
  mapcount_.set(g.value(), count - 1);
  if (count > 1) return;
  PageFlags f = flags(g);
  f.set(PageFlags::kMapped, false);
  f.set(PageFlags::kExec, false);
  set_flags(g, f);
  --nr_mapped_;
}

void GuestKernel::unmap_everywhere(FileId id, std::uint64_t page, Gfn g) {
  if (!flags(g).test(PageFlags::kMapped)) return;
  // The file's regions are its i_mmap tree: each one that maps this page unmaps it.
  for (const auto& [pid, region_id] : files_[id.value()].mappers) {
    Process& p = processes_[pid];
    Region& r = region(p, region_id);
    if (page < r.file_mapped.size() && r.file_mapped[page]) unmap_file_page(p, r, page, g);
  }
}

void GuestKernel::release_file_region(Process& p, Region& r) {
  GuestFile& f = files_[r.file->value()];
  for (std::uint64_t page = 0; page < r.file_mapped.size(); ++page) {
    if (!r.file_mapped[page]) continue;
    unmap_file_page(p, r, page, slots_.entry(f.mapping, page).gfn());
  }
  std::erase(f.mappers, std::pair{p.pid, r.id});
  if (r.shared) committed_pages_ += r.length_pages;  // release_region takes it off again
  r.file_mapped.clear();
}

TouchResult GuestKernel::access_file_page(std::uint32_t pid, std::uint64_t region_id,
                                          std::uint64_t page, bool write, Fingerprint fp,
                                          Fingerprint* out) {
  TouchResult result;
  const FileId id = *region(proc(pid), region_id).file;
  if (page >= files_[id.value()].pages) {
    throw std::out_of_range(
        fmt::format("access to page {} beyond the end of mapped file {}", page, id.value()));
  }
  SlotEntry e = slots_.entry(files_[id.value()].mapping, page);
  if (e.kind() != SlotKind::kFrame) {
    // filemap_fault(): do_sync_mmap_readahead reads a window of read_ahead_kb around the
    // fault, then the process waits for its page.
    const std::uint64_t window = std::max<std::uint64_t>(cfg_.read_ahead_pages, 1);
    const std::uint64_t first = page >= window / 2 ? page - window / 2 : 0;
    std::uint64_t blocked = 0;
    const std::uint64_t wait = readahead(id, first, window, 0, page, &blocked);
    if (!processes_[pid].alive) {
      result.status = TouchStatus::kKilled;  // the OOM killer chose the faulting process
      return result;
    }
    e = slots_.entry(files_[id.value()].mapping, page);
    if (e.kind() != SlotKind::kFrame) {
      // Not even the faulting page: its allocation waits for writeback, or found nothing the
      // OOM killer could take.
      result.status = blocked != 0 ? TouchStatus::kBlocked : TouchStatus::kOutOfMemory;
      result.wait = blocked;
      stall_on(blocked);
      return result;
    }
    if (wait != 0) stats_.major_faults.add();
  }
  const Gfn g = e.gfn();
  if (flags(g).test(PageFlags::kLocked)) {
    result.status = TouchStatus::kBlocked;  // its read is in flight
    result.wait = io_reading(g);
    if (flags(g).test(PageFlags::kWorkingset)) stall_on(result.wait);  // thrashing
    return result;
  }
  const CpuTime fault = costs_.cost(Op::kFirstTouchFault);
  const bool shared = region(proc(pid), region_id).shared;
  if (!write || shared) {
    Process& p = proc(pid);
    Region& r = region(p, region_id);
    if (!r.file_mapped[page]) {
      // A minor fault maps the page cache page (filemap_map_pages, finish_fault).
      map_file_page(p, r, page, g);
      stats_.minor_faults.add();
      result.guest += fault;
    }
  }
  if (!write) {
    PageFlags f = flags(g);
    f.set(PageFlags::kYoung);
    set_flags(g, f);
    if (out != nullptr) *out = host_.read(vm_, g);
  } else if (shared) {
    // do_shared_fault(): the program writes the page cache page, which becomes dirty, and
    // the writer is throttled by the dirty limits like write(2).
    PageFlags f = flags(g);
    f.set(PageFlags::kYoung);
    set_flags(g, f);
    if (host_.write(vm_, g, fp) != WriteEffect::kInPlace) result.host += fault;
    const bool was_dirty = flags(g).test(PageFlags::kDirty);
    account_dirty(g, id);
    if (!was_dirty) {
      std::uint64_t wait = 0;
      balance_dirty_pages(&wait);
      if (wait != 0) {
        result.status = TouchStatus::kBlocked;
        result.wait = wait;
      }
    }
  } else {
    // do_cow_fault() (or do_wp_page() when the page was mapped for reading): a new
    // anonymous page takes the copy and the write; the page cache page is no longer mapped
    // here.
    std::uint64_t wait = 0;
    const std::optional<Gfn> copy = alloc_pages(0, 0, &wait);
    if (!processes_[pid].alive) {
      if (copy) free_pages(0, *copy, 0);
      result.status = TouchStatus::kKilled;
      vcpu_.charge(result.guest);
      return result;
    }
    if (!copy) {
      result.status = wait != 0 ? TouchStatus::kBlocked : TouchStatus::kOutOfMemory;
      result.wait = wait;
      stall_on(wait);
      vcpu_.charge(result.guest);
      return result;
    }
    Process& p = proc(pid);
    Region& r = region(p, region_id);
    // Reclaim for the copy may have evicted the page cache page, unmapping it already.
    if (r.file_mapped[page]) unmap_file_page(p, r, page, g);
    if (host_.write(vm_, *copy, fp) == WriteEffect::kFaultIn) result.host += fault;
    install(*copy, r.mapping, page, new_anon_flags(), new_anon_list());
    ++p.rss_pages;
    stats_.anon_faults.add();
    result.guest += fault + costs_.cost(Op::kZeroFillPage);  // the fault and its page copy
  }
  result.pages = 1;
  vcpu_.charge(result.guest);
  host_faults_.charge(result.host);
  return result;
}

}  // namespace memvirt
