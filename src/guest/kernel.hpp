// The guest kernel model: zones with buddy allocators and per-CPU lists, watermarks sized as
// Linux sizes them; processes whose anonymous regions have a page table entry per page;
// files on the guest's disk with a page cache; the split LRU with reclaim by kswapd and by
// direct reclaim, workingset detection, writeback and swap (vmscan.cpp, filemap.cpp,
// swap.cpp, writeback.cpp); Committed_AS and the OOM killer. Every owned frame has a reverse
// map entry (mapping.hpp). Reclaim mechanisms attach through PageHooks (hooks.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/cost.hpp"
#include "core/event_queue.hpp"
#include "core/params.hpp"
#include "core/stats.hpp"
#include "guest/block.hpp"
#include "guest/lru.hpp"
#include "guest/mapping.hpp"
#include "guest/run_array.hpp"
#include "guest/zone.hpp"
#include "host/cpu_scheduler.hpp"
#include "host/host_memory.hpp"

namespace memvirt {

struct GuestKernelConfig {
  Bytes memory{4ULL << 30};
  unsigned vcpus = 1;
  // RAM below the PCI hole; DMA32 ends here and Normal holds the rest (QEMU pc machine:
  // 3 GiB when the guest has 3.5 GiB or more, else all of it).
  std::optional<Bytes> lowmem;
  std::uint64_t min_free_kbytes = 0;  // 0: Linux's default, sqrt(lowmem_kbytes * 16)
  std::uint64_t min_free_kbytes_max = 65536;
  bool khugepaged = false;  // THP enabled: min_free_kbytes raised for huge page allocations
  std::uint32_t watermark_scale_factor = 10;
  Bytes pcp_batch_cap{512ULL * 1024};
  std::uint32_t pcp_high_factor = 6;
  bool shuffle =
      false;  // page_alloc.shuffle: randomized free lists (CONFIG_SHUFFLE_PAGE_ALLOCATOR)
  // Reclaim, writeback and swap (REFERENCE.md section 10; Linux defaults).
  std::uint32_t swappiness = 60;
  bool workingset = true;           // shadow entries and refault activation (3.15+)
  bool anon_starts_active = false;  // new anonymous pages on the active list (before 5.9)
  std::uint32_t dirty_background_ratio = 10;
  std::uint32_t dirty_ratio = 20;
  Duration dirty_expire{Duration::seconds(30)};    // dirty_expire_centisecs 3000
  Duration dirty_writeback{Duration::seconds(5)};  // dirty_writeback_centisecs 500
  std::uint64_t read_ahead_pages = 32;             // read_ahead_kb 128
  std::uint32_t page_cluster = 3;                  // swap readahead 2^3 pages
  Bytes swap{0};                                   // swap partition size; 0: none

