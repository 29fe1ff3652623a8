#include "modules/framework_marathon/pod_scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "modules/framework_marathon/sched_placement.h"
#include "modules/framework_marathon/sched_task_builder.h"
#include "tessera/api/logger.h"
#include "tessera/api/task_state.h"

namespace tessera::modules::marathon {

namespace {

bool ended(const PodContainerStatus& container) {
  auto state = v1::TASK_STAGING;
  v1::TaskState_Parse(container.state, &state);
  return api::isTerminal(state) || state == v1::TASK_UNREACHABLE || state == v1::TASK_UNKNOWN ||
         state == v1::TASK_LOST;
}

// What OfferPool takes for one container (or the executor): an app of those resources asking
// for the given host ports (0: any).
App resourceApp(const PodResources& resources, const std::vector<int>& hostPorts) {
  App app;
  app.cpus = resources.cpus;
  app.mem = resources.mem;
  app.disk = resources.disk;
  app.gpus = resources.gpus;
  app.requirePorts = true;
  for (int port : hostPorts) app.portDefinitions.push_back(PortDefinition{port, "tcp", "", {}});
  return app;
}

std::string upperName(std::string_view name) {
  std::string out;
  for (char c : name) {
    out.push_back(std::isalnum(static_cast<unsigned char>(c))
                      ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                      : '_');
  }
  return out;
}

// A container's `healthCheck` as Mesos's: http and tcp probe the endpoint's host port.
v1::HealthCheck healthCheckInfo(const PodHealthCheck& check,
                                const std::map<std::string, int>& endpoints) {
  v1::HealthCheck out = healthCheckTiming(check);
  auto port = endpoints.find(check.endpoint);
  if (check.type == "exec") {
    out.set_type(v1::HealthCheck::COMMAND);
    auto* command = out.mutable_command();
    if (check.shell) {
      command->set_shell(true);
      command->set_value(*check.shell);
    } else {
      command->set_shell(false);
      command->set_value(check.argv.front());
      for (const auto& arg : check.argv) command->add_arguments(arg);
    }
  } else if (check.type == "tcp") {
    out.set_type(v1::HealthCheck::TCP);
    if (port != endpoints.end()) out.mutable_tcp()->set_port(static_cast<uint32_t>(port->second));
  } else {
    out.set_type(v1::HealthCheck::HTTP);
    auto* http = out.mutable_http();
    http->set_scheme(check.scheme == "HTTPS" ? "https" : "http");
    http->set_path(check.path.value_or("/"));
    if (port != endpoints.end()) http->set_port(static_cast<uint32_t>(port->second));
  }
  return out;
}

// A pod's config without what scaling changes: equal keys need no replacement of instances.
std::string configKey(Pod pod) {
  pod.instances = 0;
  pod.maxInstances.reset();
  pod.version = {};
  return podToJson(pod);
}

}  // namespace

std::string PodInstance::status() const {
  size_t running = 0, done = 0;
  for (const auto& container : containers) {
    running += container.state == "TASK_RUNNING";
    done += ended(container);
  }
  if (!containers.empty() && done == containers.size()) return "TERMINAL";
  if (done > 0 || killRequested) return "DEGRADED";  // going: it no longer counts
  if (running == containers.size()) return unhealthy() ? "DEGRADED" : "STABLE";
  if (runningSince) return "DEGRADED";
  return "STAGING";
}

bool PodInstance::unhealthy() const {
  return std::all_of(containers.begin(), containers.end(),
                     [](const PodContainerStatus& c) { return c.state == "TASK_RUNNING"; }) &&
         std::any_of(containers.begin(), containers.end(),
                     [](const PodContainerStatus& c) { return c.checked && c.healthy != true; });
}

bool PodInstance::live() const {
  return !killRequested && std::none_of(containers.begin(), containers.end(), ended);
}

class PodScheduler::Impl {
 public:
  Impl(api::Context& context, Options options)
      : context_(context), options_(std::move(options)), life_(std::make_shared<int>(0)) {}
  ~Impl() { cancelTimers(); }

