#include "host/host_memory.hpp"

#include <fmt/format.h>

#include <stdexcept>
#include <unordered_map>

namespace memvirt {

NestedPageTable::NestedPageTable(std::uint32_t pages)
    : pages_(pages), chunks_((static_cast<std::uint64_t>(pages) + kChunkSize - 1) >> kChunkShift) {}

std::uint64_t NestedPageTable::memory_bytes() const {
  std::uint64_t bytes = chunks_.capacity() * sizeof(chunks_[0]);
  for (const auto& c : chunks_) {
    if (c) bytes += kChunkSize * sizeof(std::uint64_t);
  }
  return bytes;
}

HostMemory::HostMemory(std::unique_ptr<ContentStore> store)
    : store_(std::move(store)), inline_(store_->inline_content()) {}

VmId HostMemory::add_vm(Bytes guest_memory) {
  const auto pages = guest_memory.pages();
  if (pages == 0 || pages > UINT32_MAX)
    throw std::invalid_argument("guest memory size out of range");
  vms_.push_back(std::make_unique<VmSpace>(static_cast<std::uint32_t>(pages)));
  return VmId{static_cast<std::uint32_t>(vms_.size() - 1)};
}

void HostMemory::remove_vm(VmId vm) {
  VmSpace& s = space(vm);
  for (std::uint32_t g = 0; g < s.npt.pages(); ++g) {
    const NptEntry e = s.npt.get(Gfn{g});
    if (e.state() != PageState::kUnbacked) drop(e);
  }
  vms_[vm.value()].reset();
}

void HostMemory::set_entry(VmSpace& s, Gfn gfn, NptEntry old_e, NptEntry new_e) {
  --s.stats.pages_in_state[static_cast<int>(old_e.state())];
  ++s.stats.pages_in_state[static_cast<int>(new_e.state())];
  s.npt.set(gfn, new_e);
}

void HostMemory::drop(NptEntry e) {
  switch (e.state()) {
    case PageState::kLazyFree:
      --lazy_frames_;
      [[fallthrough]];
    case PageState::kPrivate:
      if (!inline_) store_->release(e.payload());
      --private_frames_;
      break;
    case PageState::kShared: {
      SharedFrame& f = shared_[e.payload()];
      if (--f.refs == 0) {
        if (!inline_) store_->release(f.handle);
        free_shared_ids_.push_back(static_cast<std::uint32_t>(e.payload()));
        --shared_frames_;
      }
      break;
    }
    case PageState::kUnbacked:
    case PageState::kZero:
      break;
    case PageState::kSwapped:
    case PageState::kPooled:
      throw std::logic_error("swapped and pooled pages are owned by their mechanism");
  }
}

std::uint64_t HostMemory::new_private(VmSpace& s, Gfn gfn, Fingerprint fp) {
  ++private_frames_;
  std::uint64_t& word = s.touched[gfn.value() >> 6];
  const std::uint64_t bit = 1ULL << (gfn.value() & 63);
  if ((word & bit) == 0) {
    word |= bit;
    ++s.stats.touched_pages;
  }
  return inline_ ? fp.value() : store_->store(fp);
}

Fingerprint HostMemory::content_of(NptEntry e) const {
  switch (e.state()) {
    case PageState::kPrivate:
    case PageState::kLazyFree:
      return inline_ ? Fingerprint{e.payload()} : store_->load(e.payload());
    case PageState::kShared: {
      const std::uint64_t h = shared_[e.payload()].handle;
      return inline_ ? Fingerprint{h} : store_->load(h);
    }
    case PageState::kUnbacked:
    case PageState::kZero:
      return kZeroContent;
    case PageState::kSwapped:
    case PageState::kPooled:
      break;
  }
  throw std::logic_error("content of a swapped or pooled page is held by its mechanism");
}

WriteEffect HostMemory::write(VmId vm, Gfn gfn, Fingerprint fp) {
  VmSpace& s = space(vm);
  const NptEntry e = s.npt.get(gfn);
  mark_dirty(s, gfn);
  switch (e.state()) {
    case PageState::kPrivate: {
      const std::uint64_t h = inline_ ? fp.value() : store_->overwrite(e.payload(), fp);
      s.npt.set(gfn, NptEntry::make(PageState::kPrivate, h));
      return WriteEffect::kInPlace;
    }
    case PageState::kLazyFree: {
      // The write dirties the page, so the host keeps the frame: no fault, no zeroing.
      s.stats.lazy_reused.add();
      --lazy_frames_;
      const std::uint64_t h = inline_ ? fp.value() : store_->overwrite(e.payload(), fp);
      set_entry(s, gfn, e, NptEntry::make(PageState::kPrivate, h));
      return WriteEffect::kInPlace;
    }
    case PageState::kUnbacked:
    case PageState::kZero:
      s.stats.faults_in.add();
      set_entry(s, gfn, e, NptEntry::make(PageState::kPrivate, new_private(s, gfn, fp)));
      return WriteEffect::kFaultIn;
    case PageState::kShared: {
      // Copy-on-write: the writer gets a private frame; the shared frame loses a reference.
      s.stats.cow_breaks.add();
      const std::uint64_t h = new_private(s, gfn, fp);
      drop(e);
      set_entry(s, gfn, e, NptEntry::make(PageState::kPrivate, h));
      return WriteEffect::kCopyOnWrite;
    }
    case PageState::kSwapped:
    case PageState::kPooled:
      break;
  }
  throw std::logic_error("write to a swapped or pooled page must go through its mechanism");
}

Fingerprint HostMemory::read(VmId vm, Gfn gfn) {
  VmSpace& s = space(vm);
  const NptEntry e = s.npt.get(gfn);
  if (e.state() == PageState::kUnbacked) {
    set_entry(s, gfn, e, NptEntry::make(PageState::kZero, 0));
    return kZeroContent;
  }
  return content_of(e);
}

Fingerprint HostMemory::peek(VmId vm, Gfn gfn) const {
  return content_of(space(vm).npt.get(gfn));
}

void HostMemory::discard(VmId vm, Gfn gfn) {
  VmSpace& s = space(vm);
  const NptEntry e = s.npt.get(gfn);
  if (e.state() == PageState::kUnbacked) return;
  drop(e);
  s.stats.discards.add();
  set_entry(s, gfn, e, NptEntry{});
}

void HostMemory::lazy_free(VmId vm, Gfn gfn) {
  VmSpace& s = space(vm);
  const NptEntry e = s.npt.get(gfn);
  if (e.state() == PageState::kLazyFree) return;
  if (e.state() != PageState::kPrivate) {
    discard(vm, gfn);
    return;
  }
  s.stats.lazy_frees.add();
  ++lazy_frames_;
  set_entry(s, gfn, e, NptEntry::make(PageState::kLazyFree, e.payload()));
  lazy_queue_.emplace_back(vm, gfn);
  if (lazy_queue_.size() > 2 * lazy_frames_ + 4096) {
    // Pages freed, reused and freed again leave stale entries; drop them now and then so
    // the queue stays proportional to the lazily freed frames.
    std::erase_if(lazy_queue_, [this](const std::pair<VmId, Gfn>& x) {
      return !has_vm(x.first) || state(x.first, x.second) != PageState::kLazyFree;
    });
  }
}

std::uint64_t HostMemory::reclaim_lazy(std::uint64_t pages) {
  std::uint64_t taken = 0;
  while (taken < pages && !lazy_queue_.empty()) {
    const auto [vm, gfn] = lazy_queue_.front();
    lazy_queue_.pop_front();
    if (!has_vm(vm)) continue;
    VmSpace& s = space(vm);
    const NptEntry e = s.npt.get(gfn);
    if (e.state() != PageState::kLazyFree) continue;
    drop(e);
    s.stats.lazy_reclaimed.add();
    set_entry(s, gfn, e, NptEntry{});
    ++taken;
  }
  return taken;
}

void HostMemory::map_zero(VmId vm, Gfn gfn) {
  VmSpace& s = space(vm);
  const NptEntry e = s.npt.get(gfn);
  if (e.state() == PageState::kZero) return;
  drop(e);
  s.stats.zero_maps.add();
  set_entry(s, gfn, e, NptEntry::make(PageState::kZero, 0));
}

std::uint64_t HostMemory::new_shared_id(std::uint64_t handle) {
  std::uint64_t id = 0;
  if (!free_shared_ids_.empty()) {
    id = free_shared_ids_.back();
    free_shared_ids_.pop_back();
  } else {
    id = shared_.size();
    shared_.push_back({});
  }
  shared_[id] = SharedFrame{handle, 0};
  ++shared_frames_;
  return id;
}

std::optional<std::uint64_t> HostMemory::shared_frame(VmId vm, Gfn gfn) const {
  const NptEntry e = space(vm).npt.get(gfn);
  if (e.state() != PageState::kShared) return std::nullopt;
  return e.payload();
}

Fingerprint HostMemory::shared_content(std::uint64_t id) const {
  const std::uint64_t h = shared_[id].handle;
  return inline_ ? Fingerprint{h} : store_->load(h);
}

std::optional<std::uint64_t> HostMemory::make_shared(VmId vm, Gfn gfn) {
  VmSpace& s = space(vm);
  const NptEntry e = s.npt.get(gfn);
  if (e.state() != PageState::kPrivate) return std::nullopt;
  // The private frame becomes the shared frame; its data stays where it is.
  const std::uint64_t id = new_shared_id(e.payload());
  shared_[id].refs = 1;
  --private_frames_;
  set_entry(s, gfn, e, NptEntry::make(PageState::kShared, id));
  return id;
}

bool HostMemory::merge_into(VmId vm, Gfn gfn, std::uint64_t id) {
  VmSpace& s = space(vm);
  const NptEntry e = s.npt.get(gfn);
  if (e.state() != PageState::kPrivate || shared_refs(id) == 0) return false;
  if (content_of(e) != shared_content(id)) return false;
  ++shared_[id].refs;
  drop(e);
  set_entry(s, gfn, e, NptEntry::make(PageState::kShared, id));
  return true;
}

bool HostMemory::merge(VmId vm, Gfn gfn, VmId target_vm, Gfn target_gfn) {
  const NptEntry e = space(vm).npt.get(gfn);
  const NptEntry te = space(target_vm).npt.get(target_gfn);
  const auto backed = [](NptEntry x) {
    return x.state() == PageState::kPrivate || x.state() == PageState::kShared;
  };
  if (!backed(e) || !backed(te) || (vm == target_vm && gfn == target_gfn)) return false;
  if (content_of(e) != content_of(te)) return false;
  if (e.state() == PageState::kShared) {
    if (te.state() == PageState::kShared && e.payload() == te.payload()) return true;
    return false;  // a shared page is not moved to another frame
  }
  const std::uint64_t id =
      te.state() == PageState::kShared ? te.payload() : *make_shared(target_vm, target_gfn);
  return merge_into(vm, gfn, id);
}

void HostMemory::enable_dirty_tracking(VmId vm) {
  VmSpace& s = space(vm);
  if (s.dirty.empty()) s.dirty.assign(s.touched.size(), 0);
}

bool HostMemory::take_dirty(VmId vm, Gfn gfn) {
  VmSpace& s = space(vm);
  std::uint64_t& word = s.dirty[gfn.value() >> 6];
  const std::uint64_t bit = 1ULL << (gfn.value() & 63);
  const bool was = (word & bit) != 0;
  word &= ~bit;
  return was;
}

std::uint64_t HostMemory::resident_pages(VmId vm) const {
  const auto& st = space(vm).stats.pages_in_state;
  return static_cast<std::uint64_t>(st[static_cast<int>(PageState::kPrivate)] +
                                    st[static_cast<int>(PageState::kLazyFree)] +
                                    st[static_cast<int>(PageState::kShared)]);
}

std::uint64_t HostMemory::memory_bytes() const {
  std::uint64_t bytes = shared_.capacity() * sizeof(SharedFrame) +
                        free_shared_ids_.capacity() * sizeof(std::uint32_t);
  for (const auto& v : vms_) {
    if (v)
      bytes += sizeof(VmSpace) + v->npt.memory_bytes() +
               (v->touched.capacity() + v->dirty.capacity()) * 8;
  }
  return bytes;
}

void HostMemory::check_accounting() const {
  std::int64_t priv = 0;
  std::int64_t lazy = 0;
  for (const auto& v : vms_) {
    if (!v) continue;
    std::int64_t total = 0;
    for (auto c : v->stats.pages_in_state) {
      if (c < 0) throw std::logic_error("negative page-state count");
      total += c;
    }
    // Every gfn is in exactly one state.
    if (total != v->npt.pages())
      throw std::logic_error("page-state counts do not sum to the page count");
    priv += v->stats.pages_in_state[static_cast<int>(PageState::kPrivate)];
    lazy += v->stats.pages_in_state[static_cast<int>(PageState::kLazyFree)];
  }
  priv += lazy;
  if (lazy != static_cast<std::int64_t>(lazy_frames_)) {
    throw std::logic_error(fmt::format("lazy frames {} != sum over VMs {}", lazy_frames_, lazy));
  }
  if (priv != static_cast<std::int64_t>(private_frames_)) {
    throw std::logic_error(
        fmt::format("private frames {} != sum over VMs {}", private_frames_, priv));
  }
  if (shared_frames_ + free_shared_ids_.size() != shared_.size()) {
    throw std::logic_error("shared frame table and its free list disagree");
  }
  if (!inline_) {
    const auto* bs = dynamic_cast<const BytesStore*>(store_.get());
    if (bs != nullptr && bs->frames_in_use() != frames_used()) {
      throw std::logic_error(fmt::format("bytes store holds {} frames, accounting says {}",
                                         bs->frames_in_use(), frames_used()));
    }
  }
}

void HostMemory::check_full() const {
  check_accounting();
  std::unordered_map<std::uint64_t, std::uint32_t> refs;
  for (const auto& v : vms_) {
    if (!v) continue;
    std::int64_t counts[kPageStateCount]{};
    for (std::uint32_t g = 0; g < v->npt.pages(); ++g) {
      const NptEntry e = v->npt.get(Gfn{g});
      ++counts[static_cast<int>(e.state())];
      if (e.state() == PageState::kShared) ++refs[e.payload()];
      if ((e.state() == PageState::kPrivate || e.state() == PageState::kLazyFree) && !inline_ &&
          !store_->verify(e.payload())) {
        throw std::logic_error(fmt::format("frame of gfn {} does not hold its content", g));
      }
    }
    for (int st = 0; st < kPageStateCount; ++st) {
      if (counts[st] != v->stats.pages_in_state[st]) {
        throw std::logic_error(fmt::format("page state {} count {} != table {}", st,
                                           v->stats.pages_in_state[st], counts[st]));
      }
    }
  }
  std::uint64_t live = 0;
  for (std::size_t id = 0; id < shared_.size(); ++id) {
    if (shared_[id].refs == 0) continue;
    ++live;
    const auto it = refs.find(id);
    const std::uint32_t seen = it == refs.end() ? 0 : it->second;
    if (seen != shared_[id].refs) {
      throw std::logic_error(fmt::format("shared frame {} has {} references, tables hold {}", id,
                                         shared_[id].refs, seen));
    }
    if (!inline_ && !store_->verify(shared_[id].handle)) {
      throw std::logic_error(fmt::format("shared frame {} does not hold its content", id));
    }
  }
  if (live != shared_frames_) throw std::logic_error("live shared frames disagree with count");
}

}  // namespace memvirt
