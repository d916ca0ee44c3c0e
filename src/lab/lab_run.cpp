#include "lab/lab_run.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <thread>

#include "control/qmp.hpp"
#include "core/units.hpp"
#include "lab/disk_image.hpp"
#include "lab/files.hpp"
#include "lab/guest_samples.hpp"
#include "lab/host_probe.hpp"
#include "lab/image.hpp"
#include "lab/ksm_host.hpp"
#include "lab/lab_error.hpp"
#include "lab/plan.hpp"
#include "lab/process.hpp"
#include "lab/qemu_command.hpp"
#include "real/proc_stats.hpp"
#include "record/run_recorder.hpp"
#include "report/report.hpp"

namespace memvirt {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

std::chrono::milliseconds millis(Duration d) {
  return std::chrono::milliseconds(std::max<std::int64_t>(1, d.ns() / 1'000'000));
}

// The host's /proc/meminfo. The lab needs MemAvailable, which every kernel since 3.14 has.
ProcMeminfo host_meminfo() {
  ProcMeminfo m;
  try {
    m = proc_meminfo();
  } catch (const std::runtime_error& e) {
    throw LabError(e.what());
  }
  if (!m.available) throw LabError("/proc/meminfo: no MemAvailable line (Linux 3.14 and later)");
  return m;
}

// The last non-empty line of a text file, for error messages; empty when none.
std::string last_line(const std::string& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) last = line;
  }
  return last;
}

// A name in the abstract UNIX socket namespace ("@..."), unique to this run and guest: no
// file to leave behind, and no sockaddr_un length limit on deep output folders.
std::string qmp_socket_name(const std::string& vm) {
  return fmt::format("@memvirt-qmp-{}-{}-{}-{}", getpid(), gettid(), vm,
                     Clock::now().time_since_epoch().count());
}

std::string qemu_version(const std::string& qemu, const std::string& log_file) {
  try {
    ChildProcess p("qemu --version", {qemu, "--version"}, log_file);
    std::string out;
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
      pollfd f{p.stdout_fd(), POLLIN, 0};
      if (poll(&f, 1, 100) > 0) {
        char buf[512];
        const ssize_t n = read(p.stdout_fd(), buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
      }
    }
    return out.substr(0, out.find('\n'));
  } catch (const LabError&) {
    return {};
  }
}

// The guest's latest meminfo marker (guest/meminfo.cpp): bytes, and counters since boot.
struct GuestMeminfo {
  std::uint64_t free = 0, committed = 0, available = 0, cached = 0, dirty = 0, writeback = 0;
  std::uint64_t active_file = 0, inactive_file = 0, active_anon = 0, inactive_anon = 0;
  std::uint64_t swap_total = 0, swap_free = 0;
  std::uint64_t major_faults = 0, refaults = 0, sectors_read = 0, sectors_written = 0;
  GuestSwapCounters swap;  // read strictly: a garbled value is an error, not 0
  std::uint64_t cpu_busy_ms = 0, cpu_total_ms = 0;
  // CPU time between the two latest markers, summed over the vCPUs.
  std::uint64_t busy_delta_ms = 0, total_delta_ms = 0;

  // From a marker's fields; `previous` gives the CPU deltas.
  static GuestMeminfo from(const Marker& m, const GuestMeminfo& previous, bool have_previous) {
    // A missing or garbled field (a kernel message cut into the line) reads as 0.
    auto n = [&](const char* key) -> std::uint64_t {
      const std::string v = m.field(key);
      return std::strtoull(v.c_str(), nullptr, 10);
    };
    GuestMeminfo g;
    g.free = n("free");
    g.committed = n("committed");
    g.available = n("avail");
    g.cached = n("cached");
    g.dirty = n("dirty");
    g.writeback = n("writeback");
    g.active_file = n("active_file");
    g.inactive_file = n("inactive_file");
    g.active_anon = n("active_anon");
    g.inactive_anon = n("inactive_anon");
    g.swap_total = n("swap_total");
    g.swap_free = n("swap_free");
    g.major_faults = n("majflt");
    g.refaults = n("refault_file");
    g.sectors_read = n("rd_sectors");
    g.sectors_written = n("wr_sectors");
    g.swap = GuestSwapCounters::parse(m);
    g.cpu_busy_ms = n("cpu_busy_ms");
    g.cpu_total_ms = n("cpu_total_ms");
    if (have_previous && g.cpu_total_ms > previous.cpu_total_ms) {
      g.busy_delta_ms = g.cpu_busy_ms - std::min(g.cpu_busy_ms, previous.cpu_busy_ms);
      g.total_delta_ms = g.cpu_total_ms - previous.cpu_total_ms;
    }
    return g;
  }
};

// One guest: its QEMU, QMP connection, console and what it has said.
struct Guest {
  LabVm plan;
  std::string dir, console_path, qemu_log, qmp_socket, initrd, disk;
  std::unique_ptr<ChildProcess> qemu;
  std::optional<QmpClient> qmp;
  std::ofstream console;
  std::string line;  // console text after the last newline
  double launched_s = -1;
  std::optional<double> first_marker_s, last_marker_s, start_s, workloads_done_s;
  std::size_t next_target = 0;
  GuestMeminfo meminfo;  // latest
  bool have_meminfo = false;
  std::optional<GuestZswapSample> zswap;  // latest
  double cpu_s = 0;
  std::uint64_t ram_peak = 0, rss_peak = 0;
  std::uint64_t balloon_actual = 0;
  std::string exit;
  std::vector<std::string> oom_lines;
  [[nodiscard]] bool launched() const { return launched_s >= 0; }
  [[nodiscard]] bool alive() const { return qemu && qemu->running(); }
};

