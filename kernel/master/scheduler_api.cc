// The v1 scheduler API (`POST /api/v1/scheduler`): SUBSCRIBE streams and the calls on them.

#include <fmt/format.h>

#include <algorithm>
#include <boost/uuid/uuid.hpp>
#include <boost/uuid/uuid_generators.hpp>
#include <boost/uuid/uuid_io.hpp>

#include "kernel/master/master_core.h"
#include "kernel/master/master_util.h"
#include "kernel/net/recordio.h"
#include "kernel/net/utf8.h"
#include "kernel/net/v1_json.h"
#include "kernel/runtime/logging.h"

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

void Core::authenticateCall(std::shared_ptr<const api::HttpRequest> request,
                            v1::scheduler::Call call, std::shared_ptr<net::HttpStream> stream) {
  // The authenticator runs on its own executor and answers from any thread; the answer hops
  // back to the strand while the core lives. The request and the stream stay alive in the
  // callbacks until then.
  std::weak_ptr<Core> weak = weak_from_this();
  runtime::StrandExecutor* executor = strand.get();
  api::Authenticator* authenticator = services.authenticator;
  auto done = [weak, executor, request, call = std::move(call),
               stream](api::AuthenticationResult result) mutable {
    auto alive = weak.lock();
    if (!alive) return answer(stream, 503, "the master is stopping");
    executor->post([weak, request = std::move(request), call = std::move(call),
                    stream = std::move(stream), result = std::move(result)]() mutable {
      auto core = weak.lock();
      if (!core || core->stopped) return answer(stream, 503, "the master is stopping");
      core->authenticated(*request, call, std::move(result), std::move(stream));
    });
  };
  services.authenticatorExecutor->post([authenticator, request, done = std::move(done)]() mutable {
    authenticator->authenticate(*request, std::move(done));
  });
}

