// The one path by which guest memory goes back to the host through virtio (balloon inflation,
// free page hinting, free page reporting): the guest driver puts blocks on a virtqueue and
// kicks the host, QEMU discards each block with one madvise call and answers, the driver puts
// the blocks back where it must.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>

#include "core/cost.hpp"
#include "core/spelling.hpp"
#include "guest/kernel.hpp"
#include "host/host_memory.hpp"

namespace memvirt {

struct MechanismEnv;
struct VmHandle;

enum class DiscardMode : std::uint8_t {
  kDontNeed,  // MADV_DONTNEED: the frame goes now; the next guest touch faults in a zeroed page
  kFree,      // MADV_FREE: the frame stays until the host needs memory
};

inline constexpr std::array<Spelling<DiscardMode>, 2> kDiscardModeSpellings{
    {{DiscardMode::kDontNeed, "dontneed"}, {DiscardMode::kFree, "free"}}};

// 2^order guest pages from gfn, one element of a request.
struct GuestBlock {
  Gfn gfn;
  unsigned order = 0;
  [[nodiscard]] std::uint32_t pages() const { return 1U << order; }
};

// CPU time of one request on each side.
struct RequestCost {
  CpuTime guest;
  CpuTime host;
  // The driver waits for the host's answer.
  [[nodiscard]] Duration round_trip() const { return (guest + host).duration(); }
};

// QEMU's side of one virtio device kind: its CPU account ("qemu_discard", shared by the
// devices that discard, one thread per attached VM).
//
// Contract: start() before any request; attach() once per VM the device serves. request()
// and notify() charge the guest's share to vm.vcpu and the host's to the account, and return
// both.
class VirtioHost {
 public:
  void start(const MechanismEnv& env);
  void attach();
  // One request carrying `blocks`, which the host discards in `mode`. `guest_work` is the
  // driver's own work for the request (walking struct pages), charged with the kick.
  RequestCost request(const VmHandle& vm, std::span<const GuestBlock> blocks, DiscardMode mode,
                      CpuTime guest_work);
  // A request that carries no memory to discard (deflate, a stats buffer).
  RequestCost notify(const VmHandle& vm, CpuTime guest_work);

 private:
  HostMemory* host_ = nullptr;
  const CostProfile* costs_ = nullptr;
  CostAccount* account_ = nullptr;
};

// Returns isolated blocks to their zones' free lists (as __putback_isolated_page: no free
// page notification); `after_each` sees each block right after it went back.
void put_back_isolated(GuestKernel& kernel, std::span<const GuestBlock> blocks,
                       const std::function<void(const GuestBlock&)>& after_each = {});

}  // namespace memvirt
