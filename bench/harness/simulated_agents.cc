#include "bench/harness/simulated_agents.h"

#include <fmt/format.h>

#include <cassert>
#include <map>
#include <mutex>
#include <random>

#include "kernel/agent/agent.h"
#include "kernel/agent/agent_resources.h"
#include "kernel/cli/resolve.h"
#include "kernel/net/transport.h"
#include "kernel/protocol/internal.pb.h"
#include "tessera/api/resources.h"
#include "tessera/api/task_state.h"

namespace tessera::bench {

namespace internal = tessera::internal;
namespace net = kernel::net;
namespace v1 = tessera::v1;
using namespace std::chrono_literals;

namespace {

// A 16-byte random uuid: a status update's identity.
std::string randomUuid() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  std::string bytes(16, '\0');
  for (auto& byte : bytes) byte = static_cast<char>(rng());
  return bytes;
}

}  // namespace

// The same shape as the failover bench's agent processes:
// cpus:1;mem:256;disk:256;ports:[31000-31010].
v1::AgentInfo defaultSimulatedAgent(int index) {
  return simulatedAgent(index, "cpus:1;mem:256;disk:256;ports:[31000-31010]", "");
}

v1::AgentInfo simulatedAgent(int index, const std::string& resources,
                             const std::string& attributes) {
  v1::AgentInfo info;
  info.set_hostname(fmt::format("simulated-{}", index));
  info.set_port(static_cast<int32_t>(40000 + index % 20000));
  auto parsed = api::Resources::parse(resources);
  assert(parsed && "simulated agent resources must parse");
  *info.mutable_resources() = parsed->toProto();
  if (!attributes.empty()) {
    auto parsedAttributes = kernel::agent::parseAttributes(attributes);
    assert(parsedAttributes && "simulated agent attributes must parse");
    *info.mutable_attributes() = std::move(parsedAttributes).value();
  }
  return info;
}

/// Shared by the agents (which count) and SimulatedAgents (which reads).
struct SimulatedCounters {
  std::atomic<size_t> registered{0};
  std::atomic<size_t> refused{0};
  std::atomic<size_t> registrations{0};
  std::atomic<size_t> tasksReceived{0};
  std::atomic<size_t> running{0};
  std::atomic<size_t> live{0};
  std::atomic<size_t> updatesCreated{0};
  std::atomic<size_t> updatesSent{0};
  std::atomic<size_t> acknowledged{0};
  std::atomic<size_t> staleAcks{0};
};

/// What every agent of a fleet shares: how to find the master, how tasks behave.
struct SimulatedConfig {
  SimulatedAgentsOptions options;
  std::string staticHost;  ///< a host:port master's host (empty with zk://)
  uint16_t staticPort = 0;
};

/// One ZooKeeper session (a LeaderFollower) shared by a group of agents.
class SimulatedSession {
 public:
  std::unique_ptr<kernel::cli::LeaderFollower> follower;
};

/// One agent. Everything but the constructor runs on its strand.
class SimulatedAgent : public std::enable_shared_from_this<SimulatedAgent> {
 public:
  SimulatedAgent(kernel::runtime::Runtime& runtime, int index,
                 std::shared_ptr<SimulatedSession> session,
                 std::shared_ptr<const SimulatedConfig> config,
                 std::shared_ptr<SimulatedCounters> counters)
      : runtime_(runtime),
        strand_(runtime.makeExecutor()),
        session_(std::move(session)),
        config_(std::move(config)),
        counters_(std::move(counters)),
        info_(config_->options.describe ? config_->options.describe(index)
                                        : defaultSimulatedAgent(index)),
        pid_(fmt::format("slave(1)@127.0.0.1:{}", 40000 + index % 20000)) {}

  kernel::runtime::StrandExecutor& strand() { return *strand_; }

  void connect() {
    if (stopped_ || refused_) return;
    // Never destroy a client here: its stop() waits for socket work on the io threads.
    teardown();
    const uint64_t generation = ++generation_;
    if (config_->options.transportPort != 0) {
      return open(generation, config_->staticHost, config_->options.transportPort);
    }
    auto leader = session_ ? session_->follower->leader()
                           : std::optional<std::string>(
                                 fmt::format("{}:{}", config_->staticHost, config_->staticPort));
    if (!leader) return retryLater();
    auto found = std::make_shared<api::Result<std::pair<std::string, uint16_t>>>(
        api::unavailable("not asked"));
    std::weak_ptr<SimulatedAgent> weak = weak_from_this();
    auto status = strand_->runBlocking(
        [found, address = *leader] {
          auto master = kernel::agent::parseMaster(address);
          if (!master) {
            *found = master.status();
            return;
          }
          auto port = kernel::agent::discoverTransportPort(master->first, master->second);
          *found = port ? api::Result<std::pair<std::string, uint16_t>>(
                              std::make_pair(master->first, *port))
                        : api::Result<std::pair<std::string, uint16_t>>(port.status());
        },
        [weak, generation, found] {
          auto self = weak.lock();
          if (!self || generation != self->generation_) return;
          if (!*found) return self->retryLater();
          self->open(generation, (*found)->first, (*found)->second);
        });
    if (!status) retryLater();
  }

