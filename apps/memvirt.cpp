// The memvirt command: run scenarios, calibrate costs, control real guests.
#include <fmt/format.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <span>
#include <thread>

#include "bench_dedup/dedup_bench.hpp"
#include "bench_dedup/interrupt.hpp"
#include "bench_dedup/report.hpp"
#include "bench_tmem/report.hpp"
#include "bench_tmem/tmem_bench.hpp"
#include "control/daemon.hpp"
#include "control/ksm_control.hpp"
#include "control/limits.hpp"
#include "control/policy_setup.hpp"
#include "core/error.hpp"
#include "core/units.hpp"
#include "lab/compare.hpp"
#include "lab/host_probe.hpp"
#include "lab/image.hpp"
#include "lab/lab_config.hpp"
#include "lab/lab_error.hpp"
#include "lab/lab_run.hpp"
#include "lab/stop_signals.hpp"
#include "real/calibrate.hpp"
#include "real/ksm_state.hpp"
#include "real/ksm_sysfs.hpp"
#include "real/proc_stats.hpp"
#include "record/output_dir.hpp"
#include "report/report.hpp"
#include "scenario/experiment.hpp"
#include "scenario/scenario.hpp"
#include "sweep/sweep.hpp"
#include "sweep/terminal_progress.hpp"
#include "translation/run.hpp"

namespace {

using namespace memvirt;

// A one-line progress bar on stderr, redrawn in place: trial, virtual time, wall-clock ETA.
// A replicated experiment shows each replicate (✓ done, ▸ running, · waiting) and the virtual
// time of them all, and a line for each replicate as it finishes.
class TerminalProgress final : public ExperimentProgress {
 public:
  explicit TerminalProgress(bool enabled) : enabled_(enabled) {}
  void begin_trial(unsigned vms) override {
    vms_ = vms;
    start_ = std::chrono::steady_clock::now();
  }
  void replicate_done(std::size_t index, const Replicate& r) override {
    if (!enabled_) return;
    fmt::print(stderr, "\r\033[K  run {} (seed {}) done: {}, {} sectors read\n", index, r.seed,
               r.run.completion_s ? fmt::format("completed at {:.1f} s", *r.run.completion_s)
                                  : std::string("not completed"),
               r.run.sectors_read);
  }
  void replicates(std::span<const ReplicateState> all) override {
    if (!enabled_) return;
    std::string marks;
    double simulated = 0;
    double total = 0;
    for (const ReplicateState& st : all) {
      marks += st.done ? "✓" : st.started ? "▸" : "·";
      simulated += st.simulated_s;
      total += st.total_s;
    }
    draw(fmt::format("runs {} ", marks), simulated, total);
  }
  void end_trial(const Trial& t) override {
    if (!enabled_) return;
    if (t.slowdown || !t.why_not.empty()) {  // a carry trial
      fmt::print(stderr, "\r\033[K  {} VMs: {} (slowdown {}, peak {:.1f} GiB)\n", t.vms,
                 t.fits ? "carried" : "not carried: " + t.why_not,
                 t.slowdown ? fmt::format("{:+.1f}%", 100 * *t.slowdown) : std::string("-"),
                 t.peak_gib);
      return;
    }
    fmt::print(stderr, "\r\033[K  {} VMs: {} (peak {:.1f} GiB)\n", t.vms,
               t.fits ? "fit"
                      : fmt::format("exceed the budget at {}",
                                    format_duration(Duration::seconds(t.exceeded_at_s))),
               t.peak_gib);
  }
  void update(double simulated_s, double total_s) override {
    if (!enabled_) return;
    draw("", simulated_s, total_s);
  }
  void finish() {
    if (enabled_) fmt::print(stderr, "\r\033[K");
  }

 private:
  void draw(const std::string& prefix, double simulated_s, double total_s) {
    const double frac = total_s > 0 ? std::min(1.0, simulated_s / total_s) : 1.0;
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double eta = frac > 0 ? wall * (1 - frac) / frac : 0;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(frac * kWidth);
    fmt::print(
        stderr, "\r\033[K  {} VMs {}[{}{}] {} / {}  ETA {}", vms_, prefix, std::string(filled, '#'),
        std::string(kWidth - filled, '.'), format_duration(Duration::seconds(simulated_s)),
        format_duration(Duration::seconds(total_s)), format_duration(Duration::seconds(eta)));
    std::fflush(stderr);
  }

