#pragma once

// A real cluster for the Marathon module's system tests: a `tessera master` process, agent
// processes (each with its own --hostname, attributes and resources, so constraints can be
// tested on one machine) and one or more `tessera marathon` processes hosting
// org_tessera_marathon from the build tree, each on its own free port (with --zk: real
// ZooKeeper, they elect one leader). Helpers send JSON to Marathon's REST API and wait on
// conditions with a deadline.
//
//   class MyTest : public tessera::testing::MarathonTest {};
//   TEST_F(MyTest, X) {
//     startCluster();                 // master + 1 agent + 1 marathon, waits until all answer
//     auto created = post("/v2/apps", R"({"id": "/web", "cmd": "sleep 1000"})");
//     ASSERT_EQ(created.status, 201) << created.body;
//     ASSERT_TRUE(waitUntil([&] { return runningTasks("/web") == 1; }, std::chrono::seconds(60)))
//     << logs();
//   }

#include <Poco/Dynamic/Var.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/cluster_state.h"
#include "tests/support/subprocess.h"
#include "tests/support/zookeeper.h"

namespace tessera::testing {

/// An HTTP answer with its body parsed as JSON when it is JSON (`json` empty otherwise).
struct JsonResponse {
  int status = 0;  // 0: no answer (connection refused, timeout)
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case keys
  Poco::Dynamic::Var json;

  Poco::JSON::Object::Ptr object() const {
    return json.type() == typeid(Poco::JSON::Object::Ptr) ? json.extract<Poco::JSON::Object::Ptr>()
                                                          : nullptr;
  }
  Poco::JSON::Array::Ptr array() const {
    return json.type() == typeid(Poco::JSON::Array::Ptr) ? json.extract<Poco::JSON::Array::Ptr>()
                                                         : nullptr;
  }
};

/// A client of GET /v2/events (Server-Sent Events) on a raw socket: reads events until one
/// matches or the deadline passes.
class EventStreamClient {
 public:
  struct Event {
    std::string event;  // the `event:` line
    std::string data;   // the `data:` lines joined with '\n'
  };

  /// Connects and sends the request; false when the connection fails.
  bool open(uint16_t port, const std::string& target = "/v2/events") {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return false;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) return false;
    const std::string request = fmt::format(
        "GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n", target);
    return ::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(request.size());
  }
  ~EventStreamClient() {
    if (fd_ >= 0) ::close(fd_);
  }

  /// The status line and headers once received ("" until then).
  const std::string& head() const { return head_; }

  /// Reads until an event satisfies `match` (returned) or `timeout` passes (nullopt). Events
  /// read meanwhile are kept in seen().
  std::optional<Event> next(const std::function<bool(const Event&)>& match,
                            std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      while (auto event = parse()) {
        seen_.push_back(*event);
        if (match(*event)) return event;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || fd_ < 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[4096];
      const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (n <= 0) return std::nullopt;
      buffer_.append(buffer, static_cast<size_t>(n));
    }
  }
  const std::vector<Event>& seen() const { return seen_; }

 private:
  // One complete event from the buffer (chunk framing and comments skipped), or nullopt.
  std::optional<Event> parse() {
    if (head_.empty()) {
      const size_t end = buffer_.find("\r\n\r\n");
      if (end == std::string::npos) return std::nullopt;
      head_ = buffer_.substr(0, end);
      raw_ = buffer_.substr(end + 4);
      buffer_.clear();
    } else {
      raw_ += buffer_;
      buffer_.clear();
    }
    // De-chunk what is complete.
    while (true) {
      const size_t line = raw_.find("\r\n");
      if (line == std::string::npos) break;
      size_t size = 0;
      try {
        size = std::stoul(raw_.substr(0, line), nullptr, 16);
      } catch (...) {
        break;
      }
      if (raw_.size() < line + 2 + size + 2) break;
      body_ += raw_.substr(line + 2, size);
      raw_.erase(0, line + 2 + size + 2);
      if (size == 0) break;
    }
    const size_t end = body_.find("\n\n");
    if (end == std::string::npos) return std::nullopt;
    std::string block = body_.substr(0, end);
    body_.erase(0, end + 2);
    Event event;
    size_t start = 0;
    while (start <= block.size()) {
      size_t newline = block.find('\n', start);
      std::string text =
          block.substr(start, newline == std::string::npos ? std::string::npos : newline - start);
      if (text.starts_with("event:")) {
        event.event = text.substr(text.size() > 6 && text[6] == ' ' ? 7 : 6);
      } else if (text.starts_with("data:")) {
        if (!event.data.empty()) event.data += "\n";
        event.data += text.substr(text.size() > 5 && text[5] == ' ' ? 6 : 5);
      }
      if (newline == std::string::npos) break;
      start = newline + 1;
    }
    if (event.event.empty() && event.data.empty()) return parse();  // a comment (keep-alive)
    return event;
  }

