#include "workload/file_reader.hpp"

#include <algorithm>

namespace memvirt {

FileReader::Config FileReader::config_from(Params& p) {
  Config c;
  read_touch_chunk(p);  // read like every workload's, so the key is valid on all of them
  c.files = static_cast<std::uint64_t>(p.integer("files", 1, "number of files", 1, 1'000'000));
  c.size = p.required_bytes("size", "size of each file");
  if (c.size.pages() == 0) p.fail("size", "must be at least one page");
  c.shared = p.boolean("shared", true, "the files are the image's: the same contents in every VM");
  c.image = p.string("image", "files", "content identity of shared files");
  c.pattern = p.option("pattern", Pattern::kSequential,
                       std::array<Spelling<Pattern>, 2>{
                           {{Pattern::kSequential, "sequential"}, {Pattern::kRandom, "random"}}},
                       "order of the requests within a file");
  c.request = p.bytes("request", Bytes{128 * 1024}, "bytes per read(2) or write(2) call");
  if (c.request.pages() == 0) p.fail("request", "must be at least one page");
  c.passes = p.integer("passes", 1, "times the whole file set is read", 1, 1'000'000);
  c.rate = p.bytes("rate", Bytes{0}, "bytes per second (a size read as per second); 0: no limit");
  c.start = p.duration("start", Duration{0}, "delay after boot");
  c.write = p.boolean("write", false, "write the files instead of reading them");
  return c;
}

void FileReader::start(const WorkloadEnv& env) {
  env_ = env;
  rng_.emplace(env.seed, "file_reader", env.vm_index * 1000 + env.workload_index);
  content_.emplace(env.seed, env.vm_index, 3000 + env.workload_index);
  env.queue->after(cfg_.start, EventQueue::kWorkload, [this](TimePoint now) {
    if (!*env_.vm_alive) return;
    GuestKernel& k = *env_.kernel;
    pid_ = k.spawn("file_reader");
    for (std::uint64_t i = 0; i < cfg_.files; ++i) {
      const std::uint64_t content =
          cfg_.shared ? name_hash(cfg_.image) + i
                      : splitmix64(env_.seed ^ splitmix64(env_.vm_index * 7919 + i + 1));
      files_.push_back(cfg_.write ? k.create_file(Bytes{0}, content, cfg_.size)
                                  : k.create_file(cfg_.size, content));
    }
    started_ = now;
    stats_.measured = Duration{0};
    next_request();
    step();
  });
}

void FileReader::next_request() {
  const std::uint64_t pages = cfg_.size.pages();
  request_pages_ = std::min(cfg_.request.pages(), pages);
  done_in_request_ = 0;
  request_started_ = env_.queue->now();
  if (cfg_.pattern == Pattern::kRandom) {
    const std::uint64_t slots = std::max<std::uint64_t>(pages / request_pages_, 1);
    offset_ = rng_->below(slots) * request_pages_;
  }
}

void FileReader::step() {
  if (!*env_.vm_alive) return;
  GuestKernel& k = *env_.kernel;
  if (!k.process(pid_)->alive) {
    stats_.killed.add();
    if (env_.finished) env_.finished();
    return;
  }
  const FileId f = files_[file_];
  const std::uint64_t first = offset_ + done_in_request_;
  const std::uint64_t left = request_pages_ - done_in_request_;
  const TouchResult r =
      cfg_.write
          ? k.write_file(pid_, f, first, left, [this](std::uint64_t) { return content_->next(); })
          : k.read_file(pid_, f, first, left);
  done_in_request_ += r.pages;
  stats_.pages_touched.add(r.pages);
  stats_.operations.add(r.pages);
  if (r.status == TouchStatus::kOutOfMemory || r.status == TouchStatus::kKilled) {
    stats_.killed.add();
    if (env_.finished) env_.finished();
    return;
  }
  // The call's work runs on the guest's vCPUs; a blocked read then waits for its I/O (which
  // was submitted before the work and may have completed meanwhile).
  const CpuTime work = r.guest + r.host;
  if (r.status == TouchStatus::kBlocked) {
    k.run(pid_, work, [this, wait = r.wait] { env_.kernel->when_done(wait, [this] { step(); }); });
    return;
  }
  if (done_in_request_ < request_pages_ && r.pages > 0) {
    k.run(pid_, work, [this] { step(); });
    return;
  }
  // The request is done: on to the next one, paced by the rate.
  TimePoint not_before = env_.queue->now();
  if (cfg_.rate.value() > 0) {
    not_before =
        request_started_ + Duration::seconds(static_cast<double>(request_pages_ * kPageSize) /
                                             static_cast<double>(cfg_.rate.value()));
  }
  if (cfg_.pattern == Pattern::kSequential) offset_ += request_pages_;
  const std::uint64_t per_file = std::max<std::uint64_t>(cfg_.size.pages() / request_pages_, 1);
  const bool file_done = cfg_.pattern == Pattern::kSequential
                             ? offset_ >= cfg_.size.pages()
                             : (stats_.pages_touched.value() / request_pages_) % per_file == 0;
  if (file_done) {
    offset_ = 0;
    if (++file_ == files_.size()) {
      file_ = 0;
      stats_.cycles.add();
      if (static_cast<std::int64_t>(++pass_) >= cfg_.passes) {
        k.run(pid_, work, [this] {
          stats_.measured = env_.queue->now() - started_;
          if (env_.finished) env_.finished();
        });
        return;
      }
    }
  }
  next_request();
  k.run(pid_, work, [this, not_before] {
    env_.queue->at(std::max(not_before, env_.queue->now()), EventQueue::kWorkload,
                   [this](TimePoint) { step(); });
  });
}

}  // namespace memvirt