class Session {
 public:
  Session(const Scenario& s, const LabRunOptions& opt) : s_(s), opt_(opt), plan_(make_lab_plan(s)) {
    for (const std::string_view c : kGuestColumns) recorder_.add_column(std::string(c));
    if (plan_.zswap_entry) {
      // The simulator's names (Zswap::visit_columns, prefixed with the entry's place).
      for (const char* c : {"zswap_stored_pages", "zswap_pool_pages"}) {
        recorder_.add_column(fmt::format("reclaim[{}].{}", *plan_.zswap_entry, c));
      }
    }
  }
  ~Session() { cleanup(); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  LabRun run();

 private:
  void log(const std::string& m) const {
    if (opt_.log) opt_.log(m);
  }
  [[nodiscard]] double elapsed() const {
    return std::chrono::duration<double>(Clock::now() - t0_).count();
  }
  void prepare();
  void launch(Guest& g);
  void read_console(Guest& g);
  void on_line(Guest& g, const std::string& line);
  void on_marker(Guest& g, Marker m);
  void check(Guest& g, double now);
  void sample(double now);
  void shutdown();
  void cleanup() noexcept;
  [[noreturn]] void fail_guest(const Guest& g, const std::string& what) const {
    throw LabError(fmt::format("{}: {}", g.plan.name, what));
  }

  const Scenario& s_;
  LabRunOptions opt_;
  LabPlan plan_;
  std::string qemu_;
  std::string accel_, accel_reason_;
  GuestImage image_;
  std::unique_ptr<KsmHost> ksm_;  // destroyed after the guests (declared before them)
  std::vector<std::unique_ptr<Guest>> guests_;
  Clock::time_point t0_;
  std::optional<int> ksmd_;
  double ksmd_cpu0_ = 0;
  RunRecorder recorder_{plan_.warmup,
                        {"qemu_rss_gib", "guest_ram_rss_gib", "host_free_gib", "host_available_gib",
                         "ksm_pages_shared", "ksm_pages_sharing", "ksm_pages_unshared",
                         "ksm_full_scans", "qemu_cpu_s", "ksmd_cpu_s", "balloon_gib",
                         "guest_ram_thp_gib", "ksm_zero_pages", "ksm_pages_scanned"}};
  std::vector<Marker> markers_;
  std::vector<std::string> cleanup_problems_;
  bool cleaned_ = false;
};

void Session::prepare() {
  qemu_ = ChildProcess::find_program(plan_.lab.qemu);
  if (qemu_.empty()) {
    throw LabError(
        fmt::format("QEMU '{}' not found: install qemu-system-x86 (bash "
                    "scripts/setup.sh) or set lab.qemu",
                    plan_.lab.qemu));
  }
  ImageOptions io;
  io.dir = plan_.lab.image.empty() ? default_image_dir() : plan_.lab.image;
  io.kernel = plan_.lab.kernel;
  io.flavour = plan_.kernel_flavour;
  io.guest_programs = opt_.guest_programs;
  image_ = build_image(io);
  log(fmt::format("image {} ({}, {}{})", image_.dir, image_.kernel_release, image_.digest,
                  image_.rebuilt ? ", rebuilt" : ""));
  if (const std::string missing = missing_guest_module(plan_, image_); !missing.empty()) {
    throw LabError(missing);
  }
  accel_ = choose_accel(plan_.lab.accel, qemu_, image_.dir, &accel_reason_);
  log(fmt::format("accelerator {}: {}", accel_, accel_reason_));

  const ProcMeminfo host = host_meminfo();
  const double need =
      static_cast<double>(plan_.memory.value()) * static_cast<double>(plan_.vms.size());
  if (need > 0.9 * static_cast<double>(host.available->value())) {
    throw LabError(
        fmt::format("{} guests of {} need {:.1f} GiB; the host has {:.1f} GiB "
                    "available",
                    plan_.vms.size(), format_bytes(plan_.memory), need / kGiB,
                    static_cast<double>(host.available->value()) / kGiB));
  }

  std::error_code ec;
  fs::create_directories(opt_.out_dir, ec);
  if (ec) throw LabError(fmt::format("cannot create {}: {}", opt_.out_dir, ec.message()));
  for (const LabVm& v : plan_.vms) {
    auto g = std::make_unique<Guest>();
    g->plan = v;
    g->dir = (fs::path(opt_.out_dir) / v.name).string();
    fs::create_directories(g->dir, ec);
    if (ec) throw LabError(fmt::format("cannot create {}: {}", g->dir, ec.message()));
    g->console_path = g->dir + "/console.log";
    g->qemu_log = g->dir + "/qemu.log";
    g->initrd = g->dir + "/initramfs.cpio";
    g->qmp_socket = qmp_socket_name(v.name);
    fs::remove(g->qemu_log, ec);
    guests_.push_back(std::move(g));
  }
  // Each guest's disk: the image for its files, built once into the image folder's cache,
  // then copied for the guest (which writes to it), before the run's clock starts.
  for (auto& gp : guests_) {
    Guest& g = *gp;
    if (!g.plan.disk) continue;
    const auto t = Clock::now();
    const std::string base = cached_disk_image(*g.plan.disk, (fs::path(io.dir) / "disks").string());
    g.disk = g.dir + "/disk.img";
    copy_sparse(base, g.disk);
    log(fmt::format("{}: disk {} ({} files, {} swap) from {} in {:.1f} s", g.plan.name,
                    format_bytes(Bytes{g.plan.disk->layout.size}), g.plan.disk->files.size(),
                    format_bytes(Bytes{g.plan.disk->layout.swap_bytes}), base,
                    std::chrono::duration<double>(Clock::now() - t).count()));
  }
  if (plan_.ksm) {
    // KSM is host-wide: another program merging at the same time shows in its counters.
    const KsmCounters before = read_ksm_counters();
    if (before.pages_shared + before.pages_sharing + before.pages_unshared > 0) {
      plan_.notes.push_back(fmt::format(
          "host KSM already held pages of other processes at the start ({} shared, {} sharing): "
          "the ksm_ columns include them; host_used_gib (the guests' own PSS) does not",
          before.pages_shared, before.pages_sharing));
    }
    ksm_ = std::make_unique<KsmHost>();
    if (const std::optional<std::string> recovered = ksm_->apply(plan_.ksm_settings)) {
      if (opt_.notice) opt_.notice(*recovered);
      plan_.notes.push_back(*recovered);
    }
    ksmd_ = proc_find_comm("ksmd");
    if (ksmd_) ksmd_cpu0_ = proc_cpu_seconds(*ksmd_).value_or(0);
  }
}

void Session::launch(Guest& g) {
  // The guest's initramfs: the image's, then the guest's own archive (the kernel unpacks
  // both; files of the second are added to the first's).
  write_file_atomic(g.initrd, read_file(image_.initramfs) + guest_archive(g.plan.files));
  g.console.open(g.console_path, std::ios::trunc);
  QemuLaunch l;
  l.qemu = qemu_;
  l.accel = accel_;
  l.name = g.plan.name;
  l.memory = plan_.memory;
  l.vcpus = plan_.vcpus;
  l.kernel = image_.kernel;
  l.initrd = g.initrd;
  l.append = guest_kernel_command_line(plan_);
  l.qmp_socket = g.qmp_socket;
  l.reporting = plan_.reporting;
  l.deflate_on_oom = plan_.deflate_on_oom;
  l.mem_merge = plan_.ksm;
  l.disk = g.disk;
  l.disk_cache = plan_.lab.disk_cache;
  l.disk_bps = plan_.disk_bandwidth;
  const std::vector<std::string> argv = qemu_argv(l);
  {
    std::ofstream cmd(g.dir + "/qemu.cmd");
    for (const auto& a : argv) cmd << a << "\n";
  }
  g.launched_s = elapsed();
  g.qemu = std::make_unique<ChildProcess>(g.plan.name, argv, g.qemu_log);
  log(fmt::format("{}: QEMU started (pid {}, {}, {})", g.plan.name, g.qemu->pid(), accel_,
                  format_bytes(plan_.memory)));
  try {
    // Short attempts, so a QEMU that exits at start is reported at once, not at the timeout.
    const auto deadline = Clock::now() + millis(plan_.lab.qmp_timeout);
    while (!g.qmp) {
      if (auto ex = g.qemu->poll_exit()) {
        const std::string why = last_line(g.qemu_log);
        fail_guest(g,
                   fmt::format("QEMU exited at start ({}){}", *ex, why.empty() ? "" : ": " + why));
      }
      try {
        g.qmp.emplace(
            QmpClient::connect_unix(g.qmp_socket, g.plan.name, std::chrono::milliseconds(200)));
      } catch (const QmpError&) {
        if (Clock::now() >= deadline) throw;
      }
    }
    if (plan_.stats_interval.ns() > 0) {
      g.qmp->execute("qom-set",
                     {{"path", "/machine/peripheral/balloon0"},
                      {"property", "guest-stats-polling-interval"},
                      {"value", plan_.stats_interval.ns() / 1'000'000'000}},
                     millis(plan_.lab.qmp_timeout));
    }
  } catch (const QmpError& e) {
    if (auto ex = g.qemu->poll_exit()) {
      fail_guest(g, fmt::format("QEMU exited at start ({}): {}", *ex, last_line(g.qemu_log)));
    }
    throw LabError(e.what());
  }
}

void Session::read_console(Guest& g) {
  if (!g.qemu || g.qemu->stdout_fd() < 0) return;
  char buf[8192];
  for (;;) {
    const ssize_t n = read(g.qemu->stdout_fd(), buf, sizeof buf);
    if (n > 0) {
      g.console.write(buf, n);
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] == '\n') {
          on_line(g, g.line);
          g.line.clear();
        } else {
          g.line.push_back(buf[i]);
        }
      }
      continue;
    }
    if (n == 0) g.qemu->close_stdout();
    break;
  }
  g.console.flush();
}

