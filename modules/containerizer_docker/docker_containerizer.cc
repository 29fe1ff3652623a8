#include "modules/containerizer_docker/docker_containerizer.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <sys/stat.h>

#include <cassert>
#include <cstdio>
#include <set>
#include <sstream>

#include "modules/containerizer_docker/docker_spec.h"
#include "tessera/api/duration.h"

namespace tessera::modules::containerizer_docker {

namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;
using namespace std::chrono_literals;

constexpr auto kPingInterval = 10s;
constexpr auto kPingTimeout = 2s;
constexpr auto kPullTimeout = std::chrono::minutes(5);
// A container's logs normally end with it; this bounds the wait for a stream that does not.
constexpr auto kLogsGrace = 5s;
// How long a wait on a running container may take: for ever, in practice.
constexpr auto kForever = std::chrono::hours(24 * 365);

Object::Ptr parseObject(const std::string& text) {
  try {
    auto parsed = Poco::JSON::Parser().parse(text);
    if (parsed.type() == typeid(Object::Ptr)) return parsed.extract<Object::Ptr>();
  } catch (const Poco::Exception&) {
  }
  return nullptr;
}

// The daemon's `message` from an error body, else the body itself.
std::string engineMessage(const EngineResponse& response) {
  if (auto object = parseObject(response.body); object && object->has("message")) {
    return object->getValue<std::string>("message");
  }
  std::string body = response.body;
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  return body.empty() ? fmt::format("HTTP status {}", response.status) : body;
}

// A pull answers 200 and reports failure inside its progress stream: the last `error`.
std::optional<std::string> pullError(const std::string& body) {
  std::optional<std::string> error;
  std::istringstream lines(body);
  std::string line;
  while (std::getline(lines, line)) {
    if (auto object = parseObject(line); object && object->has("error")) {
      error = object->getValue<std::string>("error");
    }
  }
  return error;
}

int64_t intAt(Object::Ptr object, std::initializer_list<const char*> path) {
  for (auto it = path.begin(); it != path.end(); ++it) {
    if (!object || !object->has(*it)) return 0;
    if (std::next(it) == path.end()) {
      try {
        return object->get(*it).convert<Poco::Int64>();
      } catch (const Poco::Exception&) {
        return 0;
      }
    }
    object = object->getObject(*it);
  }
  return 0;
}

// Where the containers' logs go: the sandbox's stdout/stderr files, written on the client's
// thread as the stream arrives.
class LogSink {
 public:
  explicit LogSink(const std::string& sandbox)
      : out_(std::fopen((sandbox + "/stdout").c_str(), "ae")),
        err_(std::fopen((sandbox + "/stderr").c_str(), "ae")),
        demuxer_([this](int stream, std::string_view payload) {
          std::FILE* file = stream == 2 ? err_ : out_;
          if (file == nullptr) return;
          std::fwrite(payload.data(), 1, payload.size(), file);
          std::fflush(file);
        }) {}
  ~LogSink() {
    if (out_ != nullptr) std::fclose(out_);
    if (err_ != nullptr) std::fclose(err_);
  }
  void feed(std::string_view data) { demuxer_.feed(data); }

 private:
  std::FILE* out_;
  std::FILE* err_;
  LogDemuxer demuxer_;
};

// Docker's `since` for logs after the sandbox files were last written (re-attaching after an
// agent restart copies only what came meanwhile).
std::optional<std::string> lastWrite(const std::string& sandbox) {
  std::optional<timespec> latest;
  for (const char* name : {"/stdout", "/stderr"}) {
    struct stat info {};
    if (::stat((sandbox + name).c_str(), &info) != 0 || info.st_size == 0) continue;
    if (!latest || info.st_mtim.tv_sec > latest->tv_sec ||
        (info.st_mtim.tv_sec == latest->tv_sec && info.st_mtim.tv_nsec > latest->tv_nsec)) {
      latest = info.st_mtim;
    }
  }
  if (!latest) return std::nullopt;
  // A file's mtime comes from the kernel's coarse clock, up to one tick (10 ms at HZ=100) behind
  // the moment of the write, so the last copied line's own Docker timestamp can be later than
  // it: start one tick on, or that line is copied twice. (A line that came out within that tick
  // after the last copied one, and was not copied before the agent stopped, is not re-read.)
  constexpr long kCoarseClockTickNs = 10'000'000;
  long nanos = latest->tv_nsec + kCoarseClockTickNs;
  const auto seconds = static_cast<long long>(latest->tv_sec) + nanos / 1'000'000'000;
  nanos %= 1'000'000'000;
  return fmt::format("{}.{:09}", seconds, nanos);
}

}  // namespace

