// The newc writer and reader, module ordering, and the guest image built from the Debian
// packages scripts/setup.sh installs.
#include "lab/image.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "lab/cpio.hpp"
#include "lab/files.hpp"
#include "lab/lab_error.hpp"

namespace memvirt {
namespace {

namespace fs = std::filesystem;

TEST(Cpio, RoundTripsEntriesWithNewcAlignment) {
  CpioWriter w;
  w.directory("etc");
  w.file("etc/a", "hello", 0644);
  w.file("etc/odd-name", std::string(4097, 'x'), 0755);
  w.symlink("bin-sh", "busybox");
  w.char_device("console", 5, 1);
  const std::string a = w.finish();
  EXPECT_EQ(a.size() % 4, 0u);
  EXPECT_EQ(a.substr(0, 6), "070701");
  const auto e = read_cpio(a);
  ASSERT_EQ(e.size(), 5u);
  EXPECT_EQ(e[0].name, "etc");
  EXPECT_EQ(e[0].mode, 0040755u);
  EXPECT_EQ(e[1].data, "hello");
  EXPECT_EQ(e[1].mode, 0100644u);
  EXPECT_EQ(e[2].data.size(), 4097u);
  EXPECT_EQ(e[2].mode, 0100755u);
  EXPECT_EQ(e[3].data, "busybox");
  EXPECT_EQ(e[3].mode & 0170000u, 0120000u);
  EXPECT_EQ(e[4].rdev_major, 5u);
  EXPECT_EQ(e[4].rdev_minor, 1u);
}

TEST(Cpio, DeterministicAndConcatenable) {
  auto make = [](const std::string& content) {
    CpioWriter w;
    w.file("f", content);
    return w.finish();
  };
  EXPECT_EQ(make("same"), make("same"));
  const auto both = read_cpio(make("one") + make("two!"));
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[0].data, "one");
  EXPECT_EQ(both[1].data, "two!");
}

TEST(Cpio, MalformedArchiveIsAnError) {
  EXPECT_THROW(read_cpio("070701zz"), std::runtime_error);
  CpioWriter w;
  w.file("f", "contents");
  std::string a = w.finish();
  EXPECT_THROW(read_cpio(a.substr(0, 120)), std::runtime_error);
}

TEST(ModuleOrder, DependenciesFirstEachOnce) {
  const std::string dep =
      "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n"
      "kernel/drivers/virtio/virtio_ring.ko:\n"
      "kernel/drivers/virtio/virtio_pci_modern_dev.ko:\n"
      "kernel/drivers/virtio/virtio_pci_legacy_dev.ko:\n"
      "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko "
      "kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko "
      "kernel/drivers/virtio/virtio_ring.ko\n"
      "kernel/drivers/virtio/virtio_balloon.ko: kernel/drivers/virtio/virtio.ko "
      "kernel/drivers/virtio/virtio_ring.ko\n"
      "kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko\n";
  const auto order = module_load_order(dep, {"virtio_balloon", "virtio_pci", "virtio_rng"});
  const std::vector<std::string> want = {
      "virtio_ring",           "virtio",     "virtio_balloon", "virtio_pci_modern_dev",
      "virtio_pci_legacy_dev", "virtio_pci", "virtio_rng"};
  EXPECT_EQ(order, want);
  EXPECT_THROW(module_load_order(dep, {"virtio_mem"}), LabError);
}

// The image from the installed Debian packages: a missing package is a failed setup, not a
// reason to skip.
TEST(LabImage, BuildsFromDebianPackagesDeterministically) {
  const char* bin = std::getenv("MEMVIRT_BIN");
  if (bin == nullptr) GTEST_SKIP() << "MEMVIRT_BIN not set: run this test through ctest";
  ImageOptions opt;
  opt.guest_programs = (fs::path(bin).parent_path() / "memvirt-guest").string();
  opt.dir = fs::temp_directory_path() / fmt::format("memvirt-image-test-{}", getpid());
  fs::remove_all(opt.dir);
  const GuestImage img = build_image(opt);
  EXPECT_TRUE(img.rebuilt);
  EXPECT_TRUE(fs::exists(img.kernel));
  EXPECT_NE(img.kernel_release.find("cloud-amd64"), std::string::npos);
  const std::vector<std::string> want_first = {"virtio_ring", "virtio"};
  ASSERT_GE(img.modules.size(), 5u);
  EXPECT_EQ(std::vector<std::string>(img.modules.begin(), img.modules.begin() + 2), want_first);
  EXPECT_EQ(img.modules.back(), "virtio_console");

  std::map<std::string, CpioEntry> files;
  for (auto& e : read_cpio(read_file(img.initramfs))) files[e.name] = e;
  for (const char* f :
       {"init", "bin/busybox", "bin/sh", "bin/memvirt-guest", "dev/console", "etc/memvirt/modules",
        "lib/modules/virtio_balloon.ko", "lib/modules/virtio_pci.ko"}) {
    EXPECT_TRUE(files.count(f)) << f << " missing from the initramfs";
  }
  EXPECT_EQ(files["init"].mode, 0100755u);
  EXPECT_NE(files["init"].data.find("insmod"), std::string::npos);
  EXPECT_NE(files["init"].data.find("/etc/memvirt/vm.sh"), std::string::npos);
  EXPECT_EQ(files["bin/memvirt-guest"].data, read_file(opt.guest_programs));
  // ELF kernel modules, uncompressed, for busybox insmod.
  EXPECT_EQ(files["lib/modules/virtio_balloon.ko"].data.substr(0, 4),
            "\x7f"
            "ELF");
  // Module list in load order.
  std::string list;
  for (const auto& m : img.modules) list += m + "\n";
  EXPECT_EQ(files["etc/memvirt/modules"].data, list);

  // Same inputs: same image, left as it is.
  const GuestImage again = build_image(opt);
  EXPECT_FALSE(again.rebuilt);
  EXPECT_EQ(again.digest, img.digest);
  fs::remove_all(opt.dir);
}

TEST(LabImage, MissingGuestProgramsAreNamed) {
  ImageOptions opt;
  opt.dir = fs::temp_directory_path() / fmt::format("memvirt-image-test-missing-{}", getpid());
  opt.guest_programs = "/nonexistent/memvirt-guest";
  try {
    build_image(opt);
    FAIL() << "expected an error";
  } catch (const LabError& e) {
    const std::string m = e.what();
    EXPECT_TRUE(m.find("memvirt-guest") != std::string::npos ||
                m.find("cloud kernel") != std::string::npos)
        << m;
  }
  EXPECT_FALSE(fs::exists(opt.dir));
}

TEST(LabImage, GuestArchiveAddsItsFilesUnderEtc) {
  const auto e = read_cpio(
      guest_archive({{"etc/memvirt/vm.sh", "echo hi\n"}, {"etc/memvirt/w0.amounts", "4096\n"}}));
  std::map<std::string, CpioEntry> files;
  for (const auto& x : e) files[x.name] = x;
  ASSERT_TRUE(files.count("etc/memvirt/vm.sh"));
  EXPECT_EQ(files["etc/memvirt/vm.sh"].mode, 0100755u);
  EXPECT_EQ(files["etc/memvirt/w0.amounts"].mode, 0100644u);
}

}  // namespace
}  // namespace memvirt
