// Framework hosts as a service, with real processes and a real ZooKeeper: two `tessera
// framework --zk` hosts of one module elect one leader, the follower forwards the module's
// routes to it and relays its event stream as it is written, a leader whose session expires exits,
// a SIGKILLed leader is replaced by the other with the same FrameworkID (the master keeps the
// framework and its tasks) and the module's state intact; abdication hands leadership over; wrong
// ZooKeeper credentials and bad flags are clear errors.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "tests/support/cluster_state.h"
#include "tests/support/stream_reader.h"
#include "tests/support/subprocess.h"
#include "tests/support/zookeeper.h"

namespace tessera::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

constexpr const char* kModule = "org_tessera_test_ha_framework";

std::string clusterManifest() {
  const fs::path lib = fs::path(TESSERA_BINARY_DIR) / "lib" / "tessera";
  return fmt::format(
      R"({{"libraries": [
  {{"file": "{}", "modules": [{{"name": "org_tessera_allocator_drf",
    "parameters": [{{"key": "allocation_interval", "value": "100ms"}}]}}]}},
  {{"file": "{}", "modules": [{{"name": "org_tessera_containerizer_native"}}]}}
]}})",
      (lib / "libtessera_allocator_drf.so").string(),
      (lib / "libtessera_containerizer_native.so").string());
}

std::string hostManifest(int tasks) {
  return fmt::format(
      R"({{"libraries": [{{"file": "{}", "modules": [{{"name": "{}",
    "parameters": [{{"key": "tasks", "value": "{}"}}]}}]}}]}})",
      (fs::path(TESSERA_BINARY_DIR) / "tests" / "modules" / "libtest_ha_framework.so").string(),
      kModule, tasks);
}

// The frameworks called `name` in the master's /state: (id, running tasks) each.
std::vector<std::pair<std::string, size_t>> frameworksAt(uint16_t port, const std::string& name) {
  std::vector<std::pair<std::string, size_t>> found;
  auto state = getJson(port, "/state", 3s);
  if (!state) return found;
  auto frameworks = state->getArray("frameworks");
  for (size_t i = 0; frameworks && i < frameworks->size(); ++i) {
    auto framework = frameworks->getObject(i);
    if (framework->getValue<std::string>("name") != name) continue;
    size_t running = 0;
    auto tasks = framework->getArray("tasks");
    for (size_t j = 0; tasks && j < tasks->size(); ++j) {
      if (tasks->getObject(j)->getValue<std::string>("state") == "TASK_RUNNING") ++running;
    }
    found.emplace_back(framework->getValue<std::string>("id"), running);
  }
  return found;
}

// A raw HTTP/1.1 client for one streaming GET (tests/support/stream_reader.h).
class EventStream : public StreamReader {
 public:
  EventStream(uint16_t port, const std::string& target)
      : StreamReader(port, getRequest(target, port), std::chrono::seconds(1)) {}
};

class FrameworkHaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TESSERA_REQUIRE_ZOOKEEPER();
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    url_ = sharedZooKeeper().url(fmt::format("/fwha/{}-{}", test->name(), ::getpid()));
  }

  std::unique_ptr<Subprocess> start(std::vector<std::string> argv) {
    auto process = Subprocess::start(
        {std::move(argv), {{"TESSERA_CONFIG_DIR", config_.path().string()}}, {}, std::nullopt});
    EXPECT_TRUE(process) << process.status().message();
    return process ? std::move(process).value() : nullptr;
  }

  void startCluster() {
    cluster_ = start({tesseraBinary().string(), "local", fmt::format("--port={}", masterPort_),
                      "--modules=" + clusterManifest(),
                      fmt::format("--work_dir={}", (dir_.path() / "local").string()), "--quiet"});
    ASSERT_TRUE(cluster_);
    ASSERT_TRUE(waitFor(
        [&] {
          auto health = httpRequest(masterPort_, "GET", "/health", "", 2s);
          return health && health->status == 200;
        },
        60s))
        << cluster_->err();
  }

  // Host i on its own port, against the local cluster, contending under url_.
  void startHost(size_t i, int tasks = 0, std::string url = {}) {
    if (hosts_.size() <= i) hosts_.resize(i + 1);
    if (ports_.size() <= i) ports_.resize(i + 1, 0);
    if (ports_[i] == 0) ports_[i] = freePort();
    hosts_[i] = start(
        {tesseraBinary().string(), "framework", fmt::format("--module={}", kModule),
         fmt::format("--master=127.0.0.1:{}", masterPort_), fmt::format("--port={}", ports_[i]),
         fmt::format("--zk={}", url.empty() ? url_ : url), "--zk_session_timeout=2secs",
         "--modules=" + hostManifest(tasks), "--quiet"});
    ASSERT_TRUE(hosts_[i]);
  }

  // Host i's own answer to /ha/whoami (null when it cannot answer).
  Poco::JSON::Object::Ptr whoami(size_t i) {
    if (!hosts_[i] || !hosts_[i]->running()) return nullptr;
    return getJson(ports_[i], "/ha/whoami", 3s);
  }

  // The one host that leads and has subscribed (and every running host agrees); -1 if none.
  int awaitLeader(int notThis = -1) {
    int leader = -1;
    bool settled = waitFor(
        [&] {
          int leading = -1;
          for (size_t i = 0; i < hosts_.size(); ++i) {
            if (!hosts_[i] || !hosts_[i]->running()) continue;
            // A follower forwards: every answer is the leader's, and names it.
            auto me = whoami(i);
            if (!me || !me->getValue<bool>("leading") || !me->getValue<bool>("subscribed")) {
              return false;
            }
            const std::string address = me->getValue<std::string>("address");
            int answered = -1;
            for (size_t j = 0; j < ports_.size(); ++j) {
              if (address == fmt::format("127.0.0.1:{}", ports_[j])) answered = static_cast<int>(j);
            }
            if (answered < 0 || (leading != -1 && answered != leading)) return false;
            leading = answered;
          }
          if (leading < 0 || leading == notThis) return false;
          leader = leading;
          return true;
        },
        60s);
    return settled ? leader : -1;
  }

  std::string logs() {
    std::string out;
    for (size_t i = 0; i < hosts_.size(); ++i) {
      if (hosts_[i]) out += fmt::format("--- host {}:\n{}\n", i, hosts_[i]->err());
    }
    return out;
  }

  TempDir dir_;
  TempDir config_;
  std::string url_;
  uint16_t masterPort_ = freePort();
  std::unique_ptr<Subprocess> cluster_;
  std::vector<uint16_t> ports_;
  std::vector<std::unique_ptr<Subprocess>> hosts_;
};

TEST_F(FrameworkHaTest, TwoHostsElectOneAndTheFollowerForwardsToIt) {
  startCluster();
  startHost(0);
  startHost(1);
  const int leader = awaitLeader();
  ASSERT_GE(leader, 0) << logs();
  const int follower = 1 - leader;
  const std::string leaderAddress = fmt::format("127.0.0.1:{}", ports_[leader]);

  // The follower's module does not run its scheduler; its routes answer with the leader's.
  auto forwarded = httpRequest(ports_[follower], "GET", "/ha/whoami");
  ASSERT_TRUE(forwarded);
  EXPECT_EQ(forwarded->status, 200);
  EXPECT_THAT(forwarded->body, HasSubstr(fmt::format(R"("address":"{}")", leaderAddress)));
  EXPECT_THAT(forwarded->body, HasSubstr(R"("leading":true)"));
  EXPECT_EQ(forwarded->headers["x-tessera-leader"], leaderAddress);
  // Method, query and body travel too.
  auto echo = httpRequest(ports_[follower], "POST", "/ha/echo?a=1&b=two%20words", "payload");
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->status, 200);
  EXPECT_THAT(echo->body, HasSubstr(R"("method":"POST")"));
  EXPECT_THAT(echo->body, HasSubstr(R"("query":"a=1&b=two%20words")"));
  EXPECT_THAT(echo->body, HasSubstr(R"("body":"payload")"));
  EXPECT_THAT(echo->body, HasSubstr(fmt::format(R"("address":"{}")", leaderAddress)));
  // The master knows one framework of that name: only the leader subscribed.
  EXPECT_EQ(frameworksAt(masterPort_, "ha-framework").size(), 1u);
}

// The number of /ha/stream responses host i's module has open (its own answer, never forwarded:
// /ha/streams on the leader), or -1.
int openStreams(uint16_t port) {
  auto answer = getJson(port, "/ha/streams", 3s);
  return answer ? answer->getValue<int>("streams") : -1;
}