api::Result<std::unique_ptr<api::Module>> DockerContainerizer::create(
    const api::Parameters& parameters, api::Context& context) {
  api::ParameterReader reader(parameters);
  std::string socket = reader.string("docker_socket", kDefaultSocket);
  if (socket.empty() || socket.front() != '/') {
    return reader.invalid("docker_socket",
                          fmt::format("'{}' is not an absolute path (--docker_socket)", socket));
  }
  auto killOrphans = reader.boolean("docker_kill_orphans", true);
  if (!killOrphans) return killOrphans.status();
  if (auto unknown = reader.rejectUnknown(); !unknown) return unknown;
  return std::unique_ptr<api::Module>(
      std::make_unique<DockerContainerizer>(context, std::move(socket), *killOrphans));
}

DockerContainerizer::DockerContainerizer(api::Context& context, std::string socketPath,
                                         bool killOrphans)
    : context_(context),
      socketPath_(std::move(socketPath)),
      killOrphans_(killOrphans),
      client_(std::make_unique<EngineClient>(socketPath_)),
      launched_(context.metrics().counter("containerizer/docker/launched")),
      launchFailed_(context.metrics().counter("containerizer/docker/launch_failed")),
      destroyed_(context.metrics().counter("containerizer/docker/destroyed")),
      oomKilled_(context.metrics().counter("containerizer/docker/oom_killed")),
      orphansRemoved_(context.metrics().counter("containerizer/docker/orphans_removed")) {}

DockerContainerizer::~DockerContainerizer() { client_->stop(); }

void DockerContainerizer::assertOnExecutor() const {
  assert(context_.executor().runningInThisThread() && "called off the containerizer's executor");
}

template <typename Fn>
auto DockerContainerizer::guarded(Fn fn) {
  return [weak = std::weak_ptr<int>(alive_), fn = std::move(fn)](auto&&... args) mutable {
    if (!weak.expired()) fn(std::forward<decltype(args)>(args)...);
  };
}

void DockerContainerizer::engine(std::string method, std::string target, std::string body,
                                 std::function<void(api::Result<EngineResponse>)> done,
                                 std::chrono::milliseconds timeout) {
  api::Executor& executor = context_.executor();
  client_->request(
      std::move(method), std::move(target), std::move(body),
      [&executor, weak = std::weak_ptr<int>(alive_), this,
       done = std::move(done)](api::Result<EngineResponse> result) mutable {
        if (weak.expired()) return;
        executor.post([weak, this, done = std::move(done), result = std::move(result)]() mutable {
          if (weak.expired()) return;
          noteReachable(result);
          done(std::move(result));
        });
      },
      timeout);
}

void DockerContainerizer::noteReachable(const api::Result<EngineResponse>& result) {
  const bool reachable = result.isOk();
  if (reachable == reachable_) return;
  reachable_ = reachable;
  if (reachable) {
    context_.logger().info("the Docker daemon at '{}' is reachable", socketPath_);
  } else {
    context_.logger().error(
        "the Docker daemon is unreachable: {}; Docker tasks fail until it is "
        "back (check --docker_socket)",
        result.status().message());
  }
}

void DockerContainerizer::ping() {
  engine(
      "GET", "/_ping", "",
      [this](api::Result<EngineResponse>) {
        pingTimer_ = context_.executor().schedule(kPingInterval, guarded([this] { ping(); }));
      },
      kPingTimeout);
}

