// The v1 scheduler API's calls about tasks: KILL, ACKNOWLEDGE, RECONCILE (in batches), and
// MESSAGE to an executor.

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

#include "kernel/master/master_core.h"
#include "kernel/master/master_util.h"

namespace tessera::kernel::master {

using detail::guarded;

void Core::kill(FrameworkEntry& framework, const v1::scheduler::Call::Kill& call) {
  counter("messages_kill_task").increment();
  const std::string& taskId = call.task_id().value();
  auto task = tasks.find({framework.id, taskId});
  std::string agentId = task != tasks.end() ? task->second.agentId : call.agent_id().value();
  auto agent = agents.find(agentId);
  bool reachable = agent != agents.end() && agent->second.connection;
  if (reachable && (task == tasks.end() || !isTerminal(task->second.state))) {
    // An unknown task on a known agent: the agent answers with TASK_LOST.
    internal::Envelope envelope;
    envelope.mutable_kill_task()->mutable_framework_id()->set_value(framework.id);
    envelope.mutable_kill_task()->mutable_task_id()->set_value(taskId);
    if (call.has_kill_policy())
      *envelope.mutable_kill_task()->mutable_kill_policy() = call.kill_policy();
    sendToAgent(agentId, envelope);
    return;
  }
  if (task != tasks.end()) return;  // terminal already, or its agent is away
  v1::TaskState state = framework.partitionAware() ? v1::TASK_UNKNOWN : v1::TASK_LOST;
  sendUpdate(framework.id,
             masterStatus(taskId, agentId, state, v1::TaskStatus::REASON_RECONCILIATION,
                          fmt::format("cannot kill task '{}': it is unknown", taskId)));
}

void Core::acknowledge(FrameworkEntry& framework, const v1::scheduler::Call::Acknowledge& call) {
  counter("messages_status_update_acknowledgement").increment();
  const std::string& taskId = call.task_id().value();
  auto task = tasks.find({framework.id, taskId});
  std::string agentId = call.agent_id().value();
  internal::Envelope envelope;
  auto& ack = *envelope.mutable_status_update_acknowledgement();
  ack.mutable_agent_id()->set_value(agentId);
  ack.mutable_framework_id()->set_value(framework.id);
  ack.mutable_task_id()->set_value(taskId);
  ack.set_uuid(call.uuid());
  sendToAgent(agentId, envelope);
  if (task != tasks.end() && !task->second.terminalUuid.empty() &&
      task->second.terminalUuid == call.uuid()) {
    completeTask(task->first);
  }
}

namespace {
// Updates per RECONCILE batch: ~300 bytes each, so a batch is well under a stream's queue limit.
constexpr int kReconcileBatch = 256;
}  // namespace

v1::TaskStatus Core::reconciledStatus(const TaskEntry& task) const {
  v1::TaskStatus status = task.latestStatus
                              ? *task.latestStatus
                              : masterStatus(task.info.task_id().value(), task.agentId, task.state,
                                             v1::TaskStatus::REASON_RECONCILIATION, "");
  status.set_state(task.state);
  status.clear_uuid();
  status.set_reason(v1::TaskStatus::REASON_RECONCILIATION);
  status.set_source(v1::TaskStatus::SOURCE_MASTER);
  status.mutable_agent_id()->set_value(task.agentId);
  return status;
}

FrameworkEntry* Core::connectedOn(const std::string& frameworkId, const std::string& streamId) {
  auto framework = frameworks.find(frameworkId);
  if (framework == frameworks.end() || !framework->second.connected || !framework->second.stream ||
      framework->second.streamId != streamId) {
    return nullptr;
  }
  return &framework->second;
}

void Core::whenStreamSent(FrameworkEntry& framework, std::function<void(Core&)> next) {
  std::weak_ptr<Core> weak = weak_from_this();
  runtime::StrandExecutor* onStrand = strand.get();
  framework.stream->whenWritten([weak, onStrand, next = std::move(next)]() mutable {
    // The strand lives as long as the Core: holding the Core keeps it for the post.
    if (auto alive = weak.lock()) onStrand->post(guarded(weak, std::move(next)));
  });
}

void Core::reconcile(FrameworkEntry& framework, const v1::scheduler::Call::Reconcile& call) {
  counter("messages_reconcile_tasks").increment();
  if (call.tasks_size() == 0) return reconcileAll(framework.id, framework.streamId, std::nullopt);
  reconcileListed(framework.id, framework.streamId,
                  std::make_shared<const v1::scheduler::Call::Reconcile>(call), 0);
}

void Core::reconcileAll(const std::string& frameworkId, const std::string& streamId,
                        std::optional<TaskKey> after) {
  FrameworkEntry* framework = connectedOn(frameworkId, streamId);
  if (framework == nullptr) return;
  // Tasks are keyed (framework, task): a framework's are together, in order, so `after` is a
  // cursor that tasks added or removed between batches do not disturb.
  auto task = after ? tasks.upper_bound(*after) : tasks.lower_bound({frameworkId, ""});
  for (int sent = 0; sent < kReconcileBatch; ++sent, ++task) {
    if (task == tasks.end() || task->first.first != frameworkId) return;
    sendUpdate(frameworkId, reconciledStatus(task->second));
  }
  if (task == tasks.end() || task->first.first != frameworkId) return;
  whenStreamSent(*framework, [frameworkId, streamId, last = std::prev(task)->first](Core& core) {
    core.reconcileAll(frameworkId, streamId, last);
  });
}

void Core::reconcileListed(const std::string& frameworkId, const std::string& streamId,
                           std::shared_ptr<const v1::scheduler::Call::Reconcile> call, int from) {
  FrameworkEntry* framework = connectedOn(frameworkId, streamId);
  if (framework == nullptr) return;
  const int end = std::min(call->tasks_size(), from + kReconcileBatch);
  for (int i = from; i < end; ++i) {
    const auto& wanted = call->tasks(i);
    const std::string& taskId = wanted.task_id().value();
    auto task = tasks.find({frameworkId, taskId});
    if (task != tasks.end()) {
      sendUpdate(frameworkId, reconciledStatus(task->second));
      continue;
    }
    const std::string& agentId = wanted.agent_id().value();
    auto agent = agents.find(agentId);
    v1::TaskState state;
    if (agent != agents.end() && agent->second.status == AgentStatus::kUnreachable) {
      state = framework->partitionAware() ? v1::TASK_UNREACHABLE : v1::TASK_LOST;
    } else if (agent != agents.end()) {
      state = framework->partitionAware() ? v1::TASK_GONE : v1::TASK_LOST;
    } else {
      state = framework->partitionAware() ? v1::TASK_UNKNOWN : v1::TASK_LOST;
    }
    sendUpdate(frameworkId,
               masterStatus(taskId, agentId, state, v1::TaskStatus::REASON_RECONCILIATION,
                            fmt::format("reconciliation: task '{}' is unknown", taskId)));
  }
  if (end == call->tasks_size()) return;
  whenStreamSent(*framework, [frameworkId, streamId, call, end](Core& core) {
    core.reconcileListed(frameworkId, streamId, call, end);
  });
}

void Core::message(FrameworkEntry& framework, const v1::scheduler::Call::Message& call) {
  counter("messages_framework_to_executor").increment();
  internal::Envelope envelope;
  auto& out = *envelope.mutable_framework_to_executor();
  *out.mutable_agent_id() = call.agent_id();
  out.mutable_framework_id()->set_value(framework.id);
  *out.mutable_executor_id() = call.executor_id();
  out.set_data(call.data());
  sendToAgent(call.agent_id().value(), envelope);
}

}  // namespace tessera::kernel::master
