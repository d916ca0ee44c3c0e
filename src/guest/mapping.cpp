#include "guest/mapping.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace memvirt {

SlotSpace::SlotSpace(std::uint32_t guest_pages) : chunk_owner_(1), owners_(guest_pages) {}

MappingId SlotSpace::create(MappingKind kind, std::uint32_t owner) {
  std::uint32_t id = 0;
  if (!free_mappings_.empty()) {
    id = free_mappings_.back();
    free_mappings_.pop_back();
  } else {
    id = static_cast<std::uint32_t>(mappings_.size());
    mappings_.emplace_back();
  }
  Mapping& m = mappings_[id];
  m.kind = kind;
  m.owner = owner;
  m.live = true;
  m.chunks.clear();
  return MappingId{id};
}

std::uint32_t SlotSpace::chunk_for(MappingId id, std::uint64_t page) {
  Mapping& m = mappings_[id.value()];
  const std::uint64_t block = page >> RunChunk::kShift;
  if (block >= m.chunks.size()) m.chunks.resize(block + 1, 0);
  std::uint32_t& c = m.chunks[block];
  if (c != 0) return c;
  if (!free_chunks_.empty()) {
    c = free_chunks_.back();
    free_chunks_.pop_back();
  } else {
    if (chunk_owner_.size() >= (1ULL << (32 - RunChunk::kShift))) {
      throw std::length_error("guest mappings exceed 2^32 page slots");
    }
    c = static_cast<std::uint32_t>(chunk_owner_.size());
    chunk_owner_.emplace_back();
    entries_.resize(chunk_owner_.size() << RunChunk::kShift);
  }
  chunk_owner_[c] = ChunkOwner{id.value(), static_cast<std::uint32_t>(block)};
  return c;
}

std::optional<SlotId> SlotSpace::find_slot(MappingId id, std::uint64_t page) const {
  const Mapping& m = mappings_[id.value()];
  const std::uint64_t block = page >> RunChunk::kShift;
  if (block >= m.chunks.size() || m.chunks[block] == 0) return std::nullopt;
  return SlotId{(m.chunks[block] << RunChunk::kShift) |
                static_cast<std::uint32_t>(page & (RunChunk::kSize - 1))};
}

SlotEntry SlotSpace::entry(MappingId m, std::uint64_t page) const {
  const std::optional<SlotId> s = find_slot(m, page);
  return s ? SlotEntry{entries_.get(s->value())} : SlotEntry{};
}

void SlotSpace::set(MappingId m, std::uint64_t page, SlotEntry e) {
  std::optional<SlotId> s = find_slot(m, page);
  if (!s) {
    if (e.kind() == SlotKind::kNone) return;
    s = SlotId{(chunk_for(m, page) << RunChunk::kShift) |
               static_cast<std::uint32_t>(page & (RunChunk::kSize - 1))};
  }
  const SlotEntry old{entries_.get(s->value())};
  if (old.kind() == SlotKind::kFrame) owners_.set(old.gfn().value(), 0);
  if (e.kind() == SlotKind::kFrame) {
    if (owners_.get(e.gfn().value()) != 0) {
      throw std::logic_error(fmt::format("gfn {} is owned twice", e.gfn().value()));
    }
    owners_.set(e.gfn().value(), s->value());
  }
  entries_.set(s->value(), e.raw());
}

std::optional<MappingOwner> SlotSpace::owner(Gfn g) const {
  const std::uint32_t s = owners_.get(g.value());
  if (s == 0) return std::nullopt;
  const ChunkOwner& c = chunk_owner_[s >> RunChunk::kShift];
  return MappingOwner{
      MappingId{c.mapping},
      (static_cast<std::uint64_t>(c.block) << RunChunk::kShift) | (s & (RunChunk::kSize - 1))};
}

void SlotSpace::release(MappingId id) {
  Mapping& m = mappings_[id.value()];
  for (const std::uint32_t c : m.chunks) {
    if (c == 0) continue;
    entries_.for_each_in_chunk(c, [&](std::uint64_t /*slot*/, std::uint32_t raw) {
      const SlotEntry e{raw};
      if (e.kind() == SlotKind::kFrame) owners_.set(e.gfn().value(), 0);
    });
    entries_.clear_chunk(c);
    free_chunks_.push_back(c);
  }
  m.chunks.clear();
  m.chunks.shrink_to_fit();
  m.live = false;
  free_mappings_.push_back(id.value());
}

std::uint64_t SlotSpace::memory_bytes() const {
  std::uint64_t bytes = entries_.memory_bytes() + owners_.memory_bytes() +
                        chunk_owner_.capacity() * sizeof(ChunkOwner) +
                        free_chunks_.capacity() * sizeof(std::uint32_t);
  for (const Mapping& m : mappings_) bytes += sizeof(Mapping) + m.chunks.capacity() * 4;
  return bytes;
}

}  // namespace memvirt
