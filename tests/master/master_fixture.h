#pragma once

// An in-process master on loopback with the real DRF allocator module, a fake agent speaking
// the internal protocol over the real transport, and a streaming scheduler client.

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "kernel/master/master.h"
#include "kernel/modules/module_host.h"
#include "kernel/modules/module_manager.h"
#include "kernel/net/http_client.h"
#include "kernel/net/http_server.h"
#include "kernel/net/recordio.h"
#include "kernel/net/transport.h"
#include "kernel/net/v1_json.h"
#include "kernel/protocol/internal.pb.h"
#include "kernel/runtime/metrics.h"
#include "kernel/runtime/runtime.h"
#include "kernel/state/file_store.h"
#include "kernel/state/memory_store.h"
#include "tessera/v1/scheduler.pb.h"
#include "tests/support/subprocess.h"
#include "tests/support/wait_queue.h"

namespace tessera::kernel::master::testing {

using namespace std::chrono_literals;
using tessera::testing::TempDir;
using tessera::testing::waitFor;
using tessera::v1::scheduler::Call;
using tessera::v1::scheduler::Event;

inline constexpr auto kWait = std::chrono::seconds(20);

using tessera::testing::WaitQueue;

/// A fake agent: a TransportClient speaking internal::Envelope.
class FakeAgent {
 public:
  FakeAgent(runtime::Runtime& runtime, uint16_t port,
            std::string resources = "cpus:4;mem:4096;disk:1000;ports:[31000-32000]",
            std::string hostname = "agent1")
      : executor_(runtime.makeExecutor()) {
    info_.set_hostname(hostname);
    info_.set_port(5051);
    *info_.mutable_resources() = api::Resources::parse(resources).value().toProto();
    net::TransportHandlers handlers;
    handlers.onConnected = [this](const net::ConnectionPtr&) { connected_.push(1); };
    handlers.onMessage = net::typedMessageHandler<internal::Envelope>(
        [this](const net::ConnectionPtr&, internal::Envelope envelope) {
          received.push(std::move(envelope));
        });
    handlers.onClose = [this](const net::ConnectionPtr&, const api::Status&) { closed_.push(1); };
    net::TransportClientOptions options;
    options.initialBackoff = 20ms;
    options.maxBackoff = 200ms;
    options.transport.heartbeatInterval = 100ms;
    client_ = std::make_unique<net::TransportClient>(runtime, *executor_, "127.0.0.1", port,
                                                     std::move(handlers), options);
  }
  ~FakeAgent() { stop(); }

  void start() {
    client_->start();
    ASSERT_TRUE(connected_.take([](const int&) { return true; }).has_value());
  }
  void stop() {
    if (client_) client_->stop();
    executor_->drain();
  }

  bool send(const internal::Envelope& envelope) { return client_->send(envelope); }

  /// Registers (or re-registers when `id` is known) and returns the assigned id.
  std::string registerAgent(const std::vector<internal::Task>& tasks = {},
                            const std::vector<v1::FrameworkInfo>& frameworks = {}) {
    internal::Envelope envelope;
    if (id.empty()) {
      auto& message = *envelope.mutable_register_agent();
      *message.mutable_agent_info() = info_;
      message.set_version("0.1.0");
      message.set_pid("slave(1)@127.0.0.1:5051");
    } else {
      auto& message = *envelope.mutable_reregister_agent();
      *message.mutable_agent_info() = info_;
      message.mutable_agent_info()->mutable_id()->set_value(id);
      message.set_version("0.1.0");
      message.set_pid("slave(1)@127.0.0.1:5051");
      for (const auto& task : tasks) *message.add_tasks() = task;
      for (const auto& framework : frameworks) *message.add_frameworks() = framework;
      *message.mutable_checkpointed_resources() = checkpointedResources;
    }
    EXPECT_TRUE(send(envelope));
    auto reply = received.take([](const internal::Envelope& e) {
      return e.has_agent_registered() || e.has_agent_refused();
    });
    if (!reply || !reply->has_agent_registered()) {
      ADD_FAILURE() << "agent not registered";
      return "";
    }
    id = reply->agent_registered().agent_id().value();
    return id;
  }

