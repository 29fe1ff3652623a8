// The master connection: finding the leading master and its transport port, connecting with
// backoff, (re)registering, and dispatching what the master sends.

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <random>
#include <set>

#include "kernel/agent/agent_core.h"
#include "kernel/net/http_client.h"
#include "tessera/api/task_state.h"

namespace tessera::kernel::agent {

using api::isTerminal;
using detail::cancelTimer;
using detail::kAgentVersion;
using detail::kConnectWatchdog;
using detail::kDiscoveryTimeout;

api::Result<std::pair<std::string, uint16_t>> parseMaster(std::string master) {
  if (master.rfind("http://", 0) == 0) master = master.substr(7);
  while (!master.empty() && master.back() == '/') master.pop_back();
  if (master.rfind("zk://", 0) == 0) {
    return api::invalidArgument("flag '--master': zk:// masters are not supported yet");
  }
  auto colon = master.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return api::invalidArgument("flag '--master': expected host:port, got '{}'", master);
  }
  int port = 0;
  for (char c : master.substr(colon + 1)) {
    if (c < '0' || c > '9' || port > 65535) {
      return api::invalidArgument("flag '--master': bad port in '{}'", master);
    }
    port = port * 10 + (c - '0');
  }
  if (port <= 0 || port > 65535) {
    return api::invalidArgument("flag '--master': bad port in '{}'", master);
  }
  std::string host = master.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return std::make_pair(host, static_cast<uint16_t>(port));
}

api::Result<uint16_t> discoverTransportPort(const std::string& host, uint16_t port) {
  auto response =
      net::httpRequest("GET", host, port, "/master/transport", {}, "",
                       std::chrono::duration_cast<std::chrono::milliseconds>(kDiscoveryTimeout));
  if (!response) return response.status();
  if (response->status != 200) {
    return api::unavailable("GET /master/transport answered {}", response->status);
  }
  try {
    Poco::JSON::Parser parser;
    auto object = parser.parse(response->body).extract<Poco::JSON::Object::Ptr>();
    auto value = object->get("port").convert<int>();
    if (value <= 0 || value > 65535) return api::unavailable("bad transport port {}", value);
    return static_cast<uint16_t>(value);
  } catch (const std::exception& e) {
    return api::unavailable("bad answer from GET /master/transport: {}", e.what());
  }
}

void AgentCore::reconnectNow() {
  std::weak_ptr<AgentCore> weak = weak_from_this();
  strand_->post([weak] {
    auto self = weak.lock();
    if (!self || self->stopped_ || self->link_ == LinkState::kRefused) return;
    self->log_->info("the leading master changed; connecting to it");
    self->teardownClient();
    cancelTimer(self->reconnectTimer_);
    self->attempt_ = 0;
    self->connect();
  });
}

void AgentCore::connect() {
  if (stopped_ || link_ == LinkState::kRefused) return;
  const uint64_t generation = ++generation_;
  auto result = std::make_shared<api::Result<uint16_t>>(api::unavailable("not asked yet"));
  // With a leader detector (zk://), the master to ask is whoever leads right now.
  auto resolved = std::make_shared<std::pair<std::string, uint16_t>>(masterHost_, masterPort_);
  std::weak_ptr<AgentCore> weak = weak_from_this();
  auto status = strand_->runBlocking(
      [result, resolved, resolve = options_.resolveMaster] {
        if (resolve) {
          auto leader = resolve();
          if (!leader) {
            *result = api::unavailable("no leading master is known yet");
            return;
          }
          auto parsed = parseMaster(*leader);
          if (!parsed) {
            *result = parsed.status();
            return;
          }
          *resolved = *parsed;
        }
        *result = discoverTransportPort(resolved->first, resolved->second);
      },
      [weak, generation, result, resolved] {
        auto self = weak.lock();
        if (!self || self->stopped_) return;
        if (generation == self->generation_) {
          self->masterHost_ = resolved->first;
          self->masterPort_ = resolved->second;
        }
        self->onDiscovered(generation, *result);
      });
  if (!status) scheduleReconnect();
}

