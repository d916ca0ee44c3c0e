// The host's memory: frames, the shared zero page, copy-on-write sharing and one nested page
// table per VM, with accounting that balances at every step.
//
// Host memory used = private frames of all VMs + live shared frames (+ nothing for the zero
// page, which is one frame the host has anyway). A VM's resident memory counts every mapped
// frame, shared ones included, as Linux's RSS does for a QEMU process.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "core/stats.hpp"
#include "core/types.hpp"
#include "host/content.hpp"
#include "host/content_store.hpp"

namespace memvirt {

struct VmIdTag {};
using VmId = StrongInt<VmIdTag, std::uint32_t>;

enum class PageState : std::uint8_t {
  kUnbacked = 0,  // never touched or discarded: no frame
  kZero = 1,      // mapped read-only to the shared zero page
  kPrivate = 2,   // a frame of its own
  kShared = 3,    // a copy-on-write frame shared with other mappings
  kSwapped = 4,   // content in host swap
  kPooled = 5,    // content in a tmem pool
  kLazyFree = 6,  // a private frame given up with MADV_FREE: the host may reclaim it under
                  // pressure; a guest write before that keeps it, with no fault
};
inline constexpr int kPageStateCount = 7;

// One nested page table entry: state in the top 3 bits, a 61-bit payload below (the content
// handle of a private frame, the id of a shared frame, a swap slot or a pool handle).
class NptEntry {
 public:
  constexpr NptEntry() = default;
  static constexpr NptEntry make(PageState s, std::uint64_t payload) {
    return NptEntry{(static_cast<std::uint64_t>(s) << 61) | (payload & kFingerprintMask)};
  }
  [[nodiscard]] constexpr PageState state() const { return static_cast<PageState>(raw_ >> 61); }
  [[nodiscard]] constexpr std::uint64_t payload() const { return raw_ & kFingerprintMask; }
  [[nodiscard]] constexpr std::uint64_t raw() const { return raw_; }
  constexpr explicit NptEntry(std::uint64_t raw) : raw_(raw) {}

 private:
  std::uint64_t raw_ = 0;
};

// gfn -> entry, stored in 2 MiB chunks (512 entries) allocated on first use, so untouched
// guest memory costs only a null pointer per chunk.
class NestedPageTable {
 public:
  explicit NestedPageTable(std::uint32_t pages);
  [[nodiscard]] NptEntry get(Gfn gfn) const {
    const auto& chunk = chunks_[gfn.value() >> kChunkShift];
    return chunk ? NptEntry{chunk[gfn.value() & kChunkMask]} : NptEntry{};
  }
  void set(Gfn gfn, NptEntry e) {
    auto& chunk = chunks_[gfn.value() >> kChunkShift];
    if (!chunk) chunk = std::make_unique<std::uint64_t[]>(kChunkSize);
    chunk[gfn.value() & kChunkMask] = e.raw();
  }
  [[nodiscard]] std::uint32_t pages() const { return pages_; }
  // True when the 2 MiB chunk holding `gfn` was never touched (all entries unbacked).
  [[nodiscard]] bool chunk_absent(Gfn gfn) const { return !chunks_[gfn.value() >> kChunkShift]; }
  [[nodiscard]] std::uint64_t memory_bytes() const;