  // Reads the guest kernel's parameters (all with Linux's defaults) from `p`.
  static GuestKernelConfig from_params(Params p, Bytes memory, unsigned vcpus);
};

struct GuestStats {
  Counter pages_allocated;
  Counter pages_freed;
  Counter anon_faults;
  Counter oom_kills;
  Counter alloc_failures;
  Counter major_faults;         // page faults that waited for the disk (pgmajfault)
  Counter minor_faults;         // page faults served from memory
  Counter refaults;             // workingset_refault: a page came back over a shadow entry
  Counter refault_activations;  // workingset_activate
  Counter pgscan;               // pages reclaim scanned (kswapd and direct)
  Counter pgsteal;              // pages reclaim freed
  Counter pgscan_direct;
  Counter kswapd_wakeups;
  Counter pswpin;        // pages read from swap
  Counter pswpout;       // pages written to swap
  Counter sectors_read;  // 512-byte sectors of the guest's disk
  Counter sectors_written;
  Counter pages_written_back;
  Counter dirty_throttled;  // times a writer waited in balance_dirty_pages
  void visit(StatsVisitor& v) const {
    v.counter("pages_allocated", pages_allocated);
    v.counter("pages_freed", pages_freed);
    v.counter("anon_faults", anon_faults);
    v.counter("oom_kills", oom_kills);
    v.counter("alloc_failures", alloc_failures);
    v.counter("major_faults", major_faults);
    v.counter("minor_faults", minor_faults);
    v.counter("refaults", refaults);
    v.counter("refault_activations", refault_activations);
    v.counter("pgscan", pgscan);
    v.counter("pgsteal", pgsteal);
    v.counter("pgscan_direct", pgscan_direct);
    v.counter("kswapd_wakeups", kswapd_wakeups);
    v.counter("pswpin", pswpin);
    v.counter("pswpout", pswpout);
    v.counter("sectors_read", sectors_read);
    v.counter("sectors_written", sectors_written);
    v.counter("pages_written_back", pages_written_back);
    v.counter("dirty_throttled", dirty_throttled);
  }
};

// /proc/meminfo, in pages.
struct Meminfo {
  std::uint64_t total = 0, free = 0, available = 0, cached = 0, swap_cached = 0;
  std::uint64_t active_anon = 0, inactive_anon = 0, active_file = 0, inactive_file = 0;
  std::uint64_t dirty = 0, writeback = 0, anon = 0, mapped = 0;
  std::uint64_t swap_total = 0, swap_free = 0, committed_as = 0;
};

struct FileIdTag {};
using FileId = StrongInt<FileIdTag, std::uint32_t>;

struct Region {
  std::uint64_t id = 0;
  // Its page table entries: every page of an anonymous region; a file region's private
  // copies (written pages of a private mapping), its other pages being the file's.
  MappingId mapping;
  std::uint64_t length_pages = 0;  // mapped (committed) size
  std::uint64_t touched = 0;       // pages faulted in so far, from the start of the region
  bool thp = false;        // transparent huge pages: faults fill 2 MiB at once when they can
  std::vector<bool> huge;  // per 512-page chunk of the region: backed by one order-9 block
  // A file mapping (mmap of a file): which file, MAP_SHARED or MAP_PRIVATE, PROT_EXEC, and
  // which of its pages map the file's page cache page now.
  std::optional<FileId> file;
  bool shared = false;
  bool exec = false;
  std::vector<bool> file_mapped;
};

// A file of the guest's filesystem, stored contiguously on its disk.
struct GuestFile {
  bool live = false;
  MappingId mapping;          // its page cache
  std::uint64_t pages = 0;    // size
  std::uint64_t content = 0;  // what its pages hold until written: one value per image file
  ContentClass content_class = ContentClass::kOpaque;
  std::uint64_t first_sector = 0;
  std::uint64_t extent_pages = 0;  // disk space reserved
  std::uint64_t cached = 0;        // resident pages
  std::uint64_t dirty = 0;
  TimePoint dirtied_when{};  // when its first dirty page since the last clean state appeared
  // Readahead state (struct file_ra_state, one per file here).
  std::uint64_t ra_next = 0, ra_window = 0;
  // Contents written back over the image's: page -> content.
  std::unordered_map<std::uint64_t, Fingerprint> on_disk;
  // The regions that map it (process, region id): the reverse map of its mapped pages.
  std::vector<std::pair<std::uint32_t, std::uint64_t>> mappers;
};

struct Process {
  std::uint32_t pid = 0;
  std::string name;
  bool killable = true;
  bool alive = true;
  std::uint64_t rss_pages = 0;
  std::vector<Region> regions;
  // CPU work in progress (GuestKernel::run): at most one piece at a time.
  bool running = false;
  std::uint64_t run_token = 0;  // identifies the piece, so a superseded completion does nothing
  std::optional<TaskId> task;   // on the host's scheduler
  std::function<void()> then;   // called when the piece is done, or at once if killed
};

// What a program writes to a page it touches.
using ContentFn = std::function<Fingerprint(std::uint64_t page_index)>;

// kBlocked: the process waits for I/O (request `wait`, see GuestKernel::when_done) and
// calls again when it completes.
enum class TouchStatus : std::uint8_t { kDone, kKilled, kOutOfMemory, kBlocked };
struct TouchResult {
  TouchStatus status = TouchStatus::kDone;
  std::uint64_t pages = 0;  // pages touched by this call
  CpuTime guest{};          // CPU time on the vCPU (guest kernel and program)
  CpuTime host{};           // host time handling faults for this guest
  std::uint64_t wait = 0;   // the I/O a blocked process waits for
};

class GuestKernel {
 public:
  // `vcpu` and `host_faults` receive the costs; `host` backs guest memory for VM `vm`.
  GuestKernel(const GuestKernelConfig& cfg, HostMemory& host, VmId vm, const CostProfile& costs,
              CostAccount& vcpu, CostAccount& host_faults);
  ~GuestKernel();
  GuestKernel(const GuestKernel&) = delete;
  GuestKernel& operator=(const GuestKernel&) = delete;

