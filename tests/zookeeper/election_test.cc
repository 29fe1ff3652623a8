// Election, leader detection and the async client against a real ZooKeeper server.
#include "kernel/election/election.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "kernel/runtime/runtime.h"
#include "kernel/zookeeper/client.h"
#include "tests/support/zookeeper.h"

namespace tessera::kernel::election {
namespace {

using namespace std::chrono_literals;
using testing::waitFor;

using testing::sharedZooKeeper;

std::string uniquePath() {
  static std::atomic<int> next{0};
  return fmt::format("/election-test/{}-{}", getpid(), next++);
}

zookeeper::ZkUrl urlOf(testing::ZooKeeperEnsemble& zk, const std::string& path) {
  auto url = zookeeper::parseZkUrl(zk.url(path));
  EXPECT_TRUE(url) << url.status().toString();
  return *url;
}

struct Candidate {
  std::atomic<bool> elected{false};
  std::atomic<bool> lost{false};
  std::unique_ptr<runtime::StrandExecutor> executor;
  std::shared_ptr<LeaderContender> contender;
};

class ElectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TESSERA_REQUIRE_ZOOKEEPER();
    runtime_.start();
  }
  void TearDown() override {
    for (auto& candidate : candidates_) candidate->contender->stop();
    if (detector_) detector_->stop();
    runtime_.stop();
  }

  Candidate& contend(testing::ZooKeeperEnsemble& zk, const std::string& path, int n,
                     std::chrono::milliseconds sessionTimeout = 4000ms) {
    auto candidate = std::make_unique<Candidate>();
    candidate->executor = runtime_.makeExecutor();
    auto* raw = candidate.get();
    MasterInfo info{fmt::format("master-{}", n),
                    "127.0.0.1",
                    static_cast<uint16_t>(5050 + n),
                    "localhost",
                    "test",
                    ""};
    candidate->contender = LeaderContender::create(
        urlOf(zk, path), sessionTimeout, info, *candidate->executor,
        {[raw] { raw->elected = true; }, [raw](const std::string&) { raw->lost = true; }, {}});
    candidate->contender->start();
    candidates_.push_back(std::move(candidate));
    return *raw;
  }

  int electedCount() const {
    int count = 0;
    for (const auto& candidate : candidates_) count += candidate->elected && !candidate->lost;
    return count;
  }

  runtime::Runtime runtime_{runtime::Runtime::Options{2, 2, 64}};
  std::vector<std::unique_ptr<Candidate>> candidates_;
  std::unique_ptr<runtime::StrandExecutor> detectorExecutor_ = runtime_.makeExecutor();
  std::shared_ptr<LeaderDetector> detector_;
};

TEST_F(ElectionTest, ThreeContendersElectExactlyOneAndTheNextTakesOver) {
  auto& zk = sharedZooKeeper();
  const std::string path = uniquePath();
  for (int i = 0; i < 3; ++i) contend(zk, path, i);
  detector_ = LeaderDetector::create(urlOf(zk, path), 4000ms, *detectorExecutor_, {});
  detector_->start();

  ASSERT_TRUE(waitFor([&] { return electedCount() >= 1; }, 30s));
  auto leader = detector_->awaitLeader(30s);
  ASSERT_TRUE(leader);
  // Every contender has its znode by now; still exactly one leads.
  ASSERT_TRUE(waitFor(
      [&] {
        for (auto& c : candidates_) {
          if (c->executor->call([&] { return c->contender->znode().empty(); })) return false;
        }
        return true;
      },
      30s));
  EXPECT_EQ(electedCount(), 1);
  int first = -1;
  for (int i = 0; i < 3; ++i) {
    if (candidates_[i]->elected) first = i;
  }
  EXPECT_EQ(leader->id, fmt::format("master-{}", first));
  EXPECT_EQ(leader->address(), fmt::format("127.0.0.1:{}", 5050 + first));

  // The leader withdraws (its session closes): exactly one other takes over, and the detector
  // follows.
  candidates_[first]->contender->stop();
  candidates_[first]->lost = true;
  ASSERT_TRUE(waitFor([&] { return electedCount() == 1; }, 30s));
  int second = -1;
  for (int i = 0; i < 3; ++i) {
    if (candidates_[i]->elected && !candidates_[i]->lost) second = i;
  }
  ASSERT_NE(second, first);
  ASSERT_TRUE(waitFor(
      [&] {
        auto now = detector_->leader();
        return now && now->id == fmt::format("master-{}", second);
      },
      30s));
  EXPECT_EQ(electedCount(), 1);
}