void Core::authenticated(const api::HttpRequest& request, const v1::scheduler::Call& call,
                         api::AuthenticationResult result,
                         std::shared_ptr<net::HttpStream> stream) {
  using Outcome = api::AuthenticationResult::Outcome;
  switch (result.outcome) {
    case Outcome::kAuthenticated:
      if (!result.principal) {
        // An authenticator that authenticates nobody in particular: treat as unauthenticated.
        result.outcome = Outcome::kUnauthorized;
        break;
      }
      return dispatchCall(request, call, result.principal, std::move(stream));
    case Outcome::kForbidden:
      counter("scheduler_calls_forbidden").increment();
      return answer(stream, 403, "the authenticator refused the request");
    case Outcome::kUnauthorized:
      break;
  }
  if (!options.authenticateFrameworks) {
    // Mesos: without --authenticate_frameworks, authentication is optional.
    return dispatchCall(request, call, std::nullopt, std::move(stream));
  }
  counter("scheduler_calls_unauthenticated").increment();
  std::vector<std::pair<std::string, std::string>> headers;
  if (!result.challenge.empty()) headers.emplace_back("WWW-Authenticate", result.challenge);
  stream->start(401, "application/json", std::move(headers));
  stream->write(
      http::errorJson("the request is not authenticated and the master requires authentication "
                      "(--authenticate_frameworks)"));
  stream->end();
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

// --- ACCEPT ---------------------------------------------------------------------------------
//
// accept() takes the offers (takeOffers), refuses everything when they are not usable
// (refuseAcceptance), applies the operations in order (applyOperations: launchTasks, reserve) to
// what the offers hold, and gives what is left back to the allocator (finishAcceptance).

namespace {

/// The name of operation `index` of an ACCEPT: the v1 enum's for the kinds Tessera carries out,
/// else the name the framework sent ("UNKNOWN" when it sent none).
std::string operationName(const v1::Offer::Operation& operation,
                          const internal::AcceptedOperations& view, int index) {
  if (operation.type() != v1::Offer::Operation::UNKNOWN) {
    return v1::Offer::Operation::Type_Name(operation.type());
  }
  if (index < view.accept().operations_size() && !view.accept().operations(index).type().empty()) {
    return view.accept().operations(index).type();
  }
  return "UNKNOWN";
}

}  // namespace

internal::AcceptedOperations Core::readAcceptedOperations(const v1::scheduler::Call::Accept& call,
                                                          std::string_view body) {
  // Only operations the v1 Call could not name need the second reading: an ACCEPT of LAUNCH,
  // RESERVE and UNRESERVE alone (every launch) is parsed once.
  const bool unnamed = std::any_of(
      call.operations().begin(), call.operations().end(),
      [](const v1::Offer::Operation& op) { return op.type() == v1::Offer::Operation::UNKNOWN; });
  if (!unnamed) return {};
  // A body the v1 Call parsed always parses here too, unless an operation's type is a number
  // rather than a name; then every unknown kind is reported as UNKNOWN.
  auto view = net::parseV1Json<internal::AcceptedOperations>(body);
  return view ? std::move(view).value() : internal::AcceptedOperations();
}

api::Status Core::accept(FrameworkEntry& framework, const v1::scheduler::Call::Accept& call,
                         const internal::AcceptedOperations& view) {
  counter("messages_launch_tasks").increment();
  // An operation without tasks that the master cannot carry out refuses the whole call before
  // anything is done (the offers stay outstanding); LAUNCH_GROUP's tasks are answered one by one
  // below, as invalid launches are.
  for (int i = 0; i < call.operations_size(); ++i) {
    if (call.operations(i).type() != v1::Offer::Operation::UNKNOWN) continue;
    std::string name = operationName(call.operations(i), view, i);
    if (name == kLaunchGroup) continue;
    counter("invalid_operations").increment();
    return api::makeStatus(api::StatusCode::kUnimplemented,
                           "operation '{}' is not supported (accept.operations[{}])", name, i);
  }
  TakenOffers taken = takeOffers(framework, call);
  if (!taken.invalid.empty()) {
    refuseAcceptance(framework, call, taken);
    return api::Status::ok();
  }
  auto pending = std::make_shared<PendingAccept>();
  Acceptance& acceptance = pending->acceptance;
  acceptance.frameworkId = framework.id;
  acceptance.agentId = taken.agentId;
  acceptance.role = taken.role;
  acceptance.remaining = taken.offered;
  acceptance.refuse = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(call.filters().refuse_seconds()));
  acceptance.refusedUsers = refusedUsers;
  acceptance.refusedReserveRoles = refusedReserveRoles;
  acceptance.refusedUnreservePrincipals = refusedUnreservePrincipals;
  pending->operations.assign(call.operations().begin(), call.operations().end());
  pending->view = view;
  applyOperations(std::move(pending));
  return api::Status::ok();
}

void Core::applyOperations(std::shared_ptr<PendingAccept> pending) {
  Acceptance& acceptance = pending->acceptance;
  while (pending->next < pending->operations.size()) {
    auto framework = frameworks.find(acceptance.frameworkId);
    // Removed while a reservation was being written: the allocator took back all it held.
    if (framework == frameworks.end()) return;
    size_t index = pending->next++;
    const v1::Offer::Operation& operation = pending->operations[index];
    switch (operation.type()) {
      case v1::Offer::Operation::LAUNCH:
        launchTasks(framework->second, acceptance, operation.launch());
        break;
      case v1::Offer::Operation::RESERVE:
      case v1::Offer::Operation::UNRESERVE:
        if (auto change = reservationChange(framework->second, acceptance, operation)) {
          // Goes on from the next operation once the registry holds the change.
          return reserve(std::move(pending), std::move(change).value());
        }
        break;
      case v1::Offer::Operation::LAUNCH_GROUP:
        launchGroup(framework->second, acceptance, operation.launch_group());
        break;
      default:
        break;  // accept() refused every other kind before anything was done
    }
  }
  finishAcceptance(acceptance);
}