  void sendStatus(const std::string& frameworkId, const std::string& taskId, v1::TaskState state,
                  const std::string& uuid) {
    internal::Envelope envelope;
    auto& update = *envelope.mutable_status_update();
    update.mutable_framework_id()->set_value(frameworkId);
    auto& status = *update.mutable_status();
    status.mutable_task_id()->set_value(taskId);
    status.mutable_agent_id()->set_value(id);
    status.set_state(state);
    status.set_uuid(uuid);
    status.set_source(v1::TaskStatus::SOURCE_AGENT);
    status.set_timestamp(1.0);
    update.set_latest_state(state);
    ASSERT_TRUE(send(envelope));
  }

  std::string id;
  /// The reservations a re-registration reports as checkpointed.
  google::protobuf::RepeatedPtrField<v1::Resource> checkpointedResources;
  WaitQueue<internal::Envelope> received;

 private:
  std::unique_ptr<runtime::StrandExecutor> executor_;
  v1::AgentInfo info_;
  std::unique_ptr<net::TransportClient> client_;
  WaitQueue<int> connected_;
  WaitQueue<int> closed_;
};

/// A scheduler on the v1 HTTP API: SUBSCRIBE on a raw socket, the chunked RecordIO stream read
/// by a thread into `events`; other calls with the blocking client.
class TestScheduler {
 public:
  explicit TestScheduler(uint16_t port) : port_(port) {}
  ~TestScheduler() { disconnect(); }

  /// Subscribes; returns the HTTP status (200 on success, when frameworkId is filled).
  int subscribe(const std::string& frameworkInfoJson) {
    std::string body = fmt::format(
        R"({{"type":"SUBSCRIBE",{}"subscribe":{{"framework_info":{}}}}})",
        frameworkId.empty() ? std::string()
                            : fmt::format(R"("framework_id":{{"value":"{}"}},)", frameworkId),
        frameworkInfoJson);
    socket_ = std::make_unique<boost::asio::ip::tcp::socket>(io_);
    boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"), port_);
    socket_->connect(endpoint);
    std::string request = fmt::format(
        "POST /api/v1/scheduler HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
        "application/json\r\nAccept: application/json\r\n{}Content-Length: {}\r\n\r\n{}",
        fmt::format("{}{}", extraHeaders,
                    authorization.empty() ? std::string()
                                          : fmt::format("Authorization: {}\r\n", authorization)),
        body.size(), body);
    boost::asio::write(*socket_, boost::asio::buffer(request));
    // The head.
    std::string buffer;
    size_t end;
    char chunk[4096];
    while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
      boost::system::error_code ec;
      size_t n = socket_->read_some(boost::asio::buffer(chunk), ec);
      if (ec) return -1;
      buffer.append(chunk, n);
    }
    head = buffer.substr(0, end);
    buffer.erase(0, end + 4);
    int status = std::stoi(head.substr(9, 3));
    std::string lower = head;
    for (char& c : lower) c = static_cast<char>(std::tolower(c));
    if (status != 200) {
      // An error answer: its whole body (chunked up to the last chunk, or Content-Length bytes;
      // the connection may stay open).
      size_t length = std::string::npos;
      if (auto pos = lower.find("content-length: "); pos != std::string::npos) {
        length = std::stoul(lower.substr(pos + 16));
      }
      bool chunked = lower.find("transfer-encoding: chunked") != std::string::npos;
      auto complete = [&] {
        if (chunked) return buffer.find("0\r\n\r\n") != std::string::npos;
        return length != std::string::npos && buffer.size() >= length;
      };
      while (!complete()) {
        boost::system::error_code ec;
        size_t n = socket_->read_some(boost::asio::buffer(chunk), ec);
        if (ec) break;
        buffer.append(chunk, n);
      }
      errorBody = buffer;
      return status;
    }
    if (auto pos = lower.find("mesos-stream-id: "); pos != std::string::npos) {
      streamId = head.substr(pos + 17, head.find("\r\n", pos) - pos - 17);
    }
    reader_ = std::thread([this, buffer]() mutable { readLoop(std::move(buffer)); });
    auto subscribed = next(Event::SUBSCRIBED);
    if (!subscribed) return -2;
    frameworkId = subscribed->subscribed().framework_id().value();
    return status;
  }

