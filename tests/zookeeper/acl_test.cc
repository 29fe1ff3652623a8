// Digest authentication against a real ZooKeeper, which enforces ACLs: what a master given
// zk://user:password@.../path creates, only the same credentials may change, and anyone may read
// (leader detection, `tessera resolve`, Mesos's tools).
#include <Poco/Base64Encoder.h>
#include <Poco/SHA1Engine.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <sstream>

#include "kernel/election/election.h"
#include "kernel/runtime/runtime.h"
#include "kernel/state/zookeeper_store.h"
#include "kernel/zookeeper/client.h"
#include "tests/support/zookeeper.h"

namespace tessera::kernel {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using testing::waitFor;

using testing::sharedZooKeeper;

std::string uniquePath(std::string_view name) {
  static std::atomic<int> next{0};
  return fmt::format("/acl-test-{}-{}-{}", name, getpid(), next++);
}

// The id ZooKeeper's digest scheme gives `user:password`: user:base64(sha1(user:password)).
std::string digestId(const std::string& credentials) {
  Poco::SHA1Engine sha1;
  sha1.update(credentials);
  const auto& digest = sha1.digest();
  std::ostringstream encoded;
  Poco::Base64Encoder encoder(encoded);
  encoder.write(reinterpret_cast<const char*>(digest.data()),
                static_cast<std::streamsize>(digest.size()));
  encoder.close();
  return credentials.substr(0, credentials.find(':')) + ":" + encoded.str();
}

// A session on ZooKeeper's synchronous C API, to look at (and set up) znodes behind the code
// under test. With alice's credentials: ZooKeeper shows a digest id in an ACL only to a session
// that may administer the znode ("alice:x" to the others).
class RawSession {
 public:
  explicit RawSession(const std::string& servers, const std::string& credentials) {
    zookeeper::quietZooKeeperLogs();
    handle_ = zookeeper_init(servers.c_str(), nullptr, 10000, nullptr, nullptr, 0);
    EXPECT_NE(handle_, nullptr);
    EXPECT_TRUE(waitFor([&] { return zoo_state(handle_) == ZOO_CONNECTED_STATE; }, 30s));
    EXPECT_EQ(zoo_add_auth(handle_, "digest", credentials.data(),
                           static_cast<int>(credentials.size()), nullptr, nullptr),
              ZOK);
  }
  ~RawSession() { zookeeper_close(handle_); }
  RawSession(const RawSession&) = delete;
  RawSession& operator=(const RawSession&) = delete;

  // "scheme:id=perms" for each entry of the znode's ACL.
  std::vector<std::string> acl(const std::string& path) {
    ACL_vector acls{0, nullptr};
    ::Stat stat{};
    const int rc = zoo_get_acl(handle_, path.c_str(), &acls, &stat);
    if (rc != ZOK) return {fmt::format("error: {}", zerror(rc))};
    std::vector<std::string> out;
    for (int32_t i = 0; i < acls.count; ++i) {
      out.push_back(
          fmt::format("{}:{}={}", acls.data[i].id.scheme, acls.data[i].id.id, acls.data[i].perms));
    }
    deallocate_ACL_vector(&acls);
    return out;
  }
  std::vector<std::string> children(const std::string& path) {
    String_vector strings{0, nullptr};
    const int rc = zoo_get_children(handle_, path.c_str(), 0, &strings);
    if (rc != ZOK) return {fmt::format("error: {}", zerror(rc))};
    std::vector<std::string> out(strings.data, strings.data + strings.count);
    deallocate_String_vector(&strings);
    return out;
  }
  int create(const std::string& path) {
    return zoo_create(handle_, path.c_str(), nullptr, -1, &ZOO_OPEN_ACL_UNSAFE, 0, nullptr, 0);
  }
  int setAcl(const std::string& path, ACL_vector* acl) {
    return zoo_set_acl(handle_, path.c_str(), -1, acl);
  }