  struct PodState {
    Pod pod;
    std::string configKey;
    int generation = 0;
    int failures = 0;
    std::optional<Clock::time_point> delayUntil;
  };

  // --- life ---

  void start(api::SchedulerDriver& driver, std::vector<Pod> pods) {
    driver_ = &driver;
    reconciling_ = true;
    for (auto& pod : pods) setPod(pod);
  }

  void stop() {
    cancelTimers();
    driver_ = nullptr;
  }

  void subscribed() {
    if (driver_ == nullptr) return;
    reconciling_ = true;
    interested_ = false;
    std::vector<v1::scheduler::Call::Reconcile::Task> known;
    for (const auto& [id, instance] : instances_) {
      for (const auto& container : instance.containers) {
        known.push_back(reconcileTask(container.taskId, instance.agentId));
      }
    }
    if (!known.empty()) driver_->reconcile(std::move(known), nullptr);
    if (reconcileTimer_) reconcileTimer_->cancel();
    reconcileTimer_ = context_.executor().schedule(options_.reconcileGrace,
                                                   [this, weak = std::weak_ptr<int>(life_)] {
                                                     if (weak.expired()) return;
                                                     reconciling_ = false;
                                                     for (const auto& [id, state] : pods_)
                                                       converge(id);
                                                     updateInterest();
                                                   });
  }

  void disconnected() { reconciling_ = true; }

  // --- the desired pods ---

  void setPod(const Pod& pod) {
    PodState& state = pods_[pod.id];
    const std::string key = configKey(pod);
    if (!state.configKey.empty() && state.configKey != key) {
      ++state.generation;
      state.failures = 0;
      state.delayUntil.reset();
    }
    state.pod = pod;
    state.configKey = key;
    converge(pod.id);
    updateInterest();
  }

  void removePod(const std::string& podId) {
    pods_.erase(podId);
    for (auto& [id, instance] : instances_) {
      if (instance.podId == podId) kill(instance);
    }
    updateInterest();
  }

  bool killInstance(const std::string& podId, const std::string& instanceId) {
    auto it = instances_.find(instanceId);
    if (it == instances_.end() || it->second.podId != podId) return false;
    kill(it->second);
    converge(podId);
    updateInterest();
    return true;
  }

  std::vector<PodInstance> instances(std::string_view podId) const {
    std::vector<PodInstance> out;
    for (const auto& [id, instance] : instances_) {
      if (instance.podId == podId) out.push_back(instance);
    }
    std::sort(out.begin(), out.end(),
              [](const PodInstance& a, const PodInstance& b) { return a.stagedAt < b.stagedAt; });
    return out;
  }

  bool wantsOffers() const {
    if (driver_ == nullptr || reconciling_) return false;
    for (const auto& [id, state] : pods_) {
      if (wanted(state) > 0) return true;
    }
    return false;
  }

  // --- offers ---

  std::vector<v1::Offer> offers(std::vector<v1::Offer> offers) {
    std::vector<v1::Offer> rest;
    for (auto& offer : offers) {
      agents_[offer.agent_id().value()] = agentFacts(offer);
      if (driver_ == nullptr || reconciling_ || !launchOn(offer)) rest.push_back(std::move(offer));
    }
    updateInterest();
    return rest;
  }

  // --- updates ---

  bool update(const v1::TaskStatus& status) {
    const std::string& taskId = status.task_id().value();
    auto name = parsePodTaskId(taskId);
    if (!name) return false;
    handle(status, *name);
    if (driver_ != nullptr && status.has_uuid() && !status.uuid().empty()) {
      driver_->acknowledge(status.agent_id(), status.task_id(), status.uuid(), nullptr);
    }
    if (pods_.contains(name->podId)) converge(name->podId);
    updateInterest();
    return true;
  }