  /// The session saw a new leader: go to it now.
  void masterChanged() {
    if (stopped_ || refused_) return;
    if (retry_) retry_->cancel();
    attempt_ = 0;
    connect();
  }

  /// Stops the agent; the returned client (if any) must be stopped off the strand.
  std::shared_ptr<net::TransportClient> stop() {
    stopped_ = true;
    ++generation_;
    if (registered_) --counters_->registered;
    registered_ = false;
    if (retry_) retry_->cancel();
    if (resend_) resend_->cancel();
    for (auto& [key, task] : tasks_) {
      if (task.end) task.end->cancel();
    }
    return std::shared_ptr<net::TransportClient>(std::move(client_));
  }

  void finishTasks() {
    for (auto& [key, task] : tasks_) {
      if (task.record.state() == v1::TASK_RUNNING) update(task, config_->options.endState);
    }
  }

 private:
  struct Task {
    internal::Task record;
    std::vector<internal::StatusUpdate> pending;  // the head is sent until acknowledged
    std::unique_ptr<api::TimerHandle> end;        // taskDuration's timer
  };

  void retryLater() {
    static thread_local std::mt19937_64 rng(std::random_device{}());
    auto delay = std::min(100ms * (1 << std::min(attempt_, 5)), 2000ms);
    delay -= std::chrono::milliseconds(
        std::uniform_int_distribution<int64_t>(0, delay.count() / 5)(rng));
    ++attempt_;
    if (retry_) retry_->cancel();
    std::weak_ptr<SimulatedAgent> weak = weak_from_this();
    retry_ = strand_->schedule(delay, [weak] {
      if (auto self = weak.lock()) self->connect();
    });
  }

  void open(uint64_t generation, const std::string& host, uint16_t port) {
    std::weak_ptr<SimulatedAgent> weak = weak_from_this();
    net::TransportHandlers handlers;
    net::TransportClientOptions clientOptions;
    clientOptions.initialBackoff = std::chrono::milliseconds(50);
    clientOptions.maxBackoff = std::chrono::milliseconds(1000);
    clientOptions.tls = config_->options.tls;
    handlers.onConnected = [weak, generation](const net::ConnectionPtr&) {
      auto self = weak.lock();
      if (self && generation == self->generation_) self->onConnected();
    };
    handlers.onMessage = net::typedMessageHandler<internal::Envelope>(
        [weak, generation](const net::ConnectionPtr&, internal::Envelope envelope) {
          auto self = weak.lock();
          if (self && generation == self->generation_) self->onEnvelope(envelope);
        });
    handlers.onClose = [weak, generation](const net::ConnectionPtr&, const api::Status&) {
      auto self = weak.lock();
      if (!self || generation != self->generation_ || self->stopped_) return;
      if (self->config_->options.transportPort != 0) {
        // A fixed master: the client reconnects by itself (with backoff); re-register then.
        if (self->registered_) --self->counters_->registered;
        self->registered_ = false;
        return;
      }
      // As a real agent: ask the detector again (the old leader may be gone for good).
      self->teardown();
      self->retryLater();
    };
    client_ = std::make_unique<net::TransportClient>(runtime_, *strand_, host, port,
                                                     std::move(handlers), clientOptions);
    client_->start();
  }

  void teardown() {
    ++generation_;
    if (registered_) --counters_->registered;
    registered_ = false;
    if (!client_) return;
    // TransportClient::stop() waits for its socket work: not on the strand (an io thread).
    std::shared_ptr<net::TransportClient> old(std::move(client_));
    auto status = strand_->runBlocking([old] { old->stop(); }, [] {});
    if (!status) old->stop();
  }

  void send(const internal::Envelope& envelope) {
    if (client_) client_->send(envelope);
  }

  void onConnected() {
    internal::Envelope envelope;
    if (!info_.has_id()) {
      auto* message = envelope.mutable_register_agent();
      *message->mutable_agent_info() = info_;
      message->set_version("simulated");
      message->set_pid(pid_);
    } else {
      auto* message = envelope.mutable_reregister_agent();
      *message->mutable_agent_info() = info_;
      message->set_version("simulated");
      message->set_pid(pid_);
      std::map<std::string, bool> frameworks;
      for (const auto& [key, task] : tasks_) {
        *message->add_tasks() = task.record;
        frameworks[key.first] = true;
      }
      for (const auto& [id, unused] : frameworks) *message->add_frameworks() = frameworks_[id];
    }
    send(envelope);
  }

