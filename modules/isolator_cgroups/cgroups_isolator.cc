#include "modules/isolator_cgroups/cgroups_isolator.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>

#include "tessera/api/duration.h"

namespace tessera::modules::isolator_cgroups {

namespace {

constexpr uint64_t kCfsPeriodUs = 100000;  // Mesos's 100ms
constexpr uint64_t kMinCfsQuotaUs = 1000;  // the kernel's minimum
constexpr double kMiB = 1024.0 * 1024.0;

bool fileExists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

std::string megabytes(uint64_t bytes) {
  return std::to_string(static_cast<uint64_t>(std::llround(static_cast<double>(bytes) / kMiB))) +
         "MB";
}

// Writes the memory limit (and the memory+swap one, so swap cannot dodge it): memsw must stay
// >= the limit, so raising writes the limit first, lowering memsw first.
api::Status writeMemoryLimit(const Layout& layout, std::string_view id, uint64_t bytes) {
  const std::string dir = layout.path(Controller::kMemory, id);
  const std::string value = std::to_string(bytes);
  if (layout.version == 2) {
    if (auto written = writeFile(dir + "/memory.max", value); !written) return written;
    if (fileExists(dir + "/memory.swap.max")) return writeFile(dir + "/memory.swap.max", "0");
    return api::Status::ok();
  }
  const std::string memsw = dir + "/memory.memsw.limit_in_bytes";
  const bool hasMemsw = fileExists(memsw);
  auto written = writeFile(dir + "/memory.limit_in_bytes", value);
  if (!written && hasMemsw) {
    if (auto first = writeFile(memsw, value); !first) return first;
    return writeFile(dir + "/memory.limit_in_bytes", value);
  }
  if (!written) return written;
  return hasMemsw ? writeFile(memsw, value) : api::Status::ok();
}

api::Status applyLimits(const Layout& layout, const CgroupsIsolator::Options& options,
                        std::string_view id, double cpus, double memMb) {
  for (const auto& [path, value] : CgroupsIsolator::limitWrites(layout, options, id, cpus, memMb)) {
    if (auto written = writeFile(path, value); !written) return written;
  }
  if (options.mem && memMb > 0) {
    return writeMemoryLimit(layout, id, static_cast<uint64_t>(std::llround(memMb * kMiB)));
  }
  return api::Status::ok();
}

}  // namespace

// --- OomWatcher ---------------------------------------------------------------------------

OomWatcher::~OomWatcher() { stop(); }

api::Status OomWatcher::start(OnEvent onEvent) {
  onEvent_ = std::move(onEvent);
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_ < 0) return api::internalError("epoll_create1: {}", std::strerror(errno));
  wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_ < 0) return api::internalError("eventfd: {}", std::strerror(errno));
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = 0;  // token 0: stop
  if (epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &event) != 0) {
    return api::internalError("epoll_ctl: {}", std::strerror(errno));
  }
  thread_ = std::thread([this] { loop(); });
  return api::Status::ok();
}

api::Status OomWatcher::arm(int fd, uint64_t token, bool first) {
  epoll_event event{};
  event.events = EPOLLIN | EPOLLONESHOT;
  event.data.u64 = token;
  if (epoll_ctl(epoll_, first ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &event) != 0) {
    return api::internalError("epoll_ctl: {}", std::strerror(errno));
  }
  return api::Status::ok();
}

void OomWatcher::remove(int fd) {
  if (epoll_ >= 0) epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
}

void OomWatcher::stop() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_, &one, sizeof one);
    thread_.join();
  }
  if (wake_ >= 0) ::close(wake_);
  if (epoll_ >= 0) ::close(epoll_);
  wake_ = epoll_ = -1;
}

void OomWatcher::loop() {
  for (;;) {
    epoll_event events[16];
    int n = epoll_wait(epoll_, events, 16, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return;
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == 0) return;
      onEvent_(events[i].data.u64);
    }
  }
}

// --- CgroupsIsolator ----------------------------------------------------------------------

