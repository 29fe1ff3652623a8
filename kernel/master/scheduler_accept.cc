// The v1 scheduler API's ACCEPT (LAUNCH, LAUNCH_GROUP, RESERVE, UNRESERVE) and DECLINE.

#include <fmt/format.h>

#include <algorithm>

#include "kernel/master/master_core.h"
#include "kernel/master/master_util.h"
#include "kernel/net/v1_json.h"

namespace tessera::kernel::master {

using detail::log;

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

}  // namespace tessera::kernel::master
