#include "real/ppr_real.hpp"

#include <sys/mman.h>

#include <bit>
#include <stdexcept>
#include <thread>

namespace memvirt {

RealPprMemory::RealPprMemory(std::uint32_t pages, StepHook between_steps)
    : pages_(pages),
      state_(std::make_unique<std::atomic<std::uint8_t>[]>(pages)),
      marks_(std::make_unique<std::atomic<std::uint64_t>[]>((pages + 63) / 64)),
      between_steps_(std::move(between_steps)) {
  void* p = mmap(nullptr, static_cast<std::size_t>(pages) * 4096, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error("real PPR: cannot map guest memory");
  arena_ = static_cast<std::byte*>(p);
}

RealPprMemory::~RealPprMemory() {
  munmap(arena_, static_cast<std::size_t>(pages_) * 4096);
}

void RealPprMemory::on_free(std::uint32_t page) {
  marks_[page >> 6].fetch_or(1ULL << (page & 63), std::memory_order_seq_cst);
}

void RealPprMemory::on_alloc(std::uint32_t page) {
  marks_[page >> 6].fetch_and(~(1ULL << (page & 63)), std::memory_order_seq_cst);
}

std::byte* RealPprMemory::access(std::uint32_t page) {
  std::atomic<std::uint8_t>& s = state_[page];
  while (true) {
    std::uint8_t cur = s.load(std::memory_order_seq_cst);
    if (cur == kPrivate) break;
    if (cur == kRecycling) {
      std::this_thread::yield();  // the recycler holds the page: a fault that waits
      continue;
    }
    // Unbacked: fault it in. The kernel supplies a zero page on the first touch.
    if (s.compare_exchange_weak(cur, kPrivate, std::memory_order_seq_cst)) {
      backed_.fetch_add(1);
      break;
    }
  }
  return arena_ + static_cast<std::size_t>(page) * 4096;
}

std::uint64_t RealPprMemory::recycle_pass() {
  std::uint64_t discarded = 0;
  const std::uint32_t words = (pages_ + 63) / 64;
  for (std::uint32_t w = 0; w < words; ++w) {
    std::uint64_t word = marks_[w].load(std::memory_order_seq_cst);
    while (word != 0) {
      const std::uint32_t page = w * 64 + static_cast<std::uint32_t>(std::countr_zero(word));
      word &= word - 1;
      std::atomic<std::uint8_t>& s = state_[page];
      std::uint8_t expected = kPrivate;
      // Unmap first: from here on a guest access waits.
      if (!s.compare_exchange_strong(expected, kRecycling, std::memory_order_seq_cst)) continue;
      if (between_steps_) between_steps_(page);
      const std::uint64_t bit = 1ULL << (page & 63);
      const bool still_free = (marks_[w].fetch_and(~bit, std::memory_order_seq_cst) & bit) != 0;
      if (between_steps_) between_steps_(page);
      if (still_free) {
        madvise(arena_ + static_cast<std::size_t>(page) * 4096, 4096, MADV_DONTNEED);
        backed_.fetch_sub(1);
        ++discarded;
        s.store(kUnbacked, std::memory_order_seq_cst);
      } else {
        s.store(kPrivate, std::memory_order_seq_cst);  // allocated meanwhile: restore
      }
    }
  }
  return discarded;
}

}  // namespace memvirt
