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
  group->containerId = uuidText(randomBytes(16));
  group->sandbox = (sandboxRoot() / info_.id().value() / "frameworks" / frameworkId / "executors" /
                    executorId / "runs" / group->containerId)
                       .string();
  groups_[{frameworkId, executorId}] = group;

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
        group, api::invalidArgument("no containerizer supports the task group's executor"));
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
  auto pending = pendingGroupLaunches_.extract({group->frameworkId, group->executorId});
  if (pending.empty()) return;
  if (!result) {
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
    return;
  }
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
      groups_.erase({frameworkId, executorId});  // never launched: nothing to destroy
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
      [id, key = TaskKey{frameworkId, executorId}](AgentCore& self, const api::Status& status) {
        if (!status) self.log_->warn("destroying container '{}': {}", id, status.toString());
        self.groups_.erase(key);
      });
}

}  // namespace tessera::kernel::agent
