// A double-ended queue of small values in one power-of-two ring buffer. The LRU lists rotate
// pages from one end to the other millions of times a second; a ring keeps that to an index
// update, where std::deque allocates and frees a block every 128 entries that pass through.
//
// Contract: the same as std::deque's push_back, push_front, pop_front, front and size;
// at(i) is the i-th entry from the front; retain_if keeps the entries a predicate accepts,
// in order.
#pragma once

#include <bit>
#include <cstddef>
#include <memory>
#include <utility>

namespace memvirt {

template <typename T>
class RingQueue {
 public:
  [[nodiscard]] bool empty() const { return size_ == 0; }
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] std::size_t capacity() const { return mask_ + (buf_ ? 1 : 0); }
  [[nodiscard]] const T& front() const { return buf_[head_]; }
  [[nodiscard]] const T& at(std::size_t i) const { return buf_[(head_ + i) & mask_]; }

  void push_back(T v) {
    if (size_ == capacity()) grow();
    buf_[(head_ + size_) & mask_] = v;
    ++size_;
  }
  void push_front(T v) {
    if (size_ == capacity()) grow();
    head_ = (head_ - 1) & mask_;
    buf_[head_] = v;
    ++size_;
  }
  void pop_front() {
    head_ = (head_ + 1) & mask_;
    --size_;
  }
  void clear() {
    head_ = 0;
    size_ = 0;
  }
  // Keeps the entries `keep` accepts, in their order, in place.
  template <typename Pred>
  void retain_if(Pred keep) {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < size_; ++i) {
      const T v = at(i);
      if (keep(v)) buf_[(head_ + kept++) & mask_] = v;
    }
    size_ = kept;
  }

 private:
  void grow() {
    const std::size_t cap = capacity() == 0 ? 1024 : capacity() * 2;
    auto bigger = std::make_unique_for_overwrite<T[]>(cap);
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = at(i);
    buf_ = std::move(bigger);
    head_ = 0;
    mask_ = cap - 1;
  }

  std::unique_ptr<T[]> buf_;
  std::size_t mask_ = 0;  // capacity - 1 once allocated
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace memvirt
