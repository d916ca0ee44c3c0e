#include "control/daemon.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <set>

#include "core/error.hpp"
#include "core/units.hpp"

namespace memvirt {
namespace {

// The socket file's inode, 0 when it is gone: a new QEMU on the same path is a new file.
std::uintmax_t inode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uintmax_t>(st.st_ino) : 0;
}

// Waits until `deadline`; true when `fd` became readable first (poll ignores fd < 0).
bool stopped_before(std::chrono::steady_clock::time_point deadline, int fd) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(std::max<std::int64_t>(0, left.count())));
    if (r > 0 && fd >= 0) return true;
    if (r < 0 && errno == EINTR) continue;
    if (std::chrono::steady_clock::now() >= deadline) return false;
  }
}

std::string names(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& n : v) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

std::string control_summary_text(const ControlSummary& s, bool dry_run) {
  const char* why = s.end == ControlSummary::End::kStopped ? "stopped"
                    : s.end == ControlSummary::End::kTicks ? "done"
                                                           : "no guest left";
  std::string line = fmt::format(
      "{} after {} ticks ({:.1f} s): {} guest{} controlled{}, {} joined, {} dropped; {} balloon "
      "change{}, {} KSM change{}, {} failed action{}, {} guest-tick{} skipped",
      why, s.ticks, s.elapsed.seconds(), s.guests.size(), s.guests.size() == 1 ? "" : "s",
      s.guests.empty() ? "" : " (" + names(s.guests) + ")", s.joined, s.left, s.balloon_changes,
      s.balloon_changes == 1 ? "" : "s", s.ksm_changes, s.ksm_changes == 1 ? "" : "s",
      s.failed_actions, s.failed_actions == 1 ? "" : "s", s.skipped, s.skipped == 1 ? "" : "s");
  line += dry_run ? "; dry run: nothing was changed" : "; balloons left where last set";
  return line;
}

ControlDaemon::ControlDaemon(std::unique_ptr<Policy> policy, ControlOptions opt, ControlSink& sink,
                             std::unique_ptr<KsmControl> ksm)
    : policy_(std::move(policy)),
      opt_(std::move(opt)),
      sink_(sink),
      ksm_(std::move(ksm)),
      host_(HostSources{opt_.proc, ksm_.get()}),
      start_(Clock::now()) {}

ControlDaemon::~ControlDaemon() {
  // A start() that failed half-way: what was turned on is turned off again.
  for (const std::uint32_t key : host_.keys()) {
    try {
      host_.guest(key)->restore_polling();
    } catch (const QmpError&) {  // QEMU is gone or does not answer: nothing to put back
    }
  }
}

Duration ControlDaemon::since_start() const {
  return Duration{
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_).count()};
}

void ControlDaemon::emit(const ControlEvent& e) {
  if (starting_) {
    pending_.emplace_back(since_start(), e);
    return;
  }
  sink_.record(since_start(), e);
}

void ControlDaemon::start() {
  start_ = Clock::now();
  // Held back until every named socket is in: a start that fails says one thing, its error.
  starting_ = true;
  pending_.clear();
  start_guests();
  starting_ = false;
  for (const auto& [t, e] : pending_) sink_.record(t, e);
  pending_.clear();
}

void ControlDaemon::start_guests() {
  const std::string lacking = host_.missing(policy_->needs());
  if (!lacking.empty()) {
    throw InputError(SourcePlace{"", 0, "--policy"},
                     fmt::format("{} {}", policy_->name(), lacking));
  }
  const char* ksm = ksm_ == nullptr ? "left alone" : ksm_->read_only() ? "observed" : "tuned";
  emit(control_event(
      ControlEvent::Kind::kStart, "",
      fmt::format("policy {} every {}, {}KSM {}{}", policy_->name(),
                  format_duration(policy_->sample_interval()), opt_.dry_run ? "dry run, " : "", ksm,
                  opt_.policy_config.empty() ? "" : ": " + opt_.policy_config)));
  if (ksm_ != nullptr && ksm_->recovered()) {
    emit(control_event(ControlEvent::Kind::kNotice, "", *ksm_->recovered()));
  }
  for (const std::string& path : opt_.sockets) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      throw InputError(SourcePlace{"", 0, path},
                       "no such file (expected a running QEMU's QMP socket)");
    }
    join(path, true);
  }
  if (!opt_.dir.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(opt_.dir, ec)) {
      throw InputError(SourcePlace{"", 0, "--dir"}, fmt::format("{}: not a folder", opt_.dir));
    }
    rescan();
  }
  for (const std::string& name : opt_.limits.named()) {
    bool found = false;
    for (const std::uint32_t key : host_.keys()) found = found || host_.guest(key)->name() == name;
    if (!found) {
      emit(control_event(ControlEvent::Kind::kNotice, "",
                         fmt::format("--limit names {}, which no guest is called{}", name,
                                     opt_.dir.empty() ? "" : " yet")));
    }
  }
}

