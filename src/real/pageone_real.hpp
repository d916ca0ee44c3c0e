// PageONE over real memory with real threads: guest pages live in an mmap'd arena; every
// merge_pass() work threads hash (XXH3-64) the pages that stayed unchanged for `stable_periods`
// merge periods, find twins through a sharded hash index, confirm them with memcmp and merge
// them, giving the duplicates' frames back to the kernel with madvise(MADV_DONTNEED). The seed
// names only a 64-bit page hash (hash_64); XXH3-64 is the fastest the xxhash package offers
// (runtime-dispatched to AVX2 where present), about 2.5x xxh64 on a 4 KiB page.
//
// Userspace cannot make two virtual pages share one physical frame (that is what KSM does in
// the kernel), so a merged page is represented instead: its bytes live in one shared frame, its
// own frame is discarded, and a per-page table says "page i is shared frame f". Every guest
// access goes through read() or write(), which return a pinned view: reads of a merged page
// see the shared frame, a write to a merged page first copies it into a frame of the page's own
// (copy-on-write), and a page found to hold only zeros is discarded and reads back as zeros.
// The process's RSS really drops by the frames given back.
//
// Frames are 4 KiB slots: every page's home slot in the arena, plus as many overflow slots.
// When two pages merge, the first one's slot becomes the shared frame in place, as KSM turns
// the first page of a pair into the KSM page, so merging allocates and copies nothing; a page
// whose slot went on serving as a shared frame keeps later private data in an overflow slot.
//
// Unchanged-ness comes from dirty bits set by write(): since every guest write must pass
// through the accessor anyway (for copy-on-write), its dirty bit is exact and costs one atomic
// OR, where write-protection would cost a fault per page and period and soft-dirty bits a
// process-wide clear_refs and a pagemap read. A page's hash is kept until the next write, so a
// page that stays unchanged is hashed once, not once per period.
//
// Threads: read() and write() from any number of guest threads; merge_pass() from one thread
// at a time (it runs the work threads itself). A view holds its page's lock; hold it briefly.
// Work threads never wait for a page: one that finds a page or its twin in use leaves it for
// the next pass.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "core/stats.hpp"
#include "core/types.hpp"

namespace memvirt {

struct RealPageOneConfig {
  unsigned work_threads = 2;
  unsigned stable_periods = 2;  // seed 000: "merged if not modified in 2 merge_periods"
  // Pages the guest holds free (PPR's marks): skipped, as they are about to be recycled. A
  // wrong answer only costs a missed merge, never integrity. May be empty.
  std::function<bool(std::uint32_t page)> known_free;
};

// What one merge pass did.
struct RealPageOnePass {
  std::uint64_t pages_hashed = 0;
  std::uint64_t pages_merged = 0;  // pages that came to map a shared frame
  std::uint64_t zero_pages = 0;    // pages of zeros discarded
  std::uint64_t skipped_free = 0;  // stable pages skipped as known free
  std::uint64_t frames_freed = 0;  // frames given back to the kernel (net of shared frames made)
  double cpu_seconds = 0;          // CPU time of the work threads and the calling thread
  double wall_seconds = 0;
};

struct RealPageOneStats {
  Counter passes;
  Counter pages_hashed;
  Counter pages_merged;
  Counter zero_pages;
  Counter skipped_free;
  double cpu_seconds = 0;
};

class RealPageOne {
 public:
  static constexpr std::size_t kPageBytes = kPageSize;

  RealPageOne(std::uint32_t pages, RealPageOneConfig cfg);
  ~RealPageOne();
  RealPageOne(const RealPageOne&) = delete;
  RealPageOne& operator=(const RealPageOne&) = delete;

  // A pinned read-only view of a page: its own frame, its shared frame or zeros.
  class Reader {
   public:
    Reader(Reader&& o) noexcept : m_(o.m_), page_(o.page_), state_(o.state_), data_(o.data_) {
      o.m_ = nullptr;
    }
    Reader& operator=(Reader&&) = delete;
    ~Reader();
    [[nodiscard]] std::span<const std::byte, kPageBytes> bytes() const {
      return std::span<const std::byte, kPageBytes>(data_, kPageBytes);
    }

   private:
    friend class RealPageOne;
    Reader(RealPageOne* m, std::uint32_t page, std::uint32_t state, const std::byte* data)
        : m_(m), page_(page), state_(state), data_(data) {}
    RealPageOne* m_;
    std::uint32_t page_;
    std::uint32_t state_;
    const std::byte* data_;
  };

