#include "host/content_store.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace memvirt {

BytesStore::BytesStore(std::uint64_t capacity_frames) : capacity_(capacity_frames) {
  const std::size_t len = capacity_ * 4096;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) {
    throw std::runtime_error("bytes store: cannot reserve " + std::to_string(len) +
                             " bytes: " + std::strerror(errno));
  }
  arena_ = static_cast<std::byte*>(p);
  fingerprints_.resize(capacity_);
}

BytesStore::~BytesStore() {
  if (arena_ != nullptr) munmap(arena_, capacity_ * 4096);
}

std::uint64_t BytesStore::store(Fingerprint fp) {
  std::uint64_t h = 0;
  if (!free_.empty()) {
    h = free_.back();
    free_.pop_back();
  } else {
    if (next_unused_ == capacity_) throw std::runtime_error("bytes store: out of frames");
    h = next_unused_++;
  }
  ++in_use_;
  return overwrite(h, fp);
}

std::uint64_t BytesStore::overwrite(std::uint64_t handle, Fingerprint fp) {
  generate_page_bytes(fp, std::span<std::byte>(frame(handle), 4096));
  fingerprints_[handle] = fp.value();
  return handle;
}

Fingerprint BytesStore::load(std::uint64_t handle) const {
  return Fingerprint{fingerprints_[handle]};
}

void BytesStore::release(std::uint64_t handle) {
  // Give the frame back to the kernel so RSS follows the accounting.
  madvise(frame(handle), 4096, MADV_DONTNEED);
  fingerprints_[handle] = 0;
  free_.push_back(handle);
  --in_use_;
}

std::span<const std::byte> BytesStore::bytes(std::uint64_t handle) const {
  return {frame(handle), 4096};
}

bool BytesStore::verify(std::uint64_t handle) const {
  alignas(64) std::byte expect[4096];
  generate_page_bytes(Fingerprint{fingerprints_[handle]}, expect);
  return std::memcmp(expect, frame(handle), 4096) == 0;
}

std::unique_ptr<ContentStore> make_content_store(ContentBackend backend,
                                                 std::uint64_t capacity_frames) {
  switch (backend) {
    case ContentBackend::kFingerprint:
      return std::make_unique<FingerprintStore>();
    case ContentBackend::kBytes:
      return std::make_unique<BytesStore>(capacity_frames);
  }
  return nullptr;  // not reached: every backend is handled above
}

}  // namespace memvirt