api::Result<CgroupsIsolator::Options> CgroupsIsolator::parseOptions(
    const api::Parameters& parameters) {
  api::ParameterReader reader(parameters);
  Options options;
  // Only the cgroups/* names are this module's; the agent passes the whole --isolation list.
  for (const std::string& name : reader.list("isolation")) {
    if (!name.starts_with("cgroups/")) continue;
    if (name == "cgroups/cpu") {
      options.cpu = true;
    } else if (name == "cgroups/mem") {
      options.mem = true;
    } else if (name == "cgroups/pids") {
      options.pids = true;
    } else if (name == "cgroups/all") {
      options.cpu = options.mem = options.pids = true;
    } else {
      return api::invalidArgument(
          "isolation '{}' is not one of cgroups/cpu, cgroups/mem, cgroups/pids, cgroups/all", name);
    }
  }
  options.root = reader.string("cgroups_root", options.root);
  options.hierarchy = reader.string("cgroups_hierarchy", options.hierarchy);
  auto enableCfs = reader.boolean("cgroups_enable_cfs", options.enableCfs);
  if (!enableCfs) return enableCfs.status();
  options.enableCfs = *enableCfs;
  auto pidsMax = reader.integer("pids_max");
  if (!pidsMax) return pidsMax.status();
  if (*pidsMax) {
    if (**pidsMax <= 0) return reader.invalid("pids_max", "must be positive");
    options.pidsMax = static_cast<uint64_t>(**pidsMax);
  }
  if (auto unknown = reader.rejectUnknown(); !unknown) return unknown;
  return options;
}

api::Result<std::unique_ptr<api::Module>> CgroupsIsolator::create(const api::Parameters& parameters,
                                                                  api::Context& context) {
  auto parsed = parseOptions(parameters);
  if (!parsed) return parsed.status();
  Options options = *std::move(parsed);
  std::optional<Layout> layout;
  if (options.cpu || options.mem || options.pids) {
    std::set<Controller> wanted;
    if (options.cpu) wanted.insert({Controller::kCpu, Controller::kCpuacct});
    if (options.mem) wanted.insert(Controller::kMemory);
    if (options.pids) wanted.insert(Controller::kPids);
    auto detected = detect(options.hierarchy, options.root, wanted);
    if (!detected) return detected.status();
    layout = std::move(*detected);
    std::string controllers;
    for (const auto& [controller, mount] : layout->mounts) {
      if (!controllers.empty()) controllers += ',';
      controllers += controllerName(controller);
    }
    context.logger().info("cgroups {} hierarchy at '{}' (controllers {}), containers under '{}'{}",
                          layout->describe(), layout->hierarchy, controllers, options.root,
                          options.enableCfs ? ", CFS quota on" : "");
  }
  auto instance = std::make_unique<CgroupsIsolator>(context, std::move(options), std::move(layout));
  return std::unique_ptr<api::Module>(std::move(instance));
}

CgroupsIsolator::CgroupsIsolator(api::Context& context, Options options,
                                 std::optional<Layout> layout)
    : context_(context),
      options_(std::move(options)),
      layout_(std::move(layout)),
      ooms_(context.metrics().counter("isolator/cgroups/oom_kills")) {}

CgroupsIsolator::~CgroupsIsolator() {
  watcher_.stop();
  for (auto& [id, container] : containers_) {
    if (container->oomFd >= 0) ::close(container->oomFd);
    if (container->controlFd >= 0) ::close(container->controlFd);
  }
}

void CgroupsIsolator::assertOnStrand() const {
  assert(context_.executor().runningInThisThread() && "called off the isolator's executor");
}

template <typename Fn>
auto CgroupsIsolator::guarded(Fn fn) {
  return [weak = std::weak_ptr<int>(alive_), fn = std::move(fn)](auto&&... args) mutable {
    if (!weak.expired()) fn(std::forward<decltype(args)>(args)...);
  };
}

void CgroupsIsolator::blocking(std::function<api::Status()> work,
                               std::function<void(api::Status)> done) {
  auto result = std::make_shared<api::Status>(api::Status::ok());
  auto submitted = context_.executor().runBlocking(
      [work = std::move(work), result] { *result = work(); },
      [weak = std::weak_ptr<int>(alive_), result, done] {
        // Even after stop() the caller gets its one answer.
        done(weak.expired() ? api::makeStatus(api::StatusCode::kAborted, "isolator stopped")
                            : *result);
      });
  if (!submitted) done(submitted);
}

api::Status CgroupsIsolator::requireActive() const {
  if (layout_) return api::Status::ok();
  return api::failedPrecondition(
      "no cgroups isolation is enabled (the 'isolation' parameter names no cgroups/*)");
}

