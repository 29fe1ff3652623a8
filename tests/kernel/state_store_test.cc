// The StateStore contract, run against every kernel store, plus the file store's recovery and a
// real SIGKILL crash test.
#include "tessera/api/state_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kernel/runtime/runtime.h"
#include "kernel/state/file_store.h"
#include "kernel/state/keys.h"
#include "kernel/state/memory_store.h"
#include "kernel/state/zookeeper_store.h"
#include "tests/support/subprocess.h"
#include "tests/support/zookeeper.h"

namespace tessera::kernel::state {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using api::StateEntry;
using api::StateStore;
using api::StatusCode;

// Blocking wrappers for tests: each call waits for its reply (which arrives on `on`).
template <typename T, typename Start>
T await(Start start) {
  std::promise<T> promise;
  auto future = promise.get_future();
  start([&promise](T result) { promise.set_value(std::move(result)); });
  return future.get();
}

api::Result<std::optional<StateEntry>> getKey(StateStore& store, api::Executor& on,
                                              std::string_view key) {
  using R = api::Result<std::optional<StateEntry>>;
  return await<R>([&](auto done) { store.get(key, on, done); });
}

api::Result<uint64_t> setKey(StateStore& store, api::Executor& on, std::string_view key,
                             std::string value, uint64_t expected) {
  using R = api::Result<uint64_t>;
  return await<R>([&](auto done) { store.set(key, std::move(value), expected, on, done); });
}

api::Status removeKey(StateStore& store, api::Executor& on, std::string_view key,
                      uint64_t expected) {
  return await<api::Status>([&](auto done) { store.remove(key, expected, on, done); });
}

api::Result<std::vector<std::string>> childrenOf(StateStore& store, api::Executor& on,
                                                 std::string_view prefix) {
  using R = api::Result<std::vector<std::string>>;
  return await<R>([&](auto done) { store.children(prefix, on, done); });
}

// "/" and `length` more bytes.
std::string longKey(size_t length) {
  std::string key(1, '/');
  key.append(length, 'k');
  return key;
}

enum class Kind { kMemory, kFile, kZooKeeper };

// One ZooKeeper server for the whole binary (a JVM takes a second to start); each test gets
// its own path in it.
testing::ZooKeeperEnsemble* sharedZooKeeper() {
  static auto ensemble = [] {
    auto started = testing::ZooKeeperEnsemble::start(1);
    EXPECT_TRUE(started) << started.status().toString();
    return started ? std::move(*started) : nullptr;
  }();
  return ensemble.get();
}

class StateStoreContractTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    runtime_.start();
    executor_ = runtime_.makeExecutor();
    if (GetParam() == Kind::kMemory) {
      store_ = std::make_unique<MemoryStore>();
    } else if (GetParam() == Kind::kZooKeeper) {
      TESSERA_REQUIRE_ZOOKEEPER();
      auto* zk = sharedZooKeeper();
      ASSERT_NE(zk, nullptr);
      static int next = 0;
      auto url = zookeeper::parseZkUrl(zk->url(fmt::format("/contract/{}-{}", getpid(), next++)));
      ASSERT_TRUE(url) << url.status().toString();
      auto opened = ZooKeeperStore::open(*url, std::chrono::seconds(10));
      ASSERT_TRUE(opened) << opened.status().toString();
      store_ = std::move(*opened);
    } else {
      auto opened = FileStore::open(dir_.path() / "state");
      ASSERT_TRUE(opened) << opened.status().toString();
      store_ = std::move(*opened);
    }
  }
  void TearDown() override {
    store_.reset();
    runtime_.stop();
  }

  api::Result<std::optional<StateEntry>> get(std::string_view key) {
    return getKey(*store_, *executor_, key);
  }
  api::Result<uint64_t> set(std::string_view key, std::string value, uint64_t expected) {
    return setKey(*store_, *executor_, key, std::move(value), expected);
  }
  api::Status remove(std::string_view key, uint64_t expected) {
    return removeKey(*store_, *executor_, key, expected);
  }
  api::Result<std::vector<std::string>> children(std::string_view prefix) {
    return childrenOf(*store_, *executor_, prefix);
  }

  testing::TempDir dir_;
  runtime::Runtime runtime_{runtime::Runtime::Options{2, 2, 64}};
  std::unique_ptr<runtime::StrandExecutor> executor_;
  std::unique_ptr<StateStore> store_;
};

