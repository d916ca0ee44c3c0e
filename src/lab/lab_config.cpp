#include "lab/lab_config.hpp"

#include "lab/lab_error.hpp"

namespace memvirt {

LabConfig LabConfig::from_params(Params p) {
  LabConfig c;
  c.qemu = p.string("qemu", "qemu-system-x86_64", "QEMU system emulator (name in PATH or path)");
  c.accel = p.choice("accel", "auto", {"auto", "kvm", "tcg"},
                     "accelerator: kvm, tcg, or auto (KVM when it boots the guest, else TCG)");
  c.image = p.string("image", "", "guest image folder (default: lab-image in the build folder)");
  c.kernel =
      p.string("kernel", "", "guest kernel (default: the newest of kernel_flavour in /boot)");
  c.kernel_flavour =
      p.choice("kernel_flavour", "auto", {"auto", "cloud", "generic"},
               "Debian kernel the guests boot: cloud (linux-image-cloud-amd64), generic "
               "(linux-image-amd64, which has zswap), or auto: generic when the scenario runs "
               "zswap, else cloud");
  c.kernel_args = p.string("kernel_args", "", "appended to the guest kernel command line");
  c.guest_thp = p.option("guest_thp", GuestThp::kDefault, kGuestThpSpellings,
                         "guest transparent huge pages (default: the kernel's own)");
  c.boot_timeout =
      p.duration("boot_timeout", Duration::seconds(60), "launch to the guest's first marker");
  c.silence_timeout = p.duration("silence_timeout", Duration::seconds(30),
                                 "longest a booted guest may go without a marker");
  c.qmp_timeout = p.duration("qmp_timeout", Duration::seconds(10), "per QMP command");
  c.guest_sample_interval = p.duration("guest_sample_interval", Duration::seconds(1),
                                       "time between the guest's meminfo markers");
  c.disk_cache = p.option("disk_cache", DiskCache::kNone, kDiskCacheSpellings,
                          "QEMU cache mode of the guests' disk images; none (O_DIRECT): the "
                          "guests' reads reach the host's storage, not its page cache, as the "
                          "simulator's host disk has no cache");
  c.disk_throttle = p.boolean("disk_throttle", true,
                              "QEMU limits each guest's disk to host.disk.bandwidth bytes "
                              "per second");
  const std::pair<const char*, Duration> positive[] = {
      {"boot_timeout", c.boot_timeout},
      {"silence_timeout", c.silence_timeout},
      {"qmp_timeout", c.qmp_timeout},
      {"guest_sample_interval", c.guest_sample_interval}};
  for (const auto& [key, d] : positive) {
    if (d.ns() <= 0) p.fail(key, "must be positive");
  }
  return c;
}

ScenarioExtension lab_extension() {
  return {"lab", [](Params p) { return std::any(LabConfig::from_params(std::move(p))); }};
}

const LabConfig& lab_config(const Scenario& s) {
  const LabConfig* c = s.extension<LabConfig>("lab");
  if (c == nullptr) throw LabError("the scenario was loaded without its lab: section's reader");
  return *c;
}

}  // namespace memvirt
