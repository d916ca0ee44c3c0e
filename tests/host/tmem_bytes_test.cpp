// The bytes backend of tmem: pages kept compressed or raw come back exactly, compare() is a
// total order that is 0 exactly for equal contents, verify() catches a corrupted byte, and
// the slab's accounting returns to nothing once every page is released.
#include "host/tmem_bytes.hpp"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <stdexcept>

#include "page_samples.hpp"

namespace memvirt {
namespace {

using testing::Page;

constexpr std::array kCompressors = {Compressor::kLzo1x1, Compressor::kLz4, Compressor::kZstd};

// A page of one of the kinds tmem meets: zeros, random, text-like, or the simulator's
// generated content of a class (some random words, the rest one repeated word). Small seeds
// so that equal pages turn up often.
rc::Gen<Page> gen_page() {
  return rc::gen::apply(
      [](int kind, std::uint64_t seed, unsigned cls) {
        switch (kind) {
          case 0:
            return testing::zero_page();
          case 1:
            return testing::random_page(seed);
          case 2:
            return testing::text_page(seed);
          default: {
            Page p(4096);
            generate_page_bytes(make_fingerprint(seed + 1, cls), p);
            return p;
          }
        }
      },
      rc::gen::inRange(0, 4), rc::gen::inRange<std::uint64_t>(0, 4), rc::gen::inRange(0U, 8U));
}

int sign(int x) {
  return (x > 0) - (x < 0);
}

RC_GTEST_PROP(BytesTmemBackendProperty, RoundTripsOrdersAndVerifies, ()) {
  const auto pages =
      *rc::gen::container<std::vector<Page>>(*rc::gen::inRange<std::size_t>(1, 24), gen_page());
  const bool compress = *rc::gen::arbitrary<bool>();
  const Compressor kind = *rc::gen::elementOf(kCompressors);
  BytesTmemBackend backend(kind);
  std::vector<std::uint64_t> handles;
  std::vector<TmemData> prepared;
  for (std::size_t i = 0; i < pages.size(); ++i) {
    TmemData d = backend.prepare(TmemPage{Fingerprint{i}, pages[i]}, compress);
    RC_ASSERT(d.size >= 1U);
    RC_ASSERT(d.size <= 4096U);
    RC_ASSERT(d.compressed == (d.size < 4096U));
    RC_ASSERT(!d.compressed || compress);
    RC_ASSERT(d.zero == (pages[i] == testing::zero_page()));
    prepared.push_back(d);
    handles.push_back(backend.keep(std::move(d)));
  }
  for (std::size_t i = 0; i < pages.size(); ++i) {
    Page back(4096, std::byte{0x77});
    RC_ASSERT(backend.load(handles[i], back) == Fingerprint{i});
    RC_ASSERT(back == pages[i]);
    RC_ASSERT(backend.verify(handles[i]));
  }
  // compare(): 0 exactly for equal contents, antisymmetric, the same whether one side is
  // prepared data or kept, and transitive (sorting by it agrees with every pair).
  for (std::size_t i = 0; i < pages.size(); ++i) {
    for (std::size_t j = 0; j < pages.size(); ++j) {
      const int c = backend.compare(handles[i], handles[j]);
      RC_ASSERT((c == 0) == (pages[i] == pages[j]));
      RC_ASSERT(sign(c) == -sign(backend.compare(handles[j], handles[i])));
      RC_ASSERT(sign(c) == sign(backend.compare(prepared[i], handles[j])));
    }
  }
  std::vector<std::uint64_t> sorted = handles;
  std::sort(sorted.begin(), sorted.end(),
            [&](std::uint64_t a, std::uint64_t b) { return backend.compare(a, b) < 0; });
  for (std::size_t i = 0; i + 1 < sorted.size(); ++i) {
    for (std::size_t j = i + 1; j < sorted.size(); ++j) {
      RC_ASSERT(backend.compare(sorted[i], sorted[j]) <= 0);
    }
  }
  // A corrupted bit of a kept stored form (raw zero pages keep none) is caught, unless it
  // changes nothing the page decodes to (a match offset within a run of equal bytes): verify()
  // passes only while the page still comes back exactly.
  const std::size_t victim = *rc::gen::inRange<std::size_t>(0, pages.size());
  const std::span<std::byte> s = backend.stored_form_for_testing(handles[victim]);
  if (!s.empty()) {
    const std::size_t at = *rc::gen::inRange<std::size_t>(0, s.size());
    s[at] ^= static_cast<std::byte>(1U << *rc::gen::inRange(0, 8));
    if (backend.verify(handles[victim])) {
      Page back(4096);
      backend.load(handles[victim], back);
      RC_ASSERT(back == pages[victim]);
      RC_TAG("corruption decodes to the same page");
    }
  }
  for (const std::uint64_t h : handles) backend.release(h);
  const auto m = backend.memory();
  RC_ASSERT(m.pages == 0U);
  RC_ASSERT(m.stored_bytes == 0U);
  RC_ASSERT(m.slot_bytes == 0U);
}

TEST(BytesTmemBackend, IncompressiblePagesAreStoredRaw) {
  for (const Compressor kind : kCompressors) {
    BytesTmemBackend backend(kind);
    const Page page = testing::random_page(42);
    const TmemData d = backend.prepare(TmemPage{Fingerprint{1}, page}, true);
    EXPECT_FALSE(d.compressed);
    EXPECT_EQ(d.size, 4096U);
    EXPECT_EQ(d.first_byte, std::to_integer<std::uint8_t>(page[0]));
  }
}

TEST(BytesTmemBackend, CompressedPagesTakeTheirSizeRoundedToASlot) {
  BytesTmemBackend backend(Compressor::kLz4);
  const Page page = testing::text_page(5);
  TmemData d = backend.prepare(TmemPage{Fingerprint{1}, page}, true);
  ASSERT_TRUE(d.compressed);
  const std::uint32_t size = d.size;
  const std::uint64_t h = backend.keep(std::move(d));
  const auto m = backend.memory();
  EXPECT_EQ(m.pages, 1U);
  EXPECT_EQ(m.stored_bytes, size);
  EXPECT_EQ(m.slot_bytes, (size + 31) / 32 * 32);
  EXPECT_EQ(m.chunk_bytes, BytesTmemBackend::kChunkBytes);
  backend.release(h);
  // A released slot is used again rather than a new chunk.
  (void)backend.keep(backend.prepare(TmemPage{Fingerprint{2}, page}, true));
  EXPECT_EQ(backend.memory().chunk_bytes, BytesTmemBackend::kChunkBytes);
}

TEST(BytesTmemBackend, VerifyCatchesACorruptedByte) {
  for (const Compressor kind : kCompressors) {
    BytesTmemBackend backend(kind);
    // Raw: every byte is the page's.
    const auto raw =
        backend.keep(backend.prepare(TmemPage{Fingerprint{1}, testing::random_page(9)}, true));
    // Compressed: the last byte of a text page's compressed form is a literal or a checksum.
    const auto packed =
        backend.keep(backend.prepare(TmemPage{Fingerprint{2}, testing::text_page(9)}, true));
    for (const std::uint64_t h : {raw, packed}) {
      ASSERT_TRUE(backend.verify(h));
      const std::span<std::byte> s = backend.stored_form_for_testing(h);
      s.back() ^= std::byte{0x20};
      EXPECT_FALSE(backend.verify(h)) << spelling_of(kCompressorSpellings, kind);
    }
  }
}

TEST(BytesTmemBackend, RawZeroPageKeepsNoBytes) {
  BytesTmemBackend backend(Compressor::kZstd);
  const std::uint64_t h =
      backend.keep(backend.prepare(TmemPage{Fingerprint{0}, testing::zero_page()}, false));
  EXPECT_EQ(backend.memory().chunk_bytes, 0U);
  Page back(4096, std::byte{1});
  backend.load(h, back);
  EXPECT_EQ(back, testing::zero_page());
  EXPECT_TRUE(backend.verify(h));
}

TEST(BytesTmemBackend, ContentIsCarriedNotUsed) {
  // Pages from real files all carry one fingerprint; the backend still tells them apart.
  BytesTmemBackend backend(Compressor::kLzo1x1);
  const auto a =
      backend.keep(backend.prepare(TmemPage{Fingerprint{0}, testing::text_page(1)}, true));
  const auto b =
      backend.keep(backend.prepare(TmemPage{Fingerprint{0}, testing::text_page(2)}, true));
  EXPECT_NE(backend.compare(a, b), 0);
  Page back(4096);
  EXPECT_EQ(backend.load(a, back), Fingerprint{0});
  EXPECT_EQ(back, testing::text_page(1));
}

TEST(BytesTmemBackend, MisuseIsRefused) {
  BytesTmemBackend backend(Compressor::kLz4);
  Page half(2048);
  EXPECT_THROW((void)backend.prepare(TmemPage{Fingerprint{1}, half}, true), std::invalid_argument);
  TmemData foreign;
  foreign.size = 4096;
  foreign.bytes.resize(4096);
  EXPECT_THROW((void)backend.keep(std::move(foreign)), std::invalid_argument);
  Page out(4096);
  EXPECT_THROW((void)backend.load(99, out), std::out_of_range);
  EXPECT_FALSE(backend.verify(99));
}

}  // namespace
}  // namespace memvirt