void DockerContainerizer::stop() {
  assertOnExecutor();
  if (stopped_) return;
  stopped_ = true;
  alive_.reset();
  if (pingTimer_) pingTimer_->cancel();
  for (auto& [id, container] : containers_) {
    if (container->logsTimer) container->logsTimer->cancel();
  }
  // Joins the client's thread: no answer comes back after this. Running containers stay up
  // for the next agent to recover.
  client_->stop();
  containers_.clear();
  context_.metrics().removeGauge("containerizer/docker/daemon_reachable");
  context_.metrics().removeGauge("containerizer/docker/running");
}

void DockerContainerizer::initialize(api::ContainerizerSettings settings,
                                     std::function<void(api::Status)> done) {
  assertOnExecutor();
  if (initialized_) return done(api::failedPrecondition("already initialized"));
  // Docker isolates by itself (cgroups, namespaces); --isolation and isolator modules are for
  // the native containerizer.
  settings_ = std::move(settings);
  initialized_ = true;
  context_.metrics().gauge("containerizer/docker/daemon_reachable",
                           [this] { return reachable_ ? 1.0 : 0.0; });
  context_.metrics().gauge("containerizer/docker/running",
                           [this] { return static_cast<double>(containers_.size()); });
  engine(
      "GET", "/version", "",
      [this, done = std::move(done)](api::Result<EngineResponse> result) {
        if (result && result->status == 200) {
          auto version = parseObject(result->body);
          context_.logger().info(
              "Docker daemon at '{}': engine {} (API {})", socketPath_,
              version && version->has("Version") ? version->getValue<std::string>("Version") : "?",
              version && version->has("ApiVersion") ? version->getValue<std::string>("ApiVersion")
                                                    : "?");
        } else if (!result) {
          // noteReachable() logged it already if it changed; say it once at start regardless.
          context_.logger().error(
              "the Docker daemon at '{}' is unreachable ({}): Docker tasks will fail until it "
              "answers",
              socketPath_, result.status().message());
        }
        pingTimer_ = context_.executor().schedule(kPingInterval, guarded([this] { ping(); }));
        done(api::Status::ok());
      },
      kPingTimeout);
}

void DockerContainerizer::supports(const api::ContainerConfig& config,
                                   std::function<void(bool)> done) {
  assertOnExecutor();
  done(config.container && config.container->type() == v1::ContainerInfo::DOCKER);
}

// --- launch -------------------------------------------------------------------------------

void DockerContainerizer::launch(const api::ContainerConfig& config,
                                 std::function<void(api::Result<api::ContainerCheckpoint>)> done) {
  assertOnExecutor();
  if (!initialized_) return done(api::failedPrecondition("not initialized"));
  if (containers_.count(config.containerId) != 0 || terminated_.count(config.containerId) != 0) {
    return done(api::alreadyExists("container '{}' exists already", config.containerId));
  }
  if (!config.parentContainerId.empty()) {
    // Task groups run as nested containers, which only the native containerizer has.
    launchFailed_.increment();
    return done(api::invalidArgument(
        "the Docker containerizer does not support task groups (nested container '{}' of "
        "'{}'): launch them with the native containerizer (ContainerInfo type MESOS)",
        config.containerId, config.parentContainerId));
  }
  auto body = containerCreateBody(config, settings_.agentWorkDir);
  if (!body) {
    launchFailed_.increment();
    return done(body.status());
  }
  auto container = std::make_shared<Container>();
  container->id = config.containerId;
  container->name = containerName(config.containerId);
  container->sandbox = config.sandboxDirectory;
  container->memMb = config.resources.mem();
  container->launchDone = std::move(done);
  containers_[container->id] = container;
  context_.logger().info("launching container '{}' (task '{}') from image '{}'", container->name,
                         config.taskId, config.container->docker().image());
  ensureImage(container, config.container->docker().image(),
              config.container->docker().force_pull_image(), std::move(body).value());
}

