#pragma once

// An in-process cluster on loopback: one runtime, router and HTTP server; a real Master with the
// DRF allocator module on a MemoryStore; N real Agents, each with its own work dir, FileStore and
// native containerizer module (so a restarted agent recovers from disk); and test frameworks
// speaking the v1 scheduler API through the real HttpSchedulerDriver. Tasks are real processes.
//
// Synchronisation is by events with deadlines: a RecordingScheduler queues what the driver
// delivers and tests take() what they expect.

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kernel/agent/agent.h"
#include "kernel/master/master.h"
#include "kernel/modules/module_host.h"
#include "kernel/modules/module_manager.h"
#include "kernel/net/http_client.h"
#include "kernel/net/http_server.h"
#include "kernel/runtime/metrics.h"
#include "kernel/runtime/runtime.h"
#include "kernel/scheduler/driver.h"
#include "kernel/state/file_store.h"
#include "kernel/state/memory_store.h"
#include "tessera/api/resources.h"
#include "tests/support/subprocess.h"
#include "tests/support/wait_queue.h"

namespace tessera::kernel::cluster::testing {

using namespace std::chrono_literals;
using tessera::testing::TempDir;

inline constexpr auto kWait = std::chrono::milliseconds(30s);
inline constexpr const char* kAllocator = "org_tessera_allocator_drf";
inline constexpr const char* kNative = "org_tessera_containerizer_native";

using tessera::testing::WaitQueue;

/// One thing a RecordingScheduler was told. An OFFERS event becomes one entry per offer.
struct SchedulerEvent {
  enum class Kind { kSubscribed, kOffer, kRescind, kUpdate, kFailure, kError, kDisconnected };
  Kind kind = Kind::kDisconnected;
  std::string frameworkId;  ///< kSubscribed
  v1::Offer offer;          ///< kOffer
  std::string offerId;      ///< kRescind
  v1::TaskStatus status;    ///< kUpdate
  std::string agentId;      ///< kFailure
  std::string message;      ///< kError
};

/// Queues every event; acknowledges each reliable update as it arrives unless the policy says
/// otherwise. Runs on its framework's executor.
class RecordingScheduler final : public api::Scheduler {
 public:
  using Kind = SchedulerEvent::Kind;

  /// The driver to acknowledge through; set before subscribing, valid until the driver stops.
  void setDriver(api::SchedulerDriver* driver) { driver_ = driver; }
  /// Which updates are acknowledged on arrival (default: every one with a uuid).
  void setAcknowledgePolicy(std::function<bool(const v1::TaskStatus&)> policy) {
    std::lock_guard lock(mutex_);
    policy_ = std::move(policy);
  }

  void subscribed(const v1::FrameworkID& id, std::chrono::nanoseconds,
                  const v1::MasterInfo&) override {
    SchedulerEvent event;
    event.kind = Kind::kSubscribed;
    event.frameworkId = id.value();
    events.push(std::move(event));
  }
  void offers(std::vector<v1::Offer> offers) override {
    for (auto& offer : offers) {
      SchedulerEvent event;
      event.kind = Kind::kOffer;
      event.offer = std::move(offer);
      events.push(std::move(event));
    }
  }
  void rescind(const v1::OfferID& id) override {
    SchedulerEvent event;
    event.kind = Kind::kRescind;
    event.offerId = id.value();
    events.push(std::move(event));
  }
  void update(const v1::TaskStatus& status) override {
    bool acknowledge = false;
    {
      std::lock_guard lock(mutex_);
      acknowledge = !status.uuid().empty() && (!policy_ || policy_(status));
    }
    if (acknowledge && driver_) {
      driver_->acknowledge(status.agent_id(), status.task_id(), status.uuid(), nullptr);
    }
    SchedulerEvent event;
    event.kind = Kind::kUpdate;
    event.status = status;
    events.push(std::move(event));
  }
  void message(const v1::AgentID&, const v1::ExecutorID&, const std::string&) override {}
  void failure(const v1::AgentID& agentId, const std::optional<v1::ExecutorID>&,
               std::optional<int>) override {
    SchedulerEvent event;
    event.kind = Kind::kFailure;
    event.agentId = agentId.value();
    events.push(std::move(event));
  }
  void error(std::string_view message) override {
    SchedulerEvent event;
    event.kind = Kind::kError;
    event.message = std::string(message);
    events.push(std::move(event));
  }
  void disconnected() override {
    SchedulerEvent event;
    event.kind = Kind::kDisconnected;
    events.push(std::move(event));
  }

