#include "translation/experiment.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <tuple>

#include "core/compose.hpp"
#include "core/params.hpp"
#include "translation/linear_model.hpp"

namespace memvirt::translation {

namespace {

PageSize read_page_size(Params& p, const std::string& key, const std::string& description) {
  const Bytes b = p.bytes(key, Bytes{4096}, description);
  if (b.value() == page_bytes(PageSize::k4K)) return PageSize::k4K;
  if (b.value() == page_bytes(PageSize::k2M)) return PageSize::k2M;
  if (b.value() == page_bytes(PageSize::k1G)) return PageSize::k1G;
  p.fail(key, "must be 4KiB, 2MiB or 1GiB");
}

TlbArrayConfig read_tlb_array(Params p, std::uint32_t entries, std::uint32_t ways) {
  TlbArrayConfig c;
  c.entries =
      static_cast<std::uint32_t>(p.integer("entries", entries, "entries (0: none)", 0, 1 << 20));
  c.ways = static_cast<std::uint32_t>(p.integer("ways", ways, "associativity", 1, 1 << 20));
  if (c.entries % c.ways != 0) p.fail("ways", "entries must be a multiple of ways");
  return c;
}

CacheLevelConfig read_cache_level(Params p, Bytes bytes, std::uint32_t ways, std::uint32_t cycles) {
  CacheLevelConfig c;
  c.bytes = p.bytes("size", bytes, "capacity").value();
  c.ways = static_cast<std::uint32_t>(p.integer("ways", ways, "associativity", 1, 64));
  c.hit_cycles =
      static_cast<std::uint32_t>(p.integer("cycles", cycles, "load-to-use latency", 0, 10000));
  if (c.bytes % (64ULL * c.ways) != 0 || c.bytes == 0)
    p.fail("size", "must be a positive multiple of 64 B x ways");
  return c;
}

// The host compaction process; `d` gives the defaults (the scenario's, for a configuration).
HostCompactionConfig read_compaction(Params p, const HostCompactionConfig& d) {
  HostCompactionConfig c;
  c.initial_fragmentation =
      p.real("initial_fragmentation", d.initial_fragmentation,
             "share of the segment's host range held by other movable pages at the start", 0, 1);
  c.events_per_s =
      p.real("fragmentation_events_per_s", d.events_per_s,
             "bursts of other allocations into the segment's host range per second", 0, 1e6);
  c.pages_per_event = static_cast<std::uint64_t>(
      p.integer("pages_per_event", static_cast<std::int64_t>(d.pages_per_event),
                "4 KiB pages each burst places in the range", 1, std::int64_t{1} << 30));
  c.migrate_page_ns = p.real("migrate_page_ns", d.migrate_page_ns,
                             "CPU time of migrating one 4 KiB page", 1e-3, 1e9);
  c.wake_interval = p.duration("wake_interval", d.wake_interval,
                               "compaction daemon's periodic check (0: wakes at once)");
  if (c.wake_interval.ns() < 0) p.fail("wake_interval", "must not be negative");
  c.duration = p.duration("duration", d.duration,
                          "virtual time the measured references span (0: their own run time)");
  if (c.duration.ns() < 0) p.fail("duration", "must not be negative");
  return c;
}

}  // namespace

TranslationScenario load_translation_scenario(const std::string& file,
                                              const std::vector<std::string>& overrides,
                                              const std::vector<OverrideLayer>& layers) {
  auto [root, ctx, p, name, description, seed] =
      load_scenario_tree(file, overrides, "translation", layers);
  TranslationScenario s;
  s.file = file;
  s.name = name;
  s.description = description;
  s.seed = seed;
  s.references = static_cast<std::uint64_t>(
      p.integer("references", 20'000'000, "measured data references per workload", 1));
  s.warmup = static_cast<std::uint64_t>(
      p.integer("warmup_references", 2'000'000, "references before counting starts", 0));

  Params mmu = p.child("mmu");
  Params tlb = mmu.child("tlb");
  const TlbConfig def;
  const char* names[] = {"4k", "2m", "1g"};
  for (unsigned i = 0; i < kPageSizes; ++i) {
    s.mmu.tlb.l1[i] =
        read_tlb_array(tlb.child(std::string("l1_") + names[i]), def.l1[i].entries, def.l1[i].ways);
    s.mmu.tlb.l2[i] =
        read_tlb_array(tlb.child(std::string("l2_") + names[i]), def.l2[i].entries, def.l2[i].ways);
  }
  Params pwc = mmu.child("walk_cache");
  s.mmu.walk_cache.pml4e = static_cast<std::uint32_t>(
      pwc.integer("pml4e", 0, "PML4E-cache entries per walk dimension (0: none)", 0, 4096));
  s.mmu.walk_cache.pdpte = static_cast<std::uint32_t>(
      pwc.integer("pdpte", 0, "PDPTE-cache entries per walk dimension (0: none)", 0, 4096));
  s.mmu.walk_cache.pde = static_cast<std::uint32_t>(
      pwc.integer("pde", 0, "PDE-cache entries per walk dimension (0: none)", 0, 4096));
  s.mmu.nested_in_tlb = mmu.boolean("nested_in_tlb", true, "gPA -> hPA translations share the TLB");
  s.mmu.costs.segment_add_cycles = static_cast<std::uint32_t>(
      mmu.integer("segment_add_cycles", 1, "cycles of one segment offset add", 0, 1000));
  s.mmu.costs.nested_tlb_hit_cycles = static_cast<std::uint32_t>(
      mmu.integer("nested_tlb_hit_cycles", 7, "cycles of a gPA -> hPA hit in the TLB", 0, 1000));

  Params cache = p.child("cache");
  s.mmu.cache.levels.push_back(read_cache_level(cache.child("l1"), Bytes{32 << 10}, 8, 4));
  s.mmu.cache.levels.push_back(read_cache_level(cache.child("l2"), Bytes{256 << 10}, 8, 12));
  s.mmu.cache.levels.push_back(read_cache_level(cache.child("l3"), Bytes{15ULL << 20}, 20, 28));
  s.mmu.cache.memory_cycles = static_cast<std::uint32_t>(
      cache.integer("memory_cycles", 200, "DRAM load latency", 1, 100000));
  s.mmu.model_data = cache.boolean("data_references", true,
                                   "data references go through the caches (compete with walks)");

  Params guest = p.child("guest");
  s.guest.memory =
      guest.bytes("memory", Bytes{0}, "guest RAM; 0 = footprint x memory_per_footprint").value();
  s.guest_memory_per_footprint =
      guest.real("memory_per_footprint", 4.0 / 3.0,
                 "guest RAM over workload footprint when memory is 0", 1.0, 100.0);
  s.guest.below_4g = guest.bytes("below_4g", Bytes{0xE0000000ULL}, "RAM below the I/O gap").value();
  s.guest.fragmentation =
      guest.real("fragmentation", 0.0, "share of 2 MiB blocks with unmovable pages", 0, 1);
  s.guest.self_ballooning =
      guest.boolean("self_ballooning", true, "make the primary region contiguous");
  s.guest.hot_unplug_io_gap =
      guest.boolean("hot_unplug_io_gap", true, "move RAM below the I/O gap above it");
  s.guest.low_memory_kept =
      guest.bytes("low_memory_kept", Bytes{1ULL << 30}, "RAM kept below the gap").value();

  Params host = p.child("host");
  s.host.escaped_pages = static_cast<std::uint32_t>(
      host.integer("escaped_pages", 16, "guest pages escaping the VMM segment", 0, 1 << 20));
  s.host.filter_bits = static_cast<std::uint32_t>(
      host.integer("filter_bits", 256, "escape filter size in bits", 1, 1 << 24));
  s.host.filter_hashes = static_cast<std::uint32_t>(
      host.integer("filter_hashes", 4, "escape filter hash functions", 1, 32));
  s.compaction = read_compaction(host.child("compaction"), HostCompactionConfig{});
  s.cpu_ghz = p.child("cpu").real("ghz", 2.2, "clock, for cycles -> time", 0.1, 10);

  for (Params c : p.sequence("configurations")) {
    ConfigSpec spec;
    spec.name = c.string("name", "", "configuration label");
    const std::string mode = c.choice(
        "mode", "base_native", std::vector<std::string>(kModeNames.begin(), kModeNames.end()),
        "translation mode");
    spec.mode = static_cast<Mode>(std::find(kModeNames.begin(), kModeNames.end(), mode) -
                                  kModeNames.begin());
    spec.guest_pages = read_page_size(c, "guest_pages", "guest (native) page size");
    spec.host_pages = read_page_size(c, "host_pages", "host page size (virtualized modes)");
    // Escapes only exist where a VMM segment does; base modes default to none so page-size
    // comparisons are not confounded by split host pages.
    spec.escape_filter =
        c.boolean("escape_filter", spec.mode == Mode::kDualDirect || spec.mode == Mode::kVmmDirect,
                  "escaped pages and the filter present (default: modes with a VMM segment)");
    if (c.has("fragmentation")) {
      spec.fragmentation = c.real("fragmentation", 0, "guest.fragmentation for this one", 0, 1);
    }
    if (c.has("self_ballooning")) {
      spec.self_ballooning =
          c.boolean("self_ballooning", true, "guest.self_ballooning for this one");
    }
    if (c.has("hot_unplug_io_gap")) {
      spec.hot_unplug_io_gap =
          c.boolean("hot_unplug_io_gap", true, "guest.hot_unplug_io_gap for this one");
    }
    if (c.has("compaction")) spec.compaction = read_compaction(c.child("compaction"), s.compaction);
    if (spec.name.empty()) spec.name = mode;
    s.configs.push_back(spec);
  }
  if (s.configs.empty()) p.fail("configurations", "at least one configuration is needed");
  std::size_t index = 0;
  for (Params w : p.sequence("workloads")) {
    WorkloadSpec spec;
    spec.name = w.string("name", fmt::format("workload{}", index), "label");
    spec.base_cycles_per_reference = w.real("base_cycles_per_reference", 1.0,
                                            "cycles per reference without translation", 0.0, 1e6);
    spec.guest_memory =
        w.bytes("guest_memory", Bytes{0}, "this workload's guest RAM (0: scenario's)").value();
    spec.make = make_workload(w, s.seed + index);
    s.workloads.push_back(std::move(spec));
    ++index;
  }
  if (s.workloads.empty()) p.fail("workloads", "at least one workload is needed");
  if (p.has("reference")) {
    s.reference = YAML::Clone(root["reference"]);
    ctx->mark_read("reference");
    std::function<void(const YAML::Node&, const std::string&)> mark = [&](const YAML::Node& n,
                                                                          const std::string& path) {
      ctx->mark_read(path);
      if (n.IsMap()) {
        for (auto it : n) mark(it.second, path + "." + it.first.as<std::string>());
      }
    };
    mark(root["reference"], "reference");
  }
  ctx->check_all_read(root);
  s.effective = YAML::Clone(ctx->effective());
  if (s.reference) s.effective["reference"] = YAML::Clone(s.reference);
  return s;
}

std::vector<WorkloadResult> run_translation(
    const TranslationScenario& s,
    const std::function<void(std::size_t, const std::string&)>& progress) {
  std::vector<WorkloadResult> results;
  for (std::size_t wi = 0; wi < s.workloads.size(); ++wi) {
    const WorkloadSpec& ws = s.workloads[wi];
    if (progress) progress(wi, ws.name);
    std::unique_ptr<Workload> workload = ws.make();
    WorkloadResult wr;
    wr.name = ws.name;
    wr.description = workload->describe();
    wr.base_cycles_per_reference = ws.base_cycles_per_reference;
    for (const auto& r : workload->regions()) wr.footprint += r.bytes;

    GuestLayoutConfig gc = s.guest;
    gc.seed = s.seed + wi;
    if (ws.guest_memory != 0) {
      gc.memory = ws.guest_memory;
    } else if (gc.memory == 0) {
      const auto want = static_cast<std::uint64_t>(static_cast<double>(wr.footprint) *
                                                   s.guest_memory_per_footprint);
      gc.memory = std::max<std::uint64_t>((want + (1ULL << 30) - 1) >> 30 << 30, 2ULL << 30);
    }
    wr.guest_memory = gc.memory;

    std::map<std::tuple<PageSize, double, bool, bool>, GuestLayout> guests;
    std::map<std::tuple<const GuestLayout*, PageSize, bool>, HostLayout> hosts;
    std::vector<std::unique_ptr<Translator>> translators;
    std::vector<ConfigResult> layouts;
    // Per configuration: reference indices (warm-up included) at which its VMM segment goes
    // away (false) or comes back (true), from the host compaction process.
    std::vector<std::vector<std::pair<std::uint64_t, bool>>> toggles;
    for (const ConfigSpec& c : s.configs) {
      GuestLayoutConfig cc = gc;
      cc.page_size = c.guest_pages;
      cc.fragmentation = c.fragmentation.value_or(gc.fragmentation);
      cc.self_ballooning = c.self_ballooning.value_or(gc.self_ballooning);
      cc.hot_unplug_io_gap = c.hot_unplug_io_gap.value_or(gc.hot_unplug_io_gap);
      const auto gkey =
          std::make_tuple(cc.page_size, cc.fragmentation, cc.self_ballooning, cc.hot_unplug_io_gap);
      auto git = guests.find(gkey);
      if (git == guests.end()) {
        git = guests.emplace(gkey, build_guest_layout(workload->regions(), cc)).first;
      }
      const GuestLayout& g = git->second;
      const auto key = std::make_tuple(&g, c.host_pages, c.escape_filter);
      auto hit = hosts.find(key);
      if (hit == hosts.end()) {
        HostLayoutConfig hc = s.host;
        hc.page_size = c.host_pages;
        hc.seed = s.seed + wi;
        if (!c.escape_filter) {
          hc.escaped_pages = 0;
          hc.filter_bits = 0;
        }
        hit = hosts.emplace(key, build_host_layout(g, hc)).first;
      }
      const HostLayout& h = hit->second;
      TranslatorSetup setup = s.mmu;
      setup.mode = c.mode;
      setup.guest_segment = g.segment;
      setup.vmm_segment = h.segment;
      translators.push_back(
          std::make_unique<Translator>(setup, *g.table, h.table.get(), h.filter.get(), &h.escaped));
      ConfigResult layout;
      layout.primary_in_segment = g.primary_bytes ? static_cast<double>(g.primary_in_segment) /
                                                        static_cast<double>(g.primary_bytes)
                                                  : 0;
      layout.largest_free_run = g.largest_free_run;
      layout.vmm_segment_bytes = h.segment.limit - h.segment.base;
      std::vector<std::pair<std::uint64_t, bool>> toggle;
      if ((c.mode == Mode::kDualDirect || c.mode == Mode::kVmmDirect) && h.segment.enabled()) {
        const HostCompactionConfig& hc = c.compaction ? *c.compaction : s.compaction;
        const double refs = static_cast<double>(s.references);
        const double horizon = hc.duration.ns() > 0
                                   ? static_cast<double>(hc.duration.ns())
                                   : refs * ws.base_cycles_per_reference / s.cpu_ghz;
        const HostCompactionTimeline timeline = simulate_host_compaction(
            hc, (h.segment.limit - h.segment.base) >> 12, horizon, s.seed, wi);
        layout.compaction = timeline.stats;
        // The measured references are spread evenly over the horizon: reference i happens at
        // i x horizon / references, and [begin, end) covers references ceil(begin), ...,
        // ceil(end) - 1 on that scale. A range degraded from time 0 covers the warm-up too.
        auto at = [&](double ns) {
          return s.warmup + static_cast<std::uint64_t>(std::ceil(ns / horizon * refs));
        };
        for (const DegradedInterval& d : timeline.degraded) {
          const std::uint64_t b = d.begin_ns <= 0 ? 0 : at(d.begin_ns);
          const std::uint64_t e = at(d.end_ns);
          if (e <= b) continue;
          toggle.emplace_back(b, false);
          toggle.emplace_back(e, true);
        }
      }
      toggles.push_back(std::move(toggle));
      layouts.push_back(layout);
    }
    wr.largest_free_run = layouts.front().largest_free_run;
    wr.primary_in_segment = layouts.front().primary_in_segment;
    for (const auto& entry : hosts) {
      wr.escaped_pages = std::max<std::uint64_t>(wr.escaped_pages, entry.second.escaped.size());
    }

    // Segment changes from the compaction timelines, and the counts made while degraded.
    std::vector<std::uint64_t> boundaries{s.warmup};
    for (const auto& toggle : toggles) {
      for (const auto& entry : toggle) boundaries.push_back(entry.first);
    }
    std::sort(boundaries.begin(), boundaries.end());
    boundaries.erase(std::unique(boundaries.begin(), boundaries.end()), boundaries.end());
    std::vector<std::size_t> next_toggle(translators.size(), 0);
    std::vector<TranslatorStats> degraded_from(translators.size());
    std::vector<bool> degraded(translators.size(), false);
    auto close_degraded = [&](std::size_t ti) {
      const TranslatorStats& now = translators[ti]->stats();
      layouts[ti].degraded_references += now.references - degraded_from[ti].references;
      layouts[ti].degraded_l1_misses += now.l1_misses - degraded_from[ti].l1_misses;
      layouts[ti].degraded_walks += now.walks - degraded_from[ti].walks;
      degraded[ti] = false;
    };
    std::uint64_t index = 0;
    std::size_t next_boundary = 0;
    auto at_boundary = [&] {
      if (index == s.warmup) {
        for (std::size_t ti = 0; ti < translators.size(); ++ti) {
          translators[ti]->reset_stats();
          layouts[ti].degraded_references = 0;
          layouts[ti].degraded_l1_misses = 0;
          layouts[ti].degraded_walks = 0;
          degraded_from[ti] = TranslatorStats{};
        }
      }
      for (std::size_t ti = 0; ti < translators.size(); ++ti) {
        auto& toggle = toggles[ti];
        for (; next_toggle[ti] < toggle.size() && toggle[next_toggle[ti]].first == index;
             ++next_toggle[ti]) {
          const bool active = toggle[next_toggle[ti]].second;
          if (!active && !degraded[ti]) {
            degraded_from[ti] = translators[ti]->stats();
            degraded[ti] = true;
          } else if (active && degraded[ti]) {
            close_degraded(ti);
          }
          translators[ti]->set_vmm_segment_active(active);
        }
      }
      while (next_boundary < boundaries.size() && boundaries[next_boundary] <= index) {
        ++next_boundary;
      }
    };
    at_boundary();
    RefSink sink(s.warmup + s.references, [&](std::span<const Gva> refs) {
      std::size_t i = 0;
      while (i < refs.size()) {
        const std::uint64_t next =
            next_boundary < boundaries.size() ? boundaries[next_boundary] : UINT64_MAX;
        const std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(refs.size() - i, next - index));
        for (auto& t : translators) {
          for (std::size_t k = i; k < i + n; ++k) t->translate(refs[k]);
        }
        i += n;
        index += n;
        at_boundary();
      }
    });
    workload->run(sink);
    sink.finish();
    for (std::size_t ti = 0; ti < translators.size(); ++ti) {
      if (degraded[ti]) close_degraded(ti);
    }

    for (std::size_t ci = 0; ci < s.configs.size(); ++ci) {
      ConfigResult cr = layouts[ci];
      cr.spec = &s.configs[ci];
      cr.stats = translators[ci]->stats();
      wr.configs.push_back(cr);
    }
    // Linear model from the same run: natives and base-virtualized configurations of the same
    // page sizes are its inputs.
    for (auto& cr : wr.configs) {
      const ConfigResult* native = nullptr;
      const ConfigResult* virt = nullptr;
      for (const auto& o : wr.configs) {
        if (o.spec->mode == Mode::kBaseNative && o.spec->guest_pages == cr.spec->guest_pages &&
            !native)
          native = &o;
        if (o.spec->mode == Mode::kBaseVirtualized && o.spec->guest_pages == cr.spec->guest_pages &&
            o.spec->host_pages == cr.spec->host_pages && !virt)
          virt = &o;
      }
      if (!native || native->stats.walks == 0) continue;
      LinearModelInputs in;
      const auto& n = native->stats;
      const double walks = static_cast<double>(n.walks);
      in.native_walks = walks;
      in.native_cycles_per_walk = static_cast<double>(n.walk_cycles) / walks;
      // F from this configuration's own run: its layout decides what the segments cover.
      const double f = segment_share(cr.spec->mode, cr.stats).value_or(0.0);
      in.f_guest_segment = f;
      in.f_vmm_segment = f;
      in.f_both = f;
      const double levels = 4.0 - static_cast<double>(cr.spec->guest_pages);
      in.delta_vmm_direct = (levels + 1) * s.mmu.costs.segment_add_cycles;
      in.delta_guest_direct = s.mmu.costs.segment_add_cycles;
      if (virt && virt->stats.walks > 0) {
        in.virtualized_cycles_per_walk =
            static_cast<double>(virt->stats.walk_cycles) / static_cast<double>(virt->stats.walks);
      } else if (cr.spec->mode == Mode::kVmmDirect || cr.spec->mode == Mode::kGuestDirect) {
        continue;  // C_v unknown
      }
      cr.linear_model_cycles = linear_model_cycles(cr.spec->mode, in);
    }
    results.push_back(std::move(wr));
  }
  return results;
}

}  // namespace memvirt::translation