TEST_P(StateStoreContractTest, GetOfAnAbsentKeyIsEmpty) {
  auto entry = get("/registry/agents/a-1");
  ASSERT_TRUE(entry) << entry.status().toString();
  EXPECT_FALSE(entry->has_value());
}

TEST_P(StateStoreContractTest, SetCreatesAtVersionOneAndKeepsBytes) {
  const std::string bytes("a\0b\xff\n", 5);
  auto version = set("/registry/agents/a-1", bytes, 0);
  ASSERT_TRUE(version) << version.status().toString();
  EXPECT_EQ(*version, 1u);
  auto entry = get("/registry/agents/a-1");
  ASSERT_TRUE(entry && entry->has_value());
  EXPECT_EQ((*entry)->value, bytes);
  EXPECT_EQ((*entry)->version, 1u);

  auto again = set("/registry/agents/a-1", "other", 0);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.status().code(), StatusCode::kAborted);
  EXPECT_EQ(again.status().message(),
            "state key '/registry/agents/a-1' is at version 1, not the expected 0");
}

TEST_P(StateStoreContractTest, CompareAndSetSucceedsOnTheCurrentVersionOnly) {
  ASSERT_TRUE(set("/k", "one", 0));
  auto two = set("/k", "two", 1);
  ASSERT_TRUE(two) << two.status().toString();
  EXPECT_EQ(*two, 2u);

  auto stale = set("/k", "stale", 1);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.status().code(), StatusCode::kAborted);
  EXPECT_EQ(stale.status().message(), "state key '/k' is at version 2, not the expected 1");
  auto ahead = set("/k", "ahead", 7);
  EXPECT_EQ(ahead.status().code(), StatusCode::kAborted);
  auto absent = set("/absent", "x", 3);
  EXPECT_EQ(absent.status().message(), "state key '/absent' is at version 0, not the expected 3");

  auto entry = get("/k");
  ASSERT_TRUE(entry && entry->has_value());
  EXPECT_EQ((*entry)->value, "two");
  EXPECT_EQ((*entry)->version, 2u);
}

