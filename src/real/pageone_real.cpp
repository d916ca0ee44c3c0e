#include "real/pageone_real.hpp"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxh_x86dispatch.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <thread>

namespace memvirt {
namespace {

constexpr std::uint32_t kChunkPages = 1024;  // pages a work thread takes at a time (x64)
constexpr std::size_t kDiscardBatch = 256;   // ranges given back per process_madvise call

std::byte* map_pages(std::uint32_t pages, const char* what) {
  void* p = mmap(nullptr, std::size_t{pages} * kPageSize, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error(std::string("real PageONE: cannot map ") + what);
  return static_cast<std::byte*>(p);
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void discard(std::byte* page) {
  madvise(page, kPageSize, MADV_DONTNEED);
}

}  // namespace

std::size_t RealPageOne::Index::home(std::uint64_t key) const {
  // XXH3 bits are already uniform; the top bits chose the shard, so use the low ones.
  return static_cast<std::size_t>(key) & (slots_.size() - 1);
}

RealPageOne::IndexEntry* RealPageOne::Index::find(std::uint64_t key) {
  if (slots_.empty()) return nullptr;
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = home(key); slots_[i].used; i = (i + 1) & mask) {
    if (slots_[i].key == key) return &slots_[i].entry;
  }
  return nullptr;
}

RealPageOne::IndexEntry& RealPageOne::Index::get(std::uint64_t key) {
  if ((size_ + 1) * 4 > slots_.size() * 3) grow();
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = home(key);
  for (; slots_[i].used; i = (i + 1) & mask) {
    if (slots_[i].key == key) return slots_[i].entry;
  }
  slots_[i] = Slot{key, IndexEntry{}, true};
  ++size_;
  return slots_[i].entry;
}

void RealPageOne::Index::erase(std::uint64_t key) {
  if (slots_.empty()) return;
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = home(key);
  while (slots_[i].used && slots_[i].key != key) i = (i + 1) & mask;
  if (!slots_[i].used) return;
  // Backward-shift deletion keeps every probe chain unbroken.
  std::size_t hole = i;
  for (std::size_t j = (i + 1) & mask; slots_[j].used; j = (j + 1) & mask) {
    const std::size_t h = home(slots_[j].key);
    if (((j - h) & mask) >= ((j - hole) & mask)) {
      slots_[hole] = slots_[j];
      hole = j;
    }
  }
  slots_[hole].used = false;
  --size_;
}

void RealPageOne::Index::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.empty() ? 64 : old.size() * 2, Slot{});
  size_ = 0;
  for (const Slot& s : old) {
    if (s.used) get(s.key) = s.entry;
  }
}

struct RealPageOne::WorkerTotals {
  std::uint64_t hashed = 0, merged = 0, zero = 0, skipped_free = 0, freed = 0;
  double cpu = 0;
  // Slots this worker gives back in one batch; their pages stay locked until then and are
  // unlocked with their new state.
  struct Pending {
    std::uint32_t slot, page, new_state;
  };
  std::vector<iovec> discard;
  std::vector<Pending> pending;
};

