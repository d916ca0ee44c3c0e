#include "host/disk.hpp"

#include <stdexcept>

namespace memvirt {

DiskConfig HostDisk::config_from(Params& p) {
  DiskConfig c;
  c.seek = p.duration("seek", c.seek,
                      "positioning time of a non-sequential request: average seek + half a "
                      "rotation (Seagate Barracuda 7200 rpm data sheets: 8.5 ms + 4.17 ms)");
  if (c.seek.ns() < 0) p.fail("seek", "must not be negative");
  c.bandwidth = p.bytes("bandwidth", c.bandwidth,
                        "sustained transfer rate, bytes per second written as a size (100MB: "
                        "100 MB/s; Seagate Barracuda 7200.11 data sheet: up to 105 MB/s)");
  if (c.bandwidth.value() == 0) p.fail("bandwidth", "must be positive");
  c.sequential_no_seek =
      p.boolean("sequential_no_seek", c.sequential_no_seek,
                "a request starting at the sector after the previous request's last pays no seek");
  return c;
}

HostDisk::HostDisk(EventQueue& queue, DiskConfig cfg) : queue_(queue), cfg_(cfg) {
  if (cfg_.bandwidth.value() == 0) throw std::invalid_argument("disk bandwidth must be positive");
  if (cfg_.seek.ns() < 0) throw std::invalid_argument("disk seek must not be negative");
}

bool HostDisk::sequential(const DiskRequest& r) const {
  return cfg_.sequential_no_seek && head_ && *head_ == r.sector;
}

Duration HostDisk::service_time(const DiskRequest& r) const {
  // ceil(bytes * 1e9 / bandwidth) in 128 bits: 2^32 sectors of 512 bytes times 1e9 does not
  // fit in 64.
  __extension__ using Wide = unsigned __int128;
  const Wide scaled = static_cast<Wide>(r.sectors) * kSectorSize * 1'000'000'000U;
  const Wide bw = cfg_.bandwidth.value();
  const auto transfer = static_cast<std::int64_t>((scaled + bw - 1) / bw);
  return Duration{transfer} + (sequential(r) ? Duration{0} : cfg_.seek);
}

std::uint64_t HostDisk::submit(DiskRequest r) {
  if (r.sectors == 0) throw std::invalid_argument("disk request of 0 sectors");
  const std::uint64_t id = next_id_++;
  waiting_.push_back(Pending{id, std::move(r), queue_.now()});
  if (!active_) start_next();
  return id;
}

void HostDisk::start_next() {
  if (waiting_.empty()) return;
  Pending p = std::move(waiting_.front());
  waiting_.pop_front();
  const bool seeked = !sequential(p.request);
  const Duration service = service_time(p.request);
  stats_.queue_wait += queue_.now() - p.submitted;
  head_ = p.request.sector + p.request.sectors;
  const std::uint64_t id = p.id;
  active_ = Active{id, std::move(p.request), service, seeked};
  queue_.after(service, EventQueue::kHost, [this, id](TimePoint) { complete(id); });
}

void HostDisk::complete(std::uint64_t id) {
  if (!active_ || active_->id != id) return;
  Active a = std::move(*active_);
  active_.reset();
  stats_.requests.add();
  stats_.busy += a.service;
  if (a.seeked) stats_.seeks.add();
  DiskVmStats& vm = vm_stats(a.request.vm);
  if (a.request.write) {
    stats_.sectors_written.add(a.request.sectors);
    vm.sectors_written.add(a.request.sectors);
  } else {
    stats_.sectors_read.add(a.request.sectors);
    vm.sectors_read.add(a.request.sectors);
  }
  start_next();
  if (a.request.done) a.request.done(queue_.now());
}

DiskVmStats& HostDisk::vm_stats(VmId vm) {
  if (vm.value() >= per_vm_.size()) per_vm_.resize(vm.value() + 1);
  return per_vm_[vm.value()];
}

std::uint64_t HostDisk::sectors_read(VmId vm) const {
  return vm.value() < per_vm_.size() ? per_vm_[vm.value()].sectors_read.value() : 0;
}

std::uint64_t HostDisk::sectors_written(VmId vm) const {
  return vm.value() < per_vm_.size() ? per_vm_[vm.value()].sectors_written.value() : 0;
}

void HostDisk::visit_vm(VmId vm, StatsVisitor& v) const {
  if (vm.value() < per_vm_.size()) {
    per_vm_[vm.value()].visit(v);
  } else {
    DiskVmStats{}.visit(v);
  }
}

}  // namespace memvirt