void DockerContainerizer::ensureImage(ContainerPtr container, std::string image, bool forcePull,
                                      std::string body) {
  if (forcePull) return pull(container, std::move(image), std::move(body));
  engine("GET", fmt::format("/images/{}/json", image), "",
         [this, container, image, body = std::move(body)](api::Result<EngineResponse> result) {
           if (container->destroyRequested) {
             return abortLaunch(container, api::makeStatus(api::StatusCode::kAborted,
                                                           "container '{}' was destroyed during "
                                                           "launch",
                                                           container->id));
           }
           if (!result) return abortLaunch(container, result.status());
           if (result->status == 200) return createContainer(container, body);
           if (result->status == 404) return pull(container, image, body);
           abortLaunch(container, api::internalError("inspecting image '{}': {}", image,
                                                     engineMessage(*result)));
         });
}

void DockerContainerizer::pull(ContainerPtr container, std::string image, std::string body) {
  const ImageReference reference = splitImage(image);
  std::string target = fmt::format("/images/create?fromImage={}", urlEncode(reference.image));
  if (!reference.tag.empty()) target += "&tag=" + urlEncode(reference.tag);
  context_.logger().info("pulling image '{}' for container '{}'", image, container->name);
  engine(
      "POST", target, "",
      [this, container, image, body = std::move(body)](api::Result<EngineResponse> result) {
        if (!result) {
          return abortLaunch(container, result.status().withContext("pulling image '{}'", image));
        }
        std::optional<std::string> error;
        if (result->status != 200) {
          error = engineMessage(*result);
        } else {
          error = pullError(result->body);
        }
        if (error) {
          return abortLaunch(
              container, api::makeStatus(api::StatusCode::kNotFound, "cannot pull image '{}': {}",
                                         image, *error));
        }
        if (container->destroyRequested) {
          return abortLaunch(container, api::makeStatus(api::StatusCode::kAborted,
                                                        "container '{}' was destroyed during "
                                                        "launch",
                                                        container->id));
        }
        createContainer(container, body);
      },
      kPullTimeout);
}

void DockerContainerizer::createContainer(ContainerPtr container, std::string body) {
  container->phase = Phase::kCreating;
  engine("POST", fmt::format("/containers/create?name={}", container->name), std::move(body),
         [this, container](api::Result<EngineResponse> result) {
           if (!result) return abortLaunch(container, result.status());
           if (result->status != 201) {
             return abortLaunch(container,
                                api::internalError("creating container '{}': {}", container->name,
                                                   engineMessage(*result)));
           }
           container->created = true;
           if (container->destroyRequested) {
             return abortLaunch(container, api::makeStatus(api::StatusCode::kAborted,
                                                           "container '{}' was destroyed during "
                                                           "launch",
                                                           container->id));
           }
           startContainer(container);
         });
}

void DockerContainerizer::startContainer(ContainerPtr container) {
  container->phase = Phase::kStarting;
  engine("POST", fmt::format("/containers/{}/start", container->name), "",
         [this, container](api::Result<EngineResponse> result) {
           if (!result) return abortLaunch(container, result.status());
           if (result->status != 204 && result->status != 304) {
             return abortLaunch(container,
                                api::internalError("starting container '{}': {}", container->name,
                                                   engineMessage(*result)));
           }
           container->phase = Phase::kRunning;
           followLogs(container, std::nullopt);
           waitForExit(container);
           launched_.increment();
           api::ContainerCheckpoint checkpoint;
           checkpoint.containerId = container->id;
           checkpoint.containerizer = kModuleName;
           checkpoint.sandboxDirectory = container->sandbox;
           checkpoint.data = fmt::format("{}", container->memMb);
           if (auto done = std::exchange(container->launchDone, nullptr)) done(checkpoint);
           // A destroy that came while starting: stop it now that it runs.
           if (container->destroyRequested) stopContainer(container);
         });
}

