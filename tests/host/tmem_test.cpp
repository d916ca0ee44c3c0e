#include "host/tmem.hpp"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <optional>

namespace memvirt {
namespace {

// Compressed sizes by content: contents 1..3 compress to a quarter page, the rest not at all.
std::uint32_t quarter_or_raw(Fingerprint fp) {
  return fp.value() % 4 == 1 ? static_cast<std::uint32_t>(kPageSize / 4)
                             : static_cast<std::uint32_t>(kPageSize);
}

// A host heap of `capacity` pages that tmem alone uses.
struct Heap {
  std::uint64_t capacity = 0;
  std::uint64_t domain_pages = 0;
  const Tmem* tmem = nullptr;
  std::uint64_t free() const {
    const std::uint64_t used = tmem->pages_used() + domain_pages;
    return used >= capacity ? 0 : capacity - used;
  }
};

struct Fixture {
  explicit Fixture(TmemConfig cfg, std::uint64_t capacity, std::uint64_t maxmem = 1U << 20)
      : backend(quarter_or_raw), tmem(cfg, backend, [this] { return heap.free(); }) {
    heap.capacity = capacity;
    heap.tmem = &tmem;
    tmem.new_client(1, maxmem, [this] { return heap.domain_pages; });
    tmem.new_client(2, maxmem, [this] { return heap.domain_pages; });
  }
  FingerprintTmemBackend backend;
  Heap heap;
  Tmem tmem;
};

TmemOid oid(std::uint64_t n) {
  return TmemOid{{n, 0, 0}};
}
TmemPage page(std::uint64_t content) {
  return TmemPage{Fingerprint{content}, {}};
}

TEST(Tmem, PrivateEphemeralGetIsExclusive) {
  Fixture f({}, 10000);
  const TmemPoolId pool = *f.tmem.new_pool(1, {});
  EXPECT_EQ(f.tmem.put(1, pool, oid(7), 3, page(42)), Tmem::PutResult::kStored);
  EXPECT_EQ(f.tmem.get(1, pool, oid(7), 3), Fingerprint{42});
  EXPECT_EQ(f.tmem.get(1, pool, oid(7), 3), std::nullopt);
  EXPECT_EQ(f.tmem.apparent_pages(), 0U);
  f.tmem.check();
}

TEST(Tmem, SharedEphemeralAndPersistentGetsKeepThePage) {
  Fixture f({}, 10000);
  const TmemPoolId shared = *f.tmem.new_pool(1, {.persistent = false, .shared = true}, {5, 6});
  const TmemPoolId joined = *f.tmem.new_pool(2, {.persistent = false, .shared = true}, {5, 6});
  const TmemPoolId persistent = *f.tmem.new_pool(1, {.persistent = true});
  f.tmem.put(1, shared, oid(1), 0, page(9));
  f.tmem.put(1, persistent, oid(1), 0, page(10));
  EXPECT_EQ(f.tmem.get(2, joined, oid(1), 0), Fingerprint{9});  // the other sharer sees it
  EXPECT_EQ(f.tmem.get(1, shared, oid(1), 0), Fingerprint{9});
  EXPECT_EQ(f.tmem.get(1, persistent, oid(1), 0), Fingerprint{10});
  EXPECT_EQ(f.tmem.get(1, persistent, oid(1), 0), Fingerprint{10});
  f.tmem.check();
}

TEST(Tmem, PutsEvictTheOldestEphemeralPageToKeepAMibFree) {
  TmemConfig cfg;
  Fixture f(cfg, 300);  // room for 300 - 256 = 44 pages before the reserve is reached
  const TmemPoolId pool = *f.tmem.new_pool(1, {});
  for (std::uint32_t i = 0; i < 100; ++i) f.tmem.put(1, pool, oid(1), i, page(1000 + 4 * i));
  EXPECT_LE(f.tmem.pages_used(), 300U - 256U + 1U);
  EXPECT_GT(f.tmem.counters().evictions.value(), 0U);
  EXPECT_EQ(f.tmem.get(1, pool, oid(1), 0), std::nullopt);                 // oldest went first
  EXPECT_EQ(f.tmem.get(1, pool, oid(1), 99), Fingerprint{1000 + 4 * 99});  // newest stays
  f.tmem.check();
}

TEST(Tmem, PersistentPagesAreNeverEvictedAndFailAtMaxmem) {
  Fixture f({}, 100000, /*maxmem=*/110);
  f.heap.domain_pages = 100;
  const TmemPoolId pool = *f.tmem.new_pool(1, {.persistent = true});
  unsigned stored = 0;
  for (std::uint32_t i = 0; i < 20; ++i) {
    if (f.tmem.put(1, pool, oid(1), i, page(2 + 4 * i)) == Tmem::PutResult::kStored) ++stored;
  }
  EXPECT_EQ(stored, 10U);  // domain 100 pages + 10 persistent = maxmem
  EXPECT_EQ(f.tmem.put(1, pool, oid(1), 50, page(3)), Tmem::PutResult::kOverMaxmem);
  EXPECT_EQ(f.tmem.relinquish(1000), 0U);  // nothing ephemeral to give back
  for (std::uint32_t i = 0; i < 10; ++i) {
    EXPECT_EQ(f.tmem.get(1, pool, oid(1), i), Fingerprint{2 + 4 * i});
  }
  f.tmem.check();
}

TEST(Tmem, DuplicatePutThatCannotBeStoredDropsTheOldCopy) {
  Fixture f({}, 100000, /*maxmem=*/101);
  f.heap.domain_pages = 100;
  const TmemPoolId pool = *f.tmem.new_pool(1, {.persistent = true});
  ASSERT_EQ(f.tmem.put(1, pool, oid(1), 0, page(6)), Tmem::PutResult::kStored);
  f.heap.domain_pages = 101;  // the domain grew: no room left for a persistent page
  EXPECT_NE(f.tmem.put(1, pool, oid(1), 0, page(8)), Tmem::PutResult::kStored);
  EXPECT_EQ(f.tmem.get(1, pool, oid(1), 0), std::nullopt);  // never the stale 6
  EXPECT_EQ(f.tmem.counters().dup_puts_flushed.value(), 1U);
  f.tmem.check();
}

TEST(Tmem, DedupSharesOneCopyAndCompressionPacksBytes) {
  TmemConfig cfg;
  cfg.dedup = true;
  cfg.compress = true;
  Fixture f(cfg, 100000);
  const TmemPoolId a = *f.tmem.new_pool(1, {});
  const TmemPoolId b = *f.tmem.new_pool(2, {});
  for (std::uint32_t i = 0; i < 8; ++i) {
    f.tmem.put(1, a, oid(1), i, page(1 + 4 * i));  // compresses to a quarter page
    f.tmem.put(2, b, oid(9), i, page(1 + 4 * i));  // the same contents in another guest
  }
  EXPECT_EQ(f.tmem.apparent_pages(), 16U);
  EXPECT_EQ(f.tmem.counters().deduped_puts.value(), 8U);
  EXPECT_EQ(f.tmem.pages_used(), 2U);  // 8 distinct quarter pages
  EXPECT_GT(f.tmem.counters().compares.value(), 0U);
  f.tmem.check();
  EXPECT_EQ(f.tmem.get(1, a, oid(1), 3), Fingerprint{13});
  EXPECT_EQ(f.tmem.get(2, b, oid(9), 3), Fingerprint{13});  // the other reference remains
  f.tmem.check();
}

TEST(Tmem, ZeroPagesStoreNothingUnlessDedupAndCompressionAreBothOn) {
  for (const bool both : {false, true}) {
    TmemConfig cfg;
    cfg.dedup = both;
    cfg.compress = both;
    Fixture f(cfg, 100000);
    const TmemPoolId pool = *f.tmem.new_pool(1, {});
    f.tmem.put(1, pool, oid(1), 0, page(0));
    EXPECT_EQ(f.tmem.pages_used(), both ? 1U : 0U) << both;
    EXPECT_EQ(f.tmem.get(1, pool, oid(1), 0), kZeroContent);
  }
}

TEST(Tmem, SharedContentGetsOneSecondChance) {
  TmemConfig cfg;
  cfg.dedup = true;
  Fixture f(cfg, 256 + 3);  // three pages above the reserve
  const TmemPoolId a = *f.tmem.new_pool(1, {});
  const TmemPoolId b = *f.tmem.new_pool(2, {});
  f.tmem.put(1, a, oid(1), 0, page(100));  // shared by two pages
  f.tmem.put(2, b, oid(1), 0, page(100));
  f.tmem.put(1, a, oid(1), 1, page(104));
  f.tmem.put(1, a, oid(1), 2, page(108));
  f.tmem.put(1, a, oid(1), 3, page(112));  // takes the heap below the reserve
  f.tmem.put(1, a, oid(1), 4, page(116));  // evicts first: the oldest unshared page goes
  EXPECT_EQ(f.tmem.get(1, a, oid(1), 1), std::nullopt);
  EXPECT_EQ(f.tmem.get(2, b, oid(1), 0), Fingerprint{100});
  f.tmem.check();
}

TEST(Tmem, FlushObjectAndDestroyPoolDropEverything) {
  Fixture f({}, 100000);
  const TmemPoolId pool = *f.tmem.new_pool(1, {.persistent = true});
  for (std::uint32_t i = 0; i < 5; ++i) {
    f.tmem.put(1, pool, oid(1), i, page(2 + 4 * i));
    f.tmem.put(1, pool, oid(2), i, page(3 + 4 * i));
  }
  EXPECT_EQ(f.tmem.flush_object(1, pool, oid(1)), 5U);
  EXPECT_EQ(f.tmem.get(1, pool, oid(1), 2), std::nullopt);
  EXPECT_EQ(f.tmem.get(1, pool, oid(2), 2), Fingerprint{11});
  f.tmem.destroy_pool(1, pool);
  EXPECT_EQ(f.tmem.apparent_pages(), 0U);
  EXPECT_EQ(f.tmem.pages_used(), 0U);
  EXPECT_EQ(f.tmem.persistent_pages(1), 0U);
  // The peaks stay: ten persistent pages were held at once.
  EXPECT_EQ(f.tmem.persistent_page_count(), 0U);
  EXPECT_EQ(f.tmem.persistent_page_count_max(), 10U);
  EXPECT_EQ(f.tmem.apparent_pages_max(), 10U);
  EXPECT_EQ(f.tmem.pages_max(), 10U);
  f.tmem.check();
}

TEST(Tmem, FrozenRefusesPutsAndRelinquishGivesEphemeralMemoryBack) {
  Fixture f({}, 100000);
  const TmemPoolId pool = *f.tmem.new_pool(1, {});
  for (std::uint32_t i = 0; i < 50; ++i) f.tmem.put(1, pool, oid(1), i, page(2 + 4 * i));
  f.tmem.set_frozen(true);
  EXPECT_EQ(f.tmem.put(1, pool, oid(1), 99, page(7)), Tmem::PutResult::kFrozen);
  f.tmem.set_frozen(false);
  // A new domain leaves 40 pages, which tmem's 50 exceed; 20 must be made free.
  f.heap.domain_pages = 100000 - 40;
  EXPECT_EQ(f.tmem.relinquish(20), 30U);
  EXPECT_EQ(f.heap.free(), 20U);
  f.tmem.check();
}

// A reference model of every pool: what a get may return. Ephemeral pages may vanish
// (evicted); when a get finds one it is the last content put. Persistent pages never vanish.
RC_GTEST_PROP(TmemProperty, MatchesTheReferenceModel, ()) {
  TmemConfig cfg;
  cfg.dedup = *rc::gen::arbitrary<bool>();
  cfg.compress = *rc::gen::arbitrary<bool>();
  Fixture f(cfg, *rc::gen::inRange<std::uint64_t>(260, 400), /*maxmem=*/120);
  f.heap.domain_pages = 100;
  struct PoolRef {
    TmemClientId client;
    TmemPoolId id;
    TmemPoolFlags flags;
  };
  std::vector<PoolRef> pools;
  for (const TmemClientId c : {1U, 2U}) {
    for (const bool persistent : {false, true}) {
      pools.push_back({c, *f.tmem.new_pool(c, {.persistent = persistent}), {persistent, false}});
    }
    pools.push_back(
        {c, *f.tmem.new_pool(c, {.persistent = false, .shared = true}, {1, 1}), {false, true}});
  }
  // Shared pools: both clients see one pool, so the model keys it by the uuid.
  const auto model_pool = [&](std::size_t i) { return pools[i].flags.shared ? 99U : i; };
  std::map<std::tuple<std::size_t, std::uint64_t, std::uint32_t>, Fingerprint> model;
  const int steps = *rc::gen::inRange(1, 300);
  for (int s = 0; s < steps; ++s) {
    const std::size_t pi = *rc::gen::inRange<std::size_t>(0, pools.size());
    const PoolRef& p = pools[pi];
    const std::uint64_t obj = *rc::gen::inRange<std::uint64_t>(0, 4);
    const auto index = *rc::gen::inRange<std::uint32_t>(0, 16);
    const auto key = std::tuple{model_pool(pi), obj, index};
    switch (*rc::gen::inRange(0, 6)) {
      case 0:
      case 1: {
        const Fingerprint content{*rc::gen::inRange<std::uint64_t>(0, 40)};
        const auto r = f.tmem.put(p.client, p.id, oid(obj), index, TmemPage{content, {}});
        if (r == Tmem::PutResult::kStored) {
          model[key] = content;
        } else {
          model.erase(key);  // a failed put leaves no copy, old or new
        }
        break;
      }
      case 2: {
        const auto got = f.tmem.get(p.client, p.id, oid(obj), index);
        const auto it = model.find(key);
        if (p.flags.persistent) {
          RC_ASSERT(got.has_value() == (it != model.end()));
        }
        if (got) {
          RC_ASSERT(it != model.end());
          RC_ASSERT(*got == it->second);
          if (!p.flags.persistent && !p.flags.shared) model.erase(it);  // exclusive
        } else if (it != model.end()) {
          RC_ASSERT(!p.flags.persistent);
          model.erase(it);  // evicted
        }
        break;
      }
      case 3:
        f.tmem.flush_page(p.client, p.id, oid(obj), index);
        model.erase(key);
        RC_ASSERT(!f.tmem.get(p.client, p.id, oid(obj), index).has_value());
        break;
      case 4:
        f.tmem.flush_object(p.client, p.id, oid(obj));
        std::erase_if(model, [&](const auto& e) {
          return std::get<0>(e.first) == model_pool(pi) && std::get<1>(e.first) == obj;
        });
        break;
      case 5:
        f.tmem.relinquish(*rc::gen::inRange<std::uint64_t>(0, 300));
        break;
    }
    f.tmem.check();
    // Persistent pages are all there.
    std::uint64_t persistent = 0;
    for (const auto& [k, v] : model) {
      if (std::get<0>(k) != 99U && pools[std::get<0>(k)].flags.persistent) ++persistent;
    }
    RC_ASSERT(f.tmem.client_pages(1, true) + f.tmem.client_pages(2, true) == persistent);
    RC_ASSERT(f.tmem.apparent_pages() >= persistent);
  }
}

}  // namespace
}  // namespace memvirt