  int fd_ = -1;
  std::string head_;
  std::string buffer_;
  std::string raw_;
  std::string body_;
  std::vector<Event> seen_;
};

/// One agent of the cluster.
struct MarathonAgentOptions {
  static constexpr const char* kDefaultResources = "cpus:4;mem:2048;disk:2048;ports:[31000-32000]";

  MarathonAgentOptions() = default;
  /// `MarathonAgentOptions{"alpha.test"}`, `{"beta.test", "cpus:1;mem:512", "rack:r1"}`.
  explicit MarathonAgentOptions(std::string hostname, std::string resources = kDefaultResources,
                                std::string attributes = "")
      : hostname(std::move(hostname)),
        resources(std::move(resources)),
        attributes(std::move(attributes)) {}

  std::string hostname;  // default: agent<i>.test
  std::string resources = kDefaultResources;
  std::string attributes;  // "rack:r1;zone:a"
};

/// What MarathonTest::startCluster() starts.
struct MarathonClusterOptions {
  std::vector<MarathonAgentOptions> agents = {MarathonAgentOptions{}};
  size_t marathons = 1;
  bool zookeeper = false;                  // several marathons need it
  std::vector<std::string> marathonFlags;  // extra flags for every marathon process
};

class MarathonTest : public ::testing::Test {
 protected:
  using AgentOptions = MarathonAgentOptions;
  using Options = MarathonClusterOptions;

  /// Starts the master, the agents and the marathon processes, and waits until the master
  /// sees every agent and a marathon leads (its /ping answers and /v2/leader names a leader).
  /// Use with ASSERT_NO_FATAL_FAILURE.
  void startCluster(Options options = {}) {
    options_ = options;
    if (options.zookeeper || options.marathons > 1) {
      TESSERA_REQUIRE_ZOOKEEPER();
      const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
      zkUrl_ = sharedZooKeeper().url(fmt::format("/marathon/{}-{}", test->name(), ::getpid()));
    }
    master_ = launch({tesseraBinary().string(), "master", fmt::format("--port={}", masterPort_),
                      fmt::format("--work_dir={}", (dir_.path() / "master").string()),
                      "--modules=" + masterManifest(), "--quiet"});
    ASSERT_TRUE(master_);
    ASSERT_TRUE(waitUntil([&] { return httpOk(masterPort_, "/state"); }, std::chrono::seconds(60)))
        << "master did not answer\n"
        << master_->err();
    for (size_t i = 0; i < options.agents.size(); ++i) {
      ASSERT_NO_FATAL_FAILURE(startAgent(options.agents[i]));
    }
    ASSERT_TRUE(waitUntil(
        [&] { return activatedAgents(masterPort_, std::chrono::seconds(3)) == agents_.size(); },
        std::chrono::seconds(60)))
        << "the master does not see every agent\n"
        << logs();
    for (size_t i = 0; i < options.marathons; ++i) ASSERT_NO_FATAL_FAILURE(startMarathon(i));
    ASSERT_TRUE(waitUntil([&] { return leader() >= 0; }, std::chrono::seconds(60)))
        << "no marathon leads\n"
        << logs();
  }

  /// Starts one more agent (its hostname defaults to agent<i>.test).
  void startAgent(AgentOptions agent = {}) {
    const size_t i = agents_.size();
    if (agent.hostname.empty()) agent.hostname = fmt::format("agent{}.test", i);
    const uint16_t port = freePort();
    std::vector<std::string> argv = {
        tesseraBinary().string(),
        "agent",
        fmt::format("--port={}", port),
        fmt::format("--master=127.0.0.1:{}", masterPort_),
        fmt::format("--work_dir={}", (dir_.path() / fmt::format("agent{}", i)).string()),
        fmt::format("--resources={}", agent.resources),
        fmt::format("--hostname={}", agent.hostname),
        "--ip=127.0.0.1",
        "--modules=" + agentManifest(),
        "--quiet"};
    if (!agent.attributes.empty()) argv.push_back(fmt::format("--attributes={}", agent.attributes));
    auto process = launch(std::move(argv));
    ASSERT_TRUE(process);
    ASSERT_TRUE(waitUntil([&] { return httpOk(port, "/state"); }, std::chrono::seconds(60)))
        << "agent " << i << " did not answer\n"
        << process->err();
    agents_.push_back(std::move(process));
    agentPorts_.push_back(port);
  }