void DockerContainerizer::abortLaunch(ContainerPtr container, api::Status error) {
  context_.logger().warning("container '{}' failed to launch: {}", container->name,
                            error.message());
  launchFailed_.increment();
  if (container->created) remove(container->name);
  containers_.erase(container->id);
  api::ContainerTermination termination;
  termination.killed = container->destroyRequested;
  termination.message = error.message();
  remember(container->id, termination);
  if (auto done = std::exchange(container->launchDone, nullptr)) done(error);
  for (auto& wait : std::exchange(container->waits, {})) wait(termination);
  for (auto& destroyed : std::exchange(container->destroys, {})) destroyed(api::Status::ok());
}

// --- running, ending ------------------------------------------------------------------------

void DockerContainerizer::followLogs(ContainerPtr container, std::optional<std::string> since) {
  container->logsDone = false;
  auto sink = std::make_shared<LogSink>(container->sandbox);
  std::string target =
      fmt::format("/containers/{}/logs?follow=1&stdout=1&stderr=1", container->name);
  if (since) target += "&since=" + *since;
  api::Executor& executor = context_.executor();
  client_->stream(
      "GET", std::move(target), [sink](std::string_view data) { sink->feed(data); },
      [&executor, weak = std::weak_ptr<int>(alive_), this, container,
       sink](api::Result<EngineResponse> result) mutable {
        sink.reset();  // closes the files before the end is reported
        if (weak.expired()) return;
        executor.post([weak, this, container, result = std::move(result)] {
          if (weak.expired()) return;
          if (!result) {
            context_.logger().warning("the logs of container '{}' ended early: {}", container->name,
                                      result.status().message());
          } else if (result->status >= 300) {
            context_.logger().warning("cannot follow the logs of container '{}': {}",
                                      container->name, engineMessage(*result));
          }
          logsEnded(container);
        });
      });
}

void DockerContainerizer::waitForExit(ContainerPtr container) {
  engine(
      "POST", fmt::format("/containers/{}/wait", container->name), "",
      [this, container](api::Result<EngineResponse> result) {
        if (!result) {
          context_.logger().warning("waiting for container '{}' failed: {}", container->name,
                                    result.status().message());
        }
        inspectExit(container);
      },
      std::chrono::duration_cast<std::chrono::milliseconds>(kForever));
}

void DockerContainerizer::inspectExit(ContainerPtr container) {
  engine("GET", fmt::format("/containers/{}/json", container->name), "",
         [this, container](api::Result<EngineResponse> result) {
           api::ContainerTermination termination;
           termination.killed = container->destroyRequested;
           Object::Ptr inspect =
               result && result->status == 200 ? parseObject(result->body) : nullptr;
           Object::Ptr state =
               inspect && inspect->has("State") ? inspect->getObject("State") : nullptr;
           if (state) {
             const int64_t code = intAt(state, {"ExitCode"});
             const bool oom = state->has("OOMKilled") && state->getValue<bool>("OOMKilled");
             termination.waitStatus = static_cast<int>((code & 0xff) << 8);
             termination.message = fmt::format("Command exited with status {}", code);
             if (oom && !container->destroyRequested) {
               oomKilled_.increment();
               api::ContainerLimitation limitation;
               limitation.reason = v1::TaskStatus::REASON_CONTAINER_LIMITATION_MEMORY;
               limitation.message =
                   fmt::format("Memory limit exceeded: the container was OOM-killed (limit {}MB)",
                               container->memMb);
               termination.message = limitation.message;
               termination.limitation = std::move(limitation);
             }
           } else {
             termination.message =
                 result ? fmt::format("the container is gone: {}", engineMessage(*result))
                        : fmt::format("lost the Docker daemon: {}", result.status().message());
           }
           context_.logger().info("container '{}' ended: {}", container->name, termination.message);
           container->termination = std::move(termination);
           container->waitDone = true;
           container->phase = Phase::kEnding;
           if (container->logsDone) return finish(container);
           container->logsTimer = context_.executor().schedule(
               kLogsGrace, guarded([this, container] { finish(container); }));
         });
}

