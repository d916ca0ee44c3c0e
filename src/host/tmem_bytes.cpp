#include "host/tmem_bytes.hpp"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace memvirt {
namespace {

bool all_zero(std::span<const std::byte> page) {
  // Word at a time; pages are word aligned in practice, memcpy keeps it defined when not.
  for (std::size_t off = 0; off < page.size(); off += sizeof(std::uint64_t)) {
    std::uint64_t w;
    std::memcpy(&w, page.data() + off, sizeof w);
    if (w != 0) return false;
  }
  return true;
}

int memcmp_order(std::uint32_t size_a, const std::byte* a, std::uint32_t size_b,
                 const std::byte* b) {
  if (size_a != size_b) return size_a < size_b ? -1 : 1;
  const int c = std::memcmp(a, b, size_a);
  return (c > 0) - (c < 0);
}

}  // namespace

BytesTmemBackend::BytesTmemBackend(Compressor compressor)
    : compressor_(make_page_compressor(compressor)),
      scratch_(compressor_->max_compressed_bytes()),
      verify_page_(kCompressPageBytes) {}

BytesTmemBackend::~BytesTmemBackend() = default;

TmemData BytesTmemBackend::prepare(const TmemPage& page, bool compress) {
  if (page.bytes.size() != kCompressPageBytes) {
    throw std::invalid_argument("BytesTmemBackend::prepare: page of " +
                                std::to_string(page.bytes.size()) + " bytes, not 4096");
  }
  TmemData d;
  d.content = page.content;
  d.zero = all_zero(page.bytes);
  std::span<const std::byte> stored = page.bytes;
  if (compress) {
    const std::size_t n = compressor_->compress(page.bytes, scratch_);
    if (n < kCompressPageBytes) {
      stored = std::span<const std::byte>(scratch_).first(n);
      d.compressed = true;
    }
  }
  d.size = static_cast<std::uint32_t>(stored.size());
  d.first_byte = std::to_integer<std::uint8_t>(stored[0]);
  // The checksum rides behind the stored form until keep() (TmemData has no field for it).
  const std::uint64_t checksum = XXH64(page.bytes.data(), page.bytes.size(), 0);
  d.bytes.resize(stored.size() + kChecksumTrailerBytes);
  std::memcpy(d.bytes.data(), stored.data(), stored.size());
  std::memcpy(d.bytes.data() + stored.size(), &checksum, sizeof checksum);
  return d;
}

std::uint64_t BytesTmemBackend::keep(TmemData&& data) {
  if (data.size == 0 || data.size > kCompressPageBytes ||
      data.bytes.size() != data.size + kChecksumTrailerBytes ||
      (!data.compressed && data.size != kCompressPageBytes)) {
    throw std::invalid_argument("BytesTmemBackend::keep: data not made by prepare()");
  }
  Entry e;
  e.content = data.content;
  e.size = data.size;
  e.compressed = data.compressed;
  e.zero_raw = data.zero && !data.compressed;
  std::memcpy(&e.checksum, data.bytes.data() + data.size, sizeof e.checksum);
  e.in_use = true;
  if (!e.zero_raw) {
    const std::size_t cls = (data.size + kSlotGranule - 1) / kSlotGranule - 1;
    const std::size_t slot_bytes = (cls + 1) * kSlotGranule;
    SizeClass& sc = classes_[cls];
    if (sc.free_slots.empty()) {
      const auto slots = static_cast<std::uint32_t>(kChunkBytes / slot_bytes);
      const auto chunk = static_cast<std::uint32_t>(sc.chunks.size());
      sc.chunks.push_back(std::make_unique<std::byte[]>(kChunkBytes));
      chunk_bytes_ += kChunkBytes;
      // Pushed in reverse so that slots fill in address order.
      for (std::uint32_t s = slots; s-- > 0;) sc.free_slots.push_back(chunk << 16 | s);
    }
    const std::uint32_t where = sc.free_slots.back();
    sc.free_slots.pop_back();
    e.size_class = static_cast<std::uint8_t>(cls);
    e.chunk = where >> 16;
    e.slot = static_cast<std::uint16_t>(where & 0xffff);
    std::memcpy(sc.chunks[e.chunk].get() + e.slot * slot_bytes, data.bytes.data(), data.size);
    slot_bytes_ += slot_bytes;
  }
  stored_bytes_ += e.size;
  ++pages_;
  std::uint64_t handle;
  if (free_handles_.empty()) {
    handle = entries_.size();
    entries_.push_back(e);
  } else {
    handle = free_handles_.back();
    free_handles_.pop_back();
    entries_[handle] = e;
  }
  return handle;
}

