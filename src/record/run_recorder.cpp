#include "record/run_recorder.hpp"

#include <stdexcept>

namespace memvirt {

void StatsNode::counter(std::string_view name, const Counter& c) {
  nlohmann::json& slot = node_[std::string(name)];
  slot = (slot.is_number_unsigned() ? slot.get<std::uint64_t>() : 0) + c.value();
}

void StatsNode::value(std::string_view name, double v) {
  node_[std::string(name)] = v;
}

void StatsNode::text(std::string_view name, std::string_view v) {
  node_[std::string(name)] = std::string(v);
}

StatsNode StatsNode::child(std::string_view name) {
  nlohmann::json& c = node_[std::string(name)];
  if (!c.is_object()) c = nlohmann::json::object();
  return StatsNode(c);
}

StatsNode StatsNode::element(std::string_view list, std::size_t index) {
  nlohmann::json& l = node_[std::string(list)];
  if (!l.is_array()) l = nlohmann::json::array();
  while (l.size() <= index) l.push_back(nlohmann::json::object());
  return StatsNode(l[index]);
}

namespace {
std::vector<std::string> columns(const std::vector<std::string>& extra) {
  std::vector<std::string> all(std::begin(kCommonColumns), std::end(kCommonColumns));
  all.insert(all.end(), extra.begin(), extra.end());
  return all;
}
}  // namespace

RunRecorder::RunRecorder(Duration warmup, const std::vector<std::string>& extra_columns)
    : warmup_(warmup), series_(columns(extra_columns)) {
  gauge_.reset(TimePoint{}, 0);
}

void RunRecorder::open_window(TimePoint now, double gib) {
  if (window_started_ || now < TimePoint{} + warmup_) return;
  window_started_ = true;
  gauge_.reset(TimePoint{} + warmup_, gib);
}

void RunRecorder::observe_host(TimePoint now, double gib) {
  open_window(now, gib);
  peak_gib_ = std::max(peak_gib_, gib);
  last_gib_ = gib;
  if (window_started_) gauge_.set(now, gib);
}

void RunRecorder::add_column(std::string name) {
  if (!series_.rows().empty()) throw std::logic_error("time-series column added after a row");
  series_.add_column(std::move(name));
}

void RunRecorder::add_row(std::vector<double> row) {
  series_.add_row(std::move(row));
}

void RunRecorder::finish(TimePoint stop, RunResult& out) {
  if (!window_started_) gauge_.reset(stop, last_gib_);
  gauge_.close(stop);
  out.host_min_gib = gauge_.min();
  out.host_avg_gib = gauge_.mean();
  out.host_max_gib = gauge_.max();
  out.host_peak_gib = peak_gib_;
  out.series = series_;
  out.stats = stats_;
}

std::vector<AccountSummary> summarize(const Accounts& accounts, Duration elapsed) {
  std::vector<AccountSummary> out;
  for (const auto& a : accounts.all()) {
    out.push_back({a->name(), a->threads(), a->cpu_percent(elapsed),
                   static_cast<double>(a->busy().ps) * 1e-12});
  }
  return out;
}

}  // namespace memvirt
