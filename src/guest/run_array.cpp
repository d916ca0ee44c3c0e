#include "guest/run_array.hpp"

#include <algorithm>

namespace memvirt {

std::size_t RunChunk::find(std::uint32_t i) const {
  // Branch-free lower bound on the runs' ends: the search path does not depend on i, so
  // a lookup costs log2(runs) loads and no mispredicted branches.
  const Run* base = runs_.data();
  std::size_t n = runs_.size();
  while (n > 1) {
    const std::size_t half = n / 2;
    base = base[half - 1].end <= i ? base + half : base;
    n -= half;
  }
  const auto pos = static_cast<std::size_t>(base - runs_.data());
  return n == 1 && base->end <= i ? pos + 1 : pos;
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
    for (std::uint32_t i = r.lo; i < r.end; ++i) dense_[i] = r.at(i);
    populated_ += r.count();
  }
  runs_.clear();
  runs_.shrink_to_fit();
}

bool RunChunk::try_extend(std::size_t at, std::uint32_t i, std::uint32_t value) {
  // Append to the run before `at`...
  if (at > 0) {
    Run& r = runs_[at - 1];
    if (r.end == i) {
      const std::uint32_t last = r.at(i - 1);
      if (r.count() == 1 && value + 1 == last) {
        r.descending = 1;
        ++r.end;
        return true;
      }
      if ((!r.descending && value == last + 1) || (r.descending && value + 1 == last)) {
        ++r.end;
        return true;
      }
    }
  }
  // ...or prepend to the run at `at`.
  if (at < runs_.size()) {
    Run& r = runs_[at];
    if (r.lo == i + 1) {
      const bool continues_ascending = value + 1 == r.first;
      const bool continues_descending = value == r.first + 1;
      if (r.count() == 1 && (continues_ascending || continues_descending)) {
        r.descending = continues_descending ? 1 : 0;
      } else if (r.descending ? !continues_descending : !continues_ascending) {
        return false;
      }
      r.set_lo(i);
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
    // Take i out of its run; what is left of it keeps its direction unless one value remains.
    if (r.count() == 1) {
      runs_.erase(runs_.begin() + static_cast<std::ptrdiff_t>(pos));
    } else if (i == r.lo) {
      r.first = r.at(i + 1);
      r.set_lo(i + 1);
      if (r.count() == 1) r.descending = 0;
    } else if (i + 1 == r.end) {
      r.end = static_cast<std::uint16_t>(i);
      if (r.count() == 1) r.descending = 0;
      ++pos;
    } else {
      Run tail;
      tail.set_lo(i + 1);
      tail.end = r.end;
      tail.first = r.at(i + 1);
      tail.descending = tail.count() == 1 ? 0 : r.descending;
      r.end = static_cast<std::uint16_t>(i);
      if (r.count() == 1) r.descending = 0;
      runs_.insert(runs_.begin() + static_cast<std::ptrdiff_t>(pos + 1), tail);
      ++pos;
    }
  }
  if (value == 0) return;
  if (try_extend(pos, i, value)) return;
  Run single;
  single.set_lo(i);
  single.end = static_cast<std::uint16_t>(i + 1);
  single.first = value;
  runs_.insert(runs_.begin() + static_cast<std::ptrdiff_t>(pos), single);
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