  bool enabled_;
  unsigned vms_ = 0;
  std::chrono::steady_clock::time_point start_;
};

// The scenario on real QEMU guests: progress lines with the wall time since the start.
int cmd_run_lab(const Scenario& s, const std::string& out_dir, bool quiet) {
  const StopSignals stop;
  LabRunOptions opt;
  opt.out_dir = out_dir;
  opt.stop_fd = stop.fd();
  opt.notice = [](const std::string& line) { fmt::print(stderr, "memvirt: {}\n", line); };
  const auto t0 = std::chrono::steady_clock::now();
  if (!quiet) {
    opt.log = [t0](const std::string& line) {
      const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      fmt::print(stderr, "  [{:7.1f} s] {}\n", t, line);
    };
  }
  const LabRun r = run_lab(s, opt);
  write_lab_outputs(out_dir, s, r);
  print_summary(std::cout, s, r.result);
  fmt::print("  {:<34} {} ({})\n", "lab:", r.info.value("accel", ""),
             r.info.value("accel_reason", ""));
  for (const auto& note : r.info["notes"]) fmt::print("  note: {}\n", note.get<std::string>());
  for (const auto& p : r.info["cleanup_problems"]) {
    fmt::print(stderr, "memvirt: warning: {}\n", p.get<std::string>());
  }
  fmt::print("  results in {}/ (results.json, timeseries.csv, markers.csv, lab.json, vmN/)\n",
             out_dir);
  return 0;
}

int cmd_lab_image(const ImageOptions& opt, bool probe) {
  const GuestImage img = build_image(opt);
  fmt::print("Guest image in {} ({}):\n", img.dir, img.rebuilt ? "built" : "unchanged");
  fmt::print("  kernel     {} ({})\n", img.kernel, img.kernel_release);
  fmt::print("  initramfs  {} ({} KiB)\n", img.initramfs,
             std::filesystem::file_size(img.initramfs) >> 10);
  std::string mods, optional, builtin;
  for (const auto& m : img.modules) mods += " " + m;
  for (const auto& [m, need] : img.optional_modules) optional += " " + m;
  for (const auto& m : img.builtin_modules) builtin += " " + m;
  fmt::print("  modules   {}\n  optional  {}\n  built in  {}\n  digest     {}\n", mods, optional,
             builtin, img.digest);
  if (probe) {
    std::string reason;
    const std::string accel = choose_accel("auto", "qemu-system-x86_64", img.dir, &reason);
    fmt::print("  accel      {}: {}\n", accel, reason);
  }
  return 0;
}

int cmd_compare(const std::string& a, const std::string& b, std::string png,
                const std::string& column, bool align) {
  const Comparison c = compare_outputs(a, b, column, align);
  print_comparison(std::cout, c);
  if (png.empty()) png = (std::filesystem::path(b) / "compare.png").string();
  plot_comparison(c, png);
  fmt::print("  plot in {}\n", png);
  return 0;
}

int cmd_run(const std::string& file, std::string out_dir, const std::vector<std::string>& overrides,
            bool quiet, const std::string& backend, unsigned jobs) {
  if (is_translation_scenario(file)) {
    return run_translation_scenario(file, overrides, out_dir, quiet);
  }
  const Scenario s = load_scenario(file, overrides, {lab_extension()});
  if (out_dir.empty()) {
    out_dir =
        (std::filesystem::path("out") / (backend == "lab" ? s.name + "-lab" : s.name)).string();
  }
  if (backend == "lab") return cmd_run_lab(s, out_dir, quiet);
  TerminalProgress progress(!quiet && isatty(STDERR_FILENO) != 0);
  const auto t0 = std::chrono::steady_clock::now();
  const ExperimentResult r = run_experiment(s, &progress, jobs);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  progress.finish();
  write_outputs(out_dir, s, r);
  print_summary(std::cout, s, r);
  if (r.replicates.empty()) {
    fmt::print("  {:<34} {:.1f} s wall, {} events, {} MiB model memory\n", "simulator:", wall,
               r.run.events, r.run.simulator_bytes >> 20);
  } else {
    std::uint64_t events = 0;
    std::uint64_t model_bytes = 0;
    for (const Replicate& rep : r.replicates) {
      events += rep.run.events;
      model_bytes = std::max(model_bytes, rep.run.simulator_bytes);
    }
    fmt::print(
        "  {:<34} {:.1f} s wall for {} runs ({} at a time), {} events, up to {} MiB model "
        "memory a run\n",
        "simulator:", wall, r.replicates.size(),
        std::min<std::size_t>(std::max(1U, jobs), r.replicates.size()), events, model_bytes >> 20);
  }
  fmt::print("  results in {}/ (results.json, timeseries.csv, config.yaml)\n", out_dir);
  return 0;
}

struct SweepCommand {
  std::string file, out_dir, memory;
  unsigned jobs = 1;
  bool dry_run = false;
};

// `memvirt sweep`: the points of a sweep file, side by side up to -j and within the memory
// budget (MemAvailable unless --memory says), then its tables. Exit status 1 when a run
// failed, 2 when a result path is in no run's results.json.
int cmd_sweep(const SweepCommand& c, bool quiet) {
  std::uint64_t budget = 0;
  if (!c.memory.empty()) {
    std::string why;
    const auto b = parse_bytes(c.memory, &why);
    if (!b) throw InputError(SourcePlace{"", 0, "--memory"}, why);
    budget = b->value();
  } else {
    // A host whose meminfo cannot say what is available needs the budget given.
    std::optional<Bytes> available;
    std::string why = "no MemAvailable line";
    try {
      available = proc_meminfo().available;
    } catch (const std::runtime_error& e) {
      why = e.what();
    }
    if (!available) {
      throw InputError(SourcePlace{"", 0, "--memory"},
                       fmt::format("the host's memory is unknown ({}): give the budget", why));
    }
    budget = available->value();
  }
  if (c.dry_run) {
    const sweep::SweepSpec spec = sweep::load_sweep(c.file);
    const sweep::SweepPlan plan = sweep::plan_sweep(spec, {lab_extension()});
    fmt::print("{}: {} points, {} runs, every scenario valid\n", c.file, plan.points.size(),
               plan.runs.size());
    for (const sweep::PlannedRun& r : plan.runs) {
      fmt::print("  {:<50} seed {:<20} {} ({})\n", r.folder, r.seed,
                 r.memory.bytes ? fmt::format("{} MiB", *r.memory.bytes >> 20) : "-",
                 r.memory.basis);
    }
    return 0;
  }
  sweep::TerminalSweepProgress progress(!quiet && isatty(STDERR_FILENO) != 0, !quiet);
  sweep::SweepOptions opt;
  opt.out_dir = c.out_dir;
  opt.jobs = c.jobs;
  opt.memory_budget = budget;
  opt.progress = &progress;
  opt.extensions = {lab_extension()};
  const auto t0 = std::chrono::steady_clock::now();
  const sweep::SweepResult r = sweep::run_sweep(c.file, opt);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  progress.finish();
  fmt::print(
      "{}: {} runs: {} run now, {} done before, {} failed; {:.1f} s wall, -j {}, "
      "memory budget {} MiB\n",
      r.spec.name, r.plan.runs.size(), r.pool.ran.size(), r.pool.resumed.size(),
      r.pool.failed.size(), wall, c.jobs, budget >> 20);
  for (const auto& [index, error] : r.pool.failed) {
    fmt::print(stderr, "memvirt: {}: {}\n", r.plan.runs[index].folder, error);
  }
  for (const std::string& note : r.tables.notes) fmt::print(stderr, "memvirt: note: {}\n", note);
  for (const InputError& e : r.tables.problems) fmt::print(stderr, "memvirt: {}\n", e.what());
  std::string files;
  for (const std::string& f : r.tables.written) files += (files.empty() ? "" : ", ") + f;
  fmt::print("  results in {}/ ({}; a folder per run)\n", r.out_dir, files);
  if (!r.pool.failed.empty()) return 1;
  return r.tables.problems.empty() ? 0 : 2;
}

int cmd_calibrate(const std::string& out_file, std::uint64_t pages, int repeats) {
  CalibrationOptions opt;
  opt.pages = pages;
  opt.repeats = repeats;
  fmt::print("Measuring operation costs on this machine ({} pages, median of {}):\n", pages,
             repeats);
  const CostProfile p = calibrate(opt, [](const std::string& line) { fmt::print("  {}\n", line); });
  std::ofstream f(out_file);
  if (!f) throw InputError(SourcePlace{out_file, 0, "-o"}, "cannot write profile");
  f << "# memvirt calibration profile: cost of each operation the simulator charges.\n"
    << "# Name it in a scenario with `calibration: " << out_file << "`.\n"
    << p.to_yaml();
  fmt::print("Wrote {}\n", out_file);
  return 0;
}

// One status line on stderr for the long phases of `bench dedup`, redrawn in place.
class DedupTerminalProgress final : public DedupProgress {
 public:
  explicit DedupTerminalProgress(bool enabled)
      : enabled_(enabled), tty_(isatty(STDERR_FILENO) != 0) {}
  void phase(std::string_view name) override {
    if (enabled_) fmt::print(stderr, "{}{}: running\n", tty_ ? "\r\033[K" : "", name);
  }
  void sample(std::string_view phase, const DedupSample& s) override {
    if (!enabled_ || !tty_) return;
    fmt::print(stderr, "\r\033[K  {}: {:.1f} s, {} pages saved, {:.2f} CPU s, {} scans/passes",
               phase, s.t, s.pages, s.cpu_seconds, s.rounds);
    std::fflush(stderr);
  }
  void phase_done() override {
    if (enabled_ && tty_) fmt::print(stderr, "\r\033[K");
  }
  void note(std::string_view message) override {  // even with --quiet
    fmt::print(stderr, "{}memvirt: {}\n", enabled_ && tty_ ? "\r\033[K" : "", message);
  }