void CgroupsIsolator::stop() {
  assertOnStrand();
  if (stopped_) return;
  stopped_ = true;
  alive_.reset();
  watcher_.stop();
  // The cgroups stay: an agent restart must not touch running tasks; recover() re-adopts them.
  for (auto& [id, container] : containers_) {
    if (container->oomFd >= 0) ::close(container->oomFd);
    if (container->controlFd >= 0) ::close(container->controlFd);
    container->oomFd = container->controlFd = -1;
    container->limited = nullptr;
  }
  containers_.clear();
  tokens_.clear();
}

std::vector<std::string> CgroupsIsolator::isolations() const {
  return {"cgroups/cpu", "cgroups/mem", "cgroups/pids", "cgroups/all"};
}

std::vector<std::pair<std::string, std::string>> CgroupsIsolator::limitWrites(
    const Layout& layout, const Options& options, std::string_view container, double cpus,
    double /*memMb*/) {
  std::vector<std::pair<std::string, std::string>> writes;
  if (options.cpu && cpus > 0) {
    const std::string dir = layout.path(Controller::kCpu, container);
    const uint64_t shares = cpuShares(cpus);
    const uint64_t quota = std::max<uint64_t>(
        kMinCfsQuotaUs,
        static_cast<uint64_t>(std::llround(cpus * static_cast<double>(kCfsPeriodUs))));
    if (layout.version == 2) {
      writes.emplace_back(dir + "/cpu.weight", std::to_string(cpuWeight(shares)));
      writes.emplace_back(dir + "/cpu.max",
                          options.enableCfs
                              ? std::to_string(quota) + " " + std::to_string(kCfsPeriodUs)
                              : "max " + std::to_string(kCfsPeriodUs));
    } else {
      writes.emplace_back(dir + "/cpu.shares", std::to_string(shares));
      if (options.enableCfs) {
        writes.emplace_back(dir + "/cpu.cfs_period_us", std::to_string(kCfsPeriodUs));
        writes.emplace_back(dir + "/cpu.cfs_quota_us", std::to_string(quota));
      }
    }
  }
  if (options.pids) {
    writes.emplace_back(layout.path(Controller::kPids, container) + "/pids.max",
                        options.pidsMax ? std::to_string(*options.pidsMax) : "max");
  }
  return writes;
}

void CgroupsIsolator::prepare(const api::ContainerConfig& config,
                              std::function<void(api::Status)> done) {
  assertOnStrand();
  if (auto active = requireActive(); !active) return done(active);
  const std::string& id = config.containerId;
  if (id.empty() || id.find('/') != std::string::npos || id == "." || id == "..") {
    return done(api::invalidArgument("invalid container id '{}'", id));
  }
  if (containers_.count(id) != 0) return done(api::alreadyExists("container '{}' exists", id));
  auto container = std::make_shared<Container>();
  container->id = id;
  container->cpus = config.resources.cpus();
  container->memMb = config.resources.mem();
  containers_[id] = container;
  blocking(
      [layout = *layout_, options = options_, id, cpus = container->cpus,
       mem = container->memMb]() -> api::Status {
        if (auto created = isolator_cgroups::create(layout, id); !created) return created;
        if (auto limited = applyLimits(layout, options, id, cpus, mem); !limited) {
          return limited.withContext("setting the limits of container '{}'", id);
        }
        return api::Status::ok();
      },
      std::move(done));
}

void CgroupsIsolator::isolate(std::string_view containerId, int64_t pid,
                              std::function<void(api::Status)> done) {
  assertOnStrand();
  if (auto active = requireActive(); !active) return done(active);
  if (containers_.count(containerId) == 0) {
    return done(api::notFound("unknown container '{}'", containerId));
  }
  blocking([layout = *layout_, id = std::string(containerId),
            pid] { return assign(layout, id, static_cast<pid_t>(pid)); },
           std::move(done));
}

void CgroupsIsolator::watch(std::string_view containerId,
                            std::function<void(api::ContainerLimitation)> limited) {
  assertOnStrand();
  auto it = containers_.find(containerId);
  if (it == containers_.end() || !layout_) return;  // never limited: nothing enforced
  it->second->limited = std::move(limited);
  if (options_.mem && it->second->oomFd < 0) startOomWatch(*it->second);
}

