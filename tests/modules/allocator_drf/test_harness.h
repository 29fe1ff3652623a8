#pragma once

// An in-test executor, a fake clock and an offer recorder around DrfAllocator, so tests drive
// allocation runs by hand and never sleep.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "modules/allocator_drf/drf_allocator.h"
#include "tessera/api/executor.h"
#include "tessera/api/resources.h"

namespace tessera::modules::drf::testing {

/// Runs posted work only when the test says so; timers never fire by themselves.
class ManualExecutor final : public api::Executor {
 public:
  struct Timer final : api::TimerHandle {
    bool cancelled = false;
    void cancel() override { cancelled = true; }
  };
  void post(std::function<void()> fn) override { queue_.push_back(std::move(fn)); }
  bool runningInThisThread() const override { return true; }
  std::unique_ptr<api::TimerHandle> schedule(std::chrono::nanoseconds delay,
                                             std::function<void()> fn) override {
    auto handle = std::make_unique<Timer>();
    timers_.push_back({delay, std::move(fn), handle.get()});
    return handle;
  }
  api::Status runBlocking(std::function<void()> work, std::function<void()> done) override {
    work();
    post(std::move(done));
    return api::Status::ok();
  }
  /// Runs everything posted so far (and what that posts); returns how many tasks ran.
  size_t runAll() {
    size_t ran = 0;
    while (!queue_.empty()) {
      auto fn = std::move(queue_.front());
      queue_.pop_front();
      fn();
      ++ran;
    }
    return ran;
  }
  size_t pending() const { return queue_.size(); }
  size_t timers() const { return timers_.size(); }

 private:
  struct Scheduled {
    std::chrono::nanoseconds delay;
    std::function<void()> fn;
    Timer* handle;
  };
  std::deque<std::function<void()>> queue_;
  std::vector<Scheduled> timers_;
};

inline api::Resources res(std::string_view text) {
  auto parsed = api::Resources::parse(text);
  if (!parsed) {
    ADD_FAILURE() << parsed.status().toString();
    std::abort();
  }
  return *std::move(parsed);
}

/// One offer as the callback delivered it.
struct Offer {
  std::string framework;
  std::string role;
  std::string agent;
  api::Resources resources;
};

class Harness {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Harness(bool automaticRuns = false, DrfParameters parameters = {})
      : allocator_(executor_, nullptr, nullptr, std::move(parameters)) {
    api::AllocatorOptions options;
    options.automaticRuns = automaticRuns;
    options.clock = [this] { return now_; };
    options.offerCallback = [this](std::string_view framework, std::vector<api::Offer> offers) {
      std::set<std::pair<std::string, std::string>> seen;
      for (api::Offer& offer : offers) {
        EXPECT_TRUE(seen.emplace(offer.role, offer.agentId).second)
            << "(role, agent) offered twice in one run";
        offers_.push_back(
            {std::string(framework), offer.role, offer.agentId, std::move(offer.resources)});
      }
    };
    EXPECT_TRUE(allocator_.initialize(std::move(options)).isOk());
  }

  DrfAllocator& allocator() { return allocator_; }
  ManualExecutor& executor() { return executor_; }
  void advance(std::chrono::nanoseconds by) { now_ += by; }
  Clock::time_point now() const { return now_; }

  /// Runs a full allocation now; returns (and forgets) the offers it made.
  std::vector<Offer> allocate() {
    allocator_.allocateNow();
    return takeOffers();
  }
  std::vector<Offer> takeOffers() {
    std::vector<Offer> offers;
    offers.swap(offers_);
    return offers;
  }

  void addAgent(const std::string& id, std::string_view total) {
    ASSERT_TRUE(allocator_.addAgent(id, res(total), {}).isOk());
  }
  void addFramework(const std::string& id, std::vector<std::string> roles, bool active = true) {
    api::FrameworkOptions options;
    options.roles = std::move(roles);
    ASSERT_TRUE(allocator_.addFramework(id, options, {}, active).isOk());
  }
  void decline(const Offer& offer, std::chrono::nanoseconds refuseFor = std::chrono::seconds(5)) {
    ASSERT_TRUE(
        allocator_.recoverResources(offer.framework, offer.agent, offer.resources, refuseFor)
            .isOk());
  }

 private:
  ManualExecutor executor_;
  Clock::time_point now_ = Clock::time_point(std::chrono::hours(1));
  std::vector<Offer> offers_;
  DrfAllocator allocator_;
};

}  // namespace tessera::modules::drf::testing
