// Touches a region in chunks, one event per chunk, so that virtual time advances by the cost
// of each chunk and other VMs interleave.
#pragma once

#include <functional>

#include "workload/workload.hpp"

namespace memvirt {

class ChunkedToucher {
 public:
  using Done = std::function<void(TouchStatus)>;
  static void run(const WorkloadEnv& env, std::uint32_t pid, std::uint64_t region,
                  std::uint64_t pages, std::uint64_t chunk, UniqueContent* content,
                  WorkloadStats* stats, const Done& done) {
    env.queue->after(Duration{0}, EventQueue::kWorkload,
                     [env, pid, region, pages, chunk, content, stats, done](TimePoint) {
                       step(env, pid, region, pages, chunk, content, stats, done);
                     });
  }

 private:
  static void step(const WorkloadEnv& env, std::uint32_t pid, std::uint64_t region,
                   std::uint64_t remaining, std::uint64_t chunk, UniqueContent* content,
                   WorkloadStats* stats, const Done& done) {
    if (!*env.vm_alive) return;
    const Process* p = env.kernel->process(pid);
    if (p == nullptr || !p->alive) {
      done(TouchStatus::kKilled);  // the OOM killer chose it while another process ran
      return;
    }
    const std::uint64_t n = std::min(remaining, chunk);
    const TouchResult r =
        env.kernel->touch(pid, region, n, [content](std::uint64_t) { return content->next(); });
    stats->pages_touched.add(r.pages);
    // The chunk's faults run on the guest's vCPUs, the host's share of each in the vCPU
    // thread too; the next chunk (or the caller) goes on when they are done.
    const CpuTime work = r.guest + r.host;
    if (r.status == TouchStatus::kBlocked) {
      // The fault's allocation waits for I/O (pages reclaim is writing to swap): the process
      // sleeps until it completes, then faults again where it stopped.
      env.kernel->run(pid, work,
                      [env, pid, region, rest = remaining - r.pages, chunk, content, stats, done,
                       wait = r.wait] {
                        env.kernel->when_done(wait, [=] {
                          step(env, pid, region, rest, chunk, content, stats, done);
                        });
                      });
      return;
    }
    if (r.status != TouchStatus::kDone || r.pages < n || remaining == n) {
      const Process* after = env.kernel->process(pid);
      if (after == nullptr || !after->alive) {
        env.queue->after(Duration{0}, EventQueue::kWorkload,
                         [done, st = r.status](TimePoint) { done(st); });
        return;
      }
      env.kernel->run(pid, work, [done, st = r.status] { done(st); });
      return;
    }
    env.kernel->run(pid, work,
                    [env, pid, region, rest = remaining - n, chunk, content, stats, done] {
                      step(env, pid, region, rest, chunk, content, stats, done);
                    });
  }
};

}  // namespace memvirt
