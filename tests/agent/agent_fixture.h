#pragma once

// The agent tests' fake master and fixture: agent_test.cc's tests and those of the later agent
// features (gc_test.cc, ...).

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>

#include "kernel/agent/agent.h"
#include "kernel/modules/module_host.h"
#include "kernel/modules/module_manager.h"
#include "kernel/net/http_server.h"
#include "kernel/net/transport.h"
#include "kernel/protocol/internal.pb.h"
#include "kernel/runtime/metrics.h"
#include "kernel/runtime/runtime.h"
#include "kernel/state/file_store.h"
#include "tests/support/subprocess.h"

namespace tessera::kernel::agent::fixture {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline constexpr auto kDeadline = 30s;
inline constexpr const char* kNative = "org_tessera_containerizer_native";

// ---- a fake master --------------------------------------------------------------------------

/// Answers `GET /master/transport` and speaks the internal protocol on a TransportServer:
/// registers agents, records what they send, acknowledges status updates when asked to.
class FakeMaster {
 public:
  FakeMaster(runtime::Runtime& runtime, net::Router& router)
      : runtime_(runtime), router_(router), executor_(runtime.makeExecutor()) {
    EXPECT_TRUE(router
                    .addRoute("GET", "/master/transport", executor_.get(),
                              [this](const api::HttpRequest&, api::HttpResponder respond) {
                                std::lock_guard lock(mutex_);
                                if (!server_) {
                                  respond(api::HttpResponse::error(503, "no transport"));
                                  return;
                                }
                                respond(api::HttpResponse::json(
                                    200, fmt::format("{{\"port\":{}}}", server_->port())));
                              })
                    .isOk());
    startTransport();
  }

  ~FakeMaster() {
    router_.removeRoutes(executor_.get());
    stopTransport();
  }

  void startTransport() {
    net::TransportHandlers handlers;
    handlers.onConnected = [this](const net::ConnectionPtr& connection) {
      std::lock_guard lock(mutex_);
      connection_ = connection;
    };
    handlers.onMessage = net::typedMessageHandler<internal::Envelope>(
        [this](const net::ConnectionPtr& connection, internal::Envelope envelope) {
          onMessage(connection, std::move(envelope));
        });
    handlers.onClose = [this](const net::ConnectionPtr& connection, const api::Status&) {
      std::lock_guard lock(mutex_);
      if (connection_ == connection) connection_.reset();
      changed_.notify_all();
    };
    auto server = std::make_unique<net::TransportServer>(runtime_, *executor_, handlers);
    ASSERT_TRUE(server->start().isOk());
    std::lock_guard lock(mutex_);
    server_ = std::move(server);
  }

  void stopTransport() {
    std::unique_ptr<net::TransportServer> server;
    {
      std::lock_guard lock(mutex_);
      server = std::move(server_);
      connection_.reset();
    }
    if (server) server->stop();
    executor_->drain();
  }

  void send(const internal::Envelope& envelope) {
    std::lock_guard lock(mutex_);
    ASSERT_TRUE(connection_);
    connection_->send(envelope);
  }

  void runTask(const std::string& taskId, const std::string& command,
               const std::string& frameworkId = "fw-1", bool killingCapable = false) {
    internal::Envelope envelope;
    auto* run = envelope.mutable_run_task();
    run->mutable_framework()->mutable_id()->set_value(frameworkId);
    if (killingCapable) {
      run->mutable_framework()->add_capabilities()->set_type(
          v1::FrameworkInfo::Capability::TASK_KILLING_STATE);
    }
    run->mutable_framework()->set_name("test-framework");
    auto* task = run->mutable_task();
    task->set_name(taskId);
    task->mutable_task_id()->set_value(taskId);
    task->mutable_command()->set_value(command);
    auto* cpus = task->add_resources();
    cpus->set_name("cpus");
    cpus->set_type(v1::Value::SCALAR);
    cpus->mutable_scalar()->set_value(0.1);
    run->set_role("*");
    send(envelope);
  }

  void killTask(const std::string& taskId, const std::string& frameworkId = "fw-1") {
    internal::Envelope envelope;
    envelope.mutable_kill_task()->mutable_framework_id()->set_value(frameworkId);
    envelope.mutable_kill_task()->mutable_task_id()->set_value(taskId);
    envelope.mutable_kill_task()->mutable_kill_policy()->mutable_grace_period()->set_nanoseconds(0);
    send(envelope);
  }

  void acknowledge(const internal::StatusUpdate& update) {
    internal::Envelope envelope;
    auto* ack = envelope.mutable_status_update_acknowledgement();
    *ack->mutable_agent_id() = update.status().agent_id();
    *ack->mutable_framework_id() = update.framework_id();
    *ack->mutable_task_id() = update.status().task_id();
    ack->set_uuid(update.status().uuid());
    send(envelope);
  }

