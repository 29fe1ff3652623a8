// Recovery: reading what the previous agent on this work dir checkpointed, and installing
// it once the containerizers have said which containers still run.

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "kernel/agent/agent_core.h"
#include "tessera/api/task_state.h"

namespace tessera::kernel::agent {

using api::isTerminal;
using detail::parseContainerJson;

namespace {

bool isDynamic(const v1::Resource::ReservationInfo& reservation) {
  return reservation.type() == v1::Resource::ReservationInfo::DYNAMIC;
}

/// `resource` as it was before its dynamic reservations (the top of its stack).
v1::Resource withoutDynamicReservations(v1::Resource resource) {
  while (resource.reservations_size() > 0 &&
         isDynamic(resource.reservations(resource.reservations_size() - 1))) {
    resource.mutable_reservations()->RemoveLast();
  }
  return resource;
}

api::Resources single(const v1::Resource& resource) {
  google::protobuf::RepeatedPtrField<v1::Resource> one;
  *one.Add() = resource;
  // Valid resources stay valid with reservations dropped from the top of their stacks.
  return api::Resources::fromProto(one).value();
}

}  // namespace

void AgentCore::applyReservations(const api::Resources& reserved) {
  api::Resources total = api::Resources::fromProto(info_.resources()).value();
  reservations_ = api::Resources();
  for (const v1::Resource& resource : reserved.toProto()) {
    if (!std::any_of(resource.reservations().begin(), resource.reservations().end(), isDynamic)) {
      continue;
    }
    api::Resources reservation = single(resource);
    api::Resources source = single(withoutDynamicReservations(resource));
    if (!total.contains(source)) {
      log_->warn("reservation {} does not fit the agent's resources {}; not applied",
                 reservation.toString(), total.toString());
      continue;
    }
    total -= source;
    total += reservation;
    reservations_ += reservation;
  }
  resources_ = std::move(total);
}

api::Status AgentCore::readCheckpoints(Recovered& recovered) {
  auto info = syncGet(root_ + "info");
  if (!info) return info.status();
  if (info->has_value()) {
    v1::AgentInfo saved;
    if (!saved.ParseFromString((*info)->value)) {
      return api::internalError("checkpoint '{}info' does not parse", root_);
    }
    recovered.infoValue = saved.id().value();
  }
  if (auto read = readFrameworks(recovered); !read) return read;
  if (auto read = readGc(recovered); !read) return read;
  if (auto read = readGroups(recovered); !read) return read;
  auto reservations = syncGet(root_ + "resources");
  if (!reservations) return reservations.status();
  if (reservations->has_value()) {
    internal::CheckpointResources saved;
    auto parsed = saved.ParseFromString((*reservations)->value)
                      ? api::Resources::fromProto(saved.resources())
                      : api::Result<api::Resources>(api::internalError("does not parse"));
    if (!parsed) {
      return parsed.status().withContext("checkpoint '{}resources'", root_);
    }
    recovered.reservations = std::move(parsed).value();
  }
  auto frameworkKeys = syncChildren(root_ + "tasks");
  if (!frameworkKeys) return frameworkKeys.status();
  for (const auto& fw : *frameworkKeys) {
    auto taskKeys = syncChildren(root_ + "tasks/" + fw);
    if (!taskKeys) return taskKeys.status();
    for (const auto& name : *taskKeys) {
      auto task = readTask(fmt::format("{}tasks/{}/{}/", root_, fw, name));
      if (!task) return task.status();
      if (*task) recovered.tasks.push_back(*task);
    }
  }
  return api::Status::ok();
}

api::Status AgentCore::readFrameworks(Recovered& recovered) {
  auto frameworks = syncChildren(root_ + "frameworks");
  if (!frameworks) return frameworks.status();
  for (const auto& name : *frameworks) {
    auto entry = syncGet(root_ + "frameworks/" + name);
    if (!entry) return entry.status();
    if (!entry->has_value()) continue;
    v1::FrameworkInfo framework;
    if (!framework.ParseFromString((*entry)->value)) {
      recoveryErrors_->increment();
      continue;
    }
    recovered.frameworks[framework.id().value()] = framework;
  }
  return api::Status::ok();
}

api::Result<AgentCore::TaskPtr> AgentCore::readTask(const std::string& key) {
  // Every key is read before deciding, so that --recover=cleanup knows them all.
  auto record = syncGet(key + "task");
  if (!record) return record.status();
  auto container = syncGet(key + "container");
  if (!container) return container.status();
  auto updates = syncChildren(key + "updates");
  if (!updates) return updates.status();
  auto task = std::make_shared<Task>(TaskPhase::kRecovering);
  task->key = key;
  if (!record->has_value() || !task->record.ParseFromString((*record)->value)) {
    log_->warn("checkpoint '{}task' is missing or does not parse; dropping the task", key);
    recoveryErrors_->increment();
    return TaskPtr();
  }
  task->frameworkId = task->record.framework_id().value();
  task->taskId = task->record.info().task_id().value();
  if (container->has_value()) {
    auto parsed = parseContainerJson((*container)->value);
    if (parsed) {
      task->container = std::move(parsed).value();
      task->sandbox = task->container->sandboxDirectory;
    } else {
      recoveryErrors_->increment();
    }
  }
  if (auto read = readUpdates(*task, *updates); !read) return read;
  return task;
}

api::Status AgentCore::readUpdates(Task& task, const std::vector<std::string>& sequence) {
  for (const auto& seq : sequence) {
    char* end = nullptr;
    const uint64_t number = std::strtoull(seq.c_str(), &end, 10);
    if (seq.empty() || *end != '\0') {
      log_->warn("ignoring checkpoint '{}updates/{}': not an update", task.key, seq);
      continue;
    }
    Pending pending;
    pending.key = fmt::format("{}updates/{}", task.key, seq);
    pending.durable = true;
    auto entry = syncGet(pending.key);
    if (!entry) return entry.status();
    if (!entry->has_value()) continue;
    if (!pending.update.ParseFromString((*entry)->value)) {
      recoveryErrors_->increment();
      continue;
    }
    task.updates.push_back(std::move(pending));
    task.nextSeq = std::max<uint64_t>(task.nextSeq, number + 1);
  }
  return api::Status::ok();
}

void AgentCore::install(Recovered recovered,
                        const std::map<std::string, api::RecoveredContainer>& containers) {
  if (!recovered.infoValue.empty()) {
    info_.mutable_id()->set_value(recovered.infoValue);
    std::lock_guard lock(idMutex_);
    publicId_ = recovered.infoValue;
  }
  frameworks_ = std::move(recovered.frameworks);
  applyReservations(recovered.reservations);
  for (const auto& entry : recovered.gc) gc_->restore(entry);
  for (const auto& task : recovered.tasks) {
    tasks_[{task->frameworkId, task->taskId}] = task;
  }
  installGroups(recovered, containers);
  for (const auto& task : recovered.tasks) {
    if (task->sandbox.empty() && task->record.has_container_id()) {
      task->sandbox = (sandboxRoot() / info_.id().value() / "frameworks" / task->frameworkId /
                       "executors" / task->taskId / "runs" / task->record.container_id())
                          .string();
    }
    const v1::TaskState state = task->record.state();
    if (isTerminal(state)) {
      task->transition(TaskPhase::kTerminated);
      collectSandbox(task);
      if (task->updates.empty()) forget(task);
      continue;
    }
    if (!task->container) {
      // The agent went down between the launch and its checkpoint: the containerizer's orphan
      // sweep killed whatever was started.
      task->transition(TaskPhase::kTerminated);
      collectSandbox(task);
      enqueueUpdate(task, v1::TASK_FAILED, "the agent restarted while the task was launching",
                    v1::TaskStatus::REASON_CONTAINER_LAUNCH_FAILED, v1::TaskStatus::SOURCE_AGENT);
      continue;
    }
    auto it = containers.find(task->container->containerId);
    if (!task->slot || it == containers.end()) {
      task->transition(TaskPhase::kTerminated);
      collectSandbox(task);
      enqueueUpdate(task, v1::TASK_FAILED,
                    fmt::format("containerizer '{}' does not know the task's container",
                                task->container->containerizer),
                    v1::TaskStatus::REASON_CONTAINER_LAUNCH_FAILED, v1::TaskStatus::SOURCE_AGENT);
      continue;
    }
    task->transition(TaskPhase::kRunning);
    if (it->second.ended) {
      recoveredTermination(task, *it->second.ended);
    } else {
      watch(task);
      // The agent went down after the launch's checkpoint but before TASK_RUNNING's.
      if (state == v1::TASK_STAGING || state == v1::TASK_STARTING) {
        enqueueUpdate(task, v1::TASK_RUNNING, "", std::nullopt);
      }
      // The agent went down while killing it: finish the kill.
      if (state == v1::TASK_KILLING) {
        task->requestKill(TaskKill::kKill);
        destroy(task);
      }
      // Health checks resume where the previous agent left them.
      if (task->phase() == TaskPhase::kRunning) startHealthCheck(task);
    }
  }
  gc_->start();
  refreshGauges();
}

void AgentCore::recoveredTermination(const TaskPtr& task,
                                     const api::ContainerTermination& termination) {
  if (termination.waitStatus || termination.limitation || termination.killed) {
    onTerminated(task, termination);
    return;
  }
  task->transition(TaskPhase::kTerminated);
  collectSandbox(task);
  enqueueUpdate(task, v1::TASK_FAILED, "the task ended while the agent was down",
                v1::TaskStatus::REASON_EXECUTOR_TERMINATED, v1::TaskStatus::SOURCE_AGENT);
}

}  // namespace tessera::kernel::agent