  // Gives the kernel its clock and its disk: the page cache, swap, kswapd and the flusher
  // need both. Without them the guest has anonymous memory only, as before it had a disk.
  // The swap partition (cfg.swap) follows the filesystem's `fs_sectors` on the disk.
  void attach_disk(EventQueue& queue, BlockDevice& disk, std::uint64_t fs_sectors);
  // Gives the kernel the host CPUs its vCPUs run on: `group` of `cpus` (a group of
  // vcpus() CPUs). Without it, each process runs as if it had a CPU of its own.
  void attach_cpus(EventQueue& queue, CpuScheduler& cpus, GroupId group);

  // Process `pid` runs `work` of CPU time (its program and the kernel work done for it) on
  // the guest's vCPUs, shared with the guest's other runnable processes and, through the
  // host's scheduler, with other VMs' vCPUs; `then` is called when the work is done. A
  // process runs one piece at a time (a second one while it runs is a std::logic_error). If
  // the process is killed first, its work stops and `then` is called at once, from an
  // event; once the VM halts, never. Needs a clock (attach_cpus or attach_disk).
  void run(std::uint32_t pid, CpuTime work, std::function<void()> then);

  // Page allocator entry points (alloc_pages/free_pages), with the hooks. Order 0 goes
  // through the per-CPU lists. Below the low watermark kswapd is woken; when every zone is
  // below its min watermark, direct reclaim runs, then the OOM notifiers, then the OOM
  // killer (which may kill the calling process), and the allocation retries. Returns
  // nullopt when no killable process is left, or (with `blocked` given) when direct reclaim
  // must wait for writeback: then *blocked is the I/O to wait for.
  std::optional<Gfn> alloc_pages(unsigned cpu, unsigned order, std::uint64_t* blocked = nullptr);
  // An allocation that fails rather than reclaim or wake the OOM killer (__GFP_NORETRY), as
  // the balloon driver allocates.
  std::optional<Gfn> try_alloc_pages(unsigned cpu, unsigned order);
  void free_pages(unsigned cpu, Gfn gfn, unsigned order);
  // A page for memory reclaim's own use (PF_MEMALLOC: below every watermark, no reclaim), as
  // zswap allocates its pool inside a swap-out; nullopt when no zone has a free page.
  std::optional<Gfn> alloc_page_in_reclaim(unsigned cpu);
  // zswap_writeback_entry(): swap slot `slot`, in use and held by a hook, is written to the
  // swap disk with `content` through a new swap cache page (from the reserves, as
  // alloc_page_in_reclaim), which reclaim frees once the write is done. False when the slot's
  // page is in the swap cache already or no page is free (the hook then keeps its copy).
  bool write_back_swap_slot(std::uint32_t slot, Fingerprint content);
  // frontswap_shrink()'s partial swapoff: up to `pages` swapped-out pages that a hook holds
  // (PageHooks::in_frontswap) come back into their processes' memory and leave swap, taking
  // free pages only (no reclaim). Returns the pages brought back.
  std::uint64_t unuse_frontswap(std::uint64_t pages);

