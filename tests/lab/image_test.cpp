// The newc writer and reader, module ordering, and the guest image built from the Debian
// packages scripts/setup.sh installs.
#include "lab/image.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

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

TEST(ModuleOrder, BuiltInModulesAreLeftOut) {
  const std::string dep =
      "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko\n"
      "kernel/lib/crc16.ko:\nkernel/fs/mbcache.ko:\nkernel/fs/jbd2/jbd2.ko:\n"
      "kernel/crypto/lz4.ko: kernel/lib/lz4/lz4_compress.ko\nkernel/lib/lz4/lz4_compress.ko:\n";
  const std::string builtin = "kernel/mm/zswap.ko\nkernel/mm/zbud.ko\nkernel/crypto/lzo-rle.ko\n";
  EXPECT_EQ(builtin_module_names(builtin), (std::set<std::string>{"zswap", "zbud", "lzo_rle"}));
  const std::vector<std::string> want = {"jbd2", "mbcache", "crc16", "ext4", "lz4_compress", "lz4"};
  EXPECT_EQ(module_load_order(dep, {"zswap", "ext4", "zbud", "lz4"}, builtin), want);
  try {
    module_load_order(dep, {"zstd"}, builtin);
    FAIL() << "a module in neither file must be an error";
  } catch (const LabError& e) {
    EXPECT_NE(std::string(e.what()).find("module zstd is neither in modules.dep nor built in"),
              std::string::npos);
  }
}

TEST(FindKernel, EachFlavourItsNewestKernel) {
  const fs::path boot = fs::temp_directory_path() / fmt::format("memvirt-boot-test-{}", getpid());
  fs::create_directories(boot);
  for (const char* k :
       {"vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-57-amd64", "vmlinuz-6.1.0-57-cloud-amd64",
        "vmlinuz-6.1.0-10-cloud-amd64", "vmlinuz-6.1.0-99-rt-amd64", "config-6.1.0-99-amd64"}) {
    write_file_atomic((boot / k).string(), "x");
  }
  EXPECT_EQ(find_kernel(KernelFlavour::kGeneric, boot.string()),
            (boot / "vmlinuz-6.1.0-57-amd64").string());
  EXPECT_EQ(find_kernel(KernelFlavour::kCloud, boot.string()),
            (boot / "vmlinuz-6.1.0-57-cloud-amd64").string());
  EXPECT_EQ(find_cloud_kernel(boot.string()), find_kernel(KernelFlavour::kCloud, boot.string()));
  fs::remove_all(boot);
  EXPECT_EQ(find_kernel(KernelFlavour::kGeneric, boot.string()), "");
  EXPECT_STREQ(kernel_package(KernelFlavour::kGeneric), "linux-image-amd64");
  EXPECT_STREQ(kernel_package(KernelFlavour::kCloud), "linux-image-cloud-amd64");
}

