// New demand is offered at once, in one run per burst of events, not on the next periodic
// run: the allocator runs on a real thread here, with an allocation interval far longer than
// any test waits, so an offer that arrives in time cannot have come from the timer.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "modules/allocator_drf/drf_allocator.h"
#include "tests/modules/allocator_drf/test_harness.h"

namespace tessera::modules::drf {
namespace {

using namespace std::chrono_literals;
using testing::res;

// Far longer than any wait below: an offer in time was not made by the periodic run.
constexpr auto kInterval = std::chrono::hours(1);
constexpr auto kDeadline = 10s;

// One worker thread running posted work in order, and timers; what the kernel's strand gives
// a module, without the kernel.
class ThreadExecutor final : public api::Executor {
 public:
  ThreadExecutor() : thread_([this] { loop(); }) {}
  ~ThreadExecutor() override {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  void post(std::function<void()> fn) override {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(fn));
    }
    wake_.notify_all();
  }
  bool runningInThisThread() const override { return std::this_thread::get_id() == id_; }
  std::unique_ptr<api::TimerHandle> schedule(std::chrono::nanoseconds delay,
                                             std::function<void()> fn) override {
    auto handle = std::make_unique<Handle>();
    {
      std::lock_guard lock(mutex_);
      timers_.push_back(
          {std::chrono::steady_clock::now() + delay, std::move(fn), handle->cancelled});
    }
    wake_.notify_all();
    return handle;
  }
  api::Status runBlocking(std::function<void()> work, std::function<void()> done) override {
    work();
    post(std::move(done));
    return api::Status::ok();
  }

  /// Runs `fn` on the worker and waits for it.
  template <typename Fn>
  auto call(Fn fn) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    post([&task] { task(); });
    return result.get();
  }

 private:
  struct Handle final : api::TimerHandle {
    std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
    void cancel() override { *cancelled = true; }
  };
  struct Timer {
    std::chrono::steady_clock::time_point at;
    std::function<void()> fn;
    std::shared_ptr<std::atomic<bool>> cancelled;
  };

  void loop() {
    id_ = std::this_thread::get_id();
    std::unique_lock lock(mutex_);
    while (!done_) {
      auto now = std::chrono::steady_clock::now();
      std::function<void()> next;
      for (auto it = timers_.begin(); it != timers_.end(); ++it) {
        if (*it->cancelled) {
          timers_.erase(it);
          next = [] {};
          break;
        }
        if (it->at <= now) {
          next = std::move(it->fn);
          timers_.erase(it);
          break;
        }
      }
      if (!next && !queue_.empty()) {
        next = std::move(queue_.front());
        queue_.pop_front();
      }
      if (next) {
        lock.unlock();
        next();
        lock.lock();
        continue;
      }
      auto until = now + 1h;
      for (const Timer& timer : timers_) until = std::min(until, timer.at);
      wake_.wait_until(lock, until);
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  std::vector<Timer> timers_;
  bool done_ = false;
  std::atomic<std::thread::id> id_;
  std::thread thread_;
};

class MapMetrics final : public api::Metrics {
 public:
  class NullTimer final : public api::Timer {
   public:
    void record(std::chrono::nanoseconds) override {}
  };
  api::Counter& counter(std::string_view name) override {
    std::lock_guard lock(mutex_);
    return counters_[std::string(name)];
  }
  api::Timer& timer(std::string_view name) override {
    std::lock_guard lock(mutex_);
    return timers_[std::string(name)];
  }
  void gauge(std::string_view, std::function<double()>) override {}
  void removeGauge(std::string_view) override {}

 private:
  std::mutex mutex_;
  std::map<std::string, api::Counter> counters_;
  std::map<std::string, NullTimer> timers_;
};

// A DrfAllocator on its own thread, with an hour-long interval, recording the offers it makes.
class PromptAllocation : public ::testing::Test {
 protected:
  void SetUp() override {
    allocator_ = std::make_unique<DrfAllocator>(executor_, &metrics_, nullptr);
    runs_ = &metrics_.counter("allocator/drf/allocation_runs");
    api::AllocatorOptions options;
    options.allocationInterval = kInterval;
    options.offerCallback = [this](std::string_view framework, std::vector<api::Offer> offers) {
      {
        std::lock_guard lock(mutex_);
        for (api::Offer& offer : offers) {
          offers_.push_back({std::string(framework), offer.role, offer.agentId, offer.resources});
        }
      }
      offered_.notify_all();
    };
    ASSERT_TRUE(executor_.call([&] { return allocator_->initialize(std::move(options)); }).isOk());
  }
  void TearDown() override {
    executor_.call([this] {
      allocator_->stop();
      return 0;
    });
    executor_.call([] { return 0; });  // what stop() left queued has run
    allocator_.reset();
  }

  template <typename Fn>
  auto onStrand(Fn fn) {
    return executor_.call(std::move(fn));
  }
  void addAgent(const std::string& id) {
    ASSERT_TRUE(
        onStrand([&] { return allocator_->addAgent(id, res("cpus:1;mem:128"), {}); }).isOk());
  }
  void addFramework(const std::string& id) {
    ASSERT_TRUE(onStrand([&] {
                  api::FrameworkOptions options;
                  options.roles = {"*"};
                  return allocator_->addFramework(id, options, {}, true);
                }).isOk());
  }
  // Waits (up to kDeadline, far below the interval) until `count` offers have been made;
  // returns and forgets them.
  std::vector<testing::Offer> awaitOffers(size_t count) {
    std::unique_lock lock(mutex_);
    offered_.wait_for(lock, kDeadline, [&] { return offers_.size() >= count; });
    std::vector<testing::Offer> taken;
    taken.swap(offers_);
    return taken;
  }
  size_t offersNow() {
    onStrand([] { return 0; });  // a run already queued has delivered by now
    std::lock_guard lock(mutex_);
    return offers_.size();
  }
  uint64_t runs() const { return runs_->value(); }

  ThreadExecutor executor_;
  MapMetrics metrics_;
  std::unique_ptr<DrfAllocator> allocator_;
  api::Counter* runs_ = nullptr;
  std::mutex mutex_;
  std::condition_variable offered_;
  std::vector<testing::Offer> offers_;
};

TEST_F(PromptAllocation, SubscriptionIsOfferedWithoutWaitingForTheInterval) {
  addAgent("agent");
  EXPECT_EQ(offersNow(), 0u);  // nobody to offer to yet
  addFramework("f");
  auto offers = awaitOffers(1);
  ASSERT_EQ(offers.size(), 1u) << "no offer within " << kDeadline.count() << "s";
  EXPECT_EQ(offers[0].framework, "f");
  EXPECT_EQ(offers[0].agent, "agent");
}

TEST_F(PromptAllocation, NewAgentIsOfferedWithoutWaitingForTheInterval) {
  addFramework("f");
  EXPECT_EQ(offersNow(), 0u);  // nothing to offer yet
  addAgent("agent");
  auto offers = awaitOffers(1);
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].agent, "agent");
}