  std::uint32_t spawn(const std::string& name, bool killable = true);
  // mmap of anonymous memory: commits `length` (Committed_AS) without touching it. With
  // `thp` (madvise(MADV_HUGEPAGE)), a fault at a 2 MiB boundary of the region allocates an
  // order-9 block and clears it whole, falling back to 4 KiB pages when none is free.
  std::uint64_t mmap(std::uint32_t pid, Bytes length, bool thp = false);
  // Touches the next `pages` untouched pages of the region (first-touch faults: allocate,
  // zero, then the program writes content(i) at region page i). Stops early when the
  // process is killed, blocks on reclaim, or the guest is out of memory with nothing to kill.
  // `fill`: the program writes whole pages (memset); otherwise it stores a byte per page,
  // whose cost is negligible beside the fault.
  TouchResult touch(std::uint32_t pid, std::uint64_t region, std::uint64_t pages,
                    const ContentFn& content, unsigned cpu = 0, bool fill = true);
  // mmap of a file, `shared` (MAP_SHARED: writes dirty the page cache page) or private
  // (MAP_PRIVATE: the first write to a page copies it into an anonymous page of the
  // process, counted in Committed_AS), `exec` (PROT_EXEC: referenced pages stay active).
  // Every page of the file as it is now may be accessed (access()); pages beyond its end
  // are a std::out_of_range (SIGBUS). A truncate or unlink unmaps the pages it drops first.
  std::uint64_t mmap_file(std::uint32_t pid, FileId file, bool shared, bool exec = false);
  // A program access to an already touched region page: reads it (returns its content in
  // *out) or writes `fp`. A swapped-out page faults in: from the swap cache at once, else
  // the process blocks (kBlocked) while it is read and calls again. In a file region, a page
  // not in the page cache is read around the fault (read_ahead_kb, as filemap_fault) and
  // the process blocks the same way; a page not yet mapped is a minor fault.
  TouchResult access(std::uint32_t pid, std::uint64_t region, std::uint64_t page, bool write,
                     Fingerprint fp, Fingerprint* out = nullptr);
  // A program write to an already touched, resident region page.
  void write(std::uint32_t pid, std::uint64_t region, std::uint64_t page, Fingerprint fp);
  // What the program reads from an already touched, resident region page.
  Fingerprint read(std::uint32_t pid, std::uint64_t region, std::uint64_t page);
  // munmap: frees the region's pages in address order. Returns the CPU time spent.
  CpuTime munmap(std::uint32_t pid, std::uint64_t region, unsigned cpu = 0);
  // Unmaps the last `pages` touched pages of a region (a partial munmap of its tail) and
  // shrinks its mapping by as much. Returns the CPU time spent.
  CpuTime munmap_tail(std::uint32_t pid, std::uint64_t region, std::uint64_t pages,
                      unsigned cpu = 0);
  // exit: unmaps every region of the process.
  CpuTime exit(std::uint32_t pid);

  // Files (filemap.cpp). A file created with `content` holds, until written, page i =
  // make_fingerprint(hash(content, i), cls): the same in every guest booted from one image.
  // Its disk space is reserved for `reserve` (at least its size): the first extent an
  // unlinked file left that holds it, else after the last file.
  FileId create_file(Bytes size, std::uint64_t content, Bytes reserve = Bytes{0},
                     ContentClass cls = ContentClass::kOpaque);
  // read(2) of pages [first, first + pages), through the page cache with readahead.
  TouchResult read_file(std::uint32_t pid, FileId file, std::uint64_t first, std::uint64_t pages,
                        unsigned cpu = 0);
  // write(2) of whole pages, extending the file; the pages become dirty.
  TouchResult write_file(std::uint32_t pid, FileId file, std::uint64_t first, std::uint64_t pages,
                         const ContentFn& content, unsigned cpu = 0);
  // What a read of file page `page` returns now (resident or on disk), without side effects.
  [[nodiscard]] Fingerprint file_content(FileId file, std::uint64_t page) const;
  void truncate(FileId file, std::uint64_t pages);
  void unlink(FileId file);
  [[nodiscard]] const GuestFile& file(FileId f) const { return files_[f.value()]; }

