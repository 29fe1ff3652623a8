// The v1 scheduler API's frameworks: SUBSCRIBE, the event stream and its heartbeats, a
// disconnection and its failover timeout, and removal (TEARDOWN or the timeout).

#include <fmt/format.h>

#include <algorithm>
#include <boost/uuid/uuid.hpp>
#include <boost/uuid/uuid_generators.hpp>
#include <boost/uuid/uuid_io.hpp>

#include "kernel/master/master_core.h"
#include "kernel/master/master_util.h"
#include "kernel/net/recordio.h"
#include "kernel/net/v1_json.h"

namespace tessera::kernel::master {

using detail::answer;
using detail::guarded;
using detail::log;
using detail::rolesOf;

// --- frameworks -----------------------------------------------------------------------------

void Core::sendEvent(FrameworkEntry& framework, const v1::scheduler::Event& event) {
  if (!framework.connected || !framework.stream) return;
  framework.stream->write(net::encodeRecordIo(net::messageToV1Json(event)));
}

void Core::sendUpdate(const std::string& frameworkId, const v1::TaskStatus& status) {
  auto framework = frameworks.find(frameworkId);
  if (framework == frameworks.end()) return;
  v1::scheduler::Event event;
  event.set_type(v1::scheduler::Event::UPDATE);
  *event.mutable_update()->mutable_status() = status;
  sendEvent(framework->second, event);
}

v1::TaskStatus Core::masterStatus(const std::string& taskId, const std::string& agentId,
                                  v1::TaskState state, v1::TaskStatus::Reason reason,
                                  const std::string& text) const {
  v1::TaskStatus status;
  status.mutable_task_id()->set_value(taskId);
  if (!agentId.empty()) status.mutable_agent_id()->set_value(agentId);
  status.set_state(state);
  status.set_source(v1::TaskStatus::SOURCE_MASTER);
  status.set_reason(reason);
  if (!text.empty()) status.set_message(text);
  status.set_timestamp(nowSeconds());
  return status;
}

void Core::completeTask(const TaskKey& key) {
  auto it = tasks.find(key);
  if (it == tasks.end()) return;
  auto framework = frameworks.find(key.first);
  if (framework != frameworks.end()) {
    auto& completed = framework->second.completedTasks;
    completed.push_back(std::move(it->second));
    while (completed.size() > kMaxCompletedTasks) completed.pop_front();
  }
  tasks.erase(it);
}

void Core::heartbeat(const std::string& frameworkId) {
  auto framework = frameworks.find(frameworkId);
  if (framework == frameworks.end() || !framework->second.connected) return;
  v1::scheduler::Event event;
  event.set_type(v1::scheduler::Event::HEARTBEAT);
  sendEvent(framework->second, event);
  framework->second.heartbeatTimer = strand->schedule(
      options.schedulerHeartbeatInterval,
      guarded(weak_from_this(), [frameworkId](Core& core) { core.heartbeat(frameworkId); }));
}

void Core::subscribe(const v1::scheduler::Call& call, const std::optional<std::string>& principal,
                     std::shared_ptr<net::HttpStream> stream) {
  counter("messages_register_framework").increment();
  if (!call.has_subscribe()) return answer(stream, 400, "expecting 'subscribe' to be present");
  v1::FrameworkInfo info = call.subscribe().framework_info();
  if (info.user().empty()) return answer(stream, 400, "'framework_info.user' is required");
  if (info.name().empty()) return answer(stream, 400, "'framework_info.name' is required");
  std::vector<std::string> roles = rolesOf(info);
  for (const auto& role : roles) {
    if (api::Status valid = api::validateRole(role); !valid) {
      return answer(stream, http::httpStatus(valid.code()), valid.message());
    }
  }
  std::set<std::string, std::less<>> suppressed(call.subscribe().suppressed_roles().begin(),
                                                call.subscribe().suppressed_roles().end());
  for (const auto& role : suppressed) {
    if (std::find(roles.begin(), roles.end(), role) == roles.end()) {
      return answer(stream, 400,
                    fmt::format("suppressed role '{}' is not one of the framework's roles", role));
    }
  }
  if (call.has_framework_id() && info.has_id() &&
      call.framework_id().value() != info.id().value()) {
    return answer(stream, 400, "'framework_id' differs from 'framework_info.id'");
  }
  if (principal && info.has_principal() && info.principal() != *principal) {
    return answer(stream, 403,
                  fmt::format("authenticated principal '{}' does not match principal '{}' set in "
                              "'framework_info'",
                              *principal, info.principal()));
  }

  std::string id = call.has_framework_id() ? call.framework_id().value() : info.id().value();
  bool failover = !id.empty();
  for (const auto& completed : completedFrameworks) {
    if (completed.id == id) {
      return answer(stream, 403, fmt::format("framework '{}' has been removed", id));
    }
  }
  if (id.empty()) id = fmt::format("{}-{:04}", masterId, nextFramework++);
  info.mutable_id()->set_value(id);

  FrameworkEntry& framework = frameworks[id];
  double now = nowSeconds();
  if (framework.id.empty()) {
    framework.id = id;
    framework.registeredTime = now;
  } else {
    framework.reregisteredTime = now;
  }
  if (framework.connected && framework.stream) {
    // The offers made to the connection being replaced go with it, as in Mesos's failover:
    // their resources return to the allocator and are offered again, to this connection too.
    // (A connection that closed first had its offers rescinded then.)
    std::vector<std::string> stale;
    for (const auto& [offerId, offer] : offers) {
      if (offer.frameworkId == id) stale.push_back(offerId);
    }
    for (const auto& offerId : stale) rescindOffer(offerId, true);
    v1::scheduler::Event error;
    error.set_type(v1::scheduler::Event::ERROR);
    error.mutable_error()->set_message("framework failed over");
    sendEvent(framework, error);
    framework.stream->end();
  }
  if (framework.failoverTimer) framework.failoverTimer->cancel();
  framework.failoverTimer.reset();
  framework.info = info;
  framework.roles = roles;
  framework.recovered = false;
  framework.connected = true;
  framework.active = true;
  framework.stream = stream;
  framework.streamId = boost::uuids::to_string(boost::uuids::random_generator()());

  api::FrameworkOptions frameworkOptions;
  frameworkOptions.roles = roles;
  frameworkOptions.suppressedRoles = suppressed;
  if (framework.inAllocator) {
    allocatorCall(
        [id, frameworkOptions](api::Allocator& allocator) {
          api::Status updated = allocator.updateFramework(id, frameworkOptions);
          if (!updated) return updated;
          return allocator.activateFramework(id);
        },
        fmt::format("re-activating framework '{}'", id));
  } else {
    auto used = allocationsOfFramework(id);
    allocatorCall(
        [id, frameworkOptions, used](api::Allocator& allocator) {
          return allocator.addFramework(id, frameworkOptions, used, true);
        },
        fmt::format("adding framework '{}'", id));
    framework.inAllocator = true;
  }

  // A scheduler that stops reading while asking for events (large RECONCILEs) is cut off at
  // this bound instead of growing the master; see frameworkDisconnected().
  stream->setMaxQueuedBytes(static_cast<size_t>(options.maxEventStreamQueueBytes));
  stream->start(200, "application/json", {{"Mesos-Stream-Id", framework.streamId}});
  v1::scheduler::Event subscribed;
  subscribed.set_type(v1::scheduler::Event::SUBSCRIBED);
  subscribed.mutable_subscribed()->mutable_framework_id()->set_value(id);
  subscribed.mutable_subscribed()->set_heartbeat_interval_seconds(
      std::chrono::duration<double>(options.schedulerHeartbeatInterval).count());
  *subscribed.mutable_subscribed()->mutable_master_info() = masterInfo;
  sendEvent(framework, subscribed);
  framework.heartbeatTimer =
      strand->schedule(options.schedulerHeartbeatInterval,
                       guarded(weak_from_this(), [id](Core& core) { core.heartbeat(id); }));
  std::string streamId = framework.streamId;
  std::weak_ptr<Core> weak = weak_from_this();
  runtime::StrandExecutor* executor = strand.get();
  stream->onClose([weak, executor, id, streamId] {
    // From any thread: hop to the strand while the core is alive.
    if (auto core = weak.lock()) {
      executor->post(
          guarded(weak, [id, streamId](Core& core) { core.frameworkDisconnected(id, streamId); }));
    }
  });
  log()->info("framework '{}' ({}) {}subscribed", id, info.name(), failover ? "re-" : "");
}

void Core::frameworkDisconnected(const std::string& frameworkId, const std::string& streamId) {
  auto it = frameworks.find(frameworkId);
  if (it == frameworks.end() || it->second.streamId != streamId || !it->second.connected) return;
  FrameworkEntry& framework = it->second;
  log()->info("framework '{}' disconnected", frameworkId);
  framework.connected = false;
  framework.active = false;
  framework.stream.reset();
  framework.unregisteredTime = nowSeconds();
  if (framework.heartbeatTimer) framework.heartbeatTimer->cancel();
  framework.heartbeatTimer.reset();
  allocatorCall(
      [frameworkId](api::Allocator& allocator) {
        return allocator.deactivateFramework(frameworkId);
      },
      fmt::format("deactivating framework '{}'", frameworkId));
  std::vector<std::string> rescinded;
  for (const auto& [offerId, offer] : offers) {
    if (offer.frameworkId == frameworkId) rescinded.push_back(offerId);
  }
  for (const auto& offerId : rescinded) rescindOffer(offerId, true);
  runtime::Duration timeout = options.defaultFailoverTimeout;
  if (framework.info.failover_timeout() > 0) {
    timeout = std::chrono::duration_cast<runtime::Duration>(
        std::chrono::duration<double>(framework.info.failover_timeout()));
  }
  armFailoverTimer(framework, timeout);
}

void Core::armFailoverTimer(FrameworkEntry& framework, runtime::Duration timeout) {
  if (framework.failoverTimer) framework.failoverTimer->cancel();
  std::string frameworkId = framework.id;
  framework.failoverTimer = strand->schedule(
      timeout, guarded(weak_from_this(), [frameworkId](Core& core) {
        auto it = core.frameworks.find(frameworkId);
        if (it == core.frameworks.end() || it->second.connected) return;
        log()->warn("framework '{}' did not re-subscribe within its failover timeout", frameworkId);
        core.removeFramework(frameworkId);
      }));
}

void Core::removeFramework(const std::string& frameworkId) {
  auto it = frameworks.find(frameworkId);
  if (it == frameworks.end()) return;
  FrameworkEntry& framework = it->second;
  log()->info("removing framework '{}'", frameworkId);
  std::set<std::string> agentsWithTasks;
  std::vector<TaskKey> keys;
  for (auto& [key, task] : tasks) {
    if (task.frameworkId != frameworkId) continue;
    agentsWithTasks.insert(task.agentId);
    if (!isTerminal(task.state)) {
      task.state = v1::TASK_KILLED;
      task.statuses.emplace_back(v1::TASK_KILLED, nowSeconds());
    }
    keys.push_back(key);
  }
  for (const auto& agentId : agentsWithTasks) {
    internal::Envelope shutdown;
    shutdown.mutable_shutdown_framework()->mutable_framework_id()->set_value(frameworkId);
    sendToAgent(agentId, shutdown);
  }
  std::vector<std::string> dropped;
  for (const auto& [offerId, offer] : offers) {
    if (offer.frameworkId == frameworkId) dropped.push_back(offerId);
  }
  for (const auto& offerId : dropped) offers.erase(offerId);
  for (const auto& key : keys) completeTask(key);
  if (framework.inAllocator) {
    allocatorCall(
        [frameworkId](api::Allocator& allocator) { return allocator.removeFramework(frameworkId); },
        fmt::format("removing framework '{}'", frameworkId));
  }
  if (framework.heartbeatTimer) framework.heartbeatTimer->cancel();
  if (framework.failoverTimer) framework.failoverTimer->cancel();
  framework.heartbeatTimer.reset();
  framework.failoverTimer.reset();
  if (framework.stream) framework.stream->end();
  framework.stream.reset();
  framework.connected = false;
  framework.active = false;
  framework.unregisteredTime = nowSeconds();
  completedFrameworks.push_back(std::move(framework));
  while (completedFrameworks.size() > kMaxCompletedFrameworks) completedFrameworks.pop_front();
  frameworks.erase(it);
}

}  // namespace tessera::kernel::master