  /// (Re)starts marathon process `i` on its port (kept across restarts).
  void startMarathon(size_t i) {
    if (marathons_.size() <= i) marathons_.resize(i + 1);
    if (marathonPorts_.size() <= i) marathonPorts_.resize(i + 1, 0);
    if (marathonPorts_[i] == 0) marathonPorts_[i] = freePort();
    std::vector<std::string> argv = {tesseraBinary().string(),
                                     "marathon",
                                     fmt::format("--master=127.0.0.1:{}", masterPort_),
                                     fmt::format("--http_port={}", marathonPorts_[i]),
                                     "--http_address=127.0.0.1",
                                     "--hostname=127.0.0.1",
                                     "--framework_name=marathon",
                                     "--modules=" + marathonManifest(),
                                     "--quiet"};
    if (!zkUrl_.empty()) {
      argv.push_back(fmt::format("--zk={}", zkUrl_));
      argv.push_back("--zk_session_timeout=2000");
    } else {
      argv.push_back(
          fmt::format("--work_dir={}", (dir_.path() / fmt::format("marathon{}", i)).string()));
    }
    argv.insert(argv.end(), options_.marathonFlags.begin(), options_.marathonFlags.end());
    marathons_[i] = launch(std::move(argv));
    ASSERT_TRUE(marathons_[i]);
  }

  /// The index of the marathon process that leads (its own /v2/leader names itself) and is
  /// ready (GET /v2/apps answers 200), -1 when none does yet.
  int leader() {
    for (size_t i = 0; i < marathons_.size(); ++i) {
      if (!marathons_[i] || !marathons_[i]->running()) continue;
      auto answer = request("GET", "/v2/leader", "", i);
      auto object = answer.object();
      if (answer.status != 200 || !object || !object->has("leader")) continue;
      if (object->getValue<std::string>("leader") !=
          fmt::format("127.0.0.1:{}", marathonPorts_[i])) {
        continue;
      }
      // And ready: it has read its apps (until then the API answers 503).
      if (request("GET", "/v2/apps", "", i).status == 200) return static_cast<int>(i);
    }
    return -1;
  }

  /// A request to marathon `i` (default: the first that runs). `body` is sent as JSON.
  JsonResponse request(const std::string& method, const std::string& target,
                       const std::string& body = "", std::optional<size_t> i = std::nullopt,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    size_t index = i.value_or(0);
    if (!i) {
      for (size_t j = 0; j < marathons_.size(); ++j) {
        if (marathons_[j] && marathons_[j]->running()) {
          index = j;
          break;
        }
      }
    }
    JsonResponse out;
    if (index >= marathonPorts_.size()) return out;
    auto response = httpRequest(marathonPorts_[index], method, target, body, timeout);
    if (!response) return out;
    out.status = response->status;
    out.body = response->body;
    out.headers = response->headers;
    try {
      if (!out.body.empty()) out.json = Poco::JSON::Parser().parse(out.body);
    } catch (const Poco::Exception&) {
    }
    return out;
  }
  JsonResponse get(const std::string& target) { return request("GET", target); }
  JsonResponse post(const std::string& target, const std::string& body) {
    return request("POST", target, body);
  }
  JsonResponse put(const std::string& target, const std::string& body) {
    return request("PUT", target, body);
  }
  JsonResponse del(const std::string& target) { return request("DELETE", target); }

  /// Polls `condition` until it holds or `timeout` passes.
  static bool waitUntil(const std::function<bool()>& condition,
                        std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    return waitFor(condition, timeout);
  }