TEST_P(StateStoreContractTest, RemoveNeedsTheCurrentVersion) {
  ASSERT_TRUE(set("/k", "one", 0));
  ASSERT_TRUE(set("/k", "two", 1));

  auto wrong = remove("/k", 1);
  EXPECT_EQ(wrong.code(), StatusCode::kAborted);
  EXPECT_EQ(wrong.message(), "state key '/k' is at version 2, not the expected 1");
  EXPECT_EQ(remove("/k", 0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(remove("/absent", 1).code(), StatusCode::kNotFound);

  EXPECT_TRUE(remove("/k", 2));
  auto entry = get("/k");
  ASSERT_TRUE(entry);
  EXPECT_FALSE(entry->has_value());
  EXPECT_EQ(remove("/k", 2).code(), StatusCode::kNotFound);
  // Created again, the key starts over at version 1.
  auto version = set("/k", "three", 0);
  ASSERT_TRUE(version);
  EXPECT_EQ(*version, 1u);
}

TEST_P(StateStoreContractTest, ChildrenAreTheDirectChildrenSorted) {
  for (const char* key : {"/r/b", "/r/a/x", "/r/a/y", "/r/c", "/r-x/d", "/r/b-1/z", "/other"}) {
    ASSERT_TRUE(set(key, "v", 0)) << key;
  }
  auto below = children("/r");
  ASSERT_TRUE(below) << below.status().toString();
  EXPECT_EQ(*below, (std::vector<std::string>{"a", "b", "b-1", "c"}));
  auto top = children("/");
  ASSERT_TRUE(top);
  EXPECT_EQ(*top, (std::vector<std::string>{"other", "r", "r-x"}));
  // An implicit parent lists its children but holds no value.
  EXPECT_EQ(*children("/r/a"), (std::vector<std::string>{"x", "y"}));
  EXPECT_FALSE(get("/r/a")->has_value());
  EXPECT_TRUE(children("/r/b")->empty());
  EXPECT_TRUE(children("/nothing/here")->empty());

  ASSERT_TRUE(remove("/r/c", 1));
  EXPECT_EQ(*children("/r"), (std::vector<std::string>{"a", "b", "b-1"}));
}

TEST_P(StateStoreContractTest, BadKeysAreInvalidArguments) {
  for (const std::string& key : std::vector<std::string>{
           "", "a", "a/b", "/a/", "//a", "/a//b", "/a/./b", "/a/..", "/.", std::string("/a\x01"),
           std::string("/a\x7f"), std::string("/\xc3\xa9"), longKey(api::kMaxStateKeyBytes)}) {
    auto entry = get(key);
    ASSERT_FALSE(entry) << "'" << key << "'";
    EXPECT_EQ(entry.status().code(), StatusCode::kInvalidArgument) << key;
    EXPECT_EQ(set(key, "v", 0).status().code(), StatusCode::kInvalidArgument) << key;
    EXPECT_EQ(remove(key, 1).code(), StatusCode::kInvalidArgument) << key;
    EXPECT_EQ(children(key).status().code(), StatusCode::kInvalidArgument) << key;
  }
  EXPECT_EQ(get("//x").status().message(), "state key '//x' has an empty segment");
  EXPECT_EQ(get("/").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(set("/", "v", 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(children("/"));
  // Printable ASCII that a file name would not like is fine: the file store escapes it.
  EXPECT_TRUE(set("/with space/and.dot/%41/..x/a:b|c*?<>\\\"", "v", 0));
  EXPECT_EQ(*children("/with space"), (std::vector<std::string>{"and.dot"}));
}

TEST_P(StateStoreContractTest, ValuesAreLimitedToOneMebibyte) {
  std::string largest(api::kMaxStateValueBytes, 'x');
  auto version = set("/big", largest, 0);
  ASSERT_TRUE(version) << version.status().toString();
  EXPECT_EQ((*get("/big"))->value, largest);

  auto tooBig = set("/big", std::string(api::kMaxStateValueBytes + 1, 'x'), 1);
  ASSERT_FALSE(tooBig);
  EXPECT_EQ(tooBig.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ((*get("/big"))->version, 1u);
}

TEST_P(StateStoreContractTest, RepliesArriveOnTheCallersExecutor) {
  std::promise<bool> onStrand;
  store_->set("/k", "v", 0, *executor_, [&](const api::Result<uint64_t>&) {
    onStrand.set_value(executor_->runningInThisThread());
  });
  EXPECT_TRUE(onStrand.get_future().get());
  // Called from the strand, a reply can only run after the caller's handler ends, unless it
  // is called inline; errors found before any work is queued must be posted too.
  for (std::string key : {"bad", "/good"}) {
    bool callerDone = false;
    std::promise<bool> replied;
    executor_->call([&] {
      store_->get(key, *executor_, [&](auto) { replied.set_value(callerDone); });
      callerDone = true;
      return 0;
    });
    EXPECT_TRUE(replied.get_future().get()) << key << " was answered inline";
  }
}

TEST_P(StateStoreContractTest, ConcurrentCompareAndSetHasExactlyOneWinnerPerVersion) {
  const int threads = 8;
  const int attempts = GetParam() == Kind::kMemory ? 300 : 30;
  std::vector<std::vector<uint64_t>> won(threads);
  std::atomic<int> otherErrors{0};
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto executor = runtime_.makeExecutor();
      for (int i = 0; i < attempts; ++i) {
        auto current = getKey(*store_, *executor, "/counter");
        if (!current) {
          ++otherErrors;
          continue;
        }
        uint64_t seen = current->has_value() ? (*current)->version : 0;
        auto next = setKey(*store_, *executor, "/counter", std::to_string(t), seen);
        if (next) {
          EXPECT_EQ(*next, seen + 1);
          won[t].push_back(*next);
        } else if (next.status().code() != StatusCode::kAborted) {
          ++otherErrors;
        }
      }
    });
  }
  for (auto& worker : workers) worker.join();
  EXPECT_EQ(otherErrors.load(), 0);
  std::vector<uint64_t> all;
  for (const auto& versions : won) all.insert(all.end(), versions.begin(), versions.end());
  std::sort(all.begin(), all.end());
  ASSERT_FALSE(all.empty());
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], i + 1) << "version won twice or never";
  auto final = get("/counter");
  ASSERT_TRUE(final && final->has_value());
  EXPECT_EQ((*final)->version, all.size());
  // The value is the last winner's.
  for (int t = 0; t < threads; ++t) {
    if (!won[t].empty() && won[t].back() == all.size()) {
      EXPECT_EQ((*final)->value, std::to_string(t));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, StateStoreContractTest,
                         ::testing::Values(Kind::kMemory, Kind::kFile, Kind::kZooKeeper),
                         [](const auto& info) {
                           switch (info.param) {
                             case Kind::kMemory:
                               return std::string("Memory");
                             case Kind::kFile:
                               return std::string("File");
                             case Kind::kZooKeeper:
                               break;
                           }
                           return std::string("ZooKeeper");
                         });

// --- The file store on its own ------------------------------------------------------------

class FileStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runtime_.start();
    executor_ = runtime_.makeExecutor();
  }
  void TearDown() override { runtime_.stop(); }

  std::unique_ptr<FileStore> open() {
    auto opened = FileStore::open(stateDir());
    EXPECT_TRUE(opened) << opened.status().toString();
    return opened ? std::move(*opened) : nullptr;
  }
  fs::path stateDir() const { return dir_.path() / "state"; }
  std::vector<std::string> files() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(stateDir())) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  testing::TempDir dir_;
  runtime::Runtime runtime_{runtime::Runtime::Options{2, 2, 64}};
  std::unique_ptr<runtime::StrandExecutor> executor_;
};