RealPageOne::RealPageOne(std::uint32_t pages, RealPageOneConfig cfg)
    : pages_(pages),
      cfg_(std::move(cfg)),
      zeros_(kPageBytes, std::byte{0}),
      state_(std::make_unique<std::atomic<std::uint32_t>[]>(pages)),
      dirty_(std::make_unique<std::atomic<std::uint64_t>[]>((pages + 63) / 64)),
      hash_(pages, 0),
      clean_(pages, 0),
      slot_use_(std::make_unique<std::atomic<std::uint8_t>[]>(2 * std::size_t{pages})),
      frame_refs_(std::make_unique<std::atomic<std::uint32_t>[]>(2 * std::size_t{pages})),
      frame_hash_(2 * std::size_t{pages}, 0),
      shards_(std::make_unique<Shard[]>(std::size_t{1} << kShardBits)) {
  // Slots (2 per page) must fit the state word beside the flags.
  if (pages == 0 || pages >= (1U << (31 - kSlotShift))) {
    throw std::invalid_argument("real PageONE: page count out of range");
  }
  if (cfg_.work_threads == 0) throw std::invalid_argument("real PageONE: no work threads");
  arena_ = map_pages(pages, "guest memory");
  // A page needs an overflow slot only while its home slot serves as a shared frame, and
  // frames never outnumber pages: `pages` overflow slots suffice. Untouched slots cost only
  // address space.
  overflow_ = map_pages(pages, "overflow slots");
  // Batched discards: process_madvise() on our own pidfd takes MADV_DONTNEED since Linux
  // 6.13 and flushes the TLB once per batch. Probe it on an untouched slot; without it, one
  // madvise() per page.
  pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
  if (pidfd_ >= 0) {
    iovec probe{overflow_ + (std::size_t{pages} - 1) * kPageBytes, kPageBytes};
    if (syscall(SYS_process_madvise, pidfd_, &probe, 1, MADV_DONTNEED, 0) < 0) {
      close(pidfd_);
      pidfd_ = -1;
    }
  }
}

RealPageOne::~RealPageOne() {
  if (pidfd_ >= 0) close(pidfd_);
  munmap(arena_, std::size_t{pages_} * kPageSize);
  munmap(overflow_, std::size_t{pages_} * kPageSize);
}

std::uint32_t RealPageOne::lock(std::uint32_t page) {
  std::atomic<std::uint32_t>& s = state_[page];
  std::uint32_t cur = s.load(std::memory_order_relaxed);
  while (true) {
    if ((cur & kLocked) == 0) {
      if (s.compare_exchange_weak(cur, cur | kLocked, std::memory_order_acquire,
                                  std::memory_order_relaxed)) {
        return cur;
      }
      continue;
    }
    std::this_thread::yield();  // a work thread holds the page for a few microseconds
    cur = s.load(std::memory_order_relaxed);
  }
}

bool RealPageOne::try_lock(std::uint32_t page, std::uint32_t& state) {
  std::uint32_t cur = state_[page].load(std::memory_order_relaxed);
  if ((cur & kLocked) != 0) return false;
  if (!state_[page].compare_exchange_strong(cur, cur | kLocked, std::memory_order_acquire,
                                            std::memory_order_relaxed)) {
    return false;
  }
  state = cur;
  return true;
}

void RealPageOne::unlock(std::uint32_t page, std::uint32_t state) {
  state_[page].store(state & ~kLocked, std::memory_order_release);
}

RealPageOne::Reader::~Reader() {
  if (m_ != nullptr) m_->unlock(page_, state_);
}

RealPageOne::Writer::~Writer() {
  if (m_ != nullptr) m_->release_write(page_);
}

RealPageOne::Reader RealPageOne::read(std::uint32_t page) {
  const std::uint32_t st = lock(page);
  const std::uint32_t kind = st & kKindMask;
  const std::byte* data =
      kind == kPrivate || kind == kMerged ? slot_ptr(slot_of(st)) : zeros_.data();
  return Reader(this, page, st, data);
}

std::uint32_t RealPageOne::take_slot(std::uint32_t page) {
  std::uint8_t expected = kSlotFree;
  if (slot_use_[page].compare_exchange_strong(expected, kSlotPage, std::memory_order_acquire)) {
    return page;
  }
  std::uint32_t slot = 0;
  {
    const std::lock_guard g(overflow_mutex_);
    if (!free_overflow_.empty()) {
      slot = free_overflow_.back();
      free_overflow_.pop_back();
    } else {
      if (next_overflow_ >= pages_)
        throw std::logic_error("real PageONE: overflow slots exhausted");
      slot = pages_ + next_overflow_++;
    }
  }
  slot_use_[slot].store(kSlotPage, std::memory_order_relaxed);
  return slot;
}

