#include "kernel/master/master.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <arpa/inet.h>
#include <fmt/format.h>

#include <boost/uuid/uuid.hpp>
#include <boost/uuid/uuid_generators.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <future>
#include <sstream>

#include "kernel/master/master_core.h"
#include "kernel/net/recordio.h"
#include "kernel/net/v1_json.h"
#include "kernel/runtime/logging.h"

namespace tessera::kernel::master {

namespace {

const char* kRegistryAgents = "/master/registry/agents";

std::shared_ptr<spdlog::logger> log() {
  static auto logger = runtime::logger("master");
  return logger;
}

std::string_view registryStateName(RegistryState state) {
  switch (state) {
    case RegistryState::kAdmitted:
      return "admitted";
    case RegistryState::kUnreachable:
      return "unreachable";
    case RegistryState::kGone:
      return "gone";
  }
  return "admitted";
}

std::string encodeRegistryEntry(const v1::AgentInfo& info, RegistryState state,
                                double unreachableTime) {
  return fmt::format(R"({{"state":"{}","unreachable_time":{},"agent_info":{}}})",
                     registryStateName(state), unreachableTime, net::messageToV1Json(info));
}

api::Result<RegistryEntry> decodeRegistryEntry(const std::string& text) {
  try {
    Poco::JSON::Parser parser;
    auto object = parser.parse(text).extract<Poco::JSON::Object::Ptr>();
    RegistryEntry entry;
    std::string state = object->optValue<std::string>("state", "admitted");
    if (state == "unreachable") {
      entry.state = RegistryState::kUnreachable;
    } else if (state == "gone") {
      entry.state = RegistryState::kGone;
    }
    entry.unreachableTime = object->optValue<double>("unreachable_time", 0);
    std::ostringstream info;
    object->getObject("agent_info")->stringify(info);
    auto parsed = net::parseV1Json<v1::AgentInfo>(info.str());
    if (!parsed) return parsed.status();
    entry.info = std::move(parsed).value();
    return entry;
  } catch (const std::exception& e) {
    return api::invalidArgument("malformed registry entry: {}", e.what());
  }
}

/// Runs `fn` on the core if it is still alive and not stopped.
template <typename Fn>
std::function<void()> guarded(std::weak_ptr<Core> weak, Fn fn) {
  return [weak = std::move(weak), fn = std::move(fn)]() mutable {
    auto core = weak.lock();
    if (!core || core->stopped) return;
    fn(*core);
  };
}

std::string errorJson(std::string_view message) {
  Poco::JSON::Object object;
  object.set("message", std::string(message));
  std::ostringstream out;
  object.stringify(out);
  return out.str();
}

void answer(const std::shared_ptr<net::HttpStream>& stream, int status, std::string_view message) {
  stream->start(status, "application/json");
  if (!message.empty()) stream->write(errorJson(message));
  stream->end();
}

/// The framework's roles: `roles` (MULTI_ROLE), else the deprecated `role`, else "*".
std::vector<std::string> rolesOf(const v1::FrameworkInfo& info) {
  if (info.roles_size() > 0) return {info.roles().begin(), info.roles().end()};
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  return {info.has_role() ? info.role() : std::string("*")};
#pragma GCC diagnostic pop
}

}  // namespace

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool isTerminal(v1::TaskState state) {
  switch (state) {
    case v1::TASK_FINISHED:
    case v1::TASK_FAILED:
    case v1::TASK_KILLED:
    case v1::TASK_ERROR:
    case v1::TASK_LOST:
    case v1::TASK_DROPPED:
    case v1::TASK_GONE:
    case v1::TASK_GONE_BY_OPERATOR:
      return true;
    default:
      return false;
  }
}

Core::Core(MasterServices s, MasterOptions o) : services(std::move(s)), options(std::move(o)) {
  masterId = boost::uuids::to_string(boost::uuids::random_generator()());
  strand = services.runtime->makeExecutor();
  if (options.hostname.empty()) options.hostname = options.ip;
}

api::Counter& Core::counter(const std::string& name) {
  return services.metrics->counter(fmt::format("master/{}", name));
}

std::string Core::pid() const { return fmt::format("master@{}:{}", options.ip, options.httpPort); }

// --- state store ------------------------------------------------------------------------------

void Core::storeSet(const std::string& key, std::string value, uint64_t expected,
                    std::function<void(api::Result<uint64_t>)> done) {
  {
    std::lock_guard lock(pendingMutex);
    ++pendingStoreCalls;
  }
  // The reply holds the core: the strand it is posted to lives in it.
  services.state->set(
      key, std::move(value), expected, *strand,
      [self = shared_from_this(), done = std::move(done)](api::Result<uint64_t> result) {
        if (!self->stopped) done(std::move(result));
        std::lock_guard lock(self->pendingMutex);
        if (--self->pendingStoreCalls == 0) self->pendingDone.notify_all();
      });
}

void Core::writeRegistry(const std::string& agentId, const v1::AgentInfo& info, RegistryState state,
                         std::function<void(api::Status)> done) {
  uint64_t expected = 0;
  double unreachableTime = state == RegistryState::kUnreachable ? nowSeconds() : 0;
  if (auto it = registry.find(agentId); it != registry.end()) expected = it->second.version;
  storeSet(fmt::format("{}/{}", kRegistryAgents, agentId),
           encodeRegistryEntry(info, state, unreachableTime), expected,
           [this, agentId, info, state, unreachableTime,
            done = std::move(done)](api::Result<uint64_t> result) {
             if (!result) {
               log()->error("registry write for agent '{}' failed: {}", agentId,
                            result.status().toString());
               done(result.status());
               return;
             }
             RegistryEntry& entry = registry[agentId];
             entry.info = info;
             entry.state = state;
             entry.version = *result;
             entry.unreachableTime = unreachableTime;
             done(api::Status::ok());
           });
}

api::Status Core::recoverRegistry() {
  struct Recovery {
    std::promise<api::Status> done;
    std::vector<std::string> ids;
    size_t next = 0;
    std::function<void()> step;
  };
  auto recovery = std::make_shared<Recovery>();
  auto future = recovery->done.get_future();
  api::StateStore* store = services.state;
  runtime::StrandExecutor* executor = strand.get();
  Recovery* raw = recovery.get();
  recovery->step = [this, raw, store, executor] {
    if (raw->next == raw->ids.size()) {
      raw->done.set_value(api::Status::ok());
      return;
    }
    std::string id = raw->ids[raw->next++];
    store->get(
        fmt::format("{}/{}", kRegistryAgents, id), *executor,
        [this, raw, id](api::Result<std::optional<api::StateEntry>> entry) {
          if (!entry) {
            raw->done.set_value(entry.status().withContext("reading the registry"));
            return;
          }
          if (entry->has_value()) {
            auto decoded = decodeRegistryEntry((*entry)->value);
            if (!decoded) {
              raw->done.set_value(decoded.status().withContext("registry entry of agent '{}'", id));
              return;
            }
            decoded->version = (*entry)->version;
            registry[id] = std::move(decoded).value();
          }
          raw->step();
        });
  };
  store->children(kRegistryAgents, *executor,
                  [raw](api::Result<std::vector<std::string>> children) {
                    if (!children) {
                      raw->done.set_value(children.status().withContext("reading the registry"));
                      return;
                    }
                    raw->ids = std::move(children).value();
                    raw->step();
                  });
  if (future.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    // The callbacks still reference `recovery`: keep it alive.
    static std::vector<std::shared_ptr<Recovery>> leaked;
    leaked.push_back(recovery);
    return api::unavailable("timed out reading the registry");
  }
  api::Status status = future.get();
  // Break the cycle step -> raw on the strand, where the last callback ran.
  strand->call([&] {
    recovery->step = nullptr;
    return 0;
  });
  return status;
}

void Core::armReregisterTimeout() {
  bool any = false;
  for (const auto& [id, entry] : registry) {
    if (entry.state == RegistryState::kAdmitted) any = true;
  }
  if (!any) return;
  reregisterTimer = strand->schedule(
      options.agentReregisterTimeout, guarded(weak_from_this(), [](Core& core) {
        for (const auto& [id, entry] : core.registry) {
          if (entry.state != RegistryState::kAdmitted || core.agents.count(id)) continue;
          log()->warn("agent '{}' did not re-register within --agent_reregister_timeout", id);
          core.writeRegistry(id, entry.info, RegistryState::kUnreachable, [](api::Status) {});
        }
      }));
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
  switch (envelope.message_case()) {
    case internal::Envelope::kRegisterAgent:
      registerAgent(connection, envelope.register_agent());
      break;
    case internal::Envelope::kReregisterAgent:
      reregisterAgent(connection, envelope.reregister_agent());
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
  registering.insert(connection->id());
  writeRegistry(id, message.agent_info(), RegistryState::kAdmitted,
                [this, connection, id, copy](api::Status written) {
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
  agent.total = api::Resources::fromProto(info.resources()).value();
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
  log()->info("agent '{}' ({}) {}registered from {}", id, info.hostname(), reregister ? "re-" : "",
              connection->peer());
}

void Core::onAgentClosed(const net::ConnectionPtr& connection, const api::Status& reason) {
  registering.erase(connection->id());
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
  });
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

api::Status Core::authenticate(const v1::FrameworkInfo& info) {
  // Admits everyone for now: a later issue plugs the authenticator module in here (the
  // framework's principal, the HTTP Authorization header).
  (void)info;
  return api::Status::ok();
}

void Core::subscribe(const v1::scheduler::Call& call, std::shared_ptr<net::HttpStream> stream) {
  counter("messages_register_framework").increment();
  if (!call.has_subscribe()) return answer(stream, 400, "expecting 'subscribe' to be present");
  v1::FrameworkInfo info = call.subscribe().framework_info();
  if (info.user().empty()) return answer(stream, 400, "'framework_info.user' is required");
  if (info.name().empty()) return answer(stream, 400, "'framework_info.name' is required");
  std::vector<std::string> roles = rolesOf(info);
  for (const auto& role : roles) {
    if (role == "*") {
      return answer(stream, 400,
                    "subscribing to role '*' is not supported yet: name a role in "
                    "'framework_info.roles'");
    }
    if (api::Status valid = api::validateRole(role); !valid) {
      return answer(stream, 400, valid.message());
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
  if (api::Status admitted = authenticate(info); !admitted) {
    return answer(stream, 401, admitted.message());
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

api::Status Core::accept(FrameworkEntry& framework, const v1::scheduler::Call::Accept& call) {
  counter("messages_launch_tasks").increment();
  // Offers: all known, all the framework's, all on one agent; otherwise every task is dropped.
  std::string invalid;
  std::string agentId;
  api::Resources offered;
  std::vector<std::string> offerIds;
  for (const auto& offerId : call.offer_ids()) {
    auto offer = offers.find(offerId.value());
    if (offer == offers.end()) {
      invalid = fmt::format("offer '{}' is no longer valid", offerId.value());
      continue;
    }
    if (offer->second.frameworkId != framework.id) {
      invalid = fmt::format("offer '{}' belongs to another framework", offerId.value());
      continue;
    }
    if (!agentId.empty() && offer->second.agentId != agentId) {
      invalid = "offers span more than one agent";
    }
    if (agentId.empty()) agentId = offer->second.agentId;
    if (std::find(offerIds.begin(), offerIds.end(), offerId.value()) != offerIds.end()) {
      invalid = fmt::format("offer '{}' is listed twice", offerId.value());
      continue;
    }
    offerIds.push_back(offerId.value());
  }
  if (call.offer_ids_size() == 0) invalid = "no offer ids";
  std::string role;
  // The offers are used up either way.
  std::map<std::string, api::Resources> offeredByAgent;
  for (const auto& offerId : offerIds) {
    OfferEntry& offer = offers.at(offerId);
    offeredByAgent[offer.agentId] += offer.resources;
    if (role.empty()) role = offer.role;
    offered += offer.resources;
    offers.erase(offerId);
  }
  counter("offers_accepted").increment(offerIds.size());
  auto agent = agents.find(agentId);
  if (invalid.empty() && (agent == agents.end() || agent->second.status != AgentStatus::kActive)) {
    invalid = fmt::format("agent '{}' is not active", agentId);
  }
  if (!invalid.empty()) {
    for (const auto& [agent, resources] : offeredByAgent) {
      recover(framework.id, agent, resources, std::nullopt);
    }
    for (const auto& operation : call.operations()) {
      if (operation.type() != v1::Offer::Operation::LAUNCH) continue;
      for (const auto& task : operation.launch().task_infos()) {
        v1::TaskState state = framework.partitionAware() ? v1::TASK_DROPPED : v1::TASK_LOST;
        sendUpdate(framework.id, masterStatus(task.task_id().value(), agentId, state,
                                              v1::TaskStatus::REASON_INVALID_OFFERS, invalid));
      }
    }
    return api::Status::ok();
  }

  api::Resources remaining = offered;
  std::set<std::string> seen;
  for (const auto& operation : call.operations()) {
    switch (operation.type()) {
      case v1::Offer::Operation::LAUNCH:
        for (const auto& taskInfo : operation.launch().task_infos()) {
          const std::string& taskId = taskInfo.task_id().value();
          auto resources = api::Resources::fromProto(taskInfo.resources());
          std::string error;
          if (taskId.empty()) {
            error = "task has no id";
          } else if (seen.count(taskId) || tasks.count({framework.id, taskId})) {
            error = fmt::format("task id '{}' is already in use", taskId);
          } else if (!resources) {
            error = resources.status().message();
          } else if (resources->empty()) {
            error = fmt::format("task '{}' uses no resources", taskId);
          } else if (!remaining.contains(*resources)) {
            error = fmt::format("task '{}' uses resources {} that are not in the offers ({})",
                                taskId, resources->toString(), remaining.toString());
          } else if (!taskInfo.has_command() && !taskInfo.has_executor()) {
            error = fmt::format("task '{}' has neither a command nor an executor", taskId);
          } else if (taskInfo.has_agent_id() && taskInfo.agent_id().value() != agentId) {
            error = fmt::format("task '{}' names agent '{}', not the offers' agent '{}'", taskId,
                                taskInfo.agent_id().value(), agentId);
          }
          if (!taskId.empty()) seen.insert(taskId);
          if (!error.empty()) {
            counter("invalid_status_updates").increment(0);
            sendUpdate(framework.id, masterStatus(taskId, agentId, v1::TASK_ERROR,
                                                  v1::TaskStatus::REASON_TASK_INVALID, error));
            continue;
          }
          remaining -= *resources;
          TaskEntry& task = tasks[{framework.id, taskId}];
          task.info = taskInfo;
          task.info.mutable_agent_id()->set_value(agentId);
          task.frameworkId = framework.id;
          task.agentId = agentId;
          task.role = role;
          task.state = v1::TASK_STAGING;
          task.resources = *resources;
          task.statuses.emplace_back(v1::TASK_STAGING, nowSeconds());
          internal::Envelope run;
          *run.mutable_run_task()->mutable_framework() = framework.info;
          *run.mutable_run_task()->mutable_task() = task.info;
          run.mutable_run_task()->set_role(role);
          sendToAgent(agentId, run);
          counter("tasks_launched").increment();
        }
        break;
      case v1::Offer::Operation::RESERVE:
      case v1::Offer::Operation::UNRESERVE: {
        bool reserve = operation.type() == v1::Offer::Operation::RESERVE;
        auto to = api::Resources::fromProto(reserve ? operation.reserve().resources()
                                                    : operation.unreserve().resources());
        if (!to) {
          log()->warn("framework '{}': dropping invalid operation: {}", framework.id,
                      to.status().toString());
          break;
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
        if (!remaining.contains(change.from)) {
          log()->warn("framework '{}': dropping operation on resources not offered: {}",
                      framework.id, change.from.toString());
          break;
        }
        remaining -= change.from;
        remaining += change.to;
        std::string frameworkId = framework.id;
        allocatorCall(
            [frameworkId, agentId, change](api::Allocator& allocator) {
              std::vector<api::ReservationOperation> operations{change};
              return allocator.updateAllocation(frameworkId, agentId, operations);
            },
            fmt::format("applying a reservation for framework '{}'", frameworkId));
        break;
      }
      default:
        log()->warn("framework '{}': unsupported operation {}", framework.id,
                    static_cast<int>(operation.type()));
    }
  }
  auto refuse = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(call.filters().refuse_seconds()));
  if (!remaining.empty()) recover(framework.id, agentId, remaining, refuse);
  return api::Status::ok();
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

void Core::reconcile(FrameworkEntry& framework, const v1::scheduler::Call::Reconcile& call) {
  counter("messages_reconcile_tasks").increment();
  auto latest = [&](const TaskEntry& task) {
    v1::TaskStatus status =
        task.latestStatus ? *task.latestStatus
                          : masterStatus(task.info.task_id().value(), task.agentId, task.state,
                                         v1::TaskStatus::REASON_RECONCILIATION, "");
    status.set_state(task.state);
    status.clear_uuid();
    status.set_reason(v1::TaskStatus::REASON_RECONCILIATION);
    status.set_source(v1::TaskStatus::SOURCE_MASTER);
    status.mutable_agent_id()->set_value(task.agentId);
    return status;
  };
  if (call.tasks_size() == 0) {
    for (const auto& [key, task] : tasks) {
      if (task.frameworkId == framework.id) sendUpdate(framework.id, latest(task));
    }
    return;
  }
  for (const auto& wanted : call.tasks()) {
    const std::string& taskId = wanted.task_id().value();
    auto task = tasks.find({framework.id, taskId});
    if (task != tasks.end()) {
      sendUpdate(framework.id, latest(task->second));
      continue;
    }
    const std::string& agentId = wanted.agent_id().value();
    auto agent = agents.find(agentId);
    v1::TaskState state;
    if (agent != agents.end() && agent->second.status == AgentStatus::kUnreachable) {
      state = framework.partitionAware() ? v1::TASK_UNREACHABLE : v1::TASK_LOST;
    } else if (agent != agents.end()) {
      state = framework.partitionAware() ? v1::TASK_GONE : v1::TASK_LOST;
    } else {
      state = framework.partitionAware() ? v1::TASK_UNKNOWN : v1::TASK_LOST;
    }
    sendUpdate(framework.id,
               masterStatus(taskId, agentId, state, v1::TaskStatus::REASON_RECONCILIATION,
                            fmt::format("reconciliation: task '{}' is unknown", taskId)));
  }
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
    return answer(stream, 400, fmt::format("malformed call: {}", parsed.status().message()));
  const v1::scheduler::Call& call = *parsed;
  if (call.type() == v1::scheduler::Call::SUBSCRIBE) return subscribe(call, std::move(stream));
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
    case v1::scheduler::Call::ACCEPT:
      if (!needs(call.has_accept(), "accept")) return;
      (void)accept(framework, call.accept());
      break;
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

// --- lifecycle ------------------------------------------------------------------------------

void Core::shutdownOnStrand() {
  stopped = true;
  if (reregisterTimer) reregisterTimer->cancel();
  for (auto& [id, agent] : agents) {
    if (agent.removalTimer) agent.removalTimer->cancel();
  }
  for (auto& [id, framework] : frameworks) {
    if (framework.heartbeatTimer) framework.heartbeatTimer->cancel();
    if (framework.failoverTimer) framework.failoverTimer->cancel();
    if (framework.stream) framework.stream->end();
    framework.stream.reset();
  }
}

// --- Master ---------------------------------------------------------------------------------

struct Master::Impl {
  std::shared_ptr<Core> core;
  bool started = false;
  bool routesAdded = false;
};

Master::Master(MasterServices services, MasterOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->core = std::make_shared<Core>(std::move(services), std::move(options));
}

Master::~Master() { stop(); }

const std::string& Master::id() const { return impl_->core->masterId; }

uint16_t Master::transportPort() const { return impl_->core->transportPortValue; }

api::Status Master::start() {
  Core& core = *impl_->core;
  if (impl_->started) return api::failedPrecondition("the master is already started");
  if (!core.services.runtime || !core.services.metrics || !core.services.router ||
      !core.services.state || !core.services.allocator || !core.services.allocatorExecutor) {
    return api::invalidArgument("the master needs every one of its services");
  }
  impl_->started = true;
  core.startTime = nowSeconds();

  v1::MasterInfo& info = core.masterInfo;
  info.set_id(core.masterId);
  in_addr address{};
  if (inet_pton(AF_INET, core.options.ip.c_str(), &address) == 1) info.set_ip(address.s_addr);
  info.set_port(core.options.httpPort);
  info.set_pid(core.pid());
  info.set_hostname(core.options.hostname);
  info.set_version(core.options.version.version.empty() ? "0.1.0" : core.options.version.version);
  info.mutable_address()->set_hostname(core.options.hostname);
  info.mutable_address()->set_ip(core.options.ip);
  info.mutable_address()->set_port(core.options.httpPort);

  if (api::Status recovered = core.recoverRegistry(); !recovered) {
    stop();
    return recovered;
  }

  // The allocator's offers come back on its executor; they are handed to the strand.
  std::weak_ptr<Core> weak = impl_->core;
  runtime::StrandExecutor* strand = core.strand.get();
  api::AllocatorOptions allocatorOptions;
  allocatorOptions.offerCallback = [weak, strand](std::string_view frameworkId,
                                                  std::vector<api::Offer> offers) {
    if (auto alive = weak.lock()) {
      strand->post(guarded(
          weak, [id = std::string(frameworkId), offers = std::move(offers)](Core& core) mutable {
            core.onOffers(id, std::move(offers));
          }));
    }
  };
  std::promise<api::Status> initialized;
  api::Allocator* allocator = core.services.allocator;
  core.services.allocatorExecutor->post(
      [&] { initialized.set_value(allocator->initialize(std::move(allocatorOptions))); });
  if (api::Status status = initialized.get_future().get(); !status) {
    stop();
    return status.withContext("initializing the allocator");
  }

  net::TransportHandlers handlers;
  handlers.onMessage = net::typedMessageHandler<internal::Envelope>(
      [weak](const net::ConnectionPtr& connection, internal::Envelope envelope) {
        auto core = weak.lock();
        if (core && !core->stopped) core->onAgentMessage(connection, std::move(envelope));
      });
  handlers.onClose = [weak](const net::ConnectionPtr& connection, const api::Status& reason) {
    auto core = weak.lock();
    if (core && !core->stopped) core->onAgentClosed(connection, reason);
  };
  net::TransportServerOptions transportOptions;
  transportOptions.address = core.options.ip;
  transportOptions.port = core.options.transportPort;
  transportOptions.transport.heartbeatInterval =
      std::chrono::duration_cast<std::chrono::milliseconds>(core.options.agentPingTimeout);
  transportOptions.transport.maxMissedHeartbeats =
      static_cast<int>(std::max<int64_t>(1, core.options.maxAgentPingTimeouts));
  core.transport = std::make_unique<net::TransportServer>(*core.services.runtime, *core.strand,
                                                          std::move(handlers), transportOptions);
  if (api::Status listening = core.transport->start(); !listening) {
    stop();
    return listening.withContext("starting the agent transport");
  }
  core.transportPortValue = core.transport->port();

  impl_->routesAdded = true;
  if (api::Status routes = core.addRoutes(); !routes) {
    stop();
    return routes;
  }
  core.addMetrics();
  core.strand->call([&] {
    core.armReregisterTimeout();
    return 0;
  });
  log()->info("master '{}' started; agents connect on port {}", core.masterId,
              core.transportPortValue);
  return api::Status::ok();
}

void Master::stop() {
  if (!impl_ || !impl_->started) return;
  impl_->started = false;
  Core& core = *impl_->core;
  if (impl_->routesAdded) core.services.router->removeRoutes(core.strand.get());
  core.services.metrics->removeGauges(&core);
  if (core.transport) core.transport->stop();
  core.transport.reset();
  core.strand->call([&] {
    core.shutdownOnStrand();
    return 0;
  });
  {
    std::unique_lock lock(core.pendingMutex);
    core.pendingDone.wait_for(lock, std::chrono::seconds(10),
                              [&] { return core.pendingStoreCalls == 0; });
  }
  core.strand->drain();
}

}  // namespace tessera::kernel::master