  /// The tasks of `appId` Marathon lists (GET /v2/apps/{id}/tasks), in state `state` (any
  /// state when empty). Empty when the app is unknown.
  std::vector<Poco::JSON::Object::Ptr> tasks(const std::string& appId,
                                             const std::string& state = "TASK_RUNNING") {
    std::vector<Poco::JSON::Object::Ptr> out;
    auto answer = get(fmt::format("/v2/apps{}/tasks", appId));
    auto object = answer.object();
    if (answer.status != 200 || !object) return out;
    auto list = object->getArray("tasks");
    for (size_t i = 0; list && i < list->size(); ++i) {
      auto task = list->getObject(i);
      if (state.empty() || task->optValue<std::string>("state", "") == state) out.push_back(task);
    }
    return out;
  }
  size_t runningTasks(const std::string& appId) { return tasks(appId).size(); }

  /// The tasks of the framework called `name` in the master's /state that are TASK_RUNNING.
  size_t masterRunningTasks(const std::string& name = "marathon") {
    size_t running = 0;
    auto state = getJson(masterPort_, "/state", std::chrono::seconds(3));
    if (!state) return 0;
    auto frameworks = state->getArray("frameworks");
    for (size_t i = 0; frameworks && i < frameworks->size(); ++i) {
      auto framework = frameworks->getObject(i);
      if (framework->optValue<std::string>("name", "") != name) continue;
      auto list = framework->getArray("tasks");
      for (size_t j = 0; list && j < list->size(); ++j) {
        if (list->getObject(j)->optValue<std::string>("state", "") == "TASK_RUNNING") ++running;
      }
    }
    return running;
  }

  /// Waits until no deployment is running (GET /v2/deployments is empty).
  bool awaitDeployments(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    return waitUntil(
        [&] {
          auto answer = get("/v2/deployments");
          auto list = answer.array();
          return answer.status == 200 && list && list->size() == 0;
        },
        timeout);
  }

  /// Every process's stderr, for failure messages.
  std::string logs() {
    std::string out;
    if (master_) out += "--- master:\n" + master_->err() + "\n";
    for (size_t i = 0; i < agents_.size(); ++i) {
      if (agents_[i]) out += fmt::format("--- agent {}:\n{}\n", i, agents_[i]->err());
    }
    for (size_t i = 0; i < marathons_.size(); ++i) {
      if (marathons_[i]) out += fmt::format("--- marathon {}:\n{}\n", i, marathons_[i]->err());
    }
    return out;
  }

  static std::filesystem::path libDir() {
    return std::filesystem::path(TESSERA_BINARY_DIR) / "lib" / "tessera";
  }

  static std::string masterManifest() {
    return fmt::format(
        R"({{"libraries": [{{"file": "{}", "modules": [{{"name": "org_tessera_allocator_drf",
    "parameters": [{{"key": "allocation_interval", "value": "100ms"}}]}}]}}]}})",
        (libDir() / "libtessera_allocator_drf.so").string());
  }
  static std::string agentManifest() {
    return fmt::format(
        R"({{"libraries": [{{"file": "{}", "modules": [{{"name": "org_tessera_containerizer_native"}}]}}]}})",
        (libDir() / "libtessera_containerizer_native.so").string());
  }
  static std::string marathonManifest() {
    return fmt::format(
        R"({{"libraries": [{{"file": "{}", "modules": [{{"name": "org_tessera_marathon",
    "aliases": ["marathon"]}}]}}]}})",
        (libDir() / "libtessera_framework_marathon.so").string());
  }

  std::unique_ptr<Subprocess> launch(std::vector<std::string> argv) {
    auto process = Subprocess::start({std::move(argv),
                                      {{"TESSERA_CONFIG_DIR", config_.path().string()},
                                       {"MARATHON_CONFIG_DIR", config_.path().string()}},
                                      {},
                                      std::nullopt});
    EXPECT_TRUE(process) << process.status().message();
    return process ? std::move(process).value() : nullptr;
  }

  static bool httpOk(uint16_t port, const std::string& path) {
    auto response = httpRequest(port, "GET", path, "", std::chrono::seconds(3));
    return response && response->status == 200;
  }

  TempDir dir_;
  TempDir config_;
  Options options_;
  std::string zkUrl_;
  uint16_t masterPort_ = freePort();
  std::unique_ptr<Subprocess> master_;
  std::vector<std::unique_ptr<Subprocess>> agents_;
  std::vector<uint16_t> agentPorts_;
  std::vector<std::unique_ptr<Subprocess>> marathons_;
  std::vector<uint16_t> marathonPorts_;
};

}  // namespace tessera::testing