  void disconnect() {
    if (socket_) {
      ::shutdown(socket_->native_handle(), SHUT_RDWR);
    }
    if (reader_.joinable()) reader_.join();
    socket_.reset();
  }

  std::optional<Event> next(Event::Type type, std::chrono::milliseconds timeout = kWait) {
    return events.take([type](const Event& e) { return e.type() == type; }, timeout);
  }
  /// The next UPDATE for `taskId`.
  std::optional<Event> update(const std::string& taskId,
                              std::chrono::milliseconds timeout = kWait) {
    return events.take(
        [taskId](const Event& e) {
          return e.type() == Event::UPDATE && e.update().status().task_id().value() == taskId;
        },
        timeout);
  }

  /// Posts a call (JSON text) with this scheduler's stream id; returns the response.
  net::ClientResponse call(const std::string& json, bool withStreamId = true) {
    std::vector<std::pair<std::string, std::string>> headers = {
        {"Content-Type", "application/json"}};
    if (withStreamId) headers.emplace_back("Mesos-Stream-Id", streamId);
    if (!authorization.empty()) headers.emplace_back("Authorization", authorization);
    auto response =
        net::httpRequest("POST", "127.0.0.1", port_, "/api/v1/scheduler", headers, json, 10s);
    EXPECT_TRUE(response.isOk()) << response.status().toString();
    return response.isOk() ? *response : net::ClientResponse{};
  }
  net::ClientResponse call(const Call& call) { return this->call(net::messageToV1Json(call)); }

  std::string frameworkId;
  std::string streamId;
  /// Sent as the `Authorization` header of every request when set.
  std::string authorization;
  /// Raw header lines ("Name: value\r\n") added to SUBSCRIBE.
  std::string extraHeaders;
  /// The head of the last SUBSCRIBE answer, and its raw body when it was not a 200.
  std::string head;
  std::string errorBody;
  WaitQueue<Event> events;
  std::atomic<bool> ended{false};

 private:
  void readLoop(std::string buffer) {
    net::RecordIoDecoder decoder;
    std::string body;  // de-chunked bytes not yet fed
    char chunk[4096];
    for (;;) {
      // De-chunk what is buffered.
      for (;;) {
        size_t line = buffer.find("\r\n");
        if (line == std::string::npos) break;
        size_t size = std::stoul(buffer.substr(0, line), nullptr, 16);
        if (size == 0) {
          ended = true;
          return;
        }
        if (buffer.size() < line + 2 + size + 2) break;
        std::deque<std::string> records;
        (void)decoder.feed(std::string_view(buffer).substr(line + 2, size), records);
        buffer.erase(0, line + 2 + size + 2);
        for (auto& record : records) {
          auto event = net::parseV1Json<Event>(record);
          if (event) events.push(std::move(*event));
        }
      }
      boost::system::error_code ec;
      size_t n = socket_->read_some(boost::asio::buffer(chunk), ec);
      if (ec) return;
      buffer.append(chunk, n);
    }
  }

  uint16_t port_;
  boost::asio::io_context io_;
  std::unique_ptr<boost::asio::ip::tcp::socket> socket_;
  std::thread reader_;
};