  // A pinned writable view of the page's own frame (copied back first if it was merged).
  // Releasing it marks the page dirty.
  class Writer {
   public:
    Writer(Writer&& o) noexcept : m_(o.m_), page_(o.page_), data_(o.data_) { o.m_ = nullptr; }
    Writer& operator=(Writer&&) = delete;
    ~Writer();
    [[nodiscard]] std::span<std::byte, kPageBytes> bytes() const {
      return std::span<std::byte, kPageBytes>(data_, kPageBytes);
    }

   private:
    friend class RealPageOne;
    Writer(RealPageOne* m, std::uint32_t page, std::byte* data) : m_(m), page_(page), data_(data) {}
    RealPageOne* m_;
    std::uint32_t page_;
    std::byte* data_;
  };

  // Guest side (any thread). Both wait while a work thread holds the page.
  Reader read(std::uint32_t page);
  Writer write(std::uint32_t page);
  // Convenience: write all 4 KiB / copy all 4 KiB out.
  void store(std::uint32_t page, std::span<const std::byte, kPageBytes> bytes);
  void load(std::uint32_t page, std::span<std::byte, kPageBytes> out);

  // Host side: one merge period's pass with `work_threads` threads. Not reentrant.
  RealPageOnePass merge_pass();

  [[nodiscard]] std::uint32_t pages() const { return pages_; }
  // Pages with a frame of their own.
  [[nodiscard]] std::uint64_t private_pages() const { return gauge(private_pages_); }
  // Pages that map a shared frame, and the live shared frames they map.
  [[nodiscard]] std::uint64_t merged_pages() const { return gauge(merged_pages_); }
  [[nodiscard]] std::uint64_t shared_frames() const { return gauge(shared_frames_); }
  // Pages that held only zeros and were discarded.
  [[nodiscard]] std::uint64_t discarded_zero_pages() const { return gauge(zero_pages_); }
  // Frames this memory holds: private pages plus shared frames.
  [[nodiscard]] std::uint64_t frames_used() const { return private_pages() + shared_frames(); }
  // Pages the guest wrote that need no frame of their own (as KSM's pages_sharing plus its
  // zero pages): merged pages beyond one per shared frame, and discarded pages of zeros.
  [[nodiscard]] std::uint64_t pages_saved() const;
  // Guest writes to a merged page (each unshared it: a copy, or the last mapping's reuse).
  [[nodiscard]] std::uint64_t cow_breaks() const { return cow_breaks_.load(); }
  // Totals of the passes so far; read from the thread that runs merge_pass().
  [[nodiscard]] const RealPageOneStats& stats() const { return stats_; }

 private:
  // Page state word: kind in bits 0-1, lock bit, hash-valid and indexed bits, and a slot:
  // the page's own data (kPrivate) or its shared frame (kMerged).
  static constexpr std::uint32_t kKindMask = 3;
  static constexpr std::uint32_t kNone = 0;     // never written: no frame, reads zeros
  static constexpr std::uint32_t kPrivate = 1;  // a frame of its own
  static constexpr std::uint32_t kMerged = 2;   // represented by a shared frame
  static constexpr std::uint32_t kZero = 3;     // held zeros, discarded: no frame, reads zeros
  static constexpr std::uint32_t kLocked = 4;
  static constexpr std::uint32_t kHashValid = 8;
  // The page is probably the candidate stored under hash_[page]; lets a rehash drop the stale
  // index entry. Kept across writes; a wrong value costs one lookup.
  static constexpr std::uint32_t kIndexed = 16;
  static constexpr unsigned kSlotShift = 5;
  static constexpr std::uint32_t kNoPage = UINT32_MAX;
  static constexpr unsigned kShardBits = 8;
  // What a slot holds. Only page p itself takes its home slot p, under its lock; overflow
  // slots come from a free list.
  enum SlotUse : std::uint8_t { kSlotFree = 0, kSlotPage = 1, kSlotFrame = 2 };

  struct IndexEntry {
    std::uint32_t frame = kNoPage;      // live shared frame with this content, if any
    std::uint32_t candidate = kNoPage;  // a stable private page waiting for a twin
    [[nodiscard]] bool empty() const { return frame == kNoPage && candidate == kNoPage; }
  };
  // Content hash -> entry, open addressing with linear probing (no allocation per entry, as
  // a node-based map would make). An entry left empty must be erased.
  class Index {
   public:
    IndexEntry* find(std::uint64_t key);
    IndexEntry& get(std::uint64_t key);  // inserts an empty entry if absent
    void erase(std::uint64_t key);

   private:
    struct Slot {
      std::uint64_t key = 0;
      IndexEntry entry;
      bool used = false;
    };
    std::size_t home(std::uint64_t key) const;
    void grow();
    std::vector<Slot> slots_;
    std::size_t size_ = 0;
  };
  // One part of the index. Hash-sharded so work threads rarely meet on a lock; an entry's
  // pages and frame are checked again under their own locks.
  struct alignas(64) Shard {
    std::mutex mutex;
    Index map;
  };