  void onEnvelope(const internal::Envelope& envelope) {
    switch (envelope.message_case()) {
      case internal::Envelope::kAgentRegistered:
        if (!info_.has_id()) *info_.mutable_id() = envelope.agent_registered().agent_id();
        if (!registered_) ++counters_->registered;
        ++counters_->registrations;
        registered_ = true;
        attempt_ = 0;
        for (auto& [key, task] : tasks_) sendHead(task);
        scheduleResend();
        break;
      case internal::Envelope::kAgentRefused:
        refused_ = true;
        ++counters_->refused;
        teardown();
        break;
      case internal::Envelope::kRunTask:
        if (registered_) run(envelope.run_task());
        break;
      case internal::Envelope::kKillTask:
        if (auto it = tasks_.find({envelope.kill_task().framework_id().value(),
                                   envelope.kill_task().task_id().value()});
            it != tasks_.end()) {
          update(it->second, v1::TASK_KILLED);
        }
        break;
      case internal::Envelope::kShutdownFramework:
        for (auto& [key, task] : tasks_) {
          if (key.first == envelope.shutdown_framework().framework_id().value()) {
            update(task, v1::TASK_KILLED);
          }
        }
        break;
      case internal::Envelope::kStatusUpdateAcknowledgement:
        acknowledged(envelope.status_update_acknowledgement());
        break;
      default:
        break;  // reconcile_tasks, framework messages: nothing runs here to ask
    }
  }

  void run(const internal::RunTask& message) {
    std::pair<std::string, std::string> key{message.framework().id().value(),
                                            message.task().task_id().value()};
    if (tasks_.count(key)) return;
    frameworks_[key.first] = message.framework();
    Task& task = tasks_[key];
    *task.record.mutable_info() = message.task();
    *task.record.mutable_framework_id() = message.framework().id();
    task.record.set_role(message.role());
    task.record.set_container_id(fmt::format("{:016x}", nextContainer_++));
    ++counters_->tasksReceived;
    ++counters_->live;
    update(task, v1::TASK_RUNNING);
    if (config_->options.taskDuration.count() > 0) {
      std::weak_ptr<SimulatedAgent> weak = weak_from_this();
      task.end = strand_->schedule(config_->options.taskDuration, [weak, key] {
        auto self = weak.lock();
        if (!self || self->stopped_) return;
        if (auto it = self->tasks_.find(key); it != self->tasks_.end()) {
          self->update(it->second, self->config_->options.endState);
        }
      });
    }
  }