  // The wait of a writer throttled by the dirty limits (balance_dirty_pages).
  static constexpr std::uint64_t kDirtyThrottleWait = UINT64_MAX;
  // Calls `fn` when I/O `wait` (from a kBlocked result) has completed; at once (as an event)
  // if it has. A blocked writer in balance_dirty_pages waits the same way.
  void when_done(std::uint64_t wait, std::function<void()> fn);
  // sync(2): writes every dirty page; `fn` when all writeback has completed.
  void sync(std::function<void()> fn);
  // umount and mount again: sync, then every file's pages leave the page cache (their
  // cleancache copies are invalidated, then the filesystem's); `fn` when done. The files
  // stay on disk and are read from it again. A mapped file makes it a std::logic_error
  // (EBUSY).
  void umount(std::function<void()> fn);

  [[nodiscard]] const Process* process(std::uint32_t pid) const;
  [[nodiscard]] std::uint64_t committed_as_pages() const { return committed_pages_; }
  [[nodiscard]] std::uint64_t free_pages() const;  // buddy free pages, all zones
  [[nodiscard]] std::uint64_t pcp_pages() const;
  [[nodiscard]] std::uint64_t total_pages() const { return map_.pages.size(); }
  [[nodiscard]] Meminfo meminfo() const;
  [[nodiscard]] std::vector<std::unique_ptr<Zone>>& zones() { return zones_; }
  [[nodiscard]] const std::vector<std::unique_ptr<Zone>>& zones() const { return zones_; }
  Zone& zone_of(Gfn g);
  MemMap& memmap() { return map_; }
  [[nodiscard]] const Lru& lru() const { return lru_; }
  [[nodiscard]] const SlotSpace& slots() const { return slots_; }
  [[nodiscard]] const GuestStats& stats() const { return stats_; }
  // /proc/pressure/memory "some" total: time during which a task waited for memory (a
  // swap-in, a read of a workingset page, reclaim waiting for writeback), plus the CPU time
  // of reclaim (kswapd's and direct reclaim's, which Linux counts as stalled), the latter
  // added as if it never overlapped a wait.
  [[nodiscard]] Duration memory_stall() const;
  [[nodiscard]] HostMemory& host() { return host_; }
  [[nodiscard]] const CostProfile& costs() const { return costs_; }
  // Work a program does on the guest's vCPUs beyond what the kernel charges.
  void charge_vcpu(CpuTime t) { vcpu_.charge(t); }
  [[nodiscard]] VmId vm() const { return vm_; }
  [[nodiscard]] unsigned vcpus() const { return vcpus_; }
  void add_hooks(PageHooks* h) { map_.hooks.push_back(h); }
  void remove_hooks(PageHooks* h) { std::erase(map_.hooks, h); }
  [[nodiscard]] std::uint64_t memory_bytes() const;
  // Gfn of page `page` of a region; the page must be resident.
  [[nodiscard]] Gfn region_gfn(const Region& r, std::uint64_t page) const;
  // Reclaims until `pages` are freed or nothing more can be (vmscan.cpp). Returns pages freed.
  std::uint64_t reclaim(std::uint64_t pages, bool direct);
  // The VM is gone: its processes stop running, and pending I/O completions and daemon runs
  // do nothing from now on.
  void halt();
  // Cheap or full consistency checks of every zone, of page ownership and of the LRU: every
  // frame is free, on a per-CPU list, isolated or offline, on exactly one LRU list, or owned
  // by the kernel. Throws.
  void check(bool full) const;

