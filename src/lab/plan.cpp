#include "lab/plan.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <set>

#include "core/rng.hpp"
#include "workload/trace.hpp"
#include "workload/workload.hpp"

namespace memvirt {
namespace {

constexpr const char* kGuest = "/bin/memvirt-guest";

// Reads the loader's effective configuration (every value with its default filled in) and
// points errors at the scenario's own lines.
class View {
 public:
  View(const Scenario& s, std::string path, YAML::Node effective)
      : s_(s), path_(std::move(path)), node_(std::move(effective)) {}

  [[nodiscard]] bool has(const std::string& key) const { return node_.IsMap() && node_[key]; }
  std::string text(const std::string& key) { return params().string(key, "", ""); }
  Bytes bytes(const std::string& key) { return params().bytes(key, Bytes{}, ""); }
  Duration duration(const std::string& key) { return params().duration(key, Duration{}, ""); }
  std::int64_t integer(const std::string& key) {
    return params().integer(key, 0, "", INT64_MIN, INT64_MAX);
  }
  bool boolean(const std::string& key) { return params().boolean(key, false, ""); }
  View child(const std::string& key) { return View(s_, join(key), node_[key]); }
  std::vector<View> sequence(const std::string& key) {
    std::vector<View> out;
    const YAML::Node seq = node_[key];
    if (!seq.IsSequence()) return out;
    for (std::size_t i = 0; i < seq.size(); ++i) {
      out.emplace_back(s_, fmt::format("{}[{}]", join(key), i), seq[i]);
    }
    return out;
  }
  [[nodiscard]] std::vector<std::string> keys() const {
    std::vector<std::string> k;
    if (node_.IsMap()) {
      for (const auto& kv : node_) k.push_back(kv.first.as<std::string>());
    }
    return k;
  }
  // A Params view over the effective values, for the simulator's own readers.
  Params params() {
    if (!ctx_) ctx_ = s_.params ? s_.params->sibling() : std::make_shared<ParamContext>(s_.file);
    return Params(node_, path_, ctx_);
  }
  [[noreturn]] void fail(const std::string& key, const std::string& message) const {
    const std::string path = join(key);
    throw InputError(s_.place_of(path), "lab backend: " + message);
  }
  [[nodiscard]] std::string join(const std::string& key) const {
    if (key.empty()) return path_;
    return path_.empty() ? key : path_ + "." + key;
  }

 private:
  const Scenario& s_;
  std::string path_;
  YAML::Node node_;
  std::shared_ptr<ParamContext> ctx_;
};

void only_keys(const View& v, const std::set<std::string>& known, const std::string& what) {
  for (const auto& k : v.keys()) {
    if (!known.count(k)) v.fail(k, fmt::format("{} key '{}' has no real counterpart yet", what, k));
  }
}

std::string ns(Duration d) {
  return std::to_string(d.ns());
}

// The guest's command line for one workload entry; extra files go into `files`.
std::string workload_command(const Scenario& s, View w, unsigned vm, unsigned index,
                             const LabPlan& plan,
                             std::vector<std::pair<std::string, std::string>>& files) {
  const std::string type = w.text("type");
  const std::string tag = fmt::format("w{}", index);
  const std::uint64_t seed = splitmix64(s.seed ^ splitmix64(vm * 1024ULL + index + 1));
  // touch_chunk is the simulator's time granularity; real programs touch page by page.
  if (type == "memhog") {
    only_keys(w,
              {"type", "touch_chunk", "size", "start", "hold", "then", "repeat", "interval", "thp"},
              "memhog");
    return fmt::format(
        "{} memhog {} size={} start={} hold={} then={} repeat={} interval={} thp={} seed={}",
        kGuest, tag, w.bytes("size").value(), ns(w.duration("start")), ns(w.duration("hold")),
        w.text("then"), w.integer("repeat"), ns(w.duration("interval")), w.boolean("thp") ? 1 : 0,
        seed);
  }
  if (type == "periodic_alloc") {
    only_keys(w, {"type", "touch_chunk", "period", "amount", "hold", "mean_in_use", "phase"},
              "periodic_alloc");
    const Duration period = w.duration("period");
    // The simulator's own draws for this VM: same stream, same order (phase, then one amount
    // per cycle), so the real guest allocates what the simulated one does.
    Rng rng(s.seed, "workload.periodic_alloc", vm * 1024ULL + index);
    Duration phase{};
    if (w.text("phase") == "random") {
      phase =
          Duration{static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(period.ns())))};
    } else {
      phase = w.duration("phase");
    }
    const SizeDistribution amount = SizeDistribution::from_params(w.child("amount").params());
    const std::int64_t cycles =
        std::max<std::int64_t>(0, (plan.duration - phase).ns()) / period.ns() + 1;
    std::string list;
    for (std::int64_t c = 0; c < cycles; ++c)
      list += std::to_string(amount.draw(rng).value()) + "\n";
    const std::string file = fmt::format("etc/memvirt/{}.amounts", tag);
    files.emplace_back(file, list);
    const std::string hold = w.has("mean_in_use")
                                 ? fmt::format("mean_in_use={}", w.bytes("mean_in_use").value())
                                 : fmt::format("hold={}", ns(w.duration("hold")));
    return fmt::format("{} periodic_alloc {} period={} phase={} amounts=/{} {} seed={}", kGuest,
                       tag, ns(period), ns(phase), file, hold, seed);
  }
  if (type == "trace") {
    only_keys(w, {"type", "touch_chunk", "file", "loop", "phase"}, "trace");
    namespace fs = std::filesystem;
    fs::path path(w.text("file"));
    if (path.is_relative()) {
      path = fs::path(s.params ? s.params->anchor_of(w.join("file")) : s.file).parent_path() / path;
    }
    const Trace t = load_trace(path.string());
    std::string rows;
    for (const auto& p : t.points) rows += fmt::format("{} {}\n", p.time.ns(), p.in_use.value());
    const std::string file = fmt::format("etc/memvirt/{}.trace", tag);
    files.emplace_back(file, rows);
    if (w.text("phase") == "random") w.fail("phase", "a random trace phase is not implemented");
    return fmt::format("{} trace {} file=/{} loop={} phase={} seed={}", kGuest, tag, file,
                       w.boolean("loop") ? 1 : 0, ns(w.duration("phase")), seed);
  }
  if (type == "page_fault1" || type == "page_fault2") {
    only_keys(w, {"type", "touch_chunk", "tasks", "thp", "size", "duration", "start"}, type);
    return fmt::format("{} page_fault {} kind={} tasks={} thp={} size={} duration={} start={}",
                       kGuest, tag, type.back(), w.integer("tasks"), w.boolean("thp") ? 1 : 0,
                       w.bytes("size").value(), ns(w.duration("duration")),
                       ns(w.duration("start")));
  }
  w.fail("type", fmt::format("workload type '{}' has no guest program", type));
}

}  // namespace