  WaitQueue<SchedulerEvent> events;

 private:
  api::SchedulerDriver* driver_ = nullptr;
  std::mutex mutex_;
  std::function<bool(const v1::TaskStatus&)> policy_;
};

/// The FrameworkInfo test frameworks use: role "web", MULTI_ROLE, a failover timeout so a lost
/// stream does not tear the framework down.
inline v1::FrameworkInfo testFrameworkInfo() {
  v1::FrameworkInfo info;
  // Tasks run as this user, so it must exist: the one running the tests.
  const passwd* user = ::getpwuid(::getuid());
  info.set_user(user != nullptr ? user->pw_name : "root");
  info.set_name("cluster-test");
  info.add_roles("web");
  info.add_capabilities()->set_type(v1::FrameworkInfo::Capability::MULTI_ROLE);
  info.set_failover_timeout(60);
  return info;
}

/// A framework: an executor, a RecordingScheduler and an HttpSchedulerDriver to the master.
class TestFramework {
 public:
  using Kind = SchedulerEvent::Kind;

  TestFramework(runtime::Runtime& runtime, uint16_t masterPort)
      : executor_(runtime.makeExecutor()), scheduler_(std::make_unique<RecordingScheduler>()) {
    scheduler::DriverOptions options;
    options.master = fmt::format("127.0.0.1:{}", masterPort);
    options.minBackoff = 20ms;
    options.maxBackoff = 500ms;
    driver_ =
        std::make_unique<scheduler::HttpSchedulerDriver>(runtime, *executor_, *scheduler_, options);
    scheduler_->setDriver(driver_.get());
  }
  /// Stops the driver before the scheduler goes.
  ~TestFramework() { stop(); }
  TestFramework(const TestFramework&) = delete;
  TestFramework& operator=(const TestFramework&) = delete;

  /// Subscribes and waits for SUBSCRIBED; returns the framework id ("" on failure).
  std::string subscribe(v1::FrameworkInfo info = testFrameworkInfo()) {
    api::Status started = executor_->call([&] { return driver_->subscribe(info, {}); });
    EXPECT_TRUE(started) << started.toString();
    auto event = next(Kind::kSubscribed);
    if (!event) {
      ADD_FAILURE() << "not subscribed: " << executor_->call([&] { return driver_->lastError(); });
      return "";
    }
    frameworkId = event->frameworkId;
    return frameworkId;
  }

  /// Closes the stream as a crashed scheduler would; no more events arrive. Idempotent.
  void stop() {
    if (!driver_) return;
    executor_->call([&] {
      driver_->stop();
      return 0;
    });
    executor_->drain();
    driver_.reset();
  }

