// Page content. A page's content is a fingerprint: equal fingerprints mean equal bytes, 0 means
// a page of zeros. Fingerprints carry 61 significant bits so that a nested page table entry can
// hold one inline beside its state; bits 58..60 give the page's compressibility class.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/rng.hpp"
#include "core/spelling.hpp"
#include "core/types.hpp"

namespace memvirt {

struct FingerprintTag {};
using Fingerprint = StrongInt<FingerprintTag, std::uint64_t>;

inline constexpr int kFingerprintBits = 61;
inline constexpr std::uint64_t kFingerprintMask = (1ULL << kFingerprintBits) - 1;
inline constexpr Fingerprint kZeroContent{0};

// Compressibility class 0..7: the share of the page's 8-byte words that are random is
// (class + 1) / 8; the others repeat one word. Class 7 is incompressible.
inline constexpr unsigned compressibility_class(Fingerprint fp) {
  return static_cast<unsigned>((fp.value() >> 58) & 7);
}

// What kind of data a page holds, in the same three bits: the compression model looks its
// compressed size up by class (host/compression_profile.hpp, measured on real files of each
// class); the bytes backend generates the class's share of random words as above.
enum class ContentClass : std::uint8_t {
  kSource = 0,        // C sources (.c, .S)
  kHeader = 1,        // headers and other text the build reads (.h, linker scripts, Kconfig)
  kObject = 2,        // compiler and linker outputs (.o, .a, built-in archives)
  kBinary = 3,        // executables and shared libraries (the compiler, the guest's programs)
  kCompilerHeap = 4,  // a compiler's anonymous memory (cc1's heap: trees, RTL, obstacks)
  kText = 5,          // generated small text files (make's .cmd dependency files)
  kUnmeasured = 6,    // reserved: no measurement stands behind it
  kOpaque = 7,        // random bytes: incompressible (the default)
};
inline constexpr std::array<Spelling<ContentClass>, 8> kContentClassSpellings{{
    {ContentClass::kSource, "source"},
    {ContentClass::kHeader, "header"},
    {ContentClass::kObject, "object"},
    {ContentClass::kBinary, "binary"},
    {ContentClass::kCompilerHeap, "compiler_heap"},
    {ContentClass::kText, "text"},
    {ContentClass::kUnmeasured, "unmeasured"},
    {ContentClass::kOpaque, "opaque"},
}};
inline constexpr ContentClass content_class(Fingerprint fp) {
  return static_cast<ContentClass>(compressibility_class(fp));
}

// Bit 57 marks contents that are unique by construction: no other page ever holds them. A
// scanner may rely on it to skip looking for twins that cannot exist (it still charges the
// cost of looking), so results equal a search of every index.
inline constexpr std::uint64_t kUniqueContentBit = 1ULL << 57;

// A non-zero fingerprint from a 64-bit draw, with the given compressibility class. Such
// contents may be shared (boot images, zero-filled data).
inline constexpr Fingerprint make_fingerprint(std::uint64_t draw, unsigned cls = 7) {
  std::uint64_t v = (draw & (kUniqueContentBit - 1)) | (static_cast<std::uint64_t>(cls & 7) << 58);
  if (v == 0) v = 1;
  return Fingerprint{v};
}

// A fingerprint that no other page will ever hold (a program's own data).
inline constexpr Fingerprint make_unique_fingerprint(std::uint64_t draw, unsigned cls = 7) {
  return Fingerprint{make_fingerprint(draw, cls).value() | kUniqueContentBit};
}

inline constexpr Fingerprint make_fingerprint(std::uint64_t draw, ContentClass cls) {
  return make_fingerprint(draw, static_cast<unsigned>(cls));
}
inline constexpr Fingerprint make_unique_fingerprint(std::uint64_t draw, ContentClass cls) {
  return make_unique_fingerprint(draw, static_cast<unsigned>(cls));
}

inline constexpr bool is_unique_content(Fingerprint fp) {
  return (fp.value() & kUniqueContentBit) != 0;
}

// Fills `page` (4 KiB) with the bytes that fingerprint `fp` stands for.
void generate_page_bytes(Fingerprint fp, std::span<std::byte> page);

}  // namespace memvirt
