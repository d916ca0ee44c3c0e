// Linux KSM (mm/ksm.c, current mainline), modelled page by page: ksmd wakes every
// sleep_millisecs and scans pages_to_scan present pages of the registered VMs in address
// order. For each page (cmp_and_merge_page): a page already merged is left alone; otherwise
// its checksum must match the one seen on the previous visit (else the page is volatile and
// only its new checksum is kept); a zero page merges with the zero page when use_zero_pages
// is set; then the stable tree is searched, then the unstable tree, which is rebuilt every
// full scan. Two equal pages found through the unstable tree become a new KSM page in the
// stable tree. A stable node with max_page_sharing mappings gets a duplicate (a chain).
// smart_scan skips pages that repeatedly failed to merge, for 1, 2, 4 or 8 scans by age.
//
// Trees are keyed by the page's content; each search charges log2(tree size) comparisons of
// unequal pages plus one full comparison on a match, with the calibrated costs.
#pragma once

#include <optional>
#include <unordered_map>
#include <vector>

#include "reclaim/content_index.hpp"
#include "reclaim/mechanism.hpp"

namespace memvirt {

struct KsmConfig {
  bool run = true;                        // ksmd runs from the start (a policy may stop it)
  std::uint64_t pages_to_scan = 100;      // /sys/kernel/mm/ksm/pages_to_scan default
  Duration sleep = Duration::millis(20);  // sleep_millisecs default
  std::uint32_t max_page_sharing = 256;   // default
  bool use_zero_pages = false;            // default 0
  bool smart_scan = true;                 // default 1 (Linux 6.7+)
  Op checksum = Op::kXxh64Page;           // xxh64 since Linux 6.x; jhash2 before
};

inline constexpr std::array<Spelling<Op>, 2> kKsmChecksumSpellings{
    {{Op::kXxh64Page, "xxh64"}, {Op::kJhash2Page, "jhash2"}}};

struct KsmStats {
  Counter full_scans;
  Counter pages_scanned;
  Counter pages_skipped;
  Counter ksm_zero_pages;
  Counter merges;  // pages that joined a KSM page
};

class Ksm final : public Mechanism {
 public:
  using Config = KsmConfig;
  explicit Ksm(KsmConfig cfg) : cfg_(cfg) {}
  static KsmConfig config_from(Params& p);

  [[nodiscard]] std::string name() const override { return "ksm"; }
  void start(const MechanismEnv& env) override;
  void attach(const VmHandle& vm) override;
  void detach(VmId vm) override;
  void visit_stats(StatsVisitor& v) const override;
  void visit_columns(StatsVisitor& v) const override;

  // ksm_do_scan(): scans up to pages_to_scan pages. Returns the CPU time it took.
  CpuTime scan_batch();
  // Part of a batch: scans until `budget` pages are scanned or the work reaches `slice`, and
  // takes the pages scanned off the budget (set to 0 when nothing is left to scan). Returns
  // the CPU time it took.
  CpuTime scan_pages(std::uint64_t& budget, CpuTime slice);

  // Writes to run, pages_to_scan and sleep_millisecs, as a policy makes them. Stopping takes
  // effect once the batch in progress ends (run_store waits for ksm_thread_mutex); starting
  // wakes ksmd at once; new values apply from the next batch.
  void tune(bool run, std::uint64_t pages_to_scan, Duration sleep);
  [[nodiscard]] bool running() const { return cfg_.run; }
  [[nodiscard]] std::uint64_t pages_to_scan() const { return cfg_.pages_to_scan; }
  [[nodiscard]] Duration sleep() const { return cfg_.sleep; }

  // The sysfs counters, derived from the current state.
  struct Counters {
    std::uint64_t pages_shared = 0, pages_sharing = 0, pages_unshared = 0, pages_volatile = 0;
    std::uint64_t rmap_items = 0;
    std::int64_t general_profit = 0;
  };
  [[nodiscard]] Counters counters() const;
  [[nodiscard]] const KsmStats& stats() const { return stats_; }

 private:
  struct RmapItem {
    std::uint32_t oldchecksum = 0;
    std::uint8_t age = 0;
    std::uint8_t remaining_skips = 0;
    std::uint8_t flags = 0;  // kExists | kUnstable
  };
  static constexpr std::uint8_t kExists = 1;
  static constexpr std::uint8_t kUnstable = 2;
  struct VmState {
    VmHandle vm;
    std::vector<RmapItem> items;
  };
  struct StableNode {
    std::vector<std::uint64_t> dups;  // shared frame ids; more than one is a chain
  };

  void cmp_and_merge_page(VmState& s, Gfn gfn, Fingerprint fp, CpuTime& cost);
  bool should_skip(RmapItem& item);
  void remove_from_unstable(RmapItem& item);
  [[nodiscard]] bool is_ksm_page(std::uint64_t shared_id) const;
  [[nodiscard]] CpuTime search_cost(std::size_t tree_size) const;
  VmState* find(VmId vm);
  void end_full_scan();
  // One step of ksmd: a slice of the batch in progress (starting one when none is); returns
  // the delay to its next step.
  Duration ksmd_step();

  KsmConfig cfg_;
  MechanismEnv env_;
  std::vector<std::unique_ptr<VmState>> vms_;
  std::size_t cursor_vm_ = 0;
  std::uint32_t cursor_gfn_ = 0;
  ContentIndex unstable_;
  std::uint64_t unique_in_unstable_ = 0;  // unique-content pages in the tree (not indexed) //
                                          // content -> page, this scan
  std::unordered_map<std::uint64_t, StableNode> stable_;         // content -> KSM pages
  std::unordered_map<std::uint64_t, std::uint64_t> ksm_frames_;  // shared id -> content
  std::uint64_t unshared_ = 0;
  std::uint64_t rmap_items_ = 0;
  CostAccount* ksmd_ = nullptr;
  std::optional<PeriodicDaemon> ksmd_loop_;
  bool ksmd_sleeping_ = true;  // between batches, or stopped
  std::uint64_t batch_budget_ = 0;
  CpuTime batch_spent_{};
  KsmStats stats_;
};

}  // namespace memvirt