 private:
  bool enabled_;
  bool tty_;
};

int cmd_bench_dedup(const DedupBenchConfig& cfg, const std::string& profile_file,
                    const std::string& out_dir, bool quiet) {
  const InterruptGuard interrupt;  // Ctrl-C stops the phase and puts KSM's settings back
  CostProfile costs;
  std::string source;
  if (!cfg.run_model) {
    source = "not used";
  } else if (profile_file.empty()) {
    // Costs measured now, on this machine, as the model's inputs (never fitted to a result).
    if (!quiet) fmt::print(stderr, "calibrating operation costs\n");
    costs = calibrate(CalibrationOptions{});
    source = fmt::format("calibrated at the start of this run ({})", costs.machine());
  } else {
    costs = CostProfile::load(profile_file);
    source = profile_file;
  }
  DedupTerminalProgress progress(!quiet);
  const DedupBenchResult r = run_dedup_bench(cfg, costs, source, progress);
  print_dedup_report(std::cout, r);
  if (!out_dir.empty()) {
    write_dedup_outputs(out_dir, r);
    fmt::print("\n  results in {}/ (results.json, timeline.csv)\n", out_dir);
  }
  return 0;
}

// `memvirt restore`: the host's KSM settings from the state file a run killed before it could
// put them back left (real/ksm_state.hpp).
int cmd_restore(const std::string& sysfs, const std::string& state_dir) {
  const KsmSysfs fs(sysfs);
  const KsmStateStore store =
      state_dir.empty() ? KsmStateStore::from_environment() : KsmStateStore(state_dir);
  if (const std::optional<std::string> done = recover_ksm_settings(fs, store)) {
    fmt::print("{}\n", *done);
  } else {
    fmt::print("nothing to restore: no state file for {} ({} not found)\n", fs.root().string(),
               store.file_for(fs.root()).string());
  }
  return 0;
}

// One status line on stderr for `bench tmem`'s passes, redrawn in place on a terminal.
class TmemTerminalProgress final : public TmemBenchProgress {
 public:
  explicit TmemTerminalProgress(bool enabled)
      : enabled_(enabled), tty_(isatty(STDERR_FILENO) != 0) {}
  void reading(std::uint64_t pages) override {
    if (!enabled_ || !tty_) return;
    fmt::print(stderr, "\r\033[K  reading files: {} pages", pages);
    std::fflush(stderr);
  }
  void pass(std::string_view compressor, std::string_view what, std::uint64_t done,
            std::uint64_t total) override {
    if (!enabled_) return;
    if (!tty_) {
      // One line per pass where a redrawn line would not show.
      if (done == 0) fmt::print(stderr, "  {}: {} ({} pages)\n", compressor, what, total);
      return;
    }
    fmt::print(stderr, "\r\033[K  {}: {} {}/{} pages", compressor, what, done, total);
    std::fflush(stderr);
  }
  void pass_done() override {
    if (enabled_ && tty_) fmt::print(stderr, "\r\033[K");
  }