Core::TakenOffers Core::takeOffers(const FrameworkEntry& framework,
                                   const v1::scheduler::Call::Accept& call) {
  // Offers: all known, all the framework's, all on one agent; otherwise every task is dropped.
  TakenOffers taken;
  std::vector<std::string> offerIds;
  for (const auto& offerId : call.offer_ids()) {
    auto offer = offers.find(offerId.value());
    if (offer == offers.end()) {
      taken.invalid = fmt::format("offer '{}' is no longer valid", offerId.value());
      continue;
    }
    if (offer->second.frameworkId != framework.id) {
      taken.invalid = fmt::format("offer '{}' belongs to another framework", offerId.value());
      continue;
    }
    if (!taken.agentId.empty() && offer->second.agentId != taken.agentId) {
      taken.invalid = "offers span more than one agent";
    }
    if (taken.agentId.empty()) taken.agentId = offer->second.agentId;
    if (std::find(offerIds.begin(), offerIds.end(), offerId.value()) != offerIds.end()) {
      taken.invalid = fmt::format("offer '{}' is listed twice", offerId.value());
      continue;
    }
    offerIds.push_back(offerId.value());
  }
  if (call.offer_ids_size() == 0) taken.invalid = "no offer ids";
  // The offers are used up either way.
  for (const auto& offerId : offerIds) {
    OfferEntry& offer = offers.at(offerId);
    taken.offeredByAgent[offer.agentId] += offer.resources;
    if (taken.role.empty()) taken.role = offer.role;
    taken.offered += offer.resources;
    offers.erase(offerId);
  }
  counter("offers_accepted").increment(offerIds.size());
  auto agent = agents.find(taken.agentId);
  if (taken.invalid.empty() &&
      (agent == agents.end() || agent->second.status != AgentStatus::kActive)) {
    taken.invalid = fmt::format("agent '{}' is not active", taken.agentId);
  }
  return taken;
}

void Core::refuseAcceptance(const FrameworkEntry& framework,
                            const v1::scheduler::Call::Accept& call, const TakenOffers& taken) {
  for (const auto& [agent, resources] : taken.offeredByAgent) {
    recover(framework.id, agent, resources, std::nullopt);
  }
  v1::TaskState state = framework.partitionAware() ? v1::TASK_DROPPED : v1::TASK_LOST;
  auto lose = [&](const v1::TaskInfo& task) {
    sendUpdate(framework.id, masterStatus(task.task_id().value(), taken.agentId, state,
                                          v1::TaskStatus::REASON_INVALID_OFFERS, taken.invalid));
  };
  for (int i = 0; i < call.operations_size(); ++i) {
    const v1::Offer::Operation& operation = call.operations(i);
    if (operation.type() == v1::Offer::Operation::LAUNCH) {
      for (const auto& task : operation.launch().task_infos()) lose(task);
    } else if (operation.type() == v1::Offer::Operation::LAUNCH_GROUP) {
      for (const auto& task : operation.launch_group().task_group().tasks()) lose(task);
    }
  }
}

