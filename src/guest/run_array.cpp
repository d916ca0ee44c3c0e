#include "guest/run_array.hpp"

#include <algorithm>

namespace memvirt {

std::size_t RunChunk::find(std::uint32_t i) const {
  const auto it = std::upper_bound(runs_.begin(), runs_.end(), i,
                                   [](std::uint32_t x, const Run& r) { return x < r.end(); });
  return static_cast<std::size_t>(it - runs_.begin());
}

std::uint32_t RunChunk::get(std::uint32_t i) const {
  if (dense_) return dense_[i];
  const std::size_t pos = find(i);
  if (pos < runs_.size() && runs_[pos].lo <= i) return runs_[pos].at(i);
  return 0;
}

std::uint32_t RunChunk::populated() const {
  if (dense_) return populated_;
  std::uint32_t n = 0;
  for (const Run& r : runs_) n += r.count();
  return n;
}

std::uint64_t RunChunk::memory_bytes() const {
  return sizeof(RunChunk) + runs_.capacity() * sizeof(Run) +
         (dense_ ? kSize * sizeof(std::uint32_t) : 0);
}

void RunChunk::densify() {
  dense_ = std::make_unique<std::uint32_t[]>(kSize);
  populated_ = 0;
  for (const Run& r : runs_) {
    for (std::uint32_t i = r.lo; i < r.end(); ++i) dense_[i] = r.at(i);
    populated_ += r.count();
  }
  runs_.clear();
  runs_.shrink_to_fit();
}

bool RunChunk::try_extend(std::size_t at, std::uint32_t i, std::uint32_t value) {
  // Append to the run before `at`...
  if (at > 0) {
    Run& r = runs_[at - 1];
    if (r.end() == i) {
      const std::uint32_t last = r.at(i - 1);
      if (r.count() == 1 && value + 1 == last) {
        r.len = -2;
        return true;
      }
      if ((r.len > 0 && value == last + 1) || (r.len < 0 && value + 1 == last)) {
        r.len = static_cast<std::int16_t>(r.len > 0 ? r.len + 1 : r.len - 1);
        return true;
      }
    }
  }
  // ...or prepend to the run at `at`.
  if (at < runs_.size()) {
    Run& r = runs_[at];
    if (r.lo == i + 1) {
      if (r.count() == 1 && value + 1 == r.first) {
        r.len = 2;
      } else if (r.count() == 1 && value == r.first + 1) {
        r.len = -2;
      } else if (r.len > 0 && value + 1 == r.first) {
        ++r.len;
      } else if (r.len < 0 && value == r.first + 1) {
        --r.len;
      } else {
        return false;
      }
      r.lo = static_cast<std::uint16_t>(i);
      r.first = value;
      return true;
    }
  }
  return false;
}

void RunChunk::set(std::uint32_t i, std::uint32_t value) {
  if (dense_) {
    populated_ += (value != 0 ? 1 : 0) - (dense_[i] != 0 ? 1 : 0);
    dense_[i] = value;
    return;
  }
  std::size_t pos = find(i);
  if (pos < runs_.size() && runs_[pos].lo <= i) {
    Run& r = runs_[pos];
    if (r.at(i) == value) return;
    // Take i out of its run.
    if (r.count() == 1) {
      runs_.erase(runs_.begin() + static_cast<std::ptrdiff_t>(pos));
    } else if (i == r.lo) {
      r.first = r.at(i + 1);
      r.lo = static_cast<std::uint16_t>(i + 1);
      r.len = static_cast<std::int16_t>(r.len > 0 ? r.len - 1 : r.len + 1);
      if (r.count() == 1) r.len = 1;
    } else if (i + 1 == r.end()) {
      r.len = static_cast<std::int16_t>(r.len > 0 ? r.len - 1 : r.len + 1);
      if (r.count() == 1) r.len = 1;
      ++pos;
    } else {
      Run tail;
      tail.lo = static_cast<std::uint16_t>(i + 1);
      tail.first = r.at(i + 1);
      const auto tail_count = static_cast<std::int16_t>(r.end() - (i + 1));
      tail.len = tail_count == 1 ? std::int16_t{1}
                                 : static_cast<std::int16_t>(r.len > 0 ? tail_count : -tail_count);
      const auto head_count = static_cast<std::int16_t>(i - r.lo);
      r.len = head_count == 1 ? std::int16_t{1}
                              : static_cast<std::int16_t>(r.len > 0 ? head_count : -head_count);
      runs_.insert(runs_.begin() + static_cast<std::ptrdiff_t>(pos + 1), tail);
      ++pos;
    }
  }
  if (value == 0) return;
  if (try_extend(pos, i, value)) return;
  runs_.insert(runs_.begin() + static_cast<std::ptrdiff_t>(pos),
               Run{static_cast<std::uint16_t>(i), 1, value});
  if (runs_.size() > kMaxRuns) densify();
}

void RunArray::set(std::uint64_t i, std::uint32_t value) {
  auto& c = chunks_[i >> RunChunk::kShift];
  if (!c) {
    if (value == 0) return;
    c = std::make_unique<RunChunk>();
  }
  c->set(static_cast<std::uint32_t>(i & (RunChunk::kSize - 1)), value);
  if (value == 0 && c->empty()) c.reset();
}

std::uint64_t RunArray::memory_bytes() const {
  std::uint64_t bytes = chunks_.capacity() * sizeof(std::unique_ptr<RunChunk>);
  for (const auto& c : chunks_) {
    if (c) bytes += c->memory_bytes();
  }
  return bytes;
}

}  // namespace memvirt