  /// The next event of `kind` (others stay queued).
  std::optional<SchedulerEvent> next(Kind kind, std::chrono::milliseconds timeout = kWait) {
    return events().take([kind](const SchedulerEvent& e) { return e.kind == kind; }, timeout);
  }
  /// The next offer, of agent `agentId` when given.
  std::optional<v1::Offer> offer(const std::string& agentId = "") {
    auto event = events().take([&](const SchedulerEvent& e) {
      return e.kind == Kind::kOffer && (agentId.empty() || e.offer.agent_id().value() == agentId);
    });
    if (!event) return std::nullopt;
    return event->offer;
  }
  /// The next update of `taskId`.
  std::optional<v1::TaskStatus> update(const std::string& taskId,
                                       std::chrono::milliseconds timeout = kWait) {
    auto event = events().take(
        [&](const SchedulerEvent& e) {
          return e.kind == Kind::kUpdate && e.status.task_id().value() == taskId;
        },
        timeout);
    if (!event) return std::nullopt;
    return event->status;
  }
  /// Takes updates of `taskId` until one matching `match`; nullopt if none comes in time.
  std::optional<v1::TaskStatus> updateWhere(
      const std::string& taskId, const std::function<bool(const v1::TaskStatus&)>& match) {
    auto deadline = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      auto status = update(taskId, left);
      if (!status) return std::nullopt;
      if (match(*status)) return status;
    }
    return std::nullopt;
  }
  /// Takes updates of `taskId` until one in `state`.
  std::optional<v1::TaskStatus> updateIn(const std::string& taskId, v1::TaskState state) {
    return updateWhere(taskId, [state](const v1::TaskStatus& s) { return s.state() == state; });
  }
  /// Takes updates of `taskId` until a terminal one (duplicates of earlier ones are skipped).
  std::optional<v1::TaskStatus> terminalUpdate(const std::string& taskId) {
    return updateWhere(taskId, [](const v1::TaskStatus& s) {
      switch (s.state()) {
        case v1::TASK_STAGING:
        case v1::TASK_STARTING:
        case v1::TASK_RUNNING:
        case v1::TASK_KILLING:
          return false;
        default:
          return true;
      }
    });
  }

  /// Runs a driver call on the framework's executor and waits for its completion.
  api::Status call(const std::function<void(api::SchedulerDriver&, api::CallCallback)>& fn) {
    auto done = std::make_shared<std::promise<api::Status>>();
    auto future = done->get_future();
    executor_->post([this, fn, done] {
      fn(*driver_, [done](api::Status status) { done->set_value(std::move(status)); });
    });
    if (future.wait_for(kWait) != std::future_status::ready) {
      return api::Status(api::StatusCode::kDeadlineExceeded, "no completion");
    }
    return future.get();
  }

  /// Launches a command task on `offer` (what is left is offered again at once).
  api::Status launch(const v1::Offer& offer, const std::string& taskId, const std::string& command,
                     const std::string& resources = "cpus:0.1;mem:32") {
    v1::Offer::Operation operation;
    operation.set_type(v1::Offer::Operation::LAUNCH);
    auto* task = operation.mutable_launch()->add_task_infos();
    task->set_name(taskId);
    task->mutable_task_id()->set_value(taskId);
    *task->mutable_agent_id() = offer.agent_id();
    *task->mutable_resources() = api::Resources::parse(resources).value().toProto();
    task->mutable_command()->set_value(command);
    v1::Filters filters;
    filters.set_refuse_seconds(0);
    // By value: after a timed-out wait the call may still run.
    return call([id = offer.id(), operation, filters](api::SchedulerDriver& driver,
                                                      api::CallCallback done) {
      driver.accept({id}, {operation}, filters, std::move(done));
    });
  }
  api::Status kill(const std::string& taskId, const std::string& agentId) {
    v1::TaskID task;
    task.set_value(taskId);
    v1::AgentID agent;
    agent.set_value(agentId);
    return call([task, agent](api::SchedulerDriver& driver, api::CallCallback done) {
      driver.kill(task, agent, std::move(done));
    });
  }
  api::Status acknowledge(const v1::TaskStatus& status) {
    return call([status](api::SchedulerDriver& driver, api::CallCallback done) {
      driver.acknowledge(status.agent_id(), status.task_id(), status.uuid(), std::move(done));
    });
  }
  /// Explicit reconciliation of `taskId` on `agentId`.
  api::Status reconcile(const std::string& taskId, const std::string& agentId) {
    v1::scheduler::Call::Reconcile::Task task;
    task.mutable_task_id()->set_value(taskId);
    task.mutable_agent_id()->set_value(agentId);
    return call([task](api::SchedulerDriver& driver, api::CallCallback done) {
      driver.reconcile({task}, std::move(done));
    });
  }

