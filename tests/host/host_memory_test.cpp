#include "host/host_memory.hpp"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "real/process_memory.hpp"

namespace memvirt {
namespace {

std::unique_ptr<ContentStore> make_store(bool bytes, std::uint64_t frames) {
  if (bytes) return std::make_unique<BytesStore>(frames);
  return std::make_unique<FingerprintStore>();
}

TEST(HostMemory, WriteFaultsInOnceAndCountsTouchedPages) {
  HostMemory h(make_store(false, 0));
  const VmId vm = h.add_vm(Bytes{1ULL << 20});
  EXPECT_EQ(h.write(vm, Gfn{3}, make_fingerprint(9)), WriteEffect::kFaultIn);
  EXPECT_EQ(h.write(vm, Gfn{3}, make_fingerprint(10)), WriteEffect::kInPlace);
  EXPECT_EQ(h.frames_used(), 1U);
  EXPECT_EQ(h.peek(vm, Gfn{3}), make_fingerprint(10));
  h.discard(vm, Gfn{3});
  EXPECT_EQ(h.frames_used(), 0U);
  EXPECT_EQ(h.state(vm, Gfn{3}), PageState::kUnbacked);
  EXPECT_EQ(h.peek(vm, Gfn{3}), kZeroContent);  // discarded: the next touch sees zeros
  h.write(vm, Gfn{3}, make_fingerprint(11));
  EXPECT_EQ(h.vm_stats(vm).touched_pages, 1U);
  EXPECT_EQ(h.vm_stats(vm).faults_in.value(), 2U);
}

TEST(HostMemory, ReadOfUntouchedPageMapsTheZeroPageWithoutAFrame) {
  HostMemory h(make_store(false, 0));
  const VmId vm = h.add_vm(Bytes{1ULL << 20});
  EXPECT_EQ(h.read(vm, Gfn{5}), kZeroContent);
  EXPECT_EQ(h.state(vm, Gfn{5}), PageState::kZero);
  EXPECT_EQ(h.frames_used(), 0U);
  EXPECT_EQ(h.write(vm, Gfn{5}, make_fingerprint(1)), WriteEffect::kFaultIn);
}

TEST(HostMemory, MergedPagesShareOneFrameUntilWritten) {
  HostMemory h(make_store(false, 0));
  const VmId a = h.add_vm(Bytes{1ULL << 20});
  const VmId b = h.add_vm(Bytes{1ULL << 20});
  const Fingerprint x = make_fingerprint(42);
  h.write(a, Gfn{1}, x);
  h.write(b, Gfn{2}, x);
  h.write(b, Gfn{3}, make_fingerprint(43));
  EXPECT_FALSE(h.merge(b, Gfn{3}, a, Gfn{1}));  // different content
  ASSERT_TRUE(h.merge(b, Gfn{2}, a, Gfn{1}));
  EXPECT_EQ(h.frames_used(), 2U);  // one shared + b's private page 3
  EXPECT_EQ(h.resident_pages(a), 1U);
  EXPECT_EQ(h.resident_pages(b), 2U);
  h.check_full();
  EXPECT_EQ(h.write(a, Gfn{1}, make_fingerprint(44)), WriteEffect::kCopyOnWrite);
  EXPECT_EQ(h.peek(b, Gfn{2}), x);  // the other sharer keeps the old content
  EXPECT_EQ(h.frames_used(), 3U);
  h.check_full();
}

// Conservation and integrity: random guest writes, reads, discards, zero-maps and merges over
// three VMs; after every step each page holds what was last written to it (zeros after a
// discard or zero-map) and the accounting balances.
void conservation_property(bool bytes) {
  constexpr std::uint32_t kPages = 64;
  HostMemory h(make_store(bytes, 3 * kPages));
  std::vector<VmId> vms;
  for (int i = 0; i < 3; ++i) vms.push_back(h.add_vm(Bytes::from_pages(kPages)));
  std::map<std::pair<std::uint32_t, std::uint32_t>, Fingerprint> expect;
  const int steps = *rc::gen::inRange(1, 300);
  for (int s = 0; s < steps; ++s) {
    const VmId vm = vms[*rc::gen::inRange(0, 3)];
    const Gfn g{*rc::gen::inRange<std::uint32_t>(0, kPages)};
    switch (*rc::gen::inRange(0, 6)) {
      case 0:
      case 1: {
        // Few distinct contents, so merges find equal pages.
        const Fingerprint fp =
            *rc::gen::inRange(0, 5) == 0 ? kZeroContent : make_fingerprint(*rc::gen::inRange(1, 6));
        h.write(vm, g, fp);
        expect[{vm.value(), g.value()}] = fp;
        break;
      }
      case 2:
        h.discard(vm, g);
        expect[{vm.value(), g.value()}] = kZeroContent;
        break;
      case 3:
        h.map_zero(vm, g);
        expect[{vm.value(), g.value()}] = kZeroContent;
        break;
      case 4: {
        const VmId t = vms[*rc::gen::inRange(0, 3)];
        const Gfn tg{*rc::gen::inRange<std::uint32_t>(0, kPages)};
        const bool equal = h.peek(vm, g) == h.peek(t, tg);
        const bool merged = h.merge(vm, g, t, tg);
        if (merged) RC_ASSERT(equal);
        break;
      }
      default:
        RC_ASSERT(h.read(vm, g) == h.peek(vm, g));
        break;
    }
    for (const auto& [key, fp] : expect) RC_ASSERT(h.peek(VmId{key.first}, Gfn{key.second}) == fp);
    h.check_full();
  }
  h.remove_vm(vms[0]);
  h.check_full();
}

RC_GTEST_PROP(HostConservation, BalancesWithFingerprints, ()) {
  conservation_property(false);
}
RC_GTEST_PROP(HostConservation, BalancesWithRealBytes, ()) {
  conservation_property(true);
}

TEST(BytesStore, ProcessRssFollowsTheAccounting) {
  constexpr std::uint64_t kFrames = 32768;  // 128 MiB
  HostMemory h(make_store(true, kFrames));
  const VmId vm = h.add_vm(Bytes::from_pages(kFrames));
  const std::uint64_t before = process_rss_bytes();
  for (std::uint32_t g = 0; g < kFrames; ++g) h.write(vm, Gfn{g}, make_fingerprint(g + 1));
  const std::uint64_t filled = process_rss_bytes();
  const double accounted = static_cast<double>(h.frames_used() * kPageSize);
  // Beside the frames, only the page table (8 bytes a page) and the store's fingerprint
  // array grow; allow 10% for them and for the allocator.
  EXPECT_NEAR(static_cast<double>(filled - before), accounted, accounted * 0.10);
  for (std::uint32_t g = 0; g < kFrames; g += 2) h.discard(vm, Gfn{g});
  const std::uint64_t halved = process_rss_bytes();
  EXPECT_NEAR(static_cast<double>(filled - halved), accounted / 2, accounted * 0.05);
  h.check_full();
}

TEST(Content, BytesFollowFingerprintAndCompressibilityClass) {
  std::vector<std::byte> a(4096), b(4096);
  generate_page_bytes(make_fingerprint(5, 3), a);
  generate_page_bytes(make_fingerprint(5, 3), b);
  EXPECT_EQ(a, b);
  generate_page_bytes(make_fingerprint(6, 3), b);
  EXPECT_NE(a, b);
  generate_page_bytes(kZeroContent, b);
  EXPECT_EQ(b, std::vector<std::byte>(4096));
  EXPECT_EQ(compressibility_class(make_fingerprint(5, 3)), 3U);
  EXPECT_LT(make_fingerprint(~0ULL, 7).value(), 1ULL << kFingerprintBits);
}

}  // namespace
}  // namespace memvirt
