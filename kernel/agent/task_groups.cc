// Task groups (LAUNCH_GROUP): the agent plays Mesos's DEFAULT executor. The group's executor
// container holds the limits (the executor's resources plus every task's); each task runs as a
// nested container in it, with its own sandbox under the executor's and its own updates. When a
// task fails or is killed, the others are killed; when every task has ended, so does the
// executor container.

#include <fmt/format.h>

#include "kernel/agent/agent_core.h"
#include "tessera/api/task_state.h"

namespace tessera::kernel::agent {

using api::isTerminal;
using detail::containerJson;
using detail::keySegment;
using detail::parseContainerJson;
using detail::randomBytes;
using detail::safePathComponent;
using detail::uuidText;

namespace {

// What the executor container runs: nothing of its own, it only holds the group's isolation
// (the agent itself does the default executor's work).
constexpr const char* kExecutorCommand = "exec sleep infinity";

}  // namespace

AgentCore::GroupPtr AgentCore::findGroup(const std::string& frameworkId,
                                         const std::string& executorId) const {
  auto it = groups_.find({frameworkId, executorId});
  return it == groups_.end() ? nullptr : it->second;
}

void AgentCore::runTaskGroup(const internal::RunTaskGroup& message) {
  const std::string frameworkId = message.framework().id().value();
  const std::string executorId = message.executor().executor_id().value();
  auto refuse = [&](const std::string& why) {
    log_->warn("refusing a task group of framework '{}': {}", frameworkId, why);
    for (const auto& task : message.tasks()) {
      sendUnreliable(frameworkId, task.task_id().value(), v1::TASK_ERROR, why,
                     v1::TaskStatus::REASON_TASK_GROUP_INVALID);
    }
  };
  if (!safePathComponent(frameworkId) || !safePathComponent(executorId)) {
    return refuse("executor and framework ids must be non-empty and contain no '/'");
  }
  for (const auto& task : message.tasks()) {
    if (!safePathComponent(task.task_id().value())) {
      return refuse("task ids must be non-empty and contain no '/'");
    }
    if (findTask(frameworkId, task.task_id().value())) {
      return refuse(fmt::format("task '{}' is already known", task.task_id().value()));
    }
    if (task.has_container() && task.container().type() == v1::ContainerInfo::DOCKER) {
      return refuse(fmt::format(
          "task '{}': the Docker containerizer does not support task groups (nested containers); "
          "use the native containerizer (ContainerInfo type MESOS)",
          task.task_id().value()));
    }
  }
  if (message.tasks_size() == 0) return refuse("the task group is empty");
  if (findGroup(frameworkId, executorId)) {
    return refuse(fmt::format("executor '{}' already runs a task group", executorId));
  }
  frameworks_[frameworkId] = message.framework();
  completedFrameworks_.erase(frameworkId);
  storeSet(root_ + "frameworks/" + detail::keySegment(frameworkId),
           message.framework().SerializeAsString());

  auto group = std::make_shared<Group>();
  group->frameworkId = frameworkId;
  group->executorId = executorId;
  group->executor = message.executor();
  group->executor.mutable_framework_id()->set_value(frameworkId);
  group->containerId = uuidText(randomBytes(16));
  group->sandbox = (sandboxRoot() / info_.id().value() / "frameworks" / frameworkId / "executors" /
                    executorId / "runs" / group->containerId)
                       .string();
  group->key =
      fmt::format("{}groups/{}/{}/", root_, keySegment(frameworkId), keySegment(executorId));
  groups_[{frameworkId, executorId}] = group;
  storeSet(group->key + "executor", group->executor.SerializeAsString());

  auto resources = api::Resources::fromProto(message.executor().resources());
  api::Resources total = resources ? *resources : api::Resources();
  std::vector<std::pair<TaskPtr, std::shared_ptr<api::ContainerConfig>>> staged;
  for (const auto& info : message.tasks()) {
    internal::RunTask run;
    *run.mutable_framework() = message.framework();
    *run.mutable_task() = info;
    run.set_role(message.role());
    TaskPtr task = stageTask(run);
    task->group = executorId;
    task->sandbox = (fs::path(group->sandbox) / "tasks" / task->taskId).string();
    *task->record.mutable_executor_id() = message.executor().executor_id();
    checkpointTask(task);
    group->taskIds.push_back(task->taskId);
    if (auto taskResources = api::Resources::fromProto(info.resources())) total += *taskResources;
    log_->info("launching task '{}' of framework '{}' in container '{}' nested in executor '{}'",
               task->taskId, frameworkId, task->record.container_id(), executorId);
    if (!makeSandbox(task)) continue;  // failed: groupTaskEnded() kills the others
    auto config = containerConfig(*task, run);
    config->parentContainerId = group->containerId;
    config->executorId = executorId;
    config->environment["MESOS_EXECUTOR_ID"] = executorId;
    task->transition(TaskPhase::kLaunching);
    staged.emplace_back(task, config);
  }

  // The executor container: the group's isolation, with the sum of the resources as its limits.
  auto config = std::make_shared<api::ContainerConfig>();
  config->containerId = group->containerId;
  config->agentId = info_.id().value();
  config->frameworkId = frameworkId;
  config->executorId = executorId;
  config->sandboxDirectory = group->sandbox;
  config->command.set_shell(true);
  config->command.set_value(kExecutorCommand);
  if (message.executor().has_container()) config->container = message.executor().container();
  config->resources = total;
  if (!message.framework().user().empty()) config->user = message.framework().user();
  config->environment = {
      {"MESOS_SANDBOX", group->sandbox},          {"MESOS_DIRECTORY", group->sandbox},
      {"MESOS_FRAMEWORK_ID", frameworkId},        {"MESOS_EXECUTOR_ID", executorId},
      {"MESOS_AGENT_ID", info_.id().value()},     {"MESOS_SLAVE_ID", info_.id().value()},
      {"MESOS_CONTAINER_ID", group->containerId},
  };
  group->config = config;
  std::error_code error;
  fs::create_directories(group->sandbox, error);
  if (!error) fs::permissions(group->sandbox, fs::perms(0755), error);
  // Each staged task goes on once the executor runs; keep their configs with the group.
  pendingGroupLaunches_[{frameworkId, executorId}] = std::move(staged);
  if (error) {
    return onExecutorLaunched(
        group, api::internalError("cannot create the executor's sandbox '{}': {}", group->sandbox,
                                  error.message()));
  }
  launchExecutor(group, 0);
}

void AgentCore::launchExecutor(const GroupPtr& group, size_t index) {
  if (index >= services_.containerizers.size()) {
    return onExecutorLaunched(
        group, api::invalidArgument(
                   "no containerizer supports the task group's executor: task groups run in nested "
                   "containers, which only the native containerizer has ('mesos' in "
                   "--containerizers); the Docker containerizer does not support task groups"));
  }
  auto config = group->config;
  onContainerizer<bool>(
      index,
      [config](api::Containerizer& c, std::function<void(bool)> done) {
        c.supports(*config, std::move(done));
      },
      [group, config, index](AgentCore& self, bool supported) {
        if (!supported) return self.launchExecutor(group, index + 1);
        group->slot = index;
        using Answer = api::Result<api::ContainerCheckpoint>;
        self.onContainerizer<Answer>(
            index,
            [config](api::Containerizer& c, std::function<void(Answer)> done) {
              c.launch(*config, std::move(done));
            },
            [group](AgentCore& self, Answer result) {
              self.onExecutorLaunched(group, std::move(result));
            });
      });
}

void AgentCore::onExecutorLaunched(const GroupPtr& group,
                                   api::Result<api::ContainerCheckpoint> result) {
  const TaskKey key{group->frameworkId, group->executorId};
  if (pendingGroupLaunches_.count(key) == 0) return;
  if (result) {
    // The tasks' nested containers start only once the executor's checkpoint is durable: an
    // agent killed in between would otherwise recover tasks whose parent it cannot find.
    group->container = std::move(result).value();
    if (group->container->containerizer.empty()) {
      group->container->containerizer = services_.containerizers[*group->slot].name;
    }
    if (group->container->sandboxDirectory.empty()) {
      group->container->sandboxDirectory = group->sandbox;
    }
    storeSet(group->key + "container", containerJson(*group->container),
             [this, group] { onExecutorCheckpointed(group); });
    return;
  }
  auto pending = pendingGroupLaunches_.extract(key);
  {
    log_->warn("the executor '{}' of framework '{}' failed to launch: {}", group->executorId,
               group->frameworkId, result.status().toString());
    for (auto& [task, config] : pending.mapped()) {
      task->transition(TaskPhase::kTerminated);
      collectSandbox(task);
      if (task->frameworkGone()) {
        forget(task);
        continue;
      }
      enqueueUpdate(
          task, v1::TASK_FAILED,
          fmt::format("the task group's executor failed to launch: {}", result.status().message()),
          v1::TaskStatus::REASON_CONTAINER_LAUNCH_FAILED, v1::TaskStatus::SOURCE_AGENT);
    }
  }
}

void AgentCore::onExecutorCheckpointed(const GroupPtr& group) {
  auto pending = pendingGroupLaunches_.extract({group->frameworkId, group->executorId});
  if (pending.empty()) return;
  group->launched = true;
  log_->info("executor '{}' of framework '{}' runs in container '{}'", group->executorId,
             group->frameworkId, group->containerId);
  // The tasks go on as lone tasks do: their URIs, TASK_STARTING, their (nested) containers.
  for (auto& [task, config] : pending.mapped()) {
    if (task->killRequested()) {
      chooseContainerizer(task, config, *group->slot);  // reports the kill
      continue;
    }
    if (fetchUris(task, config)) continue;  // onFetched() goes on
    enqueueUpdate(task, v1::TASK_STARTING, "", std::nullopt);
    chooseContainerizer(task, config, *group->slot);
  }
  // Every task may have ended meanwhile (failed sandboxes).
  groupTaskEnded(group->frameworkId, group->executorId, v1::TASK_STAGING);
}

void AgentCore::groupTaskEnded(const std::string& frameworkId, const std::string& executorId,
                               v1::TaskState state) {
  GroupPtr group = findGroup(frameworkId, executorId);
  if (!group) return;
  // Mesos's default executor: a task that failed (or was killed, lost, in error) takes the rest
  // of its group with it; one that finished does not.
  const bool fatal = isTerminal(state) && state != v1::TASK_FINISHED;
  if (fatal && !group->killing) {
    group->killing = true;
    log_->info("a task of executor '{}' of framework '{}' ended {}: killing the others", executorId,
               frameworkId, v1::TaskState_Name(state));
    for (const auto& taskId : group->taskIds) {
      auto task = findTask(frameworkId, taskId);
      if (!task || isTerminal(task->record.state()) || task->killRequested()) continue;
      if (task->phase() == TaskPhase::kTerminated) continue;
      internal::KillTask kill;
      kill.mutable_framework_id()->set_value(frameworkId);
      kill.mutable_task_id()->set_value(taskId);
      killTask(kill);
    }
  }
  if (!group->launched || group->destroyed) {
    if (!group->launched && pendingGroupLaunches_.count({frameworkId, executorId}) == 0) {
      eraseGroup(group);  // never launched: nothing to destroy
    }
    return;
  }
  for (const auto& taskId : group->taskIds) {
    auto task = findTask(frameworkId, taskId);
    if (task && task->phase() != TaskPhase::kTerminated && task->phase() != TaskPhase::kForgotten) {
      return;  // a task's container still lives
    }
  }
  // Every task has ended: so does the executor container.
  group->destroyed = true;
  log_->info("every task of executor '{}' of framework '{}' has ended: destroying container '{}'",
             executorId, frameworkId, group->containerId);
  const std::string id = group->containerId;
  onContainerizer<api::Status>(
      *group->slot,
      [id](api::Containerizer& c, std::function<void(api::Status)> done) {
        c.destroy(id, std::chrono::nanoseconds::zero(), std::move(done));
      },
      [id, group](AgentCore& self, const api::Status& status) {
        if (!status) self.log_->warn("destroying container '{}': {}", id, status.toString());
        self.eraseGroup(group);
      });
}

void AgentCore::eraseGroup(const GroupPtr& group) {
  auto it = groups_.find({group->frameworkId, group->executorId});
  if (it != groups_.end() && it->second == group) groups_.erase(it);
  storeRemove(group->key + "executor");
  storeRemove(group->key + "container");
}

// ==== recovery ================================================================================

api::Status AgentCore::readGroups(Recovered& recovered) {
  auto frameworks = syncChildren(root_ + "groups");
  if (!frameworks) return frameworks.status();
  for (const auto& fw : *frameworks) {
    auto executors = syncChildren(fmt::format("{}groups/{}", root_, fw));
    if (!executors) return executors.status();
    for (const auto& name : *executors) {
      auto group = std::make_shared<Group>();
      group->key = fmt::format("{}groups/{}/{}/", root_, fw, name);
      auto executor = syncGet(group->key + "executor");
      if (!executor) return executor.status();
      auto container = syncGet(group->key + "container");
      if (!container) return container.status();
      if (!executor->has_value() || !group->executor.ParseFromString((*executor)->value)) {
        log_->warn("checkpoint '{}executor' is missing or does not parse", group->key);
        recoveryErrors_->increment();
        continue;  // its tasks are recovered as orphans of a gone executor
      }
      group->frameworkId = group->executor.framework_id().value();
      group->executorId = group->executor.executor_id().value();
      if (container->has_value()) {
        auto parsed = parseContainerJson((*container)->value);
        if (parsed) {
          group->container = std::move(parsed).value();
          group->containerId = group->container->containerId;
          group->sandbox = group->container->sandboxDirectory;
        } else {
          recoveryErrors_->increment();
        }
      }
      recovered.groups.push_back(std::move(group));
    }
  }
  return api::Status::ok();
}

void AgentCore::installGroups(Recovered& recovered,
                              const std::map<std::string, api::RecoveredContainer>& containers) {
  for (const auto& group : recovered.groups) {
    auto it = group->container ? containers.find(group->containerId) : containers.end();
    const bool alive = group->slot && it != containers.end() && !it->second.ended;
    if (alive) {
      group->launched = true;
      groups_[{group->frameworkId, group->executorId}] = group;
      log_->info("recovered executor '{}' of framework '{}' in container '{}'", group->executorId,
                 group->frameworkId, group->containerId);
    } else {
      // Never launched, or its container ended or is unknown: nothing is left to destroy (the
      // containerizer kills nested containers whose parent is gone).
      eraseGroup(group);
    }
  }
  // A task with an executor id is a group's; one whose executor is gone ends as Mesos ends the
  // tasks of a terminated executor. The others are installed as lone tasks are, with their group.
  std::vector<TaskPtr> rest;
  for (const auto& task : recovered.tasks) {
    if (!task->record.has_executor_id()) {
      rest.push_back(task);
      continue;
    }
    task->group = task->record.executor_id().value();
    if (GroupPtr group = findGroup(task->frameworkId, task->group)) {
      group->taskIds.push_back(task->taskId);
      rest.push_back(task);
      continue;
    }
    if (isTerminal(task->record.state())) {
      rest.push_back(task);  // ended before: only its updates are left to send
      continue;
    }
    task->transition(TaskPhase::kTerminated);
    collectSandbox(task);
    enqueueUpdate(task, v1::TASK_FAILED,
                  fmt::format("the executor '{}' of the task group ended while the agent was down",
                              task->group),
                  v1::TaskStatus::REASON_EXECUTOR_TERMINATED, v1::TaskStatus::SOURCE_AGENT);
  }
  recovered.tasks = std::move(rest);
  // The default executor's policy, for what happened while the agent was down (a task failed,
  // or every task ended), once the tasks are installed.
  for (const auto& [key, group] : groups_) {
    v1::TaskState worst = v1::TASK_RUNNING;
    for (const auto& taskId : group->taskIds) {
      auto task = findTask(group->frameworkId, taskId);
      const v1::TaskState state = task ? task->record.state() : v1::TASK_FINISHED;
      if (isTerminal(state) && state != v1::TASK_FINISHED) worst = state;
    }
    strand_->post(
        [weak = weak_from_this(), fw = group->frameworkId, exec = group->executorId, worst] {
          if (auto self = weak.lock(); self && !self->stopped_)
            self->groupTaskEnded(fw, exec, worst);
        });
  }
}

}  // namespace tessera::kernel::agent
