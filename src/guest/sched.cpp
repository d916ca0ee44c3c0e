// The guest's processes on its vCPUs: each piece of CPU work is one task of the VM's group on
// the host's scheduler (host/cpu_scheduler.hpp), which shares the vCPUs among the guest's
// runnable processes and the host's CPUs among the VMs.
#include <fmt/format.h>

#include <stdexcept>

#include "guest/kernel.hpp"

namespace memvirt {

void GuestKernel::attach_cpus(EventQueue& queue, CpuScheduler& cpus, GroupId group) {
  queue_ = &queue;
  cpus_ = &cpus;
  cpu_group_ = group;
}

void GuestKernel::run(std::uint32_t pid, CpuTime work, std::function<void()> then) {
  if (queue_ == nullptr) throw std::logic_error("GuestKernel::run without a clock");
  Process& p = proc(pid);
  if (p.running) {
    throw std::logic_error(fmt::format("process {} ({}) is already running", pid, p.name));
  }
  if (halted_) return;
  p.running = true;
  p.then = std::move(then);
  const std::uint64_t token = ++p.run_token;
  if (cpus_ != nullptr) {
    p.task =
        cpus_->run(cpu_group_, work, [this, pid, token](TimePoint) { finish_running(pid, token); });
  } else {
    queue_->after(work.duration(), EventQueue::kWorkload,
                  [this, pid, token](TimePoint) { finish_running(pid, token); });
  }
}

void GuestKernel::finish_running(std::uint32_t pid, std::uint64_t token) {
  if (halted_ || pid >= processes_.size()) return;
  Process& p = processes_[pid];
  if (!p.running || p.run_token != token) return;
  p.running = false;
  p.task.reset();
  std::function<void()> then = std::move(p.then);
  p.then = nullptr;
  if (then) then();
}

void GuestKernel::stop_running(Process& p) {
  if (!p.running) return;
  if (p.task && cpus_ != nullptr) cpus_->cancel(*p.task);
  p.task.reset();
  ++p.run_token;  // a completion already queued finds a newer token and does nothing
  p.running = false;
  if (halted_ || !p.then) {
    p.then = nullptr;
    return;
  }
  // The program learns of its death when it next runs: now.
  queue_->after(Duration{0}, EventQueue::kWorkload, [this, then = std::move(p.then)](TimePoint) {
    if (!halted_) then();
  });
  p.then = nullptr;
}

void GuestKernel::halt() {
  halted_ = true;
  for (auto& p : processes_) stop_running(p);
}

}  // namespace memvirt
