// The agent's core: start/stop, the state store it checkpoints to, and its gauges.

#include "kernel/agent/agent_core.h"

#include <fmt/format.h>

#include <set>

#include "kernel/agent/agent_resources.h"
#include "kernel/agent/isolator_proxy.h"

namespace tessera::kernel::agent {

using namespace std::chrono_literals;
using detail::cancelTimer;
using detail::kSyncTimeout;

AgentCore::AgentCore(AgentServices services, AgentOptions options)
    : services_(std::move(services)),
      options_(std::move(options)),
      strand_(services_.runtime
                  ? std::shared_ptr<runtime::StrandExecutor>(services_.runtime->makeExecutor())
                  : nullptr),
      log_(runtime::logger("agent")),
      gauges_(std::make_shared<Gauges>()) {
  root_ = options_.stateRoot;
  if (root_.empty() || root_.front() != '/') root_ = fmt::format("/{}", root_);
  if (root_.back() != '/') root_ += '/';
  workDir_ = options_.workDir;
}

std::string AgentCore::id() const {
  std::lock_guard lock(idMutex_);
  return publicId_;
}

std::string AgentCore::pid() const {
  std::string name = options_.routePrefix.empty() ? "slave(1)" : options_.routePrefix.substr(1);
  return fmt::format("{}@{}:{}", name, options_.ip, options_.httpPort);
}

// ==== state store ============================================================================

void AgentCore::storeStarted() {
  std::lock_guard lock(storeMutex_);
  ++storePending_;
}

void AgentCore::storeFinished() {
  std::lock_guard lock(storeMutex_);
  if (--storePending_ == 0) storeIdle_.notify_all();
}

void AgentCore::storeSet(const std::string& key, std::string value, std::function<void()> then) {
  if (stopped_) return;
  uint64_t& version = versions_[key];
  const uint64_t expected = version;
  ++version;
  storeStarted();
  std::weak_ptr<AgentCore> weak = weak_from_this();
  services_.state->set(key, std::move(value), expected, *strand_,
                       [weak, key, then = std::move(then)](const api::Result<uint64_t>& result) {
                         auto self = weak.lock();
                         if (!self) return;
                         self->storeFinished();
                         if (!result) {
                           self->log_->error("cannot checkpoint '{}': {}", key,
                                             result.status().toString());
                           self->recoveryErrors_->increment();
                           if (result.status().code() == api::StatusCode::kAborted) {
                             // Someone else wrote the key: forget our idea of its version so the
                             // next write reads it back first.
                             self->versions_.erase(key);
                           }
                         }
                         // Without a working store, updates would never be sent at all: go on
                         // regardless.
                         if (then && !self->stopped_) then();
                       });
}

void AgentCore::storeRemove(const std::string& key) {
  if (stopped_) return;
  auto it = versions_.find(key);
  if (it == versions_.end() || it->second == 0) return;
  const uint64_t version = it->second;
  versions_.erase(it);
  storeStarted();
  std::weak_ptr<AgentCore> weak = weak_from_this();
  services_.state->remove(key, version, *strand_, [weak, key](const api::Status& status) {
    auto self = weak.lock();
    if (!self) return;
    self->storeFinished();
    if (!status && status.code() != api::StatusCode::kNotFound) {
      self->log_->warn("cannot remove checkpoint '{}': {}", key, status.toString());
    }
  });
}

api::Result<std::optional<api::StateEntry>> AgentCore::syncGet(const std::string& key) {
  auto promise = std::make_shared<std::promise<api::Result<std::optional<api::StateEntry>>>>();
  auto future = promise->get_future();
  services_.state->get(key, *strand_,
                       [promise](api::Result<std::optional<api::StateEntry>> result) {
                         promise->set_value(std::move(result));
                       });
  if (future.wait_for(kSyncTimeout) != std::future_status::ready) {
    return api::makeStatus(api::StatusCode::kDeadlineExceeded, "reading '{}' timed out", key);
  }
  auto result = future.get();
  if (result && result->has_value()) versions_[key] = (*result)->version;
  return result;
}

api::Result<std::vector<std::string>> AgentCore::syncChildren(const std::string& prefix) {
  auto promise = std::make_shared<std::promise<api::Result<std::vector<std::string>>>>();
  auto future = promise->get_future();
  services_.state->children(prefix, *strand_,
                            [promise](api::Result<std::vector<std::string>> result) {
                              promise->set_value(std::move(result));
                            });
  if (future.wait_for(kSyncTimeout) != std::future_status::ready) {
    return api::makeStatus(api::StatusCode::kDeadlineExceeded, "listing '{}' timed out", prefix);
  }
  return future.get();
}

api::Status AgentCore::syncRemove(const std::string& key, uint64_t version) {
  auto promise = std::make_shared<std::promise<api::Status>>();
  auto future = promise->get_future();
  services_.state->remove(key, version, *strand_,
                          [promise](const api::Status& status) { promise->set_value(status); });
  if (future.wait_for(kSyncTimeout) != std::future_status::ready) {
    return api::makeStatus(api::StatusCode::kDeadlineExceeded, "removing '{}' timed out", key);
  }
  versions_.erase(key);
  return future.get();
}

// ==== start / stop ===========================================================================

api::Status AgentCore::start() {
  if (started_) return api::failedPrecondition("the agent is already started");
  if (auto checked = checkStartArguments(); !checked) return checked;
  if (auto described = describeAgent(); !described) return described;
  if (auto fetching = startFetcher(); !fetching) return fetching;
  addCounters();
  startGc();

  // Read what the previous agent on this work dir left.
  Recovered recovered;
  if (auto read = readCheckpoints(recovered); !read) {
    return read.withContext("reading the agent's checkpoints");
  }
  if (auto initialized = initializeContainerizers(); !initialized) return initialized;
  auto containers = recoverContainers(recovered);
  if (!containers) return containers.status();
  if (options_.recover == "cleanup") {
    // Kill whatever runs and start over as a new agent.
    startOver(recovered, *containers);
    recovered = Recovered{};
    containers->clear();
  }

  started_ = true;
  std::weak_ptr<AgentCore> weak = weak_from_this();
  strand_->call([&] {
    install(std::move(recovered), *containers);
    return 0;
  });
  addGauges();
  if (auto added = addRoutes(); !added) {
    stop();
    return added;
  }
  strand_->post([weak] {
    if (auto self = weak.lock(); self && !self->stopped_) self->connect();
  });
  log_->info("agent started on '{}' with resources {}", options_.workDir, resources_.toString());
  return api::Status::ok();
}

api::Status AgentCore::checkStartArguments() {
  if (services_.runtime == nullptr || services_.metrics == nullptr || !services_.router ||
      services_.state == nullptr || services_.containerizers.empty()) {
    return api::invalidArgument(
        "the agent needs a runtime, metrics, a router, a state store and a containerizer");
  }
  if (options_.workDir.empty()) return api::invalidArgument("flag '--work_dir' is required");
  if (options_.recover != "reconnect" && options_.recover != "cleanup") {
    return api::invalidArgument("flag '--recover': expected 'reconnect' or 'cleanup', got '{}'",
                                options_.recover);
  }
  if (!options_.resolveMaster) {
    auto master = parseMaster(options_.master);
    if (!master) return master.status();
    masterHost_ = master->first;
    masterPort_ = master->second;
  }
  return api::Status::ok();
}

api::Status AgentCore::describeAgent() {
  std::error_code error;
  fs::create_directories(sandboxRoot(), error);
  if (error) {
    return api::unavailable("flag '--work_dir': cannot create '{}': {}", sandboxRoot().string(),
                            error.message());
  }
  auto detected = agentResources(options_.resources, probeMachine(options_.workDir));
  if (!detected) return detected.status();
  resources_ = std::move(detected).value();
  auto attributes = parseAttributes(options_.attributes);
  if (!attributes) return attributes.status();

  info_.set_hostname(options_.hostname.empty() ? options_.ip : options_.hostname);
  info_.set_port(options_.httpPort);
  *info_.mutable_resources() = resources_.toProto();
  *info_.mutable_attributes() = std::move(attributes).value();
  return api::Status::ok();
}

void AgentCore::addCounters() {
  finished_ = &services_.metrics->counter("slave/tasks_finished");
  failed_ = &services_.metrics->counter("slave/tasks_failed");
  killed_ = &services_.metrics->counter("slave/tasks_killed");
  lost_ = &services_.metrics->counter("slave/tasks_lost");
  recoveryErrors_ = &services_.metrics->counter("slave/recovery_errors");
  validUpdates_ = &services_.metrics->counter("slave/valid_status_updates");
  invalidUpdates_ = &services_.metrics->counter("slave/invalid_status_updates");
  invalidFrameworkMessages_ = &services_.metrics->counter("slave/invalid_framework_messages");
  validFrameworkMessages_ = &services_.metrics->counter("slave/valid_framework_messages");
}

api::ContainerizerSettings AgentCore::containerizerSettings(size_t slot) const {
  api::ContainerizerSettings settings;
  settings.agentWorkDir = options_.workDir;
  settings.defaultGracePeriod = options_.killGracePeriod;
  if (!options_.isolation.empty()) {
    size_t start = 0;
    while (start <= options_.isolation.size()) {
      size_t end = options_.isolation.find(',', start);
      std::string name = options_.isolation.substr(
          start, end == std::string::npos ? std::string::npos : end - start);
      if (!name.empty()) settings.isolation.push_back(name);
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  for (const auto& [isolator, executor] : services_.isolators) {
    settings.isolators.push_back(
        makeIsolatorProxy(*isolator, *executor, *services_.containerizers[slot].executor));
  }
  return settings;
}

api::Status AgentCore::initializeContainerizers() {
  for (size_t slot = 0; slot < services_.containerizers.size(); ++slot) {
    api::ContainerizerSettings settings = containerizerSettings(slot);
    auto initialized = syncContainerizer<api::Status>(
        slot, [settings](api::Containerizer& c, std::function<void(api::Status)> done) {
          c.initialize(settings, std::move(done));
        });
    const std::string& name = services_.containerizers[slot].name;
    if (!initialized) return api::unavailable("containerizer '{}' did not initialize", name);
    if (!*initialized) return initialized->withContext("containerizer '{}'", name);
  }
  return api::Status::ok();
}

api::Result<std::map<std::string, api::RecoveredContainer>> AgentCore::recoverContainers(
    const Recovered& recovered) {
  std::map<std::string, api::RecoveredContainer> containers;
  for (size_t slot = 0; slot < services_.containerizers.size(); ++slot) {
    const std::string& name = services_.containerizers[slot].name;
    std::vector<api::ContainerCheckpoint> mine;
    for (const auto& group : recovered.groups) {
      if (group->container && group->container->containerizer == name) {
        mine.push_back(*group->container);
        group->slot = slot;
      }
    }
    for (const auto& task : recovered.tasks) {
      if (task->container && task->container->containerizer == name) {
        mine.push_back(*task->container);
        task->slot = slot;
      }
    }
    using Answer = api::Result<std::vector<api::RecoveredContainer>>;
    auto result = syncContainerizer<Answer>(
        slot, [mine](api::Containerizer& c, std::function<void(Answer)> done) {
          c.recover(mine, std::move(done));
        });
    if (!result) return api::unavailable("containerizer '{}' did not recover", name);
    if (!*result) return result->status().withContext("recovering containerizer '{}'", name);
    for (auto& container : result->value()) containers[container.containerId] = container;
  }
  return containers;
}

void AgentCore::startOver(const Recovered& recovered,
                          const std::map<std::string, api::RecoveredContainer>& containers) {
  std::vector<std::pair<std::string, size_t>> live;  // container id, slot
  for (const auto& task : recovered.tasks) {
    if (task->container && task->slot) live.emplace_back(task->container->containerId, *task->slot);
  }
  // A group's executor container goes after its nested ones.
  for (const auto& group : recovered.groups) {
    if (group->container && group->slot) live.emplace_back(group->containerId, *group->slot);
  }
  for (const auto& [id, slot] : live) {
    auto it = containers.find(id);
    if (it == containers.end() || it->second.ended) continue;
    auto grace = options_.killGracePeriod;
    auto destroyed = syncContainerizer<api::Status>(
        slot, [id = id, grace](api::Containerizer& c, std::function<void(api::Status)> done) {
          c.destroy(id, grace, std::move(done));
        });
    if (destroyed && !*destroyed) {
      log_->warn("cannot destroy container '{}': {}", id, destroyed->toString());
    }
  }
  std::vector<std::pair<std::string, uint64_t>> keys(versions_.begin(), versions_.end());
  for (const auto& [key, version] : keys) {
    if (auto removed = syncRemove(key, version); !removed) {
      log_->warn("cannot remove checkpoint '{}': {}", key, removed.toString());
    }
  }
}

void AgentCore::addGauges() {
  auto gauges = gauges_;
  auto startedAt = startedAt_;
  auto* metrics = services_.metrics;
  metrics->gauge(
      "slave/registered", nullptr, [gauges] { return gauges->registered.load(); }, this);
  metrics->gauge(
      "slave/uptime_secs", nullptr,
      [startedAt] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - startedAt).count();
      },
      this);
  metrics->gauge(
      "slave/tasks_staging", nullptr, [gauges] { return gauges->staging.load(); }, this);
  metrics->gauge(
      "slave/tasks_starting", nullptr, [gauges] { return gauges->starting.load(); }, this);
  metrics->gauge(
      "slave/tasks_running", nullptr, [gauges] { return gauges->running.load(); }, this);
  metrics->gauge(
      "slave/executors_running", nullptr, [gauges] { return gauges->executorsRunning.load(); },
      this);
}

void AgentCore::stop() {
  if (!started_) return;
  started_ = false;
  services_.router->removeRoutes(strand_.get());
  services_.metrics->removeGauges(this);
  auto client = strand_->call([this] {
    stopped_ = true;
    cancelTimer(reconnectTimer_);
    cancelTimer(watchdog_);
    if (gc_) gc_->stop();
    for (auto& [key, task] : tasks_) {
      if (task->retry) task->retry->cancel();
      task->retry.reset();
    }
    ++generation_;
    if (healthChecks_) healthChecks_->stopAll();
    return std::move(client_);
  });
  if (client) client->stop();
  client.reset();
  if (fetcher_) fetcher_->stop();  // the fetches' answers find stopped_ set
  // Store replies name our strand: wait for them before the strand can go away.
  std::unique_lock lock(storeMutex_);
  storeIdle_.wait_for(lock, kSyncTimeout, [this] { return storePending_ == 0; });
}

// ==== gauges ==================================================================================

void AgentCore::refreshGauges() {
  double staging = 0, starting = 0, running = 0, executors = 0;
  for (const auto& [key, task] : tasks_) {
    switch (task->record.state()) {
      case v1::TASK_STAGING:
        ++staging;
        break;
      case v1::TASK_STARTING:
        ++starting;
        break;
      case v1::TASK_RUNNING:
        ++running;
        break;
      default:
        break;
    }
    if (containerLives(task->phase())) ++executors;
  }
  gauges_->staging = staging;
  gauges_->starting = starting;
  gauges_->running = running;
  gauges_->executorsRunning = executors;
}

}  // namespace tessera::kernel::agent