  WaitQueue<SchedulerEvent>& events() { return scheduler_->events; }
  RecordingScheduler& scheduler() { return *scheduler_; }

  std::string frameworkId;

 private:
  std::unique_ptr<runtime::StrandExecutor> executor_;
  std::unique_ptr<RecordingScheduler> scheduler_;
  std::unique_ptr<scheduler::HttpSchedulerDriver> driver_;
};

/// Runtime, metrics, router + HTTP server, the master with its allocator module, agents with
/// their containerizer modules. Call startCluster() (after adjusting `masterOptions` or
/// `agentOptions` if needed).
class ClusterFixture : public ::testing::Test {
 protected:
  /// One agent: its store, its module host (the containerizer) and the component.
  struct AgentSlot {
    int index = 0;  ///< N in "/slave(N)"
    std::filesystem::path workDir;
    std::unique_ptr<state::FileStore> store;
    std::unique_ptr<modules::ModuleHost> host;
    api::Containerizer* containerizer = nullptr;
    api::Executor* containerizerExecutor = nullptr;
    std::unique_ptr<agent::Agent> agent;
  };

  void SetUp() override {
    runtime_.start();
    router_ = std::make_shared<net::Router>();
    server_ = std::make_unique<net::HttpServer>(runtime_, router_);
    ASSERT_TRUE(server_->start());
    const std::string lib = TESSERA_BINARY_DIR "/lib/tessera/";
    std::vector<modules::ManifestEntry> entries = {
        {lib + "libtessera_allocator_drf.so",
         kAllocator,
         api::Parameters(
             std::vector<std::pair<std::string, std::string>>{{"allocation_interval", "50ms"}}),
         "test",
         {}},
        {lib + "libtessera_containerizer_native.so", kNative, api::Parameters(), "test", {}}};
    auto loaded = manager_.load(entries);
    ASSERT_TRUE(loaded) << loaded.toString();

    masterOptions.httpPort = server_->port();
    masterOptions.agentPingTimeout = 1s;
    masterOptions.maxAgentPingTimeouts = 5;
    masterOptions.schedulerHeartbeatInterval = 1s;
    masterOptions.cluster = "in-process";
    masterOptions.registryInMemory = true;

    agentOptions.master = fmt::format("127.0.0.1:{}", server_->port());
    agentOptions.httpPort = server_->port();
    agentOptions.resources = "cpus:2;mem:1024;disk:1024;ports:[31000-31100]";
    agentOptions.killGracePeriod = 1s;
    agentOptions.statusUpdateRetryInterval = 200ms;
  }

  void TearDown() override {
    frameworks_.clear();  // drivers stop before their schedulers go
    for (auto& slot : agents_) {
      if (!slot->host) continue;
      killAllContainers(*slot);
      slot->agent.reset();
      slot->host.reset();
    }
    agents_.clear();
    master_.reset();
    if (masterHost_) masterHost_->stopAll();
    masterHost_.reset();
    if (server_) server_->stop();
    runtime_.stop();
  }

  /// Starts the master and `agents` agents, and waits until every agent is registered.
  void startCluster(int agents) {
    startMaster();
    for (int i = 0; i < agents; ++i) {
      addAgent();
      if (::testing::Test::HasFatalFailure()) return;
    }
    for (auto& slot : agents_) ASSERT_TRUE(waitRegistered(*slot));
  }

