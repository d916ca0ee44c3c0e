// The seed's Xen host: memory partitioned between dom0 and paravirtual domains, each with its
// balloon driver, and the hypervisor's free heap, which transcendent memory uses.
//
// A PV domain owns every page of its reservation from the moment it is built: host memory
// used is dom0's fixed memory, plus each domain's reservation (tot_pages), plus tmem's pages;
// the rest is fallow. A guest sees `max_memory` of RAM (maxmem); the pages above its
// reservation start in its balloon, as the PV balloon driver's initial balloon holds them.
//
// The balloon driver (drivers/xen/balloon.c): the guest sets target_pages (the
// self-balloon driver, or xenstore's memory/target); balloon_process moves the reservation
// towards it in batches of up to 512 pages (a page of frame numbers per hypercall):
// decrease_reservation gives pages the guest could allocate without reclaim back to Xen,
// increase_reservation takes pages from Xen's heap (tmem gives ephemeral pages back first,
// as alloc_heap_pages does) up to maxmem. A batch that gets nothing retries after one second.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/event_queue.hpp"
#include "host/tmem.hpp"
#include "reclaim/mechanism.hpp"

namespace memvirt {

struct XenStats {
  Counter pages_decreased, pages_increased;  // by the balloon drivers
  Counter increase_shortfalls;               // batches that got fewer pages than asked
  Counter domain_build_failures;
  void visit(StatsVisitor& v) const;
};

class XenHost {
 public:
  static constexpr std::uint64_t kBalloonBatch = 512;  // frame_list: PAGE_SIZE / sizeof(long)
  static constexpr Duration kRetryDelay = Duration::seconds(1);  // balloon_timer: jiffies + HZ

  XenHost(EventQueue& queue, HostMemory& host, const CostProfile& costs,
          std::uint64_t capacity_pages, std::uint64_t dom0_pages);
  ~XenHost();
  XenHost(const XenHost&) = delete;
  XenHost& operator=(const XenHost&) = delete;

  // Builds the domain of `vm` with `pages` populated (xend freezes tmem and flushes it for
  // the shortfall first). False when the heap cannot hold it even then.
  bool create_domain(const VmHandle& vm, std::uint64_t pages);
  void destroy_domain(VmId vm);

  // The balloon driver's target (target_pages): the reservation it moves towards, at most
  // maxmem less the domain's persistent tmem pages.
  void set_target(VmId vm, std::uint64_t pages);
  [[nodiscard]] std::uint64_t target(VmId vm) const;
  [[nodiscard]] std::uint64_t domain_pages(VmId vm) const;  // tot_pages: the reservation
  [[nodiscard]] std::uint64_t max_pages(VmId vm) const;     // maxmem
  [[nodiscard]] std::uint64_t boot_pages(VmId vm) const;    // the reservation it was built with

  // Hypervisor memory: free heap (what tmem may use) and used (dom0, domains, tmem).
  [[nodiscard]] std::uint64_t free_pages() const;
  [[nodiscard]] std::uint64_t used_pages() const;
  [[nodiscard]] std::uint64_t capacity_pages() const { return capacity_; }

  // Turns on tmem in the hypervisor (`tmem` on Xen's command line); its pools live here.
  Tmem& enable_tmem(TmemConfig cfg, std::unique_ptr<TmemBackend> backend);
  [[nodiscard]] Tmem* tmem() { return tmem_.get(); }
  [[nodiscard]] const Tmem* tmem() const { return tmem_.get(); }

  [[nodiscard]] const XenStats& stats() const { return stats_; }
  void visit_stats(StatsVisitor& v) const;
  // Reservations agree with the balloons; used memory never exceeds the host's; tmem's
  // structures are walked when `full`, else its counts are checked.
  void check(bool full = true) const;

 private:
  struct Domain;
  Domain* find(VmId vm);
  [[nodiscard]] const Domain* find(VmId vm) const;
  void kick(Domain& d);
  void balloon_process(VmId vm);
  // Pages Xen can hand out now for `pages` wanted, tmem giving back ephemeral pages first.
  std::uint64_t take_from_heap(std::uint64_t pages);

  EventQueue& queue_;
  HostMemory& host_;
  const CostProfile& costs_;
  std::uint64_t capacity_;
  std::uint64_t dom0_;
  std::uint64_t domains_pages_ = 0;  // sum of reservations
  std::vector<std::unique_ptr<Domain>> domains_;
  std::unique_ptr<TmemBackend> tmem_backend_;
  std::unique_ptr<Tmem> tmem_;
  XenStats stats_;
};

}  // namespace memvirt