void Core::launchGroup(const FrameworkEntry& framework, Acceptance& acceptance,
                       const v1::Offer::Operation::LaunchGroup& launchGroup) {
  const v1::TaskGroupInfo& group = launchGroup.task_group();
  std::string error = validateTaskGroup(acceptance, launchGroup);
  for (const auto& task : group.tasks()) {
    if (!task.task_id().value().empty()) acceptance.seen.insert(task.task_id().value());
  }
  if (!error.empty()) {
    // Mesos answers a task group it cannot launch with TASK_ERROR for each of its tasks. Their
    // resources stay in `acceptance.remaining` and go back to the allocator.
    counter("invalid_operations").increment();
    for (const auto& task : group.tasks()) {
      sendUpdate(framework.id,
                 masterStatus(task.task_id().value(), acceptance.agentId, v1::TASK_ERROR,
                              v1::TaskStatus::REASON_TASK_GROUP_INVALID, error));
    }
    return;
  }
  internal::Envelope run;
  internal::RunTaskGroup& message = *run.mutable_run_task_group();
  *message.mutable_framework() = framework.info;
  *message.mutable_executor() = launchGroup.executor();
  *message.mutable_executor()->mutable_framework_id() = framework.info.id();
  message.set_role(acceptance.role);
  // The executor's resources are the master's to give back: they ride with the group's first
  // task (returned when it ends), as the master tracks no executors of its own.
  auto executorResources = api::Resources::fromProto(launchGroup.executor().resources());
  bool first = true;
  for (const auto& taskInfo : group.tasks()) {
    const std::string& taskId = taskInfo.task_id().value();
    auto resources = api::Resources::fromProto(taskInfo.resources());
    TaskEntry& task = tasks[{framework.id, taskId}];
    task.info = taskInfo;
    task.info.mutable_agent_id()->set_value(acceptance.agentId);
    task.frameworkId = framework.id;
    task.agentId = acceptance.agentId;
    task.role = acceptance.role;
    task.state = v1::TASK_STAGING;
    task.resources = *resources;
    if (first && executorResources) task.resources += *executorResources;
    first = false;
    acceptance.remaining -= task.resources;
    task.statuses.emplace_back(v1::TASK_STAGING, nowSeconds());
    *message.add_tasks() = task.info;
    counter("tasks_launched").increment();
  }
  sendToAgent(acceptance.agentId, run);
}

std::string Core::validateTask(const Acceptance& acceptance, const v1::TaskInfo& taskInfo,
                               const api::Result<api::Resources>& resources) const {
  const std::string& taskId = taskInfo.task_id().value();
  if (taskId.empty()) return "task has no id";
  if (!acceptance.refusedUsers.empty()) {
    const std::string& user = taskInfo.has_command() && taskInfo.command().has_user()
                                  ? taskInfo.command().user()
                                  : frameworks.at(acceptance.frameworkId).info.user();
    if (acceptance.refusedUsers.count(user)) {
      return fmt::format("not authorized to launch task '{}' as user '{}' (RUN_TASK)", taskId,
                         user);
    }
  }
  if (acceptance.seen.count(taskId) || tasks.count({acceptance.frameworkId, taskId})) {
    return fmt::format("task id '{}' is already in use", taskId);
  }
  if (!resources) return resources.status().message();
  if (resources->empty()) return fmt::format("task '{}' uses no resources", taskId);
  if (!acceptance.remaining.contains(*resources)) {
    return fmt::format("task '{}' uses resources {} that are not in the offers ({})", taskId,
                       resources->toString(), acceptance.remaining.toString());
  }
  if (!taskInfo.has_command() && !taskInfo.has_executor()) {
    return fmt::format("task '{}' has neither a command nor an executor", taskId);
  }
  if (taskInfo.has_agent_id() && taskInfo.agent_id().value() != acceptance.agentId) {
    return fmt::format("task '{}' names agent '{}', not the offers' agent '{}'", taskId,
                       taskInfo.agent_id().value(), acceptance.agentId);
  }
  return "";
}

