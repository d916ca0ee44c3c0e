#include "lab/qemu_command.hpp"

#include <fmt/format.h>

namespace memvirt {

std::vector<std::string> qemu_argv(const QemuLaunch& l) {
  std::vector<std::string> a = {l.qemu,        "-name",           "memvirt-" + l.name,
                                "-nodefaults", "-no-user-config", "-display",
                                "none",        "-no-reboot"};
  a.insert(a.end(), {"-machine", fmt::format("pc,mem-merge={}", l.mem_merge ? "on" : "off")});
  if (l.accel == "kvm") {
    a.insert(a.end(), {"-accel", "kvm", "-cpu", "host"});
  } else {
    // One host thread per vCPU; the default CPU model (qemu64) boots the cloud kernel.
    a.insert(a.end(), {"-accel", "tcg,thread=multi"});
  }
  a.insert(a.end(),
           {"-m", fmt::format("{}M", l.memory.value() >> 20), "-smp", std::to_string(l.vcpus)});
  a.insert(a.end(), {"-kernel", l.kernel, "-initrd", l.initrd, "-append", l.append});
  a.insert(a.end(), {"-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console"});
  // "@name" is a socket in the abstract namespace (QEMU's abstract=on).
  const bool abstract = !l.qmp_socket.empty() && l.qmp_socket[0] == '@';
  a.insert(a.end(), {"-chardev",
                     fmt::format("socket,id=qmp,path={},server=on,wait=off{}",
                                 abstract ? l.qmp_socket.substr(1) : l.qmp_socket,
                                 abstract ? ",abstract=on" : ""),
                     "-mon", "chardev=qmp,mode=control"});
  a.insert(a.end(),
           {"-device", fmt::format("virtio-balloon-pci,id=balloon0,free-page-reporting={},"
                                   "deflate-on-oom={}",
                                   l.reporting ? "on" : "off", l.deflate_on_oom ? "on" : "off")});
  if (!l.disk.empty()) {
    // QEMU's -drive options are comma-separated; a comma in the path is written twice.
    std::string file;
    for (char c : l.disk) file += c == ',' ? std::string(",,") : std::string(1, c);
    std::string drive = fmt::format("file={},if=none,id=disk0,format=raw,cache={}", file,
                                    spelling_of(kDiskCacheSpellings, l.disk_cache));
    if (l.disk_bps > 0) drive += fmt::format(",throttling.bps-total={}", l.disk_bps);
    a.insert(a.end(), {"-drive", drive, "-device", "virtio-blk-pci,drive=disk0"});
  }
  return a;
}

}  // namespace memvirt
