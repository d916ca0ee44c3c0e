#include "real/ksm_sysfs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace memvirt {

bool KsmSysfs::available(std::string& why) const {
  if (!std::filesystem::exists(root_ / "run")) {
    why = root_.string() + " does not exist (kernel without KSM?)";
    return false;
  }
  if (::access((root_ / "run").c_str(), W_OK) != 0) {
    why = (root_ / "run").string() + " is not writable (" + std::strerror(errno) + "; run as root)";
    return false;
  }
  return true;
}

bool KsmSysfs::has(const std::string& knob) const {
  return std::filesystem::exists(root_ / knob);
}

std::string KsmSysfs::read(const std::string& knob) const {
  std::ifstream in(root_ / knob);
  std::string value;
  if (!in || !std::getline(in, value)) {
    throw std::runtime_error("cannot read " + (root_ / knob).string());
  }
  // A choice lists every option with the current one in brackets.
  if (const auto open = value.find('['); open != std::string::npos) {
    const auto close = value.find(']', open);
    if (close != std::string::npos) return value.substr(open + 1, close - open - 1);
  }
  while (!value.empty() && (value.back() == ' ' || value.back() == '\n')) value.pop_back();
  return value;
}

std::uint64_t KsmSysfs::read_number(const std::string& knob) const {
  const std::string v = read(knob);
  try {
    return std::stoull(v);
  } catch (const std::exception&) {
    throw std::runtime_error((root_ / knob).string() + ": not a number: " + v);
  }
}

void KsmSysfs::write(const std::string& knob, const std::string& value) const {
  // One write(2): sysfs reports a refused value as that call's error.
  const std::string path = (root_ / knob).string();
  const int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  const ssize_t n = ::write(fd, value.data(), value.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    throw std::runtime_error("cannot write " + value + " to " + path + ": " +
                             std::strerror(n < 0 ? err : EIO));
  }
}

KsmSettingsGuard::KsmSettingsGuard(const KsmSysfs& fs, Settings settings, KsmStateStore store)
    : fs_(fs), store_(std::move(store)) {
  recovered_ = recover_ksm_settings(fs_, store_);
  // `run` last: ksmd starts only once everything else is set.
  std::stable_partition(settings.begin(), settings.end(),
                        [](const auto& kv) { return kv.first != "run"; });
  // Every original value is on disk before the first one changes.
  state_ = ksm_state_of_this_process(fs_.root());
  KsmSavedState& state = state_;
  std::vector<std::pair<std::string, std::string>> to_apply;
  for (const auto& [knob, value] : settings) {
    if (!fs_.has(knob)) {
      skipped_.push_back(knob);
      continue;
    }
    state.knobs.push_back({knob, fs_.read(knob), value});
    to_apply.emplace_back(knob, value);
  }
  if (!to_apply.empty()) {
    store_.save(state);
    state_saved_ = true;
  }
  try {
    for (std::size_t i = 0; i < to_apply.size(); ++i) {
      const auto& [knob, value] = to_apply[i];
      fs_.write(knob, value);
      saved_.emplace_back(knob, state.knobs[i].original);
      applied_.emplace_back(knob, value);
      applied_.back().second = fs_.read(knob);  // as the kernel shows it back
    }
  } catch (...) {
    restore();
    throw;
  }
}

KsmSettingsGuard::~KsmSettingsGuard() {
  restore();
}

void KsmSettingsGuard::set(const std::string& knob, const std::string& value) {
  if (restored_) throw std::logic_error("KSM settings are already restored; cannot set " + knob);
  if (!fs_.has(knob)) throw std::runtime_error((fs_.root() / knob).string() + " does not exist");
  std::size_t i = 0;
  while (i < saved_.size() && saved_[i].first != knob) ++i;
  if (i == saved_.size()) {
    const std::string original = fs_.read(knob);
    state_.knobs.push_back({knob, original, value});
    try {
      store_.save(state_);
    } catch (...) {
      state_.knobs.pop_back();
      throw;
    }
    state_saved_ = true;
    try {
      fs_.write(knob, value);
    } catch (...) {
      state_.knobs.pop_back();  // the file may keep it: a recovery finds the original there
      throw;
    }
    saved_.emplace_back(knob, original);
    applied_.emplace_back(knob, fs_.read(knob));
    return;
  }
  std::size_t k = 0;
  while (k < state_.knobs.size() && state_.knobs[k].knob != knob) ++k;
  const std::string before = state_.knobs[k].set;
  state_.knobs[k].set = value;
  try {
    store_.save(state_);
  } catch (...) {
    state_.knobs[k].set = before;
    throw;
  }
  try {
    fs_.write(knob, value);
  } catch (...) {
    // The knob keeps the value written before: the file must say so again.
    state_.knobs[k].set = before;
    try {
      store_.save(state_);
    } catch (const std::exception&) {  // the write's error is the one to report
    }
    throw;
  }
  applied_[i].second = fs_.read(knob);
}

std::optional<std::string> KsmSettingsGuard::changed_by_others() const {
  for (const auto& [knob, value] : applied_) {
    try {
      if (fs_.read(knob) != value) return knob;
    } catch (const std::exception&) {
      return knob;
    }
  }
  return std::nullopt;
}

std::vector<std::string> KsmSettingsGuard::restore() {
  std::vector<std::string> failed;
  if (restored_) return failed;
  restored_ = true;
  bool write_failed = false;
  auto put_back = [&](std::size_t i) {
    const auto& [knob, value] = saved_[i];
    try {
      // Another process that changed the knob meanwhile owns it now: writing our old value
      // would undo its setting.
      if (const std::string now = fs_.read(knob); now != applied_[i].second) {
        failed.push_back((fs_.root() / knob).string() + " was changed by another process (to " +
                         now + "); left as it is instead of restoring " + value);
        return;
      }
      fs_.write(knob, value);
    } catch (const std::exception& e) {
      failed.push_back(e.what());
      write_failed = true;
    }
  };
  for (std::size_t i = 0; i < saved_.size(); ++i) {
    if (saved_[i].first == "run") put_back(i);  // stop ksmd first
  }
  for (std::size_t i = saved_.size(); i-- > 0;) {
    if (saved_[i].first != "run") put_back(i);
  }
  // A write that failed may succeed later (`memvirt restore`, the next run): the file stays.
  if (state_saved_ && !write_failed) {
    try {
      store_.remove(fs_.root());
      state_saved_ = false;
    } catch (const std::exception& e) {
      failed.push_back(e.what());
    }
  }
  return failed;
}

}  // namespace memvirt