  void startMaster() {
    modules::HostServices services = hostServices("master", "", &masterStore_);
    masterHost_ = std::make_unique<modules::ModuleHost>(manager_, std::move(services));
    auto allocator = masterHost_->create<api::Allocator>(kAllocator);
    ASSERT_TRUE(allocator) << allocator.status().toString();
    master::MasterServices masterServices;
    masterServices.runtime = &runtime_;
    masterServices.metrics = &metrics_;
    masterServices.router = router_;
    masterServices.state = &masterStore_;
    masterServices.allocator = *allocator;
    masterServices.allocatorExecutor = masterHost_->executorOf(*allocator);
    master_ = std::make_unique<master::Master>(masterServices, masterOptions);
    auto started = master_->start();
    ASSERT_TRUE(started) << started.toString();
  }

  /// Adds agent N+1 (work dir, file store, containerizer, agent) and starts it.
  AgentSlot& addAgent() {
    auto slot = std::make_unique<AgentSlot>();
    slot->index = static_cast<int>(agents_.size()) + 1;
    slot->workDir = dir_.path() / fmt::format("agent{}", slot->index);
    std::filesystem::create_directories(slot->workDir);
    agents_.push_back(std::move(slot));
    AgentSlot& added = *agents_.back();
    startAgent(added);
    return added;
  }

  /// Opens the agent's store, creates its containerizer and starts the agent.
  void startAgent(AgentSlot& slot) {
    auto store = state::FileStore::open(slot.workDir / "state");
    ASSERT_TRUE(store) << store.status().toString();
    slot.store = std::move(store).value();
    slot.host = std::make_unique<modules::ModuleHost>(
        manager_, hostServices("agent", slot.workDir.string(), slot.store.get()));
    auto containerizer = slot.host->create<api::Containerizer>(kNative);
    ASSERT_TRUE(containerizer) << containerizer.status().toString();
    slot.containerizer = *containerizer;
    slot.containerizerExecutor = slot.host->executorOf(*containerizer);

    agent::AgentServices services;
    services.runtime = &runtime_;
    services.metrics = &metrics_;
    services.router = router_;
    services.state = slot.store.get();
    services.containerizers = {{kNative, slot.containerizer, slot.containerizerExecutor}};
    agent::AgentOptions options = agentOptions;
    options.workDir = slot.workDir.string();
    options.hostname = fmt::format("agent{}", slot.index);
    options.routePrefix = fmt::format("/slave({})", slot.index);
    options.stateRoot = fmt::format("/agents/{}/", slot.index);
    slot.agent = std::make_unique<agent::Agent>(std::move(services), std::move(options));
    auto started = slot.agent->start();
    ASSERT_TRUE(started) << started.toString();
  }

  /// Stops the agent as a crash would: the agent, its containerizer and its store go away; the
  /// tasks keep running. With `keepContainerizer` only the agent goes (TearDown can then still
  /// kill what it ran).
  void stopAgent(AgentSlot& slot, bool keepContainerizer = false) {
    slot.agent.reset();
    if (keepContainerizer) return;
    if (slot.host) slot.host->stopAll();
    slot.host.reset();
    slot.containerizer = nullptr;
    slot.containerizerExecutor = nullptr;
    slot.store.reset();
  }

  /// A new agent on the same work dir and store, which recovers its tasks; returns once the
  /// master has it back (re-registered, active). Until then the master drops kills for it.
  void restartAgent(AgentSlot& slot) {
    const std::string id = slot.agent ? slot.agent->id() : std::string();
    const double before = reregisteredTime(id);
    stopAgent(slot);
    startAgent(slot);
    ASSERT_TRUE(tessera::testing::waitFor([&] { return reregisteredTime(id) > before; }, kWait))
        << "agent '" << id << "' did not re-register";
  }

  /// Waits until the agent has an id (registered, or recovered from its checkpoint).
  static bool waitRegistered(const AgentSlot& slot) {
    return tessera::testing::waitFor([&] { return !slot.agent->id().empty(); }, kWait);
  }