void AgentCore::onDiscovered(uint64_t generation, api::Result<uint16_t> port) {
  if (generation != generation_) return;
  if (!port) {
    if (attempt_ == 0 || attempt_ % 10 == 0) {
      log_->warn("cannot find the master's transport at {}:{}: {}", masterHost_, masterPort_,
                 port.status().toString());
    }
    scheduleReconnect();
    return;
  }
  std::weak_ptr<AgentCore> weak = weak_from_this();
  net::TransportHandlers handlers;
  handlers.onConnected = [weak, generation](const net::ConnectionPtr&) {
    if (auto self = weak.lock(); self && !self->stopped_) self->onConnected(generation);
  };
  handlers.onMessage = net::typedMessageHandler<internal::Envelope>(
      [weak, generation](const net::ConnectionPtr&, internal::Envelope envelope) {
        if (auto self = weak.lock(); self && !self->stopped_) {
          self->onEnvelope(generation, envelope);
        }
      });
  handlers.onClose = [weak, generation](const net::ConnectionPtr&, const api::Status& reason) {
    if (auto self = weak.lock(); self && !self->stopped_) self->onClosed(generation, reason);
  };
  client_ = std::make_unique<net::TransportClient>(*services_.runtime, *strand_, masterHost_, *port,
                                                   std::move(handlers), clientOptions_);
  client_->start();
  cancelTimer(watchdog_);
  watchdog_ = strand_->schedule(kConnectWatchdog, [weak, generation] {
    auto self = weak.lock();
    if (!self || self->stopped_ || generation != self->generation_ ||
        self->link_ != LinkState::kDisconnected) {
      return;
    }
    self->log_->warn("no connection to the master's transport yet; asking for its port again");
    self->teardownClient();
    self->scheduleReconnect();
  });
}

void AgentCore::scheduleReconnect() {
  if (stopped_ || link_ == LinkState::kRefused) return;
  static thread_local std::mt19937_64 rng(std::random_device{}());
  const double random = std::uniform_real_distribution<double>(0, 1)(rng);
  const auto delay = net::reconnectDelay(clientOptions_, std::min(attempt_, 20), random);
  ++attempt_;
  std::weak_ptr<AgentCore> weak = weak_from_this();
  cancelTimer(reconnectTimer_);
  reconnectTimer_ = strand_->schedule(delay, [weak] {
    if (auto self = weak.lock(); self && !self->stopped_) self->connect();
  });
}

void AgentCore::teardownClient() {
  ++generation_;
  // A refusal's own teardown leaves the agent refused.
  if (link_ != LinkState::kRefused) setLink(LinkState::kDisconnected);
  gauges_->registered = 0;
  cancelTimer(watchdog_);
  if (!client_) return;
  // TransportClient::stop() waits for its socket work: not on our strand (an io thread). The
  // strand is kept alive until the client no longer calls into it.
  std::shared_ptr<net::TransportClient> old(std::move(client_));
  auto strand = strand_;
  auto status = strand_->runBlocking([old, strand] { old->stop(); }, [] {});
  if (!status) old->stop();
}

void AgentCore::onConnected(uint64_t generation) {
  if (generation != generation_) return;
  setLink(LinkState::kConnected);
  cancelTimer(watchdog_);
  if (services_.authenticatee != nullptr) {
    // Challenge-response first: the master admits this connection's registration only after.
    internal::Envelope envelope;
    auto* message = envelope.mutable_authenticate_agent();
    message->set_mechanism(services_.authenticatee->mechanism());
    message->set_principal(services_.authenticatee->principal().value_or(std::string()));
    log_->info("connected to the master; authenticating as '{}'", message->principal());
    send(envelope);
    return;
  }
  sendRegistration();
}

void AgentCore::answerChallenge(const internal::AuthenticationChallenge& challenge) {
  if (services_.authenticatee == nullptr) {
    log_->warn("the master sent an authentication challenge, but this agent has no --credential");
    return;
  }
  auto response = services_.authenticatee->respond(challenge.challenge());
  if (!response) {
    log_->error("cannot answer the master's authentication challenge: {}",
                response.status().message());
    return;
  }
  internal::Envelope envelope;
  envelope.mutable_authentication_response()->set_response(*response);
  send(envelope);
}

void AgentCore::sendRegistration() {
  internal::Envelope envelope;
  if (!info_.has_id()) {
    auto* message = envelope.mutable_register_agent();
    *message->mutable_agent_info() = info_;
    message->set_version(kAgentVersion);
    message->set_pid(pid());
  } else {
    auto* message = envelope.mutable_reregister_agent();
    *message->mutable_agent_info() = info_;
    message->set_version(kAgentVersion);
    message->set_pid(pid());
    std::set<std::string> frameworkIds;
    for (const auto& [key, task] : tasks_) {
      if (task->frameworkGone()) continue;
      if (isTerminal(task->record.state()) && task->updates.empty()) continue;
      *message->add_tasks() = task->record;
      frameworkIds.insert(task->frameworkId);
    }
    for (const auto& id : frameworkIds) {
      auto it = frameworks_.find(id);
      if (it != frameworks_.end()) *message->add_frameworks() = it->second;
    }
    *message->mutable_checkpointed_resources() = reservations_.toProto();
  }
  log_->info("connected to the master; {}", info_.has_id() ? "re-registering" : "registering");
  send(envelope);
}

void AgentCore::onClosed(uint64_t generation, const api::Status& reason) {
  if (generation != generation_) return;
  log_->warn("lost the master's transport connection: {}", reason.toString());
  teardownClient();
  scheduleReconnect();
}