// A kernel whose modules are compressed (.ko.xz, as Debian 13 ships them): busybox insmod
// cannot load them, so the image build says which module and why.
TEST(LabImage, CompressedModulesAreAClearError) {
  const char* bin = std::getenv("MEMVIRT_BIN");
  if (bin == nullptr) GTEST_SKIP() << "MEMVIRT_BIN not set: run this test through ctest";
  const fs::path root = fs::temp_directory_path() / fmt::format("memvirt-xz-test-{}", getpid());
  fs::remove_all(root);
  const std::string release = "9.9.9-1-amd64";
  fs::create_directories(root / "boot");
  fs::create_directories(root / "modules" / release);
  write_file_atomic((root / "boot" / ("vmlinuz-" + release)).string(), "kernel");
  std::string dep;
  for (const char* m : {"virtio_ring", "virtio", "virtio_pci", "virtio_balloon", "virtio_blk",
                        "virtio_console", "crc32c_generic", "ext4"}) {
    dep += fmt::format("kernel/{}.ko.xz:\n", m);
  }
  write_file_atomic((root / "modules" / release / "modules.dep").string(), dep);
  ImageOptions opt;
  opt.dir = (root / "image").string();
  opt.flavour = KernelFlavour::kGeneric;
  opt.boot_dir = (root / "boot").string();
  opt.modules_root = (root / "modules").string();
  opt.guest_programs = (fs::path(bin).parent_path() / "memvirt-guest").string();
  try {
    build_image(opt);
    FAIL() << "expected an error";
  } catch (const LabError& e) {
    EXPECT_NE(std::string(e.what()).find("module virtio_ring of kernel 9.9.9-1-amd64 is compressed "
                                         "(kernel/virtio_ring.ko.xz)"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(opt.dir));
  fs::remove_all(root);
}

// The generic kernel's image beside the cloud kernel's, from the installed packages: its own
// folder, ext4 and the virtio drivers loaded at boot, zswap's compressors in the image.
TEST(LabImage, GenericKernelImageHasZswapAndCoexists) {
  const char* bin = std::getenv("MEMVIRT_BIN");
  if (bin == nullptr) GTEST_SKIP() << "MEMVIRT_BIN not set: run this test through ctest";
  if (find_kernel(KernelFlavour::kGeneric).empty()) {
    GTEST_SKIP() << "SKIPPED LOUDLY: no Debian generic kernel in /boot (vmlinuz-<version>-amd64): "
                    "install linux-image-amd64 (bash scripts/setup.sh); the lab's zswap needs it";
  }
  ImageOptions opt;
  opt.guest_programs = (fs::path(bin).parent_path() / "memvirt-guest").string();
  opt.dir = fs::temp_directory_path() / fmt::format("memvirt-image-generic-test-{}", getpid());
  fs::remove_all(opt.dir);
  opt.flavour = KernelFlavour::kGeneric;
  const GuestImage generic = build_image(opt);
  opt.flavour = KernelFlavour::kCloud;
  const GuestImage cloud = build_image(opt);
  EXPECT_TRUE(generic.rebuilt);
  EXPECT_TRUE(cloud.rebuilt);
  EXPECT_NE(generic.dir, cloud.dir);
  EXPECT_EQ(fs::path(generic.dir).parent_path(), fs::path(opt.dir));
  EXPECT_EQ(fs::path(generic.dir).filename(), generic.kernel_release);
  EXPECT_EQ(generic.kernel_release.find("cloud"), std::string::npos);
  EXPECT_TRUE(generic.has_module("zswap"));
  EXPECT_TRUE(generic.has_module("zbud"));
  EXPECT_TRUE(generic.has_module("lzo"));
  EXPECT_TRUE(generic.has_module("lz4"));
  EXPECT_TRUE(generic.has_module("zstd"));
  EXPECT_FALSE(cloud.has_module("zswap"));
  // Debian 12's generic kernel has ext4 as a module; the cloud kernel builds it in.
  EXPECT_NE(std::find(generic.modules.begin(), generic.modules.end(), "ext4"),
            generic.modules.end());
  EXPECT_EQ(std::find(cloud.modules.begin(), cloud.modules.end(), "ext4"), cloud.modules.end());
  std::map<std::string, CpioEntry> files;
  for (auto& e : read_cpio(read_file(generic.initramfs))) files[e.name] = e;
  for (const char* f :
       {"lib/modules/ext4.ko", "lib/modules/crc32c_generic.ko", "lib/modules/virtio_blk.ko",
        "lib/modules/lz4.ko", "lib/modules/lz4_compress.ko", "etc/memvirt/optional/lz4"}) {
    EXPECT_TRUE(files.count(f)) << f << " missing from the generic initramfs";
  }
  EXPECT_EQ(files["etc/memvirt/optional/lz4"].data, "lz4_compress\nlz4\n");
  EXPECT_NE(files["init"].data.find("load_module()"), std::string::npos);
  // Building one does not disturb the other.
  opt.flavour = KernelFlavour::kGeneric;
  EXPECT_FALSE(build_image(opt).rebuilt);
  EXPECT_TRUE(fs::exists(cloud.kernel));
  fs::remove_all(opt.dir);
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
