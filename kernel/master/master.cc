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
#include "kernel/master/master_util.h"
#include "kernel/net/recordio.h"
#include "kernel/net/v1_json.h"
#include "kernel/runtime/logging.h"

namespace tessera::kernel::master {

using detail::answer;
using detail::guarded;
using detail::log;
using detail::rolesOf;

namespace {

const char* kRegistryAgents = "/master/registry/agents";
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
                                double unreachableTime, const api::Resources& reserved) {
  return fmt::format(
      R"({{"state":"{}","unreachable_time":{},"agent_info":{},"reserved_resources":{}}})",
      registryStateName(state), unreachableTime, net::messageToV1Json(info), reserved.toJson());
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
    // Absent in entries written before reservations were kept.
    if (auto reserved = object->getArray("reserved_resources")) {
      std::ostringstream text;
      reserved->stringify(text);
      auto resources = api::Resources::parse(text.str());
      if (!resources) return resources.status().withContext("reserved resources");
      entry.reserved = std::move(resources).value();
    }
    return entry;
  } catch (const std::exception& e) {
    return api::invalidArgument("malformed registry entry: {}", e.what());
  }
}

/// Runs `fn` on the core if it is still alive and not stopped.
}  // namespace

Core::Core(MasterServices s, MasterOptions o)
    : services(std::move(s)),
      options(std::move(o)),
      authentications(options.schedulerAuthenticationTtl) {
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
  double unreachableTime = state == RegistryState::kUnreachable ? nowSeconds() : 0;
  api::Resources reserved;
  if (auto it = registry.find(agentId); it != registry.end()) reserved = it->second.reserved;
  writeRegistryEntry(agentId, info, state, unreachableTime, std::move(reserved), std::move(done));
}

void Core::writeReservations(const std::string& agentId, api::Resources reserved,
                             std::function<void(api::Status)> done) {
  auto it = registry.find(agentId);
  if (it == registry.end() || it->second.state != RegistryState::kAdmitted) {
    done(api::failedPrecondition("agent '{}' is not admitted in the registry", agentId));
    return;
  }
  writeRegistryEntry(agentId, it->second.info, it->second.state, it->second.unreachableTime,
                     std::move(reserved), std::move(done));
}

void Core::writeRegistryEntry(const std::string& agentId, const v1::AgentInfo& info,
                              RegistryState state, double unreachableTime, api::Resources reserved,
                              std::function<void(api::Status)> done) {
  uint64_t expected = 0;
  if (auto it = registry.find(agentId); it != registry.end()) expected = it->second.version;
  storeSet(fmt::format("{}/{}", kRegistryAgents, agentId),
           encodeRegistryEntry(info, state, unreachableTime, reserved), expected,
           [this, agentId, info, state, unreachableTime, reserved,
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
             entry.reserved = reserved;
             done(api::Status::ok());
           });
}

api::Status Core::recoverRegistry() {
  // Up to kWindow reads in flight: with the registry in ZooKeeper each read is a round trip,
  // and one at a time a thousand agents cost a new leader seconds.
  constexpr size_t kWindow = 256;
  struct Recovery {
    std::promise<api::Status> done;
    bool finished = false;
    std::vector<std::string> ids;
    size_t next = 0;
    size_t inFlight = 0;
    std::function<void()> step;
    void finish(api::Status status) {
      if (finished) return;
      finished = true;
      done.set_value(std::move(status));
    }
  };
  auto recovery = std::make_shared<Recovery>();
  auto future = recovery->done.get_future();
  api::StateStore* store = services.state;
  runtime::StrandExecutor* executor = strand.get();
  Recovery* raw = recovery.get();
  recovery->step = [this, raw, store, executor] {
    while (!raw->finished && raw->inFlight < kWindow && raw->next < raw->ids.size()) {
      std::string id = raw->ids[raw->next++];
      ++raw->inFlight;
      store->get(fmt::format("{}/{}", kRegistryAgents, id), *executor,
                 [this, raw, id](api::Result<std::optional<api::StateEntry>> entry) {
                   --raw->inFlight;
                   if (raw->finished) return;
                   if (!entry)
                     return raw->finish(entry.status().withContext("reading the registry"));
                   if (entry->has_value()) {
                     auto decoded = decodeRegistryEntry((*entry)->value);
                     if (!decoded) {
                       return raw->finish(
                           decoded.status().withContext("registry entry of agent '{}'", id));
                     }
                     decoded->version = (*entry)->version;
                     registry[id] = std::move(decoded).value();
                   }
                   raw->step();
                 });
    }
    if (raw->next == raw->ids.size() && raw->inFlight == 0) raw->finish(api::Status::ok());
  };
  store->children(kRegistryAgents, *executor,
                  [raw](api::Result<std::vector<std::string>> children) {
                    if (!children) {
                      return raw->finish(children.status().withContext("reading the registry"));
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
  if ((core.services.authenticator == nullptr) !=
      (core.services.authenticatorExecutor == nullptr)) {
    return api::invalidArgument("the master needs the authenticator's executor with it");
  }
  if ((core.services.authorizer == nullptr) != (core.services.authorizerExecutor == nullptr)) {
    return api::invalidArgument("the master needs the authorizer's executor with it");
  }
  if (core.options.authenticateFrameworks && core.services.authenticator == nullptr) {
    return api::invalidArgument("'--authenticate_frameworks' needs an authenticator");
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
  if (api::Status recovered = core.recoverPolicy(); !recovered) {
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
  // Weights and quota reach the allocator before any agent or framework does.
  core.services.allocatorExecutor->post([&] {
    api::Status status = allocator->initialize(std::move(allocatorOptions));
    if (status) status = core.applyPolicy(*allocator);
    initialized.set_value(std::move(status));
  });
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