 private:
  zhandle_t* handle_ = nullptr;
};

class ZkAclTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TESSERA_REQUIRE_ZOOKEEPER();
    zk_ = &sharedZooKeeper();
    runtime_.start();
    raw_ = std::make_unique<RawSession>(zk_->connectString(), "alice:secret");
  }
  void TearDown() override {
    for (auto& contender : contenders_) contender->stop();
    for (auto& detector : detectors_) detector->stop();
    stores_.clear();
    runtime_.stop();
  }

  // zk://[credentials@]servers<path>.
  zookeeper::ZkUrl url(const std::string& credentials, const std::string& path) {
    auto parsed = zookeeper::parseZkUrl(fmt::format(
        "zk://{}{}{}", credentials, credentials.empty() ? "" : "@", zk_->connectString() + path));
    EXPECT_TRUE(parsed) << parsed.status().toString();
    return *parsed;
  }
  state::ZooKeeperStore& store(const std::string& credentials, const std::string& path) {
    auto opened = state::ZooKeeperStore::open(url(credentials, path), 10s);
    EXPECT_TRUE(opened) << opened.status().toString();
    if (!opened) std::abort();
    stores_.push_back(std::move(*opened));
    return *stores_.back();
  }

  api::Result<uint64_t> set(state::ZooKeeperStore& store, const std::string& key, std::string value,
                            uint64_t expected) {
    std::promise<api::Result<uint64_t>> done;
    store.set(key, std::move(value), expected, *executor_,
              [&](api::Result<uint64_t> r) { done.set_value(std::move(r)); });
    return done.get_future().get();
  }
  api::Result<std::optional<api::StateEntry>> get(state::ZooKeeperStore& store,
                                                  const std::string& key) {
    std::promise<api::Result<std::optional<api::StateEntry>>> done;
    store.get(key, *executor_, [&](auto r) { done.set_value(std::move(r)); });
    return done.get_future().get();
  }
  api::Status remove(state::ZooKeeperStore& store, const std::string& key, uint64_t expected) {
    std::promise<api::Status> done;
    store.remove(key, expected, *executor_, [&](api::Status s) { done.set_value(std::move(s)); });
    return done.get_future().get();
  }
  api::Result<std::vector<std::string>> children(state::ZooKeeperStore& store,
                                                 const std::string& prefix) {
    std::promise<api::Result<std::vector<std::string>>> done;
    store.children(prefix, *executor_, [&](auto r) { done.set_value(std::move(r)); });
    return done.get_future().get();
  }

  // A contender with `credentials`; the flag it sets when elected.
  std::shared_ptr<std::atomic<bool>> contend(const std::string& credentials,
                                             const std::string& path) {
    auto elected = std::make_shared<std::atomic<bool>>(false);
    election::MasterInfo info{"master-alice", "127.0.0.1", 5050, "localhost", "test", ""};
    contenders_.push_back(
        election::LeaderContender::create(url(credentials, path), 4000ms, info, *contenderExecutor_,
                                          {[elected] { *elected = true; }, {}, {}}));
    contenders_.back()->start();
    return elected;
  }
  election::LeaderDetector& detect(const std::string& credentials, const std::string& path) {
    detectors_.push_back(
        election::LeaderDetector::create(url(credentials, path), 4000ms, *detectorExecutor_, {}));
    detectors_.back()->start();
    return *detectors_.back();
  }

  // Alice's ACL: all for her digest identity, read for anyone.
  static std::vector<std::string> alicesAcl() {
    return {fmt::format("digest:{}={}", digestId("alice:secret"), ZOO_PERM_ALL),
            fmt::format("world:anyone={}", ZOO_PERM_READ)};
  }

  testing::ZooKeeperEnsemble* zk_ = nullptr;
  runtime::Runtime runtime_{runtime::Runtime::Options{2, 2, 64}};
  std::unique_ptr<runtime::StrandExecutor> executor_ = runtime_.makeExecutor();
  std::unique_ptr<runtime::StrandExecutor> contenderExecutor_ = runtime_.makeExecutor();
  std::unique_ptr<runtime::StrandExecutor> detectorExecutor_ = runtime_.makeExecutor();
  std::unique_ptr<RawSession> raw_;
  std::vector<std::unique_ptr<state::ZooKeeperStore>> stores_;
  std::vector<std::shared_ptr<election::LeaderContender>> contenders_;
  std::vector<std::shared_ptr<election::LeaderDetector>> detectors_;
};