void Session::on_line(Guest& g, const std::string& line) {
  if (line.find("Kernel panic") != std::string::npos) {
    fail_guest(g, fmt::format("guest kernel panic: {} (see {})", line, g.console_path));
  }
  if (line.find("Out of memory: Killed process") != std::string::npos) {
    g.oom_lines.push_back(line);
    log(fmt::format("{}: guest OOM kill: {}", g.plan.name, line));
  }
  if (auto m = parse_marker(line)) on_marker(g, std::move(*m));
}

void Session::on_marker(Guest& g, Marker m) {
  const double now = elapsed();
  m.host_s = now;
  m.vm = g.plan.index;
  if (!g.first_marker_s) {
    g.first_marker_s = now;
    log(fmt::format("{}: guest booted to init in {:.1f} s", g.plan.name, now - g.launched_s));
  }
  g.last_marker_s = now;
  if (m.event == "error") {
    fail_guest(g, fmt::format("guest {} reported an error: {}", m.tag, m.field("what")));
  }
  if (m.event == "meminfo") {
    try {
      g.meminfo = GuestMeminfo::from(m, g.meminfo, g.have_meminfo);
    } catch (const LabError& e) {
      fail_guest(g, e.what());
    }
    g.have_meminfo = true;
  } else if (m.event == "zswap") {
    try {
      g.zswap = GuestZswapSample::parse(m);
    } catch (const LabError& e) {
      fail_guest(g, e.what());
    }
  } else if (m.event == "set") {
    const std::string path = m.field("path");
    const std::string value = m.field("value");
    for (const auto& [p, want] : g.plan.settings) {
      if (p != path) continue;
      const bool ok = value == want || value.find("[" + want + "]") != std::string::npos;
      if (!ok) {
        fail_guest(g, fmt::format("guest setting {} reads back '{}' after writing '{}'", path,
                                  value, want));
      }
    }
  } else if (m.tag == "init" && m.event == "start") {
    g.start_s = now;
  } else if (m.tag == "init" && m.event == "workloads_done") {
    g.workloads_done_s = now;
  }
  if (m.event != "meminfo" && m.event != "zswap" && m.event != "progress") {
    std::string fields;
    for (const auto& [k, v] : m.fields) fields += fmt::format(" {}={}", k, v);
    log(fmt::format("{}: {} {}{}", g.plan.name, m.tag, m.event, fields));
  }
  markers_.push_back(std::move(m));
}