 private:
  // Instances the pod still needs (negative: too many).
  int wanted(const PodState& state) const {
    int live = 0;
    for (const auto& [id, instance] : instances_) {
      if (instance.podId == state.pod.id && instance.live() &&
          instance.generation == state.generation) {
        ++live;
      }
    }
    return state.pod.instances - live;
  }

  void handle(const v1::TaskStatus& status, const PodTaskName& name) {
    const v1::TaskState state = status.state();
    const bool terminal = api::isTerminal(state) || state == v1::TASK_UNKNOWN;
    auto it = instances_.find(name.instanceId);
    if (it == instances_.end()) {
      auto pod = pods_.find(name.podId);
      if (terminal) return;
      if (pod == pods_.end()) {
        context_.logger().info("killing task '{}': it belongs to no known pod", name.instanceId);
        if (driver_ != nullptr) {
          std::optional<v1::AgentID> agent;
          if (status.has_agent_id()) agent = status.agent_id();
          driver_->kill(status.task_id(), agent, nullptr);
        }
        return;
      }
      it = instances_.emplace(name.instanceId, adopt(pod->second, name, status)).first;
      context_.logger().info("adopted instance '{}' of pod '{}'", name.instanceId, name.podId);
    }
    PodInstance& instance = it->second;
    const Clock::time_point now = options_.now();
    if (status.has_agent_id() && !status.agent_id().value().empty()) {
      instance.agentId = status.agent_id().value();
    }
    const std::string before = instance.status();
    const bool wasLive = instance.live();
    for (auto& container : instance.containers) {
      if (container.taskId != status.task_id().value()) continue;
      container.state = v1::TaskState_Name(state);
      container.message = status.message();
      container.since = now;
      if (status.has_healthy()) container.healthy = status.healthy();
    }
    const bool allRunning =
        std::all_of(instance.containers.begin(), instance.containers.end(),
                    [](const PodContainerStatus& c) { return c.state == "TASK_RUNNING"; });
    if (allRunning && !instance.runningSince) instance.runningSince = now;
    if (instance.status() != before) instance.statusSince = now;
    if (wasLive && !instance.live()) failed(instance);
    if (instance.status() == "TERMINAL") {
      context_.logger().info("instance '{}' of pod '{}' ended", instance.id, instance.podId);
      instances_.erase(it);
    }
  }

  // An instance that stopped counting without being killed: its other tasks are killed (the
  // default executor does as much) and the pod is delayed before the replacement.
  void failed(PodInstance& instance) {
    auto pod = pods_.find(instance.podId);
    if (pod != pods_.end() && !instance.killRequested) {
      PodState& state = pod->second;
      const Clock::time_point now = options_.now();
      if (instance.runningSince && now - *instance.runningSince >= options_.backoffResetAfter) {
        state.failures = 0;
      }
      const double delay =
          std::min(state.pod.maxLaunchDelaySeconds,
                   state.pod.backoffSeconds * std::pow(state.pod.backoffFactor, state.failures));
      ++state.failures;
      state.delayUntil =
          now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(delay));
      context_.logger().info("instance '{}' of pod '{}' failed: next launch in {:.1f}s",
                             instance.id, instance.podId, delay);
    }
    kill(instance);
  }

  PodInstance adopt(const PodState& state, const PodTaskName& name, const v1::TaskStatus& status) {
    PodInstance instance;
    instance.id = name.instanceId;
    instance.podId = state.pod.id;
    instance.version = state.pod.version;
    instance.generation = state.generation;
    instance.agentId = status.agent_id().value();
    if (auto facts = agents_.find(instance.agentId); facts != agents_.end()) {
      instance.hostname = facts->second.hostname;
    }
    instance.stagedAt = instance.statusSince = options_.now();
    for (const auto& container : state.pod.containers) {
      PodContainerStatus entry;
      entry.name = container.name;
      entry.taskId = fmt::format("{}.{}", name.instanceId, container.name);
      entry.since = instance.stagedAt;
      entry.checked = container.healthCheck.has_value();
      instance.containers.push_back(std::move(entry));
    }
    if (std::none_of(instance.containers.begin(), instance.containers.end(),
                     [&](const PodContainerStatus& c) { return c.name == name.container; })) {
      // A container the current definition no longer has: an older config, replaced.
      PodContainerStatus entry;
      entry.name = name.container;
      entry.taskId = status.task_id().value();
      instance.containers.push_back(std::move(entry));
      instance.generation = -1;
    }
    return instance;
  }