bool ControlDaemon::join(const std::string& path, bool named) {
  std::filesystem::path p(path);
  std::string stem = p.extension() == ".sock" ? p.stem().string() : p.filename().string();
  std::string error;
  try {
    QmpClient client =
        QmpClient::connect_unix(path, stem, named ? opt_.qmp_timeout : opt_.connect_timeout);
    const std::string name = QmpGuest::name_of(client, path);
    for (const std::uint32_t key : host_.keys()) {
      if (host_.guest(key)->name() == name) {
        throw QmpError(fmt::format("{}: the guest on {} has that name already", name,
                                   host_.guest(key)->socket()));
      }
    }
    QmpGuest g(name, path, std::move(client), opt_.limits.bounds_of(name));
    const Bytes memory = g.memory();
    std::string why;
    const std::optional<ResolvedBounds> b = resolve_bounds(g.bounds(), memory, &why);
    if (!b) throw QmpError(fmt::format("{}: --min/--max/--limit: {}", name, why));
    std::int64_t polling = 0;
    try {
      polling = g.polling_interval();
    } catch (const QmpDisconnected&) {
      throw;
    } catch (const QmpError& e) {
      throw QmpError(
          fmt::format("{}: no balloon device at {} (QEMU needs -device "
                      "virtio-balloon-pci,id=balloon0): {}",
                      name, kBalloonQomPath, e.what()));
    }
    // memvirt's controller shrinks only guests that give pages back on OOM: a burst faster
    // than a tick must not cost a process its life.
    if (policy_->needs().deflate_on_oom && !g.deflate_on_oom()) {
      throw QmpError(
          fmt::format("{}: the {} policy needs a balloon the guest deflates on OOM (QEMU -device "
                      "virtio-balloon-pci,id=balloon0,deflate-on-oom=on)",
                      name, policy_->name()));
    }
    std::string stats;
    std::optional<std::string> notice;
    const auto want =
        static_cast<std::int64_t>(std::max(1.0, std::ceil(policy_->sample_interval().seconds())));
    if (polling > 0) {
      stats = fmt::format("stats every {} s", polling);
    } else if (!policy_->needs().balloon_stats) {
      stats = "stats polling off";
    } else if (opt_.dry_run && !opt_.enable_stats_polling) {
      stats = "stats polling off";
      notice = fmt::format(
          "stats polling is off (guest-stats-polling-interval 0) and a dry run does not turn "
          "it on: the policy sees no new stats from this guest, only the last report QEMU "
          "kept, if any, growing older (--enable-stats-polling turns it on every {} s, and off "
          "again at the end)",
          want);
    } else {
      g.set_polling_interval(want);
      stats = fmt::format("stats polling turned on, every {} s (off again at the end)", want);
    }
    const std::optional<pid_t> pid = g.pid();
    const std::string text =
        fmt::format("joined: {}, QEMU pid {}, memory {}, target bounds [{}, {}] ({} to {}), {}",
                    path, pid ? std::to_string(*pid) : std::string("unknown"), format_bytes(memory),
                    format_bytes(b->min), format_bytes(b->max), g.bounds().min.text(),
                    g.bounds().max.text(), stats);
    const std::uint32_t key = host_.add(std::move(g));
    joined_[path] = key;
    ++joined_count_;
    emit(control_event(ControlEvent::Kind::kJoin, name, text));
    if (notice) emit(control_event(ControlEvent::Kind::kNotice, name, *notice));
    return true;
  } catch (const QmpError& e) {
    error = e.what();
    if (error.find("waiting for the greeting") != std::string::npos) {
      error +=
          " (QEMU serves one QMP client at a time on a socket: does another, such as "
          "libvirt, hold it?)";
    }
  } catch (const GuestReplyError& e) {
    error = e.what();
  }
  if (named) throw InputError(SourcePlace{"", 0, path}, error);
  emit(control_event(
      ControlEvent::Kind::kError, "",
      fmt::format("{}: not controlled (tried again in {} s or when the socket is new): {}", path,
                  opt_.retry_after.count(), error)));
  return false;
}