TEST_F(ZkAclTest, TheStoresZnodesAreItsCreatorsToChangeAndAnyonesToRead) {
  const std::string path = uniquePath("store");
  auto& alice = store("alice:secret", path);
  ASSERT_TRUE(set(alice, "/registry/agents/a-1", "one", 0));
  const std::string big(state::ZooKeeperStore::kChunkBytes + 1, 'b');
  ASSERT_TRUE(set(alice, "/big", big, 0));

  const auto chunks = raw_->children(path + "/chunks");
  ASSERT_EQ(chunks.size(), 2u);
  for (const auto& znode :
       {path, path + "/state", path + "/state/registry", path + "/state/registry/agents",
        path + "/state/registry/agents/a-1", path + "/state/big", path + "/chunks",
        path + "/chunks/" + chunks[0], path + "/chunks/" + chunks[1]}) {
    EXPECT_THAT(raw_->acl(znode), UnorderedElementsAre(alicesAcl()[0], alicesAcl()[1])) << znode;
  }

  // Anyone reads it all.
  auto& anonymous = store("", path);
  auto one = get(anonymous, "/registry/agents/a-1");
  ASSERT_TRUE(one) << one.status().toString();
  ASSERT_TRUE(one->has_value());
  EXPECT_EQ((*one)->value, "one");
  EXPECT_EQ((*one)->version, 1u);
  auto read = get(anonymous, "/big");
  ASSERT_TRUE(read) << read.status().toString();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->value, big);
  auto listed = children(anonymous, "/registry/agents");
  ASSERT_TRUE(listed) << listed.status().toString();
  EXPECT_EQ(*listed, std::vector<std::string>{"a-1"});
}

TEST_F(ZkAclTest, ALeaderElectedWithCredentialsIsFoundWithout) {
  const std::string path = uniquePath("election");
  auto elected = contend("alice:secret", path);
  ASSERT_TRUE(waitFor([&] { return elected->load(); }, 30s));
  // No credentials: what `tessera resolve`, agents and Mesos's tools do.
  auto leader = detect("", path).awaitLeader(30s);
  ASSERT_TRUE(leader);
  EXPECT_EQ(leader->id, "master-alice");

  const std::string node = contenderExecutor_->call([&] { return contenders_[0]->znode(); });
  ASSERT_FALSE(node.empty());
  EXPECT_THAT(raw_->acl(path), UnorderedElementsAre(alicesAcl()[0], alicesAcl()[1]));
  EXPECT_THAT(raw_->acl(path + "/" + node), UnorderedElementsAre(alicesAcl()[0], alicesAcl()[1]));
}

// Without alice's credentials: none, someone else's, or alice's name with a wrong password.
class ZkAclIntruderTest : public ZkAclTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(ZkAclIntruderTest, CannotChangeTheStoreAndIsToldWhy) {
  const std::string path = uniquePath("intruder");
  auto& alice = store("alice:secret", path);
  ASSERT_TRUE(set(alice, "/registry/agents/a-1", "one", 0));
  auto& intruder = store(GetParam(), path);