  /// Waits until `predicate` holds over what was received (under the lock).
  bool waitUntil(const std::function<bool()>& predicate,
                 std::chrono::milliseconds timeout = kDeadline) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, predicate);
  }

  /// The states of the status updates received for `taskId`, in order (duplicates included).
  std::vector<v1::TaskState> states(const std::string& taskId) {
    std::lock_guard lock(mutex_);
    return statesLocked(taskId);
  }

  std::vector<v1::TaskState> statesLocked(const std::string& taskId) const {
    std::vector<v1::TaskState> out;
    for (const auto& update : updates_) {
      if (update.status().task_id().value() == taskId) out.push_back(update.status().state());
    }
    return out;
  }

  /// Waits for an update of `taskId` in `state`; returns the latest such update.
  std::optional<internal::StatusUpdate> waitForState(const std::string& taskId,
                                                     v1::TaskState state) {
    std::optional<internal::StatusUpdate> found;
    waitUntil([&] {
      for (const auto& update : updates_) {
        if (update.status().task_id().value() == taskId && update.status().state() == state) {
          found = update;
        }
      }
      return found.has_value();
    });
    return found;
  }

  bool waitForRegistrations(size_t count) {
    return waitUntil([&] { return registrations_.size() >= count; });
  }

  std::vector<internal::Envelope> registrations() {
    std::lock_guard lock(mutex_);
    return registrations_;
  }

  void shutdownFramework(const std::string& frameworkId) {
    internal::Envelope envelope;
    envelope.mutable_shutdown_framework()->mutable_framework_id()->set_value(frameworkId);
    send(envelope);
  }

  void setAutoAcknowledge(bool value) {
    std::lock_guard lock(mutex_);
    autoAcknowledge_ = value;
  }

 private:
  void onMessage(const net::ConnectionPtr& connection, internal::Envelope envelope) {
    std::lock_guard lock(mutex_);
    internal::Envelope reply;
    if (envelope.has_register_agent() || envelope.has_reregister_agent()) {
      registrations_.push_back(envelope);
      auto* registered = reply.mutable_agent_registered();
      if (envelope.has_register_agent()) {
        registered->mutable_agent_id()->set_value(fmt::format("agent-{}", ++agents_));
      } else {
        *registered->mutable_agent_id() = envelope.reregister_agent().agent_info().id();
        registered->set_reregistered(true);
      }
      registered->mutable_master_info()->set_hostname("fake-master");
      connection->send(reply);
    } else if (envelope.has_status_update()) {
      updates_.push_back(envelope.status_update());
      if (autoAcknowledge_ && envelope.status_update().status().has_uuid()) {
        auto* ack = reply.mutable_status_update_acknowledgement();
        const auto& update = envelope.status_update();
        *ack->mutable_agent_id() = update.status().agent_id();
        *ack->mutable_framework_id() = update.framework_id();
        *ack->mutable_task_id() = update.status().task_id();
        ack->set_uuid(update.status().uuid());
        connection->send(reply);
      }
    }
    changed_.notify_all();
  }

  runtime::Runtime& runtime_;
  net::Router& router_;
  std::unique_ptr<runtime::StrandExecutor> executor_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::unique_ptr<net::TransportServer> server_;
  net::ConnectionPtr connection_;
  std::vector<internal::Envelope> registrations_;
  std::vector<internal::StatusUpdate> updates_;
  bool autoAcknowledge_ = true;
  int agents_ = 0;
};

// ---- the fixture ----------------------------------------------------------------------------

class AgentFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    runtime_.start();
    metrics_ = std::make_unique<runtime::MetricsRegistry>(runtime_.io());
    router_ = std::make_shared<net::Router>();
    server_ = std::make_unique<net::HttpServer>(runtime_, router_);
    ASSERT_TRUE(server_->start().isOk());
    master_ = std::make_unique<FakeMaster>(runtime_, *router_);
    workDir_ = dir_.path() / "work";
    fs::create_directories(workDir_);
    openStore();
    modules::ManifestEntry entry;
    entry.library = TESSERA_BINARY_DIR "/lib/tessera/libtessera_containerizer_native.so";
    entry.module = kNative;
    entry.origin = "test";
    ASSERT_TRUE(manager_.load({entry}).isOk());
    startContainerizer();
  }

  void TearDown() override {
    agent_.reset();
    killAllContainers();
    host_.reset();
    master_.reset();
    server_->stop();
    runtime_.stop();
  }

  void openStore() {
    store_.reset();
    auto store = state::FileStore::open(dir_.path() / "state");
    ASSERT_TRUE(store) << store.status().toString();
    store_ = std::move(store).value();
  }

  void startContainerizer() {
    modules::HostServices services;
    services.runtime = &runtime_;
    services.role = "agent";
    services.workDir = workDir_.string();
    services.state = store_.get();
    services.metricsFor = [this](api::Executor& executor) -> std::unique_ptr<api::Metrics> {
      return std::make_unique<runtime::ScopedMetrics>(*metrics_, executor);
    };
    services.routerFor = [this](api::Executor& executor) -> std::unique_ptr<api::HttpRouter> {
      return std::make_unique<net::ExecutorRouter>(router_, executor);
    };
    host_ = std::make_unique<modules::ModuleHost>(manager_, std::move(services));
    auto created = host_->create<api::Containerizer>(kNative);
    ASSERT_TRUE(created) << created.status().toString();
    containerizer_ = *created;
    containerizerExecutor_ = host_->executorOf(containerizer_);
  }

  AgentOptions options() {
    AgentOptions options;
    options.master = fmt::format("127.0.0.1:{}", server_->port());
    options.httpPort = server_->port();
    options.workDir = workDir_.string();
    options.resources = "cpus:2;mem:1024;disk:1024";
    options.attributes = "rack:r1";
    options.killGracePeriod = 1s;
    options.statusUpdateRetryInterval = 10s;
    return options;
  }

  api::Status startAgent(AgentOptions options) {
    AgentServices services;
    services.runtime = &runtime_;
    services.metrics = metrics_.get();
    services.router = router_;
    services.state = store_.get();
    services.containerizers = {{kNative, containerizer_, containerizerExecutor_}};
    agent_ = std::make_unique<Agent>(std::move(services), std::move(options));
    return agent_->start();
  }

  api::Status startAgent() { return startAgent(options()); }

  /// Simulates a crash of the agent process: the agent and the containerizer go away (the
  /// containers keep running), the store is reopened from disk.
  void crashAgent() {
    agent_.reset();
    host_.reset();
    openStore();
    startContainerizer();
  }

  void killAllContainers() {
    if (!containerizer_ || !host_) return;
    std::promise<void> done;
    auto* containerizer = containerizer_;
    auto* executor = containerizerExecutor_;
    executor->post([&done, containerizer] {
      containerizer->containers([&done, containerizer](std::vector<std::string> ids) {
        auto left = std::make_shared<size_t>(ids.size());
        if (ids.empty()) {
          done.set_value();
          return;
        }
        for (const auto& id : ids) {
          containerizer->destroy(id, 0ns, [&done, left](api::Status) {
            if (--*left == 0) done.set_value();
          });
        }
      });
    });
    done.get_future().wait_for(kDeadline);
  }

  std::string get(const std::string& target, int expectedStatus = 200) {
    auto response = testing::httpRequest(server_->port(), "GET", target);
    EXPECT_TRUE(response) << response.status().toString();
    if (!response) return "";
    EXPECT_EQ(response->status, expectedStatus) << target << ": " << response->body;
    return response->body;
  }

  fs::path sandboxOf(const std::string& taskId, const std::string& frameworkId = "fw-1") {
    fs::path runs = workDir_ / "slaves" / agent_->id() / "frameworks" / frameworkId / "executors" /
                    taskId / "runs";
    for (const auto& entry : fs::directory_iterator(runs)) return entry.path();
    return {};
  }

  std::vector<std::string> containers() {
    std::promise<std::vector<std::string>> promise;
    auto* containerizer = containerizer_;
    containerizerExecutor_->post([&promise, containerizer] {
      containerizer->containers(
          [&promise](std::vector<std::string> ids) { promise.set_value(std::move(ids)); });
    });
    return promise.get_future().get();
  }

  std::vector<std::string> storeChildren(const std::string& prefix) {
    std::promise<std::vector<std::string>> promise;
    auto executor = runtime_.makeExecutor();
    store_->children(prefix, *executor, [&promise](api::Result<std::vector<std::string>> result) {
      promise.set_value(result ? *result : std::vector<std::string>{"<error>"});
    });
    auto children = promise.get_future().get();
    executor->drain();
    return children;
  }

  bool waitForRegistered() {
    return testing::waitFor([&] { return !agent_->id().empty(); }, kDeadline);
  }

  testing::TempDir dir_;
  fs::path workDir_;
  runtime::Runtime runtime_;
  std::unique_ptr<runtime::MetricsRegistry> metrics_;
  std::shared_ptr<net::Router> router_;
  std::unique_ptr<net::HttpServer> server_;
  std::unique_ptr<FakeMaster> master_;
  std::unique_ptr<state::FileStore> store_;
  modules::ModuleManager manager_;
  std::unique_ptr<modules::ModuleHost> host_;
  api::Containerizer* containerizer_ = nullptr;
  api::Executor* containerizerExecutor_ = nullptr;
  std::unique_ptr<Agent> agent_;
};

}  // namespace tessera::kernel::agent::fixture