LabPlan make_lab_plan(const Scenario& s) {
  LabPlan plan;
  plan.scenario = s.name;
  plan.lab = s.lab;
  View root(s, "", s.effective);

  View ex = root.child("experiment");
  if (s.experiment.type != "fixed") {
    ex.fail("type", fmt::format("experiment type '{}' is simulator-only; the lab runs 'fixed' "
                                "experiments (a set number of guests for a set time)",
                                s.experiment.type));
  }
  plan.duration = s.experiment.duration;
  plan.warmup = s.experiment.warmup;
  plan.sample_interval = s.experiment.sample_interval;

  View vm = root.child("vm");
  plan.memory = s.vm.memory;
  plan.vcpus = s.vm.vcpus;
  if (plan.memory.value() % (1ULL << 20) != 0) vm.fail("memory", "QEMU takes whole MiB of memory");

  // Reclaim mechanisms.
  bool have_balloon = false;
  for (View m : root.sequence("reclaim")) {
    const std::string impl = m.text("impl");
    if (impl == "ksm") {
      only_keys(m,
                {"impl", "pages_to_scan", "sleep_millisecs", "max_page_sharing", "use_zero_pages",
                 "smart_scan", "checksum"},
                "ksm");
      plan.ksm = true;
      for (const char* k : {"pages_to_scan", "sleep_millisecs", "max_page_sharing"}) {
        if (m.has(k)) plan.ksm_settings.emplace_back(k, std::to_string(m.integer(k)));
      }
      for (const char* k : {"use_zero_pages", "smart_scan"}) {
        if (m.has(k)) plan.ksm_settings.emplace_back(k, m.boolean(k) ? "1" : "0");
      }
      if (m.has("checksum") && m.text("checksum") != "xxh64") {
        plan.notes.push_back(fmt::format(
            "reclaim ksm checksum {}: the host kernel's KSM uses its own (xxhash since 6.x)",
            m.text("checksum")));
      }
    } else if (impl == "reporting") {
      only_keys(m, {"impl", "order", "discard", "delay", "capacity"}, "reporting");
      plan.reporting = true;
      plan.reporting_order = static_cast<unsigned>(m.integer("order"));
      if (m.text("discard") != "dontneed") {
        m.fail("discard", "QEMU discards reported pages with MADV_DONTNEED only");
      }
      if (m.duration("delay") != Duration::seconds(2)) {
        m.fail("delay", "PAGE_REPORTING_DELAY is compiled into the guest kernel (2 s)");
      }
      if (m.integer("capacity") != 32) {
        m.fail("capacity", "PAGE_REPORTING_CAPACITY is compiled into the guest kernel (32)");
      }
    } else if (impl == "balloon") {
      only_keys(m, {"impl", "deflate_on_oom", "stats_interval", "targets"}, "balloon");
      have_balloon = true;
      plan.deflate_on_oom = m.boolean("deflate_on_oom");
      plan.stats_interval = m.duration("stats_interval");
      if (plan.stats_interval.ns() % 1'000'000'000 != 0) {
        m.fail("stats_interval", "QEMU polls balloon statistics in whole seconds");
      }
      for (View t : m.sequence("targets")) {
        only_keys(t, {"at", "size"}, "balloon target");
        const BalloonTarget target{t.duration("at"), t.bytes("size")};
        if (target.size >= plan.memory) t.fail("size", "must be below the guest's memory");
        plan.targets.push_back(target);
      }
    } else if (impl == "hinting") {
      m.fail("impl",
             "free page hinting (RFC v8, seed 001) never reached mainline; the lab's stock "
             "kernel has free page reporting instead (impl: reporting)");
    } else {
      m.fail("impl", fmt::format("'{}' needs a patched host and guest kernel; the lab runs "
                                 "stock Debian kernels (ksm, reporting and balloon are real)",
                                 impl));
    }
  }
  (void)have_balloon;

  // The guest kernel's settings that Linux exposes; the rest are fixed by the real kernel.
  View kernel = vm.child("kernel");
  std::vector<std::pair<std::string, std::string>> settings;
  if (plan.reporting) {
    // Written after the balloon driver has registered: 6.1's page_reporting_register()
    // overwrites the boot parameter with pageblock_order.
    settings.emplace_back("/sys/module/page_reporting/parameters/page_reporting_order",
                          std::to_string(plan.reporting_order));
  }
  if (kernel.has("min_free_kbytes") && kernel.integer("min_free_kbytes") != 0) {
    settings.emplace_back("/proc/sys/vm/min_free_kbytes",
                          std::to_string(kernel.integer("min_free_kbytes")));
  }
  if (kernel.has("watermark_scale_factor")) {
    settings.emplace_back("/proc/sys/vm/watermark_scale_factor",
                          std::to_string(kernel.integer("watermark_scale_factor")));
  }
  if (plan.lab.guest_thp != "default") {
    settings.emplace_back("/sys/kernel/mm/transparent_hugepage/enabled", plan.lab.guest_thp);
  }
  // Only the values the file sets: the defaults describe the model, not a request.
  const YAML::Node& source = s.source;
  const YAML::Node given = source.IsMap() && source["vm"] && source["vm"]["kernel"]
                               ? YAML::Node(source["vm"]["kernel"])
                               : YAML::Node();
  // page_alloc.shuffle is a boot parameter; CONFIG_SHUFFLE_PAGE_ALLOCATOR is on in Debian.
  if (kernel.has("shuffle") && kernel.boolean("shuffle"))
    plan.kernel_args.push_back("page_alloc.shuffle=1");
  for (const auto& k : kernel.keys()) {
    if (k != "min_free_kbytes" && k != "watermark_scale_factor" && k != "shuffle" &&
        given.IsMap() && given[k]) {
      plan.notes.push_back(fmt::format("vm.kernel.{}: fixed by the real guest kernel", k));
    }
  }
  if (s.vm.boot.footprint.value() > 0 || s.vm.boot.transient.value() > 0 ||
      s.vm.boot.boot_time.ns() > 0) {
    plan.notes.push_back(
        "vm.boot: the real guest boots its own kernel; footprint, transient and time are "
        "measured, not set");
  }

  // One guest per VM, each with its own archive.
  std::vector<View> workloads = vm.sequence("workloads");
  for (unsigned i = 0; i < s.experiment.vms; ++i) {
    LabVm g;
    g.index = i;
    g.name = fmt::format("vm{}", i);
    g.launch_at = Duration{s.vm.launch_interval.ns() * i};
    g.settings = settings;
    std::string sh = fmt::format(
        "# Guest {} of scenario {}: its settings and workloads, written by memvirt.\n"
        "G={}\n",
        g.name, s.name, kGuest);
    for (const auto& [path, value] : settings)
      sh += fmt::format("$G set init {} {}\n", path, value);
    sh += fmt::format("$G meminfo sys interval={} &\n", ns(plan.lab.guest_sample_interval));
    sh += "$G marker init start\nW=\n";
    for (unsigned w = 0; w < workloads.size(); ++w) {
      sh += workload_command(s, workloads[w], i, w, plan, g.files) + " &\nW=\"$W $!\"\n";
      g.workload_tags.push_back(fmt::format("w{}", w));
    }
    sh += "wait $W\n$G marker init workloads_done\n";
    g.files.emplace_back("etc/memvirt/vm.sh", sh);
    plan.vms.push_back(std::move(g));
  }
  return plan;
}

std::string guest_kernel_command_line(const LabPlan& plan) {
  // panic=-1 with QEMU's -no-reboot: a guest panic ends QEMU at once, which the lab reports.
  std::string cmd = "console=ttyS0 loglevel=4 panic=-1";
  for (const auto& a : plan.kernel_args) cmd += " " + a;
  if (!plan.lab.kernel_args.empty()) cmd += " " + plan.lab.kernel_args;
  return cmd;
}

}  // namespace memvirt