TEST_F(FileStoreTest, EscapesKeysIntoFileNames) {
  EXPECT_EQ(FileStore::escapeKey("/registry/a-1_b"), "%2Fregistry%2Fa-1_b");
  EXPECT_EQ(FileStore::escapeKey("/a.tmp"), "%2Fa%2Etmp");
  EXPECT_EQ(FileStore::escapeKey("/a b%"), "%2Fa%20b%25");
}

TEST_F(FileStoreTest, EntriesSurviveAReopen) {
  {
    auto store = open();
    ASSERT_TRUE(setKey(*store, *executor_, "/a/b", "one", 0));
    ASSERT_TRUE(setKey(*store, *executor_, "/a/b", "two", 1));
    ASSERT_TRUE(setKey(*store, *executor_, "/a/c", "three", 0));
    ASSERT_TRUE(setKey(*store, *executor_, "/gone", "x", 0));
    ASSERT_TRUE(removeKey(*store, *executor_, "/gone", 1));
  }
  auto store = open();
  auto entry = getKey(*store, *executor_, "/a/b");
  ASSERT_TRUE(entry && entry->has_value());
  EXPECT_EQ((*entry)->value, "two");
  EXPECT_EQ((*entry)->version, 2u);
  EXPECT_EQ(*childrenOf(*store, *executor_, "/"), (std::vector<std::string>{"a"}));
  EXPECT_EQ(*childrenOf(*store, *executor_, "/a"), (std::vector<std::string>{"b", "c"}));
  EXPECT_FALSE(getKey(*store, *executor_, "/gone")->has_value());
  EXPECT_EQ(files(), (std::vector<std::string>{"%2Fa%2Fb", "%2Fa%2Fc", "LOCK"}));
}

TEST_F(FileStoreTest, ASecondStoreOnTheSameDirectoryIsRefused) {
  auto store = open();
  auto second = FileStore::open(stateDir());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use"), std::string::npos);
  store.reset();
  EXPECT_TRUE(FileStore::open(stateDir()));
}