void AgentCore::setLink(LinkState to) {
  checkLinkTransition(link_, to);
  link_ = to;
}

bool AgentCore::send(const internal::Envelope& envelope) {
  return client_ && client_->send(envelope);
}

void AgentCore::onEnvelope(uint64_t generation, const internal::Envelope& envelope) {
  if (generation != generation_) return;
  switch (envelope.message_case()) {
    case internal::Envelope::kAuthenticationChallenge:
      if (link_ == LinkState::kConnected) answerChallenge(envelope.authentication_challenge());
      break;
    case internal::Envelope::kAgentAuthenticated:
      if (link_ == LinkState::kConnected) {
        log_->info("authenticated to the master as '{}'",
                   envelope.agent_authenticated().principal());
        sendRegistration();
      }
      break;
    case internal::Envelope::kAgentRegistered:
      onRegistered(envelope.agent_registered());
      break;
    case internal::Envelope::kAgentRefused:
      log_->error("the master refused this agent: {}", envelope.agent_refused().message());
      setLink(LinkState::kRefused);
      teardownClient();
      if (options_.onRefused) options_.onRefused(envelope.agent_refused().message());
      break;
    case internal::Envelope::kRunTask:
      if (link_ == LinkState::kRegistered) runTask(envelope.run_task());
      break;
    case internal::Envelope::kRunTaskGroup:
      if (link_ == LinkState::kRegistered) runTaskGroup(envelope.run_task_group());
      break;
    case internal::Envelope::kKillTask:
      if (link_ == LinkState::kRegistered) killTask(envelope.kill_task());
      break;
    case internal::Envelope::kShutdownFramework:
      if (link_ == LinkState::kRegistered) {
        shutdownFramework(envelope.shutdown_framework().framework_id().value());
      }
      break;
    case internal::Envelope::kStatusUpdateAcknowledgement:
      onAcknowledgement(envelope.status_update_acknowledgement());
      break;
    case internal::Envelope::kFrameworkToExecutor: {
      // Command tasks have no executor that listens. A task group's executor is the agent
      // playing Mesos's default executor, which takes a MESSAGE event and ignores it.
      const auto& message = envelope.framework_to_executor();
      if (findGroup(message.framework_id().value(), message.executor_id().value())) {
        validFrameworkMessages_->increment();
        log_->debug("framework '{}' sent executor '{}' {} bytes; the default executor ignores them",
                    message.framework_id().value(), message.executor_id().value(),
                    message.data().size());
      } else {
        invalidFrameworkMessages_->increment();
      }
      break;
    }
    case internal::Envelope::kCheckpointResources:
      if (link_ == LinkState::kRegistered) checkpointResources(envelope.checkpoint_resources());
      break;
    case internal::Envelope::kReconcileTasks:
      if (link_ == LinkState::kRegistered) reconcile(envelope.reconcile_tasks());
      break;
    default:
      log_->warn("unexpected message {} from the master",
                 static_cast<int>(envelope.message_case()));
      break;
  }
}

void AgentCore::onRegistered(const internal::AgentRegistered& registered) {
  const std::string& id = registered.agent_id().value();
  if (id.empty()) {
    log_->error("the master registered this agent without an id");
    return;
  }
  if (!info_.has_id()) {
    info_.mutable_id()->set_value(id);
    {
      std::lock_guard lock(idMutex_);
      publicId_ = id;
    }
    storeSet(root_ + "info", info_.SerializeAsString());
    std::error_code error;
    fs::create_directories(sandboxRoot() / id, error);
    log_->info("registered with the master as agent '{}'", id);
  } else if (info_.id().value() != id) {
    log_->error("the master re-registered this agent as '{}', but it is '{}'", id,
                info_.id().value());
  } else {
    log_->info("re-registered with the master as agent '{}'", id);
  }
  setLink(LinkState::kRegistered);
  attempt_ = 0;
  masterHostname_ = registered.master_info().hostname();
  gauges_->registered = 1;
  for (const auto& [key, task] : tasks_) {
    task->backoff = options_.statusUpdateRetryInterval;
    sendHead(task);
  }
}

void AgentCore::checkpointResources(const internal::CheckpointResources& message) {
  auto reserved = api::Resources::fromProto(message.resources());
  if (!reserved) {
    log_->error("the master sent invalid reservations: {}", reserved.status().toString());
    return;
  }
  // Checkpointed first, as Mesos does: a restart never runs on reservations it has not kept.
  std::weak_ptr<AgentCore> weak = weak_from_this();
  storeSet(root_ + "resources", message.SerializeAsString(),
           [weak, reserved = std::move(reserved).value()] {
             auto self = weak.lock();
             if (!self) return;
             self->applyReservations(reserved);
             self->log_->info("reservations checkpointed; total resources {}",
                              self->resources_.toString());
           });
}

}  // namespace tessera::kernel::agent