void CgroupsIsolator::startOomWatch(Container& container) {
  if (!watcherStarted_) {
    api::Executor* executor = &context_.executor();
    std::weak_ptr<int> weak = alive_;
    auto started = watcher_.start([this, executor, weak](uint64_t token) {
      executor->post([this, weak, token] {
        if (!weak.expired()) onOomEvent(token);
      });
    });
    if (!started) {
      context_.logger().error("cannot watch for OOM kills: {}", started.toString());
      return;
    }
    watcherStarted_ = true;
  }
  // Registering is a couple of cgroupfs opens and one write: done here, on the strand, so the
  // watch is in place before the task's first instruction can allocate.
  const std::string dir = layout_->path(Controller::kMemory, container.id);
  if (layout_->version == 2) {
    container.oomFd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (container.oomFd < 0 ||
        inotify_add_watch(container.oomFd, (dir + "/memory.events").c_str(), IN_MODIFY) < 0) {
      context_.logger().error("cannot watch '{}': {}", dir + "/memory.events",
                              std::strerror(errno));
      if (container.oomFd >= 0) ::close(container.oomFd);
      container.oomFd = -1;
      return;
    }
  } else {
    container.oomFd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    container.controlFd = ::open((dir + "/memory.oom_control").c_str(), O_RDONLY | O_CLOEXEC);
    auto registered =
        container.oomFd >= 0 && container.controlFd >= 0
            ? writeFile(dir + "/cgroup.event_control",
                        std::to_string(container.oomFd) + " " + std::to_string(container.controlFd))
            : api::internalError("cannot open '{}': {}", dir + "/memory.oom_control",
                                 std::strerror(errno));
    if (!registered) {
      context_.logger().error("cannot watch OOM of container '{}': {}", container.id,
                              registered.toString());
      stopOomWatch(container);
      return;
    }
  }
  container.token = nextToken_++;
  tokens_[container.token] = container.id;
  if (auto armed = watcher_.arm(container.oomFd, container.token, true); !armed) {
    context_.logger().error("cannot watch OOM of container '{}': {}", container.id,
                            armed.toString());
    stopOomWatch(container);
    return;
  }
  // An OOM kill before the registration sent no event: look once now.
  onOomEvent(container.token);
}

void CgroupsIsolator::stopOomWatch(Container& container) {
  if (container.oomFd >= 0) {
    watcher_.remove(container.oomFd);
    ::close(container.oomFd);
  }
  if (container.controlFd >= 0) ::close(container.controlFd);
  container.oomFd = container.controlFd = -1;
  tokens_.erase(container.token);
}

void CgroupsIsolator::onOomEvent(uint64_t token) {
  assertOnStrand();
  auto name = tokens_.find(token);
  if (name == tokens_.end()) return;
  auto it = containers_.find(name->second);
  if (it == containers_.end() || it->second->oomFd < 0) return;
  auto container = it->second;
  // Drain the fd (an eventfd counter or inotify events); both are non-blocking. On v1 the
  // eventfd fires when the cgroup goes OOM, before the kernel has picked and counted its
  // victim: the event itself is the OOM (as Mesos takes it). On v2 memory.events changes again
  // when oom_kill is counted, so a check that finds nothing yet re-arms and waits for that.
  char buffer[4096];
  bool fired = false;
  ssize_t n;
  while ((n = ::read(container->oomFd, buffer, sizeof buffer)) > 0) {
    if (layout_->version == 1 && n == sizeof(uint64_t)) {
      uint64_t count = 0;
      std::memcpy(&count, buffer, sizeof count);
      fired = fired || count > 0;
    }
  }
  auto limitation = std::make_shared<std::optional<api::ContainerLimitation>>();
  blocking(
      [layout = *layout_, limitation, id = container->id, mem = container->memMb, fired] {
        *limitation = checkOom(layout, id, mem, fired);
        return api::Status::ok();
      },
      guarded([this, container, limitation](const api::Status&) {
        if (container->oomFd < 0) return;  // cleaned up meanwhile
        if (*limitation) return reportLimitation(*container, std::move(**limitation));
        // Not an OOM kill (v2: another memory.events counter moved): keep watching.
        if (auto armed = watcher_.arm(container->oomFd, container->token, false); !armed) {
          context_.logger().error("cannot watch OOM of container '{}': {}", container->id,
                                  armed.toString());
        }
      }));
}