void Core::launchTasks(const FrameworkEntry& framework, Acceptance& acceptance,
                       const v1::Offer::Operation::Launch& launch) {
  for (const auto& taskInfo : launch.task_infos()) {
    const std::string& taskId = taskInfo.task_id().value();
    auto resources = api::Resources::fromProto(taskInfo.resources());
    std::string error = validateTask(acceptance, taskInfo, resources);
    if (!taskId.empty()) acceptance.seen.insert(taskId);
    if (!error.empty()) {
      sendUpdate(framework.id, masterStatus(taskId, acceptance.agentId, v1::TASK_ERROR,
                                            v1::TaskStatus::REASON_TASK_INVALID, error));
      continue;
    }
    acceptance.remaining -= *resources;
    TaskEntry& task = tasks[{framework.id, taskId}];
    task.info = taskInfo;
    task.info.mutable_agent_id()->set_value(acceptance.agentId);
    task.frameworkId = framework.id;
    task.agentId = acceptance.agentId;
    task.role = acceptance.role;
    task.state = v1::TASK_STAGING;
    task.resources = *resources;
    task.statuses.emplace_back(v1::TASK_STAGING, nowSeconds());
    internal::Envelope run;
    *run.mutable_run_task()->mutable_framework() = framework.info;
    *run.mutable_run_task()->mutable_task() = task.info;
    run.mutable_run_task()->set_role(acceptance.role);
    sendToAgent(acceptance.agentId, run);
    counter("tasks_launched").increment();
  }
}

std::optional<api::ReservationOperation> Core::reservationChange(
    const FrameworkEntry& framework, const Acceptance& acceptance,
    const v1::Offer::Operation& operation) const {
  bool reserve = operation.type() == v1::Offer::Operation::RESERVE;
  auto to = api::Resources::fromProto(reserve ? operation.reserve().resources()
                                              : operation.unreserve().resources());
  if (!to) {
    log()->warn("framework '{}': dropping invalid operation: {}", framework.id,
                to.status().toString());
    return std::nullopt;
  }
  api::ReservationOperation change;
  if (reserve) {
    change.type = api::ReservationOperation::Type::kReserve;
    change.to = *to;
    change.from = to->flatten();
    if (operation.reserve().source_size() > 0) {
      auto source = api::Resources::fromProto(operation.reserve().source());
      if (source) change.from = *source;
    }
  } else {
    change.type = api::ReservationOperation::Type::kUnreserve;
    change.from = *to;
    change.to = to->flatten();
  }
  if (!acceptance.remaining.contains(change.from)) {
    log()->warn("framework '{}': dropping operation on resources not offered: {}", framework.id,
                change.from.toString());
    return std::nullopt;
  }
  const auto& resources =
      reserve ? operation.reserve().resources() : operation.unreserve().resources();
  for (const auto& resource : resources) {
    if (resource.reservations_size() == 0) continue;
    const auto& last = resource.reservations(resource.reservations_size() - 1);
    if (reserve && acceptance.refusedReserveRoles.count(last.role())) {
      log()->warn(
          "framework '{}': dropping RESERVE: not authorized to reserve for role '{}' "
          "(RESERVE_RESOURCES)",
          framework.id, last.role());
      return std::nullopt;
    }
    if (!reserve && acceptance.refusedUnreservePrincipals.count(last.principal())) {
      log()->warn(
          "framework '{}': dropping UNRESERVE: not authorized to unreserve resources "
          "reserved by '{}' (UNRESERVE_RESOURCES)",
          framework.id, last.principal());
      return std::nullopt;
    }
  }
  return change;
}

void Core::reserve(std::shared_ptr<PendingAccept> pending, api::ReservationOperation change) {
  // One reservation write at a time (in the policy queue), each computed from the registry as
  // the previous one left it: concurrent ACCEPTs on one agent cannot overwrite each other.
  policyChange([this, pending = std::move(pending),
                change = std::move(change)](std::function<void()> next) mutable {
    const std::string agentId = pending->acceptance.agentId;
    auto entry = registry.find(agentId);
    api::Resources current = entry != registry.end() ? entry->second.reserved : api::Resources();
    api::Resources reserved =
        current - dynamicallyReserved(change.from) + dynamicallyReserved(change.to);
    writeReservations(agentId, reserved,
                      [this, pending, change, reserved, next](api::Status written) mutable {
                        next();
                        const std::string frameworkId = pending->acceptance.frameworkId;
                        const std::string agentId = pending->acceptance.agentId;
                        if (!written) {
                          // Not done: its resources stay as offered and go back at the end.
                          log()->warn("framework '{}': reservation on agent '{}' not applied: {}",
                                      frameworkId, agentId, written.toString());
                          return applyOperations(std::move(pending));
                        }
                        if (auto agent = agents.find(agentId); agent != agents.end()) {
                          applyReservations(agent->second, reserved);
                          sendCheckpointedResources(agent->second);
                        }
                        pending->acceptance.remaining -= change.from;
                        pending->acceptance.remaining += change.to;
                        allocatorCall(
                            [frameworkId, agentId, change](api::Allocator& allocator) {
                              std::vector<api::ReservationOperation> operations{change};
                              return allocator.updateAllocation(frameworkId, agentId, operations);
                            },
                            fmt::format("applying a reservation for framework '{}'", frameworkId));
                        applyOperations(std::move(pending));
                      });
  });
}