void DockerContainerizer::logsEnded(ContainerPtr container) {
  container->logsDone = true;
  if (container->waitDone) finish(container);
}

void DockerContainerizer::finish(ContainerPtr container) {
  if (container->finishing) return;  // the logs' end and their grace timer both come here
  container->finishing = true;
  if (container->logsTimer) container->logsTimer->cancel();
  // Reported once the container is removed, so a destroy's answer means nothing is left.
  remove(container->name, [this, container] {
    auto it = containers_.find(container->id);
    if (it != containers_.end() && it->second == container) containers_.erase(it);
    if (container->destroyRequested) destroyed_.increment();
    api::ContainerTermination termination = *container->termination;
    remember(container->id, termination);
    for (auto& wait : std::exchange(container->waits, {})) wait(termination);
    for (auto& done : std::exchange(container->destroys, {})) done(api::Status::ok());
  });
}

void DockerContainerizer::remove(const std::string& name, std::function<void()> then) {
  engine("DELETE", fmt::format("/containers/{}?force=1&v=1", name), "",
         [this, name, then = std::move(then)](api::Result<EngineResponse> result) {
           if (!result) {
             context_.logger().warning("cannot remove container '{}': {}", name,
                                       result.status().message());
           } else if (result->status >= 300 && result->status != 404) {
             context_.logger().warning("cannot remove container '{}': {}", name,
                                       engineMessage(*result));
           }
           if (then) then();
         });
}

void DockerContainerizer::remember(const std::string& id, api::ContainerTermination termination) {
  terminated_[id] = std::move(termination);
  terminatedOrder_.push_back(id);
  while (terminatedOrder_.size() > kTerminationsKept) {
    terminated_.erase(terminatedOrder_.front());
    terminatedOrder_.pop_front();
  }
}

void DockerContainerizer::wait(std::string_view containerId,
                               std::function<void(api::Result<api::ContainerTermination>)> done) {
  assertOnExecutor();
  if (auto it = containers_.find(containerId); it != containers_.end()) {
    it->second->waits.push_back(std::move(done));
    return;
  }
  if (auto it = terminated_.find(containerId); it != terminated_.end()) return done(it->second);
  done(api::notFound("unknown container '{}'", containerId));
}

void DockerContainerizer::destroy(std::string_view containerId,
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
  if (container->destroyRequested) return;
  container->destroyRequested = true;
  container->grace =
      gracePeriod < std::chrono::nanoseconds::zero() ? settings_.defaultGracePeriod : gracePeriod;
  context_.logger().info("destroying container '{}'", container->name);
  // Launch steps in flight abort at their next answer (starting stops it once it runs).
  if (container->phase == Phase::kRunning) stopContainer(container);
}

void DockerContainerizer::stopContainer(ContainerPtr container) {
  // `stop` sends the image's stop signal (SIGTERM), waits t seconds, then SIGKILL; a kill
  // follows if the daemon could not stop it. The wait on the container reports the end.
  const auto seconds = std::chrono::ceil<std::chrono::seconds>(container->grace).count();
  engine(
      "POST", fmt::format("/containers/{}/stop?t={}", container->name, seconds), "",
      [this, container](api::Result<EngineResponse> result) {
        if (result && (result->status == 204 || result->status == 304 || result->status == 404)) {
          return;
        }
        context_.logger().warning("stopping container '{}' failed ({}), killing it",
                                  container->name,
                                  result ? engineMessage(*result) : result.status().message());
        engine("POST", fmt::format("/containers/{}/kill", container->name), "",
               [](api::Result<EngineResponse>) {});
      },
      std::chrono::duration_cast<std::chrono::milliseconds>(container->grace) + 30s);
}

// --- update, usage, containers ------------------------------------------------------------

