// What the ZooKeeper state store does beyond the contract (which runs in state_store_test.cc):
// large values in chunk znodes that are cleaned up, markers for implicit parents, and reads
// that run side by side without overtaking the writes queued around them.
#include "kernel/state/zookeeper_store.h"

#include <gtest/gtest.h>

#include <future>

#include "kernel/runtime/runtime.h"
#include "kernel/zookeeper/client.h"
#include "tests/support/zookeeper.h"

namespace tessera::kernel::state {
namespace {

using namespace std::chrono_literals;

class ZooKeeperStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TESSERA_REQUIRE_ZOOKEEPER();
    auto started = testing::ZooKeeperEnsemble::start(1);
    ASSERT_TRUE(started) << started.status().toString();
    zk_ = std::move(*started);
    runtime_.start();
    auto url = zookeeper::parseZkUrl(zk_->url("/store"));
    ASSERT_TRUE(url);
    url_ = *url;
    auto opened = ZooKeeperStore::open(url_, 10s);
    ASSERT_TRUE(opened) << opened.status().toString();
    store_ = std::move(*opened);
  }
  void TearDown() override {
    store_.reset();
    runtime_.stop();
  }

  api::Result<uint64_t> set(const std::string& key, std::string value, uint64_t expected) {
    std::promise<api::Result<uint64_t>> done;
    store_->set(key, std::move(value), expected, *executor_,
                [&](api::Result<uint64_t> r) { done.set_value(std::move(r)); });
    return done.get_future().get();
  }
  api::Result<std::optional<api::StateEntry>> get(const std::string& key) {
    std::promise<api::Result<std::optional<api::StateEntry>>> done;
    store_->get(key, *executor_, [&](auto r) { done.set_value(std::move(r)); });
    return done.get_future().get();
  }
  // The raw children of a znode, through a client of our own.
  std::vector<std::string> znodeChildren(const std::string& path) {
    std::promise<void> connected;
    bool once = false;
    auto client = zookeeper::ZkClient::create({url_, 10s}, *executor_, [&](auto event) {
      if (event == zookeeper::ZkSessionEvent::kConnected && !once) {
        once = true;
        connected.set_value();
      }
    });
    executor_->post([&] { client->start(); });
    connected.get_future().wait();
    std::promise<std::vector<std::string>> listed;
    executor_->post([&] {
      client->getChildren(path, nullptr, [&](int rc, std::vector<std::string> children) {
        listed.set_value(rc == ZOK ? children : std::vector<std::string>{"error"});
      });
    });
    auto children = listed.get_future().get();
    client->stop();
    return children;
  }

  std::unique_ptr<testing::ZooKeeperEnsemble> zk_;
  runtime::Runtime runtime_{runtime::Runtime::Options{2, 1, 16}};
  std::unique_ptr<runtime::StrandExecutor> executor_ = runtime_.makeExecutor();
  zookeeper::ZkUrl url_;
  std::unique_ptr<ZooKeeperStore> store_;
};