const BytesTmemBackend::Entry& BytesTmemBackend::entry(std::uint64_t handle) const {
  if (handle >= entries_.size() || !entries_[handle].in_use) {
    throw std::out_of_range("BytesTmemBackend: no page kept under handle " +
                            std::to_string(handle));
  }
  return entries_[handle];
}

std::span<const std::byte> BytesTmemBackend::stored(const Entry& e) const {
  if (e.zero_raw) return zero_page_;
  const std::size_t slot_bytes = (e.size_class + 1U) * kSlotGranule;
  return {classes_[e.size_class].chunks[e.chunk].get() + e.slot * slot_bytes, e.size};
}

bool BytesTmemBackend::decode(const Entry& e, std::span<std::byte> out) const {
  const std::span<const std::byte> s = stored(e);
  if (e.compressed) return compressor_->decompress(s, out);
  std::memcpy(out.data(), s.data(), kCompressPageBytes);
  return true;
}

Fingerprint BytesTmemBackend::load(std::uint64_t handle, std::span<std::byte> out) {
  const Entry& e = entry(handle);
  if (out.empty()) return e.content;
  if (out.size() != kCompressPageBytes) {
    throw std::invalid_argument("BytesTmemBackend::load: output of " + std::to_string(out.size()) +
                                " bytes, not 4096");
  }
  if (!decode(e, out)) {
    throw std::runtime_error("BytesTmemBackend::load: page " + std::to_string(handle) +
                             " no longer decompresses (corrupt)");
  }
  return e.content;
}

int BytesTmemBackend::compare(const TmemData& a, std::uint64_t b) const {
  if (a.bytes.size() < a.size) {
    throw std::invalid_argument("BytesTmemBackend::compare: data not made by prepare()");
  }
  const std::span<const std::byte> sb = stored(entry(b));
  return memcmp_order(a.size, a.bytes.data(), static_cast<std::uint32_t>(sb.size()), sb.data());
}

int BytesTmemBackend::compare(std::uint64_t a, std::uint64_t b) const {
  const std::span<const std::byte> sa = stored(entry(a));
  const std::span<const std::byte> sb = stored(entry(b));
  return memcmp_order(static_cast<std::uint32_t>(sa.size()), sa.data(),
                      static_cast<std::uint32_t>(sb.size()), sb.data());
}

void BytesTmemBackend::release(std::uint64_t handle) {
  Entry& e = const_cast<Entry&>(entry(handle));
  if (!e.zero_raw) {
    classes_[e.size_class].free_slots.push_back(e.chunk << 16 | e.slot);
    slot_bytes_ -= (e.size_class + 1U) * kSlotGranule;
  }
  stored_bytes_ -= e.size;
  --pages_;
  e.in_use = false;
  free_handles_.push_back(handle);
}

bool BytesTmemBackend::verify(std::uint64_t handle) const {
  if (handle >= entries_.size() || !entries_[handle].in_use) return false;
  const Entry& e = entries_[handle];
  if (!decode(e, verify_page_)) return false;
  return XXH64(verify_page_.data(), verify_page_.size(), 0) == e.checksum;
}

BytesTmemBackend::MemoryUse BytesTmemBackend::memory() const {
  MemoryUse m;
  m.pages = pages_;
  m.stored_bytes = stored_bytes_;
  m.slot_bytes = slot_bytes_;
  m.chunk_bytes = chunk_bytes_;
  m.metadata_bytes =
      entries_.capacity() * sizeof(Entry) + free_handles_.capacity() * sizeof(std::uint64_t);
  for (const SizeClass& sc : classes_) {
    m.metadata_bytes +=
        sc.chunks.capacity() * sizeof(void*) + sc.free_slots.capacity() * sizeof(std::uint32_t);
  }
  return m;
}

std::span<std::byte> BytesTmemBackend::stored_form_for_testing(std::uint64_t handle) {
  const Entry& e = entry(handle);
  if (e.zero_raw) return {};
  const std::size_t slot_bytes = (e.size_class + 1U) * kSlotGranule;
  return {classes_[e.size_class].chunks[e.chunk].get() + e.slot * slot_bytes, e.size};
}

}  // namespace memvirt