// Sets queued behind one another are made durable together (two syncs for the group, not two
// per set), and each is still answered with its own compare-and-set result.
TEST_F(FileStoreTest, SetsQueuedTogetherAreWrittenAsAGroupWithTheirOwnResults) {
  auto store = open();
  constexpr int kKeys = 200;
  std::mutex mutex;
  std::map<std::string, api::Result<uint64_t>> results;
  std::promise<void> allAnswered;
  const size_t calls = kKeys + 3;
  auto record = [&](std::string name) {
    return [&, name](api::Result<uint64_t> result) {
      std::lock_guard lock(mutex);
      results.emplace(name, std::move(result));
      if (results.size() == calls) allAnswered.set_value();
    };
  };
  for (int i = 0; i < kKeys; ++i) {
    store->set(fmt::format("/group/k{}", i), fmt::format("value {}", i), 0, *executor_,
               record(fmt::format("k{}", i)));
  }
  // A wrong version fails alone; a second set of a key sees the first one's version.
  store->set("/group/k7", "stale", 0, *executor_, record("k7 again at 0"));
  store->set("/group/k8", "second", 1, *executor_, record("k8 again at 1"));
  store->set("/group/k9", "wrong", 5, *executor_, record("k9 at 5"));
  ASSERT_EQ(allAnswered.get_future().wait_for(60s), std::future_status::ready);

  for (int i = 0; i < kKeys; ++i) {
    const auto& result = results.at(fmt::format("k{}", i));
    ASSERT_TRUE(result) << i << ": " << result.status().toString();
    EXPECT_EQ(*result, 1u);
  }
  EXPECT_EQ(results.at("k7 again at 0").status().code(), StatusCode::kAborted);
  ASSERT_TRUE(results.at("k8 again at 1"));
  EXPECT_EQ(*results.at("k8 again at 1"), 2u);
  EXPECT_EQ(results.at("k9 at 5").status().code(), StatusCode::kAborted);
  // The sets were not each synced on their own.
  EXPECT_LT(store->syncs(), static_cast<uint64_t>(kKeys) / 2);
  EXPECT_GE(store->syncs(), 2u);

  // Everything answered is on disk, whole, after a reopen.
  store.reset();
  store = open();
  for (int i = 0; i < kKeys; ++i) {
    auto entry = getKey(*store, *executor_, fmt::format("/group/k{}", i));
    ASSERT_TRUE(entry && entry->has_value()) << i;
    EXPECT_EQ((*entry)->value, i == 8 ? "second" : fmt::format("value {}", i));
    EXPECT_EQ((*entry)->version, i == 8 ? 2u : 1u);
  }
  for (const auto& name : files()) EXPECT_FALSE(name.ends_with(".tmp")) << name;
}

TEST_F(FileStoreTest, KeysTooLongForAFileNameAreRefused) {
  auto store = open();
  auto result = setKey(*store, *executor_, longKey(FileStore::kMaxNameBytes), "v", 0);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(setKey(*store, *executor_, longKey(FileStore::kMaxNameBytes - 3), "v", 0));
}

TEST_F(FileStoreTest, RecoveryRemovesUnfinishedWritesAndSetsAsideTornEntries) {
  {
    auto store = open();
    ASSERT_TRUE(setKey(*store, *executor_, "/kept", "kept value", 0));
    ASSERT_TRUE(setKey(*store, *executor_, "/torn", "a value long enough to tear", 0));
    ASSERT_TRUE(setKey(*store, *executor_, "/flipped", "checksummed", 0));
  }
  // A write that died before its rename, a file cut short, and a file with a flipped byte.
  std::ofstream(stateDir() / "%2Fkept.tmp") << "half a write";
  fs::resize_file(stateDir() / "%2Ftorn", fs::file_size(stateDir() / "%2Ftorn") - 5);
  {
    std::fstream flip(stateDir() / "%2Fflipped", std::ios::in | std::ios::out | std::ios::binary);
    flip.seekp(-1, std::ios::end);
    flip.put('X');
  }

  auto store = open();
  auto kept = getKey(*store, *executor_, "/kept");
  ASSERT_TRUE(kept && kept->has_value());
  EXPECT_EQ((*kept)->value, "kept value");
  EXPECT_FALSE(getKey(*store, *executor_, "/torn")->has_value());
  EXPECT_FALSE(getKey(*store, *executor_, "/flipped")->has_value());
  EXPECT_EQ(files(),
            (std::vector<std::string>{"%2Fflipped.corrupt", "%2Fkept", "%2Ftorn.corrupt", "LOCK"}));
  // The key can be written again from scratch.
  EXPECT_EQ(*setKey(*store, *executor_, "/torn", "new", 0), 1u);
}

// --- Crash safety with a real SIGKILL ------------------------------------------------------

constexpr const char* kCrashDirEnv = "TESSERA_STATE_CRASH_DIR";
constexpr std::string_view kCrashKey = "/crash/counter";

// The value written at `version`: its length varies so a torn write would show.
std::string crashValue(uint64_t version) {
  std::string value = fmt::format("version {};", version);
  size_t length = 16 + (version * 7919) % (64u * 1024u);
  while (value.size() < length) value.append(std::to_string(version)).push_back(' ');
  return value;
}