void ControlDaemon::rescan() {
  if (opt_.dir.empty()) return;
  std::error_code ec;
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(opt_.dir, ec)) {
    std::error_code type_ec;
    if (entry.is_socket(type_ec) || entry.path().extension() == ".sock") {
      found.push_back(entry.path().string());
    }
  }
  if (ec) {
    const std::string problem = fmt::format("--dir {}: {}", opt_.dir, ec.message());
    if (problem != dir_problem_) emit(control_event(ControlEvent::Kind::kError, "", problem));
    dir_problem_ = problem;
    return;
  }
  dir_problem_.clear();
  std::sort(found.begin(), found.end());
  const auto now = Clock::now();
  for (const std::string& path : found) {
    if (joined_.count(path) > 0) continue;
    const std::uintmax_t inode = inode_of(path);
    if (const auto it = failed_.find(path);
        it != failed_.end() && it->second.inode == inode && now < it->second.retry_at) {
      continue;
    }
    if (join(path, false)) {
      failed_.erase(path);
    } else {
      failed_[path] = Failed{inode, now + opt_.retry_after};
    }
  }
}

void ControlDaemon::forget_gone() {
  const std::vector<std::uint32_t> keys = host_.keys();
  const std::set<std::uint32_t> alive(keys.begin(), keys.end());
  for (auto it = joined_.begin(); it != joined_.end();) {
    if (alive.count(it->second) == 0) {
      ++left_count_;
      // The same socket file is a QEMU that is gone: try it again only later, or once new.
      failed_[it->first] = Failed{inode_of(it->first), Clock::now() + opt_.retry_after};
      it = joined_.erase(it);
    } else {
      ++it;
    }
  }
}

void ControlDaemon::tick(ControlSummary& sum) {
  rescan();
  const auto unix_now = [] {
    return static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count());
  };
  QmpHost::Observed o = host_.observe(since_start(), unix_now);
  for (const ControlEvent& e : o.events) emit(e);
  sum.skipped += o.skipped;
  forget_gone();
  ++sum.ticks;
  if (!o.host) return;
  PolicyActions actions = policy_->tick(*o.host);
  for (const ControlEvent& e : host_.carry_out(*o.host, std::move(actions), opt_.dry_run)) {
    emit(e);
    if (!e.failed.empty()) ++sum.failed_actions;
    if (e.kind == ControlEvent::Kind::kBalloon && e.failed.empty()) ++sum.balloon_changes;
    if (e.kind == ControlEvent::Kind::kKsm && e.failed.empty()) ++sum.ksm_changes;
  }
  forget_gone();
}

ControlSummary ControlDaemon::run(int stop_fd) {
  ControlSummary sum;
  const auto interval = std::chrono::nanoseconds(policy_->sample_interval().ns());
  auto next = start_ + interval;
  for (;;) {
    if (stopped_before(next, stop_fd)) {
      sum.end = ControlSummary::End::kStopped;
      break;
    }
    tick(sum);
    if (opt_.ticks > 0 && sum.ticks >= opt_.ticks) {
      sum.end = ControlSummary::End::kTicks;
      break;
    }
    if (opt_.dir.empty() && host_.size() == 0) {
      sum.end = ControlSummary::End::kNoGuests;
      emit(control_event(ControlEvent::Kind::kNotice, "", "no guest left to control"));
      break;
    }
    // A tick that took longer than the interval (a slow guest) moves the next one on, so the
    // policy never sees two observations in a row with no time between them.
    next += interval;
    const auto now = Clock::now();
    while (next <= now) next += interval;
  }
  finish(sum);
  return sum;
}

void ControlDaemon::finish(ControlSummary& sum) {
  for (const std::uint32_t key : host_.keys()) {
    QmpGuest& g = *host_.guest(key);
    sum.guests.push_back(g.name());
    if (!g.polling_changed()) continue;
    try {
      g.restore_polling();
      emit(
          control_event(ControlEvent::Kind::kNotice, g.name(), "stats polling put back as it was"));
    } catch (const QmpError& e) {
      emit(control_event(ControlEvent::Kind::kError, g.name(),
                         fmt::format("stats polling not put back: {}", e.what())));
    }
  }
  if (ksm_ != nullptr && !ksm_->read_only()) {
    const bool changed = ksm_->changed();
    const std::vector<std::string> problems = ksm_->restore();
    for (const std::string& p : problems) {
      emit(control_event(ControlEvent::Kind::kError, "", fmt::format("KSM: {}", p)));
    }
    if (changed && problems.empty()) {
      emit(control_event(ControlEvent::Kind::kNotice, "",
                         "host KSM settings put back as they were"));
    }
  }
  sum.joined = joined_count_;
  sum.left = left_count_;
  sum.elapsed = since_start();
  emit(control_event(ControlEvent::Kind::kStop, "", control_summary_text(sum, opt_.dry_run)));
}

}  // namespace memvirt