void Core::finishAcceptance(const Acceptance& acceptance) {
  if (acceptance.remaining.empty()) return;
  recover(acceptance.frameworkId, acceptance.agentId, acceptance.remaining, acceptance.refuse);
}

void Core::decline(FrameworkEntry& framework, const v1::scheduler::Call::Decline& call) {
  counter("messages_decline_offers").increment();
  auto refuse = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(call.filters().refuse_seconds()));
  for (const auto& offerId : call.offer_ids()) {
    auto offer = offers.find(offerId.value());
    if (offer == offers.end() || offer->second.frameworkId != framework.id) continue;
    OfferEntry entry = std::move(offer->second);
    offers.erase(offer);
    counter("offers_declined").increment();
    recover(framework.id, entry.agentId, entry.resources, refuse);
  }
}

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

void Core::schedulerCall(const api::HttpRequest& request, std::shared_ptr<net::HttpStream> stream) {
  counter("messages_scheduler_calls").increment();
  std::string contentType = request.header("Content-Type").value_or("");
  if (contentType.rfind("application/json", 0) != 0) {
    return answer(stream, 415, "expecting 'Content-Type' of application/json");
  }
  auto parsed = net::parseV1Json<v1::scheduler::Call>(request.body);
  if (!parsed)
    return answer(stream, http::httpStatus(parsed.status().code()),
                  fmt::format("malformed call: {}", parsed.status().message()));
  // The JSON parser refuses non-text strings itself; this holds whatever decoded the call.
  if (api::Status text = net::checkUtf8(*parsed); !text) {
    return answer(stream, 400, fmt::format("malformed call: {}", text.message()));
  }
  if (services.authenticator != nullptr) {
    // Mesos authenticates every call, SUBSCRIBE and the calls on a subscription alike.
    return authenticateCall(std::make_shared<const api::HttpRequest>(request),
                            std::move(parsed).value(), std::move(stream));
  }
  dispatchCall(request, *parsed, std::nullopt, std::move(stream));
}