// Not a test on its own: the child FileStoreCrashTest runs. It writes the next version of
// kCrashKey as fast as it can and prints "acked <version>" once each set has been answered.
// Disabled so the suite never runs it by itself; FileStoreCrashTest starts it in a child.
TEST(FileStoreCrashChild, DISABLED_WritesUntilKilled) {
  const char* dir = std::getenv(kCrashDirEnv);
  if (dir == nullptr) GTEST_SKIP() << "only run as FileStoreCrashTest's child";
  runtime::Runtime runtime{runtime::Runtime::Options{1, 1, 16}};
  runtime.start();
  auto executor = runtime.makeExecutor();
  auto opened = FileStore::open(dir);
  ASSERT_TRUE(opened) << opened.status().toString();
  auto& store = **opened;
  auto current = getKey(store, *executor, kCrashKey);
  ASSERT_TRUE(current) << current.status().toString();
  uint64_t version = current->has_value() ? (*current)->version : 0;
  for (int i = 0; i < 1000000; ++i) {
    auto next = setKey(store, *executor, kCrashKey, crashValue(version + 1), version);
    ASSERT_TRUE(next) << next.status().toString();
    version = *next;
    std::string line = fmt::format("acked {}\n", version);
    ASSERT_EQ(::write(STDOUT_FILENO, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  }
}

// The versions the child acknowledged, in order (whole lines only).
std::vector<uint64_t> ackedVersions(const std::string& out) {
  std::vector<uint64_t> versions;
  size_t start = 0;
  while (true) {
    size_t end = out.find('\n', start);
    if (end == std::string::npos) break;
    std::string_view line(out.data() + start, end - start);
    if (line.starts_with("acked ")) versions.push_back(std::stoull(std::string(line.substr(6))));
    start = end + 1;
  }
  return versions;
}

TEST(FileStoreCrashTest, SigkillMidWriteLosesNoAcknowledgedVersion) {
  testing::TempDir dir;
  const fs::path stateDir = dir.path() / "state";
  const fs::path self = fs::read_symlink("/proc/self/exe");
  runtime::Runtime runtime{runtime::Runtime::Options{1, 1, 16}};
  runtime.start();
  auto executor = runtime.makeExecutor();
  uint64_t previous = 0;
  for (int round = 0; round < 5; ++round) {
    testing::Subprocess::Options options;
    options.argv = {self.string(), "--gtest_also_run_disabled_tests",
                    "--gtest_filter=FileStoreCrashChild.DISABLED_WritesUntilKilled"};
    options.env = {{kCrashDirEnv, stateDir.string()}};
    auto child = testing::Subprocess::start(std::move(options));
    ASSERT_TRUE(child) << child.status().toString();
    // Kill after a different number of acknowledged writes each round.
    const size_t want = 10 + 23 * round;
    ASSERT_TRUE(
        testing::waitFor([&] { return ackedVersions((*child)->out()).size() >= want; }, 60s))
        << (*child)->out() << (*child)->err();
    (*child)->kill(SIGKILL);
    ASSERT_TRUE((*child)->wait(30s));
    EXPECT_EQ((*child)->exitCode(), -SIGKILL) << (*child)->err();
    auto acked = ackedVersions((*child)->out());
    ASSERT_GE(acked.size(), want);
    const uint64_t last = acked.back();
    EXPECT_GT(acked.front(), previous) << "round " << round;

    auto opened = FileStore::open(stateDir);
    ASSERT_TRUE(opened) << opened.status().toString();
    for (const auto& entry : fs::directory_iterator(stateDir)) {
      EXPECT_FALSE(entry.path().filename().string().ends_with(".tmp")) << entry.path();
      EXPECT_FALSE(entry.path().filename().string().ends_with(".corrupt")) << entry.path();
    }
    auto stored = getKey(**opened, *executor, kCrashKey);
    ASSERT_TRUE(stored && stored->has_value()) << "round " << round;
    // The child may have been killed between a durable write and printing its ack.
    EXPECT_GE((*stored)->version, last) << "round " << round;
    EXPECT_LE((*stored)->version, last + 1) << "round " << round;
    EXPECT_EQ((*stored)->value, crashValue((*stored)->version)) << "round " << round;
    previous = (*stored)->version;
  }
  runtime.stop();
}

}  // namespace
}  // namespace tessera::kernel::state
