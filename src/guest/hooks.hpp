// Hook points where reclaim mechanisms attach to the guest kernel. They are called at the same
// places as in Linux; a hook charges its own costs to its own account.
#pragma once

#include <cstdint>
#include <optional>

#include "core/types.hpp"
#include "host/content.hpp"

namespace memvirt {

class Zone;

// A file of a guest: filesystem and inode (cleancache's pool and object).
struct FileKey {
  std::uint32_t fs = 0;
  std::uint32_t inode = 0;
  auto operator<=>(const FileKey&) const = default;
};

class PageHooks {
 public:
  virtual ~PageHooks() = default;
  // arch_free_page(): a block leaves use, before it reaches a per-CPU list or the buddy lists.
  virtual void on_free(Gfn /*gfn*/, PageOrder /*order*/) {}
  // arch_alloc_page(): a block enters use, after it left a per-CPU list or the buddy lists.
  virtual void on_alloc(Gfn /*gfn*/, PageOrder /*order*/) {}
  // End of __free_one_page(): a block, after merging, was placed on a buddy free list
  // (where page_reporting_notify_free() is called).
  virtual void on_buddy_free(Zone& /*zone*/, Gfn /*gfn*/, PageOrder /*order*/) {}
  // An OOM notifier (register_oom_notifier): called before the OOM killer picks a victim;
  // returns the pages it freed. Any pages freed spare the victim.
  virtual std::uint64_t on_oom() { return 0; }

  // The page cache and swap (cleancache's and frontswap's attach points).
  // A clean page leaves the page cache (__remove_mapping: cleancache_put_page).
  virtual void on_cache_evict(FileKey /*file*/, std::uint64_t /*page*/, Fingerprint /*content*/) {}
  // A page cache miss before the disk is read (cleancache_get_page): the content, if the
  // hook holds the page; it then no longer does.
  virtual std::optional<Fingerprint> on_cache_miss(FileKey /*file*/, std::uint64_t /*page*/) {
    return std::nullopt;
  }
  // Truncate, unlink or umount drops a page, or a whole file (cleancache_invalidate_page/inode).
  virtual void on_invalidate_page(FileKey /*file*/, std::uint64_t /*page*/) {}
  virtual void on_invalidate_file(FileKey /*file*/) {}
  // The filesystem is unmounted (cleancache_invalidate_fs), after its files' pages went.
  virtual void on_invalidate_fs(std::uint32_t /*fs*/) {}
  // Swap-out of a page to slot `slot` (frontswap_store): true when the hook stored it and
  // the disk write is not needed.
  virtual bool on_swap_out(std::uint32_t /*slot*/, Fingerprint /*content*/) { return false; }
  // Swap-in (frontswap_load): the content, if the hook holds the slot.
  virtual std::optional<Fingerprint> on_swap_in(std::uint32_t /*slot*/) { return std::nullopt; }
  // A swap slot is freed (frontswap_invalidate_page).
  virtual void on_swap_free(std::uint32_t /*slot*/) {}
  // frontswap_test(): whether the hook holds swap slot `slot`.
  [[nodiscard]] virtual bool in_frontswap(std::uint32_t /*slot*/) const { return false; }
};

}  // namespace memvirt
