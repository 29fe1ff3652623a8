// The master's agent side: admission over the internal transport, liveness, status updates,
// and its dealings with the allocator (offers, rescinds, recovered resources).

#include <fmt/format.h>

#include <algorithm>

#include "kernel/master/master_core.h"
#include "kernel/master/master_util.h"
#include "kernel/net/utf8.h"
#include "kernel/net/v1_json.h"
#include "kernel/runtime/logging.h"

namespace tessera::kernel::master {

using detail::guarded;
using detail::log;
using detail::rolesOf;

namespace {

// Tells every subscribed framework that agent `agentId` is removed (unreachable or gone): a
// FAILURE event with its agent_id and no executor_id, as Mesos's master sends its
// LostSlaveMessage to all registered frameworks, whether or not they ran anything there.
void sendAgentFailure(Core& core, const std::string& agentId) {
  v1::scheduler::Event event;
  event.set_type(v1::scheduler::Event::FAILURE);
  event.mutable_failure()->mutable_agent_id()->set_value(agentId);
  for (auto& [id, framework] : core.frameworks) core.sendEvent(framework, event);
}

}  // namespace

// --- reservations ---------------------------------------------------------------------------

namespace {

/// Keeps the entries of `resources` for which `keep(resource)` holds, after `change(resource)`.
template <typename Keep, typename Change>
api::Resources rewrite(const api::Resources& resources, Keep keep, Change change) {
  google::protobuf::RepeatedPtrField<v1::Resource> kept;
  for (v1::Resource& resource : resources.toProto()) {
    if (!keep(resource)) continue;
    change(resource);
    *kept.Add() = std::move(resource);
  }
  // Valid resources with reservations dropped from the top of their stacks are valid.
  return api::Resources::fromProto(kept).value();
}

bool isDynamic(const v1::Resource::ReservationInfo& reservation) {
  return reservation.type() == v1::Resource::ReservationInfo::DYNAMIC;
}

}  // namespace

api::Resources dynamicallyReserved(const api::Resources& resources) {
  return rewrite(
      resources,
      [](const v1::Resource& resource) {
        return std::any_of(resource.reservations().begin(), resource.reservations().end(),
                           isDynamic);
      },
      [](v1::Resource&) {});
}

api::Resources withoutDynamicReservations(const api::Resources& resources) {
  return rewrite(
      resources, [](const v1::Resource&) { return true; },
      [](v1::Resource& resource) {
        while (resource.reservations_size() > 0 &&
               isDynamic(resource.reservations(resource.reservations_size() - 1))) {
          resource.mutable_reservations()->RemoveLast();
        }
      });
}

void Core::applyReservations(AgentEntry& agent, const api::Resources& reserved) {
  api::Resources total = api::Resources::fromProto(agent.info.resources()).value();
  agent.dynamicReservations = api::Resources();
  // One reservation at a time, each only if what it was made from is still there (an agent that
  // came back with fewer resources keeps the reservations that fit).
  for (const v1::Resource& resource : reserved.toProto()) {
    google::protobuf::RepeatedPtrField<v1::Resource> one;
    *one.Add() = resource;
    api::Resources reservation = api::Resources::fromProto(one).value();
    api::Resources source = withoutDynamicReservations(reservation);
    if (!total.contains(source)) {
      log()->warn("agent '{}': reservation {} does not fit its resources {}; not applied", agent.id,
                  reservation.toString(), total.toString());
      continue;
    }
    total -= source;
    total += reservation;
    agent.dynamicReservations += reservation;
  }
  agent.total = std::move(total);
}

void Core::sendCheckpointedResources(const AgentEntry& agent) {
  if (!agent.connection) return;
  internal::Envelope envelope;
  *envelope.mutable_checkpoint_resources()->mutable_resources() =
      agent.dynamicReservations.toProto();
  agent.connection->send(envelope);
}

// --- allocator ------------------------------------------------------------------------------

void Core::allocatorCall(std::function<api::Status(api::Allocator&)> fn, std::string what) {
  api::Allocator* allocator = services.allocator;
  services.allocatorExecutor->post([allocator, fn = std::move(fn), what = std::move(what)] {
    api::Status status = fn(*allocator);
    if (!status) log()->warn("allocator: {}: {}", what, status.toString());
  });
}

void Core::recover(const std::string& frameworkId, const std::string& agentId,
                   const api::Resources& resources,
                   std::optional<std::chrono::nanoseconds> refuse) {
  if (resources.empty() && !refuse) return;
  allocatorCall(
      [frameworkId, agentId, resources, refuse](api::Allocator& allocator) {
        return allocator.recoverResources(frameworkId, agentId, resources, refuse);
      },
      fmt::format("recovering resources of framework '{}' on agent '{}'", frameworkId, agentId));
}

std::vector<api::Allocation> Core::allocationsOfAgent(const std::string& agentId) const {
  std::map<std::pair<std::string, std::string>, api::Resources> used;
  for (const auto& [key, task] : tasks) {
    if (task.agentId != agentId || task.recovered) continue;
    used[{task.frameworkId, task.role}] += task.resources;
  }
  std::vector<api::Allocation> result;
  for (auto& [key, resources] : used) {
    result.push_back(api::Allocation{key.first, agentId, key.second, resources});
  }
  return result;
}

std::vector<api::Allocation> Core::allocationsOfFramework(const std::string& frameworkId) const {
  std::map<std::pair<std::string, std::string>, api::Resources> used;
  for (const auto& [key, task] : tasks) {
    if (task.frameworkId != frameworkId || task.recovered) continue;
    auto agent = agents.find(task.agentId);
    if (agent == agents.end() || !agent->second.inAllocator) continue;
    used[{task.agentId, task.role}] += task.resources;
  }
  std::vector<api::Allocation> result;
  for (auto& [key, resources] : used) {
    result.push_back(api::Allocation{frameworkId, key.first, key.second, resources});
  }
  return result;
}

void Core::onOffers(const std::string& frameworkId, std::vector<api::Offer> made) {
  auto framework = frameworks.find(frameworkId);
  bool usable =
      framework != frameworks.end() && framework->second.active && framework->second.connected;
  v1::scheduler::Event event;
  event.set_type(v1::scheduler::Event::OFFERS);
  for (api::Offer& offer : made) {
    auto agent = agents.find(offer.agentId);
    if (!usable || agent == agents.end() || agent->second.status != AgentStatus::kActive) {
      recover(frameworkId, offer.agentId, offer.resources, std::nullopt);
      continue;
    }
    OfferEntry entry;
    entry.frameworkId = frameworkId;
    entry.agentId = offer.agentId;
    entry.role = offer.role;
    entry.resources = offer.resources;
    v1::Offer& proto = entry.offer;
    std::string id = fmt::format("{}-O{}", masterId, nextOffer++);
    proto.mutable_id()->set_value(id);
    proto.mutable_framework_id()->set_value(frameworkId);
    proto.mutable_agent_id()->set_value(offer.agentId);
    proto.set_hostname(agent->second.info.hostname());
    *proto.mutable_resources() = offer.resources.toProto();
    for (auto& resource : *proto.mutable_resources()) {
      resource.mutable_allocation_info()->set_role(offer.role);
    }
    *proto.mutable_attributes() = agent->second.info.attributes();
    proto.mutable_allocation_info()->set_role(offer.role);
    *event.mutable_offers()->add_offers() = proto;
    offers.emplace(id, std::move(entry));
  }
  if (event.offers().offers_size() == 0) return;
  counter("offers_sent").increment(event.offers().offers_size());
  sendEvent(framework->second, event);
}

void Core::rescindOffer(const std::string& offerId, bool recoverResources) {
  auto it = offers.find(offerId);
  if (it == offers.end()) return;
  OfferEntry entry = std::move(it->second);
  offers.erase(it);
  counter("offers_rescinded").increment();
  if (auto framework = frameworks.find(entry.frameworkId); framework != frameworks.end()) {
    v1::scheduler::Event event;
    event.set_type(v1::scheduler::Event::RESCIND);
    event.mutable_rescind()->mutable_offer_id()->set_value(offerId);
    sendEvent(framework->second, event);
  }
  if (recoverResources) recover(entry.frameworkId, entry.agentId, entry.resources, std::nullopt);
}

// --- agents ---------------------------------------------------------------------------------

bool Core::sendToAgent(const std::string& agentId, const internal::Envelope& envelope) {
  auto agent = agents.find(agentId);
  if (agent == agents.end() || !agent->second.connection) return false;
  return agent->second.connection->send(envelope);
}

void Core::onAgentMessage(const net::ConnectionPtr& connection, internal::Envelope envelope) {
  // proto2 strings arrive unchecked; what the master keeps and later prints must be text. A
  // registration is refused (the agent says why and stops), anything else dropped.
  if (api::Status text = net::checkUtf8(envelope); !text) {
    counter("invalid_messages").increment();
    log()->warn("message {} from {} dropped: {}", static_cast<int>(envelope.message_case()),
                connection->peer(), text.message());
    if (envelope.has_register_agent() || envelope.has_reregister_agent()) {
      internal::Envelope reply;
      reply.mutable_agent_refused()->set_message(text.message());
      connection->send(reply);
    }
    return;
  }
  switch (envelope.message_case()) {
    case internal::Envelope::kAuthenticateAgent:
      authenticateAgent(connection, envelope.authenticate_agent());
      break;
    case internal::Envelope::kAuthenticationResponse:
      agentAuthenticationResponse(connection, envelope.authentication_response());
      break;
    case internal::Envelope::kRegisterAgent:
      if (agentMayRegister(connection)) registerAgent(connection, envelope.register_agent());
      break;
    case internal::Envelope::kReregisterAgent:
      if (agentMayRegister(connection)) reregisterAgent(connection, envelope.reregister_agent());
      break;
    case internal::Envelope::kStatusUpdate: {
      // Only from a registered connection: an unknown peer cannot invent task states.
      auto known = agentByConnection.find(connection->id());
      if (known == agentByConnection.end()) {
        log()->warn("status update from unregistered peer {} dropped", connection->peer());
        return;
      }
      statusUpdate(envelope.status_update());
      break;
    }
    default:
      counter("invalid_messages").increment();
      log()->warn("unexpected message {} from {}", static_cast<int>(envelope.message_case()),
                  connection->peer());
  }
}

void Core::registerAgent(const net::ConnectionPtr& connection,
                         const internal::RegisterAgent& message) {
  counter("messages_register_agent").increment();
  if (auto known = agentByConnection.find(connection->id()); known != agentByConnection.end()) {
    // A retry on the same connection: answer again.
    internal::Envelope reply;
    reply.mutable_agent_registered()->mutable_agent_id()->set_value(known->second);
    *reply.mutable_agent_registered()->mutable_master_info() = masterInfo;
    connection->send(reply);
    return;
  }
  if (registering.count(connection->id())) return;
  auto resources = api::Resources::fromProto(message.agent_info().resources());
  if (!resources) {
    internal::Envelope reply;
    reply.mutable_agent_refused()->set_message(
        resources.status().withContext("agent resources").message());
    connection->send(reply);
    return;
  }
  std::string id = fmt::format("{}-S{}", masterId, nextAgent++);
  v1::AgentInfo info = message.agent_info();
  info.mutable_id()->set_value(id);
  registering.insert(connection->id());
  std::string pid = message.pid();
  std::string version = message.version();
  // The agent is told its id only once the registry holds it.
  writeRegistry(id, info, RegistryState::kAdmitted,
                [this, connection, id, info, pid, version](api::Status written) {
                  registering.erase(connection->id());
                  if (!written || !connection->open()) {
                    connection->close();
                    return;
                  }
                  admitAgent(connection, id, info, pid, version, nullptr);
                });
}

void Core::reregisterAgent(const net::ConnectionPtr& connection,
                           const internal::ReregisterAgent& message) {
  counter("messages_reregister_agent").increment();
  const std::string id = message.agent_info().id().value();
  auto refuse = [&](const std::string& text) {
    internal::Envelope reply;
    reply.mutable_agent_refused()->set_message(text);
    connection->send(reply);
  };
  if (id.empty()) return refuse("re-registration without an agent id");
  if (registering.count(connection->id())) return;
  auto entry = registry.find(id);
  if (entry != registry.end() && entry->second.state == RegistryState::kGone) {
    return refuse(fmt::format("agent '{}' was marked gone", id));
  }
  if (!api::Resources::fromProto(message.agent_info().resources())) {
    return refuse(fmt::format("agent '{}' has invalid resources", id));
  }
  auto copy = std::make_shared<internal::ReregisterAgent>(message);
  if (entry != registry.end() && entry->second.state == RegistryState::kAdmitted) {
    admitAgent(connection, id, message.agent_info(), message.pid(), message.version(), copy.get());
    return;
  }
  // The registry is authoritative for the reservations of an agent it knows (the agent may have
  // missed an UNRESERVE). One it does not know (a registry that lost its data, as an in-memory
  // one after a master restart) is admitted with the reservations the agent checkpointed.
  api::Resources reserved;
  if (entry != registry.end()) {
    reserved = entry->second.reserved;
  } else if (auto reported = api::Resources::fromProto(message.checkpointed_resources())) {
    reserved = dynamicallyReserved(*reported);
    if (!reserved.empty()) {
      log()->info("agent '{}' unknown to the registry: adopting its reservations {}", id,
                  reserved.toString());
    }
  } else {
    log()->warn("agent '{}' reports invalid reservations; ignoring them: {}", id,
                reported.status().toString());
  }
  registering.insert(connection->id());
  double unreachableTime = 0;
  writeRegistryEntry(id, message.agent_info(), RegistryState::kAdmitted, unreachableTime,
                     std::move(reserved), [this, connection, id, copy](api::Status written) {
                       registering.erase(connection->id());
                       if (!written || !connection->open()) {
                         connection->close();
                         return;
                       }
                       admitAgent(connection, id, copy->agent_info(), copy->pid(), copy->version(),
                                  copy.get());
                     });
}

void Core::admitAgent(const net::ConnectionPtr& connection, const std::string& id,
                      const v1::AgentInfo& info, const std::string& pid, const std::string& version,
                      const internal::ReregisterAgent* reregister) {
  bool existed = agents.count(id) > 0;
  AgentEntry& agent = agents[id];
  if (existed && agent.connection && agent.connection != connection) {
    agentByConnection.erase(agent.connection->id());
    agent.connection->close();
  }
  agent.id = id;
  agent.info = info;
  agent.info.mutable_id()->set_value(id);
  agent.pid = pid;
  agent.version = version;
  agent.connection = connection;
  agent.status = AgentStatus::kActive;
  if (agent.removalTimer) agent.removalTimer->cancel();
  agent.removalTimer.reset();
  // The registry's dynamic reservations: the agent reports its resources without them.
  auto known = registry.find(id);
  applyReservations(agent, known != registry.end() ? known->second.reserved : api::Resources());
  double now = nowSeconds();
  if (!existed || agent.registeredTime == 0) agent.registeredTime = now;
  if (reregister) agent.reregisteredTime = now;
  agentByConnection[connection->id()] = id;

  if (reregister) {
    for (const auto& framework : reregister->frameworks()) {
      const std::string& frameworkId = framework.id().value();
      if (frameworkId.empty() || frameworks.count(frameworkId)) continue;
      FrameworkEntry& entry = frameworks[frameworkId];
      entry.id = frameworkId;
      entry.info = framework;
      entry.recovered = true;
      entry.registeredTime = now;
      entry.roles = rolesOf(framework);
      // Not subscribed to this master: it is removed (its tasks killed) unless it subscribes
      // within its failover_timeout, or --agent_reregister_timeout when it has none.
      runtime::Duration timeout = options.agentReregisterTimeout;
      if (framework.failover_timeout() > 0) {
        timeout = std::chrono::duration_cast<runtime::Duration>(
            std::chrono::duration<double>(framework.failover_timeout()));
      }
      armFailoverTimer(entry, timeout);
    }
    for (const auto& reported : reregister->tasks()) {
      TaskKey key{reported.framework_id().value(), reported.info().task_id().value()};
      TaskEntry& task = tasks[key];
      bool fresh = task.frameworkId.empty();
      task.info = reported.info();
      task.info.mutable_agent_id()->set_value(id);
      task.frameworkId = key.first;
      task.agentId = id;
      task.role = reported.role();
      v1::TaskState state = reported.has_state() ? reported.state() : reported.status().state();
      if (fresh || task.state != state) task.statuses.emplace_back(state, now);
      task.state = state;
      if (reported.has_status()) task.latestStatus = reported.status();
      auto resources = api::Resources::fromProto(reported.info().resources());
      task.resources = resources ? *resources : api::Resources();
      task.recovered = isTerminal(state);
      if (isTerminal(reported.status().state())) task.terminalUuid = reported.status().uuid();
    }
  }

  api::Resources total = agent.total;
  if (agent.inAllocator) {
    allocatorCall(
        [id, total](api::Allocator& allocator) {
          api::Status updated = allocator.updateAgent(id, total);
          if (!updated) return updated;
          return allocator.activateAgent(id);
        },
        fmt::format("re-activating agent '{}'", id));
  } else {
    auto used = allocationsOfAgent(id);
    allocatorCall([id, total,
                   used](api::Allocator& allocator) { return allocator.addAgent(id, total, used); },
                  fmt::format("adding agent '{}'", id));
    agent.inAllocator = true;
  }

  internal::Envelope reply;
  reply.mutable_agent_registered()->mutable_agent_id()->set_value(id);
  *reply.mutable_agent_registered()->mutable_master_info() = masterInfo;
  reply.mutable_agent_registered()->set_reregistered(reregister != nullptr);
  connection->send(reply);
  // Every (re-)registration: the agent's checkpoint then matches what the master applied.
  sendCheckpointedResources(agent);
  log()->info("agent '{}' ({}) {}registered from {}", id, info.hostname(), reregister ? "re-" : "",
              connection->peer());
}

void Core::onAgentClosed(const net::ConnectionPtr& connection, const api::Status& reason) {
  registering.erase(connection->id());
  forgetAgentAuthentication(connection->id());
  auto known = agentByConnection.find(connection->id());
  if (known == agentByConnection.end()) return;
  std::string id = known->second;
  agentByConnection.erase(known);
  auto agent = agents.find(id);
  if (agent == agents.end() || agent->second.connection != connection) return;
  log()->warn("agent '{}' disconnected: {}", id, reason.toString());
  agentDisconnected(agent->second);
}

void Core::agentDisconnected(AgentEntry& agent) {
  agent.connection.reset();
  agent.status = AgentStatus::kDisconnected;
  std::string id = agent.id;
  allocatorCall([id](api::Allocator& allocator) { return allocator.deactivateAgent(id); },
                fmt::format("deactivating agent '{}'", id));
  std::vector<std::string> rescinded;
  for (const auto& [offerId, offer] : offers) {
    if (offer.agentId == id) rescinded.push_back(offerId);
  }
  for (const auto& offerId : rescinded) rescindOffer(offerId, true);
  auto timeout = options.agentPingTimeout * options.maxAgentPingTimeouts;
  agent.removalTimer = strand->schedule(
      timeout, guarded(weak_from_this(), [id](Core& core) { core.markUnreachable(id); }));
}

void Core::markUnreachable(const std::string& id) {
  auto agent = agents.find(id);
  if (agent == agents.end() || agent->second.status != AgentStatus::kDisconnected) return;
  writeRegistry(id, agent->second.info, RegistryState::kUnreachable, [this, id](api::Status ok) {
    auto agent = agents.find(id);
    if (!ok || agent == agents.end()) return;
    if (agent->second.status == AgentStatus::kActive) {
      // It came back while the mark was being written: admit it again.
      writeRegistry(id, agent->second.info, RegistryState::kAdmitted, [](api::Status) {});
      return;
    }
    log()->warn("agent '{}' marked unreachable", id);
    agent->second.status = AgentStatus::kUnreachable;
    agent->second.inAllocator = false;
    allocatorCall([id](api::Allocator& allocator) { return allocator.removeAgent(id); },
                  fmt::format("removing agent '{}'", id));
    counter("slave_removals").increment();
    std::vector<TaskKey> lost;
    for (auto& [key, task] : tasks) {
      if (task.agentId != id || isTerminal(task.state)) continue;
      auto framework = frameworks.find(task.frameworkId);
      bool partitionAware = framework != frameworks.end() && framework->second.partitionAware();
      v1::TaskState state = partitionAware ? v1::TASK_UNREACHABLE : v1::TASK_LOST;
      v1::TaskStatus status =
          masterStatus(key.second, id, state, v1::TaskStatus::REASON_AGENT_REMOVED,
                       fmt::format("agent '{}' is unreachable", id));
      int64_t nanos = static_cast<int64_t>(nowSeconds() * 1e9);
      status.mutable_unreachable_time()->set_nanoseconds(nanos);
      task.state = state;
      task.latestStatus = status;
      task.statuses.emplace_back(state, status.timestamp());
      task.recovered = true;  // removeAgent gave everything on the agent back
      sendUpdate(task.frameworkId, status);
      if (!partitionAware) lost.push_back(key);
    }
    for (const auto& key : lost) completeTask(key);
    sendAgentFailure(*this, id);
  });
}

void Core::markGone(const std::string& id, std::function<void(api::Status)> done) {
  auto known = registry.find(id);
  auto agent = agents.find(id);
  if (known == registry.end() && agent == agents.end()) {
    done(api::notFound("agent '{}' is unknown", id));
    return;
  }
  if (known != registry.end() && known->second.state == RegistryState::kGone) {
    done(api::Status::ok());  // already gone: nothing more to do (Mesos answers 200 too)
    return;
  }
  const v1::AgentInfo& info = agent != agents.end() ? agent->second.info : known->second.info;
  // Compare-and-set on the version last read or written: a concurrent write (the agent being
  // marked unreachable, say) makes this one fail rather than be silently overwritten.
  writeRegistry(id, info, RegistryState::kGone, [this, id, done](api::Status written) {
    if (!written) {
      done(written.withContext("marking agent '{}' gone", id));
      return;
    }
    removeGoneAgent(id);
    done(api::Status::ok());
  });
}

void Core::removeGoneAgent(const std::string& id) {
  log()->warn("agent '{}' marked gone by the operator", id);
  counter("slave_removals").increment();
  if (auto found = agents.find(id); found != agents.end()) {
    AgentEntry& agent = found->second;
    if (agent.removalTimer) agent.removalTimer->cancel();
    std::vector<std::string> rescinded;
    for (const auto& [offerId, offer] : offers) {
      if (offer.agentId == id) rescinded.push_back(offerId);
    }
    // removeAgent below gives the offered resources back with everything else.
    for (const auto& offerId : rescinded) rescindOffer(offerId, false);
    if (agent.inAllocator) {
      allocatorCall([id](api::Allocator& allocator) { return allocator.removeAgent(id); },
                    fmt::format("removing agent '{}'", id));
    }
    if (net::ConnectionPtr connection = agent.connection) {
      internal::Envelope refused;
      refused.mutable_agent_refused()->set_message(
          fmt::format("agent '{}' was marked gone by the operator", id));
      connection->send(refused);
      agentByConnection.erase(connection->id());
      // The agent closes the connection when refused; closing it here at once would drop the
      // refusal still queued, so a peer that stays is closed after a ping timeout.
      auto delay = std::max<runtime::Duration>(options.agentPingTimeout, std::chrono::seconds(1));
      // Fire and forget: the handle going does not cancel the timer.
      (void)strand->schedule(
          delay, guarded(weak_from_this(), [connection](Core&) { connection->close(); }));
    }
    agents.erase(found);
  }

  // Mesos: TASK_GONE_BY_OPERATOR for PARTITION_AWARE frameworks, TASK_LOST for the others.
  std::vector<TaskKey> removed;
  for (auto& [key, task] : tasks) {
    if (task.agentId != id) continue;
    removed.push_back(key);
    if (isTerminal(task.state)) continue;  // its acknowledgement can no longer reach the agent
    auto framework = frameworks.find(task.frameworkId);
    bool partitionAware = framework != frameworks.end() && framework->second.partitionAware();
    v1::TaskState state = partitionAware ? v1::TASK_GONE_BY_OPERATOR : v1::TASK_LOST;
    v1::TaskStatus status =
        masterStatus(key.second, id, state, v1::TaskStatus::REASON_AGENT_REMOVED_BY_OPERATOR,
                     fmt::format("agent '{}' was marked gone by the operator", id));
    task.state = state;
    task.latestStatus = status;
    task.statuses.emplace_back(state, status.timestamp());
    task.recovered = true;  // removeAgent gave everything on the agent back
    sendUpdate(task.frameworkId, status);
  }
  for (const auto& key : removed) completeTask(key);
  sendAgentFailure(*this, id);
}

void Core::statusUpdate(const internal::StatusUpdate& update) {
  counter("messages_status_update").increment();
  const v1::TaskStatus& status = update.status();
  TaskKey key{update.framework_id().value(), status.task_id().value()};
  if (auto it = tasks.find(key); it != tasks.end()) {
    TaskEntry& task = it->second;
    v1::TaskState latest = update.has_latest_state() ? update.latest_state() : status.state();
    bool duplicate =
        task.latestStatus && task.latestStatus->uuid() == status.uuid() && !status.uuid().empty();
    if (!duplicate) {
      task.statuses.emplace_back(status.state(),
                                 status.has_timestamp() ? status.timestamp() : nowSeconds());
    }
    task.state = latest;
    task.latestStatus = status;
    if (isTerminal(status.state())) task.terminalUuid = status.uuid();
    if (isTerminal(latest) && !task.recovered) {
      task.recovered = true;
      recover(task.frameworkId, task.agentId, task.resources, std::nullopt);
    }
  } else {
    counter("messages_status_update_unknown_task").increment();
  }
  sendUpdate(key.first, status);
}

}  // namespace tessera::kernel::master