void DockerContainerizer::update(std::string_view containerId, const api::Resources& resources,
                                 std::function<void(api::Status)> done) {
  assertOnExecutor();
  auto it = containers_.find(containerId);
  if (it == containers_.end()) return done(api::notFound("unknown container '{}'", containerId));
  Object::Ptr body(new Object());
  if (double cpus = resources.cpus(); cpus > 0) {
    body->set("CpuShares", std::max<int64_t>(2, static_cast<int64_t>(cpus * 1024)));
  }
  if (double mem = resources.mem(); mem > 0) {
    const int64_t bytes =
        std::max<int64_t>(6 * 1024 * 1024, static_cast<int64_t>(mem * 1024 * 1024));
    body->set("Memory", bytes);
    body->set("MemorySwap", bytes);
    it->second->memMb = mem;
  }
  std::ostringstream text;
  body->stringify(text);
  const std::string name = it->second->name;
  engine("POST", fmt::format("/containers/{}/update", name), text.str(),
         [name, done = std::move(done)](api::Result<EngineResponse> result) {
           if (!result) return done(result.status().withContext("updating container '{}'", name));
           if (result->status != 200) {
             return done(
                 api::internalError("updating container '{}': {}", name, engineMessage(*result)));
           }
           done(api::Status::ok());
         });
}

void DockerContainerizer::usage(std::string_view containerId,
                                std::function<void(api::Result<v1::ResourceStatistics>)> done) {
  assertOnExecutor();
  auto it = containers_.find(containerId);
  if (it == containers_.end() || it->second->phase != Phase::kRunning) {
    return done(api::notFound("unknown container '{}'", containerId));
  }
  const std::string name = it->second->name;
  engine(
      "GET", fmt::format("/containers/{}/stats?stream=false&one-shot=true", name), "",
      [name, done = std::move(done)](api::Result<EngineResponse> result) {
        if (!result) return done(result.status());
        if (result->status != 200) {
          return done(
              api::notFound("no statistics for container '{}': {}", name, engineMessage(*result)));
        }
        auto stats = parseObject(result->body);
        if (!stats) return done(api::internalError("unreadable statistics of '{}'", name));
        v1::ResourceStatistics out;
        out.set_timestamp(api::nowSeconds());
        out.set_cpus_user_time_secs(
            static_cast<double>(intAt(stats, {"cpu_stats", "cpu_usage", "usage_in_usermode"})) /
            1e9);
        out.set_cpus_system_time_secs(
            static_cast<double>(intAt(stats, {"cpu_stats", "cpu_usage", "usage_in_kernelmode"})) /
            1e9);
        out.set_processes(static_cast<uint32_t>(intAt(stats, {"pids_stats", "current"})));
        out.set_mem_total_bytes(static_cast<uint64_t>(intAt(stats, {"memory_stats", "usage"})));
        out.set_mem_limit_bytes(static_cast<uint64_t>(intAt(stats, {"memory_stats", "limit"})));
        int64_t rss = intAt(stats, {"memory_stats", "stats", "rss"});         // cgroup v1
        if (rss == 0) rss = intAt(stats, {"memory_stats", "stats", "anon"});  // cgroup v2
        out.set_mem_rss_bytes(static_cast<uint64_t>(rss));
        out.set_mem_cache_bytes(
            static_cast<uint64_t>(intAt(stats, {"memory_stats", "stats", "cache"})));
        done(out);
      });
}

void DockerContainerizer::containers(std::function<void(std::vector<std::string>)> done) {
  assertOnExecutor();
  std::vector<std::string> ids;
  for (const auto& [id, container] : containers_) ids.push_back(id);
  done(std::move(ids));
}

// --- recovery -----------------------------------------------------------------------------

