#include "workload/kernel_build.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "core/rng.hpp"

namespace memvirt {
namespace {

CpuTime cpu_seconds(double s) {
  return CpuTime{static_cast<std::uint64_t>(std::llround(s * 1e12))};
}

// A .cmd file's content differs from its object's.
constexpr std::uint64_t kCmdSalt = 0x636D64ULL;  // "cmd"

// Calls in a row that make no progress (an allocation reclaim freed memory for, taken by
// another before the retry) before the step gives up as out of memory.
constexpr std::uint32_t kMaxIdleRetries = 10000;

}  // namespace

Bytes KernelBuild::Config::disk_needed() const {
  const std::uint64_t cmd = make_overhead ? file_pages(profile->cmd_bytes) : 0;
  const std::uint64_t per_build = profile->output_pages() + cmd * profile->steps.size();
  // make clean frees the previous build's space before the next one writes (the guest's
  // filesystem reuses freed extents), and without it each build rewrites its files in place.
  return Bytes::from_pages(profile->tree_pages() + per_build);
}

KernelBuild::Config KernelBuild::config_from(Params& p) {
  Config c;
  c.chunk_pages = read_touch_chunk(p);
  const std::string file =
      p.data_file("profile", kDefaultProfile,
                  "measured build profile (JSON, profiles/kernel-build/README.md): the tree, every "
                  "compile unit and link step");
  c.image = p.string("image", "linux-source",
                     "content identity of the source tree: the same file contents in every VM");
  c.jobs = static_cast<std::uint32_t>(
      p.integer("jobs", 8, "make -j: compile and link steps run at once", 1, 4096));
  c.builds = static_cast<std::uint32_t>(
      p.integer("builds", 2, "builds run one after another (each after make clean)", 1, 1000));
  c.clean_first = p.boolean("clean_first", true,
                            "make clean before each build (deletes the previous build's objects "
                            "and archives); false: each build rewrites every output (make -B)");
  c.anon_fraction = p.real("anon_fraction", kMeasuredAnonFraction,
                           "share of a step's maximum RSS that is its own anonymous memory "
                           "(measured: 0.66, the rss-split profile's median)",
                           0, 1);
  c.cpu_scale = p.real("cpu_scale", 1.0,
                       "multiplies every measured CPU time: above 1 for a host slower than the "
                       "measuring machine (AMD EPYC, gcc 12), below 1 for a faster one",
                       0, 1000);
  c.make_overhead = p.boolean(
      "make_overhead", true,
      "also run the build's measured work outside the compilers and archivers: make clean's "
      "and make prepare's CPU, make/shells/objtool/fixdep CPU spread over the units, and a "
      "kbuild .cmd file per step");
  c.ramp_steps = static_cast<std::uint32_t>(
      p.integer("ramp_steps", 8,
                "steps in which a compiler's anonymous memory grows while it computes (each "
                "touches its share, then runs its share of the CPU); 1: all of it first",
                1, 1024));
  c.reuse = p.real("reuse", kMeasuredReuse,
                   "share of a compiler's older anonymous pages it reads again in each ramp step "
                   "(measured: the reuse profile's pooled share per eighth of cc1's CPU time); "
                   "0: each page is touched once",
                   0, 1);
  c.request = p.bytes("request", Bytes{128 * 1024},
                      "bytes per read(2) or write(2) call; small files read one after another "
                      "share one piece of CPU work per request's worth");
  if (c.request.pages() == 0) p.fail("request", "must be at least one page");
  c.start = p.duration("start", Duration{0}, "delay after boot");
  c.profile =
      std::make_shared<const KernelBuildProfile>(load_kernel_build_profile(file, c.make_overhead));
  return c;
}

KernelBuild::KernelBuild(Config c) : cfg_(std::move(c)), prof_(cfg_.profile.get()) {
  request_pages_ = cfg_.request.pages();
  cmd_pages_ = cfg_.make_overhead ? file_pages(prof_->cmd_bytes) : 0;
  outputs_.assign(prof_->steps.size(), kNone);
  cmds_.assign(prof_->steps.size(), kNone);
  jobs_.resize(cfg_.jobs);
  for (std::uint32_t s = cfg_.jobs; s-- > 0;) free_slots_.push_back(s);
}

std::optional<FileId> KernelBuild::output(std::size_t step) const {
  if (outputs_.at(step) == kNone) return std::nullopt;
  return FileId{outputs_[step]};
}

std::optional<FileId> KernelBuild::cmd_file(std::size_t step) const {
  if (cmds_.at(step) == kNone) return std::nullopt;
  return FileId{cmds_[step]};
}

void KernelBuild::start(const WorkloadEnv& env) {
  env_ = env;
  content_.emplace(env.seed, env.vm_index, 3000 + env.workload_index);
  // A build's outputs hold the same contents in every VM and every build of one tree: a
  // kernel build is reproducible but for the few files that embed the build's time [assumed].
  output_base_ = splitmix64(name_hash(cfg_.image) ^ name_hash("kernel_build outputs"));
  env.queue->after(cfg_.start, EventQueue::kWorkload, [this](TimePoint) {
    if (!*env_.vm_alive) return;
    // The tree was unpacked (and configured, prepared) before: its files are on the disk, none
    // in the page cache. A file's contents are the image's, by path, so the same tree in two
    // VMs has the same pages.
    GuestKernel& k = *env_.kernel;
    const std::uint64_t image = name_hash(cfg_.image);
    tree_.reserve(prof_->tree.size());
    for (const KernelBuildProfile::TreeFile& f : prof_->tree) {
      const std::uint64_t content = std::max<std::uint64_t>(1, splitmix64(image ^ f.path_hash));
      tree_.push_back(k.create_file(Bytes::from_pages(file_pages(f.bytes)), content));
    }
    next_command();
  });
}

bool KernelBuild::alive(std::uint32_t pid) const {
  const Process* p = env_.kernel->process(pid);
  return p != nullptr && p->alive;
}

void KernelBuild::next_command() {
  if (!*env_.vm_alive) return;
  if (build_ == cfg_.builds) {
    if (env_.finished) env_.finished();
    return;
  }
  if (cfg_.clean_first) {
    make_clean();
  } else {
    begin_build();
  }
}

void KernelBuild::make_clean() {
  // make clean deletes every object, archive and .cmd file the previous build left (none
  // before the first); the generated headers and host tools of make prepare stay.
  GuestKernel& k = *env_.kernel;
  for (auto* list : {&outputs_, &cmds_}) {
    for (std::uint32_t& f : *list) {
      if (f == kNone) continue;
      k.unlink(FileId{f});
      f = kNone;
    }
  }
  cleaned_ = true;
  run_make(cfg_.make_overhead ? cpu_seconds(prof_->clean_cpu_s * cfg_.cpu_scale) : CpuTime{},
           [this] { begin_build(); });
}

void KernelBuild::run_make(CpuTime cpu, std::function<void()> then) {
  // make's own work: a process that runs `cpu` on the vCPUs, exits, then the build goes on.
  GuestKernel& k = *env_.kernel;
  const std::uint32_t pid = k.spawn("make");
  k.charge_vcpu(cpu);
  k.run(pid, cpu, [this, pid, then = std::move(then)] {
    if (!*env_.vm_alive) return;
    if (alive(pid)) env_.kernel->exit(pid);
    then();
  });
}

void KernelBuild::begin_build() {
  ++build_;
  next_step_ = 0;
  waiting_.clear();
  inputs_left_.resize(prof_->steps.size());
  for (std::size_t s = 0; s < prof_->steps.size(); ++s)
    inputs_left_[s] = prof_->steps[s].step_inputs;
  running_ = 0;
  failed_ = false;
  in_build_ = true;
  const bool prepare = cleaned_ && cfg_.make_overhead && prof_->prepare_cpu_s > 0;
  cleaned_ = false;
  if (!prepare) {
    dispatch();
    return;
  }
  // After a clean, the build first redoes what make clean removed of make prepare's work
  // (measured: phases.prepare_after_clean), before any unit.
  run_make(cpu_seconds(prof_->prepare_cpu_s * cfg_.cpu_scale), [this] { dispatch(); });
}

void KernelBuild::dispatch() {
  if (dispatching_) {
    dispatch_again_ = true;
    return;
  }
  dispatching_ = true;
  do {
    dispatch_again_ = false;
    dispatch_once();
  } while (dispatch_again_);
  dispatching_ = false;
}

void KernelBuild::dispatch_once() {
  if (!*env_.vm_alive || !in_build_) return;
  const std::size_t steps = prof_->steps.size();
  // Steps start in the profile's order, at most `jobs` at once. A link whose inputs are not
  // all made waits, and the steps after it go on; it starts as soon as they are, before any
  // later step.
  while (!failed_ && running_ < cfg_.jobs) {
    const auto ready = std::find_if(waiting_.begin(), waiting_.end(),
                                    [this](std::uint32_t s) { return inputs_left_[s] == 0; });
    if (ready != waiting_.end()) {
      const std::uint32_t s = *ready;
      waiting_.erase(ready);
      launch(s);
      continue;
    }
    if (next_step_ == steps) break;
    const auto s = static_cast<std::uint32_t>(next_step_++);
    if (inputs_left_[s] > 0) {
      waiting_.push_back(s);
      continue;
    }
    launch(s);
  }
  if (running_ > 0) return;
  if (!failed_ && (next_step_ < steps || !waiting_.empty())) {
    throw std::logic_error("kernel_build: a link waits for inputs no step will make");
  }
  // The build is over. A failed one (a step was OOM-killed) stops starting steps and waits
  // for those running, as make does without -k; the command sequence goes on, as the seed's
  // `make clean; make -j8; ...` does after a failed make.
  in_build_ = false;
  if (failed_) {
    ++builds_failed_;
  } else {
    stats_.cycles.add();
  }
  next_command();
}

void KernelBuild::launch(std::uint32_t step) {
  const std::uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  Job& j = jobs_[slot];
  j = Job{};
  j.step = step;
  j.pid = env_.kernel->spawn(prof_->steps[step].link ? "ld" : "cc1");
  // The pages the unit accesses again depend only on the scenario seed, the VM, the
  // workload, the build and the step, not on what else runs.
  j.key =
      Rng(env_.seed, "kernel_build.reuse",
          splitmix64(splitmix64(splitmix64(env_.vm_index) ^ env_.workload_index) ^ build_) ^ step)
          .next();
  ++running_;
  advance(slot);
}

void KernelBuild::run_then(std::uint32_t slot, CpuTime work, std::uint64_t wait) {
  env_.kernel->run(jobs_[slot].pid, work, [this, slot, wait] {
    if (!*env_.vm_alive) return;
    if (wait == 0) {
      advance(slot);
      return;
    }
    // The I/O was submitted before the work ran and may have completed meanwhile.
    env_.kernel->when_done(wait, [this, slot] { advance(slot); });
  });
}

void KernelBuild::advance(std::uint32_t slot) {
  if (!*env_.vm_alive) return;
  Job& j = jobs_[slot];
  if (!alive(j.pid)) {
    // The OOM killer chose it while it waited or another process ran.
    stats_.killed.add();
    finish_job(slot, false);
    return;
  }
  switch (j.phase) {
    case Phase::kRead:
      read_phase(slot);
      return;
    case Phase::kCompute:
      compute_phase(slot);
      return;
    case Phase::kRelease: {
      // The compiler exits, freeing its memory; the object is written after it (gcc's `as`
      // writes it once cc1 is done).
      CpuTime work{};
      if (j.region != 0) {
        work = env_.kernel->munmap(j.pid, j.region);
        stats_.pages_freed.add(j.touched);
        j.region = 0;
      }
      j.phase = Phase::kWrite;
      j.offset = 0;
      run_then(slot, work);
      return;
    }
    case Phase::kWrite:
      write_phase(slot);
      return;
  }
}

FileId KernelBuild::read_file_of(std::uint32_t ref) const {
  if ((ref & KernelBuildProfile::kStepOutput) == 0) return tree_[ref];
  const std::uint32_t f = outputs_[ref & ~KernelBuildProfile::kStepOutput];
  if (f == kNone) throw std::logic_error("kernel_build: a step reads an output not yet made");
  return FileId{f};
}

void KernelBuild::read_phase(std::uint32_t slot) {
  Job& j = jobs_[slot];
  GuestKernel& k = *env_.kernel;
  const KernelBuildProfile::Step& s = prof_->steps[j.step];
  // Whole files, in order, `request` pages per read call. The calls' work runs on the vCPU
  // once a request's worth of pages is read (small headers share one piece of work) or when
  // a read must wait for the disk.
  CpuTime work{};
  std::uint64_t pages = 0;
  while (j.read < s.reads.size()) {
    const FileId f = read_file_of(s.reads[j.read]);
    const std::uint64_t size = k.file(f).pages;
    if (j.offset >= size) {
      ++j.read;
      j.offset = 0;
      continue;
    }
    if (pages >= request_pages_) break;
    const TouchResult r =
        k.read_file(j.pid, f, j.offset, std::min(request_pages_, size - j.offset));
    j.offset += r.pages;
    pages += r.pages;
    work += r.guest + r.host;
    stats_.pages_touched.add(r.pages);
    if (r.status == TouchStatus::kOutOfMemory || r.status == TouchStatus::kKilled) {
      stats_.killed.add();
      finish_job(slot, false);
      return;
    }
    if (r.status == TouchStatus::kBlocked) {
      j.idle_retries = 0;
      run_then(slot, work, r.wait);
      return;
    }
    if (r.pages == 0) {
      // Reclaim freed memory for the page; the read is tried again after this work.
      if (++j.idle_retries > kMaxIdleRetries) {
        stats_.killed.add();
        finish_job(slot, false);
        return;
      }
      run_then(slot, work);
      return;
    }
    j.idle_retries = 0;
  }
  if (j.read == s.reads.size()) {
    j.phase = Phase::kCompute;
    j.anon_pages = static_cast<std::uint64_t>(
        cfg_.anon_fraction * static_cast<double>(s.max_rss_kib) * 1024.0 / kPageSize);
    if (j.anon_pages > 0) j.region = k.mmap(j.pid, Bytes::from_pages(j.anon_pages));
  }
  run_then(slot, work);
}

CpuTime KernelBuild::program_cpu(const KernelBuildProfile::Step& s) const {
  double cpu = s.cpu_s;
  if (!s.link && cfg_.make_overhead) cpu += prof_->rest_cpu_s / static_cast<double>(prof_->units);
  return cpu_seconds(cpu * cfg_.cpu_scale);
}

void KernelBuild::compute_phase(std::uint32_t slot) {
  Job& j = jobs_[slot];
  GuestKernel& k = *env_.kernel;
  const KernelBuildProfile::Step& s = prof_->steps[j.step];
  if (!j.slice_begun) {
    j.slice_begun = true;
    j.base = j.touched;
    j.scan = 0;
  }
  // The compiler's memory grows while it computes [assumed: evenly over its CPU time]: ramp
  // step r touches up to (r + 1) / ramp_steps of it, accesses `reuse` of what it had before
  // the step again, then runs its share of the CPU.
  const std::uint64_t target = j.anon_pages * (j.ramp + 1) / cfg_.ramp_steps;
  CpuTime work{};
  if (j.touched < target) {
    const std::uint64_t n = std::min(target - j.touched, cfg_.chunk_pages);
    const TouchResult r =
        k.touch(j.pid, j.region, n, [this](std::uint64_t) { return content_->next(); });
    j.touched += r.pages;
    stats_.pages_touched.add(r.pages);
    work = r.guest + r.host;
    if (r.status == TouchStatus::kKilled || r.status == TouchStatus::kOutOfMemory ||
        !alive(j.pid)) {
      stats_.killed.add();
      finish_job(slot, false);
      return;
    }
    if (r.status == TouchStatus::kBlocked) {
      run_then(slot, work, r.wait);
      return;
    }
    if (j.touched < target) {
      if (r.pages == 0 && ++j.idle_retries > kMaxIdleRetries) {
        stats_.killed.add();
        finish_job(slot, false);
        return;
      }
      run_then(slot, work);  // the next chunk
      return;
    }
    j.idle_retries = 0;
  }
  // A compiler references a share of the pages it had before the step again during the
  // step [measured: `reuse`, cc1's referenced pages per eighth of its CPU time], most of them
  // the pages it referenced in the step before [measured: kMeasuredReusePersistence]. Which
  // pages is not measured [assumed: each page has a position drawn for it in [0, 1), from the
  // unit and the page; step r accesses the pages whose position lies in a window of width
  // `reuse` that moves by (1 - persistence) x reuse each step, so a page is used for a few
  // steps in a row, then rests, and the pages used are spread over the whole region]. They
  // are read [assumed: the profile counts referenced pages, not written ones; a page swapped
  // in keeps its swap copy]. Archive and link steps' memory is not measured: not reused.
  // Up to touch_chunk pages are accessed per call; a page swapped out blocks the compiler
  // while it is read back, then the same page is accessed again.
  if (cfg_.reuse > 0 && !s.link) {
    const double width = cfg_.reuse;
    const double drift = (1 - kMeasuredReusePersistence) * width;
    const double from = std::fmod(drift * static_cast<double>(j.ramp), 1.0);
    for (std::uint64_t n = 0; j.scan < j.base; ++j.scan) {
      const double position =
          static_cast<double>(splitmix64(j.key + j.scan) >> 11) * 0x1.0p-53 - from;
      if ((position < 0 ? position + 1 : position) >= width) continue;
      if (n++ == cfg_.chunk_pages) {
        run_then(slot, work);
        return;
      }
      const TouchResult r = k.access(j.pid, j.region, j.scan, false, Fingerprint{});
      work += r.guest + r.host;
      if (!alive(j.pid)) {
        stats_.killed.add();
        finish_job(slot, false);
        return;
      }
      if (r.status == TouchStatus::kBlocked) {
        // Swapped in, or waiting for memory to read it into (given up, as out of memory,
        // when none comes).
        if (++j.idle_retries > kMaxIdleRetries) {
          stats_.killed.add();
          finish_job(slot, false);
          return;
        }
        run_then(slot, work, r.wait);
        return;
      }
      j.idle_retries = 0;
    }
  }
  const std::uint64_t total = program_cpu(s).ps;
  const CpuTime share{total * (j.ramp + 1) / cfg_.ramp_steps - total * j.ramp / cfg_.ramp_steps};
  k.charge_vcpu(share);
  j.slice_begun = false;
  if (++j.ramp == cfg_.ramp_steps) j.phase = Phase::kRelease;
  run_then(slot, work + share);
}

Fingerprint KernelBuild::output_content(std::uint64_t hash, std::uint64_t page) const {
  return make_fingerprint(splitmix64(output_base_ ^ splitmix64(hash + page)));
}

void KernelBuild::write_phase(std::uint32_t slot) {
  Job& j = jobs_[slot];
  GuestKernel& k = *env_.kernel;
  const KernelBuildProfile::Step& s = prof_->steps[j.step];
  std::uint32_t& file = j.writing_cmd ? cmds_[j.step] : outputs_[j.step];
  const std::uint64_t total = j.writing_cmd ? cmd_pages_ : file_pages(s.out_bytes);
  if (j.offset == 0 && !j.opened) {
    // open(O_CREAT | O_TRUNC): a new file after a clean, else the old one emptied.
    if (file == kNone) {
      file = k.create_file(Bytes{0}, 0, Bytes::from_pages(total)).value();
    } else {
      k.truncate(FileId{file}, 0);
    }
    j.opened = true;
  }
  if (j.offset < total) {
    const std::uint64_t hash = j.writing_cmd ? s.out_hash ^ kCmdSalt : s.out_hash;
    const TouchResult r =
        k.write_file(j.pid, FileId{file}, j.offset, std::min(request_pages_, total - j.offset),
                     [this, hash](std::uint64_t page) { return output_content(hash, page); });
    j.offset += r.pages;
    stats_.pages_touched.add(r.pages);
    if (r.status == TouchStatus::kOutOfMemory || r.status == TouchStatus::kKilled ||
        !alive(j.pid)) {
      stats_.killed.add();
      finish_job(slot, false);
      return;
    }
    if (r.status == TouchStatus::kBlocked) {
      run_then(slot, r.guest + r.host, r.wait);
      return;
    }
    if (r.pages == 0 && ++j.idle_retries > kMaxIdleRetries) {
      stats_.killed.add();
      finish_job(slot, false);
      return;
    }
    if (r.pages > 0) j.idle_retries = 0;
    run_then(slot, r.guest + r.host);
    return;
  }
  if (!j.writing_cmd && cmd_pages_ > 0) {
    // kbuild's .cmd file for the target (written by fixdep after the compiler) [measured:
    // the mean size of the .cmd files make clean deleted].
    j.writing_cmd = true;
    j.offset = 0;
    j.opened = false;
    write_phase(slot);
    return;
  }
  finish_job(slot, true);
}

void KernelBuild::finish_job(std::uint32_t slot, bool ok) {
  Job& j = jobs_[slot];
  GuestKernel& k = *env_.kernel;
  // exit(2); a failed step's memory is freed by its death (the OOM killer's exit, or this).
  if (alive(j.pid)) k.exit(j.pid);
  const KernelBuildProfile::Step& s = prof_->steps[j.step];
  if (ok) {
    if (!s.link) stats_.operations.add();
    for (const std::uint32_t reader : s.readers) --inputs_left_[reader];
  } else {
    // make deletes the target of a recipe that died of a signal; the build stops.
    failed_ = true;
    const bool output_opened = j.phase == Phase::kWrite && (j.opened || j.writing_cmd);
    const bool cmd_opened = j.writing_cmd && j.opened;
    for (auto [list, opened] :
         {std::pair{&outputs_, output_opened}, std::pair{&cmds_, cmd_opened}}) {
      if (std::uint32_t& f = (*list)[j.step]; opened && f != kNone) {
        k.unlink(FileId{f});
        f = kNone;
      }
    }
  }
  --running_;
  free_slots_.push_back(slot);
  dispatch();
}

}  // namespace memvirt