  /// When the master last saw agent `id` re-register while it is active; 0 if never.
  double reregisteredTime(const std::string& id) {
    auto response = get("/state");
    try {
      auto state = Poco::JSON::Parser().parse(response.body).extract<Poco::JSON::Object::Ptr>();
      auto slaves = state->getArray("slaves");
      for (size_t i = 0; slaves && i < slaves->size(); ++i) {
        auto slave = slaves->getObject(i);
        if (slave->getValue<std::string>("id") != id || !slave->getValue<bool>("active")) continue;
        return slave->optValue<double>("reregistered_time", 0);
      }
    } catch (const Poco::Exception&) {
    }
    return 0;
  }

  AgentSlot& agentAt(size_t i) { return *agents_.at(i); }

  /// A new framework (not subscribed), stopped at TearDown.
  TestFramework& addFramework() {
    frameworks_.push_back(std::make_unique<TestFramework>(runtime_, server_->port()));
    return *frameworks_.back();
  }
  /// Stops and destroys framework `framework`.
  void removeFramework(TestFramework& framework) {
    for (auto it = frameworks_.begin(); it != frameworks_.end(); ++it) {
      if (it->get() == &framework) {
        frameworks_.erase(it);
        return;
      }
    }
  }

  net::ClientResponse post(const std::string& path, const std::string& body,
                           std::vector<std::pair<std::string, std::string>> headers = {
                               {"Content-Type", "application/json"}}) {
    auto response =
        net::httpRequest("POST", "127.0.0.1", server_->port(), path, std::move(headers), body, 10s);
    EXPECT_TRUE(response) << response.status().toString();
    return response ? *response : net::ClientResponse{};
  }
  net::ClientResponse get(const std::string& path) {
    auto response = net::httpRequest("GET", "127.0.0.1", server_->port(), path, {}, "", 10s);
    EXPECT_TRUE(response) << response.status().toString();
    return response ? *response : net::ClientResponse{};
  }

  uint16_t port() const { return server_->port(); }

  master::MasterOptions masterOptions;
  agent::AgentOptions agentOptions;
  runtime::Runtime runtime_;

 private:
  modules::HostServices hostServices(const std::string& role, const std::string& workDir,
                                     api::StateStore* store) {
    modules::HostServices services;
    services.runtime = &runtime_;
    services.role = role;
    services.workDir = workDir;
    services.state = store;
    services.metricsFor = [this](api::Executor& executor) -> std::unique_ptr<api::Metrics> {
      return std::make_unique<runtime::ScopedMetrics>(metrics_, executor);
    };
    services.routerFor = [this](api::Executor& executor) -> std::unique_ptr<api::HttpRouter> {
      return std::make_unique<net::ExecutorRouter>(router_, executor);
    };
    return services;
  }

  // Destroys every container of the agent and waits, so no task outlives the test.
  static void killAllContainers(AgentSlot& slot) {
    if (!slot.containerizer) return;
    auto* containerizer = slot.containerizer;
    auto done = std::make_shared<std::promise<void>>();
    auto future = done->get_future();
    slot.containerizerExecutor->post([containerizer, done] {
      containerizer->containers([containerizer, done](std::vector<std::string> ids) {
        if (ids.empty()) {
          done->set_value();
          return;
        }
        auto left = std::make_shared<size_t>(ids.size());
        for (const auto& id : ids) {
          containerizer->destroy(id, 0ns, [done, left](api::Status) {
            if (--*left == 0) done->set_value();
          });
        }
      });
    });
    future.wait_for(kWait);
  }

  runtime::MetricsRegistry metrics_{runtime_.io()};
  std::shared_ptr<net::Router> router_;
  std::unique_ptr<net::HttpServer> server_;
  state::MemoryStore masterStore_;
  TempDir dir_;
  modules::ModuleManager manager_;
  std::unique_ptr<modules::ModuleHost> masterHost_;
  std::unique_ptr<master::Master> master_;
  std::vector<std::unique_ptr<AgentSlot>> agents_;
  std::vector<std::unique_ptr<TestFramework>> frameworks_;
};

}  // namespace tessera::kernel::cluster::testing