std::optional<api::ContainerLimitation> CgroupsIsolator::checkOom(const Layout& layout,
                                                                  const std::string& id,
                                                                  double memMb, bool fired) {
  if (layout.mounts.count(Controller::kMemory) == 0) return std::nullopt;
  const std::string dir = layout.path(Controller::kMemory, id);
  uint64_t kills = 0;
  std::optional<uint64_t> peak;
  if (layout.version == 2) {
    kills = readKeyValues(dir + "/memory.events")["oom_kill"];
    peak = readNumber(dir + "/memory.peak");
  } else {
    auto control = readKeyValues(dir + "/memory.oom_control");
    kills = control["oom_kill"];
    // Kernels before 4.13 have no oom_kill count; under_oom is the best there is.
    if (control.count("oom_kill") == 0) kills = control["under_oom"];
    peak = readNumber(dir + "/memory.max_usage_in_bytes");
  }
  if (kills == 0 && !fired) return std::nullopt;
  api::ContainerLimitation limitation;
  limitation.reason = v1::TaskStatus::REASON_CONTAINER_LIMITATION_MEMORY;
  const auto limitBytes = static_cast<uint64_t>(std::llround(memMb * kMiB));
  limitation.message = "Memory limit exceeded: the container's memory limit of " +
                       megabytes(limitBytes) + " was reached and the kernel OOM-killed a process";
  if (peak) limitation.message += " (maximum used: " + megabytes(*peak) + ")";
  if (auto resources = api::Resources::parse("mem:" + std::to_string(memMb)); resources) {
    limitation.resources = std::move(*resources);
  }
  return limitation;
}

void CgroupsIsolator::reportLimitation(Container& container, api::ContainerLimitation limitation) {
  if (container.limitationReported) return;
  container.limitationReported = true;
  ooms_.increment();
  context_.logger().warning("container '{}': {}", container.id, limitation.message);
  if (container.limited) std::exchange(container.limited, nullptr)(std::move(limitation));
}

void CgroupsIsolator::update(std::string_view containerId, const api::Resources& resources,
                             std::function<void(api::Status)> done) {
  assertOnStrand();
  if (auto active = requireActive(); !active) return done(active);
  auto it = containers_.find(containerId);
  if (it == containers_.end()) return done(api::notFound("unknown container '{}'", containerId));
  auto container = it->second;
  const double cpus = resources.cpus();
  const double mem = resources.mem();
  blocking([layout = *layout_, options = options_, id = container->id, cpus,
            mem] { return applyLimits(layout, options, id, cpus, mem); },
           guarded([container, cpus, mem, done](api::Status status) {
             if (status) {
               if (cpus > 0) container->cpus = cpus;
               if (mem > 0) container->memMb = mem;
             }
             done(status);
           }));
}

void CgroupsIsolator::usage(std::string_view containerId, v1::ResourceStatistics stats,
                            std::function<void(api::Result<v1::ResourceStatistics>)> done) {
  assertOnStrand();
  if (auto active = requireActive(); !active) return done(active);
  auto it = containers_.find(containerId);
  if (it == containers_.end()) return done(api::notFound("unknown container '{}'", containerId));
  auto result = std::make_shared<v1::ResourceStatistics>(std::move(stats));
  blocking(
      [layout = *layout_, options = options_, id = it->second->id, cpus = it->second->cpus,
       result]() -> api::Status {
        auto& s = *result;
        s.set_timestamp(api::nowSeconds());
        if (options.cpu) {
          if (cpus > 0) s.set_cpus_limit(cpus);
          const std::string cpu = layout.path(Controller::kCpu, id);
          auto stat = readKeyValues(cpu + "/cpu.stat");
          s.set_cpus_nr_periods(static_cast<uint32_t>(stat["nr_periods"]));
          s.set_cpus_nr_throttled(static_cast<uint32_t>(stat["nr_throttled"]));
          if (layout.version == 2) {
            s.set_cpus_throttled_time_secs(static_cast<double>(stat["throttled_usec"]) / 1e6);
            s.set_cpus_user_time_secs(static_cast<double>(stat["user_usec"]) / 1e6);
            s.set_cpus_system_time_secs(static_cast<double>(stat["system_usec"]) / 1e6);
          } else {
            s.set_cpus_throttled_time_secs(static_cast<double>(stat["throttled_time"]) / 1e9);
            auto acct = readKeyValues(layout.path(Controller::kCpuacct, id) + "/cpuacct.stat");
            const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
            s.set_cpus_user_time_secs(static_cast<double>(acct["user"]) / ticks);
            s.set_cpus_system_time_secs(static_cast<double>(acct["system"]) / ticks);
          }
        }
        if (options.mem) {
          const std::string mem = layout.path(Controller::kMemory, id);
          auto stat = readKeyValues(mem + "/memory.stat");
          if (layout.version == 2) {
            s.set_mem_rss_bytes(stat["anon"]);
            s.set_mem_cache_bytes(stat["file"]);
            if (auto current = readNumber(mem + "/memory.current")) s.set_mem_total_bytes(*current);
            if (auto limit = readNumber(mem + "/memory.max")) s.set_mem_limit_bytes(*limit);
          } else {
            s.set_mem_rss_bytes(stat["total_rss"]);
            s.set_mem_cache_bytes(stat["total_cache"]);
            if (auto total = readNumber(mem + "/memory.usage_in_bytes")) {
              s.set_mem_total_bytes(*total);
            }
            if (auto limit = readNumber(mem + "/memory.limit_in_bytes")) {
              s.set_mem_limit_bytes(*limit);
            }
          }
        }
        return api::Status::ok();
      },
      [result, done](api::Status status) {
        if (!status) return done(status);
        done(*result);
      });
}

