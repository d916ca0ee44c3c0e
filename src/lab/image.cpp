#include "lab/image.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "lab/cpio.hpp"
#include "lab/files.hpp"
#include "lab/lab_error.hpp"

namespace memvirt {
namespace fs = std::filesystem;
namespace {

// Bumped when the layout of the image changes, so older image folders are rebuilt.
constexpr int kImageFormat = 3;

// PID 1 of every guest. vm.sh comes from the guest's own appended archive.
constexpr const char* kInit = R"(#!/bin/sh
# memvirt guest init: mount the kernel's file systems, load the virtio modules, apply this
# guest's settings and start its workloads (/etc/memvirt/vm.sh, appended per guest by the
# host), then idle until the host ends the VM. Markers go to the serial console.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
G=/bin/memvirt-guest
$G marker init boot kernel=$(uname -r)
# load_module NAME: an optional module of the image and the modules it needs, for vm.sh;
# nothing when the kernel builds it in.
load_module() {
  [ -f /etc/memvirt/optional/$1 ] || return 0
  for m in $(cat /etc/memvirt/optional/$1); do
    [ -d /sys/module/$m ] || insmod /lib/modules/$m.ko || $G marker init error what=insmod $m failed
  done
}
for m in $(cat /etc/memvirt/modules); do
  insmod /lib/modules/$m.ko || $G marker init error what=insmod $m failed
done
$G marker init modules
if [ -f /etc/memvirt/vm.sh ]; then
  . /etc/memvirt/vm.sh
else
  $G marker init error what=no /etc/memvirt/vm.sh in this guest
fi
$G marker init idle
while true; do sleep 3600; done
)";

// busybox applets the init and an interactive debugging shell use.
constexpr const char* kApplets[] = {"sh",      "mount",    "umount", "insmod", "lsmod", "cat",
                                    "echo",    "sleep",    "uname",  "ls",     "ps",    "free",
                                    "dmesg",   "poweroff", "kill",   "grep",   "mkdir", "swapon",
                                    "swapoff", "sync",     "df",     "head"};

std::string exe_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : exe.parent_path().string();
}

std::string release_of(const std::string& kernel) {
  const std::string base = fs::path(kernel).filename().string();
  const std::string prefix = "vmlinuz-";
  if (base.rfind(prefix, 0) != 0) {
    throw LabError(fmt::format("kernel {}: expected a file named vmlinuz-<release>", kernel));
  }
  return base.substr(prefix.size());
}

}  // namespace

const std::vector<std::string>& guest_modules() {
  static const std::vector<std::string> kModules = {
      "virtio_ring", "virtio",         "virtio_pci",     "virtio_balloon",
      "virtio_blk",  "virtio_console", "crc32c_generic", "ext4"};
  return kModules;
}

const std::vector<std::string>& guest_optional_modules() {
  static const std::vector<std::string> kModules = {"zswap", "zbud", "lzo", "lz4", "zstd"};
  return kModules;
}

namespace {

// "kernel/drivers/virtio/virtio-rng.ko" -> "virtio_rng"
std::string module_name(const std::string& path) {
  std::string n = fs::path(path).filename().string();
  n = n.substr(0, n.find(".ko"));
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

}  // namespace

std::set<std::string> builtin_module_names(const std::string& modules_builtin) {
  std::set<std::string> names;
  std::istringstream in(modules_builtin);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) names.insert(module_name(line));
  }
  return names;
}

std::vector<std::string> module_load_order(const std::string& modules_dep,
                                           const std::vector<std::string>& wanted,
                                           const std::string& modules_builtin) {
  // "kernel/drivers/virtio/virtio_pci.ko: kernel/.../virtio.ko ..." -> name -> (path, deps)
  const auto name_of = module_name;
  const std::set<std::string> builtin = builtin_module_names(modules_builtin);
  std::map<std::string, std::vector<std::string>> deps;
  std::istringstream in(modules_dep);
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::vector<std::string> d;
    std::istringstream rest(line.substr(colon + 1));
    std::string p;
    while (rest >> p) d.push_back(name_of(p));
    deps[name_of(line.substr(0, colon))] = std::move(d);
  }
  std::vector<std::string> order;
  std::set<std::string> done;
  std::function<void(const std::string&)> visit = [&](const std::string& m) {
    if (done.count(m) || builtin.count(m)) return;
    const auto it = deps.find(m);
    if (it == deps.end()) {
      throw LabError(fmt::format("module {} is neither in modules.dep nor built in", m));
    }
    done.insert(m);
    // modules.dep lists dependencies with the ones loaded last first; visit in reverse.
    for (auto d = it->second.rbegin(); d != it->second.rend(); ++d) visit(*d);
    order.push_back(m);
  };
  for (const auto& m : wanted) visit(m);
  return order;
}