  auto denied = [&](const api::Status& status, const std::string& znode) {
    EXPECT_EQ(status.code(), api::StatusCode::kPermissionDenied) << status.toString();
    EXPECT_THAT(status.message(), HasSubstr("permission denied by the ACL of znode '" + znode +
                                            "' (ZooKeeper: not authenticated)"));
  };
  // Overwriting a value: its own znode's ACL refuses.
  auto overwritten = set(intruder, "/registry/agents/a-1", "evil", 1);
  ASSERT_FALSE(overwritten);
  denied(overwritten.status(), path + "/state/registry/agents/a-1");
  EXPECT_THAT(overwritten.status().message(),
              HasSubstr("writing state key '/registry/agents/a-1'"));
  // A new key: its parent's.
  auto added = set(intruder, "/registry/agents/a-2", "evil", 0);
  ASSERT_FALSE(added);
  denied(added.status(), path + "/state/registry/agents");
  // A new key under a parent that does not exist yet: the nearest existing ancestor's.
  auto nested = set(intruder, "/fresh/k", "evil", 0);
  ASSERT_FALSE(nested);
  denied(nested.status(), path + "/state");
  EXPECT_THAT(nested.status().message(), HasSubstr("writing state key '/fresh/k'"));
  // A large value, whose chunks go under <path>/chunks (not there yet): <path>'s.
  auto large = set(intruder, "/big", std::string(state::ZooKeeperStore::kChunkBytes + 1, 'e'), 0);
  ASSERT_FALSE(large);
  denied(large.status(), path);
  EXPECT_THAT(large.status().message(), HasSubstr("writing state key '/big'"));
  // Removing: the parent's.
  auto removed = remove(intruder, "/registry/agents/a-1", 1);
  ASSERT_FALSE(removed);
  denied(removed, path + "/state/registry/agents");
  EXPECT_THAT(removed.message(), HasSubstr("removing state key '/registry/agents/a-1'"));

  // Nothing changed.
  auto one = get(alice, "/registry/agents/a-1");
  ASSERT_TRUE(one) << one.status().toString();
  ASSERT_TRUE(one->has_value());
  EXPECT_EQ((*one)->value, "one");
  EXPECT_EQ((*one)->version, 1u);
  EXPECT_EQ(*children(alice, "/registry/agents"), std::vector<std::string>{"a-1"});
  EXPECT_EQ(*children(alice, "/"), std::vector<std::string>{"registry"});
  EXPECT_EQ(raw_->children(path), std::vector<std::string>{"state"});
  // And alice still may.
  auto mine = set(alice, "/registry/agents/a-1", "two", 1);
  ASSERT_TRUE(mine) << mine.status().toString();
  EXPECT_EQ(*mine, 2u);
}

INSTANTIATE_TEST_SUITE_P(Credentials, ZkAclIntruderTest,
                         ::testing::Values("", "mallory:wrong", "alice:wrong"),
                         [](const auto& info) {
                           if (info.param.empty()) return std::string("None");
                           return info.param == "alice:wrong" ? std::string("WrongPassword")
                                                              : std::string("SomeoneElse");
                         });

TEST_F(ZkAclTest, ACredentialedMasterContendsUnderAParentItMayNotWrite) {
  // An operator made <parent>/tessera for the masters and closed <parent> itself: existing
  // ancestors must be left alone (ZooKeeper checks a parent's ACL before it says a znode
  // exists, so creating one again is refused).
  const std::string parent = uniquePath("locked");
  const std::string path = parent + "/tessera";
  ASSERT_EQ(raw_->create(parent), ZOK);
  ASSERT_EQ(raw_->create(path), ZOK);
  ACL readOnly[] = {{ZOO_PERM_READ, ZOO_ANYONE_ID_UNSAFE}};
  ACL_vector readOnlyAcl{1, readOnly};
  ASSERT_EQ(raw_->setAcl(parent, &readOnlyAcl), ZOK);

  auto elected = contend("alice:secret", path);
  EXPECT_TRUE(waitFor([&] { return elected->load(); }, 30s));
  auto& alice = store("alice:secret", path);
  auto written = set(alice, "/registry/agents/a-1", "one", 0);
  EXPECT_TRUE(written) << written.status().toString();
}

}  // namespace
}  // namespace tessera::kernel