void Session::check(Guest& g, double now) {
  if (!g.launched()) return;
  if (auto ex = g.qemu->poll_exit()) {
    read_console(g);
    std::string why = last_line(g.qemu_log);
    const std::string console = g.line.empty() ? last_line(g.console_path) : g.line;
    fail_guest(g,
               fmt::format("QEMU exited early ({}){}{}; see {}", *ex, why.empty() ? "" : ": " + why,
                           console.empty() ? "" : "; guest console: " + console, g.dir));
  }
  if (!g.first_marker_s && now - g.launched_s > plan_.lab.boot_timeout.seconds()) {
    fail_guest(g, fmt::format("the guest printed no marker within {} of launch ({}); see {}",
                              format_duration(plan_.lab.boot_timeout), accel_, g.console_path));
  }
  if (g.last_marker_s && now - *g.last_marker_s > plan_.lab.silence_timeout.seconds()) {
    fail_guest(g, fmt::format("the guest has printed no marker for {} (hung?); see {}",
                              format_duration(plan_.lab.silence_timeout), g.console_path));
  }
}

void Session::sample(double now) {
  double pss = 0, priv = 0, ram_rss = 0, ram_thp = 0, qemu_rss = 0, cpu = 0, in_use = 0, free = 0,
         committed = 0, balloon = 0;
  // kGuestColumns, summed over the guests that have sent a meminfo marker.
  std::vector<double> guest(std::size(kGuestColumns), 0.0);
  double busy_ms = 0, total_ms = 0;
  double zswap_stored = 0, zswap_pool = 0;
  unsigned alive = 0;
  for (auto& gp : guests_) {
    Guest& g = *gp;
    if (!g.alive()) {
      cpu += g.cpu_s;
      continue;
    }
    ++alive;
    const auto ram = guest_ram_usage(g.qemu->pid(), plan_.memory);
    if (ram) {
      pss += static_cast<double>(ram->pss);
      priv += static_cast<double>(ram->private_bytes);
      ram_rss += static_cast<double>(ram->rss);
      ram_thp += static_cast<double>(ram->anon_huge);
      g.ram_peak = std::max(g.ram_peak, ram->rss);
    } else if (g.first_marker_s) {
      fail_guest(g, "no guest RAM mapping in QEMU's /proc/PID/smaps");
    }
    const std::uint64_t rss = process_rss_bytes(g.qemu->pid());
    g.rss_peak = std::max(g.rss_peak, rss);
    qemu_rss += static_cast<double>(rss);
    g.cpu_s = std::max(g.cpu_s, proc_process_cpu_seconds(g.qemu->pid()).value_or(0));
    cpu += g.cpu_s;
    if (g.have_meminfo) {
      const GuestMeminfo& mi = g.meminfo;
      free += static_cast<double>(mi.free);
      in_use += static_cast<double>(plan_.memory.value() - std::min(plan_.memory.value(), mi.free));
      committed += static_cast<double>(mi.committed);
      const auto gib = [](std::uint64_t bytes) { return static_cast<double>(bytes) / kGiB; };
      // In the order of kGuestColumns; the last one, the vCPUs' busy share, is set below.
      const double values[] = {gib(mi.cached),
                               gib(mi.dirty),
                               gib(mi.writeback),
                               gib(mi.swap_total - std::min(mi.swap_total, mi.swap_free)),
                               gib(mi.active_file),
                               gib(mi.inactive_file),
                               gib(mi.active_anon),
                               gib(mi.inactive_anon),
                               gib(mi.available),
                               static_cast<double>(mi.major_faults),
                               static_cast<double>(mi.refaults),
                               static_cast<double>(mi.sectors_read),
                               static_cast<double>(mi.sectors_written)};
      static_assert(std::size(values) + 1 == std::size(kGuestColumns));
      for (std::size_t i = 0; i < std::size(values); ++i) guest[i] += values[i];
      busy_ms += static_cast<double>(mi.busy_delta_ms);
      total_ms += static_cast<double>(mi.total_delta_ms);
    }
    if (g.zswap) {
      zswap_stored += static_cast<double>(g.zswap->stored_pages);
      zswap_pool += static_cast<double>(g.zswap->pool_total_size / kPageSize);
    }
    if (g.qmp && g.first_marker_s) {
      try {
        const auto b = g.qmp->execute("query-balloon", nlohmann::json::object(),
                                      millis(plan_.lab.qmp_timeout));
        g.balloon_actual = b.value("actual", plan_.memory.value());
        balloon += static_cast<double>(plan_.memory.value() -
                                       std::min(plan_.memory.value(), g.balloon_actual));
      } catch (const QmpError& e) {
        if (auto ex = g.qemu->poll_exit()) check(g, now);
        throw LabError(e.what());
      }
    }
  }
  const KsmCounters k = read_ksm_counters();
  const ProcMeminfo h = host_meminfo();
  const double ksmd_cpu = ksmd_ ? proc_cpu_seconds(*ksmd_).value_or(ksmd_cpu0_) - ksmd_cpu0_ : 0;
  const double used_gib = pss / kGiB;
  guest.back() = total_ms > 0 ? busy_ms / total_ms : 0.0;  // guest_vcpu_utilisation
  std::vector<double> row{now,
                          used_gib,
                          priv / kGiB,
                          plan_.ksm ? static_cast<double>(k.pages_shared) * kPageSize / kGiB : 0.0,
                          static_cast<double>(alive),
                          in_use / kGiB,
                          free / kGiB,
                          committed / kGiB,
                          std::numeric_limits<double>::quiet_NaN(),
                          qemu_rss / kGiB,
                          ram_rss / kGiB,
                          static_cast<double>(h.free.value()) / kGiB,
                          static_cast<double>(h.available->value()) / kGiB,
                          static_cast<double>(k.pages_shared),
                          static_cast<double>(k.pages_sharing),
                          static_cast<double>(k.pages_unshared),
                          static_cast<double>(k.full_scans),
                          cpu,
                          ksmd_cpu,
                          balloon / kGiB,
                          ram_thp / kGiB,
                          static_cast<double>(k.ksm_zero_pages),
                          static_cast<double>(k.pages_scanned)};
  row.insert(row.end(), guest.begin(), guest.end());
  if (plan_.zswap_entry) row.insert(row.end(), {zswap_stored, zswap_pool});
  recorder_.add_row(std::move(row));
  recorder_.observe_host(TimePoint{} + Duration::seconds(now), used_gib);
}