std::string default_guest_programs() {
  const std::string dir = exe_dir();
  if (dir.empty()) return {};
  for (const fs::path& p :
       {fs::path(dir) / "memvirt-guest", fs::path(dir).parent_path() / "memvirt-guest"}) {
    if (fs::exists(p)) return p.string();
  }
  return {};
}

std::string default_image_dir() {
  std::string dir = exe_dir();
  if (dir.empty()) return "lab-image";
  // Test binaries live one folder below the build folder.
  if (fs::path(dir).filename() == "tests") dir = fs::path(dir).parent_path().string();
  return (fs::path(dir) / "lab-image").string();
}

std::string find_kernel(KernelFlavour flavour, const std::string& boot_dir) {
  std::vector<std::string> found;
  std::error_code ec;
  const std::string suffix = flavour == KernelFlavour::kCloud ? "-cloud-amd64" : "-amd64";
  for (const auto& e : fs::directory_iterator(boot_dir, ec)) {
    const std::string n = e.path().filename().string();
    if (!n.starts_with("vmlinuz-") || !n.ends_with(suffix)) continue;
    const std::string version = n.substr(8, n.size() - 8 - suffix.size());
    // The generic kernel's version is all digits, dots and dashes ("6.1.0-57"); the cloud
    // and real-time kernels add a word ("6.1.0-57-cloud", "6.1.0-57-rt").
    if (version.empty() || (flavour == KernelFlavour::kGeneric &&
                            version.find_first_not_of("0123456789.-") != std::string::npos)) {
      continue;
    }
    found.push_back(e.path().string());
  }
  if (found.empty()) return {};
  std::sort(found.begin(), found.end(), [](const std::string& a, const std::string& b) {
    return strverscmp(a.c_str(), b.c_str()) < 0;
  });
  return found.back();
}

std::string find_cloud_kernel(const std::string& boot_dir) {
  return find_kernel(KernelFlavour::kCloud, boot_dir);
}

const char* kernel_package(KernelFlavour flavour) {
  return flavour == KernelFlavour::kCloud ? "linux-image-cloud-amd64" : "linux-image-amd64";
}

std::string guest_archive(const std::vector<std::pair<std::string, std::string>>& files) {
  CpioWriter w;
  std::set<std::string> dirs = {"etc", "etc/memvirt"};
  for (const auto& d : dirs) w.directory(d);
  for (const auto& [path, data] : files) {
    const bool script = path.ends_with(".sh");
    w.file(path, data, script ? 0755 : 0644);
  }
  return w.finish();
}

