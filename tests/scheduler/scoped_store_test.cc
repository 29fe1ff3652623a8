// ScopedStore: a framework module's view of its host's store, confined to its own subtree.
#include "kernel/state/scoped_store.h"

#include <gtest/gtest.h>

#include <future>

#include "kernel/runtime/runtime.h"
#include "kernel/state/memory_store.h"

namespace tessera::kernel::state {
namespace {

template <typename T, typename Start>
T await(Start start) {
  std::promise<T> promise;
  auto future = promise.get_future();
  start([&promise](T result) { promise.set_value(std::move(result)); });
  return future.get();
}

class ScopedStoreTest : public ::testing::Test {
 protected:
  ScopedStoreTest() { runtime_.start(); }

  api::Result<std::optional<api::StateEntry>> get(api::StateStore& store, std::string_view key) {
    return await<api::Result<std::optional<api::StateEntry>>>(
        [&](auto done) { store.get(key, *executor_, done); });
  }
  api::Result<uint64_t> set(api::StateStore& store, std::string_view key, std::string value,
                            uint64_t expected = 0) {
    return await<api::Result<uint64_t>>(
        [&](auto done) { store.set(key, std::move(value), expected, *executor_, done); });
  }
  api::Status remove(api::StateStore& store, std::string_view key, uint64_t expected) {
    return await<api::Status>([&](auto done) { store.remove(key, expected, *executor_, done); });
  }
  api::Result<std::vector<std::string>> children(api::StateStore& store, std::string_view key) {
    return await<api::Result<std::vector<std::string>>>(
        [&](auto done) { store.children(key, *executor_, done); });
  }

  runtime::Runtime runtime_;
  std::unique_ptr<api::Executor> executor_ = runtime_.makeExecutor();
  MemoryStore inner_;
  ScopedStore store_{inner_, "/modules/org_a"};
};

TEST_F(ScopedStoreTest, KeysLiveUnderThePrefix) {
  ASSERT_EQ(*set(store_, "/apps/web", "v1"), 1u);
  auto inner = get(inner_, "/modules/org_a/apps/web");
  ASSERT_TRUE(inner && *inner);
  EXPECT_EQ((*inner)->value, "v1");
  auto own = get(store_, "/apps/web");
  ASSERT_TRUE(own && *own);
  EXPECT_EQ((*own)->value, "v1");
  EXPECT_EQ(*children(store_, "/"), std::vector<std::string>{"apps"});
  EXPECT_EQ(*children(store_, "/apps"), std::vector<std::string>{"web"});
  EXPECT_TRUE(remove(store_, "/apps/web", 1));
  EXPECT_FALSE(*get(inner_, "/modules/org_a/apps/web"));
}

TEST_F(ScopedStoreTest, CannotReachOutsideItsPrefix) {
  ASSERT_TRUE(set(inner_, "/modules/org_b/secret", "b's"));
  ASSERT_TRUE(set(inner_, "/framework_hosts/org_a/framework_id", "fw-1"));
  // Climbing out is refused as a bad key, not resolved.
  for (std::string_view key :
       {"/../org_b/secret", "/./x", "/a/../../org_b/secret", "org_b", "//org_b/secret", "/a/"}) {
    auto read = get(store_, key);
    ASSERT_FALSE(read) << key;
    EXPECT_EQ(read.status().code(), api::StatusCode::kInvalidArgument) << key;
    EXPECT_FALSE(set(store_, key, "x")) << key;
  }
  // The other module's and the host's keys are not in this view.
  EXPECT_FALSE(*get(store_, "/modules/org_b/secret"));
  EXPECT_FALSE(*get(store_, "/framework_hosts/org_a/framework_id"));
  EXPECT_TRUE(children(store_, "/")->empty());
  // Nothing this view writes lands outside it.
  ASSERT_TRUE(set(store_, "/modules/org_b/secret", "mine"));
  EXPECT_EQ((*get(inner_, "/modules/org_b/secret"))->value, "b's");
  EXPECT_EQ(*children(inner_, "/modules"), (std::vector<std::string>{"org_a", "org_b"}));
}

TEST_F(ScopedStoreTest, ErrorsNameTheCallersKey) {
  ASSERT_TRUE(set(store_, "/k", "1"));
  auto stale = set(store_, "/k", "2", 7);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.status().code(), api::StatusCode::kAborted);
  EXPECT_NE(stale.status().message().find("'/k'"), std::string::npos) << stale.status().message();
  EXPECT_EQ(stale.status().message().find("org_a"), std::string::npos) << stale.status().message();
  auto tooLong = set(store_, "/" + std::string(api::kMaxStateKeyBytes - 5, 'x'), "v");
  ASSERT_FALSE(tooLong);
  EXPECT_EQ(tooLong.status().code(), api::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::kernel::state