void DockerContainerizer::recover(
    const std::vector<api::ContainerCheckpoint>& checkpoints,
    std::function<void(api::Result<std::vector<api::RecoveredContainer>>)> done) {
  assertOnExecutor();
  if (!initialized_) return done(api::failedPrecondition("not initialized"));
  std::vector<api::ContainerCheckpoint> ours;
  for (const auto& checkpoint : checkpoints) {
    if (checkpoint.containerizer == kModuleName) ours.push_back(checkpoint);
  }
  Array::Ptr labels(new Array());
  labels->add(fmt::format("{}={}", kLabelWorkDir, settings_.agentWorkDir));
  Object::Ptr filters(new Object());
  filters->set("label", labels);
  std::ostringstream filterText;
  filters->stringify(filterText);
  engine("GET", "/containers/json?all=1&filters=" + urlEncode(filterText.str()), "",
         [this, ours, done = std::move(done)](api::Result<EngineResponse> result) {
           if (!result || result->status != 200) {
             const std::string why = result ? engineMessage(*result) : result.status().message();
             if (ours.empty()) {
               context_.logger().warning("cannot look for orphan Docker containers: {}", why);
               return done(std::vector<api::RecoveredContainer>{});
             }
             return done(
                 api::unavailable("cannot recover {} Docker container(s): {}", ours.size(), why));
           }
           // container id label -> (name, state)
           std::map<std::string, std::pair<std::string, std::string>> found;
           try {
             auto parsed = Poco::JSON::Parser().parse(result->body).extract<Array::Ptr>();
             for (size_t i = 0; parsed && i < parsed->size(); ++i) {
               auto entry = parsed->getObject(i);
               auto entryLabels = entry->getObject("Labels");
               if (!entryLabels || !entryLabels->has(kLabelContainerId)) continue;
               std::string name = entry->getValue<std::string>("Id");
               found[entryLabels->getValue<std::string>(kLabelContainerId)] = {
                   name, entry->has("State") ? entry->getValue<std::string>("State") : ""};
             }
           } catch (const Poco::Exception& e) {
             return done(api::internalError("unreadable container list: {}", e.displayText()));
           }
           std::vector<api::RecoveredContainer> recovered;
           std::set<std::string> known;
           for (const auto& checkpoint : ours) {
             known.insert(checkpoint.containerId);
             if (containers_.count(checkpoint.containerId) != 0) continue;
             auto it = found.find(checkpoint.containerId);
             const std::string state = it == found.end() ? "" : it->second.second;
             if (state != "running" && state != "exited" && state != "paused" &&
                 state != "restarting") {
               api::ContainerTermination termination;
               termination.message =
                   it == found.end()
                       ? "the container is gone (removed while the agent was down); its exit "
                         "status is unknown"
                       : fmt::format("the container is in state '{}' after the agent's restart",
                                     state);
               if (it != found.end()) remove(containerName(checkpoint.containerId));
               context_.logger().info("container '{}' ended while the agent was down: {}",
                                      checkpoint.containerId, termination.message);
               remember(checkpoint.containerId, termination);
               recovered.push_back({checkpoint.containerId, std::move(termination)});
               continue;
             }
             // Running (or exited meanwhile): watched again; the wait answers at once for an
             // exited one and the inspect gives its real exit code.
             auto container = std::make_shared<Container>();
             container->id = checkpoint.containerId;
             container->name = containerName(checkpoint.containerId);
             container->sandbox = checkpoint.sandboxDirectory;
             try {
               container->memMb = checkpoint.data.empty() ? 0 : std::stod(checkpoint.data);
             } catch (const std::exception&) {
               container->memMb = 0;
             }
             container->phase = Phase::kRunning;
             containers_[container->id] = container;
             context_.logger().info("re-attached to container '{}' ({})", container->name, state);
             followLogs(container, lastWrite(container->sandbox));
             waitForExit(container);
             recovered.push_back({checkpoint.containerId, std::nullopt});
           }
           for (const auto& [containerId, entry] : found) {
             if (known.count(containerId) != 0 || containers_.count(containerId) != 0) continue;
             if (!killOrphans_) {
               context_.logger().warning(
                   "container '{}' of this agent belongs to no known task; left alone "
                   "(--docker_kill_orphans=false)",
                   entry.first);
               continue;
             }
             context_.logger().warning("removing orphan container '{}' ({})",
                                       containerName(containerId), entry.second);
             orphansRemoved_.increment();
             remove(entry.first);
           }
           done(std::move(recovered));
         });
}

}  // namespace tessera::modules::containerizer_docker