  void kill(PodInstance& instance) {
    instance.killRequested = true;
    if (driver_ == nullptr) return;
    for (const auto& container : instance.containers) {
      if (ended(container)) continue;
      v1::TaskID taskId;
      taskId.set_value(container.taskId);
      std::optional<v1::AgentID> agent;
      if (!instance.agentId.empty()) {
        agent.emplace();
        agent->set_value(instance.agentId);
      }
      driver_->kill(taskId, agent, nullptr);
    }
  }

  // Kills instances of an older config and those above the count (youngest first unless the
  // pod says OLDEST_FIRST).
  void converge(const std::string& podId) {
    if (reconciling_) return;
    auto it = pods_.find(podId);
    if (it == pods_.end()) return;
    const PodState& state = it->second;
    std::vector<PodInstance*> current;
    for (auto& [id, instance] : instances_) {
      if (instance.podId != podId || !instance.live()) continue;
      if (instance.generation != state.generation) {
        kill(instance);
      } else {
        current.push_back(&instance);
      }
    }
    const bool oldestFirst = state.pod.killSelection == "OLDEST_FIRST";
    std::sort(current.begin(), current.end(), [&](const PodInstance* a, const PodInstance* b) {
      return oldestFirst ? a->stagedAt < b->stagedAt : a->stagedAt > b->stagedAt;
    });
    for (size_t i = 0; i + static_cast<size_t>(state.pod.instances) < current.size(); ++i) {
      kill(*current[i]);
    }
  }

  // Launches the instances the pods need that fit `offer`; false when none did.
  bool launchOn(const v1::Offer& offer) {
    const Clock::time_point now = options_.now();
    const AgentFacts& facts = agents_[offer.agent_id().value()];
    OfferPool pool(offer);
    std::vector<v1::Offer::Operation> operations;
    for (auto& [podId, state] : pods_) {
      if (state.delayUntil && *state.delayUntil > now) continue;
      const std::vector<std::string> roles = state.pod.acceptedResourceRoles.empty()
                                                 ? acceptedRoles(App{}, {}, options_.role)
                                                 : state.pod.acceptedResourceRoles;
      for (int need = wanted(state); need > 0; --need) {
        if (!state.pod.constraints.empty()) {
          std::vector<const AgentFacts*> placed;
          for (const auto& [id, instance] : instances_) {
            if (instance.podId != podId || !instance.live()) continue;
            if (auto agent = agents_.find(instance.agentId); agent != agents_.end()) {
              placed.push_back(&agent->second);
            }
          }
          if (!meetsConstraints(state.pod.constraints, facts, placed)) break;
        }
        auto operation = buildGroup(state, offer, pool, roles, now);
        if (!operation) break;
        operations.push_back(std::move(*operation));
      }
    }
    if (operations.empty()) return false;
    std::vector<std::string> launched;
    for (const auto& operation : operations) {
      launched.push_back(operation.launch_group().executor().executor_id().value());
    }
    context_.logger().info("launching {} pod instance(s) on agent '{}' ({})", operations.size(),
                           offer.agent_id().value(), offer.hostname());
    v1::Filters filters;
    filters.set_refuse_seconds(options_.refuseSeconds);
    driver_->accept({offer.id()}, std::move(operations), filters,
                    [this, weak = std::weak_ptr<int>(life_), launched](api::Status status) {
                      if (weak.expired() || status.isOk()) return;
                      acceptFailed(launched, status);
                    });
    return true;
  }