TEST_F(PromptAllocation, ReviveIsOfferedWithoutWaitingForTheInterval) {
  addAgent("agent");
  addFramework("f");
  auto offers = awaitOffers(1);
  ASSERT_EQ(offers.size(), 1u);
  // Declined with a filter longer than the test: only REVIVE can bring the agent back.
  ASSERT_TRUE(onStrand([&] {
                return allocator_->recoverResources("f", "agent", offers[0].resources, kInterval);
              }).isOk());
  EXPECT_EQ(offersNow(), 0u);
  ASSERT_TRUE(onStrand([&] { return allocator_->reviveOffers("f", {}); }).isOk());
  offers = awaitOffers(1);
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].agent, "agent");
}

TEST_F(PromptAllocation, ResourcesGivenBackAreOfferedAgainAtOnce) {
  addAgent("agent");
  addFramework("f");
  auto offers = awaitOffers(1);
  ASSERT_EQ(offers.size(), 1u);
  // Declined without a filter (or a task ended): offered again without waiting.
  ASSERT_TRUE(onStrand([&] {
                return allocator_->recoverResources("f", "agent", offers[0].resources,
                                                    std::nullopt);
              }).isOk());
  offers = awaitOffers(1);
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].resources.cpus(), 1.0);
}

// Many events that arrive while the allocator is busy make one run, not one each.
TEST_F(PromptAllocation, BurstOfEventsMakesOneRun) {
  constexpr int kAgents = 200;
  addFramework("f");
  onStrand([] { return 0; });
  uint64_t before = runs();
  // Hold the strand while the burst is queued, as the master's posts queue behind a busy
  // allocator.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  executor_.post([released] { released.wait(); });
  for (int i = 0; i < kAgents; ++i) {
    executor_.post([this, i] {
      api::Status added =
          allocator_->addAgent("agent-" + std::to_string(i), res("cpus:1;mem:128"), {});
      EXPECT_TRUE(added.isOk()) << added.toString();
    });
  }
  release.set_value();
  auto offers = awaitOffers(kAgents);
  EXPECT_EQ(offers.size(), static_cast<size_t>(kAgents));
  onStrand([] { return 0; });  // the run that delivered them has counted itself
  uint64_t made = runs() - before;
  EXPECT_GE(made, 1u);
  EXPECT_LE(made, 2u) << kAgents << " events made " << made << " allocation runs";
}

}  // namespace
}  // namespace tessera::modules::drf