TEST_F(FrameworkHaTest, TheFollowerRelaysTheLeadersEventStreamAsItIsWritten) {
  startCluster();
  startHost(0);
  startHost(1);
  const int leader = awaitLeader();
  ASSERT_GE(leader, 0) << logs();
  const int follower = 1 - leader;
  const std::string leaderAddress = fmt::format("127.0.0.1:{}", ports_[leader]);
  ASSERT_EQ(openStreams(ports_[leader]), 0);

  EventStream reader(ports_[follower], "/ha/stream");
  ASSERT_TRUE(reader.connected());
  // The leader's stream, started through the follower: its head names the leader, and the first
  // event comes from the leader's module.
  ASSERT_TRUE(reader.readUntil("event: hello\ndata: " + leaderAddress + "\n", 30s))
      << reader.seen();
  EXPECT_THAT(reader.seen(), HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(reader.seen(), HasSubstr("text/event-stream"));
  EXPECT_THAT(reader.seen(), HasSubstr("X-Tessera-Leader: " + leaderAddress));
  EXPECT_EQ(openStreams(ports_[leader]), 1);

  // Each event arrives while the stream stays open, in the order published (through the
  // follower too, as a plain forwarded route).
  for (const std::string word : {"one", "two", "three"}) {
    auto published = httpRequest(ports_[follower], "POST", "/ha/publish", word);
    ASSERT_TRUE(published);
    EXPECT_THAT(published->body, HasSubstr(R"("streams":1)"));
    ASSERT_TRUE(reader.readUntil("data: " + word + "\n", 30s)) << reader.seen();
  }
  const std::string& seen = reader.seen();
  const size_t one = seen.find("id: 1\ndata: one\n");
  const size_t two = seen.find("id: 2\ndata: two\n");
  const size_t three = seen.find("id: 3\ndata: three\n");
  ASSERT_NE(one, std::string::npos) << seen;
  ASSERT_NE(two, std::string::npos) << seen;
  ASSERT_NE(three, std::string::npos) << seen;
  EXPECT_LT(one, two);
  EXPECT_LT(two, three);

  // The client goes: the follower closes its connection to the leader, whose stream ends.
  reader.close();
  EXPECT_TRUE(waitFor([&] { return openStreams(ports_[leader]) == 0; }, 30s))
      << "the leader still streams to a client that left";

  // The leader's stream ending (here: the leader killed) ends the client's.
  EventStream second(ports_[follower], "/ha/stream");
  ASSERT_TRUE(second.readUntil("event: hello", 30s)) << second.seen();
  ASSERT_TRUE(waitFor([&] { return openStreams(ports_[leader]) == 1; }, 30s));
  hosts_[leader]->kill(SIGKILL);
  EXPECT_TRUE(second.readUntilClosed(30s)) << "the follower kept a stream whose leader died";
}

TEST_F(FrameworkHaTest, KillingTheLeaderHandsOverWithTheSameFrameworkIdAndState) {
  startCluster();
  startHost(0, 2);
  startHost(1, 2);
  const int leader = awaitLeader();
  ASSERT_GE(leader, 0) << logs();
  ASSERT_TRUE(waitFor(
      [&] {
        auto frameworks = frameworksAt(masterPort_, "ha-framework");
        return frameworks.size() == 1 && frameworks[0].second == 2;
      },
      60s))
      << logs();
  const std::string frameworkId = frameworksAt(masterPort_, "ha-framework")[0].first;
  auto before = whoami(leader);
  ASSERT_TRUE(before);
  EXPECT_EQ(before->getValue<std::string>("framework_id"), frameworkId);
  EXPECT_EQ(before->getValue<int>("subscriptions"), 1);

  hosts_[leader]->kill(SIGKILL);
  ASSERT_TRUE(hosts_[leader]->wait(10s));
  const int next = awaitLeader(leader);
  ASSERT_EQ(next, 1 - leader) << logs();
  auto after = whoami(next);
  ASSERT_TRUE(after);
  // The same framework, failed over: the master kept it and its tasks.
  EXPECT_EQ(after->getValue<std::string>("framework_id"), frameworkId);
  auto frameworks = frameworksAt(masterPort_, "ha-framework");
  ASSERT_EQ(frameworks.size(), 1u);
  EXPECT_EQ(frameworks[0].first, frameworkId);
  EXPECT_EQ(frameworks[0].second, 2u);
  // The module's state came along: it counts its second subscription and launches no more.
  EXPECT_TRUE(waitFor([&] {
    auto me = whoami(next);
    return me && me->getValue<int>("subscriptions") == 2;
  })) << logs();
  EXPECT_EQ(whoami(next)->getValue<int>("launched"), 2);
}

TEST_F(FrameworkHaTest, ALeaderWhoseSessionExpiresStopsLeading) {
  startCluster();
  startHost(0);
  startHost(1);
  const int leader = awaitLeader();
  ASSERT_GE(leader, 0) << logs();
  const int other = 1 - leader;
  hosts_[leader]->kill(SIGSTOP);
  // Its session expires; the other host leads and subscribes.
  const bool tookOver = waitFor(
      [&] {
        auto me = whoami(other);
        return me && me->getValue<bool>("leading") && me->getValue<bool>("subscribed") &&
               me->getValue<std::string>("address") == fmt::format("127.0.0.1:{}", ports_[other]);
      },
      60s);
  hosts_[leader]->kill(SIGCONT);
  ASSERT_TRUE(tookOver) << logs();
  // Resumed, the old leader finds its session gone and exits rather than lead beside it.
  ASSERT_TRUE(hosts_[leader]->wait(30s)) << "the old leader kept running";
  EXPECT_EQ(hosts_[leader]->exitCode(), 1);
  EXPECT_EQ(awaitLeader(leader), other);
}

TEST_F(FrameworkHaTest, AbdicationHandsLeadershipOver) {
  startCluster();
  startHost(0);
  startHost(1);
  const int leader = awaitLeader();
  ASSERT_GE(leader, 0) << logs();
  const std::string frameworkId = whoami(leader)->getValue<std::string>("framework_id");
  auto abdicated = httpRequest(ports_[leader], "DELETE", "/ha/leader");
  ASSERT_TRUE(abdicated);
  EXPECT_EQ(abdicated->status, 200);
  // The abdicating host ends with status 0 (for its supervisor to restart it as a follower).
  ASSERT_TRUE(hosts_[leader]->wait(30s)) << logs();
  EXPECT_EQ(hosts_[leader]->exitCode(), 0) << logs();
  const int next = awaitLeader(leader);
  ASSERT_EQ(next, 1 - leader) << logs();
  EXPECT_EQ(whoami(next)->getValue<std::string>("framework_id"), frameworkId);
}

TEST_F(FrameworkHaTest, WrongZooKeeperCredentialsAreAClearError) {
  startCluster();
  const std::string servers = sharedZooKeeper().connectString();
  const std::string path = url_.substr(url_.find('/', 5));
  startHost(0, 0, fmt::format("zk://alice:right@{}{}", servers, path));
  ASSERT_EQ(awaitLeader(), 0) << logs();
  startHost(1, 0, fmt::format("zk://alice:wrong@{}{}", servers, path));
  ASSERT_TRUE(hosts_[1]->wait(60s)) << logs();
  EXPECT_EQ(hosts_[1]->exitCode(), 1);
  EXPECT_THAT(hosts_[1]->err(), HasSubstr("--zk"));
  EXPECT_THAT(hosts_[1]->err(), HasSubstr("credentials"));
  EXPECT_EQ(hosts_[1]->err().find("wrong"), std::string::npos) << "the password is not shown";
}

TEST_F(FrameworkHaTest, BadFlagsAreRefusedNamingTheFlag) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--zk=http://127.0.0.1:2181/x", "--zk"},
      {"--zk_session_timeout=0secs", "--zk_session_timeout"},
      {"--zk_session_timeout=soon", "zk_session_timeout"},
      {"--failover_timeout=forever", "failover_timeout"},
      {"--secret=s3cret", "--secret"},
  };
  for (const auto& [flag, named] : cases) {
    auto process = start({tesseraBinary().string(), "framework",
                          fmt::format("--module={}", kModule), "--master=127.0.0.1:5050",
                          "--port=0", "--modules=" + hostManifest(0), flag, "--quiet"});
    ASSERT_TRUE(process);
    ASSERT_TRUE(process->wait(30s)) << flag;
    EXPECT_EQ(process->exitCode(), 1) << flag;
    EXPECT_THAT(process->err(), HasSubstr(named)) << flag;
  }
}

}  // namespace
}  // namespace tessera::testing