  // One instance of `state`'s pod from `pool` (taken only when every container fits), recorded
  // as STAGING; nullopt when it does not fit.
  std::optional<v1::Offer::Operation> buildGroup(PodState& state, const v1::Offer& offer,
                                                 OfferPool& pool,
                                                 const std::vector<std::string>& roles,
                                                 Clock::time_point now) {
    const Pod& pod = state.pod;
    OfferPool trial = pool;
    auto executorMatch = trial.take(resourceApp(pod.executorResources, {}), roles);
    if (!executorMatch) return std::nullopt;
    std::vector<OfferMatch> matches;
    for (const auto& container : pod.containers) {
      std::vector<int> ports;
      for (const auto& endpoint : container.endpoints)
        ports.push_back(endpoint.hostPort.value_or(0));
      auto match = trial.take(resourceApp(container.resources, ports), roles);
      if (!match) return std::nullopt;
      matches.push_back(std::move(*match));
    }
    pool = trial;

    PodInstance instance;
    instance.id = newInstanceId(pod.id);
    instance.podId = pod.id;
    instance.version = pod.version;
    instance.generation = state.generation;
    instance.agentId = offer.agent_id().value();
    instance.hostname = offer.hostname();
    instance.stagedAt = instance.statusSince = now;

    v1::Offer::Operation operation;
    operation.set_type(v1::Offer::Operation::LAUNCH_GROUP);
    auto* group = operation.mutable_launch_group();
    auto* executor = group->mutable_executor();
    executor->set_type(v1::ExecutorInfo::DEFAULT);
    executor->mutable_executor_id()->set_value("instance-" + instance.id);
    if (auto frameworkId = driver_->frameworkId()) *executor->mutable_framework_id() = *frameworkId;
    for (auto& resource : executorMatch->resources) *executor->add_resources() = resource;

    // Every endpoint's host port, for every container's environment (they share the host).
    std::map<std::string, std::string> endpointEnv;
    for (size_t i = 0; i < pod.containers.size(); ++i) {
      for (size_t j = 0; j < pod.containers[i].endpoints.size(); ++j) {
        endpointEnv["ENDPOINT_" + upperName(pod.containers[i].endpoints[j].name)] =
            std::to_string(matches[i].hostPorts.at(j));
      }
    }
    for (size_t i = 0; i < pod.containers.size(); ++i) {
      const PodContainer& container = pod.containers[i];
      PodContainerStatus status;
      status.name = container.name;
      status.taskId = fmt::format("{}.{}", instance.id, container.name);
      status.since = now;
      for (size_t j = 0; j < container.endpoints.size(); ++j) {
        status.endpoints[container.endpoints[j].name] = matches[i].hostPorts.at(j);
      }
      v1::TaskInfo* task = group->mutable_task_group()->add_tasks();
      task->set_name(container.name);
      task->mutable_task_id()->set_value(status.taskId);
      *task->mutable_agent_id() = offer.agent_id();
      for (auto& resource : matches[i].resources) *task->add_resources() = resource;
      auto* command = task->mutable_command();
      command->set_shell(true);
      command->set_value(container.command);
      const std::string user = pod.user.value_or(options_.user);
      if (!user.empty()) command->set_user(user);
      std::map<std::string, std::string> env = pod.environment;
      for (const auto& [key, value] : container.environment) env[key] = value;
      for (const auto& [key, value] : endpointEnv) env[key] = value;
      env["HOST"] = offer.hostname();
      env["MESOS_TASK_ID"] = status.taskId;
      env["MARATHON_APP_ID"] = pod.id;
      env["MARATHON_APP_VERSION"] = isoTimestamp(pod.version);
      env["MARATHON_CONTAINER_ID"] = status.taskId;
      env["MARATHON_CONTAINER_RESOURCE_CPUS"] = jvmDouble(container.resources.cpus);
      env["MARATHON_CONTAINER_RESOURCE_MEM"] = jvmDouble(container.resources.mem);
      env["MARATHON_CONTAINER_RESOURCE_DISK"] = jvmDouble(container.resources.disk);
      for (const auto& [key, value] : env) {
        auto* variable = command->mutable_environment()->add_variables();
        variable->set_name(key);
        variable->set_value(value);
      }
      if (container.healthCheck) {
        *task->mutable_health_check() = healthCheckInfo(*container.healthCheck, status.endpoints);
        status.checked = true;
      }
      for (const auto& labels : {pod.labels, container.labels}) {
        for (const auto& [key, value] : labels) {
          auto* label = task->mutable_labels()->add_labels();
          label->set_key(key);
          label->set_value(value);
        }
      }
      instance.containers.push_back(std::move(status));
    }
    instances_.emplace(instance.id, std::move(instance));
    return operation;
  }

