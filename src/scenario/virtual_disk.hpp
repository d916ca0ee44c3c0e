// A VM's virtual disk: its sectors at an offset of the host's physical disk, each request
// passing through the host's I/O backend (QEMU's virtio-blk or dom0's blkback), whose CPU
// time is charged to the backend's account.
#pragma once

#include "core/cost.hpp"
#include "guest/block.hpp"
#include "host/disk.hpp"

namespace memvirt {

class VirtualDisk final : public BlockDevice {
 public:
  VirtualDisk(HostDisk& disk, VmId vm, std::uint64_t first_sector, const CostProfile& costs,
              CostAccount& backend)
      : disk_(disk), vm_(vm), first_sector_(first_sector), costs_(costs), backend_(backend) {}
  void submit(BlockRequest r) override {
    // One virtqueue request per block request: the kick, the backend's handling and the
    // completion interrupt.
    backend_.charge(costs_.cost(Op::kVirtqueueRequest));
    disk_.submit(DiskRequest{vm_, r.write, first_sector_ + r.sector, r.sectors, std::move(r.done)});
  }

 private:
  HostDisk& disk_;
  VmId vm_;
  std::uint64_t first_sector_;
  const CostProfile& costs_;
  CostAccount& backend_;
};

}  // namespace memvirt