GuestImage build_image(const ImageOptions& opt) {
  const std::string kernel =
      opt.kernel.empty() ? find_kernel(opt.flavour, opt.boot_dir) : opt.kernel;
  if (kernel.empty()) {
    throw LabError(fmt::format(
        "no Debian {} kernel in {} ({}): install {} (bash scripts/setup.sh)",
        spelling_of(kKernelFlavourSpellings, opt.flavour), opt.boot_dir,
        opt.flavour == KernelFlavour::kCloud ? "vmlinuz-*-cloud-amd64" : "vmlinuz-<version>-amd64",
        kernel_package(opt.flavour)));
  }
  const std::string release = release_of(kernel);
  const std::string guest =
      opt.guest_programs.empty() ? default_guest_programs() : opt.guest_programs;
  if (guest.empty() || !fs::exists(guest)) {
    throw LabError(
        "guest programs (memvirt-guest) not found beside memvirt: build the target "
        "memvirt_guest_workloads, or name the file");
  }
  if (!fs::exists(opt.busybox)) {
    throw LabError(
        fmt::format("{} not found: install busybox-static (bash scripts/setup.sh)", opt.busybox));
  }
  const std::string mod_dir = fmt::format("{}/{}", opt.modules_root, release);
  const std::string modules_dep = read_file(mod_dir + "/modules.dep");
  const std::string builtin_text = [&] {
    std::error_code ec;
    return fs::exists(mod_dir + "/modules.builtin", ec) ? read_file(mod_dir + "/modules.builtin")
                                                        : std::string();
  }();
  const std::vector<std::string> order =
      module_load_order(modules_dep, guest_modules(), builtin_text);
  const std::set<std::string> builtin_all = builtin_module_names(builtin_text);
  // Module paths by name, from modules.dep (names there use '_' or '-').
  std::map<std::string, std::string> module_path;
  {
    std::istringstream in(modules_dep);
    std::string line;
    while (std::getline(in, line)) {
      const std::string path = line.substr(0, line.find(':'));
      module_path[module_name(path)] = path;
    }
  }

  GuestImage img;
  for (const std::string& m : guest_modules()) {
    if (builtin_all.count(m)) img.builtin_modules.insert(m);
  }
  // Optional modules: what each needs beyond the modules loaded at boot.
  const std::set<std::string> at_boot(order.begin(), order.end());
  std::set<std::string> optional_files;
  for (const std::string& m : guest_optional_modules()) {
    if (builtin_all.count(m)) {
      img.builtin_modules.insert(m);
      continue;
    }
    if (!module_path.count(m)) continue;  // the kernel lacks it
    std::vector<std::string> need;
    for (const std::string& d : module_load_order(modules_dep, {m}, builtin_text)) {
      if (!at_boot.count(d)) need.push_back(d);
    }
    optional_files.insert(need.begin(), need.end());
    img.optional_modules[m] = std::move(need);
  }

  CpioWriter w;
  for (const char* d : {"bin", "dev", "etc", "etc/memvirt", "etc/memvirt/optional", "lib",
                        "lib/modules", "mnt", "mnt/disk", "proc", "sys", "tmp"}) {
    w.directory(d, std::strcmp(d, "tmp") == 0 ? 01777 : 0755);
  }
  w.char_device("dev/console", 5, 1);
  w.file("bin/busybox", read_file(opt.busybox), 0755);
  for (const char* a : kApplets) w.symlink(fmt::format("bin/{}", a), "busybox");
  w.file("bin/memvirt-guest", read_file(guest), 0755);
  const auto add_module = [&](const std::string& m) {
    const std::string& rel = module_path.at(m);
    if (!rel.ends_with(".ko")) {
      throw LabError(
          fmt::format("module {} of kernel {} is compressed ({}); the guest's busybox insmod "
                      "needs plain .ko files",
                      m, release, rel));
    }
    w.file(fmt::format("lib/modules/{}.ko", m), read_file(fmt::format("{}/{}", mod_dir, rel)));
  };
  std::string list;
  for (const auto& m : order) {
    add_module(m);
    list += m + "\n";
  }
  for (const auto& m : optional_files) add_module(m);
  w.file("etc/memvirt/modules", list);
  for (const auto& [name, need] : img.optional_modules) {
    std::string l;
    for (const auto& m : need) l += m + "\n";
    w.file(fmt::format("etc/memvirt/optional/{}", name), l);
  }
  w.file("init", kInit, 0755);
  const std::string initramfs = w.finish();
  const std::string kernel_bytes = read_file(kernel);

  const fs::path dir = fs::path(opt.dir) / release;
  img.dir = dir.string();
  img.kernel = (dir / "vmlinuz").string();
  img.initramfs = (dir / "initramfs.cpio").string();
  img.kernel_release = release;
  img.modules = order;
  img.digest = digest_hex(digest_hex(kernel_bytes) + digest_hex(initramfs));

  const std::string manifest_path = (dir / "image.json").string();
  std::error_code ec;
  if (fs::exists(manifest_path, ec) && fs::exists(img.kernel, ec) &&
      fs::exists(img.initramfs, ec)) {
    try {
      const auto old = nlohmann::json::parse(read_file(manifest_path));
      if (old.value("format", 0) == kImageFormat && old.value("digest", "") == img.digest) {
        return img;
      }
    } catch (const nlohmann::json::exception&) {
      // Unreadable manifest: rebuild below.
    }
  }
  fs::create_directories(dir, ec);
  if (ec) throw LabError(fmt::format("cannot create {}: {}", dir.string(), ec.message()));
  write_file_atomic(img.kernel, kernel_bytes);
  write_file_atomic(img.initramfs, initramfs);
  nlohmann::json m;
  m["format"] = kImageFormat;
  m["digest"] = img.digest;
  m["kernel"] = {{"source", kernel}, {"release", release}, {"digest", digest_hex(kernel_bytes)}};
  m["modules"] = order;
  m["optional_modules"] = img.optional_modules;
  m["builtin_modules"] = img.builtin_modules;
  m["busybox"] = opt.busybox;
  m["guest_programs"] = {{"source", guest}, {"digest", digest_hex(read_file(guest))}};
  m["initramfs"] = {{"bytes", initramfs.size()}, {"digest", digest_hex(initramfs)}};
  write_file_atomic(manifest_path, m.dump(2) + "\n");
  img.rebuilt = true;
  return img;
}

}  // namespace memvirt