 private:
  bool enabled_;
  bool tty_;
};

// Paths named on the command line must exist: one line naming the flag and the path.
void require_paths(const std::vector<std::string>& paths, const std::string& flag) {
  for (const std::string& p : paths) {
    std::error_code ec;
    if (!std::filesystem::exists(p, ec)) {
      throw InputError(SourcePlace{"", 0, flag}, p + ": no such file or directory");
    }
  }
}

// `memvirt control`: every event on stderr as a line, and as a JSON line in the --log file.
class ControlLog final : public ControlSink {
 public:
  // Wall-clock times are the start's plus `t`, so records held back during the start keep
  // their own time.
  explicit ControlLog(const std::string& file) : start_(std::chrono::system_clock::now()) {
    if (file.empty()) return;
    out_.open(file, std::ios::app);
    if (!out_) throw InputError(SourcePlace{"", 0, "--log"}, file + ": cannot be written");
  }
  void record(Duration t, const ControlEvent& e) override {
    fmt::print(stderr, "  [{:8.1f} s] {}\n", t.seconds(), control_event_text(e));
    if (out_.is_open()) {
      const auto at = start_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                   std::chrono::nanoseconds(t.ns()));
      out_ << control_event_json(e, t, at).dump() << "\n";
      out_.flush();  // a line per event even if the daemon is killed
    }
  }

 private:
  std::chrono::system_clock::time_point start_;
  std::ofstream out_;
};

struct ControlCommand {
  std::vector<std::string> sockets;
  std::string dir, policy = "memvirt", min, max, interval, log;
  std::vector<std::string> limits;
  bool dry_run = false, enable_stats_polling = false, ksm = false;
  std::string ksm_sysfs = "/sys/kernel/mm/ksm", state_dir, proc = "/proc";
  std::uint64_t ticks = 0;
  std::int64_t qmp_timeout_ms = 2000;
};