 private:
  struct Io;
  struct Swap;
  Process& proc(std::uint32_t pid);
  // sched.cpp: the process's work stops (it was killed, or the VM halted).
  void stop_running(Process& p);
  void finish_running(std::uint32_t pid, std::uint64_t token);
  Region& region(Process& p, std::uint64_t id);
  // Kills the killable process with the largest RSS (oom_badness). False when none is left.
  bool oom_kill();
  CpuTime release_region(Process& p, Region& r, unsigned cpu);
  void release_anon_page(MappingId m, std::uint64_t page, SlotEntry e, unsigned cpu, bool huge_head,
                         bool clear_slot);
  std::optional<Gfn> alloc_from_zonelist(unsigned cpu, unsigned order, bool low);
  void setup_watermarks(const GuestKernelConfig& cfg);
  // A page enters use for a mapping: its flags, the LRU, the reverse map.
  void install(Gfn g, MappingId m, std::uint64_t page, PageFlags flags, LruList list);
  // A page of a mapping leaves use: off the LRU, out of the reverse map, to the allocator.
  void uninstall(Gfn g, unsigned cpu);
  void set_flags(Gfn g, PageFlags f) { map_.mut(g).set_flags(f); }
  [[nodiscard]] PageFlags flags(Gfn g) const { return map_[g].flags(); }
  [[nodiscard]] LruList new_anon_list() const {
    return cfg_.anon_starts_active ? LruList::kActiveAnon : LruList::kInactiveAnon;
  }
  [[nodiscard]] bool has_swap() const;
  // zone_reclaimable_pages(): the file LRU, and the anon LRU while swap has free slots.
  [[nodiscard]] std::uint64_t reclaimable_pages() const;

  // vmscan.cpp
  void wake_kswapd();
  void kswapd_run();
  [[nodiscard]] bool zones_balanced(bool high) const;
  std::uint64_t shrink_node(std::uint64_t target, bool direct, int priority);
  std::uint64_t shrink_inactive(LruList l, std::uint64_t scan, bool direct);
  void shrink_active(LruList l, std::uint64_t scan);
  [[nodiscard]] bool inactive_is_low(bool file) const;
  bool reclaim_page(Gfn g, bool direct);

  // filemap.cpp
  void mark_accessed(Gfn g);
  // Brings pages [first, first + n) of a file into the page cache (readahead); returns the
  // I/O to wait for, 0 if none was needed. Readahead's allocations give up rather than
  // reclaim; the page the caller needs (`needed`, inside the window) is allocated as
  // filemap_create_folio() does, with direct reclaim and the OOM killer, and when even that
  // finds none `*blocked` names the writeback to wait for (0: none, out of memory).
  std::uint64_t readahead(FileId f, std::uint64_t first, std::uint64_t n, unsigned cpu,
                          std::uint64_t needed, std::uint64_t* blocked);
  void evict_file_page(Gfn g, MappingId m, std::uint64_t page);
  void drop_file_page(FileId f, std::uint64_t page, unsigned cpu);
  [[nodiscard]] FileId file_of(MappingId m) const { return FileId{slots_.owner_of_mapping(m)}; }
  [[nodiscard]] Fingerprint image_content(const GuestFile& f, std::uint64_t page) const;
  // An unlinked file's disk space becomes free for the next files (first fit).
  void release_extent(std::uint64_t first, std::uint64_t sectors);

  // file_mmap.cpp
  TouchResult access_file_page(std::uint32_t pid, std::uint64_t region, std::uint64_t page,
                               bool write, Fingerprint fp, Fingerprint* out);
  void map_file_page(Process& p, Region& r, std::uint64_t page, Gfn g);
  void unmap_file_page(Process& p, Region& r, std::uint64_t page, Gfn g);
  // try_to_unmap(): every region that maps file page (f, page), now frame g, unmaps it.
  void unmap_everywhere(FileId f, std::uint64_t page, Gfn g);
  void release_file_region(Process& p, Region& r);
  // The I/O reading page g, which is locked; the last I/O if none is found.
  [[nodiscard]] std::uint64_t io_reading(Gfn g) const;