void RealPageOne::release_slot(std::uint32_t slot) {
  slot_use_[slot].store(kSlotFree, std::memory_order_release);
  if (slot >= pages_) {
    const std::lock_guard g(overflow_mutex_);
    free_overflow_.push_back(slot);
  }
}

RealPageOne::Writer RealPageOne::write(std::uint32_t page) {
  const std::uint32_t st = lock(page);
  std::uint32_t slot = slot_of(st);
  switch (st & kKindMask) {
    case kMerged: {
      const std::uint32_t frame = slot_of(st);
      cow_breaks_.fetch_add(1, std::memory_order_relaxed);
      merged_pages_.fetch_sub(1, std::memory_order_relaxed);
      private_pages_.fetch_add(1, std::memory_order_relaxed);
      std::uint32_t sole = 1;
      if (frame_refs_[frame].compare_exchange_strong(sole, 0, std::memory_order_acq_rel)) {
        // The last mapping: the frame's slot becomes the page's own, with nothing to copy.
        unpublish_frame(frame);
        slot_use_[frame].store(kSlotPage, std::memory_order_relaxed);
        shared_frames_.fetch_sub(1, std::memory_order_relaxed);
        break;
      }
      // Copy-on-write into a slot of the page's own.
      slot = take_slot(page);
      std::memcpy(slot_ptr(slot), slot_ptr(frame), kPageBytes);
      put_frame(frame);
      break;
    }
    case kZero:
      zero_pages_.fetch_sub(1, std::memory_order_relaxed);
      [[fallthrough]];
    case kNone:
      // A discarded or never touched slot: it reads as zeros, as the guest expects.
      slot = take_slot(page);
      private_pages_.fetch_add(1, std::memory_order_relaxed);
      break;
    default:
      break;
  }
  // The page stays locked until release_write(); the stored hash is stale from now on.
  state_[page].store(make_state(kPrivate, slot) | (st & kIndexed) | kLocked,
                     std::memory_order_relaxed);
  return Writer(this, page, slot_ptr(slot));
}

void RealPageOne::release_write(std::uint32_t page) {
  // The dirty bit is set before the unlock, so a work thread that takes the lock next sees it.
  dirty_[page >> 6].fetch_or(1ULL << (page & 63), std::memory_order_relaxed);
  unlock(page, state_[page].load(std::memory_order_relaxed));
}

void RealPageOne::store(std::uint32_t page, std::span<const std::byte, kPageBytes> bytes) {
  const Writer w = write(page);
  std::memcpy(w.bytes().data(), bytes.data(), kPageBytes);
}

void RealPageOne::load(std::uint32_t page, std::span<std::byte, kPageBytes> out) {
  const Reader r = read(page);
  std::memcpy(out.data(), r.bytes().data(), kPageBytes);
}

