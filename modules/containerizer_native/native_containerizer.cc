#include "modules/containerizer_native/native_containerizer.h"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "modules/containerizer_native/proc.h"
#include "tessera/api/duration.h"

namespace tessera::modules::containerizer_native {

namespace {

constexpr const char* kCheckpointData = "native/1";
// A nested container's checkpoint data: the prefix, then its parent's id.
constexpr std::string_view kNestedCheckpointData = "native/1 parent=";
constexpr const char* kUnknownStatus =
    "Command ended while not a child of this agent (recovered after a restart); its exit status "
    "is unknown";

void closeIf(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// Ids name the runtime directory, which is removed recursively: no separators, no dot names.
bool validContainerId(std::string_view id) {
  return !id.empty() && id != "." && id != ".." && id.find('/') == std::string_view::npos;
}

}  // namespace

api::Result<std::unique_ptr<api::Module>> NativeContainerizer::create(
    const api::Parameters& parameters, api::Context& context) {
  api::ParameterReader reader(parameters);
  auto grace = reader.duration("default_grace_period");
  if (!grace) return grace.status();
  if (auto unknown = reader.rejectUnknown(); !unknown) return unknown;
  auto instance = std::make_unique<NativeContainerizer>(context);
  if (*grace) instance->defaultGracePeriod_ = **grace;
  return std::unique_ptr<api::Module>(std::move(instance));
}

NativeContainerizer::NativeContainerizer(api::Context& context)
    : context_(context),
      launched_(context.metrics().counter("containerizer/native/launched")),
      launchFailed_(context.metrics().counter("containerizer/native/launch_failed")),
      destroyed_(context.metrics().counter("containerizer/native/destroyed")),
      limited_(context.metrics().counter("containerizer/native/limitations")) {}

NativeContainerizer::~NativeContainerizer() {
  reaper_.stop();
  for (auto& [id, container] : containers_) {
    releaseChild(container->child, false);
    closeIf(container->child.pidfd);
    closeIf(container->child.execErrorFd);
    closeIf(container->signalFd);
  }
}

void NativeContainerizer::assertOnExecutor() const {
  assert(context_.executor().runningInThisThread() && "called off the containerizer's executor");
}

template <typename Fn>
auto NativeContainerizer::guarded(Fn fn) {
  return [weak = std::weak_ptr<int>(alive_), fn = std::move(fn)](auto&&... args) mutable {
    if (!weak.expired()) fn(std::forward<decltype(args)>(args)...);
  };
}

void NativeContainerizer::stop() {
  assertOnExecutor();
  if (stopped_) return;
  stopped_ = true;
  alive_.reset();  // every guarded continuation still queued is dropped
  reaper_.stop();
  for (auto& [id, container] : containers_) {
    if (container->killTimer) container->killTimer->cancel();
    // A child still waiting for isolation exits without running anything; a running one is
    // left alone: an agent restart must not kill tasks, recover() re-adopts them.
    releaseChild(container->child, false);
    closeIf(container->child.pidfd);
    closeIf(container->child.execErrorFd);
    closeIf(container->signalFd);
  }
  containers_.clear();
  context_.metrics().removeGauge("containerizer/native/running");
}

void NativeContainerizer::initialize(api::ContainerizerSettings settings,
                                     std::function<void(api::Status)> done) {
  assertOnExecutor();
  if (initialized_) return done(api::failedPrecondition("already initialized"));
  bool pidNamespace = false;
  for (const auto& name : settings.isolation) {
    if (name == kPidNamespaceIsolation) {
      // New namespaces and mounts need CAP_SYS_ADMIN; refusing here beats failing every launch.
      if (effectiveUidForTest_.value_or(geteuid()) != 0) {
        return done(api::invalidArgument("isolation '{}' needs the agent to run as root", name));
      }
      pidNamespace = true;
      continue;
    }
    if (name.starts_with("namespaces/") || name == "filesystem/linux") {
      return done(api::invalidArgument(
          "isolation '{}' is not supported by the native containerizer yet", name));
    }
    // Mesos's posix isolators only report usage, which this containerizer does anyway.
    if (name.starts_with("posix/") || name == "filesystem/posix") continue;
    // Anything else would run unisolated: refuse rather than pretend.
    return done(api::invalidArgument(
        "isolation '{}' is neither done by the native containerizer nor served by a loaded "
        "isolator module (check --isolation and --modules)",
        name));
  }
  if (auto started = reaper_.start(); !started) {
    return done(started.withContext("starting the reaper"));
  }
  settings_ = std::move(settings);
  pidNamespace_ = pidNamespace;
  if (!defaultGracePeriod_) defaultGracePeriod_ = settings_.defaultGracePeriod;
  context_.metrics().gauge("containerizer/native/running",
                           [this] { return static_cast<double>(containers_.size()); });
  initialized_ = true;
  done(api::Status::ok());
}

void NativeContainerizer::supports(const api::ContainerConfig& config,
                                   std::function<void(bool)> done) {
  assertOnExecutor();
  done(!config.container || config.container->type() == v1::ContainerInfo::MESOS);
}

// --- launch -------------------------------------------------------------------------------

void NativeContainerizer::launch(const api::ContainerConfig& config,
                                 std::function<void(api::Result<api::ContainerCheckpoint>)> done) {
  assertOnExecutor();
  auto fail = [&](api::Status error) {
    launchFailed_.increment();
    done(std::move(error));
  };
  if (!initialized_) return fail(api::failedPrecondition("not initialized"));
  if (containers_.count(config.containerId) != 0 || terminated_.count(config.containerId) != 0) {
    return fail(api::alreadyExists("container '{}' already exists", config.containerId));
  }
  if (config.container && config.container->type() != v1::ContainerInfo::MESOS) {
    return fail(api::invalidArgument("container '{}' is not of type MESOS", config.containerId));
  }
  const std::string& id = config.containerId;
  if (!validContainerId(id)) {
    return fail(api::invalidArgument("invalid container id '{}'", id));
  }
  ContainerPtr parent;
  if (!config.parentContainerId.empty()) {
    auto it = containers_.find(config.parentContainerId);
    if (it == containers_.end() || it->second->destroyRequested || it->second->cleaningUp ||
        it->second->exited || !it->second->parent.empty()) {
      return fail(api::notFound("parent container '{}' of nested container '{}' is not running",
                                config.parentContainerId, id));
    }
    parent = it->second;
  }
  auto spec = prepareLaunch(config, settings_.agentWorkDir);
  if (!spec) return fail(spec.status());
  // The supervisor records the exit status here; a stale file of an earlier container with this
  // id must not be taken for this one's.
  spec->runtimeDirectory = runtimeDirectory(settings_.agentWorkDir, id);
  spec->pidNamespace = pidNamespace_;
  std::error_code ec;
  std::filesystem::remove_all(spec->runtimeDirectory, ec);
  if (!std::filesystem::create_directories(spec->runtimeDirectory, ec) || ec) {
    return fail(api::internalError("cannot create the runtime directory '{}': {}",
                                   spec->runtimeDirectory, ec.message()));
  }

  auto container = std::make_shared<Container>();
  container->id = config.containerId;
  container->config = config;
  container->runtimeDirectory = spec->runtimeDirectory;
  container->spec = std::move(*spec);
  container->launchDone = std::move(done);
  containers_[container->id] = container;
  context_.logger().info("launching container '{}' for task '{}' of framework '{}'", container->id,
                         config.taskId, config.frameworkId);
  if (parent) {
    // Nested: no isolation of its own to prepare; isolateNext() puts it in the parent's.
    container->parent = parent->id;
    parent->nested.insert(container->id);
    return spawn(container);
  }
  prepareNext(container, 0);
}

void NativeContainerizer::prepareNext(ContainerPtr container, size_t index) {
  if (container->destroyRequested) {
    return abortLaunch(
        container, api::makeStatus(api::StatusCode::kAborted,
                                   "container '{}' was destroyed during launch", container->id));
  }
  if (index == settings_.isolators.size()) return spawn(container);
  settings_.isolators[index]->prepare(
      container->config, guarded([this, container, index](api::Status status) {
        if (!status) return abortLaunch(container, status.withContext("preparing isolation"));
        prepareNext(container, index + 1);
      }));
}

void NativeContainerizer::spawn(ContainerPtr container) {
  const std::string& sandbox = container->config.sandboxDirectory;
  auto child = spawnChild(container->spec, sandbox + "/stdout", sandbox + "/stderr");
  if (!child) return abortLaunch(container, child.status());
  container->child = *child;
  container->signalFd = dup(child->pidfd);
  auto stat = readProcStat(child->pid);
  if (container->signalFd < 0 || !stat) {
    abortLaunch(container, api::internalError("cannot inspect the new process {}", child->pid));
    watchExit(container, std::exchange(container->child.pidfd, -1));
    return;
  }
  container->startTime = stat->startTime;
  container->phase = Phase::kIsolating;
  watchExit(container, std::exchange(container->child.pidfd, -1));
  isolateNext(container, 0);
}

void NativeContainerizer::isolateNext(ContainerPtr container, size_t index) {
  if (container->launchError || container->cleaningUp) return;  // onExit() drives it from here
  if (container->destroyRequested) {
    return abortLaunch(
        container, api::makeStatus(api::StatusCode::kAborted,
                                   "container '{}' was destroyed during launch", container->id));
  }
  if (index == settings_.isolators.size()) return start(container);
  // A nested container's processes go into its parent's isolation (cgroups).
  const std::string& isolationId = container->parent.empty() ? container->id : container->parent;
  settings_.isolators[index]->isolate(
      isolationId, container->child.pid, guarded([this, container, index](api::Status status) {
        if (container->launchError || container->cleaningUp) return;
        if (!status) return abortLaunch(container, status.withContext("isolating"));
        isolateNext(container, index + 1);
      }));
}

void NativeContainerizer::start(ContainerPtr container) {
  releaseChild(container->child, true);
  container->phase = Phase::kStarting;
  // A nested container's limitations are its parent's (which takes it along when it ends).
  for (const auto& isolator :
       container->parent.empty() ? settings_.isolators : decltype(settings_.isolators){}) {
    isolator->watch(container->id,
                    guarded([this, id = container->id](api::ContainerLimitation limitation) {
                      onLimitation(id, std::move(limitation));
                    }));
  }
  // The child reports a failed chdir/setuid/execve on a CLOEXEC pipe; EOF means it exec'd.
  // Reading it may block (an exec from a slow filesystem), so it runs on the blocking pool.
  int fd = std::exchange(container->child.execErrorFd, -1);
  auto spec = std::make_shared<LaunchSpec>(container->spec);
  auto error = std::make_shared<std::optional<std::string>>();
  auto started = [this, container, error] {
    api::ContainerCheckpoint checkpoint{
        container->id,
        kModuleName,
        container->child.pid,
        container->startTime,
        container->config.sandboxDirectory,
        container->parent.empty() ? std::string(kCheckpointData)
                                  : std::string(kNestedCheckpointData) + container->parent};
    auto done = std::exchange(container->launchDone, nullptr);
    container->execCheckPending = false;
    if (*error) {
      launchFailed_.increment();
      container->launchError = api::internalError("{}", **error);
      context_.logger().warning("container '{}' failed to start: {}", container->id, **error);
      done(*container->launchError);
    } else {
      if (container->phase == Phase::kStarting) container->phase = Phase::kRunning;
      launched_.increment();
      context_.logger().info("container '{}' started as pid {}", container->id,
                             container->child.pid);
      done(std::move(checkpoint));
    }
    // The process may have ended already (exec failed, or a short command): its termination
    // waited for this, so that it can say why.
    if (container->finishPending) finish(container, *container->finishPending);
  };
  container->execCheckPending = true;
  auto submitted = context_.executor().runBlocking(
      [fd, spec, error] { *error = readExecError(fd, *spec); }, guarded(started));
  if (!submitted) {
    // No thread to wait on: the launch counts as started, and an exec failure shows only as
    // the command's exit status 127.
    close(fd);
    started();
  }
}

void NativeContainerizer::abortLaunch(ContainerPtr container, api::Status error) {
  if (!container->launchError) container->launchError = std::move(error);
  if (container->child.pid > 0 && !container->exited) {
    releaseChild(container->child, false);
    container->phase = Phase::kDestroying;
    signal(*container, SIGKILL);
    return;  // onExit() cleans up
  }
  if (container->child.pid <= 0) cleanup(container);
}

// --- exits, destroy, limitations ----------------------------------------------------------

void NativeContainerizer::watchExit(ContainerPtr container, int pidfd) {
  api::Executor* executor = &context_.executor();
  std::weak_ptr<int> weak = alive_;
  auto watched = reaper_.watch(
      pidfd, [this, executor, weak, id = container->id,
              directory = container->runtimeDirectory](std::optional<int> waitStatus) {
        // On the reaper's thread (so the file read blocks no strand). The supervisor recorded its
        // command's status before it ended; that is the truth even when waitid knows a status
        // (the supervisor's mirror of it) or knows none (re-adopted, not our child).
        if (auto recorded = readExitStatus(directory)) waitStatus = recorded;
        // Hop to the executor.
        executor->post([this, weak, id, waitStatus] {
          if (!weak.expired()) onExit(id, waitStatus);
        });
      });
  if (!watched) {
    context_.logger().error("cannot watch container '{}': {}", container->id, watched.toString());
  }
}

void NativeContainerizer::onExit(const std::string& id, std::optional<int> waitStatus) {
  assertOnExecutor();
  auto it = containers_.find(id);
  if (it == containers_.end()) return;
  ContainerPtr container = it->second;
  container->exited = true;
  container->waitStatus = waitStatus;
  if (container->killTimer) container->killTimer->cancel();
  releaseChild(container->child, false);
  // The main process is gone; whatever else is left of its process group goes with it.
  if (container->child.pid > 0) kill(-container->child.pid, SIGKILL);
  if (container->phase == Phase::kIsolating && !container->launchError) {
    container->launchError = api::internalError(
        "the container's process ended before it was started: {}",
        waitStatus ? describeWaitStatus(*waitStatus) : std::string("status unknown"));
  }
  context_.logger().info("container '{}' ended: {}", id,
                         waitStatus ? describeWaitStatus(*waitStatus) : kUnknownStatus);
  cleanup(container);
}

void NativeContainerizer::signal(Container& container, int signal) {
  if (container.child.pid <= 0 || container.exited) return;
  // The pidfd can never hit a reused pid; the group kill reaches the rest of the tree (it fails
  // harmlessly before the child's setsid()). With namespaces/pid the supervisor is its namespace's
  // init: of our signals only SIGKILL reaches it, and takes everything in the namespace with it;
  // the group's SIGTERM reaches the command (host pids, same group) as without.
  if (container.signalFd >= 0) pidfdSendSignal(container.signalFd, signal);
  kill(-container.child.pid, signal);
}

void NativeContainerizer::killAfterGrace(ContainerPtr container, std::chrono::nanoseconds grace) {
  if (grace < std::chrono::nanoseconds::zero()) grace = *defaultGracePeriod_;
  if (grace == std::chrono::nanoseconds::zero()) return signal(*container, SIGKILL);
  signal(*container, SIGTERM);
  container->killTimer = context_.executor().schedule(grace, guarded([this, container] {
                                                        if (container->exited) return;
                                                        context_.logger().info(
                                                            "container '{}' outlived its grace "
                                                            "period, sending SIGKILL",
                                                            container->id);
                                                        signal(*container, SIGKILL);
                                                      }));
}

void NativeContainerizer::destroy(std::string_view containerId,
                                  std::chrono::nanoseconds gracePeriod,
                                  std::function<void(api::Status)> done) {
  assertOnExecutor();
  auto it = containers_.find(containerId);
  if (it == containers_.end()) {
    if (terminated_.count(containerId) != 0) return done(api::Status::ok());
    return done(api::notFound("unknown container '{}'", containerId));
  }
  ContainerPtr container = it->second;
  container->destroys.push_back(std::move(done));
  if (container->destroyRequested || container->cleaningUp) return;
  container->destroyRequested = true;
  context_.logger().info("destroying container '{}'", container->id);
  switch (container->phase) {
    case Phase::kPreparing:
      return;  // prepareNext() aborts at its next step
    case Phase::kIsolating:
      return abortLaunch(
          container, api::makeStatus(api::StatusCode::kAborted,
                                     "container '{}' was destroyed during launch", container->id));
    case Phase::kStarting:
    case Phase::kRunning:
      container->phase = Phase::kDestroying;
      if (!container->nested.empty()) {
        // The nested containers go first, with the same grace; nestedGone() goes on.
        container->destroyAfterNested = gracePeriod;
        for (const auto& nestedId : std::set<std::string>(container->nested)) {
          destroy(nestedId, gracePeriod, [](api::Status) {});
        }
        return;
      }
      return killAfterGrace(container, gracePeriod);
    case Phase::kDestroying:
      return;  // already being killed (a limitation); the termination will say killed
  }
}

void NativeContainerizer::onLimitation(const std::string& id, api::ContainerLimitation limitation) {
  auto it = containers_.find(id);
  if (it == containers_.end()) return;
  ContainerPtr container = it->second;
  if (container->limitation) return;
  if (container->exited || container->cleaningUp) {
    // The process ended before the limitation arrived (an OOM kill races its own exit); an
    // isolator reports it at the latest from its cleanup(), before finish(): it is still why
    // the container ended.
    limited_.increment();
    context_.logger().warning("container '{}' hit a limitation: {}", id, limitation.message);
    container->limitation = std::move(limitation);
    return;
  }
  limited_.increment();
  context_.logger().warning("container '{}' hit a limitation: {}", id, limitation.message);
  container->limitation = std::move(limitation);
  container->phase = Phase::kDestroying;
  signal(*container, SIGKILL);
}

void NativeContainerizer::cleanup(ContainerPtr container) {
  if (container->cleaningUp) return;
  container->cleaningUp = true;
  // A nested container has no isolation of its own to clean up.
  if (!container->parent.empty()) return finish(container, api::Status::ok());
  if (!container->nested.empty()) {
    // The parent ended with nested containers still running: they go with it (SIGKILL), as
    // their processes hold its cgroups; why it ended is why they did.
    container->cleanupWaitsForNested = true;
    for (const auto& nestedId : std::set<std::string>(container->nested)) {
      auto it = containers_.find(nestedId);
      if (it == containers_.end()) continue;
      ContainerPtr nested = it->second;
      nested->destroyRequested = true;
      if (container->limitation && !nested->limitation) nested->limitation = container->limitation;
      if (nested->phase == Phase::kIsolating) {
        abortLaunch(nested, api::makeStatus(api::StatusCode::kAborted,
                                            "parent container '{}' ended", container->id));
        continue;
      }
      nested->phase = Phase::kDestroying;
      signal(*nested, SIGKILL);
    }
    return;
  }
  cleanupNext(container, 0, api::Status::ok());
}

void NativeContainerizer::nestedGone(const std::string& parentId, const std::string& id) {
  auto it = containers_.find(parentId);
  if (it == containers_.end()) return;
  ContainerPtr parent = it->second;
  parent->nested.erase(id);
  if (!parent->nested.empty()) return;
  if (parent->cleanupWaitsForNested) {
    parent->cleanupWaitsForNested = false;
    return cleanupNext(parent, 0, api::Status::ok());
  }
  if (parent->destroyAfterNested && !parent->exited) {
    killAfterGrace(parent, *std::exchange(parent->destroyAfterNested, std::nullopt));
  }
}

void NativeContainerizer::cleanupNext(ContainerPtr container, size_t index, api::Status first) {
  if (index == settings_.isolators.size()) return finish(container, first);
  settings_.isolators[index]->cleanup(
      container->id, guarded([this, container, index, first](api::Status status) {
        if (!status) {
          context_.logger().error("isolator cleanup of container '{}' failed: {}", container->id,
                                  status.toString());
        }
        cleanupNext(container, index + 1, first.isOk() ? status : first);
      }));
}

void NativeContainerizer::finish(ContainerPtr container, api::Status cleanupStatus) {
  if (container->execCheckPending) {
    container->finishPending = std::move(cleanupStatus);
    return;
  }
  api::ContainerTermination termination;
  termination.waitStatus = container->waitStatus;
  termination.limitation = container->limitation;
  termination.killed = container->destroyRequested && !container->limitation;
  if (container->limitation) {
    termination.message = container->limitation->message;
  } else if (container->launchError) {
    termination.message = container->launchError->message();
  } else if (container->waitStatus) {
    termination.message = describeWaitStatus(*container->waitStatus);
  } else {
    termination.message = kUnknownStatus;
  }
  closeIf(container->signalFd);
  if (container->destroyRequested) destroyed_.increment();
  containers_.erase(container->id);
  remember(container->id, termination);
  // The status is reported now (and kept in memory for late waits); the file has done its job.
  removeRuntimeDirectory(container->id, container->runtimeDirectory);

  if (container->launchDone && container->launchError) {
    launchFailed_.increment();
    std::exchange(container->launchDone, nullptr)(*container->launchError);
  }
  for (auto& wait : std::exchange(container->waits, {})) wait(termination);
  for (auto& done : std::exchange(container->destroys, {})) done(cleanupStatus);
  if (!container->parent.empty()) nestedGone(container->parent, container->id);
}

void NativeContainerizer::remember(const std::string& id, api::ContainerTermination termination) {
  terminated_[id] = std::move(termination);
  terminatedOrder_.push_back(id);
  while (terminatedOrder_.size() > kTerminationsKept) {
    terminated_.erase(terminatedOrder_.front());
    terminatedOrder_.pop_front();
  }
}

void NativeContainerizer::removeRuntimeDirectory(const std::string& id,
                                                 const std::string& directory) {
  if (directory.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(directory, ec);
  if (ec) {
    context_.logger().warning("cannot remove the runtime directory of container '{}': {}", id,
                              ec.message());
  }
}

void NativeContainerizer::wait(std::string_view containerId,
                               std::function<void(api::Result<api::ContainerTermination>)> done) {
  assertOnExecutor();
  if (auto it = containers_.find(containerId); it != containers_.end()) {
    it->second->waits.push_back(std::move(done));
    return;
  }
  if (auto it = terminated_.find(containerId); it != terminated_.end()) return done(it->second);
  done(api::notFound("unknown container '{}'", containerId));
}

// --- update, usage, containers ------------------------------------------------------------

void NativeContainerizer::update(std::string_view containerId, const api::Resources& resources,
                                 std::function<void(api::Status)> done) {
  assertOnExecutor();
  if (containers_.count(containerId) == 0) {
    return done(api::notFound("unknown container '{}'", containerId));
  }
  updateNext(std::string(containerId), resources, 0, std::move(done));
}

void NativeContainerizer::updateNext(std::string id, api::Resources resources, size_t index,
                                     std::function<void(api::Status)> done) {
  if (index == settings_.isolators.size()) return done(api::Status::ok());
  auto isolator = settings_.isolators[index];
  isolator->update(id, resources,
                   guarded([this, id, resources, index, done](api::Status status) mutable {
                     if (!status) return done(status.withContext("updating container '{}'", id));
                     updateNext(std::move(id), std::move(resources), index + 1, std::move(done));
                   }));
}

void NativeContainerizer::usage(std::string_view containerId,
                                std::function<void(api::Result<v1::ResourceStatistics>)> done) {
  assertOnExecutor();
  auto it = containers_.find(containerId);
  if (it == containers_.end() || it->second->child.pid <= 0) {
    return done(api::notFound("unknown container '{}'", containerId));
  }
  const pid_t group = it->second->child.pid;
  auto stats = std::make_shared<v1::ResourceStatistics>();
  uint64_t utime = 0, stime = 0;
  int64_t rss = 0, threads = 0, processes = 0;
  for (pid_t pid : listPids()) {
    auto stat = readProcStat(pid);
    // The supervisor (the group leader) is the containerizer's, not the task's: a copy of the
    // agent's address space whose shared pages would inflate the task's RSS.
    if (!stat || stat->pgrp != group || stat->state == 'Z' || pid == group) continue;
    ++processes;
    threads += stat->numThreads;
    utime += stat->utime;
    stime += stat->stime;
    rss += stat->rssPages;
  }
  stats->set_timestamp(api::nowSeconds());
  stats->set_processes(static_cast<uint32_t>(processes));
  stats->set_threads(static_cast<uint32_t>(threads));
  stats->set_cpus_user_time_secs(static_cast<double>(utime) / clockTicksPerSecond());
  stats->set_cpus_system_time_secs(static_cast<double>(stime) / clockTicksPerSecond());
  stats->set_mem_rss_bytes(static_cast<uint64_t>(rss * pageSize()));
  usageNext(stats, std::string(containerId), 0, std::move(done));
}

void NativeContainerizer::usageNext(std::shared_ptr<v1::ResourceStatistics> stats, std::string id,
                                    size_t index,
                                    std::function<void(api::Result<v1::ResourceStatistics>)> done) {
  if (index == settings_.isolators.size()) return done(*stats);
  settings_.isolators[index]->usage(
      id, *stats,
      guarded([this, stats, id, index, done](api::Result<v1::ResourceStatistics> result) mutable {
        if (result) {
          *stats = std::move(*result);
        } else {
          context_.logger().warning("isolator usage of container '{}' failed: {}", id,
                                    result.status().toString());
        }
        usageNext(std::move(stats), std::move(id), index + 1, std::move(done));
      }));
}

void NativeContainerizer::containers(std::function<void(std::vector<std::string>)> done) {
  assertOnExecutor();
  std::vector<std::string> ids;
  for (const auto& [id, container] : containers_) ids.push_back(id);
  done(std::move(ids));
}

// --- recovery -----------------------------------------------------------------------------

void NativeContainerizer::recover(
    const std::vector<api::ContainerCheckpoint>& checkpoints,
    std::function<void(api::Result<std::vector<api::RecoveredContainer>>)> done) {
  assertOnExecutor();
  if (!initialized_) return done(api::failedPrecondition("not initialized"));
  std::vector<api::RecoveredContainer> result;
  std::vector<api::ContainerCheckpoint> alive;
  for (const auto& checkpoint : checkpoints) {
    if (checkpoint.containerizer != kModuleName) continue;
    if (containers_.count(checkpoint.containerId) != 0) continue;
    const std::string directory =
        validContainerId(checkpoint.containerId)
            ? runtimeDirectory(settings_.agentWorkDir, checkpoint.containerId)
            : std::string();
    auto ended = [&](std::optional<int> waitStatus, std::string message) {
      // The supervisor recorded the command's status before it ended, agent or no agent.
      if (auto recorded = readExitStatus(directory)) waitStatus = recorded;
      removeRuntimeDirectory(checkpoint.containerId, directory);
      api::ContainerTermination termination;
      termination.waitStatus = waitStatus;
      termination.message = waitStatus ? describeWaitStatus(*waitStatus) : std::move(message);
      context_.logger().info("container '{}' ended while the agent was down: {}",
                             checkpoint.containerId, termination.message);
      remember(checkpoint.containerId, termination);
      result.push_back({checkpoint.containerId, std::move(termination)});
    };
    const std::string unknown =
        "Command ended while the agent was down; its exit status is unknown";
    if (checkpoint.pid <= 0) {
      ended(std::nullopt, unknown);
      continue;
    }
    const auto pid = static_cast<pid_t>(checkpoint.pid);
    // Open the pidfd first, then check the start time: if it matches, the pidfd is the very
    // process that was checkpointed, and every later signal through it is safe.
    int pidfd = pidfdOpen(pid);
    if (pidfd < 0) {
      ended(std::nullopt, unknown);
      continue;
    }
    auto stat = readProcStat(pid);
    if (!stat || stat->startTime != checkpoint.startTime) {
      close(pidfd);
      ended(std::nullopt, unknown);
      continue;
    }
    pollfd ready{pidfd, POLLIN, 0};
    if (stat->state == 'Z' || poll(&ready, 1, 0) > 0) {
      auto waitStatus = Reaper::tryReap(pidfd);  // known only if it is still our child
      close(pidfd);
      ended(waitStatus, unknown);
      continue;
    }
    auto container = std::make_shared<Container>();
    container->id = checkpoint.containerId;
    container->config.containerId = checkpoint.containerId;
    container->config.sandboxDirectory = checkpoint.sandboxDirectory;
    container->phase = Phase::kRunning;
    container->recovered = true;
    container->child.pid = pid;
    container->startTime = checkpoint.startTime;
    container->runtimeDirectory = directory;
    container->signalFd = dup(pidfd);
    if (std::string_view(checkpoint.data).starts_with(kNestedCheckpointData)) {
      container->parent = checkpoint.data.substr(kNestedCheckpointData.size());
    }
    containers_[container->id] = container;
    watchExit(container, pidfd);
    context_.logger().info("re-adopted container '{}' (pid {})", container->id, pid);
    // A nested container has no isolation of its own for the isolators to recover.
    if (container->parent.empty()) alive.push_back(checkpoint);
    result.push_back({checkpoint.containerId, std::nullopt});
  }
  // Nested containers find their parents again; one whose parent is gone goes too.
  for (const auto& [id, container] : containers_) {
    if (!container->recovered || container->parent.empty()) continue;
    auto parent = containers_.find(container->parent);
    if (parent != containers_.end() && parent->second->parent.empty()) {
      parent->second->nested.insert(id);
      continue;
    }
    context_.logger().warning("killing nested container '{}': its parent '{}' is gone", id,
                              container->parent);
    container->destroyRequested = true;
    container->phase = Phase::kDestroying;
    signal(*container, SIGKILL);
  }
  killOrphans();
  recoverIsolators(std::move(alive), 0, std::move(result), std::move(done));
}

void NativeContainerizer::killOrphans() {
  // Every process a container runs carries TESSERA_CONTAINER_ID and this agent's work dir in
  // its environment (inherited by its whole tree, even what left the process group), so the
  // ones that belong to no re-adopted container are orphans.
  for (const auto& [id, pids] : findMarkedProcesses(settings_.agentWorkDir)) {
    if (containers_.count(id) != 0) continue;
    context_.logger().warning("killing {} orphan process(es) of unknown container '{}'",
                              pids.size(), id);
    for (pid_t pid : pids) kill(pid, SIGKILL);
  }
}

void NativeContainerizer::recoverIsolators(
    std::vector<api::ContainerCheckpoint> alive, size_t index,
    std::vector<api::RecoveredContainer> result,
    std::function<void(api::Result<std::vector<api::RecoveredContainer>>)> done) {
  if (index == settings_.isolators.size()) {
    for (const auto& checkpoint : alive) {
      for (const auto& isolator : settings_.isolators) {
        isolator->watch(
            checkpoint.containerId,
            guarded([this, id = checkpoint.containerId](api::ContainerLimitation limitation) {
              onLimitation(id, std::move(limitation));
            }));
      }
    }
    return done(std::move(result));
  }
  auto isolator = settings_.isolators[index];
  isolator->recover(
      alive,
      guarded([this, alive, index, result = std::move(result), done](api::Status status) mutable {
        if (!status) return done(status.withContext("recovering isolators"));
        recoverIsolators(std::move(alive), index + 1, std::move(result), std::move(done));
      }));
}

}  // namespace tessera::modules::containerizer_native
