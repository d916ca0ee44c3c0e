#include "core/cost.hpp"

#include <fmt/format.h>

#include <cmath>

namespace memvirt {

CostProfile::CostProfile() {
  for (std::size_t i = 0; i < kOpInfo.size(); ++i) {
    if (kOpInfo[i].reference_ns > 0) {
      set(static_cast<Op>(i), kOpInfo[i].reference_ns, std::string(kOpInfo[i].reference_source));
    }
  }
}

CostProfile CostProfile::load(const std::string& file) {
  auto ctx = std::make_shared<ParamContext>(file);
  YAML::Node root = load_yaml_file(file);
  CostProfile profile = from_params(Params(root, "", ctx));
  ctx->check_all_read(root);
  return profile;
}

CostProfile CostProfile::from_params(Params p) {
  CostProfile profile;
  profile.machine_ = p.string("machine", "", "where and how the costs were measured");
  profile.cpu_ghz_ = p.real("cpu_ghz", 0, "clock of the measuring CPU, for cycle counts", 0.1, 10);
  Params ops = p.child("operations");
  for (std::size_t i = 0; i < kOpInfo.size(); ++i) {
    const std::string key(kOpInfo[i].key);
    if (!ops.has(key) && kOpInfo[i].reference_ns > 0) continue;  // keeps the reference value
    if (!ops.has(key))
      ops.fail("", fmt::format("missing operation '{}' ({})", key, kOpInfo[i].description));
    Params op = ops.child(key);
    double ns = 0;
    if (op.has("cycles")) {
      ns = op.real("cycles", 0, "cost in cycles at cpu_ghz", 0, 1e12) / profile.cpu_ghz_;
    } else {
      ns = op.real("ns", -1, std::string(kOpInfo[i].description), 0, 1e12);
      if (ns < 0) op.fail("", "needs 'ns' or 'cycles'");
    }
    std::string source = op.string("source", "", "where this cost comes from");
    if (source.empty()) op.fail("source", "every cost needs its source");
    profile.set(static_cast<Op>(i), ns, std::move(source));
  }
  return profile;
}

void CostProfile::set(Op op, double ns, std::string source) {
  costs_[static_cast<std::size_t>(op)] =
      CpuTime{static_cast<std::uint64_t>(std::llround(ns * 1000))};
  sources_[static_cast<std::size_t>(op)] = std::move(source);
}

std::string CostProfile::to_yaml() const {
  YAML::Emitter out;
  out.SetDoublePrecision(6);
  out << YAML::BeginMap;
  out << YAML::Key << "machine" << YAML::Value << machine_;
  out << YAML::Key << "cpu_ghz" << YAML::Value << cpu_ghz_;
  out << YAML::Key << "operations" << YAML::Value << YAML::BeginMap;
  for (std::size_t i = 0; i < kOpInfo.size(); ++i) {
    out << YAML::Key << std::string(kOpInfo[i].key) << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "ns" << YAML::Value
        << std::round(static_cast<double>(costs_[i].ps) / 10.0) / 100.0;
    out << YAML::Key << "source" << YAML::Value << sources_[i];
    out << YAML::EndMap;
  }
  out << YAML::EndMap << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

double CostAccount::cpu_percent(Duration elapsed) const {
  if (elapsed.ns() <= 0 || threads_ == 0) return 0;
  return 100.0 * static_cast<double>(busy_.ps) /
         (static_cast<double>(elapsed.ns()) * 1000.0 * threads_);
}

CostAccount& Accounts::get(const std::string& name, unsigned threads) {
  for (auto& a : accounts_) {
    if (a->name() != name) continue;
    if (threads != 0 && a->threads() != 0 && a->threads() != threads) {
      throw InputError(SourcePlace{"", 0, "reclaim"},
                       "account " + name + " is shared with " + std::to_string(a->threads()) +
                           " threads, but another mechanism gives it " + std::to_string(threads));
    }
    return *a;
  }
  accounts_.push_back(std::make_unique<CostAccount>(name, threads));
  return *accounts_.back();
}

}  // namespace memvirt
