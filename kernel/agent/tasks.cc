// Tasks: launching through the first containerizer that supports them, watching, killing,
// framework shutdown and reconciliation.

#include <fmt/format.h>
#include <sys/wait.h>

#include "kernel/agent/agent_core.h"
#include "tessera/api/task_state.h"

namespace tessera::kernel::agent {

using api::isTerminal;
using api::nowSeconds;
using detail::containerJson;
using detail::keySegment;
using detail::randomBytes;
using detail::safePathComponent;
using detail::uuidText;

AgentCore::Task::Task(TaskPhase initial) : phase_(initial) {
  if (!initialPhase(initial)) checkTransition(initial, initial, "a new task");
}

void AgentCore::Task::transition(TaskPhase to) {
  if (!transitionAllowed(phase_, to)) {
    checkTransition(phase_, to, fmt::format("task '{}' of framework '{}'", taskId, frameworkId));
  }
  phase_ = to;
}

AgentCore::TaskPtr AgentCore::findTask(const std::string& frameworkId,
                                       const std::string& taskId) const {
  auto it = tasks_.find({frameworkId, taskId});
  return it == tasks_.end() ? nullptr : it->second;
}

void AgentCore::runTask(const internal::RunTask& message) {
  const std::string frameworkId = message.framework().id().value();
  const std::string taskId = message.task().task_id().value();
  if (!safePathComponent(frameworkId) || !safePathComponent(taskId)) {
    log_->warn("dropping task '{}' of framework '{}': bad id", taskId, frameworkId);
    sendUnreliable(frameworkId, taskId, v1::TASK_ERROR,
                   "task and framework ids must be non-empty and contain no '/'",
                   v1::TaskStatus::REASON_TASK_INVALID);
    return;
  }
  if (findTask(frameworkId, taskId)) {
    log_->warn("ignoring a second launch of task '{}' of framework '{}'", taskId, frameworkId);
    return;
  }
  frameworks_[frameworkId] = message.framework();
  completedFrameworks_.erase(frameworkId);
  storeSet(root_ + "frameworks/" + keySegment(frameworkId),
           message.framework().SerializeAsString());

  TaskPtr task = stageTask(message);
  log_->info("launching task '{}' of framework '{}' in container '{}'", taskId, frameworkId,
             task->record.container_id());
  if (!makeSandbox(task)) return;
  auto config = containerConfig(*task, message);
  const v1::TaskInfo& info = message.task();
  if (!info.has_command() && !(info.has_executor() && info.executor().has_command())) {
    task->transition(TaskPhase::kTerminated);
    collectSandbox(task);
    enqueueUpdate(task, v1::TASK_FAILED, "the task has no command",
                  v1::TaskStatus::REASON_CONTAINER_LAUNCH_FAILED, v1::TaskStatus::SOURCE_AGENT);
    return;
  }
  task->transition(TaskPhase::kLaunching);
  // The fetcher: URIs land in the sandbox first (TASK_STAGING meanwhile, as with Mesos).
  if (fetchUris(task, config)) return;  // onFetched() goes on
  enqueueUpdate(task, v1::TASK_STARTING, "", std::nullopt);
  chooseContainerizer(task, config, 0);
}

AgentCore::TaskPtr AgentCore::stageTask(const internal::RunTask& message) {
  const std::string frameworkId = message.framework().id().value();
  const std::string taskId = message.task().task_id().value();
  auto task = std::make_shared<Task>(TaskPhase::kStaging);
  task->frameworkId = frameworkId;
  task->taskId = taskId;
  task->key = root_ + "tasks/" + keySegment(frameworkId) + "/" + keySegment(taskId) + "/";
  task->backoff = options_.statusUpdateRetryInterval;
  *task->record.mutable_info() = message.task();
  *task->record.mutable_info()->mutable_agent_id() = info_.id();
  *task->record.mutable_framework_id() = message.framework().id();
  task->record.set_state(v1::TASK_STAGING);
  if (message.has_role()) task->record.set_role(message.role());
  const std::string containerId = uuidText(randomBytes(16));
  task->record.set_container_id(containerId);
  task->sandbox = (sandboxRoot() / info_.id().value() / "frameworks" / frameworkId / "executors" /
                   taskId / "runs" / containerId)
                      .string();
  task->statuses.emplace_back(v1::TASK_STAGING, nowSeconds());
  tasks_[{frameworkId, taskId}] = task;
  checkpointTask(task);
  refreshGauges();
  return task;
}

bool AgentCore::makeSandbox(const TaskPtr& task) {
  std::error_code error;
  fs::create_directories(task->sandbox, error);
  if (!error) {
    fs::permissions(task->sandbox, fs::perms(0755), error);
  }
  if (!error) return true;
  task->transition(TaskPhase::kTerminated);
  collectSandbox(task);
  enqueueUpdate(task, v1::TASK_FAILED,
                fmt::format("cannot create the sandbox '{}': {}", task->sandbox, error.message()),
                v1::TaskStatus::REASON_CONTAINER_LAUNCH_FAILED, v1::TaskStatus::SOURCE_AGENT);
  return false;
}

std::shared_ptr<api::ContainerConfig> AgentCore::containerConfig(
    const Task& task, const internal::RunTask& message) const {
  auto config = std::make_shared<api::ContainerConfig>();
  const v1::TaskInfo& info = message.task();
  const std::string& containerId = task.record.container_id();
  config->containerId = containerId;
  config->agentId = info_.id().value();
  config->frameworkId = task.frameworkId;
  config->executorId = task.taskId;
  config->taskId = task.taskId;
  config->sandboxDirectory = task.sandbox;
  if (info.has_command()) {
    config->command = info.command();
  } else if (info.has_executor() && info.executor().has_command()) {
    config->command = info.executor().command();
  }
  if (info.has_container()) config->container = info.container();
  if (auto resources = api::Resources::fromProto(info.resources()); resources) {
    config->resources = std::move(resources).value();
  }
  if (config->command.has_user()) {
    config->user = config->command.user();
  } else if (!message.framework().user().empty()) {
    config->user = message.framework().user();
  }
  config->environment = {
      {"MESOS_SANDBOX", task.sandbox},
      {"MESOS_DIRECTORY", task.sandbox},
      {"MESOS_TASK_ID", task.taskId},
      {"MESOS_FRAMEWORK_ID", task.frameworkId},
      {"MESOS_EXECUTOR_ID", task.taskId},
      {"MESOS_AGENT_ID", info_.id().value()},
      {"MESOS_SLAVE_ID", info_.id().value()},
      {"MESOS_CONTAINER_ID", containerId},
      {"MESOS_AGENT_ENDPOINT", fmt::format("{}:{}", options_.ip, options_.httpPort)},
  };
  return config;
}

void AgentCore::chooseContainerizer(const TaskPtr& task,
                                    const std::shared_ptr<api::ContainerConfig>& config,
                                    size_t index) {
  if (task->killRequested()) {
    task->transition(TaskPhase::kTerminated);
    collectSandbox(task);
    if (task->frameworkGone()) {
      forget(task);
    } else {
      enqueueUpdate(task, v1::TASK_KILLED, "the task was killed before it was launched",
                    v1::TaskStatus::REASON_TASK_KILLED_DURING_LAUNCH, v1::TaskStatus::SOURCE_AGENT);
    }
    return;
  }
  if (index >= services_.containerizers.size()) {
    task->transition(TaskPhase::kTerminated);
    collectSandbox(task);
    enqueueUpdate(task, v1::TASK_FAILED, "no containerizer supports the task",
                  v1::TaskStatus::REASON_CONTAINER_LAUNCH_FAILED, v1::TaskStatus::SOURCE_AGENT);
    return;
  }
  onContainerizer<bool>(
      index,
      [config](api::Containerizer& c, std::function<void(bool)> done) {
        c.supports(*config, std::move(done));
      },
      [task, config, index](AgentCore& self, bool supported) {
        if (supported) {
          self.launch(task, config, index);
        } else {
          self.chooseContainerizer(task, config, index + 1);
        }
      });
}

void AgentCore::launch(const TaskPtr& task, const std::shared_ptr<api::ContainerConfig>& config,
                       size_t slot) {
  if (task->killRequested()) {
    chooseContainerizer(task, config, slot);  // reports the kill
    return;
  }
  task->slot = slot;
  using Answer = api::Result<api::ContainerCheckpoint>;
  onContainerizer<Answer>(
      slot,
      [config](api::Containerizer& c, std::function<void(Answer)> done) {
        c.launch(*config, std::move(done));
      },
      [task](AgentCore& self, Answer result) { self.onLaunched(task, std::move(result)); });
}

void AgentCore::onLaunched(const TaskPtr& task, api::Result<api::ContainerCheckpoint> result) {
  if (!result) {
    task->transition(TaskPhase::kTerminated);
    collectSandbox(task);
    log_->warn("task '{}' of framework '{}' failed to launch: {}", task->taskId, task->frameworkId,
               result.status().toString());
    if (task->frameworkGone()) {
      forget(task);
      return;
    }
    enqueueUpdate(task, task->killRequested() ? v1::TASK_KILLED : v1::TASK_FAILED,
                  result.status().message(), v1::TaskStatus::REASON_CONTAINER_LAUNCH_FAILED,
                  v1::TaskStatus::SOURCE_AGENT);
    return;
  }
  task->container = std::move(result).value();
  if (task->container->containerizer.empty()) {
    task->container->containerizer = services_.containerizers[*task->slot].name;
  }
  if (task->container->sandboxDirectory.empty()) {
    task->container->sandboxDirectory = task->sandbox;
  }
  task->transition(TaskPhase::kCheckpointing);
  // TASK_RUNNING only once the container's checkpoint is durable: an agent killed in between
  // would otherwise come back without it and destroy a running task's isolation as an orphan's.
  // A termination that arrives meanwhile waits for it too, so RUNNING still comes first.
  const bool running = !task->killRequested();
  storeSet(task->key + "container", containerJson(*task->container), [this, task, running] {
    // A kill that came before destroyed the container already.
    task->transition(task->killRequested() ? TaskPhase::kTerminating : TaskPhase::kRunning);
    if (running && !task->frameworkGone()) enqueueUpdate(task, v1::TASK_RUNNING, "", std::nullopt);
    if (task->phase() == TaskPhase::kRunning && !task->endedEarly) startHealthCheck(task);
    if (task->endedEarly) {
      auto result = std::move(*task->endedEarly);
      task->endedEarly.reset();
      onTerminated(task, std::move(result));
    }
  });
  watch(task);
  if (!running) destroy(task);
}

void AgentCore::watch(const TaskPtr& task) {
  const std::string id = task->container->containerId;
  using Answer = api::Result<api::ContainerTermination>;
  onContainerizer<Answer>(
      *task->slot,
      [id](api::Containerizer& c, std::function<void(Answer)> done) {
        c.wait(id, std::move(done));
      },
      [task](AgentCore& self, Answer result) { self.onTerminated(task, std::move(result)); });
  refreshGauges();
}

void AgentCore::onTerminated(const TaskPtr& task, api::Result<api::ContainerTermination> result) {
  // A second answer (a recovered termination, then the wait) changes nothing.
  if (task->phase() == TaskPhase::kTerminated || task->phase() == TaskPhase::kForgotten) return;
  if (task->phase() == TaskPhase::kCheckpointing) {
    task->endedEarly = std::move(result);  // after TASK_RUNNING
    return;
  }
  task->transition(TaskPhase::kTerminated);
  collectSandbox(task);
  stopHealthCheck(task);
  refreshGauges();
  if (task->frameworkGone()) {
    forget(task);
    return;
  }
  if (!result) {
    enqueueUpdate(task, v1::TASK_FAILED,
                  fmt::format("the container is gone: {}", result.status().message()),
                  v1::TaskStatus::REASON_EXECUTOR_TERMINATED, v1::TaskStatus::SOURCE_AGENT);
    return;
  }
  const api::ContainerTermination& termination = *result;
  log_->info("task '{}' of framework '{}' ended: {}", task->taskId, task->frameworkId,
             termination.message);
  if (task->healthKill) {
    enqueueUpdate(task, v1::TASK_KILLED, *task->healthKill, std::nullopt,
                  v1::TaskStatus::SOURCE_EXECUTOR, false);
  } else if (termination.killed || task->killRequested()) {
    enqueueUpdate(task, v1::TASK_KILLED,
                  termination.message.empty() ? "the task was killed" : termination.message,
                  std::nullopt);
  } else if (termination.limitation) {
    enqueueUpdate(task, v1::TASK_FAILED, termination.limitation->message,
                  termination.limitation->reason);
  } else if (!termination.waitStatus) {
    enqueueUpdate(
        task, v1::TASK_FAILED,
        termination.message.empty() ? "the task ended with an unknown status" : termination.message,
        v1::TaskStatus::REASON_EXECUTOR_TERMINATED, v1::TaskStatus::SOURCE_AGENT);
  } else if (WIFEXITED(*termination.waitStatus) && WEXITSTATUS(*termination.waitStatus) == 0) {
    enqueueUpdate(
        task, v1::TASK_FINISHED,
        termination.message.empty() ? "Command exited with status 0" : termination.message,
        std::nullopt);
  } else {
    enqueueUpdate(task, v1::TASK_FAILED,
                  termination.message.empty()
                      ? fmt::format("Command ended with wait status {}", *termination.waitStatus)
                      : termination.message,
                  std::nullopt);
  }
}

void AgentCore::killTask(const internal::KillTask& message) {
  const std::string frameworkId = message.framework_id().value();
  const std::string taskId = message.task_id().value();
  auto task = findTask(frameworkId, taskId);
  if (!task || task->frameworkGone()) {
    log_->warn("asked to kill unknown task '{}' of framework '{}'", taskId, frameworkId);
    sendUnreliable(frameworkId, taskId, v1::TASK_LOST, "the task is unknown to the agent",
                   v1::TaskStatus::REASON_TASK_UNKNOWN);
    return;
  }
  if (isTerminal(task->record.state()) || task->phase() == TaskPhase::kTerminated) return;
  task->requestKill(TaskKill::kKill);
  if (message.has_kill_policy() && message.kill_policy().has_grace_period()) {
    task->killGrace = std::chrono::nanoseconds(message.kill_policy().grace_period().nanoseconds());
  } else if (task->record.info().has_kill_policy() &&
             task->record.info().kill_policy().has_grace_period()) {
    task->killGrace =
        std::chrono::nanoseconds(task->record.info().kill_policy().grace_period().nanoseconds());
  }
  log_->info("killing task '{}' of framework '{}'", taskId, frameworkId);
  // Launching: onLaunched() destroys it; choosing: chooseContainerizer() reports it.
  if (task->fetch) task->fetch->cancel();  // the fetcher: onFetched() reports it
  if (task->phase() == TaskPhase::kLaunching) return;
  // Mesos's command executor says TASK_KILLING first to frameworks that understand it.
  auto framework = frameworks_.find(frameworkId);
  if (framework != frameworks_.end() && task->record.state() != v1::TASK_KILLING) {
    for (const auto& capability : framework->second.capabilities()) {
      if (capability.type() == v1::FrameworkInfo::Capability::TASK_KILLING_STATE) {
        enqueueUpdate(task, v1::TASK_KILLING, "", std::nullopt);
        break;
      }
    }
  }
  destroy(task);
}

void AgentCore::destroy(const TaskPtr& task) {
  if (!containerLives(task->phase()) || !task->slot) return;
  stopHealthCheck(task);
  // While kCheckpointing the task stays there: the checkpoint's completion moves it on.
  if (task->phase() != TaskPhase::kCheckpointing) task->transition(TaskPhase::kTerminating);
  const std::string id = task->container->containerId;
  const runtime::Duration grace = task->killGrace.value_or(options_.killGracePeriod);
  onContainerizer<api::Status>(
      *task->slot,
      [id, grace](api::Containerizer& c, std::function<void(api::Status)> done) {
        c.destroy(id, grace, std::move(done));
      },
      [id](AgentCore& self, const api::Status& status) {
        if (!status) self.log_->warn("destroying container '{}': {}", id, status.toString());
      });
}

void AgentCore::shutdownFramework(const std::string& frameworkId) {
  log_->info("shutting down framework '{}'", frameworkId);
  std::vector<TaskPtr> tasks;
  for (const auto& [key, task] : tasks_) {
    if (task->frameworkId == frameworkId) tasks.push_back(task);
  }
  for (const auto& task : tasks) {
    task->requestKill(TaskKill::kFrameworkShutdown);
    if (task->fetch) task->fetch->cancel();  // the fetcher
    dropUpdates(task);
    if (containerLives(task->phase())) {
      destroy(task);
    } else if (task->phase() != TaskPhase::kLaunching) {
      forget(task);  // kTerminated: its container is gone already
    }
  }
  if (tasks.empty()) {
    auto it = frameworks_.find(frameworkId);
    if (it != frameworks_.end()) {
      storeRemove(root_ + "frameworks/" + keySegment(frameworkId));
      frameworks_.erase(it);
    }
  }
}

void AgentCore::reconcile(const internal::ReconcileTasks& message) {
  for (const auto& taskId : message.task_ids()) {
    if (!findTask(message.framework_id().value(), taskId.value())) {
      sendUnreliable(message.framework_id().value(), taskId.value(), v1::TASK_LOST,
                     "the task is unknown to the agent", v1::TaskStatus::REASON_RECONCILIATION);
    }
  }
}

void AgentCore::checkpointTask(const TaskPtr& task) {
  storeSet(task->key + "task", task->record.SerializeAsString());
}

// ==== health checks ============================================================================

void AgentCore::startHealthCheck(const TaskPtr& task) {
  const v1::TaskInfo& info = task->record.info();
  if (!info.has_health_check() || !task->container || !services_.runtime) return;
  if (!healthChecks_) {
    std::weak_ptr<AgentCore> weak = weak_from_this();
    HealthChecker::Callbacks callbacks;
    callbacks.changed = [weak](const TaskKey& key, bool healthy, const std::string& message) {
      if (auto self = weak.lock(); self && !self->stopped_) {
        self->onHealthChanged(key, healthy, message);
      }
    };
    callbacks.failed = [weak](const TaskKey& key, const std::string& message) {
      if (auto self = weak.lock(); self && !self->stopped_) self->onHealthFailed(key, message);
    };
    healthChecks_ =
        std::make_shared<HealthChecker>(*services_.runtime, strand_, std::move(callbacks));
  }
  HealthCheckTarget target;
  target.pid = task->container->pid;
  target.startTime = task->container->startTime;
  target.sandbox = task->sandbox;
  if (info.has_container() && info.container().type() == v1::ContainerInfo::DOCKER) {
    // The Docker containerizer's name for the container (modules/containerizer_docker).
    target.dockerName = "tessera-" + task->container->containerId;
  }
  // After a restart: what the last update said, so an unchanged health is not sent again.
  std::optional<bool> lastHealthy;
  if (task->record.status().has_healthy()) lastHealthy = task->record.status().healthy();
  healthChecks_->start({task->frameworkId, task->taskId}, info.health_check(), std::move(target),
                       lastHealthy);
}

void AgentCore::stopHealthCheck(const TaskPtr& task) {
  if (healthChecks_) healthChecks_->stop({task->frameworkId, task->taskId});
}

void AgentCore::onHealthChanged(const TaskKey& key, bool healthy, const std::string& message) {
  auto task = findTask(key.first, key.second);
  if (!task || task->phase() != TaskPhase::kRunning || task->killRequested()) return;
  log_->info("task '{}' of framework '{}' is {}: {}", key.second, key.first,
             healthy ? "healthy" : "unhealthy", message);
  enqueueUpdate(task, v1::TASK_RUNNING, healthy ? std::string() : message,
                v1::TaskStatus::REASON_TASK_HEALTH_CHECK_STATUS_UPDATED,
                v1::TaskStatus::SOURCE_EXECUTOR, healthy);
}

void AgentCore::onHealthFailed(const TaskKey& key, const std::string& message) {
  auto task = findTask(key.first, key.second);
  if (!task || task->phase() != TaskPhase::kRunning || task->killRequested()) return;
  log_->warn("killing task '{}' of framework '{}': {}", key.second, key.first, message);
  task->healthKill =
      fmt::format("the task was killed because its health check failed: {}", message);
  // As a kill from the framework: its kill policy, TASK_KILLING where the framework knows it.
  internal::KillTask kill;
  kill.mutable_framework_id()->set_value(key.first);
  kill.mutable_task_id()->set_value(key.second);
  killTask(kill);
}

}  // namespace tessera::kernel::agent
