// ksmtuned (Debian package ksmtuned 4.20150326, /usr/sbin/ksmtuned with its defaults).
//
// Every KSM_MONITOR_INTERVAL (60 s): committed = the QEMU processes' resident sizes, free =
// MemFree + Buffers + Cached, thres = max(KSM_THRES_COEF (20)% of MemTotal, KSM_THRES_CONST
// (2048 kB)). When committed + thres < MemTotal and free > thres, KSM stops. Otherwise its
// own npages (0 at start) goes up by KSM_NPAGES_BOOST (300) when free < thres, else by
// KSM_NPAGES_DECAY (-50), within KSM_NPAGES_MIN..MAX (64..1250), and KSM runs with
// pages_to_scan = npages and sleep_millisecs = max(10, KSM_SLEEP_MSEC (10) x 16 GiB /
// MemTotal).
#pragma once

#include "policy/policy.hpp"

namespace memvirt {

struct KsmtunedConfig {
  Duration monitor_interval = Duration::seconds(60);
  KsmScanSteps steps;
  std::int64_t sleep_msec = 10;
  std::int64_t thres_coef = 20;
  std::int64_t thres_const_kb = 2048;
};

class Ksmtuned final : public Policy {
 public:
  using Config = KsmtunedConfig;
  explicit Ksmtuned(KsmtunedConfig cfg) : cfg_(cfg) {}
  static KsmtunedConfig config_from(Params& p);

  [[nodiscard]] std::string name() const override { return "ksmtuned"; }
  [[nodiscard]] PolicyInputs needs() const override {
    PolicyInputs in;
    in.ksm = true;
    return in;
  }
  [[nodiscard]] Duration sample_interval() const override { return cfg_.monitor_interval; }
  PolicyActions tick(const HostObservation& now) override;

 private:
  KsmtunedConfig cfg_;
  std::int64_t npages_ = 0;
};

}  // namespace memvirt