// Reads queued together run in parallel (a new leader reads its registry so), but each still
// sees every write queued before it and none queued after it.
TEST_F(ZooKeeperStoreTest, ReadsRunTogetherButNeverPassAWrite) {
  constexpr int kKeys = 100;
  for (int i = 0; i < kKeys; ++i) ASSERT_TRUE(set("/r/" + std::to_string(i), "old", 0));
  std::string big(api::kMaxStateValueBytes / 2, 'b');  // chunked: several reads per get
  ASSERT_TRUE(set("/r/big", big, 0));
  struct Read {
    std::string key, expected;
    std::promise<api::Result<std::optional<api::StateEntry>>> done;
  };
  std::vector<std::unique_ptr<Read>> reads;
  std::vector<std::promise<api::Result<uint64_t>>> writes(kKeys);
  auto queueRead = [&](std::string key, std::string expected) {
    reads.push_back(std::make_unique<Read>(Read{std::move(key), std::move(expected), {}}));
    Read* read = reads.back().get();
    store_->get(read->key, *executor_, [read](auto r) { read->done.set_value(std::move(r)); });
  };
  // Without waiting: reads of "old", then a write of every key, then reads of "new".
  for (int i = 0; i < kKeys; ++i) queueRead("/r/" + std::to_string(i), "old");
  queueRead("/r/big", big);
  for (int i = 0; i < kKeys; ++i) {
    store_->set("/r/" + std::to_string(i), "new", 1, *executor_,
                [&writes, i](api::Result<uint64_t> r) { writes[i].set_value(std::move(r)); });
  }
  for (int i = 0; i < kKeys; ++i) queueRead("/r/" + std::to_string(i), "new");
  queueRead("/r/big", big);
  for (auto& write : writes) {
    auto written = write.get_future().get();
    ASSERT_TRUE(written) << written.status().toString();
    EXPECT_EQ(*written, 2u);
  }
  for (auto& read : reads) {
    auto result = read->done.get_future().get();
    ASSERT_TRUE(result) << read->key << ": " << result.status().toString();
    ASSERT_TRUE(result->has_value()) << read->key;
    EXPECT_EQ((*result)->value, read->expected) << read->key;
  }
}

TEST_F(ZooKeeperStoreTest, LargeValuesGoToChunksThatAreRemovedWhenReplaced) {
  std::string big(api::kMaxStateValueBytes, 'x');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + i % 26);
  auto version = set("/registry/big", big, 0);
  ASSERT_TRUE(version) << version.status().toString();
  EXPECT_EQ((*get("/registry/big"))->value, big);
  // 1 MiB in 512 KiB chunks: two chunk znodes, none near ZooKeeper's 1 MB packet limit.
  EXPECT_EQ(znodeChildren("/store/chunks").size(), 2u);

  ASSERT_TRUE(set("/registry/big", big.substr(0, 700 * 1024), 1));
  EXPECT_EQ((*get("/registry/big"))->value, big.substr(0, 700 * 1024));
  EXPECT_EQ(znodeChildren("/store/chunks").size(), 2u);  // the old two went, two new came

  ASSERT_TRUE(set("/registry/big", "small", 2));
  EXPECT_EQ((*get("/registry/big"))->value, "small");
  EXPECT_TRUE(znodeChildren("/store/chunks").empty());
}

TEST_F(ZooKeeperStoreTest, KeysAreZnodesUnderStateWithMarkersForParents) {
  ASSERT_TRUE(set("/registry/agents/a-1", "one", 0));
  EXPECT_EQ(znodeChildren("/store/state"), std::vector<std::string>{"registry"});
  EXPECT_EQ(znodeChildren("/store/state/registry/agents"), std::vector<std::string>{"a-1"});
  EXPECT_FALSE(get("/registry/agents")->has_value());  // a marker holds no entry
  // A marker can become an entry, starting at version 1.
  auto version = set("/registry/agents", "parent", 0);
  ASSERT_TRUE(version) << version.status().toString();
  EXPECT_EQ(*version, 1u);
}

TEST_F(ZooKeeperStoreTest, AnUnreachableEnsembleIsUnavailableNotAHang) {
  zk_->kill(0);
  auto url = zookeeper::parseZkUrl(zk_->url("/store"));
  auto opened = ZooKeeperStore::open(*url, 1s);
  ASSERT_TRUE(opened);
  std::promise<api::Result<std::optional<api::StateEntry>>> done;
  (*opened)->get("/k", *executor_, [&](auto r) { done.set_value(std::move(r)); });
  auto result = done.get_future();
  ASSERT_EQ(result.wait_for(30s), std::future_status::ready);
  auto entry = result.get();
  ASSERT_FALSE(entry);
  EXPECT_EQ(entry.status().code(), api::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace tessera::kernel::state