bool RealPageOne::get_frame_unless_zero(std::uint32_t frame) {
  std::uint32_t refs = frame_refs_[frame].load(std::memory_order_relaxed);
  while (refs != 0) {
    if (frame_refs_[frame].compare_exchange_weak(refs, refs + 1, std::memory_order_acquire,
                                                 std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

void RealPageOne::unpublish_frame(std::uint32_t frame) {
  const std::uint64_t h = frame_hash_[frame];
  Shard& sh = shard_of(h);
  const std::lock_guard g(sh.mutex);
  IndexEntry* e = sh.map.find(h);
  if (e != nullptr && e->frame == frame) {
    e->frame = kNoPage;
    if (e->empty()) sh.map.erase(h);
  }
}

void RealPageOne::put_frame(std::uint32_t frame) {
  if (frame_refs_[frame].fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // Last reference: unpublish, give the slot back to the kernel, then make it reusable.
  unpublish_frame(frame);
  discard(slot_ptr(frame));
  shared_frames_.fetch_sub(1, std::memory_order_relaxed);
  release_slot(frame);
}

void RealPageOne::forget_candidate(std::uint32_t page, std::uint64_t old_hash) {
  Shard& sh = shard_of(old_hash);
  const std::lock_guard g(sh.mutex);
  IndexEntry* e = sh.map.find(old_hash);
  if (e == nullptr || e->candidate != page) return;
  e->candidate = kNoPage;
  if (e->empty()) sh.map.erase(old_hash);
}

void RealPageOne::discard_later(std::uint32_t slot, std::uint32_t page, std::uint32_t new_state,
                                WorkerTotals& t) {
  std::byte* const at = slot_ptr(slot);
  // A slot right after the last one joins its range: the kernel walks the page tables and
  // gathers the TLB flush once per range, not once per page.
  if (!t.discard.empty() &&
      static_cast<std::byte*>(t.discard.back().iov_base) + t.discard.back().iov_len == at) {
    t.discard.back().iov_len += kPageBytes;
  } else {
    t.discard.push_back(iovec{at, kPageBytes});
  }
  t.pending.push_back(WorkerTotals::Pending{slot, page, new_state});
  if (t.discard.size() >= kDiscardBatch) flush_discards(t);
}

void RealPageOne::flush_discards(WorkerTotals& t) {
  if (t.discard.empty()) return;
  std::size_t done = 0;  // bytes given back by the batched call
  if (pidfd_ >= 0) {
    const long bytes =
        syscall(SYS_process_madvise, pidfd_, t.discard.data(), t.discard.size(), MADV_DONTNEED, 0);
    if (bytes > 0) done = static_cast<std::size_t>(bytes);
  }
  // A short count means the call stopped early: the rest go one range at a time.
  for (const iovec& range : t.discard) {
    if (done >= range.iov_len) {
      done -= range.iov_len;
      continue;
    }
    madvise(static_cast<std::byte*>(range.iov_base) + done, range.iov_len - done, MADV_DONTNEED);
    done = 0;
  }
  for (const WorkerTotals::Pending& p : t.pending) {
    release_slot(p.slot);
    unlock(p.page, p.new_state);
  }
  t.discard.clear();
  t.pending.clear();
}

RealPageOne::Comparison RealPageOne::prepare_merge(std::uint32_t page, WorkerTotals& t) {
  Comparison c;
  std::uint32_t st = 0;
  if (!try_lock(page, st)) return c;  // in use: not stable now anyway
  const bool dirty = ((dirty_[page >> 6].load(std::memory_order_relaxed) >> (page & 63)) & 1) != 0;
  if ((st & kKindMask) != kPrivate || dirty) {
    unlock(page, st);  // written since the dirty bits were taken
    return c;
  }
  const std::uint32_t slot = slot_of(st);
  const std::byte* data = slot_ptr(slot);
  if ((st & kHashValid) == 0) {
    if ((st & kIndexed) != 0) forget_candidate(page, hash_[page]);
    st &= ~kIndexed;
    // Zeros are found before hashing, which they do not need: a page with data fails at its
    // first cache line. A page whose hash is valid was not zero when hashed and is unchanged.
    if (std::memcmp(data, zeros_.data(), 64) == 0 &&
        std::memcmp(data, zeros_.data(), kPageBytes) == 0) {
      private_pages_.fetch_sub(1, std::memory_order_relaxed);
      zero_pages_.fetch_add(1, std::memory_order_relaxed);
      ++t.zero;
      ++t.freed;
      discard_later(slot, page, kZero, t);
      return c;
    }
    hash_[page] = XXH3_64bits(data, kPageBytes);
    st |= kHashValid;
    ++t.hashed;
  }
  const std::uint64_t h = hash_[page];
  Shard& sh = shard_of(h);
  const std::lock_guard g(sh.mutex);
  IndexEntry& e = sh.map.get(h);
  if (e.frame != kNoPage && !get_frame_unless_zero(e.frame)) e.frame = kNoPage;
  if (e.frame != kNoPage) {
    // The reference taken keeps the frame's bytes fixed until they are compared.
    if (e.candidate == page) e.candidate = kNoPage;
    c.kind = Comparison::kWithFrame;
    c.twin = e.frame;
  } else if (e.candidate == kNoPage || e.candidate == page) {
    e.candidate = page;  // no twin yet: wait in the index for one
    unlock(page, st | kIndexed);
    return c;
  } else {
    const std::uint32_t cand = e.candidate;
    std::uint32_t cst = 0;
    if (!try_lock(cand, cst)) {
      unlock(page, st);  // the twin is in use now; try again later
      c.kind = Comparison::kTwinBusy;
      c.twin = cand;
      return c;
    }
    const bool cand_dirty =
        ((dirty_[cand >> 6].load(std::memory_order_relaxed) >> (cand & 63)) & 1) != 0;
    if ((cst & kKindMask) != kPrivate || (cst & kHashValid) == 0 || hash_[cand] != h ||
        cand_dirty) {
      // The candidate changed since it was indexed: this page takes its place.
      unlock(cand, cst & ~kIndexed);
      e.candidate = page;
      unlock(page, st | kIndexed);
      return c;
    }
    // While this worker holds the candidate's lock no other thread can pair it or replace it,
    // so the entry still names it, without a frame, when the comparison is done.
    c.kind = Comparison::kWithCandidate;
    c.twin = cand;
    c.twin_state = cst;
  }
  c.page = page;
  c.state = st;
  c.hash = h;
  return c;
}

void RealPageOne::finish_merge(Comparison& c, WorkerTotals& t) {
  if (c.kind != Comparison::kWithFrame && c.kind != Comparison::kWithCandidate) return;
  const std::uint32_t slot = slot_of(c.state);
  if (c.kind == Comparison::kWithFrame) {
    const std::uint32_t frame = c.twin;
    if (std::memcmp(slot_ptr(slot), slot_ptr(frame), kPageBytes) == 0) {
      private_pages_.fetch_sub(1, std::memory_order_relaxed);
      merged_pages_.fetch_add(1, std::memory_order_relaxed);
      ++t.merged;
      ++t.freed;
      discard_later(slot, c.page, make_state(kMerged, frame), t);
    } else {
      put_frame(frame);  // equal hashes, different bytes
      unlock(c.page, c.state);
    }
    c.kind = Comparison::kNone;
    return;
  }
  const std::uint32_t cand = c.twin;
  const std::uint32_t frame = slot_of(c.twin_state);
  if (std::memcmp(slot_ptr(slot), slot_ptr(frame), kPageBytes) != 0) {
    unlock(cand, c.twin_state);  // equal hashes, different bytes
    unlock(c.page, c.state);
    c.kind = Comparison::kNone;
    return;
  }
  // Two equal stable pages: the candidate's slot becomes the shared frame in place and this
  // page's slot goes back in the batch. Published while both pages are locked, so no
  // copy-on-write can drop the frame before it is in the index.
  {
    Shard& sh = shard_of(c.hash);
    const std::lock_guard g(sh.mutex);
    IndexEntry& e = sh.map.get(c.hash);
    slot_use_[frame].store(kSlotFrame, std::memory_order_relaxed);
    frame_hash_[frame] = c.hash;
    frame_refs_[frame].store(2, std::memory_order_relaxed);
    e.frame = frame;
    e.candidate = kNoPage;
    unlock(cand, make_state(kMerged, frame));
  }
  private_pages_.fetch_sub(2, std::memory_order_relaxed);
  merged_pages_.fetch_add(2, std::memory_order_relaxed);
  shared_frames_.fetch_add(1, std::memory_order_relaxed);
  t.merged += 2;
  ++t.freed;
  discard_later(slot, c.page, make_state(kMerged, frame), t);
  c.kind = Comparison::kNone;
}

std::uint32_t RealPageOne::twin_slot(const Comparison& c) const {
  return c.kind == Comparison::kWithFrame ? c.twin : slot_of(c.twin_state);
}

void RealPageOne::scan_chunk(std::uint32_t first, std::uint32_t end, WorkerTotals& t) {
  // A software pipeline one page deep: a page's twin is fetched from memory while the next
  // page is hashed, and compared after. The twin is usually far away and cold, and waiting for
  // it would cost as much as the hashing.
  Comparison waiting;
  for (std::uint32_t w = first / 64; w * 64 < end; ++w) {
    const std::uint64_t dirty = dirty_[w].exchange(0, std::memory_order_relaxed);
    const std::uint32_t last = std::min(end, (w + 1) * 64);
    for (std::uint32_t page = w * 64; page < last; ++page) {
      const bool written = ((dirty >> (page & 63)) & 1) != 0;
      const bool private_frame =
          (state_[page].load(std::memory_order_relaxed) & kKindMask) == kPrivate;
      std::uint8_t& count = clean_[page];
      count = (written || !private_frame) ? 0 : static_cast<std::uint8_t>(std::min(count + 1, 3));
      if (count < cfg_.stable_periods) continue;
      if (cfg_.known_free && cfg_.known_free(page)) {
        ++t.skipped_free;
        continue;
      }
      Comparison next = prepare_merge(page, t);
      if (next.kind == Comparison::kTwinBusy && waiting.kind == Comparison::kWithCandidate &&
          waiting.twin == next.twin) {
        // The twin is the candidate the waiting comparison holds (neighbouring copies of one
        // content): finish that one first, which publishes the frame this page can join.
        finish_merge(waiting, t);
        next = prepare_merge(page, t);
      }
      if (next.kind == Comparison::kWithFrame || next.kind == Comparison::kWithCandidate) {
        const std::byte* twin = slot_ptr(twin_slot(next));
        for (std::size_t off = 0; off < kPageBytes; off += 64) __builtin_prefetch(twin + off, 0, 1);
      }
      finish_merge(waiting, t);
      waiting = next;
    }
  }
  finish_merge(waiting, t);
  flush_discards(t);
}

RealPageOnePass RealPageOne::merge_pass() {
  const std::lock_guard pass(pass_mutex_);
  const auto wall0 = std::chrono::steady_clock::now();
  const double cpu0 = thread_cpu_seconds();
  std::atomic<std::uint32_t> next_chunk{0};
  std::vector<WorkerTotals> totals(cfg_.work_threads);
  {
    std::vector<std::jthread> workers;
    workers.reserve(cfg_.work_threads);
    for (unsigned i = 0; i < cfg_.work_threads; ++i) {
      workers.emplace_back([this, &next_chunk, &t = totals[i]] {
        const double c0 = thread_cpu_seconds();
        while (true) {
          const std::uint64_t first = std::uint64_t{next_chunk.fetch_add(1)} * kChunkPages;
          if (first >= pages_) break;
          const auto begin = static_cast<std::uint32_t>(first);
          scan_chunk(
              begin,
              static_cast<std::uint32_t>(std::min<std::uint64_t>(pages_, first + kChunkPages)), t);
        }
        t.cpu = thread_cpu_seconds() - c0;
      });
    }
  }
  RealPageOnePass r;
  r.cpu_seconds = thread_cpu_seconds() - cpu0;
  for (const WorkerTotals& t : totals) {
    r.pages_hashed += t.hashed;
    r.pages_merged += t.merged;
    r.zero_pages += t.zero;
    r.skipped_free += t.skipped_free;
    r.frames_freed += t.freed;
    r.cpu_seconds += t.cpu;
  }
  r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  stats_.passes.add();
  stats_.pages_hashed.add(r.pages_hashed);
  stats_.pages_merged.add(r.pages_merged);
  stats_.zero_pages.add(r.zero_pages);
  stats_.skipped_free.add(r.skipped_free);
  stats_.cpu_seconds += r.cpu_seconds;
  return r;
}

std::uint64_t RealPageOne::pages_saved() const {
  const std::int64_t saved = merged_pages_.load(std::memory_order_relaxed) -
                             shared_frames_.load(std::memory_order_relaxed) +
                             zero_pages_.load(std::memory_order_relaxed);
  return saved > 0 ? static_cast<std::uint64_t>(saved) : 0;
}

}  // namespace memvirt