  struct WorkerTotals;
  static std::uint64_t gauge(const std::atomic<std::int64_t>& g) {
    const std::int64_t v = g.load(std::memory_order_relaxed);
    return v > 0 ? static_cast<std::uint64_t>(v) : 0;
  }
  static std::uint32_t slot_of(std::uint32_t state) { return state >> kSlotShift; }
  static std::uint32_t make_state(std::uint32_t kind, std::uint32_t slot) {
    return kind | (slot << kSlotShift);
  }
  std::uint32_t lock(std::uint32_t page);
  bool try_lock(std::uint32_t page, std::uint32_t& state);
  void unlock(std::uint32_t page, std::uint32_t state);
  void release_write(std::uint32_t page);
  [[nodiscard]] std::byte* slot_ptr(std::uint32_t slot) const {
    return slot < pages_ ? arena_ + std::size_t{slot} * kPageBytes
                         : overflow_ + std::size_t{slot - pages_} * kPageBytes;
  }
  // A free slot for page's own data: its home slot if free, else an overflow slot. Reads as
  // zeros. The page must be locked.
  std::uint32_t take_slot(std::uint32_t page);
  // Marks a discarded slot free again.
  void release_slot(std::uint32_t slot);
  // A stable page on its way to a merge: locked, hashed and its twin found, waiting for the
  // comparison that confirms it.
  struct Comparison {
    enum Kind : std::uint8_t {
      kNone,           // nothing waits (merged as zeros, indexed, skipped or done)
      kTwinBusy,       // not locked: the candidate `twin` was locked by someone else
      kWithFrame,      // `page` locked; a reference to shared frame `twin` held
      kWithCandidate,  // `page` and candidate page `twin` locked; twin_state its state
    };
    Kind kind = kNone;
    std::uint32_t page = 0, state = 0, twin = 0, twin_state = 0;
    std::uint64_t hash = 0;
  };
  void scan_chunk(std::uint32_t first, std::uint32_t end, WorkerTotals& t);
  Comparison prepare_merge(std::uint32_t page, WorkerTotals& t);
  // Compares and merges, or unlocks what the comparison held; leaves it kNone.
  void finish_merge(Comparison& c, WorkerTotals& t);
  [[nodiscard]] std::uint32_t twin_slot(const Comparison& c) const;
  // Gives `slot` back to the kernel and unlocks the locked `page` with `new_state`, in a
  // later batch.
  void discard_later(std::uint32_t slot, std::uint32_t page, std::uint32_t new_state,
                     WorkerTotals& t);
  void flush_discards(WorkerTotals& t);
  bool get_frame_unless_zero(std::uint32_t frame);
  void put_frame(std::uint32_t frame);
  void unpublish_frame(std::uint32_t frame);
  void forget_candidate(std::uint32_t page, std::uint64_t old_hash);
  Shard& shard_of(std::uint64_t hash) const { return shards_[hash >> (64 - kShardBits)]; }

  std::uint32_t pages_;
  RealPageOneConfig cfg_;
  std::vector<std::byte> zeros_;   // what pages without a frame read as
  std::byte* arena_ = nullptr;     // home slots 0 .. pages-1
  std::byte* overflow_ = nullptr;  // overflow slots pages .. 2 pages-1
  int pidfd_ = -1;                 // this process, for batched discards; -1 when unsupported
  std::unique_ptr<std::atomic<std::uint32_t>[]> state_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> dirty_;
  std::vector<std::uint64_t> hash_;  // valid while the page's kHashValid bit is set
  std::vector<std::uint8_t> clean_;  // merge periods without a write (pass-owned)
  // Per slot: what it holds, and as a shared frame its mappings and content hash (written
  // before the frame is published).
  std::unique_ptr<std::atomic<std::uint8_t>[]> slot_use_;
  std::unique_ptr<std::atomic<std::uint32_t>[]> frame_refs_;
  std::vector<std::uint64_t> frame_hash_;
  std::unique_ptr<Shard[]> shards_;
  std::mutex overflow_mutex_;
  std::vector<std::uint32_t> free_overflow_;
  std::uint32_t next_overflow_ = 0;  // under overflow_mutex_
  std::atomic<std::int64_t> private_pages_{0};
  std::atomic<std::int64_t> merged_pages_{0};
  std::atomic<std::int64_t> shared_frames_{0};
  std::atomic<std::int64_t> zero_pages_{0};
  std::atomic<std::uint64_t> cow_breaks_{0};
  std::mutex pass_mutex_;
  RealPageOneStats stats_;
};

}  // namespace memvirt
