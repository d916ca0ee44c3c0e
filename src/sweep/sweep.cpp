#include "sweep/sweep.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace memvirt::sweep {
namespace {

namespace fs = std::filesystem;

// Holds an exclusive lock on <dir>/.sweep.lock while alive: two sweeps writing one folder
// would each take the other's half-written runs for their own.
class FolderLock {
 public:
  explicit FolderLock(const std::string& dir) {
    const std::string path = (fs::path(dir) / ".sweep.lock").string();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      throw InputError(SourcePlace{dir, 0, "-o"},
                       fmt::format("cannot open {}: {}", path, std::strerror(errno)));
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw InputError(SourcePlace{dir, 0, "-o"},
                       "another sweep is writing this folder (it holds .sweep.lock)");
    }
  }
  ~FolderLock() { ::close(fd_); }
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace

SweepResult run_sweep(const std::string& file, const SweepOptions& opt) {
  SweepResult r;
  r.spec = load_sweep(file);
  r.plan = plan_sweep(r.spec, opt.extensions);
  r.out_dir = opt.out_dir.empty() ? (fs::path("out") / r.spec.name).string() : opt.out_dir;
  std::error_code ec;
  fs::create_directories(r.out_dir, ec);
  if (ec) {
    throw InputError(SourcePlace{r.out_dir, 0, "-o"},
                     "cannot create output folder: " + ec.message());
  }
  const FolderLock lock(r.out_dir);
  PoolOptions pool;
  pool.out_dir = r.out_dir;
  pool.jobs = opt.jobs;
  pool.memory_budget = opt.memory_budget;
  pool.progress = opt.progress;
  r.pool = run_pool(r.plan, pool);
  r.tables = write_tables(r.spec, r.plan, r.out_dir);
  return r;
}

}  // namespace memvirt::sweep