/// Runtime, metrics, router + HTTP server, a state store, the DRF allocator module and a master.
class MasterFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    runtime_.start();
    router_ = std::make_shared<net::Router>();
    server_ = std::make_unique<net::HttpServer>(runtime_, router_);
    ASSERT_TRUE(server_->start().isOk());
    store_ = std::make_unique<state::MemoryStore>();
    store = store_.get();
    modules::ManifestEntry entry{
        std::string(TESSERA_BINARY_DIR) + "/lib/tessera/libtessera_allocator_drf.so",
        "org_tessera_allocator_drf",
        api::Parameters(
            std::vector<std::pair<std::string, std::string>>{{"allocation_interval", "50ms"}}),
        "test",
        {}};
    modules::ManifestEntry authenticator{
        std::string(TESSERA_BINARY_DIR) + "/tests/modules/libtest_basic_authenticator.so",
        "org_tessera_test_basic_authenticator",
        api::Parameters(std::vector<std::pair<std::string, std::string>>{
            {"credentials", "alice:secret,bob:hunter2"}}),
        "test",
        {}};
    // Mesos's local authorizer (modules/auth); created only by useAcls().
    modules::ManifestEntry authorizer{
        std::string(TESSERA_BINARY_DIR) + "/lib/tessera/libtessera_authorizer_local.so",
        "org_tessera_authorizer_local",
        api::Parameters(),
        "test",
        {}};
    ASSERT_TRUE(manager_.load({entry, authenticator, authorizer}).isOk());
    modules::HostServices services;
    services.runtime = &runtime_;
    services.role = "master";
    services.state = store;
    services.metricsFor = [this](api::Executor& executor) -> std::unique_ptr<api::Metrics> {
      return std::make_unique<runtime::ScopedMetrics>(metrics_, executor);
    };
    services.routerFor = [this](api::Executor& executor) -> std::unique_ptr<api::HttpRouter> {
      return std::make_unique<net::ExecutorRouter>(router_, executor);
    };
    host_ = std::make_unique<modules::ModuleHost>(manager_, std::move(services));
    auto allocator = host_->create<api::Allocator>("org_tessera_allocator_drf");
    ASSERT_TRUE(allocator.isOk()) << allocator.status().toString();
    allocator_ = *allocator;
    options.httpPort = server_->port();
    options.agentPingTimeout = 100ms;
    options.maxAgentPingTimeouts = 3;
    options.schedulerHeartbeatInterval = 200ms;
    options.cluster = "test";
    options.flags = [] { return std::map<std::string, std::string>{{"port", "5050"}}; };
  }

  void TearDown() override {
    master_.reset();
    if (host_) host_->stopAll();
    if (server_) server_->stop();
    runtime_.stop();
  }

  /// Starts a master on `store`.
  void startMaster() {
    MasterServices services;
    services.runtime = &runtime_;
    services.metrics = &metrics_;
    services.router = router_;
    services.state = store;
    services.allocator = allocator_;
    services.allocatorExecutor = host_->executorOf(allocator_);
    if (authenticator_ != nullptr) {
      services.authenticator = authenticator_;
      services.authenticatorExecutor = host_->executorOf(authenticator_);
      services.moduleReloads = [host = host_.get()] { return host->reloads(); };
    }
    if (authorizer_ != nullptr) {
      services.authorizer = authorizer_;
      services.authorizerExecutor = host_->executorOf(authorizer_);
    }
    master_ = std::make_unique<Master>(services, options);
    ASSERT_TRUE(master_->start().isOk());
  }

  /// Makes the master (started next) ask the test Basic authenticator (alice:secret,
  /// bob:hunter2, unless `parameters` say otherwise); `required` is --authenticate_frameworks.
  void useAuthenticator(bool required,
                        const std::vector<std::pair<std::string, std::string>>& parameters = {}) {
    auto created =
        host_->create<api::Authenticator>("org_tessera_test_basic_authenticator", parameters);
    ASSERT_TRUE(created.isOk()) << created.status().toString();
    authenticator_ = *created;
    options.authenticateFrameworks = required;
  }
  /// An `Authorization: Basic ...` value.
  static std::string basic(const std::string& principal, const std::string& secret) {
    return fmt::format("Basic {}", net::base64Encode(fmt::format("{}:{}", principal, secret)));
  }

  /// GET `path` on the HTTP port, parsed as a JSON object.
  /// Makes the master (started next) ask the local authorizer with `acls` (Mesos's ACL JSON).
  void useAcls(const std::string& acls) {
    auto created = host_->create<api::Authorizer>("org_tessera_authorizer_local", {{"acls", acls}});
    ASSERT_TRUE(created.isOk()) << created.status().toString();
    authorizer_ = *created;
  }

  Poco::JSON::Object::Ptr getJson(const std::string& path) {
    auto response = net::httpRequest("GET", "127.0.0.1", server_->port(), path, {}, "", 10s);
    EXPECT_TRUE(response.isOk());
    if (!response.isOk()) return new Poco::JSON::Object;
    EXPECT_EQ(response->status, 200) << response->body;
    Poco::JSON::Parser parser;
    return parser.parse(response->body).extract<Poco::JSON::Object::Ptr>();
  }
  /// `principal`: sent as the authenticated principal (what the HTTP authentication gate sets).
  net::ClientResponse post(const std::string& path, const std::string& body,
                           const std::string& contentType = "application/json",
                           const std::optional<std::string>& principal = std::nullopt) {
    std::vector<std::pair<std::string, std::string>> headers = {{"Content-Type", contentType}};
    if (principal)
      headers.emplace_back(std::string(net::kAuthenticatedPrincipalHeader), *principal);
    auto response =
        net::httpRequest("POST", "127.0.0.1", server_->port(), path, headers, body, 10s);
    EXPECT_TRUE(response.isOk());
    return response.isOk() ? *response : net::ClientResponse{};
  }

  std::unique_ptr<FakeAgent> makeAgent(
      std::string resources = "cpus:4;mem:4096;disk:1000;ports:[31000-32000]") {
    auto agent = std::make_unique<FakeAgent>(runtime_, master_->transportPort(), resources);
    agent->start();
    return agent;
  }
  /// Uses a file store under `dir` from now on.
  void useFileStore(const std::filesystem::path& dir) {
    auto opened = state::FileStore::open(dir);
    ASSERT_TRUE(opened.isOk()) << opened.status().toString();
    fileStore_ = std::move(opened).value();
    store = fileStore_.get();
  }
  /// Stops the master and starts a new one (new id, new allocator instance) on the same store.
  void restartMaster() {
    master_.reset();
    auto allocator = host_->create<api::Allocator>("org_tessera_allocator_drf");
    ASSERT_TRUE(allocator.isOk()) << allocator.status().toString();
    allocator_ = *allocator;
    startMaster();
  }
  std::unique_ptr<TestScheduler> makeScheduler() {
    return std::make_unique<TestScheduler>(server_->port());
  }

  uint16_t httpPort() const { return server_->port(); }

  runtime::Runtime runtime_;
  runtime::MetricsRegistry metrics_{runtime_.io()};
  std::shared_ptr<net::Router> router_;
  std::unique_ptr<net::HttpServer> server_;
  std::unique_ptr<api::StateStore> store_;
  std::unique_ptr<state::FileStore> fileStore_;  ///< for restart tests; outlives the master
  api::StateStore* store = nullptr;
  modules::ModuleManager manager_;
  std::unique_ptr<modules::ModuleHost> host_;
  api::Allocator* allocator_ = nullptr;
  api::Authenticator* authenticator_ = nullptr;  ///< set by useAuthenticator()
  api::Authorizer* authorizer_ = nullptr;        ///< set by useAcls()
  MasterOptions options;
  std::unique_ptr<Master> master_;
};

inline const char* kFrameworkInfo =
    R"({"user":"test","name":"fw","roles":["web"],"capabilities":[{"type":"MULTI_ROLE"}]})";

}  // namespace tessera::kernel::master::testing
