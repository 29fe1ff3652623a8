// High availability with real processes: three `tessera master --zk` on a real ZooKeeper, agents
// and `tessera execute` following the leader through zk:// URLs, leaders killed with SIGKILL or
// stopped past their session timeout, ZooKeeper servers killed.
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
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