  void update(Task& task, v1::TaskState state) {
    if (api::isTerminal(task.record.state()) && task.record.has_state()) return;
    if (task.record.state() == v1::TASK_RUNNING && task.record.has_state()) --counters_->running;
    if (state == v1::TASK_RUNNING) ++counters_->running;
    internal::StatusUpdate update;
    *update.mutable_framework_id() = task.record.framework_id();
    auto* status = update.mutable_status();
    *status->mutable_task_id() = task.record.info().task_id();
    status->set_state(state);
    status->set_source(v1::TaskStatus::SOURCE_EXECUTOR);
    *status->mutable_agent_id() = info_.id();
    status->mutable_executor_id()->set_value(task.record.info().task_id().value());
    status->set_timestamp(
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
    status->set_uuid(randomUuid());
    update.set_latest_state(state);
    task.record.set_state(state);
    *task.record.mutable_status() = *status;
    task.pending.push_back(std::move(update));
    ++counters_->updatesCreated;
    if (task.pending.size() == 1) sendHead(task);
  }

  void sendHead(Task& task) {
    if (!registered_ || task.pending.empty()) return;
    internal::Envelope envelope;
    *envelope.mutable_status_update() = task.pending.front();
    ++counters_->updatesSent;
    send(envelope);
  }

  void acknowledged(const internal::StatusUpdateAcknowledgement& ack) {
    auto it = tasks_.find({ack.framework_id().value(), ack.task_id().value()});
    if (it == tasks_.end()) return;
    Task& task = it->second;
    if (task.pending.empty() || task.pending.front().status().uuid() != ack.uuid()) {
      ++counters_->staleAcks;
      return;
    }
    ++counters_->acknowledged;
    task.pending.erase(task.pending.begin());
    if (!task.pending.empty()) {
      sendHead(task);
    } else if (api::isTerminal(task.record.state())) {
      if (task.end) task.end->cancel();
      --counters_->live;
      tasks_.erase(it);
    }
  }

  // Unacknowledged updates are sent again every 10 s (the agent's status update retry).
  void scheduleResend() {
    if (resend_) resend_->cancel();
    std::weak_ptr<SimulatedAgent> weak = weak_from_this();
    resend_ = strand_->schedule(config_->options.updateRetry, [weak] {
      auto self = weak.lock();
      if (!self || self->stopped_ || !self->registered_) return;
      for (auto& [key, task] : self->tasks_) self->sendHead(task);
      self->scheduleResend();
    });
  }

  kernel::runtime::Runtime& runtime_;
  std::unique_ptr<kernel::runtime::StrandExecutor> strand_;
  std::shared_ptr<SimulatedSession> session_;  // null for a host:port master
  std::shared_ptr<const SimulatedConfig> config_;
  std::shared_ptr<SimulatedCounters> counters_;
  v1::AgentInfo info_;
  std::string pid_;
  std::unique_ptr<net::TransportClient> client_;
  std::unique_ptr<api::TimerHandle> retry_, resend_;
  uint64_t generation_ = 0;
  uint64_t nextContainer_ = 1;
  int attempt_ = 0;
  bool registered_ = false, refused_ = false, stopped_ = false;
  std::map<std::pair<std::string, std::string>, Task> tasks_;
  std::map<std::string, v1::FrameworkInfo> frameworks_;
};

api::Result<std::unique_ptr<SimulatedAgents>> SimulatedAgents::start(
    kernel::runtime::Runtime& runtime, SimulatedAgentsOptions options) {
  auto agents = std::unique_ptr<SimulatedAgents>(new SimulatedAgents());
  auto counters = agents->counters_ = std::make_shared<SimulatedCounters>();
  auto config = std::make_shared<SimulatedConfig>();
  const bool zk = options.master.rfind("zk://", 0) == 0;
  if (!zk) {
    auto master = kernel::agent::parseMaster(options.master);
    if (!master) return master.status();
    config->staticHost = master->first;
    config->staticPort = master->second;
  }
  config->options = std::move(options);
  const SimulatedAgentsOptions& o = config->options;
  const int perSession = std::max(1, o.agentsPerSession);
  for (int i = 0; i < o.agents; ++i) {
    if (zk && i % perSession == 0) {
      auto session = std::make_shared<SimulatedSession>();
      auto follower =
          kernel::cli::LeaderFollower::start(runtime, o.master, "--master", o.sessionTimeout);
      if (!follower) return follower.status();
      session->follower = std::move(follower).value();
      agents->sessions_.push_back(session);
    }
    agents->agents_.push_back(std::make_shared<SimulatedAgent>(
        runtime, i, zk ? agents->sessions_.back() : nullptr, config, counters));
  }
  for (size_t s = 0; s < agents->sessions_.size(); ++s) {
    std::vector<std::weak_ptr<SimulatedAgent>> group;
    for (size_t i = s * perSession; i < std::min(agents->agents_.size(), (s + 1) * perSession);
         ++i) {
      group.push_back(agents->agents_[i]);
    }
    agents->sessions_[s]->follower->onChange([group](const std::string&) {
      for (const auto& weak : group) {
        if (auto agent = weak.lock()) {
          agent->strand().post([weak] {
            if (auto self = weak.lock()) self->masterChanged();
          });
        }
      }
    });
  }
  for (auto& agent : agents->agents_) {
    std::weak_ptr<SimulatedAgent> weak = agent;
    agent->strand().post([weak] {
      if (auto self = weak.lock()) self->connect();
    });
  }
  return agents;
}

SimulatedAgents::~SimulatedAgents() { stop(); }

void SimulatedAgents::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& session : sessions_) session->follower->onChange(nullptr);
  for (auto& agent : agents_) {
    auto client = agent->strand().call([&] { return agent->stop(); });
    if (client) client->stop();
  }
  for (auto& session : sessions_) session->follower->stop();
}

size_t SimulatedAgents::registered() const { return counters_->registered; }
size_t SimulatedAgents::refused() const { return counters_->refused; }
size_t SimulatedAgents::runningTasks() const { return counters_->running; }

SimulatedAgentsStats SimulatedAgents::stats() const {
  const SimulatedCounters& c = *counters_;
  return {c.registered, c.refused,        c.registrations, c.tasksReceived, c.running,
          c.live,       c.updatesCreated, c.updatesSent,   c.acknowledged,  c.staleAcks};
}

void SimulatedAgents::finishTasks() {
  for (auto& agent : agents_) {
    agent->strand().call([&] {
      agent->finishTasks();
      return 0;
    });
  }
}

}  // namespace tessera::bench