  // The master refused the launch: the instances never existed.
  void acceptFailed(const std::vector<std::string>& executors, const api::Status& status) {
    context_.logger().warning("launching {} pod instance(s) failed: {}", executors.size(),
                              status.message());
    std::set<std::string> podIds;
    for (const auto& executor : executors) {
      const std::string id = executor.substr(std::string_view("instance-").size());
      auto it = instances_.find(id);
      if (it == instances_.end()) continue;
      const bool confirmed =
          std::any_of(it->second.containers.begin(), it->second.containers.end(),
                      [](const PodContainerStatus& c) { return c.state != "TASK_STAGING"; });
      if (confirmed) continue;
      podIds.insert(it->second.podId);
      instances_.erase(it);
    }
    for (const auto& podId : podIds) converge(podId);
    updateInterest();
  }

  // Revives offers when a pod starts waiting for them (the app engine may have suppressed).
  void updateInterest() {
    const bool wants = wantsOffers();
    if (wants && !interested_ && driver_ != nullptr) driver_->revive({}, nullptr);
    interested_ = wants;
  }

  void cancelTimers() {
    if (reconcileTimer_) reconcileTimer_->cancel();
  }

  api::Context& context_;
  Options options_;
  api::SchedulerDriver* driver_ = nullptr;
  bool reconciling_ = true;
  bool interested_ = false;
  std::map<std::string, PodState> pods_;
  std::map<std::string, PodInstance> instances_;
  std::map<std::string, AgentFacts> agents_;
  std::unique_ptr<api::TimerHandle> reconcileTimer_;
  std::shared_ptr<int> life_;
};

PodScheduler::PodScheduler(api::Context& context, Options options)
    : impl_(std::make_unique<Impl>(context, std::move(options))) {}
PodScheduler::~PodScheduler() = default;
void PodScheduler::start(api::SchedulerDriver& driver, std::vector<Pod> pods) {
  impl_->start(driver, std::move(pods));
}
void PodScheduler::stop() { impl_->stop(); }
void PodScheduler::subscribed() { impl_->subscribed(); }
void PodScheduler::disconnected() { impl_->disconnected(); }
std::vector<v1::Offer> PodScheduler::offers(std::vector<v1::Offer> offers) {
  return impl_->offers(std::move(offers));
}
bool PodScheduler::update(const v1::TaskStatus& status) { return impl_->update(status); }
void PodScheduler::rescind(const v1::OfferID&) {}
void PodScheduler::setPod(const Pod& pod) { impl_->setPod(pod); }
void PodScheduler::removePod(const std::string& podId) { impl_->removePod(podId); }
bool PodScheduler::killInstance(const std::string& podId, const std::string& instanceId) {
  return impl_->killInstance(podId, instanceId);
}
std::vector<PodInstance> PodScheduler::instances(std::string_view podId) const {
  return impl_->instances(podId);
}
bool PodScheduler::wantsOffers() const { return impl_->wantsOffers(); }

}  // namespace tessera::modules::marathon