int cmd_control(const ControlCommand& c) {
  if (c.sockets.empty() && c.dir.empty()) {
    throw InputError(SourcePlace{"", 0, "SOCKET"},
                     "name the guests' QMP sockets, or a folder of them with --dir");
  }
  std::optional<Duration> interval;
  if (!c.interval.empty()) {
    std::string why;
    interval = parse_duration(c.interval, &why);
    if (!interval) throw InputError(SourcePlace{"", 0, "--interval"}, c.interval + ": " + why);
  }
  ControlPolicy policy = make_control_policy(c.policy, interval, c.ksm);
  ControlOptions opt;
  opt.sockets = c.sockets;
  opt.dir = c.dir;
  opt.dry_run = c.dry_run;
  opt.enable_stats_polling = c.enable_stats_polling;
  opt.qmp_timeout = std::chrono::milliseconds(c.qmp_timeout_ms);
  opt.ticks = c.ticks;
  opt.limits = GuestLimits::parse(c.min, c.max, c.limits);
  opt.proc = c.proc;
  opt.policy_config = policy.config;
  std::unique_ptr<KsmControl> ksm;
  if (c.ksm) {
    std::optional<KsmStateStore> store;
    if (!c.dry_run) {
      store = c.state_dir.empty() ? KsmStateStore::from_environment() : KsmStateStore(c.state_dir);
    }
    try {
      ksm = std::make_unique<KsmControl>(KsmSysfs(c.ksm_sysfs), std::move(store));
    } catch (const KsmStateError&) {
      throw;
    } catch (const std::runtime_error& e) {
      throw InputError(SourcePlace{"", 0, "--ksm"}, e.what());
    }
  }
  ControlLog log(c.log);
  // Blocked from here on: a stop signal ends the daemon after its current tick.
  const StopSignals stop;
  ControlDaemon daemon(std::move(policy.policy), opt, log, std::move(ksm));
  daemon.start();
  const ControlSummary sum = daemon.run(stop.fd());
  std::string signal;
  signalfd_siginfo info{};
  if (sum.end == ControlSummary::End::kStopped &&
      read(stop.fd(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    const char* abbrev = sigabbrev_np(static_cast<int>(info.ssi_signo));
    signal = fmt::format(" (SIG{})", abbrev != nullptr ? abbrev : "?");
  }
  fmt::print("memvirt control{}: {}\n", signal, control_summary_text(sum, c.dry_run));
  return 0;
}

struct TmemCommand {
  std::vector<std::string> binary, text, source, compressors, classes;
  bool no_defaults = false, library_only = false;
  std::uint64_t pages = 16384, class_pages = 40000, class_file_pages = 0;
  std::string out_dir, profile_out, provenance;
};

int cmd_bench_tmem(const TmemCommand& c, bool quiet) {
  TmemTerminalProgress progress(!quiet);
  if (!c.profile_out.empty()) {
    if (c.classes.empty()) {
      throw InputError(SourcePlace{"", 0, "--class"}, "--profile-out needs at least one --class");
    }
    std::vector<ProfileClassInput> inputs;
    for (const std::string& spec : c.classes) {
      const auto eq = spec.find('=');
      const std::string name = spec.substr(0, eq);
      std::optional<ContentClass> k;
      for (const auto& sp : kContentClassSpellings) {
        if (name == sp.name && sp.value != ContentClass::kUnmeasured &&
            sp.value != ContentClass::kOpaque) {
          k = sp.value;
        }
      }
      if (eq == std::string::npos || !k) {
        throw InputError(SourcePlace{"", 0, "--class"},
                         "'" + spec +
                             "': expected CLASS=LISTFILE, CLASS one of source, header, object, "
                             "binary, compiler_heap, text");
      }
      require_paths({spec.substr(eq + 1)}, "--class " + name);
      inputs.push_back({*k, spec.substr(eq + 1)});
    }
    std::string provenance = "{}";
    if (!c.provenance.empty()) {
      std::ifstream in(c.provenance);
      if (!in) throw InputError(SourcePlace{c.provenance, 0, "--provenance"}, "cannot read");
      const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
      if (!j.is_object()) {
        throw InputError(SourcePlace{c.provenance, 0, "--provenance"}, "not a JSON object");
      }
      provenance = j.dump();
    }
    const CompressionProfile p = measure_compression_profile(
        inputs, c.class_pages, c.class_file_pages, provenance, progress);
    const std::filesystem::path out(c.profile_out);
    const OutputDir dir(out.has_parent_path() ? out.parent_path().string() : ".");
    dir.write(out.filename().string(), [&](std::ostream& f) { f << p.to_json(); });
    fmt::print("{:<15}", "mean ratio");
    for (const auto& in : inputs)
      fmt::print("{:>14}", spelling_of(kContentClassSpellings, in.content_class));
    fmt::print("\n");
    for (const auto& sp : kCompressorSpellings) {
      fmt::print("{:<15}", sp.name);
      for (const auto& in : inputs)
        fmt::print("{:>14.2f}", p.mean_ratio(sp.value, in.content_class));
      fmt::print("\n");
    }
    fmt::print("Wrote {}\n", c.profile_out);
    return 0;
  }
  if (!c.classes.empty()) {
    throw InputError(SourcePlace{"", 0, "--class"}, "only with --profile-out");
  }
  require_paths(c.binary, "--binary");
  require_paths(c.text, "--text");
  require_paths(c.source, "--source");
  TmemBenchConfig cfg;
  cfg.pages_per_group = c.pages;
  cfg.run_pool = !c.library_only;
  if (!c.no_defaults) {
    for (PageGroup& g : default_tmem_groups("")) {
      if (g.name == "binary" && !c.binary.empty()) continue;
      if (g.name == "text" && !c.text.empty()) continue;
      cfg.groups.push_back(std::move(g));
    }
  }
  auto add = [&](const char* name, const std::vector<std::string>& paths, FileFilter f) {
    if (paths.empty()) return;
    PageGroup g{name, {}, f};
    for (const auto& p : paths) g.paths.emplace_back(p);
    cfg.groups.push_back(std::move(g));
  };
  add("binary", c.binary, FileFilter::kElf);
  add("text", c.text, FileFilter::kNotCompressed);
  add("source", c.source, FileFilter::kNotCompressed);
  if (cfg.groups.empty()) {
    throw InputError(SourcePlace{"", 0, "--no-defaults"},
                     "no files to read: name --binary, --text or --source paths");
  }
  if (!c.compressors.empty()) {
    cfg.compressors.clear();
    for (const std::string& name : c.compressors) {
      bool found = false;
      for (const auto& sp : kCompressorSpellings) {
        if (name == sp.name) {
          cfg.compressors.push_back(sp.value);
          found = true;
        }
      }
      if (!found) {
        throw InputError(SourcePlace{"", 0, "--compressor"},
                         "'" + name + "': expected lzo1x-1, lz4 or zstd");
      }
    }
  }
  const TmemBenchResult r = run_tmem_bench(cfg, progress);
  print_tmem_report(std::cout, r);
  if (!c.out_dir.empty()) {
    write_tmem_outputs(c.out_dir, r);
    fmt::print("\n  results in {}/results.json\n", c.out_dir);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"memvirt: memory efficiency of virtualized hosts, simulated and measured"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "memvirt 0.1.0");

  std::string scenario_file, out_dir;
  std::vector<std::string> overrides;
  bool quiet = false;
  CLI::App* run = app.add_subcommand("run", "Run a scenario file and write its results");
  run->add_option("scenario", scenario_file, "Scenario file (YAML)")->required();
  run->add_option("-o,--out", out_dir, "Output folder (default out/<scenario name>)");
  run->add_option("-p,--param", overrides,
                  "Override a scenario value: key.path=value (repeatable)");
  run->add_flag("-q,--quiet", quiet, "No progress bar");
  unsigned jobs = std::max(1U, std::thread::hardware_concurrency());
  run->add_option("-j,--jobs", jobs,
                  "Replicates (experiment.replicates) run at a time, each on a thread of its "
                  "own; the results do not depend on it (default: the machine's cores)")
      ->check(CLI::Range(1U, 4096U))
      ->capture_default_str();
  std::string backend = "sim";
  run->add_option("--backend", backend,
                  "sim: the simulator; lab: real QEMU guests (out/<name>-lab by default)")
      ->check(CLI::IsMember({"sim", "lab"}))
      ->capture_default_str();

  SweepCommand sweep_cmd;
  sweep_cmd.jobs = std::max(1U, std::thread::hardware_concurrency());
  CLI::App* sweep = app.add_subcommand(
      "sweep", "Run every point of a sweep file (resuming), then write its tables and plots");
  sweep->add_option("sweep", sweep_cmd.file, "Sweep file (YAML)")->required();
  sweep->add_option("-o,--out", sweep_cmd.out_dir, "Output folder (default out/<sweep name>)");
  sweep
      ->add_option("-j,--jobs", sweep_cmd.jobs,
                   "Runs at a time, each on a thread of its own; the results do not depend on "
                   "it (default: the machine's cores)")
      ->check(CLI::Range(1U, 4096U))
      ->capture_default_str();
  sweep->add_option("--memory", sweep_cmd.memory,
                    "Memory the runs side by side may take, by their estimates (default: "
                    "MemAvailable when the sweep starts)");
  sweep->add_flag("-n,--dry-run", sweep_cmd.dry_run,
                  "Load and check every point, list the runs and their memory estimates, run "
                  "nothing");
  sweep->add_flag("-q,--quiet", quiet, "No progress on stderr");

  std::string profile_out = "calibration.yaml";
  std::uint64_t pages = 16384;
  int repeats = 5;
  CLI::App* cal = app.add_subcommand(
      "calibrate", "Measure operation costs (fault, zero-fill, madvise, xxh64, memcmp) here");
  cal->add_option("-o,--out", profile_out, "Profile file to write")->capture_default_str();
  cal->add_option("--pages", pages, "Pages per measurement")
      ->check(CLI::Range(256, 1 << 22))
      ->capture_default_str();
  cal->add_option("--repeats", repeats, "Measurements per operation (median kept)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();

  ImageOptions image_opt;
  bool probe = false;
  CLI::App* lab = app.add_subcommand("lab", "The real lab's guest image");
  lab->require_subcommand(1);
  CLI::App* image = lab->add_subcommand(
      "image", "Build the guest image (a Debian kernel, its modules, busybox, memvirt-guest)");
  image_opt.dir = default_image_dir();
  image->add_option("--dir", image_opt.dir, "Image folder")->capture_default_str();
  image->add_option("--kernel", image_opt.kernel,
                    "Guest kernel (default: the newest of --flavour in /boot)");
  image
      ->add_option("--flavour", image_opt.flavour,
                   "Debian kernel: cloud (linux-image-cloud-amd64) or generic (linux-image-amd64, "
                   "with zswap)")
      ->transform(CLI::CheckedTransformer(std::map<std::string, KernelFlavour>{
          {"cloud", KernelFlavour::kCloud}, {"generic", KernelFlavour::kGeneric}}))
      ->capture_default_str();
  image->add_option("--guest", image_opt.guest_programs,
                    "memvirt-guest binary (default: beside memvirt)");
  image->add_flag("--probe", probe, "Also find out whether KVM boots the guest here");

  std::string cmp_a, cmp_b, cmp_png, cmp_column = "host_used_gib";
  CLI::App* cmp = app.add_subcommand(
      "compare", "Compare two output folders (simulator and lab): print and plot host memory");
  cmp->add_option("first", cmp_a, "Output folder, e.g. the simulator's")->required();
  cmp->add_option("second", cmp_b, "Output folder, e.g. the lab's")->required();
  cmp->add_option("-o,--out", cmp_png, "PNG to write (default SECOND/compare.png)");
  cmp->add_option("--column", cmp_column, "timeseries.csv column")->capture_default_str();
  bool cmp_align = false;
  cmp->add_flag("--align", cmp_align,
                "Shift the simulator's run so its workloads start when the lab guest's do");

  DedupBenchConfig dedup_cfg;
  std::string dedup_size = "256MiB", dedup_profile, dedup_out;
  double merge_period_s = 1, timeout_s = 600;
  std::int64_t rewrite_ms = 100, sample_ms = 100;
  bool skip_ksm = false, skip_model = false, skip_pageone = false, no_smart_scan = false;
  CLI::App* bench = app.add_subcommand("bench", "Measure memvirt's engines on real memory");
  bench->require_subcommand(1);
  CLI::App* dedup = bench->add_subcommand(
      "dedup", "Linux KSM, memvirt's KSM model and memvirt's PageONE on one content mix");
  dedup->add_option("--size", dedup_size, "Memory to fill")->capture_default_str();
  dedup->add_option("--regions", dedup_cfg.mix.regions, "Regions holding the common contents")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  dedup->add_option("--shared", dedup_cfg.mix.shared, "Share of pages with common contents")
      ->capture_default_str();
  dedup->add_option("--zero", dedup_cfg.mix.zero, "Share of pages of zeros")->capture_default_str();
  dedup
      ->add_option("--rewritten", dedup_cfg.mix.rewritten,
                   "Share of pages a writer thread rewrites while the engines scan")
      ->capture_default_str();
  dedup->add_option("--rewrite-ms", rewrite_ms, "The writer rewrites each of its pages this often")
      ->check(CLI::Range(0, 3'600'000))
      ->capture_default_str();
  dedup->add_option("--seed", dedup_cfg.mix.seed, "Seed of the contents and their layout")
      ->capture_default_str();
  dedup->add_option("--pages-to-scan", dedup_cfg.ksm.pages_to_scan, "KSM pages_to_scan")
      ->check(CLI::Range(1, 100'000'000))
      ->capture_default_str();
  dedup->add_option("--sleep-ms", dedup_cfg.ksm.sleep_millisecs, "KSM sleep_millisecs")
      ->check(CLI::Range(0, 3'600'000))
      ->capture_default_str();
  dedup->add_flag("--use-zero-pages", dedup_cfg.ksm.use_zero_pages, "KSM use_zero_pages = 1");
  dedup->add_flag("--no-smart-scan", no_smart_scan, "KSM smart_scan = 0");
  dedup->add_option("--threads", dedup_cfg.work_threads, "PageONE work threads")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  dedup->add_option("--merge-period", merge_period_s, "PageONE seconds between passes")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  dedup
      ->add_option("--stable-periods", dedup_cfg.stable_periods,
                   "PageONE merges pages unchanged for this many periods")
      ->check(CLI::Range(1, 3))
      ->capture_default_str();
  dedup->add_option("--sample-ms", sample_ms, "Sampling interval")
      ->check(CLI::Range(10, 60'000))
      ->capture_default_str();
  dedup
      ->add_option("--steady-tolerance", dedup_cfg.rule.tolerance,
                   "Steady state: pages saved stay within this share of the first sample")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  dedup
      ->add_option("--steady-samples", dedup_cfg.rule.samples,
                   "Steady state: for this many consecutive samples")
      ->check(CLI::Range(1, 100'000))
      ->capture_default_str();
  dedup->add_option("--timeout", timeout_s, "Seconds a phase may run without a steady state")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
  dedup->add_option("--profile", dedup_profile,
                    "Cost profile for the model (default: calibrate at the start of the run)");
  dedup->add_flag("--skip-ksm", skip_ksm, "Do not run Linux KSM");
  dedup->add_flag("--skip-model", skip_model, "Do not run the KSM model");
  dedup->add_flag("--skip-pageone", skip_pageone, "Do not run PageONE");
  dedup->add_option("--ksm-sysfs", dedup_cfg.ksm_sysfs, "KSM's sysfs folder")
      ->capture_default_str();
  // For tests with a fake KSM folder: where ksmd's pid and CPU time are read (hidden).
  dedup->add_option("--proc", dedup_cfg.proc, "The proc file system's folder")->group("");
  dedup->add_option("-o,--out", dedup_out, "Output folder for results.json and timeline.csv");
  dedup->add_flag("-q,--quiet", quiet, "No progress on stderr");

  std::string restore_sysfs = "/sys/kernel/mm/ksm", restore_state_dir;
  CLI::App* restore = app.add_subcommand(
      "restore",
      "Put back the host's KSM settings that a killed run left changed (from its state file)");
  restore->add_option("--ksm-sysfs", restore_sysfs, "KSM's sysfs folder")->capture_default_str();
  restore->add_option("--state-dir", restore_state_dir,
                      "Folder of the state file (default $MEMVIRT_STATE_DIR, /var/lib/memvirt "
                      "as root, else $XDG_STATE_HOME/memvirt or ~/.local/state/memvirt)");

  TmemCommand tmem_cmd;
  CLI::App* tmem = bench->add_subcommand(
      "tmem",
      "Real files in a real tmem pool with each compressor, beside the compressor library alone");
  tmem->add_option("--binary", tmem_cmd.binary,
                   "Executables and libraries to read (ELF files; default /usr/bin, "
                   "/usr/lib/x86_64-linux-gnu)");
  tmem->add_option("--text", tmem_cmd.text,
                   "Text to read (default /usr/share/doc, /usr/share/common-licenses)");
  tmem->add_option("--source", tmem_cmd.source, "A source tree to read, e.g. an unpacked Linux");
  tmem->add_flag("--no-defaults", tmem_cmd.no_defaults, "Read only the paths named");
  tmem->add_option("--pages", tmem_cmd.pages, "Pages read per group (binary, text, source)")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  tmem->add_option("--compressor", tmem_cmd.compressors, "lzo1x-1, lz4 or zstd (default all)");
  tmem->add_flag("--library-only", tmem_cmd.library_only, "Only the compressor library, no pool");
  tmem->add_option("-o,--out", tmem_cmd.out_dir, "Output folder for results.json");
  tmem->add_option("--profile-out", tmem_cmd.profile_out,
                   "Measure a compression profile (memvirt-compression-profile/1) instead");
  tmem->add_option("--class", tmem_cmd.classes,
                   "With --profile-out: CLASS=LISTFILE, the files of one content class");
  tmem->add_option("--class-pages", tmem_cmd.class_pages,
                   "With --profile-out: pages per class, every n-th page beyond")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  tmem->add_option("--class-file-pages", tmem_cmd.class_file_pages,
                   "With --profile-out: every k-th page of a longer file, about this many (0: all)")
      ->capture_default_str();
  tmem->add_option("--provenance", tmem_cmd.provenance,
                   "With --profile-out: JSON object of where the pages came from");
  tmem->add_flag("-q,--quiet", quiet, "No progress on stderr");

  ControlCommand control_cmd;
  CLI::App* control = app.add_subcommand(
      "control",
      "Run a memory policy on running QEMU guests over their QMP sockets: balloon targets and, "
      "with --ksm, host KSM");
  control->add_option("sockets", control_cmd.sockets, "QMP sockets of running guests");
  control->add_option("--dir", control_cmd.dir,
                      "A folder of QMP sockets (every socket or *.sock), scanned again each tick");
  control->add_option("--policy", control_cmd.policy, "memvirt (memvirt's controller) or mom")
      ->check(CLI::IsMember(control_policy_names()))
      ->capture_default_str();
  control->add_option("--min", control_cmd.min,
                      "Least memory a guest may be left: a size or a share of its memory "
                      "(default 50%)");
  control->add_option("--max", control_cmd.max,
                      "Most memory a guest is given: a size or a share (default 100%)");
  control->add_option("--limit", control_cmd.limits,
                      "NAME=MIN:MAX bounds of one guest (either may be empty), by its QEMU "
                      "-name, else its socket's file name without .sock (repeatable)");
  control->add_option("--interval", control_cmd.interval,
                      "The policy's sampling interval (memvirt: tick, 1s; mom: monitor_interval, "
                      "5s)");
  control->add_flag("--dry-run", control_cmd.dry_run,
                    "Observe and decide; print every action it would take; change nothing");
  control->add_flag("--enable-stats-polling", control_cmd.enable_stats_polling,
                    "In a dry run, turn QEMU's stats polling on where it is off (and off at the "
                    "end)");
  control->add_option("--log", control_cmd.log,
                      "Append every event as a JSON line to this file (and print it on stderr)");
  control->add_flag("--ksm", control_cmd.ksm,
                    "Let the policy drive host KSM; the host's settings come back at the end");
  control->add_option("--ksm-sysfs", control_cmd.ksm_sysfs, "KSM's sysfs folder")
      ->capture_default_str();
  control->add_option("--state-dir", control_cmd.state_dir,
                      "Folder of the KSM state file (as for memvirt restore)");
  control->add_option("--ticks", control_cmd.ticks,
                      "Stop after this many ticks (default: on a "
                      "stop signal)");
  // For tests with a fake /proc, and slow hosts (hidden).
  control->add_option("--proc", control_cmd.proc, "The proc file system's folder")->group("");
  control->add_option("--qmp-timeout", control_cmd.qmp_timeout_ms, "Milliseconds per QMP command")
      ->check(CLI::Range(10, 600'000))
      ->group("");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  try {
    if (*run) return cmd_run(scenario_file, out_dir, overrides, quiet, backend, jobs);
    if (*sweep) return cmd_sweep(sweep_cmd, quiet);
    if (*image) return cmd_lab_image(image_opt, probe);
    if (*cmp) return cmd_compare(cmp_a, cmp_b, cmp_png, cmp_column, cmp_align);
    if (*cal) return cmd_calibrate(profile_out, pages, repeats);
    if (*tmem) return cmd_bench_tmem(tmem_cmd, quiet);
    if (*restore) return cmd_restore(restore_sysfs, restore_state_dir);
    if (*control) return cmd_control(control_cmd);
    if (*dedup) {
      std::string why;
      const auto size = parse_bytes(dedup_size, &why);
      if (!size) throw InputError(SourcePlace{"", 0, "--size"}, why);
      dedup_cfg.mix.total = *size;
      dedup_cfg.rewrite_period = Duration::millis(rewrite_ms);
      dedup_cfg.sample_interval = Duration::millis(sample_ms);
      dedup_cfg.merge_period = Duration::seconds(merge_period_s);
      dedup_cfg.timeout = Duration::seconds(timeout_s);
      dedup_cfg.ksm.smart_scan = !no_smart_scan;
      dedup_cfg.run_real_ksm = !skip_ksm;
      dedup_cfg.run_model = !skip_model;
      dedup_cfg.run_pageone = !skip_pageone;
      return cmd_bench_dedup(dedup_cfg, dedup_profile, dedup_out, quiet);
    }
  } catch (const Interrupted&) {
    fmt::print(stderr, "\nmemvirt: interrupted; what the run changed is put back\n");
    return 130;
  } catch (const InputError& e) {
    fmt::print(stderr, "memvirt: {}\n", e.what());
    return 2;
  } catch (const KsmStateError& e) {
    fmt::print(stderr, "memvirt: {}\n", e.what());
    return 2;
  } catch (const LabError& e) {
    fmt::print(stderr, "memvirt: lab: {}\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    fmt::print(stderr, "memvirt: internal error: {}\n", e.what());
    return 1;
  }
  return 0;
}