 private:
  static constexpr unsigned kChunkShift = 9;
  static constexpr std::uint32_t kChunkSize = 1U << kChunkShift;
  static constexpr std::uint32_t kChunkMask = kChunkSize - 1;
  std::uint32_t pages_;
  std::vector<std::unique_ptr<std::uint64_t[]>> chunks_;
};

struct VmMemoryStats {
  std::int64_t pages_in_state[kPageStateCount]{};  // current count per PageState
  Counter faults_in;                // frames allocated on a guest touch of an unbacked or zero page
  Counter cow_breaks;               // writes to a shared frame that copied it
  Counter discards;                 // pages dropped by discard()
  Counter lazy_frees;               // pages given up with lazy_free()
  Counter lazy_reclaimed;           // lazily freed frames the host took back
  Counter lazy_reused;              // lazily freed frames written again before reclaim
  Counter zero_maps;                // pages replaced by the zero page
  std::uint64_t touched_pages = 0;  // distinct gfns ever backed by a frame
  // The counters (not the current state counts).
  void visit(StatsVisitor& v) const {
    v.counter("faults_in", faults_in);
    v.counter("cow_breaks", cow_breaks);
    v.counter("discards", discards);
    v.counter("lazy_frees", lazy_frees);
    v.counter("lazy_reclaimed", lazy_reclaimed);
    v.counter("lazy_reused", lazy_reused);
    v.counter("zero_maps", zero_maps);
  }
};

// What the host did for a guest write, so the caller can charge its cost.
enum class WriteEffect : std::uint8_t { kInPlace, kFaultIn, kCopyOnWrite };

class HostMemory {
 public:
  explicit HostMemory(std::unique_ptr<ContentStore> store);
  HostMemory(const HostMemory&) = delete;
  HostMemory& operator=(const HostMemory&) = delete;

  VmId add_vm(Bytes guest_memory);
  // Drops every mapping of the VM (shutdown or kill).
  void remove_vm(VmId vm);
  [[nodiscard]] bool has_vm(VmId vm) const {
    return vm.value() < vms_.size() && vms_[vm.value()] != nullptr;
  }

  // A guest write of content `fp` to `gfn`.
  WriteEffect write(VmId vm, Gfn gfn, Fingerprint fp);
  // A guest read. An unbacked page is mapped to the zero page, as Linux does on a read fault.
  Fingerprint read(VmId vm, Gfn gfn);
  // The page's content without side effects (for checks and scanners).
  [[nodiscard]] Fingerprint peek(VmId vm, Gfn gfn) const;
  // madvise(MADV_DONTNEED): drop the mapping; the next touch faults in a zeroed page.
  void discard(VmId vm, Gfn gfn);
  // madvise(MADV_FREE): a private frame stays mapped, with its content, until the host
  // reclaims it under pressure (reclaim_lazy); a guest write before that keeps the frame
  // without a fault. Other backed pages are dropped as by discard().
  void lazy_free(VmId vm, Gfn gfn);
  // Reclaims up to `pages` lazily freed frames, oldest first; returns how many it took.
  std::uint64_t reclaim_lazy(std::uint64_t pages);
  // Replace the page by the shared zero page (its content must be zero or be meant to be).
  void map_zero(VmId vm, Gfn gfn);
  // Make (vm, gfn) share the frame of (target_vm, target_gfn), whose content must be equal.
  // Returns false (and does nothing) if the contents differ or either page is not backed.
  bool merge(VmId vm, Gfn gfn, VmId target_vm, Gfn target_gfn);

  // The shared frame a page maps, if it maps one.
  [[nodiscard]] std::optional<std::uint64_t> shared_frame(VmId vm, Gfn gfn) const;
  // Makes (vm, gfn) map shared frame `id`, whose content must equal the page's. Returns
  // false (and does nothing) if the frame is gone, the contents differ or the page is not
  // backed by a private frame.
  bool merge_into(VmId vm, Gfn gfn, std::uint64_t id);
  // Turns the page's private frame into a shared frame with one mapping; returns its id.
  // Returns nullopt when the page is not backed by a private frame.
  std::optional<std::uint64_t> make_shared(VmId vm, Gfn gfn);
  // Mappings of a shared frame (0 once it is gone).
  [[nodiscard]] std::uint32_t shared_refs(std::uint64_t id) const {
    return id < shared_.size() ? shared_[id].refs : 0;
  }
  [[nodiscard]] Fingerprint shared_content(std::uint64_t id) const;