void CgroupsIsolator::cleanup(std::string_view containerId, std::function<void(api::Status)> done) {
  assertOnStrand();
  if (!layout_) return done(api::Status::ok());
  std::shared_ptr<Container> container;
  if (auto it = containers_.find(containerId); it != containers_.end()) {
    container = it->second;
    stopOomWatch(*container);  // before the rmdir, which would signal the eventfd
  }
  auto limitation = std::make_shared<std::optional<api::ContainerLimitation>>();
  const bool check = container && !container->limitationReported && container->limited;
  blocking(
      [layout = *layout_, id = std::string(containerId), check,
       mem = container ? container->memMb : 0.0, limitation] {
        // An OOM kill whose event has not been handled yet (the task's exit raced it) must
        // still end the task as a memory limitation.
        if (check) *limitation = checkOom(layout, id, mem);
        return destroy(layout, id);
      },
      guarded([this, container, limitation, done](api::Status status) {
        if (container) {
          if (*limitation) reportLimitation(*container, std::move(**limitation));
          containers_.erase(container->id);
        }
        done(status);
      }));
}

void CgroupsIsolator::recover(const std::vector<api::ContainerCheckpoint>& alive,
                              std::function<void(api::Status)> done) {
  assertOnStrand();
  if (!layout_) return done(api::Status::ok());
  std::set<std::string> ids;
  for (const auto& checkpoint : alive) ids.insert(checkpoint.containerId);
  auto adopted = std::make_shared<std::vector<std::shared_ptr<Container>>>();
  blocking(
      [&logger = context_.logger(), layout = *layout_, ids, adopted]() -> api::Status {
        api::Status first = api::Status::ok();
        for (const auto& name : containers(layout)) {
          if (ids.count(name) != 0) continue;
          logger.warning("destroying the cgroup of unknown container '{}' (orphan)", name);
          if (auto destroyed = destroy(layout, name); !destroyed && first) {
            first = destroyed.withContext("destroying orphan cgroup '{}'", name);
          }
        }
        for (const auto& id : ids) {
          if (!exists(layout, id)) continue;
          auto container = std::make_shared<Container>();
          container->id = id;
          if (layout.mounts.count(Controller::kCpu) != 0) {
            const std::string cpu = layout.path(Controller::kCpu, id);
            if (auto shares = readNumber(cpu + "/cpu.shares")) {
              container->cpus = static_cast<double>(*shares) / 1024.0;
            }
          }
          if (layout.mounts.count(Controller::kMemory) != 0) {
            const std::string mem = layout.path(Controller::kMemory, id);
            auto limit =
                readNumber(mem + (layout.version == 2 ? "/memory.max" : "/memory.limit_in_bytes"));
            // v1 reports "no limit" as a huge number; keep only real limits.
            if (limit && *limit < (uint64_t{1} << 60)) {
              container->memMb = static_cast<double>(*limit) / kMiB;
            }
          }
          adopted->push_back(container);
        }
        return first;
      },
      guarded([this, adopted, done](api::Status status) {
        for (auto& container : *adopted) {
          if (containers_.count(container->id) != 0) continue;
          context_.logger().info("re-adopted the cgroup of container '{}'", container->id);
          containers_[container->id] = container;
        }
        done(status);
      }));
}

}  // namespace tessera::modules::isolator_cgroups