TEST_F(ElectionTest, ALeaderWhoseSessionIsLostStepsDown) {
  // Its own server: this test kills it.
  auto started = testing::ZooKeeperEnsemble::start(1);
  ASSERT_TRUE(started) << started.status().toString();
  auto& zk = **started;
  auto& leader = contend(zk, "/tessera", 0, 2000ms);
  ASSERT_TRUE(waitFor([&] { return leader.elected.load(); }, 30s));
  EXPECT_FALSE(leader.lost);
  zk.kill(0);
  // Disconnected for longer than the session could survive: it steps down on its own.
  EXPECT_TRUE(waitFor([&] { return leader.lost.load(); }, 30s));
}

TEST_F(ElectionTest, TheDetectorSeesNoLeaderUntilOneContends) {
  auto& zk = sharedZooKeeper();
  const std::string path = uniquePath();
  std::atomic<int> changes{0};
  detector_ = LeaderDetector::create(urlOf(zk, path), 4000ms, *detectorExecutor_,
                                     [&](const std::optional<MasterInfo>&) { ++changes; });
  detector_->start();
  ASSERT_TRUE(waitFor([&] { return changes.load() >= 1; }, 30s));
  EXPECT_FALSE(detector_->leader());
  contend(zk, path, 7);
  auto leader = detector_->awaitLeader(30s);
  ASSERT_TRUE(leader);
  EXPECT_EQ(leader->id, "master-7");
}

TEST(ZkClientTest, CompletionsAndWatchesArriveOnTheOwnersExecutor) {
  TESSERA_REQUIRE_ZOOKEEPER();
  auto& zk = sharedZooKeeper();
  runtime::Runtime runtime{runtime::Runtime::Options{2, 1, 16}};
  runtime.start();
  auto executor = runtime.makeExecutor();
  std::promise<void> connected;
  std::atomic<bool> once{false};
  auto client = zookeeper::ZkClient::create(
      {urlOf(zk, "/client-test"), 4000ms}, *executor, [&](zookeeper::ZkSessionEvent event) {
        if (event == zookeeper::ZkSessionEvent::kConnected && !once.exchange(true)) {
          connected.set_value();
        }
      });
  executor->post([&] { client->start(); });
  ASSERT_EQ(connected.get_future().wait_for(30s), std::future_status::ready);

  const std::string node = fmt::format("/client-test-{}", getpid());
  std::promise<int> created;
  executor->post([&] { client->createPath(node, [&](int rc) { created.set_value(rc); }); });
  ASSERT_EQ(created.get_future().get(), ZOK);

  std::promise<std::pair<bool, int>> fired;
  std::promise<std::string> read;
  executor->post([&] {
    client->get(
        node,
        [&](int type, const std::string&) {
          fired.set_value({executor->runningInThisThread(), type});
        },
        [&](int rc, const std::string& data, const zookeeper::ZkStat&) {
          read.set_value(rc == ZOK && executor->runningInThisThread() ? "ok:" + data : "bad");
        });
  });
  EXPECT_EQ(read.get_future().get(), "ok:");
  std::promise<int> removed;
  executor->post([&] { client->remove(node, -1, [&](int rc) { removed.set_value(rc); }); });
  EXPECT_EQ(removed.get_future().get(), ZOK);
  auto watch = fired.get_future();
  ASSERT_EQ(watch.wait_for(30s), std::future_status::ready);
  auto [onStrand, type] = watch.get();
  EXPECT_TRUE(onStrand);
  EXPECT_EQ(type, ZOO_DELETED_EVENT);

  // A missing node is an rc, not an exception or a hang.
  std::promise<int> missing;
  executor->post([&] {
    client->get(node, nullptr, [&](int rc, const std::string&, const zookeeper::ZkStat&) {
      missing.set_value(rc);
    });
  });
  EXPECT_EQ(missing.get_future().get(), ZNONODE);
  client->stop();
  // After stop() nothing more is called; operations fail at once.
  std::promise<int> afterStop;
  executor->post([&] {
    client->get(node, nullptr, [&](int rc, const std::string&, const zookeeper::ZkStat&) {
      afterStop.set_value(rc);
    });
  });
  EXPECT_EQ(afterStop.get_future().get(), ZINVALIDSTATE);
  runtime.stop();
}

}  // namespace
}  // namespace tessera::kernel::election