  // Dirty tracking: once enabled for a VM, every guest write sets the page's dirty bit;
  // take_dirty() reads and clears it (like soft-dirty bits or write-protect faults).
  void enable_dirty_tracking(VmId vm);
  bool take_dirty(VmId vm, Gfn gfn);

  [[nodiscard]] PageState state(VmId vm, Gfn gfn) const { return space(vm).npt.get(gfn).state(); }
  // True when no page of the 512-page chunk holding `gfn` was ever touched.
  [[nodiscard]] bool chunk_unbacked(VmId vm, Gfn gfn) const {
    return space(vm).npt.chunk_absent(gfn);
  }
  [[nodiscard]] std::uint64_t frames_used() const { return private_frames_ + shared_frames_; }
  [[nodiscard]] std::uint64_t private_frames() const { return private_frames_; }
  // Private frames given up with MADV_FREE and not yet reclaimed (part of private_frames).
  [[nodiscard]] std::uint64_t lazy_frames() const { return lazy_frames_; }
  [[nodiscard]] std::uint64_t shared_frames() const { return shared_frames_; }
  [[nodiscard]] const VmMemoryStats& vm_stats(VmId vm) const { return space(vm).stats; }
  // Resident pages of one VM (private + shared mappings), as RSS counts them.
  [[nodiscard]] std::uint64_t resident_pages(VmId vm) const;
  [[nodiscard]] std::uint32_t vm_pages(VmId vm) const { return space(vm).npt.pages(); }
  [[nodiscard]] const ContentStore& store() const { return *store_; }
  // Bytes of simulator memory the host model holds (page tables, tables of frames).
  [[nodiscard]] std::uint64_t memory_bytes() const;

  // Cheap checks: counters agree with each other. Throws std::logic_error on a violation.
  void check_accounting() const;
  // Expensive: walks every page table; counts and reference counts agree with the tables,
  // and (bytes store) every frame holds the bytes of its fingerprint.
  void check_full() const;

 private:
  struct SharedFrame {
    std::uint64_t handle = 0;
    std::uint32_t refs = 0;
  };
  struct VmSpace {
    explicit VmSpace(std::uint32_t pages) : npt(pages), touched((pages + 63) / 64) {
      stats.pages_in_state[static_cast<int>(PageState::kUnbacked)] = pages;
    }
    NestedPageTable npt;
    std::vector<std::uint64_t> touched;
    std::vector<std::uint64_t> dirty;  // empty unless tracking is enabled
    VmMemoryStats stats;
  };
  VmSpace& space(VmId vm) { return *vms_[vm.value()]; }
  [[nodiscard]] const VmSpace& space(VmId vm) const { return *vms_[vm.value()]; }
  void set_entry(VmSpace& s, Gfn gfn, NptEntry old_e, NptEntry new_e);
  static void mark_dirty(VmSpace& s, Gfn gfn) {
    if (!s.dirty.empty()) s.dirty[gfn.value() >> 6] |= 1ULL << (gfn.value() & 63);
  }
  std::uint64_t new_shared_id(std::uint64_t handle);
  // Releases whatever the entry holds (frame, shared reference).
  void drop(NptEntry e);
  std::uint64_t new_private(VmSpace& s, Gfn gfn, Fingerprint fp);
  [[nodiscard]] Fingerprint content_of(NptEntry e) const;

  std::unique_ptr<ContentStore> store_;
  bool inline_ = true;
  std::vector<std::unique_ptr<VmSpace>> vms_;
  std::vector<SharedFrame> shared_;
  std::vector<std::uint32_t> free_shared_ids_;
  std::uint64_t private_frames_ = 0;
  std::uint64_t shared_frames_ = 0;
  std::uint64_t lazy_frames_ = 0;
  // Lazily freed pages in the order they were freed; entries whose page has since been
  // written, discarded or removed are skipped when met.
  std::deque<std::pair<VmId, Gfn>> lazy_queue_;
};

}  // namespace memvirt
