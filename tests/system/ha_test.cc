// High availability with real processes: three `tessera master --zk` on a real ZooKeeper, agents
// and `tessera execute` following the leader through zk:// URLs, leaders killed with SIGKILL or
// stopped past their session timeout, ZooKeeper servers killed.
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h>

#include <fstream>
#include <sstream>

#include "tests/support/cluster_state.h"
#include "tests/support/subprocess.h"
#include "tests/support/zookeeper.h"

namespace tessera::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

// A master may be stopped or gone: ask it briefly.
constexpr std::chrono::milliseconds kRequestTimeout = 3s;

/// A bare v1 HTTP scheduler for the tests that must make calls the CLI does not: SUBSCRIBE on
/// its own connection (the chunked RecordIO stream is read on demand), other calls on new ones.
class RawScheduler {
 public:
  RawScheduler() = default;
  RawScheduler(const RawScheduler&) = delete;
  RawScheduler& operator=(const RawScheduler&) = delete;
  ~RawScheduler() {
    if (fd_ >= 0) ::close(fd_);
  }

  /// Subscribes at `port`; true once SUBSCRIBED arrived (frameworkId and the stream id set).
  bool subscribe(uint16_t port, const std::string& frameworkInfo) {
    port_ = port;
    fd_ = connectTo(port);
    if (fd_ < 0) return false;
    std::string body =
        fmt::format(R"({{"type":"SUBSCRIBE","subscribe":{{"framework_info":{}}}}})", frameworkInfo);
    std::string request = fmt::format(
        "POST /api/v1/scheduler HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Accept: application/json\r\nContent-Length: {}\r\n\r\n{}",
        body.size(), body);
    if (::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) != ssize_t(request.size())) {
      return false;
    }
    auto deadline = std::chrono::steady_clock::now() + 30s;
    size_t end;
    while ((end = raw_.find("\r\n\r\n")) == std::string::npos) {
      if (!readSome(deadline)) return false;
    }
    std::string head = raw_.substr(0, end);
    raw_.erase(0, end + 4);
    if (head.rfind("HTTP/1.1 200", 0) != 0) return false;
    std::string lower = head;
    for (char& c : lower) c = static_cast<char>(std::tolower(c));
    auto at = lower.find("mesos-stream-id: ");
    if (at == std::string::npos) return false;
    streamId = head.substr(at + 17, head.find("\r\n", at) - at - 17);
    auto subscribed = next("SUBSCRIBED", deadline);
    if (!subscribed) return false;
    frameworkId = subscribed->getObject("subscribed")
                      ->getObject("framework_id")
                      ->getValue<std::string>("value");
    return true;
  }

  /// The next event of `type` before `deadline` (others are skipped).
  Poco::JSON::Object::Ptr next(const std::string& type,
                               std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      while (auto record = takeRecord()) {
        Poco::JSON::Parser parser;
        auto event = parser.parse(*record).extract<Poco::JSON::Object::Ptr>();
        if (event->optValue<std::string>("type", "") == type) return event;
      }
      if (!readSome(deadline)) return nullptr;
    }
  }

  /// Posts `call` with the stream id; the HTTP status (0 if there was no answer).
  int call(const std::string& call) {
    int fd = connectTo(port_);
    if (fd < 0) return 0;
    std::string request = fmt::format(
        "POST /api/v1/scheduler HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nMesos-Stream-Id: {}\r\nContent-Length: {}\r\n\r\n{}",
        streamId, call.size(), call);
    int status = 0;
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == ssize_t(request.size())) {
      char buffer[512];
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 10000) > 0) {
        ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
        if (n >= 12) status = std::stoi(std::string(buffer + 9, 3));
      }
    }
    ::close(fd);
    return status;
  }

  std::string frameworkId;
  std::string streamId;

 private:
  static int connectTo(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  bool readSome(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return left.count() > 0;
    char buffer[8192];
    ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
    if (n <= 0) return false;
    raw_.append(buffer, n);
    return true;
  }

  /// One whole RecordIO record from the de-chunked stream, if one has arrived.
  std::optional<std::string> takeRecord() {
    for (;;) {  // de-chunk what is whole
      size_t eol = raw_.find("\r\n");
      if (eol == std::string::npos) break;
      size_t size = std::stoul(raw_.substr(0, eol), nullptr, 16);
      if (raw_.size() < eol + 2 + size + 2) break;
      body_ += raw_.substr(eol + 2, size);
      raw_.erase(0, eol + 2 + size + 2);
    }
    size_t newline = body_.find('\n');
    if (newline == std::string::npos) return std::nullopt;
    size_t length = std::stoul(body_.substr(0, newline));
    if (body_.size() < newline + 1 + length) return std::nullopt;
    std::string record = body_.substr(newline + 1, length);
    body_.erase(0, newline + 1 + length);
    return record;
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::string raw_;   // received, still chunked
  std::string body_;  // de-chunked, not yet split into records
};

// An ACCEPT of the first offer in `event` that dynamically reserves one cpu for `role`.
std::string reserveOneCpuCall(const std::string& frameworkId, const Poco::JSON::Object::Ptr& event,
                              const std::string& role) {
  const std::string offerId = event->getObject("offers")
                                  ->getArray("offers")
                                  ->getObject(0)
                                  ->getObject("id")
                                  ->getValue<std::string>("value");
  return fmt::format(
      R"({{"framework_id":{{"value":"{}"}},"type":"ACCEPT","accept":{{"offer_ids":[{{"value":"{}"}}],)"
      R"("operations":[{{"type":"RESERVE","reserve":{{"resources":[{{"name":"cpus","type":"SCALAR",)"
      R"("scalar":{{"value":1}},"reservations":[{{"type":"DYNAMIC","role":"{}","principal":"p"}}]}}]}}}}],)"
      R"("filters":{{"refuse_seconds":0}}}}}})",
      frameworkId, offerId, role);
}

/// The cpus of an OFFERS event: reserved to `role`, and unreserved.
std::pair<double, double> offeredCpus(const Poco::JSON::Object::Ptr& event,
                                      const std::string& role) {
  double reserved = 0, unreserved = 0;
  auto offers = event->getObject("offers")->getArray("offers");
  for (size_t i = 0; offers && i < offers->size(); ++i) {
    auto resources = offers->getObject(i)->getArray("resources");
    for (size_t j = 0; resources && j < resources->size(); ++j) {
      auto resource = resources->getObject(j);
      if (resource->getValue<std::string>("name") != "cpus") continue;
      double value = resource->getObject("scalar")->getValue<double>("value");
      auto reservations = resource->getArray("reservations");
      if (!reservations || reservations->size() == 0) {
        unreserved += value;
      } else if (reservations->getObject(reservations->size() - 1)->getValue<std::string>("role") ==
                 role) {
        reserved += value;
      }
    }
  }
  return {reserved, unreserved};
}

// Of an agent with one cpu reserved to "web" and one not, the master at `port` offers another
// role the unreserved cpu only, and "web" the reserved one.
void expectReservedCpuOfferedToWebOnly(uint16_t port) {
  RawScheduler other;
  ASSERT_TRUE(other.subscribe(port, R"({"user":"u","name":"other","roles":["other"]})"));
  auto otherOffers = other.next("OFFERS", std::chrono::steady_clock::now() + 60s);
  ASSERT_TRUE(otherOffers);
  EXPECT_EQ(offeredCpus(otherOffers, "web"), std::make_pair(0.0, 1.0));
  RawScheduler web;
  ASSERT_TRUE(web.subscribe(port, R"({"user":"u","name":"web","roles":["web"]})"));
  auto webOffers = web.next("OFFERS", std::chrono::steady_clock::now() + 60s);
  ASSERT_TRUE(webOffers);
  EXPECT_EQ(offeredCpus(webOffers, "web"), std::make_pair(1.0, 0.0));
}

class HaTest : public ::testing::Test {
 protected:
  void SetUp() override { TESSERA_REQUIRE_ZOOKEEPER(); }

  void TearDown() override {
    // A task still looping ends by itself.
    std::ofstream(dir_.path() / "stop") << "now";
  }

  void startZooKeeper(int servers) {
    auto started = ZooKeeperEnsemble::start(servers);
    ASSERT_TRUE(started) << started.status().toString();
    zk_ = std::move(*started);
    url_ = zk_->url("/tessera");
  }

  std::map<std::string, std::string> env() const {
    return {{"TESSERA_CONFIG_DIR", config_.path().string()}};
  }

  // Master i (0-based) on its own port; waits for its HTTP port.
  void startMaster(int i, std::vector<std::string> extra = {}) {
    if (masterPorts_.size() <= static_cast<size_t>(i)) masterPorts_.resize(i + 1, 0);
    if (masters_.size() <= static_cast<size_t>(i)) masters_.resize(i + 1);
    if (masterPorts_[i] == 0) masterPorts_[i] = freePort();
    std::vector<std::string> argv = {
        tesseraBinary().string(),
        "master",
        fmt::format("--zk={}", url_),
        "--quorum=2",
        "--zk_session_timeout=2secs",
        "--agent_reregister_timeout=1mins",
        fmt::format("--port={}", masterPorts_[i]),
        fmt::format("--work_dir={}", (dir_.path() / fmt::format("m{}", i)).string()),
        "--quiet"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto process = Subprocess::start({argv, env(), {}, std::nullopt});
    ASSERT_TRUE(process) << process.status().message();
    masters_[i] = std::move(*process);
    const uint16_t port = masterPorts_[i];
    ASSERT_TRUE(waitFor(
        [&] {
          auto r = httpRequest(port, "GET", "/health", "", 2s);
          return r && r->status == 200;
        },
        60s))
        << "master " << i << " not healthy: " << masters_[i]->err();
  }

  // The master the others point at, via `tessera resolve`: its index, or -1.
  int resolveLeader() {
    auto process = Subprocess::start(
        {{tesseraBinary().string(), "resolve", "--timeout=3secs", url_}, env(), {}, std::nullopt});
    if (!process) return -1;
    if (!(*process)->wait(20s) || (*process)->exitCode() != 0) return -1;
    std::string out = (*process)->out();
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    for (size_t i = 0; i < masterPorts_.size(); ++i) {
      if (out == fmt::format("127.0.0.1:{}", masterPorts_[i])) return static_cast<int>(i);
    }
    return -1;
  }

  // The master whose own /state says it leads (its pid is the leader), and how many do.
  std::pair<int, int> selfDeclaredLeaders() {
    int leader = -1, count = 0;
    for (size_t i = 0; i < masters_.size(); ++i) {
      if (!masters_[i] || !masters_[i]->running()) continue;
      auto state = getJson(masterPorts_[i], "/state", kRequestTimeout);
      if (!state || !state->has("leader")) continue;
      if (state->getValue<std::string>("leader") == state->getValue<std::string>("pid")) {
        leader = static_cast<int>(i);
        ++count;
      }
    }
    return {leader, count};
  }

  // Waits until one master leads, everyone agrees on it, and resolve names it.
  int awaitLeader(int notThis = -1) {
    int leader = -1;
    bool settled = waitFor(
        [&] {
          auto [self, count] = selfDeclaredLeaders();
          if (count != 1 || self == notThis) return false;
          leader = self;
          return resolveLeader() == self;
        },
        60s);
    return settled ? leader : -1;
  }

  std::unique_ptr<Subprocess> startAgent() {
    agentPort_ = freePort();
    auto process =
        Subprocess::start({{tesseraBinary().string(), "agent", fmt::format("--port={}", agentPort_),
                            fmt::format("--master={}", url_),
                            fmt::format("--work_dir={}", (dir_.path() / "agent").string()),
                            "--resources=cpus:2;mem:1024;disk:1024;ports:[31000-31100]", "--quiet"},
                           env(),
                           {},
                           std::nullopt});
    EXPECT_TRUE(process) << process.status().message();
    return process ? std::move(*process) : nullptr;
  }

  // The agent is active at master `i` within a minute (else its stderr says why not).
  ::testing::AssertionResult agentActiveAt(int i, const Subprocess& agent) {
    if (waitFor([&] { return activatedAgents(masterPorts_[i], kRequestTimeout) == 1; }, 60s)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "the agent is not active at master " << i << ":\n"
                                         << agent.err();
  }

  TempDir dir_;
  TempDir config_;
  std::unique_ptr<ZooKeeperEnsemble> zk_;
  std::string url_;
  std::vector<uint16_t> masterPorts_;
  std::vector<std::unique_ptr<Subprocess>> masters_;
  uint16_t agentPort_ = 0;
};

TEST_F(HaTest, ThreeMastersElectOneAndTheOthersRedirectToIt) {
  startZooKeeper(1);
  for (int i = 0; i < 3; ++i) startMaster(i);
  const int leader = awaitLeader();
  ASSERT_GE(leader, 0);
  EXPECT_EQ(selfDeclaredLeaders().second, 1);
  const std::string leaderAddress = fmt::format("127.0.0.1:{}", masterPorts_[leader]);
  for (int i = 0; i < 3; ++i) {
    // Every master's /state names the leader.
    auto state = getJson(masterPorts_[i], "/state", kRequestTimeout);
    ASSERT_TRUE(state) << i;
    EXPECT_EQ(state->getValue<std::string>("leader"), "master@" + leaderAddress) << i;
    ASSERT_TRUE(state->getObject("leader_info")) << i;
    EXPECT_EQ(state->getObject("leader_info")->getValue<int>("port"), masterPorts_[leader]);
    if (i == leader) continue;
    // A follower sends API calls and the UI to the leader.
    auto call = httpRequest(masterPorts_[i], "POST", "/api/v1/scheduler?x=1", "{}");
    ASSERT_TRUE(call);
    EXPECT_EQ(call->status, 307);
    EXPECT_EQ(call->headers["location"], "//" + leaderAddress + "/api/v1/scheduler?x=1");
    auto redirect = httpRequest(masterPorts_[i], "GET", "/master/redirect");
    ASSERT_TRUE(redirect);
    EXPECT_EQ(redirect->status, 307);
    EXPECT_EQ(redirect->headers["location"], "//" + leaderAddress);
    auto transport = httpRequest(masterPorts_[i], "GET", "/master/transport");
    ASSERT_TRUE(transport);
    EXPECT_EQ(transport->status, 503);
  }
  auto transport = httpRequest(masterPorts_[leader], "GET", "/master/transport");
  ASSERT_TRUE(transport);
  EXPECT_EQ(transport->status, 200);

  // The seed-era name finds the same leader (Mesos's flag spelling).
  TempDir bin;
  fs::create_symlink(tesseraBinary(), bin.path() / "mesos-resolve");
  auto resolve = Subprocess::start(
      {{(bin.path() / "mesos-resolve").string(), "--master=" + url_}, env(), {}, std::nullopt});
  ASSERT_TRUE(resolve);
  ASSERT_TRUE((*resolve)->wait(30s));
  EXPECT_EQ((*resolve)->exitCode(), 0) << (*resolve)->err();
  EXPECT_EQ((*resolve)->out(), leaderAddress + "\n");
  // Nothing leads under another path: a clear error, exit 1.
  auto none = Subprocess::start(
      {{tesseraBinary().string(), "resolve", "--timeout=1secs", zk_->url("/nobody")},
       env(),
       {},
       std::nullopt});
  ASSERT_TRUE(none);
  ASSERT_TRUE((*none)->wait(30s));
  EXPECT_EQ((*none)->exitCode(), 1);
  EXPECT_THAT((*none)->err(), HasSubstr("no leading master found under '" + zk_->url("/nobody") +
                                        "' within 1secs"));
}

TEST_F(HaTest, KillingTheLeaderElectsAnotherAndNothingIsLost) {
  startZooKeeper(1);
  for (int i = 0; i < 3; ++i) startMaster(i);
  const int first = awaitLeader();
  ASSERT_GE(first, 0);
  auto agent = startAgent();
  ASSERT_TRUE(agent);
  ASSERT_TRUE(agentActiveAt(first, *agent));

  auto pidFile = dir_.path() / "task.pid";
  auto stopFile = dir_.path() / "stop";
  auto run = Subprocess::start(
      {{tesseraBinary().string(), "execute", fmt::format("--master={}", url_), "--name=survivor",
        fmt::format("--command=echo $$ > {}; while [ ! -e {} ]; do sleep 0.1; done",
                    pidFile.string(), stopFile.string())},
       env(),
       {},
       std::nullopt});
  ASSERT_TRUE(run);
  ASSERT_TRUE(waitFor(
      [&] { return taskState(masterPorts_[first], "survivor", kRequestTimeout) == "TASK_RUNNING"; },
      60s))
      << (*run)->out() << (*run)->err();
  ASSERT_TRUE(waitFor([&] { return fs::exists(pidFile) && fs::file_size(pidFile) > 0; }));
  pid_t taskPid = 0;
  std::ifstream(pidFile) >> taskPid;
  ASSERT_GT(taskPid, 0);

  masters_[first]->kill(SIGKILL);
  ASSERT_TRUE(masters_[first]->wait(10s));
  const int second = awaitLeader(first);
  ASSERT_GE(second, 0);
  ASSERT_NE(second, first);
  // The agent re-registers with the new leader, bringing the running task; the framework
  // re-subscribes with its id and still gets the task's updates.
  ASSERT_TRUE(agentActiveAt(second, *agent));
  ASSERT_TRUE(waitFor(
      [&] {
        return taskState(masterPorts_[second], "survivor", kRequestTimeout) == "TASK_RUNNING";
      },
      60s));
  EXPECT_EQ(::kill(taskPid, 0), 0) << "the task died in the failover";
  ASSERT_TRUE(waitFor(
      [&] {
        auto out = (*run)->out();
        return out.find("Subscribed") != out.rfind("Subscribed");  // twice
      },
      60s))
      << (*run)->out() << (*run)->err();

  // The old leader comes back as a follower.
  startMaster(first);
  ASSERT_TRUE(waitFor(
      [&] {
        auto redirect = httpRequest(masterPorts_[first], "GET", "/master/redirect");
        return redirect && redirect->status == 307 &&
               redirect->headers["location"] == fmt::format("//127.0.0.1:{}", masterPorts_[second]);
      },
      60s));
  EXPECT_EQ(selfDeclaredLeaders(), std::make_pair(second, 1));

  // The task ends normally and the framework hears it from the new leader.
  std::ofstream(stopFile) << "now";
  ASSERT_TRUE((*run)->wait(60s)) << (*run)->out() << (*run)->err();
  EXPECT_EQ((*run)->exitCode(), 0) << (*run)->out() << (*run)->err();
  EXPECT_THAT((*run)->out(), HasSubstr("TASK_FINISHED"));
  EXPECT_EQ(taskState(masterPorts_[second], "survivor", kRequestTimeout), "TASK_FINISHED");
}

TEST_F(HaTest, ALeaderStoppedPastItsSessionTimeoutStepsDown) {
  startZooKeeper(1);
  for (int i = 0; i < 2; ++i) startMaster(i);
  const int first = awaitLeader();
  ASSERT_GE(first, 0);
  masters_[first]->kill(SIGSTOP);
  // Its session expires; the other master takes over.
  const int second = [&] {
    int found = -1;
    waitFor(
        [&] {
          found = resolveLeader();
          return found >= 0 && found != first;
        },
        60s);
    return found;
  }();
  masters_[first]->kill(SIGCONT);
  ASSERT_GE(second, 0);
  ASSERT_NE(second, first);
  // Resumed, the old leader finds its session gone and exits rather than lead beside it.
  ASSERT_TRUE(masters_[first]->wait(30s)) << "the old leader kept running";
  EXPECT_EQ(masters_[first]->exitCode(), 1);
  EXPECT_EQ(awaitLeader(first), second);
}

TEST_F(HaTest, OneZooKeeperOfThreeDownAndTheClusterGoesOn) {
  startZooKeeper(3);
  for (int i = 0; i < 2; ++i) startMaster(i);
  const int first = awaitLeader();
  ASSERT_GE(first, 0);
  zk_->kill(0);
  // Still one leader that everyone agrees on; a failover still works on two servers.
  EXPECT_EQ(awaitLeader(), first);
  masters_[first]->kill(SIGKILL);
  ASSERT_TRUE(masters_[first]->wait(10s));
  const int second = awaitLeader(first);
  EXPECT_GE(second, 0);
  EXPECT_NE(second, first);
}

TEST_F(HaTest, AnInMemoryRegistryStaysOutOfZooKeeperAndAgentsReregisterAfterAFailover) {
  startZooKeeper(1);
  for (int i = 0; i < 2; ++i) startMaster(i, {"--registry=in_memory"});
  const int first = awaitLeader();
  ASSERT_GE(first, 0);
  auto agent = startAgent();
  ASSERT_TRUE(agent);
  ASSERT_TRUE(agentActiveAt(first, *agent));
  // The leader admitted the agent, in its memory: ZooKeeper holds the election only.
  zoo_set_debug_level(static_cast<ZooLogLevel>(0));  // the client library's chatter
  zhandle_t* zh = zookeeper_init(zk_->connectString().c_str(), nullptr, 10000, nullptr, nullptr, 0);
  ASSERT_NE(zh, nullptr);
  ASSERT_TRUE(waitFor([&] { return zoo_state(zh) == ZOO_CONNECTED_STATE; }, 30s));
  EXPECT_EQ(zoo_exists(zh, "/tessera", 0, nullptr), ZOK);
  EXPECT_EQ(zoo_exists(zh, "/tessera/state", 0, nullptr), ZNONODE);
  zookeeper_close(zh);

  // The next leader starts with no agents; the agent re-registers with it.
  masters_[first]->kill(SIGKILL);
  ASSERT_TRUE(masters_[first]->wait(10s));
  const int second = awaitLeader(first);
  ASSERT_GE(second, 0);
  ASSERT_TRUE(agentActiveAt(second, *agent));
}

// Weights and quota set on the leader are in the registry in ZooKeeper: after a SIGKILL the new
// leader serves them. Followers send the endpoints to the leader.
TEST_F(HaTest, WeightsAndQuotaSurviveALeaderKill) {
  startZooKeeper(1);
  for (int i = 0; i < 3; ++i) startMaster(i, {"--weights=flag=3"});
  const int first = awaitLeader();
  ASSERT_GE(first, 0);
  const uint16_t leaderPort = masterPorts_[first];
  const int follower = (first + 1) % 3;
  const std::vector<std::pair<std::string, std::string>> calls = {{"GET", "/weights"},
                                                                  {"PUT", "/weights"},
                                                                  {"GET", "/quota"},
                                                                  {"POST", "/quota"},
                                                                  {"DELETE", "/quota/web"}};
  for (const auto& [method, path] : calls) {
    auto redirected = httpRequest(masterPorts_[follower], method, path, "[]");
    ASSERT_TRUE(redirected) << method << " " << path;
    EXPECT_EQ(redirected->status, 307) << method << " " << path;
    EXPECT_EQ(redirected->headers["location"], fmt::format("//127.0.0.1:{}{}", leaderPort, path));
  }

  auto weights = httpRequest(leaderPort, "GET", "/weights");
  ASSERT_TRUE(weights);
  EXPECT_EQ(weights->body, R"([{"role":"flag","weight":3}])");
  auto put = httpRequest(leaderPort, "PUT", "/weights", R"([{"role":"web","weight":2.5}])");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 200) << put->body;
  auto posted = httpRequest(
      leaderPort, "POST", "/quota",
      R"({"role":"web","guarantee":[{"name":"cpus","type":"SCALAR","scalar":{"value":1.5}}]})");
  ASSERT_TRUE(posted);
  EXPECT_EQ(posted->status, 200) << posted->body;

  masters_[first]->kill(SIGKILL);
  ASSERT_TRUE(masters_[first]->wait(10s));
  const int second = awaitLeader(first);
  ASSERT_GE(second, 0);
  ASSERT_NE(second, first);
  weights = httpRequest(masterPorts_[second], "GET", "/weights");
  ASSERT_TRUE(weights);
  EXPECT_EQ(weights->status, 200);
  EXPECT_EQ(weights->body, R"([{"role":"flag","weight":3},{"role":"web","weight":2.5}])");
  auto quota = getJson(masterPorts_[second], "/quota", kRequestTimeout);
  ASSERT_TRUE(quota);
  auto infos = quota->getArray("infos");
  ASSERT_TRUE(infos);
  ASSERT_EQ(infos->size(), 1u);
  EXPECT_EQ(infos->getObject(0)->getValue<std::string>("role"), "web");
  std::ostringstream guarantee;
  infos->getObject(0)->getArray("guarantee")->stringify(guarantee);
  EXPECT_THAT(guarantee.str(), HasSubstr(R"("name":"cpus")"));
  EXPECT_THAT(guarantee.str(), HasSubstr(R"("value":1.5)"));
}

// A dynamic reservation made through the leader is in the registry: after a SIGKILL of the
// leader, the new one offers it to its role only.
TEST_F(HaTest, DynamicReservationSurvivesALeaderKill) {
  startZooKeeper(1);
  for (int i = 0; i < 3; ++i) startMaster(i);
  const int first = awaitLeader();
  ASSERT_GE(first, 0);
  auto agent = startAgent();
  ASSERT_TRUE(agent);
  ASSERT_TRUE(agentActiveAt(first, *agent));

  RawScheduler web;
  ASSERT_TRUE(web.subscribe(masterPorts_[first], R"({"user":"u","name":"web","roles":["web"]})"));
  auto offers = web.next("OFFERS", std::chrono::steady_clock::now() + 60s);
  ASSERT_TRUE(offers);
  EXPECT_EQ(offeredCpus(offers, "web"), std::make_pair(0.0, 2.0));
  ASSERT_EQ(web.call(reserveOneCpuCall(web.frameworkId, offers, "web")), 202);
  // Applied (the registry write comes first): the reserved cpu is offered back.
  auto reserved = web.next("OFFERS", std::chrono::steady_clock::now() + 60s);
  ASSERT_TRUE(reserved);
  EXPECT_EQ(offeredCpus(reserved, "web"), std::make_pair(1.0, 1.0));

  masters_[first]->kill(SIGKILL);
  ASSERT_TRUE(masters_[first]->wait(10s));
  const int second = awaitLeader(first);
  ASSERT_GE(second, 0);
  ASSERT_NE(second, first);
  ASSERT_TRUE(agentActiveAt(second, *agent));

  // Another role is offered the unreserved cpu only; "web" gets the reserved one.
  expectReservedCpuOfferedToWebOnly(masterPorts_[second]);
}

// With an in-memory registry a new leader knows no reservation: the agent checkpointed it (and,
// SIGKILLed and restarted on its work dir, read it back), reports it on re-registration, and the
// new leader offers it to its role only.
TEST_F(HaTest, AnInMemoryRegistryGetsAReservationBackFromTheAgent) {
  startZooKeeper(1);
  for (int i = 0; i < 2; ++i) startMaster(i, {"--registry=in_memory"});
  const int first = awaitLeader();
  ASSERT_GE(first, 0);
  auto agent = startAgent();
  ASSERT_TRUE(agent);
  ASSERT_TRUE(agentActiveAt(first, *agent));

  RawScheduler web;
  ASSERT_TRUE(web.subscribe(masterPorts_[first], R"({"user":"u","name":"web","roles":["web"]})"));
  auto offers = web.next("OFFERS", std::chrono::steady_clock::now() + 60s);
  ASSERT_TRUE(offers);
  ASSERT_EQ(web.call(reserveOneCpuCall(web.frameworkId, offers, "web")), 202);
  auto reserved = web.next("OFFERS", std::chrono::steady_clock::now() + 60s);
  ASSERT_TRUE(reserved);
  EXPECT_EQ(offeredCpus(reserved, "web"), std::make_pair(1.0, 1.0));
  // The agent's checkpoint (its file store under --work_dir, one file per key) holds the
  // reservation: the role's name is in the serialised list.
  const fs::path checkpoint = dir_.path() / "agent" / "state" / "%2Fagent%2Fresources";
  ASSERT_TRUE(waitFor(
      [&] {
        std::ifstream in(checkpoint, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        return bytes.find("web") != std::string::npos;
      },
      60s))
      << agent->err();

  // The agent dies, then the leader; the agent comes back on its work dir to a new leader that
  // knows nothing of either.
  agent->kill(SIGKILL);
  ASSERT_TRUE(agent->wait(10s));
  masters_[first]->kill(SIGKILL);
  ASSERT_TRUE(masters_[first]->wait(10s));
  agent = startAgent();
  ASSERT_TRUE(agent);
  const int second = awaitLeader(first);
  ASSERT_GE(second, 0);
  ASSERT_TRUE(agentActiveAt(second, *agent));

  expectReservedCpuOfferedToWebOnly(masterPorts_[second]);
  auto state = getJson(masterPorts_[second], "/state", kRequestTimeout);
  ASSERT_TRUE(state);
  auto slave = state->getArray("slaves")->getObject(0);
  EXPECT_DOUBLE_EQ(
      slave->getObject("reserved_resources")->getObject("web")->getValue<double>("cpus"), 1.0);
}

TEST_F(HaTest, BadHaFlagsAreClearErrors) {
  for (const auto& [flag, message] : std::vector<std::pair<std::string, std::string>>{
           {"--zk=zk://127.0.0.1/p",
            "flag '--zk': 'zk://127.0.0.1/p': server '127.0.0.1' is not host:port"},
           {"--zk=zk://127.0.0.1:1/p --quorum=-1", "flag '--quorum' must be at least 1, got -1"},
           {"--zk=zk://127.0.0.1:1/p --registry=zookeeper",
            "flag '--registry': 'zookeeper' is neither replicated_log nor in_memory"},
           {"--registry=bogus",
            "flag '--registry': 'bogus' is neither replicated_log nor in_memory"},
       }) {
    std::vector<std::string> argv = {tesseraBinary().string(), "master", "--port=0", "--quiet"};
    std::string rest = flag;
    for (size_t space; (space = rest.find(' ')) != std::string::npos;
         rest = rest.substr(space + 1)) {
      argv.push_back(rest.substr(0, space));
    }
    argv.push_back(rest);
    auto process = Subprocess::start({argv, env(), {}, std::nullopt});
    ASSERT_TRUE(process);
    ASSERT_TRUE((*process)->wait(30s));
    EXPECT_EQ((*process)->exitCode(), 1);
    EXPECT_THAT((*process)->err(), HasSubstr(message));
  }
}

}  // namespace
}  // namespace tessera::testing
