// Pieces the real phases of `memvirt bench dedup` share: an anonymous mapping filled with a
// content mix, and the writer thread that rewrites pages while the engines scan.
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <thread>
#include <vector>

#include "core/types.hpp"

namespace memvirt {

using BenchClock = std::chrono::steady_clock;

inline double seconds_since(BenchClock::time_point t0) {
  return std::chrono::duration<double>(BenchClock::now() - t0).count();
}

// Private anonymous memory of `pages` pages, unmapped when destroyed.
class AnonRegion {
 public:
  explicit AnonRegion(std::uint64_t pages) : bytes_(pages * kPageSize) {
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("bench dedup: cannot map memory");
    base_ = static_cast<std::byte*>(p);
  }
  ~AnonRegion() { munmap(base_, bytes_); }
  AnonRegion(const AnonRegion&) = delete;
  AnonRegion& operator=(const AnonRegion&) = delete;
  [[nodiscard]] std::span<std::byte, kPageSize> page(std::uint64_t i) const {
    return std::span<std::byte, kPageSize>(base_ + i * kPageSize, kPageSize);
  }
  [[nodiscard]] std::byte* data() const { return base_; }
  [[nodiscard]] std::size_t bytes() const { return bytes_; }

 private:
  std::size_t bytes_;
  std::byte* base_ = nullptr;
};

// Rewrites every page of `pages` once per `period` (generation 1, 2, ...) on its own thread
// until destroyed. A zero period or no pages: no thread.
class Rewriter {
 public:
  using Fn = std::function<void(std::uint32_t page, std::uint64_t generation)>;
  Rewriter(std::vector<std::uint32_t> pages, Duration period, Fn fn)
      : pages_(std::move(pages)), period_(period), fn_(std::move(fn)) {
    if (pages_.empty() || period_.ns() <= 0) return;
    thread_ = std::jthread([this](const std::stop_token& stop) { loop(stop); });
  }
  ~Rewriter() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
  }
  Rewriter(const Rewriter&) = delete;
  Rewriter& operator=(const Rewriter&) = delete;
  [[nodiscard]] std::uint64_t generations() const { return generations_.load(); }

 private:
  void loop(const std::stop_token& stop) {
    const auto period = std::chrono::nanoseconds(period_.ns());
    auto next = BenchClock::now() + period;
    std::mutex m;
    std::condition_variable_any cv;
    for (std::uint64_t gen = 1;; ++gen) {
      {
        std::unique_lock lock(m);
        cv.wait_until(lock, stop, next, [] { return false; });
      }
      if (stop.stop_requested()) return;
      for (const std::uint32_t page : pages_) fn_(page, gen);
      generations_.store(gen);
      next += period;
      // A writer that cannot keep up starts its next round at once, never in a burst.
      if (next < BenchClock::now()) next = BenchClock::now();
    }
  }
  std::vector<std::uint32_t> pages_;
  Duration period_;
  Fn fn_;
  std::atomic<std::uint64_t> generations_{0};
  std::jthread thread_;
};

}  // namespace memvirt