  // swap.cpp
  bool swap_out(Gfn g, MappingId m, std::uint64_t page);
  void add_to_swap_cache(Gfn g, std::uint32_t slot);
  // The swap write of swap cache page g to `slot`, which will hold `content`.
  void start_swap_write(Gfn g, std::uint32_t slot, Fingerprint content);
  // frontswap_load(): the content a hook holds for `slot`.
  std::optional<Fingerprint> frontswap_load(std::uint32_t slot);
  void free_swap_slot(std::uint32_t slot);
  // Swap-in of the page at (m, page) holding swap entry `slot`; 0 when it is resident now.
  std::uint64_t swap_in(MappingId m, std::uint64_t page, std::uint32_t slot, unsigned cpu);
  void delete_from_swap_cache(Gfn g);
  // A clean swap cache page nobody maps leaves the swap cache and is freed; its slot keeps
  // the content for the page table entry that names it.
  void free_swapcache_page(Gfn g);

  // writeback.cpp
  void account_dirty(Gfn g, FileId f);
  void balance_dirty_pages(std::uint64_t* blocked);
  void start_writeback(FileId f, std::uint64_t max_pages, bool expired_only);
  void flusher_run();
  void wake_flusher();
  [[nodiscard]] std::uint64_t dirtyable_pages() const;

  // I/O (filemap.cpp)
  std::uint64_t submit_io(bool write, std::uint64_t sector, std::vector<Gfn> pages,
                          std::function<void(Io&)> on_done);
  void complete_io(std::uint64_t id);
  void wake_io_waiters(std::uint64_t id);
  // A task waits for I/O `io` in a memory stall (psi_memstall_enter) until it completes.
  void stall_on(std::uint64_t io);
  void end_stalls(std::uint64_t io);

  GuestKernelConfig cfg_;
  HostMemory& host_;
  VmId vm_;
  const CostProfile& costs_;
  CostAccount& vcpu_;
  CostAccount& host_faults_;
  unsigned vcpus_;
  MemMap map_;
  std::vector<std::unique_ptr<Zone>> zones_;  // DMA, DMA32, Normal (low to high)
  Lru lru_;
  SlotSpace slots_;
  std::vector<Process> processes_;
  std::vector<GuestFile> files_;
  std::uint64_t next_region_ = 1;
  std::uint64_t committed_pages_ = 0;
  GuestStats stats_;
  // Page counts /proc/meminfo reports.
  std::uint64_t nr_file_ = 0, nr_anon_ = 0, nr_dirty_ = 0, nr_writeback_ = 0, nr_mapped_ = 0;
  std::uint64_t nr_swapcache_ = 0;
  // page_mapcount() of the page cache pages that file regions map.
  RunArray mapcount_;                 // gfn -> count; sized at the first file mapping
  std::uint64_t eviction_clock_ = 0;  // workingset: evictions and activations (lruvec age)
  // Reclaim's recent scanned and rotated counts, [anon, file] (get_scan_count's ratios).
  std::uint64_t recent_scanned_[2]{}, recent_rotated_[2]{};

  EventQueue* queue_ = nullptr;
  CpuScheduler* cpus_ = nullptr;
  GroupId cpu_group_;
  std::uint32_t kswapd_pid_ = 0;  // kswapd0, a kernel thread; spawned with the disk
  BlockDevice* disk_ = nullptr;
  std::uint64_t fs_sectors_ = 0, fs_next_sector_ = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> free_extents_;  // (first sector, sectors)
  std::unique_ptr<Swap> swap_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Io>> io_;
  std::unordered_map<std::uint64_t, std::vector<std::function<void()>>> io_waiters_;
  std::vector<std::function<void()>> dirty_waiters_;  // writers throttled by dirty limits
  std::vector<std::function<void()>> sync_waiters_;
  std::uint64_t next_io_ = 1;
  std::uint64_t last_io_ = 0;  // an I/O to wait for when reclaim must wait for writeback
  // Memory pressure stall (memory_stall()): waits in progress, by the I/O they wait for.
  std::unordered_map<std::uint64_t, std::uint32_t> io_stalls_;
  std::uint32_t stalled_ = 0;
  TimePoint stall_since_{};
  Duration stall_waited_{};
  CpuTime stall_cpu_{};
  bool halted_ = false;
  bool kswapd_running_ = false;
  bool flusher_scheduled_ = false;
  bool background_writeback_ = false;
};

}  // namespace memvirt
