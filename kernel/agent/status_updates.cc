// The status-update manager: each task's updates are checkpointed, sent in order, retried
// with backoff until the master acknowledges them, and dropped with the task when it is
// forgotten.

#include <fmt/format.h>

#include <algorithm>

#include "kernel/agent/agent_core.h"
#include "tessera/api/json.h"
#include "tessera/api/task_state.h"

namespace tessera::kernel::agent {

using api::isTerminal;
using api::nowSeconds;
using detail::keySegment;
using detail::kMaxCompletedExecutors;
using detail::kMaxRetryInterval;
using detail::randomBytes;

void AgentCore::enqueueUpdate(const TaskPtr& task, v1::TaskState state, std::string message,
                              std::optional<v1::TaskStatus::Reason> reason,
                              v1::TaskStatus::Source source, std::optional<bool> healthy) {
  if (isTerminal(task->record.state())) return;  // nothing follows a terminal update
  v1::TaskStatus status;
  status.mutable_task_id()->set_value(task->taskId);
  status.set_state(state);
  // Messages quote what containers and the filesystem said; the master refuses an update whose
  // strings are not UTF-8 (#20), and the agent would retry it for ever.
  if (!message.empty()) status.set_message(api::toValidUtf8(message));
  status.set_source(source);
  if (reason) status.set_reason(*reason);
  if (healthy) status.set_healthy(*healthy);
  *status.mutable_agent_id() = info_.id();
  status.mutable_executor_id()->set_value(task->group.empty() ? task->taskId : task->group);
  status.set_timestamp(nowSeconds());
  status.set_uuid(randomBytes(16));

  task->record.set_state(state);
  *task->record.mutable_status() = status;
  task->statuses.emplace_back(state, status.timestamp());
  checkpointTask(task);
  if (isTerminal(state) && !task->group.empty()) {
    // The default executor's policy, once this update is queued (task_groups.cc).
    strand_->post([weak = weak_from_this(), fw = task->frameworkId, group = task->group, state] {
      if (auto self = weak.lock(); self && !self->stopped_) self->groupTaskEnded(fw, group, state);
    });
  }
  validUpdates_->increment();
  switch (state) {
    case v1::TASK_FINISHED:
      finished_->increment();
      break;
    case v1::TASK_FAILED:
      failed_->increment();
      break;
    case v1::TASK_KILLED:
      killed_->increment();
      break;
    case v1::TASK_LOST:
      lost_->increment();
      break;
    default:
      break;
  }
  refreshGauges();

  Pending pending;
  pending.key = fmt::format("{}updates/{:020}", task->key, task->nextSeq++);
  *pending.update.mutable_framework_id() = task->record.framework_id();
  *pending.update.mutable_status() = status;
  pending.update.set_latest_state(state);
  std::string value = pending.update.SerializeAsString();
  const std::string key = pending.key;
  task->updates.push_back(std::move(pending));
  storeSet(key, std::move(value), [this, task, key] {
    for (auto& queued : task->updates) {
      if (queued.key == key) queued.durable = true;
    }
    if (!task->updates.empty() && task->updates.front().key == key) {
      task->backoff = options_.statusUpdateRetryInterval;
      sendHead(task);
    }
  });
}

void AgentCore::sendUnreliable(const std::string& frameworkId, const std::string& taskId,
                               v1::TaskState state, std::string message,
                               v1::TaskStatus::Reason reason) {
  if (link_ != LinkState::kRegistered) return;
  internal::Envelope envelope;
  auto* update = envelope.mutable_status_update();
  update->mutable_framework_id()->set_value(frameworkId);
  auto* status = update->mutable_status();
  status->mutable_task_id()->set_value(taskId);
  status->set_state(state);
  status->set_message(api::toValidUtf8(message));
  status->set_reason(reason);
  status->set_source(v1::TaskStatus::SOURCE_AGENT);
  *status->mutable_agent_id() = info_.id();
  status->set_timestamp(nowSeconds());
  update->set_latest_state(state);
  send(envelope);
}

void AgentCore::sendHead(const TaskPtr& task) {
  if (task->retry) task->retry->cancel();
  task->retry.reset();
  if (task->updates.empty() || !task->updates.front().durable) return;
  if (link_ == LinkState::kRegistered) {
    internal::Envelope envelope;
    *envelope.mutable_status_update() = task->updates.front().update;
    envelope.mutable_status_update()->set_latest_state(task->record.state());
    send(envelope);
  }
  armRetry(task);
}

void AgentCore::armRetry(const TaskPtr& task) {
  if (task->backoff <= runtime::Duration::zero()) {
    task->backoff = options_.statusUpdateRetryInterval;
  }
  std::weak_ptr<AgentCore> weak = weak_from_this();
  std::weak_ptr<Task> weakTask = task;
  const std::string key = task->updates.front().key;
  task->retry = strand_->schedule(task->backoff, [weak, weakTask, key] {
    auto self = weak.lock();
    auto task = weakTask.lock();
    if (!self || !task || self->stopped_) return;
    if (task->updates.empty() || task->updates.front().key != key) return;
    task->backoff = std::min<runtime::Duration>(task->backoff * 2, kMaxRetryInterval);
    self->sendHead(task);
  });
}

void AgentCore::onAcknowledgement(const internal::StatusUpdateAcknowledgement& ack) {
  auto task = findTask(ack.framework_id().value(), ack.task_id().value());
  if (!task || task->updates.empty() ||
      task->updates.front().update.status().uuid() != ack.uuid()) {
    log_->warn(
        "ignoring an acknowledgement for task '{}' of framework '{}' that matches no "
        "pending update",
        ack.task_id().value(), ack.framework_id().value());
    invalidUpdates_->increment();
    return;
  }
  if (task->retry) task->retry->cancel();
  task->retry.reset();
  storeRemove(task->updates.front().key);
  task->updates.pop_front();
  if (!task->updates.empty()) {
    task->backoff = options_.statusUpdateRetryInterval;
    sendHead(task);
    return;
  }
  if (isTerminal(task->record.state())) forget(task);
}

void AgentCore::dropUpdates(const TaskPtr& task) {
  if (task->retry) task->retry->cancel();
  task->retry.reset();
  for (const auto& pending : task->updates) storeRemove(pending.key);
  task->updates.clear();
}

void AgentCore::forget(const TaskPtr& task) {
  task->transition(TaskPhase::kForgotten);
  dropUpdates(task);
  storeRemove(task->key + "task");
  storeRemove(task->key + "container");
  tasks_.erase({task->frameworkId, task->taskId});
  if (!task->group.empty()) {
    strand_->post([weak = weak_from_this(), fw = task->frameworkId, group = task->group,
                   state = task->record.state()] {
      if (auto self = weak.lock(); self && !self->stopped_) self->groupTaskEnded(fw, group, state);
    });
  }
  completed_.push_back({task->frameworkId, task});
  while (completed_.size() > kMaxCompletedExecutors) completed_.pop_front();
  const bool more = std::any_of(tasks_.begin(), tasks_.end(), [&](const auto& entry) {
    return entry.second->frameworkId == task->frameworkId;
  });
  if (!more) {
    auto it = frameworks_.find(task->frameworkId);
    if (it != frameworks_.end()) {
      completedFrameworks_[it->first] = it->second;
      frameworks_.erase(it);
    }
    storeRemove(root_ + "frameworks/" + keySegment(task->frameworkId));
  }
  refreshGauges();
}

}  // namespace tessera::kernel::agent