void Session::shutdown() {
  for (auto& gp : guests_) {
    Guest& g = *gp;
    if (!g.alive()) continue;
    g.cpu_s = std::max(g.cpu_s, proc_process_cpu_seconds(g.qemu->pid()).value_or(0));
    if (g.qmp) {
      try {
        g.qmp->execute("quit", nlohmann::json::object(), std::chrono::milliseconds(3000));
      } catch (const QmpError&) {
        // QEMU may close the socket before answering; it is ended by PID below either way.
      }
    }
  }
  for (auto& gp : guests_) {
    Guest& g = *gp;
    if (!g.qemu) continue;
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (g.qemu->running() && !g.qemu->poll_exit() && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    g.qemu->terminate();
    read_console(g);
    g.exit = g.qemu->poll_exit().value_or("");
  }
}

void Session::cleanup() noexcept {
  if (cleaned_) return;
  cleaned_ = true;
  for (auto& gp : guests_) {
    Guest& g = *gp;
    g.qmp.reset();
    if (g.qemu) {
      g.qemu->terminate();
      if (g.exit.empty()) g.exit = g.qemu->poll_exit().value_or("");
    }
    std::error_code ec;
    fs::remove(g.initrd, ec);
    if (!g.disk.empty()) fs::remove(g.disk, ec);
  }
  if (ksm_) {
    for (const auto& p : ksm_->restore()) cleanup_problems_.push_back("host KSM: " + p);
  }
}

LabRun Session::run() {
  prepare();
  t0_ = Clock::now();
  const double end = plan_.duration.seconds();
  const double interval = plan_.sample_interval.seconds();
  double next_sample = 0;
  for (;;) {
    const double now = elapsed();
    if (now >= end) break;
    double next = std::min(end, next_sample);
    for (auto& gp : guests_) {
      Guest& g = *gp;
      const double at = g.plan.launch_at.seconds();
      if (!g.launched()) {
        if (now >= at) {
          launch(g);
        } else {
          next = std::min(next, at);
        }
        continue;
      }
      while (g.next_target < plan_.targets.size()) {
        const BalloonTarget& t = plan_.targets[g.next_target];
        const double when = g.launched_s + t.at.seconds();
        if (now < when) {
          next = std::min(next, when);
          break;
        }
        const std::uint64_t value = plan_.memory.value() - t.size.value();
        try {
          g.qmp->execute("balloon", {{"value", value}}, millis(plan_.lab.qmp_timeout));
        } catch (const QmpError& e) {
          check(g, now);
          throw LabError(e.what());
        }
        log(fmt::format("{}: balloon target {} (guest keeps {})", g.plan.name, format_bytes(t.size),
                        format_bytes(Bytes{value})));
        markers_.push_back(Marker{
            now, g.plan.index, 0, "host", "balloon", {{"size", std::to_string(t.size.value())}}});
        ++g.next_target;
      }
      check(g, now);
    }
    if (now >= next_sample) {
      sample(now);
      next_sample += interval;
      if (next_sample <= now) next_sample = now + interval;
      next = std::min(next, next_sample);
    }
    // Wake for the next timed action, and at least every 200 ms to check the guests.
    const double wait_s = std::clamp(next - elapsed(), 0.0, 0.2);
    std::vector<pollfd> fds;
    std::vector<Guest*> owners;
    if (opt_.stop_fd >= 0) {
      fds.push_back({opt_.stop_fd, POLLIN, 0});
      owners.push_back(nullptr);
    }
    for (auto& gp : guests_) {
      if (gp->qemu && gp->qemu->stdout_fd() >= 0) {
        fds.push_back({gp->qemu->stdout_fd(), POLLIN, 0});
        owners.push_back(gp.get());
      }
    }
    const int r = poll(fds.data(), fds.size(), static_cast<int>(std::ceil(wait_s * 1000)));
    if (r < 0 && errno != EINTR) throw LabError(fmt::format("poll: {}", std::strerror(errno)));
    for (std::size_t i = 0; r > 0 && i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      if (owners[i] == nullptr) {
        // Consume the signal, so it does not end memvirt once unblocked.
        signalfd_siginfo info{};
        const bool got = read(opt_.stop_fd, &info, sizeof info) == sizeof info;
        throw LabError(
            fmt::format("stopped by {}: the guests were ended and host settings "
                        "restored",
                        got ? strsignal(static_cast<int>(info.ssi_signo)) : "a signal"));
      }
      read_console(*owners[i]);
    }
  }
  sample(end);
  for (auto& gp : guests_) {
    if (!gp->start_s) {
      fail_guest(*gp, fmt::format("the guest never started its workloads within the run's {}",
                                  format_duration(plan_.duration)));
    }
  }
  shutdown();
  cleanup();

  LabRun out;
  ExperimentResult& r = out.result;
  r.type = "fixed";
  r.vms = static_cast<unsigned>(guests_.size());
  RunResult& run = r.run;
  run.vms = r.vms;
  run.simulated_s = end;
  double qemu_cpu = 0;
  for (const auto& g : guests_) qemu_cpu += g->cpu_s;
  run.cpu.push_back({"qemu", r.vms, 100.0 * qemu_cpu / end / r.vms, qemu_cpu});
  if (ksmd_) {
    const double k = proc_cpu_seconds(*ksmd_).value_or(ksmd_cpu0_) - ksmd_cpu0_;
    run.cpu.push_back({"ksmd", 1, 100.0 * k / end, k});
  }
  run.events = markers_.size();
  for (const auto& g : guests_) {
    run.guest_oom_kills += g->oom_lines.size();
    // What the host saw: the guest RAM's peak resident set, a lower bound of what the guest
    // touched (the simulator counts every page it ever backed).
    run.touched_pages += g->ram_peak / kPageSize;
  }
  for (const auto& m : markers_) {
    if (m.tag.rfind('w', 0) == 0 && m.event == "end") ++run.workload_cycles;
  }
  // The guests' own counters at their last meminfo marker, as the simulator counts its
  // guests' (vCPU time: all but idle and iowait, boot included).
  bool all_done = true;
  double done_at = 0;
  for (const auto& g : guests_) {
    const GuestMeminfo& mi = g->meminfo;
    run.sectors_read += mi.sectors_read;
    run.sectors_written += mi.sectors_written;
    run.pswpin += mi.swap.pswpin;
    run.pswpout += mi.swap.pswpout;
    run.major_faults += mi.major_faults;
    run.refaults += mi.refaults;
    run.vcpu_seconds += static_cast<double>(mi.cpu_busy_ms) / 1000.0;
    if (g->workloads_done_s) {
      done_at = std::max(done_at, *g->workloads_done_s);
    } else {
      all_done = false;
    }
    if (g->workloads_done_s) ++run.vms_completed;
  }
  if (all_done && !guests_.empty()) run.completion_s = done_at;
  if (plan_.ksm) {
    // Host KSM's sysfs counters, at the place of the scenario's ksm entry.
    const KsmCounters k = read_ksm_counters();
    StatsNode node = recorder_.stats().element("reclaim", *plan_.ksm_entry);
    node.text("impl", "ksm");
    node.value("pages_shared", static_cast<double>(k.pages_shared));
    node.value("pages_sharing", static_cast<double>(k.pages_sharing));
    node.value("pages_unshared", static_cast<double>(k.pages_unshared));
    node.value("pages_volatile", static_cast<double>(k.pages_volatile));
    node.value("full_scans", static_cast<double>(k.full_scans));
    node.value("pages_scanned", static_cast<double>(k.pages_scanned));
    node.value("general_profit", static_cast<double>(k.general_profit));
  }
  if (plan_.zswap_entry) {
    // Each guest's debugfs counters at its last sample, summed; the peaks are each guest's
    // own (its sampler reads the gauges ten times per sample), summed as the simulator sums
    // its guests' peaks.
    RunResult::Zswap& z = run.zswap.emplace();
    StatsNode node = recorder_.stats().element("reclaim", *plan_.zswap_entry);
    node.text("impl", "zswap");
    std::vector<std::pair<std::string, double>> sums;
    for (const auto& g : guests_) {
      if (!g->zswap) fail_guest(*g, "the guest sent no zswap sample");
      const GuestZswapSample& x = *g->zswap;
      z.stored_pages_end += x.stored_pages;
      z.stored_pages_max += x.stored_pages_max;
      z.pool_pages_end += x.pool_total_size / kPageSize;
      z.pool_pages_max += x.pool_total_size_max / kPageSize;
      z.same_filled_pages_end += x.same_filled_pages;
      z.written_back_pages += x.written_back_pages;
      for (const auto& [k, v] : x.counters) {
        auto it =
            std::find_if(sums.begin(), sums.end(), [&](const auto& e) { return e.first == k; });
        if (it == sums.end()) {
          sums.emplace_back(k, static_cast<double>(v));
        } else {
          it->second += static_cast<double>(v);
        }
      }
    }
    for (const auto& [k, v] : sums) node.value(k, v);
  }
  recorder_.finish(TimePoint{} + plan_.duration, run);
  out.markers = markers_;

  nlohmann::json& info = out.info;
  info["backend"] = "lab";
  info["accel"] = accel_;
  info["accel_reason"] = accel_reason_;
  info["qemu"] = {{"path", qemu_}, {"version", qemu_version(qemu_, "/dev/null")}};
  info["image"] = {{"dir", image_.dir},
                   {"kernel_flavour", spelling_of(kKernelFlavourSpellings, plan_.kernel_flavour)},
                   {"kernel_release", image_.kernel_release},
                   {"digest", image_.digest},
                   {"modules", image_.modules}};
  info["kernel_command_line"] = guest_kernel_command_line(plan_);
  if (s_.vm.disk.value() > 0) {
    info["disk"] = {{"cache", spelling_of(kDiskCacheSpellings, plan_.lab.disk_cache)},
                    {"bandwidth_limit", plan_.disk_bandwidth}};
  }
  info["notes"] = plan_.notes;
  info["cleanup_problems"] = cleanup_problems_;
  nlohmann::json vms = nlohmann::json::array();
  for (const auto& g : guests_) {
    nlohmann::json v = {{"name", g->plan.name},
                        {"launched_s", g->launched_s},
                        {"qemu_cpu_s", g->cpu_s},
                        {"guest_ram_rss_peak_gib", static_cast<double>(g->ram_peak) / kGiB},
                        {"qemu_rss_peak_gib", static_cast<double>(g->rss_peak) / kGiB},
                        {"guest_oom_kills", g->oom_lines.size()},
                        {"exit", g->exit}};
    if (g->first_marker_s) v["boot_to_init_s"] = *g->first_marker_s - g->launched_s;
    if (g->start_s) v["boot_to_workloads_s"] = *g->start_s - g->launched_s;
    if (g->workloads_done_s) v["workloads_done_s"] = *g->workloads_done_s;
    if (g->plan.disk) {
      const DiskLayout& d = g->plan.disk->layout;
      nlohmann::json files = nlohmann::json::array();
      for (const auto& f : g->plan.disk->files) {
        files.push_back({{"path", f.path}, {"bytes", f.bytes}, {"content", f.content}});
      }
      v["disk"] = {{"bytes", d.size},
                   {"fs_offset", d.fs_offset},
                   {"fs_bytes", d.fs_bytes},
                   {"swap_offset", d.swap_offset},
                   {"swap_bytes", d.swap_bytes},
                   {"digest", disk_digest(*g->plan.disk)},
                   {"files", files}};
    }
    vms.push_back(v);
  }
  info["vms"] = vms;
  return out;
}

}  // namespace

