// Where frame contents live. Two stores behind one interface:
//  - FingerprintStore keeps only the fingerprint; a frame's handle is its fingerprint, so the
//    nested page table holds private contents inline (for scale: no per-frame table at all).
//  - BytesStore keeps 4 KiB of real bytes per frame in an mmap arena, generated from the
//    fingerprint; released frames are given back with madvise(MADV_DONTNEED) so the process's
//    RSS follows the accounting. Hashing, comparing and discarding are then real operations.
// A handle is at most 61 bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/spelling.hpp"
#include "host/content.hpp"

namespace memvirt {

// `host.content`: which store a simulation's host uses.
enum class ContentBackend : std::uint8_t { kFingerprint, kBytes };
inline constexpr std::array<Spelling<ContentBackend>, 2> kContentBackendSpellings{
    {{ContentBackend::kFingerprint, "fingerprint"}, {ContentBackend::kBytes, "bytes"}}};

class ContentStore {
 public:
  virtual ~ContentStore() = default;
  // True when handles are the fingerprints themselves (store/release are free).
  [[nodiscard]] virtual bool inline_content() const = 0;
  // Puts `fp` into a new frame. Returns the frame's handle. Throws when the store is full.
  virtual std::uint64_t store(Fingerprint fp) = 0;
  // Replaces a frame's content; returns the (possibly new) handle.
  virtual std::uint64_t overwrite(std::uint64_t handle, Fingerprint fp) = 0;
  [[nodiscard]] virtual Fingerprint load(std::uint64_t handle) const = 0;
  virtual void release(std::uint64_t handle) = 0;
  // The frame's bytes, or an empty span when the store keeps none.
  [[nodiscard]] virtual std::span<const std::byte> bytes(std::uint64_t handle) const = 0;
  // True when the frame's bytes are exactly those its fingerprint stands for.
  [[nodiscard]] virtual bool verify(std::uint64_t handle) const = 0;
};

class FingerprintStore final : public ContentStore {
 public:
  [[nodiscard]] bool inline_content() const override { return true; }
  std::uint64_t store(Fingerprint fp) override { return fp.value(); }
  std::uint64_t overwrite(std::uint64_t, Fingerprint fp) override { return fp.value(); }
  [[nodiscard]] Fingerprint load(std::uint64_t handle) const override {
    return Fingerprint{handle};
  }
  void release(std::uint64_t) override {}
  [[nodiscard]] std::span<const std::byte> bytes(std::uint64_t) const override { return {}; }
  [[nodiscard]] bool verify(std::uint64_t) const override { return true; }
};

class BytesStore final : public ContentStore {
 public:
  // Reserves address space for `capacity_frames` frames; nothing is resident until stored.
  explicit BytesStore(std::uint64_t capacity_frames);
  ~BytesStore() override;
  BytesStore(const BytesStore&) = delete;
  BytesStore& operator=(const BytesStore&) = delete;

  [[nodiscard]] bool inline_content() const override { return false; }
  std::uint64_t store(Fingerprint fp) override;
  std::uint64_t overwrite(std::uint64_t handle, Fingerprint fp) override;
  [[nodiscard]] Fingerprint load(std::uint64_t handle) const override;
  void release(std::uint64_t handle) override;
  [[nodiscard]] std::span<const std::byte> bytes(std::uint64_t handle) const override;
  [[nodiscard]] bool verify(std::uint64_t handle) const override;
  [[nodiscard]] std::uint64_t frames_in_use() const { return in_use_; }

 private:
  std::byte* frame(std::uint64_t handle) const { return arena_ + handle * 4096; }
  std::byte* arena_ = nullptr;
  std::uint64_t capacity_;
  std::uint64_t next_unused_ = 0;
  std::uint64_t in_use_ = 0;
  std::vector<std::uint64_t> free_;
  std::vector<std::uint64_t> fingerprints_;
};

// The store of `backend`; a BytesStore reserves `capacity_frames` frames.
std::unique_ptr<ContentStore> make_content_store(ContentBackend backend,
                                                 std::uint64_t capacity_frames);

}  // namespace memvirt