void Core::dispatchCall(const api::HttpRequest& request, const v1::scheduler::Call& call,
                        const std::optional<std::string>& principal,
                        std::shared_ptr<net::HttpStream> stream) {
  if (call.type() == v1::scheduler::Call::SUBSCRIBE) {
    if (services.authorizer == nullptr || !call.has_subscribe()) {
      return subscribe(call, principal, std::move(stream));
    }
    // REGISTER_FRAMEWORK in each of its roles, for the authenticated principal (else the one
    // the framework names, as Mesos does).
    const v1::FrameworkInfo& info = call.subscribe().framework_info();
    std::optional<std::string> subject = principal;
    if (!subject && info.has_principal()) subject = info.principal();
    std::vector<api::AuthorizationRequest> questions;
    for (const auto& role : rolesOf(info)) {
      api::AuthorizationRequest question;
      question.subject = subject;
      question.action = "REGISTER_FRAMEWORK";
      question.role = role;
      questions.push_back(std::move(question));
    }
    return authorizeAll(std::move(questions),
                        [call, principal, stream = std::move(stream)](
                            Core& core, std::optional<std::string> refusal) mutable {
                          if (refusal) {
                            core.counter("frameworks_refused").increment();
                            log()->warn("refusing framework '{}': {}",
                                        call.subscribe().framework_info().name(), *refusal);
                            return answer(stream, 403, *refusal);
                          }
                          core.subscribe(call, principal, std::move(stream));
                        });
  }
  if (call.type() == v1::scheduler::Call::UNKNOWN) {
    return answer(stream, 400, "expecting 'type' to be present and known");
  }
  if (!call.has_framework_id() || call.framework_id().value().empty()) {
    return answer(stream, 400, "expecting 'framework_id' to be present");
  }
  auto it = frameworks.find(call.framework_id().value());
  if (it == frameworks.end() || !it->second.connected) {
    return answer(stream, 403, "framework is not subscribed");
  }
  FrameworkEntry& framework = it->second;
  auto streamId = request.header("Mesos-Stream-Id");
  if (!streamId)
    return answer(stream, 400,
                  "all non-subscribe calls should include the 'Mesos-Stream-Id' header");
  if (*streamId != framework.streamId) {
    return answer(
        stream, 400,
        fmt::format("the stream id '{}' is not the framework's current stream", *streamId));
  }
  if (principal && framework.info.has_principal() && framework.info.principal() != *principal) {
    return answer(stream, 403,
                  fmt::format("authenticated principal '{}' does not match the framework's "
                              "principal '{}'",
                              *principal, framework.info.principal()));
  }
  auto needs = [&](bool present, std::string_view field) {
    if (present) return true;
    answer(stream, 400, fmt::format("expecting '{}' to be present", field));
    return false;
  };
  std::string frameworkId = framework.id;
  switch (call.type()) {
    case v1::scheduler::Call::TEARDOWN:
      counter("messages_unregister_framework").increment();
      answer(stream, 202, "");
      removeFramework(frameworkId);
      return;
    case v1::scheduler::Call::ACCEPT: {
      if (!needs(call.has_accept(), "accept")) return;
      auto view = readAcceptedOperations(call.accept(), request.body);
      if (services.authorizer == nullptr) {
        api::Status accepted = accept(framework, call.accept(), view);
        if (!accepted) {
          return answer(stream, http::httpStatus(accepted.code()), accepted.message());
        }
        break;
      }
      // RUN_TASK for each user the launches run as; a task of a refused user gets TASK_ERROR.
      std::set<std::string> users;
      for (const auto& operation : call.accept().operations()) {
        if (operation.type() != v1::Offer::Operation::LAUNCH) continue;
        for (const auto& task : operation.launch().task_infos()) {
          users.insert(task.has_command() && task.command().has_user() ? task.command().user()
                                                                       : framework.info.user());
        }
      }
      // RESERVE_RESOURCES for each role reserved for; UNRESERVE_RESOURCES for each principal
      // whose reservations are given back.
      std::set<std::string> reserveRoles;
      std::set<std::string> unreservePrincipals;
      for (const auto& operation : call.accept().operations()) {
        const bool reserving = operation.type() == v1::Offer::Operation::RESERVE;
        if (!reserving && operation.type() != v1::Offer::Operation::UNRESERVE) continue;
        for (const auto& resource :
             reserving ? operation.reserve().resources() : operation.unreserve().resources()) {
          if (resource.reservations_size() == 0) continue;
          const auto& last = resource.reservations(resource.reservations_size() - 1);
          if (reserving) {
            reserveRoles.insert(last.role());
          } else {
            unreservePrincipals.insert(last.principal());
          }
        }
      }
      std::vector<api::AuthorizationRequest> questions;
      auto ask = [&](const char* action, std::optional<std::string> role,
                     std::optional<std::string> value) {
        api::AuthorizationRequest question;
        question.subject = principal;
        if (!question.subject && framework.info.has_principal()) {
          question.subject = framework.info.principal();
        }
        question.action = action;
        question.role = std::move(role);
        question.value = std::move(value);
        questions.push_back(std::move(question));
      };
      for (const auto& user : users) ask("RUN_TASK", std::nullopt, user);
      for (const auto& role : reserveRoles) ask("RESERVE_RESOURCES", role, std::nullopt);
      for (const auto& reserver : unreservePrincipals) {
        ask("UNRESERVE_RESOURCES", std::nullopt, reserver);
      }
      std::string streamIdValue = framework.streamId;
      return authorize(
          std::move(questions),
          [frameworkId, streamIdValue, call, view = std::move(view),
           users = std::vector<std::string>(users.begin(), users.end()),
           reserveRoles = std::vector<std::string>(reserveRoles.begin(), reserveRoles.end()),
           unreservePrincipals =
               std::vector<std::string>(unreservePrincipals.begin(), unreservePrincipals.end()),
           stream = std::move(stream)](Core& core, std::vector<bool> answers) {
            FrameworkEntry* current = core.connectedOn(frameworkId, streamIdValue);
            if (current == nullptr) return answer(stream, 403, "framework is not subscribed");
            size_t at = 0;
            for (const auto& user : users) {
              if (!answers[at++]) core.refusedUsers.insert(user);
            }
            for (const auto& role : reserveRoles) {
              if (!answers[at++]) core.refusedReserveRoles.insert(role);
            }
            for (const auto& reserver : unreservePrincipals) {
              if (!answers[at++]) core.refusedUnreservePrincipals.insert(reserver);
            }
            api::Status accepted = core.accept(*current, call.accept(), view);
            core.refusedUsers.clear();
            core.refusedReserveRoles.clear();
            core.refusedUnreservePrincipals.clear();
            if (!accepted) {
              return answer(stream, http::httpStatus(accepted.code()), accepted.message());
            }
            answer(stream, 202, "");
          });
    }
    case v1::scheduler::Call::DECLINE:
      if (!needs(call.has_decline(), "decline")) return;
      decline(framework, call.decline());
      break;
    case v1::scheduler::Call::REVIVE: {
      counter("messages_revive_offers").increment();
      std::vector<std::string> roles(call.revive().roles().begin(), call.revive().roles().end());
      allocatorCall(
          [frameworkId, roles](api::Allocator& allocator) {
            return allocator.reviveOffers(frameworkId, roles);
          },
          fmt::format("reviving offers for framework '{}'", frameworkId));
      break;
    }
    case v1::scheduler::Call::SUPPRESS: {
      counter("messages_suppress_offers").increment();
      std::vector<std::string> roles(call.suppress().roles().begin(),
                                     call.suppress().roles().end());
      allocatorCall(
          [frameworkId, roles](api::Allocator& allocator) {
            return allocator.suppressOffers(frameworkId, roles);
          },
          fmt::format("suppressing offers for framework '{}'", frameworkId));
      break;
    }
    case v1::scheduler::Call::KILL:
      if (!needs(call.has_kill() && call.kill().has_task_id(), "kill.task_id")) return;
      kill(framework, call.kill());
      break;
    case v1::scheduler::Call::ACKNOWLEDGE:
      if (!needs(call.has_acknowledge() && call.acknowledge().has_task_id() &&
                     call.acknowledge().has_agent_id() && call.acknowledge().has_uuid(),
                 "acknowledge.{agent_id,task_id,uuid}")) {
        return;
      }
      acknowledge(framework, call.acknowledge());
      break;
    case v1::scheduler::Call::RECONCILE:
      reconcile(framework, call.reconcile());
      break;
    case v1::scheduler::Call::MESSAGE:
      if (!needs(call.has_message() && call.message().has_agent_id(), "message.agent_id")) return;
      message(framework, call.message());
      break;
    default:
      return answer(stream, 501,
                    fmt::format("call type {} is not implemented",
                                v1::scheduler::Call::Type_Name(call.type())));
  }
  answer(stream, 202, "");
}

}  // namespace tessera::kernel::master
