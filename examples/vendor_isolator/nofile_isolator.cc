#include "nofile_isolator.h"

#include <dirent.h>
#include <sys/resource.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

namespace acme::nofile {

namespace api = tessera::api;

namespace {

// The entries of `dir` (without "." and ".."); empty when it cannot be read (a process that
// went away while we looked).
std::vector<std::string> entriesOf(const std::string& dir) {
  std::vector<std::string> names;
  DIR* handle = ::opendir(dir.c_str());
  if (handle == nullptr) return names;
  while (const dirent* entry = ::readdir(handle)) {
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  ::closedir(handle);
  return names;
}

bool isNumber(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Fields of /proc/<pid>/stat after the command name (which may hold blanks and parentheses,
// hence the last ')'): index 0 is field 3 (state).
std::vector<std::string> statFields(int64_t pid, const std::string& proc) {
  std::ifstream in(proc + "/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return {};
  auto close = line.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string field; rest >> field;) fields.push_back(field);
  return fields;
}

// The parent of every process on the host, for finding a task's descendants.
std::map<int64_t, std::vector<int64_t>> childrenByParent(const std::string& proc) {
  std::map<int64_t, std::vector<int64_t>> children;
  for (const auto& name : entriesOf(proc)) {
    if (!isNumber(name)) continue;
    const int64_t pid = std::stoll(name);
    auto fields = statFields(pid, proc);
    if (fields.size() < 2 || !isNumber(fields[1])) continue;  // field 4: ppid
    children[std::stoll(fields[1])].push_back(pid);
  }
  return children;
}

}  // namespace

api::Result<Options> parseOptions(const api::Parameters& parameters) {
  api::ParameterReader reader(parameters);
  Options options;
  auto limit = reader.integer("limit", static_cast<int64_t>(options.limit));
  if (!limit) return limit.status();
  if (*limit < 1) return api::ParameterReader::invalid("limit", "must be at least 1");
  options.limit = static_cast<uint64_t>(*limit);
  auto interval = reader.duration("sample_interval", options.sampleInterval);
  if (!interval) return interval.status();
  if (interval->count() <= 0) {
    return api::ParameterReader::invalid("sample_interval", "must be positive");
  }
  options.sampleInterval = *interval;
  // Every isolator module is told the agent's --isolation; the agent only calls this one when
  // it names acme/nofile, so there is nothing to check here.
  (void)reader.string("isolation");
  if (auto unknown = reader.rejectUnknown(); !unknown) return unknown;
  return options;
}

api::Status setOpenFileLimit(int64_t pid, uint64_t limit) {
  const rlimit value{static_cast<rlim_t>(limit), static_cast<rlim_t>(limit)};
  if (::prlimit(static_cast<pid_t>(pid), RLIMIT_NOFILE, &value, nullptr) != 0) {
    const int error = errno;
    const char* hint = error == EPERM
                           ? " (raising the hard limit needs CAP_SYS_RESOURCE, and the limit "
                             "cannot exceed fs.nr_open)"
                           : "";
    return api::failedPrecondition("cannot set RLIMIT_NOFILE of process {} to {}: {}{}", pid, limit,
                                   std::strerror(error), hint);
  }
  return api::Status::ok();
}

uint64_t countOpenFiles(int64_t pid, const std::string& proc) {
  // Breadth-first over the process tree below `pid`; `seen` guards against a pid reused into
  // the tree while we walk it.
  const auto children = childrenByParent(proc);
  std::vector<int64_t> pending = {pid};
  std::set<int64_t> seen;
  uint64_t count = 0;
  while (!pending.empty()) {
    const int64_t next = pending.back();
    pending.pop_back();
    if (!seen.insert(next).second) continue;
    count += entriesOf(proc + "/" + std::to_string(next) + "/fd").size();
    if (auto it = children.find(next); it != children.end()) {
      pending.insert(pending.end(), it->second.begin(), it->second.end());
    }
  }
  return count;
}

std::optional<uint64_t> processStartTime(int64_t pid, const std::string& proc) {
  auto fields = statFields(pid, proc);
  if (fields.size() < 20 || !isNumber(fields[19])) return std::nullopt;  // field 22
  return std::stoull(fields[19]);
}

// --- NofileIsolator ------------------------------------------------------------------------

api::Result<std::unique_ptr<api::Module>> NofileIsolator::create(const api::Parameters& parameters,
                                                                 api::Context& context) {
  auto options = parseOptions(parameters);
  if (!options) return options.status();
  context.logger().info("RLIMIT_NOFILE of every task: {}; open files counted every {}",
                        options->limit, api::formatDuration(options->sampleInterval));
  return std::unique_ptr<api::Module>(
      new NofileIsolator(*options, context.executor(), context.metrics(), context.logger()));
}

NofileIsolator::NofileIsolator(Options options, api::Executor& executor, api::Metrics& metrics,
                               api::Logger& logger)
    : options_(options), executor_(executor), metrics_(metrics), logger_(logger) {
  // Gauges are read on this module's executor, so they may read the state directly.
  metrics_.gauge(kOpenFilesGauge, [this] { return static_cast<double>(openFiles()); });
  metrics_.gauge(kContainersGauge, [this] { return static_cast<double>(containers()); });
}

NofileIsolator::~NofileIsolator() = default;

void NofileIsolator::assertOnStrand() const {
  assert(executor_.runningInThisThread() && "called off the isolator's executor");
}

void NofileIsolator::stop() {
  assertOnStrand();
  if (stopped_) return;
  stopped_ = true;
  alive_.reset();
  if (timer_) timer_->cancel();
  timer_.reset();
  // The limits stay on the running tasks: an agent restart must not touch them.
  containers_.clear();
}

std::vector<std::string> NofileIsolator::isolations() const { return {std::string(kIsolation)}; }

uint64_t NofileIsolator::openFiles() const {
  uint64_t total = 0;
  for (const auto& [id, container] : containers_) total += container.openFiles;
  return total;
}

void NofileIsolator::recover(const std::vector<api::ContainerCheckpoint>& alive,
                             std::function<void(api::Status)> done) {
  assertOnStrand();
  // A limit lives in its process, so there is nothing to re-apply and no orphan to remove: only
  // the pids to count are re-learnt. A pid that now belongs to another process (its start time
  // differs) is not adopted.
  for (const auto& checkpoint : alive) {
    Container container;
    if (checkpoint.pid > 0) {
      auto started = processStartTime(checkpoint.pid);
      if (started && (checkpoint.startTime == 0 || *started == checkpoint.startTime)) {
        container.pid = checkpoint.pid;
      } else {
        logger_.warning("container '{}': process {} is gone or reused; not counting its files",
                        checkpoint.containerId, checkpoint.pid);
      }
    }
    containers_[checkpoint.containerId] = container;
  }
  startSampling();
  done(api::Status::ok());
}

void NofileIsolator::prepare(const api::ContainerConfig& config,
                             std::function<void(api::Status)> done) {
  assertOnStrand();
  if (config.containerId.empty()) return done(api::invalidArgument("empty container id"));
  if (!containers_.emplace(config.containerId, Container{}).second) {
    return done(api::alreadyExists("container '{}' exists", config.containerId));
  }
  done(api::Status::ok());
}

void NofileIsolator::isolate(std::string_view containerId, int64_t pid,
                             std::function<void(api::Status)> done) {
  assertOnStrand();
  auto it = containers_.find(containerId);
  if (it == containers_.end()) return done(api::notFound("unknown container '{}'", containerId));
  // prlimit(2) is one system call on a process that waits for us before it execs: no need for
  // the blocking pool.
  if (auto set = setOpenFileLimit(pid, options_.limit); !set) {
    return done(set.withContext("container '{}'", containerId));
  }
  it->second.pid = pid;
  startSampling();
  done(api::Status::ok());
}

void NofileIsolator::watch(std::string_view /*containerId*/,
                           std::function<void(api::ContainerLimitation)> /*limited*/) {
  // A task at its limit sees EMFILE and carries on (or not): nothing to report to the agent.
  assertOnStrand();
}

void NofileIsolator::update(std::string_view containerId, const api::Resources& /*resources*/,
                            std::function<void(api::Status)> done) {
  assertOnStrand();
  // The limit does not depend on the task's resources.
  if (containers_.count(containerId) == 0) {
    return done(api::notFound("unknown container '{}'", containerId));
  }
  done(api::Status::ok());
}

void NofileIsolator::usage(std::string_view containerId, tessera::v1::ResourceStatistics stats,
                           std::function<void(api::Result<tessera::v1::ResourceStatistics>)> done) {
  assertOnStrand();
  // ResourceStatistics (Mesos's message) has no field for open files; the count goes to the
  // gauges instead, and the statistics pass through unchanged.
  if (containers_.count(containerId) == 0) {
    return done(api::notFound("unknown container '{}'", containerId));
  }
  done(std::move(stats));
}

void NofileIsolator::cleanup(std::string_view containerId, std::function<void(api::Status)> done) {
  assertOnStrand();
  // Nothing to undo: the limit went with the process.
  if (auto it = containers_.find(containerId); it != containers_.end()) containers_.erase(it);
  done(api::Status::ok());
}

void NofileIsolator::startSampling() {
  if (sampling_ || stopped_) return;
  bool anyProcess = false;
  for (const auto& [id, container] : containers_) anyProcess = anyProcess || container.pid > 0;
  if (!anyProcess) return;
  sampling_ = true;
  timer_ = executor_.schedule(options_.sampleInterval, [this, weak = std::weak_ptr<int>(alive_)] {
    if (!weak.expired()) sample();
  });
}

void NofileIsolator::sample() {
  assertOnStrand();
  sampling_ = false;
  std::vector<std::pair<std::string, int64_t>> pids;
  for (const auto& [id, container] : containers_) {
    if (container.pid > 0) pids.emplace_back(id, container.pid);
  }
  if (pids.empty()) return;  // restarted by the next isolate()
  sampling_ = true;
  auto counts = std::make_shared<std::vector<uint64_t>>(pids.size(), 0);
  auto submitted = executor_.runBlocking(
      [pids, counts] {
        for (size_t i = 0; i < pids.size(); ++i) (*counts)[i] = countOpenFiles(pids[i].second);
      },
      [this, weak = std::weak_ptr<int>(alive_), pids, counts] {
        if (weak.expired()) return;
        for (size_t i = 0; i < pids.size(); ++i) {
          auto it = containers_.find(pids[i].first);
          // Cleaned up, or re-created, meanwhile: the count is not this container's.
          if (it != containers_.end() && it->second.pid == pids[i].second) {
            it->second.openFiles = (*counts)[i];
          }
        }
        sampling_ = false;
        startSampling();
      });
  if (!submitted) {
    // The pool is full: try again next round rather than block the strand.
    logger_.warning("cannot count open files now: {}", submitted.message());
    sampling_ = false;
    startSampling();
  }
}

}  // namespace acme::nofile
