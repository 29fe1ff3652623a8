// LAUNCH_GROUP validation, as Mesos's master does it (master/validation.cpp): the executor, the
// group's own rules, each task as a single launch, and the whole within the offers.

#include "kernel/master/task_group_validation.h"

#include <fmt/format.h>

#include <set>

#include "kernel/master/master_core.h"

namespace tessera::kernel::master {

std::string validateGroupExecutor(const v1::Offer::Operation::LaunchGroup& launchGroup) {
  const v1::ExecutorInfo& executor = launchGroup.executor();
  if (!launchGroup.has_executor()) return "the task group has no executor";
  if (executor.executor_id().value().empty()) return "the executor has no id";
  if (executor.type() != v1::ExecutorInfo::DEFAULT) {
    return fmt::format(
        "executor '{}' is not of type DEFAULT (only the default executor runs "
        "task groups)",
        executor.executor_id().value());
  }
  if (executor.has_command()) {
    return fmt::format("executor '{}' of type DEFAULT must not have a command",
                       executor.executor_id().value());
  }
  if (executor.has_container() && executor.container().type() != v1::ContainerInfo::MESOS) {
    return fmt::format("executor '{}' of a task group must have a MESOS container",
                       executor.executor_id().value());
  }
  return "";
}

std::string validateGroupMember(const v1::TaskInfo& task) {
  const std::string& taskId = task.task_id().value();
  if (task.has_executor()) {
    return fmt::format("task '{}' of a task group must not have an executor", taskId);
  }
  if (!task.has_command()) return fmt::format("task '{}' has no command", taskId);
  if (task.has_container() && task.container().type() == v1::ContainerInfo::DOCKER) {
    return fmt::format(
        "task '{}': a DOCKER container is not supported in a task group (task groups run in "
        "nested containers of the native containerizer)",
        taskId);
  }
  return "";
}

std::string Core::validateTaskGroup(const Acceptance& acceptance,
                                    const v1::Offer::Operation::LaunchGroup& launchGroup) const {
  // A DEFAULT executor without a command of its own, a non-empty group of unique tasks that
  // name no executor, no Docker container, and every task valid as a single launch; executor
  // plus tasks must fit the offers.
  if (std::string error = validateGroupExecutor(launchGroup); !error.empty()) return error;
  const v1::TaskGroupInfo& group = launchGroup.task_group();
  if (group.tasks_size() == 0) return "the task group is empty";
  auto executorResources = api::Resources::fromProto(launchGroup.executor().resources());
  if (!executorResources) return executorResources.status().message();
  api::Resources total = *executorResources;
  std::set<std::string> ids;
  Acceptance trial = acceptance;
  for (const auto& task : group.tasks()) {
    const std::string& taskId = task.task_id().value();
    if (!ids.insert(taskId).second) return fmt::format("duplicate task id '{}'", taskId);
    if (std::string error = validateGroupMember(task); !error.empty()) return error;
    auto resources = api::Resources::fromProto(task.resources());
    if (std::string error = validateTask(trial, task, resources); !error.empty()) return error;
    trial.remaining -= *resources;
    trial.seen.insert(taskId);
    total += *resources;
  }
  if (!acceptance.remaining.contains(total)) {
    return fmt::format(
        "the task group and its executor use resources {} that are not in the "
        "offers ({})",
        total.toString(), acceptance.remaining.toString());
  }
  return "";
}

}  // namespace tessera::kernel::master