std::string choose_accel(const std::string& requested, const std::string& qemu_name,
                         const std::string& image_dir, std::string* reason) {
  const std::string qemu = ChildProcess::find_program(qemu_name);
  if (qemu.empty()) {
    throw LabError(
        fmt::format("QEMU '{}' not found: install qemu-system-x86 (bash "
                    "scripts/setup.sh)",
                    qemu_name));
  }
  if (requested == "tcg") {
    *reason = "lab.accel is tcg";
    return "tcg";
  }
  struct stat st {};
  if (stat("/dev/kvm", &st) != 0 || access("/dev/kvm", R_OK | W_OK) != 0) {
    if (requested == "kvm") throw LabError("lab.accel is kvm but /dev/kvm is not usable here");
    *reason = "no usable /dev/kvm";
    return "tcg";
  }
  if (requested == "kvm") {
    *reason = "lab.accel is kvm";
    return "kvm";
  }
  // A /dev/kvm can exist and still not run a stock guest kernel (a nested or paravirtual
  // KVM device): boot the image once under KVM and keep the answer for this image, QEMU
  // and device.
  const std::string image_digest = [&] {
    try {
      return nlohmann::json::parse(read_file(image_dir + "/image.json")).value("digest", "");
    } catch (const std::exception&) {
      return std::string();
    }
  }();
  const std::string key =
      fmt::format("{} {} {}:{}", image_digest, qemu, major(st.st_rdev), minor(st.st_rdev));
  const std::string cache = image_dir + "/accel-probe.json";
  try {
    const auto j = nlohmann::json::parse(read_file(cache));
    if (j.value("key", "") == key) {
      *reason = j.value("reason", "") + " (cached probe)";
      return j.value("accel", "tcg");
    }
  } catch (const std::exception&) {
    // No cached answer: probe below.
  }
  const std::string dir = fmt::format("{}/kvm-probe-{}", image_dir, gettid());
  fs::create_directories(dir);
  const std::string initrd = dir + "/initramfs.cpio";
  write_file_atomic(initrd, read_file(image_dir + "/initramfs.cpio") +
                                guest_archive({{"etc/memvirt/vm.sh",
                                                "/bin/memvirt-guest marker init probe\n"
                                                "poweroff -f\n"}}));
  QemuLaunch l;
  l.qemu = qemu;
  l.accel = "kvm";
  l.name = "kvm-probe";
  l.memory = Bytes{256ULL << 20};
  l.kernel = image_dir + "/vmlinuz";
  l.initrd = initrd;
  l.append = "console=ttyS0 loglevel=4 panic=-1";
  l.qmp_socket = qmp_socket_name("kvm-probe");
  const std::string log_file = dir + "/qemu.log";
  std::error_code ec;
  fs::remove(log_file, ec);
  bool booted = false;
  std::string why;
  try {
    ChildProcess p("kvm probe", qemu_argv(l), log_file);
    std::string out;
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline && !booted) {
      if (auto ex = p.poll_exit()) {
        why = fmt::format("QEMU with KVM exited ({}): {}", *ex, last_line(log_file));
        break;
      }
      pollfd f{p.stdout_fd(), POLLIN, 0};
      if (p.stdout_fd() >= 0 && poll(&f, 1, 100) > 0) {
        char buf[4096];
        const ssize_t n = read(p.stdout_fd(), buf, sizeof buf);
        if (n > 0) out.append(buf, static_cast<std::size_t>(n));
        if (n == 0) p.close_stdout();
        booted = out.find("@@memvirt") != std::string::npos &&
                 out.find("init probe") != std::string::npos;
      } else if (p.stdout_fd() < 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    if (!booted && why.empty()) why = "a guest under KVM printed nothing within 20 s";
  } catch (const LabError&) {
    fs::remove_all(dir, ec);
    throw;
  }
  fs::remove_all(dir, ec);
  std::string accel = booted ? "kvm" : "tcg";
  *reason = booted ? "KVM boots the guest" : why + "; using TCG";
  nlohmann::json j = {{"key", key}, {"accel", accel}, {"reason", *reason}};
  write_file_atomic(cache, j.dump(2) + "\n");
  return accel;
}

LabRun run_lab(const Scenario& s, const LabRunOptions& opt) {
  Session session(s, opt);
  return session.run();
}

void write_lab_outputs(const std::string& dir, const Scenario& s, const LabRun& run) {
  write_outputs(dir, s, run.result);
  const OutputDir out(dir);
  out.write("markers.csv", [&](std::ostream& csv) {
    csv << "time_s,vm,guest_s,tag,event,fields\n";
    for (const auto& m : run.markers) {
      std::string fields;
      for (const auto& [k, v] : m.fields)
        fields += fmt::format("{}{}={}", fields.empty() ? "" : " ", k, v);
      // Fields may hold commas (error texts); quote them for CSV.
      std::string quoted = "\"";
      for (char c : fields) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
      quoted += "\"";
      csv << fmt::format("{:.3f},{},{:.6f},{},{},{}\n", m.host_s, m.vm, m.guest_s, m.tag, m.event,
                         quoted);
    }
  });
  out.write("lab.json", [&](std::ostream& f) { f << run.info.dump(2) << "\n"; });
}

}  // namespace memvirt
