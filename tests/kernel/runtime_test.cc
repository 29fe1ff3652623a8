#include "kernel/runtime/runtime.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <latch>
#include <vector>

namespace tessera::kernel::runtime {
namespace {

using namespace std::chrono_literals;

class RuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override { runtime_.start(); }
  void TearDown() override { runtime_.stop(); }
  Runtime runtime_{Runtime::Options{2, 2, 4}};
};

TEST_F(RuntimeTest, StrandRunsPostedWorkInOrderOneAtATime) {
  auto executor = runtime_.makeExecutor();
  std::vector<int> seen;
  std::atomic<int> inside{0};
  bool overlapped = false;
  for (int i = 0; i < 1000; ++i) {
    executor->post([&, i] {
      if (inside.fetch_add(1) != 0) overlapped = true;
      EXPECT_TRUE(executor->runningInThisThread());
      seen.push_back(i);
      inside.fetch_sub(1);
    });
  }
  executor->drain();
  EXPECT_FALSE(overlapped);
  ASSERT_EQ(seen.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(seen[i], i);
  EXPECT_FALSE(executor->runningInThisThread());
}

TEST_F(RuntimeTest, CallReturnsTheValue) {
  auto executor = runtime_.makeExecutor();
  EXPECT_EQ(executor->call([] { return 42; }), 42);
}

TEST_F(RuntimeTest, TimerFiresOnTheStrand) {
  auto executor = runtime_.makeExecutor();
  std::promise<bool> fired;
  auto timer = executor->schedule(1ms, [&] { fired.set_value(executor->runningInThisThread()); });
  auto future = fired.get_future();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(future.get());
}

TEST_F(RuntimeTest, CancelledTimerNeverFires) {
  auto executor = runtime_.makeExecutor();
  std::atomic<bool> fired{false};
  std::promise<void> later;
  auto timer = executor->schedule(20ms, [&] { fired = true; });
  executor->call([&] {
    timer->cancel();
    return 0;
  });
  // A second timer, due after the first, proves the first's due time has passed.
  auto after = executor->schedule(60ms, [&] { later.set_value(); });
  ASSERT_EQ(later.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_FALSE(fired);
}

TEST_F(RuntimeTest, RunBlockingPostsDoneBackToTheStrand) {
  auto executor = runtime_.makeExecutor();
  std::promise<bool> done;
  std::atomic<bool> workOnStrand{true};
  ASSERT_TRUE(executor->runBlocking([&] { workOnStrand = executor->runningInThisThread(); },
                                    [&] { done.set_value(executor->runningInThisThread()); }));
  auto future = done.get_future();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(future.get());
  EXPECT_FALSE(workOnStrand);
}

TEST(BlockingPoolTest, RefusesWorkBeyondItsQueue) {
  BlockingPool pool(1, 2);
  std::latch release(1);
  std::latch started(1);
  // Occupies the one thread until released.
  ASSERT_TRUE(pool.submit([&] {
    started.count_down();
    release.wait();
  }));
  started.wait();
  std::atomic<int> ran{0};
  EXPECT_TRUE(pool.submit([&] { ++ran; }));
  EXPECT_TRUE(pool.submit([&] { ++ran; }));
  EXPECT_FALSE(pool.submit([&] { ++ran; })) << "the queue holds 2";
  release.count_down();
  pool.shutdown();  // runs what was queued, then joins
  EXPECT_EQ(ran, 2);
  EXPECT_FALSE(pool.submit([] {})) << "a shut-down pool takes nothing";
}

TEST(RuntimeOptionsTest, RunBlockingReportsAFullPool) {
  Runtime runtime(Runtime::Options{1, 1, 1});
  runtime.start();
  auto executor = runtime.makeExecutor();
  std::latch release(1);
  std::latch started(1);
  ASSERT_TRUE(executor->runBlocking(
      [&] {
        started.count_down();
        release.wait();
      },
      [] {}));
  started.wait();
  ASSERT_TRUE(executor->runBlocking([] {}, [] {}));  // fills the queue of 1
  auto refused = executor->runBlocking([] {}, [] {});
  EXPECT_EQ(refused.code(), api::StatusCode::kResourceExhausted);
  release.count_down();
  runtime.stop();
}

}  // namespace
}  // namespace tessera::kernel::runtime
