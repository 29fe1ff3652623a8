// The Chronos framework driven by hand: a manual executor and a fake clock, a recording
// scheduler driver, the kernel's in-memory state store. Shows the order that makes failovers
// safe (a run is in the store before its offer is accepted; an update is acknowledged only once
// its outcome is stored), that a new instance on the same store reconciles the runs in flight
// instead of launching them again (and launches once more only what the master never saw),
// that missed points run once within epsilon, and retries, disabled jobs and FORBID.
#include "modules/framework_chronos/chronos_framework.h"

#include <gtest/gtest.h>

#include <deque>

#include "kernel/state/memory_store.h"

namespace tessera::modules::chronos {
namespace {

using namespace std::chrono_literals;

// Runs posted work when the test drains it; timers fire when the test moves the clock.
class ManualExecutor final : public api::Executor {
 public:
  struct Timer final : api::TimerHandle {
    void cancel() override { cancelled = true; }
    Clock::time_point at;
    std::function<void()> fn;
    bool cancelled = false;
  };
  explicit ManualExecutor(Clock::time_point* now) : now_(now) {}
  void post(std::function<void()> fn) override { queue_.push_back(std::move(fn)); }
  bool runningInThisThread() const override { return true; }
  std::unique_ptr<api::TimerHandle> schedule(std::chrono::nanoseconds delay,
                                             std::function<void()> fn) override {
    auto timer = std::make_shared<Timer>();
    timer->at = *now_ + std::chrono::duration_cast<Clock::duration>(delay);
    timer->fn = std::move(fn);
    timers_.push_back(timer);
    // The handle the framework keeps cancels the shared timer.
    struct Handle final : api::TimerHandle {
      std::shared_ptr<Timer> timer;
      void cancel() override { timer->cancel(); }
    };
    auto handle = std::make_unique<Handle>();
    handle->timer = timer;
    return handle;
  }
  api::Status runBlocking(std::function<void()> work, std::function<void()> done) override {
    work();
    post(std::move(done));
    return api::Status::ok();
  }
  // Runs everything posted, and what that posts.
  void drain() {
    while (!queue_.empty()) {
      auto fn = std::move(queue_.front());
      queue_.pop_front();
      fn();
    }
  }
  // Fires the timers due by now (and drains after each); `drainFirst` false lets a timer run
  // before what was posted earlier, as a strand may.
  void fire(bool drainFirst = true) {
    if (drainFirst) drain();
    for (bool fired = true; fired;) {
      fired = false;
      auto timers = timers_;
      for (auto& timer : timers) {
        if (timer->cancelled || timer->at > *now_) continue;
        timer->cancelled = true;
        timer->fn();
        drain();
        fired = true;
      }
    }
  }

 private:
  Clock::time_point* now_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::shared_ptr<Timer>> timers_;
};

class NullLogger final : public api::Logger {
 public:
  void log(Level, std::string_view message) override { lines.emplace_back(message); }
  std::vector<std::string> lines;
};

class NullMetrics final : public api::Metrics {
 public:
  api::Counter& counter(std::string_view) override { return counter_; }
  api::Timer& timer(std::string_view) override { std::abort(); }
  void gauge(std::string_view, std::function<double()>) override {}
  void removeGauge(std::string_view) override {}

 private:
  api::Counter counter_;
};

class CapturingRouter final : public api::HttpRouter {
 public:
  api::Status addRoute(std::string_view, std::string_view, api::HttpHandler, bool) override {
    return api::Status::ok();
  }
};

class TestContext final : public api::Context {
 public:
  TestContext(Clock::time_point* now, kernel::state::MemoryStore* store)
      : executor_(now), store_(store) {}
  api::Logger& logger() override { return logger_; }
  api::Metrics& metrics() override { return metrics_; }
  api::Executor& executor() override { return executor_; }
  api::HttpRouter& http() override { return router_; }
  std::string_view role() const override { return "framework"; }
  std::string_view workDir() const override { return ""; }
  api::StateStore& state() override { return *store_; }
  ManualExecutor executor_;
  NullLogger logger_;

 private:
  NullMetrics metrics_;
  CapturingRouter router_;
  kernel::state::MemoryStore* store_;
};

// Records the calls; accept() also notes whether the store held the run at that moment.
class FakeDriver final : public api::SchedulerDriver {
 public:
  explicit FakeDriver(kernel::state::MemoryStore* store) : store_(store) {}
  api::Status subscribe(v1::FrameworkInfo info, std::vector<std::string>) override {
    this->info = std::move(info);
    return api::Status::ok();
  }
  void accept(std::vector<v1::OfferID>, std::vector<v1::Offer::Operation> operations,
              std::optional<v1::Filters>, api::CallCallback) override {
    for (const auto& operation : operations) {
      for (const auto& task : operation.launch().task_infos()) {
        launched.push_back(task);
        storedAtLaunch.push_back(storeHolds(task.task_id().value()));
      }
    }
  }
  void decline(std::vector<v1::OfferID>, std::optional<v1::Filters>, api::CallCallback) override {
    ++declined;
  }
  void revive(std::vector<std::string>, api::CallCallback) override { ++revived; }
  void suppress(std::vector<std::string>, api::CallCallback) override {}
  void kill(const v1::TaskID& taskId, const std::optional<v1::AgentID>&,
            api::CallCallback) override {
    killed.push_back(taskId.value());
  }
  void acknowledge(const v1::AgentID&, const v1::TaskID& taskId, const std::string&,
                   api::CallCallback) override {
    acknowledged.push_back(taskId.value());
  }
  void reconcile(std::vector<v1::scheduler::Call::Reconcile::Task> tasks,
                 api::CallCallback) override {
    for (const auto& task : tasks) reconciled.push_back(task.task_id().value());
  }
  void message(const v1::AgentID&, const v1::ExecutorID&, const std::string&,
               api::CallCallback) override {}
  void teardown(api::CallCallback) override {}
  std::optional<v1::FrameworkID> frameworkId() const override { return std::nullopt; }
  bool subscribed() const override { return isSubscribed; }

  // True when some job's record in the store names `taskId` (an inline read: the memory store
  // answers at once and posts the reply; this executor runs it in place).
  bool storeHolds(const std::string& taskId) {
    struct Inline final : api::Executor {
      void post(std::function<void()> fn) override { fn(); }
      bool runningInThisThread() const override { return true; }
      std::unique_ptr<api::TimerHandle> schedule(std::chrono::nanoseconds,
                                                 std::function<void()>) override {
        return nullptr;
      }
      api::Status runBlocking(std::function<void()>, std::function<void()>) override {
        return api::Status::ok();
      }
    } inlineExecutor;
    bool found = false;
    store_->children("/jobs", inlineExecutor, [&](auto names) {
      for (const auto& name : *names) {
        store_->get("/jobs/" + name, inlineExecutor, [&](auto entry) {
          if (*entry && (*entry)->value.find(taskId) != std::string::npos) found = true;
        });
      }
    });
    return found;
  }

  v1::FrameworkInfo info;
  bool isSubscribed = false;
  std::vector<v1::TaskInfo> launched;
  std::vector<bool> storedAtLaunch;
  std::vector<std::string> killed;
  std::vector<std::string> acknowledged;
  std::vector<std::string> reconciled;
  int declined = 0;
  int revived = 0;

 private:
  kernel::state::MemoryStore* store_;
};

// One Chronos instance (a leader) on a shared store and clock.
struct Instance {
  Instance(Clock::time_point* now, kernel::state::MemoryStore* store,
           api::Parameters parameters = api::Parameters(
               std::vector<std::pair<std::string, std::string>>{{"failure_retry", "10000"}}))
      : context(now, store), driver(store) {
    auto created = ChronosFramework::create(parameters, context);
    EXPECT_TRUE(created) << created.status().message();
    framework.reset(static_cast<ChronosFramework*>(created->release()));
    framework->setClockForTest([now] { return *now; });
    framework->start(driver);
    context.executor_.drain();
    driver.isSubscribed = true;
    v1::FrameworkID id;
    id.set_value("fw-1");
    framework->subscribed(id, 15s, v1::MasterInfo());
    context.executor_.drain();
  }
  ~Instance() {
    if (framework) framework->stop();
  }

  api::HttpResponse request(const std::string& method, const std::string& path,
                            const std::string& body = "") {
    api::HttpRequest request;
    request.method = method;
    request.path = path;
    request.body = body;
    std::optional<api::HttpResponse> response;
    framework->handle(request, [&](api::HttpResponse answer) { response = std::move(answer); });
    context.executor_.drain();
    EXPECT_TRUE(response) << method << " " << path;
    return response.value_or(api::HttpResponse{});
  }

  void offer(const std::string& rack = "") {
    v1::Offer offer;
    if (!rack.empty()) {
      auto* attribute = offer.add_attributes();
      attribute->set_name("rack");
      attribute->set_type(v1::Value::TEXT);
      attribute->mutable_text()->set_value(rack);
    }
    offer.mutable_id()->set_value("o-" + std::to_string(++offers));
    offer.mutable_agent_id()->set_value("agent-1");
    offer.set_hostname("host-1");
    auto resources = api::Resources::parse("cpus:4;mem:4096;disk:10000");
    *offer.mutable_resources() = resources->toProto();
    framework->offers({offer});
  }

  void update(const std::string& taskId, v1::TaskState state, bool reconciliation = false,
              const std::string& message = "") {
    v1::TaskStatus status;
    status.mutable_task_id()->set_value(taskId);
    status.mutable_agent_id()->set_value("agent-1");
    status.set_state(state);
    if (reconciliation) {
      status.set_reason(v1::TaskStatus::REASON_RECONCILIATION);
      status.set_source(v1::TaskStatus::SOURCE_MASTER);
    } else {
      status.set_uuid("uuid-" + taskId + std::to_string(state));
    }
    if (!message.empty()) status.set_message(message);
    framework->update(status);
  }

  // The job's JSON as GET /scheduler/jobs lists it.
  std::string job() { return request("GET", "/scheduler/jobs").body; }

  TestContext context;
  FakeDriver driver;
  std::unique_ptr<ChronosFramework> framework;
  int offers = 0;
};

class ChronosFrameworkTest : public ::testing::Test {
 protected:
  // 2026-03-01T00:00:00Z.
  Clock::time_point now_ = Clock::time_point(std::chrono::seconds(1772323200));
  kernel::state::MemoryStore store_;
};

TEST_F(ChronosFrameworkTest, ARunIsStoredBeforeItsOfferIsAccepted) {
  Instance chronos(&now_, &store_);
  EXPECT_EQ(chronos.driver.info.name(), "chronos");
  ASSERT_EQ(chronos
                .request("POST", "/scheduler/iso8601",
                         R"({"name":"a","command":"true","schedule":"R1//PT1M"})")
                .status,
            204);
  chronos.context.executor_.fire();
  chronos.offer();
  // The offer is held while the run is written; accepted once it is.
  EXPECT_TRUE(chronos.driver.launched.empty());
  chronos.context.executor_.drain();
  ASSERT_EQ(chronos.driver.launched.size(), 1u);
  EXPECT_TRUE(chronos.driver.storedAtLaunch[0]);
  const v1::TaskInfo& task = chronos.driver.launched[0];
  EXPECT_EQ(task.task_id().value(), "ct:1772323200000:0:a:");
  bool named = false;
  for (const auto& variable : task.command().environment().variables()) {
    if (variable.name() == "CHRONOS_JOB_NAME") named = variable.value() == "a";
  }
  EXPECT_TRUE(named);
  // The schedule was rewritten: no run left.
  EXPECT_NE(chronos.job().find(R"("schedule":"R0/)"), std::string::npos) << chronos.job();
}

// An offer declined (with a refuse filter) while nothing waited, then a run that comes due before
// the framework looked again: it revives, which clears the filter, instead of waiting it out.
TEST_F(ChronosFrameworkTest, ARunDueRightAfterAnIdleDeclineRevivesOffers) {
  Instance chronos(&now_, &store_);
  ASSERT_EQ(chronos
                .request("POST", "/scheduler/iso8601",
                         R"({"name":"a","command":"true","schedule":"R1//PT1M"})")
                .status,
            204);
  const int revivedBefore = chronos.driver.revived;
  chronos.offer();  // the run is not queued yet: declined
  EXPECT_EQ(chronos.driver.declined, 1);
  // Now it is due, before the framework's own look at offers (posted by the decline) has run.
  chronos.context.executor_.fire(/*drainFirst=*/false);
  chronos.context.executor_.drain();
  EXPECT_GT(chronos.driver.revived, revivedBefore);
}

TEST_F(ChronosFrameworkTest, AnUpdateIsAcknowledgedOnlyOnceItsOutcomeIsStored) {
  Instance chronos(&now_, &store_);
  chronos.request("POST", "/scheduler/iso8601",
                  R"({"name":"a","command":"true","schedule":"R1//PT1M"})");
  chronos.context.executor_.fire();
  chronos.offer();
  chronos.context.executor_.drain();
  ASSERT_EQ(chronos.driver.launched.size(), 1u);
  const std::string id = chronos.driver.launched[0].task_id().value();
  chronos.update(id, v1::TASK_FINISHED);
  EXPECT_TRUE(chronos.driver.acknowledged.empty());
  chronos.context.executor_.drain();
  EXPECT_EQ(chronos.driver.acknowledged, std::vector<std::string>{id});
  EXPECT_NE(chronos.job().find(R"("successCount":1)"), std::string::npos) << chronos.job();
  EXPECT_NE(chronos.job().find(R"("lastSuccess":"2026-03-01T00:00:00.000Z")"), std::string::npos)
      << chronos.job();
}

TEST_F(ChronosFrameworkTest, ANewLeaderReconcilesTheRunInFlightInsteadOfLaunchingIt) {
  std::string id;
  {
    Instance first(&now_, &store_);
    first.request("POST", "/scheduler/iso8601",
                  R"({"name":"a","command":"sleep 5","schedule":"R2//PT1H"})");
    first.context.executor_.fire();
    first.offer();
    first.context.executor_.drain();
    ASSERT_EQ(first.driver.launched.size(), 1u);
    id = first.driver.launched[0].task_id().value();
  }
  Instance second(&now_, &store_);
  EXPECT_EQ(second.driver.reconciled, std::vector<std::string>{id});
  second.offer();
  second.context.executor_.drain();
  EXPECT_TRUE(second.driver.launched.empty());
  // The master knows it: it finished while no one led.
  second.update(id, v1::TASK_FINISHED, true);
  second.context.executor_.drain();
  EXPECT_NE(second.job().find(R"("successCount":1)"), std::string::npos) << second.job();
  second.offer();
  second.context.executor_.drain();
  EXPECT_TRUE(second.driver.launched.empty());
  // The agent's own update comes again after the failover: acknowledged, counted once.
  second.update(id, v1::TASK_FINISHED);
  second.context.executor_.drain();
  EXPECT_NE(second.job().find(R"("successCount":1)"), std::string::npos) << second.job();
  EXPECT_FALSE(second.driver.acknowledged.empty());
}

TEST_F(ChronosFrameworkTest, ARunTheMasterNeverSawIsLaunchedOnceMoreWithItsTaskId) {
  std::string id;
  {
    Instance first(&now_, &store_);
    first.request("POST", "/scheduler/iso8601",
                  R"({"name":"a","command":"true","schedule":"R1//PT1H"})");
    first.context.executor_.fire();
    first.offer();
    first.context.executor_.drain();
    ASSERT_EQ(first.driver.launched.size(), 1u);
    id = first.driver.launched[0].task_id().value();
    // The leader dies with the accept unsent: the master never hears of the task.
  }
  Instance second(&now_, &store_);
  ASSERT_EQ(second.driver.reconciled, std::vector<std::string>{id});
  second.update(id, v1::TASK_LOST, true, fmt::format("reconciliation: task '{}' is unknown", id));
  second.context.executor_.drain();
  second.offer();
  second.context.executor_.drain();
  ASSERT_EQ(second.driver.launched.size(), 1u);
  EXPECT_EQ(second.driver.launched[0].task_id().value(), id);
  EXPECT_NE(second.job().find(R"("errorCount":0)"), std::string::npos) << second.job();
}

TEST_F(ChronosFrameworkTest, MissedPointsRunOnceWithinEpsilonAndNotBeyond) {
  const auto start = now_;
  {
    Instance first(&now_, &store_);
    ASSERT_EQ(first
                  .request("POST", "/scheduler/iso8601",
                           R"({"name":"a","command":"true","epsilon":"PT60S",)"
                           R"("schedule":"R5/2026-03-01T00:01:00Z/PT1M"})")
                  .status,
              204);
    ASSERT_EQ(first
                  .request("POST", "/scheduler/iso8601",
                           R"({"name":"b","command":"true","epsilon":"PT10S",)"
                           R"("schedule":"R5/2026-03-01T00:01:00Z/PT1M"})")
                  .status,
              204);
  }
  // Down from before the first point until 30s after the third.
  now_ = start + 3min + 30s;
  Instance second(&now_, &store_);
  second.context.executor_.fire();
  for (int i = 0; i < 3; ++i) {
    second.offer();
    second.context.executor_.drain();
  }
  // `a`: one run, for the latest point passed (00:03); `b`: 30s late is beyond its epsilon.
  ASSERT_EQ(second.driver.launched.size(), 1u);
  EXPECT_EQ(second.driver.launched[0].task_id().value(), "ct:1772323380000:0:a:");
  // Both spent three of their five points (00:01, 00:02, 00:03).
  const std::string jobs = second.job();
  EXPECT_NE(jobs.find(R"("schedule":"R2/2026-03-01T00:04:00.000Z/PT1M")"), std::string::npos)
      << jobs;
}

TEST_F(ChronosFrameworkTest, ACronPointPassedDuringAFailoverRunsOnce) {
  {
    Instance first(&now_, &store_);
    ASSERT_EQ(first
                  .request("POST", "/scheduler/iso8601",
                           R"({"name":"c","command":"true","cron":"*/5 * * * *"})")
                  .status,
              204);
  }
  // Down over 00:05; back 30s later, within the default epsilon (PT60S).
  now_ += 5min + 30s;
  Instance second(&now_, &store_);
  second.context.executor_.fire();
  second.offer();
  second.context.executor_.drain();
  ASSERT_EQ(second.driver.launched.size(), 1u);
  EXPECT_EQ(second.driver.launched[0].task_id().value(), "ct:1772323500000:0:c:");
  second.offer();
  second.context.executor_.drain();
  EXPECT_EQ(second.driver.launched.size(), 1u);
}

TEST_F(ChronosFrameworkTest, AKillWhileARunIsBeingWrittenKeepsItFromLaunching) {
  Instance chronos(&now_, &store_);
  chronos.request("POST", "/scheduler/iso8601",
                  R"({"name":"a","command":"true","schedule":"R1/2100-01-01T00:00:00Z/PT1H"})");
  ASSERT_EQ(chronos.request("PUT", "/scheduler/job/a").status, 204);
  chronos.offer();  // the run is being written; the kill comes before the write completes
  EXPECT_EQ(chronos.request("DELETE", "/scheduler/task/kill/a").status, 204);
  EXPECT_TRUE(chronos.driver.launched.empty());
  ASSERT_EQ(chronos.driver.killed.size(), 1u);
  // The master never heard of it and says so: an error, not retried.
  const std::string id = chronos.driver.killed[0];
  chronos.update(id, v1::TASK_LOST, true, fmt::format("cannot kill task '{}': it is unknown", id));
  chronos.context.executor_.drain();
  now_ += 1h;
  chronos.context.executor_.fire();
  chronos.offer();
  chronos.context.executor_.drain();
  EXPECT_TRUE(chronos.driver.launched.empty());
  EXPECT_NE(chronos.job().find(R"("errorCount":1)"), std::string::npos) << chronos.job();
}

TEST_F(ChronosFrameworkTest, ConstraintsChooseTheOffer) {
  Instance chronos(&now_, &store_);
  ASSERT_EQ(chronos
                .request("POST", "/scheduler/iso8601",
                         R"({"name":"a","command":"true","schedule":"R1//PT1H",)"
                         R"("constraints":[["rack","LIKE","r[0-9]+"],)"
                         R"(["hostname","UNLIKE","bad-.*"]]})")
                .status,
            204);
  chronos.context.executor_.fire();
  chronos.offer("x1");
  chronos.context.executor_.drain();
  chronos.offer();
  chronos.context.executor_.drain();
  EXPECT_TRUE(chronos.driver.launched.empty());
  chronos.offer("r12");
  chronos.context.executor_.drain();
  EXPECT_EQ(chronos.driver.launched.size(), 1u);
}

TEST_F(ChronosFrameworkTest, AFailedRunIsRetriedAfterTheDelayUpToRetriesTimes) {
  Instance chronos(&now_, &store_);
  chronos.request("POST", "/scheduler/iso8601",
                  R"({"name":"a","command":"false","retries":1,"schedule":"R1//PT1H"})");
  chronos.context.executor_.fire();
  chronos.offer();
  chronos.context.executor_.drain();
  ASSERT_EQ(chronos.driver.launched.size(), 1u);
  chronos.update(chronos.driver.launched[0].task_id().value(), v1::TASK_FAILED);
  chronos.context.executor_.drain();
  // Not before failure_retry (10s here).
  chronos.offer();
  chronos.context.executor_.drain();
  EXPECT_EQ(chronos.driver.launched.size(), 1u);
  now_ += 10s;
  chronos.context.executor_.fire();
  chronos.offer();
  chronos.context.executor_.drain();
  ASSERT_EQ(chronos.driver.launched.size(), 2u);
  EXPECT_EQ(chronos.driver.launched[1].task_id().value(), "ct:1772323200000:1:a:");
  chronos.update(chronos.driver.launched[1].task_id().value(), v1::TASK_FAILED);
  chronos.context.executor_.drain();
  now_ += 1min;
  chronos.context.executor_.fire();
  chronos.offer();
  chronos.context.executor_.drain();
  EXPECT_EQ(chronos.driver.launched.size(), 2u);  // retries: 1
  EXPECT_NE(chronos.job().find(R"("errorCount":2)"), std::string::npos) << chronos.job();
}

TEST_F(ChronosFrameworkTest, DisabledJobsAndForbiddenOverlapsDoNotRun) {
  Instance chronos(&now_, &store_);
  chronos.request("POST", "/scheduler/iso8601",
                  R"({"name":"off","command":"true","disabled":true,"schedule":"R//PT1M"})");
  chronos.request("POST", "/scheduler/iso8601",
                  R"({"name":"slow","command":"sleep 600","concurrent":true,)"
                  R"("concurrencyPolicy":"FORBID","schedule":"R//PT1M"})");
  chronos.context.executor_.fire();
  chronos.offer();
  chronos.context.executor_.drain();
  ASSERT_EQ(chronos.driver.launched.size(), 1u);
  EXPECT_NE(chronos.driver.launched[0].task_id().value().find(":slow:"), std::string::npos);
  chronos.update(chronos.driver.launched[0].task_id().value(), v1::TASK_RUNNING);
  chronos.context.executor_.drain();
  // The next point comes while `slow` still runs: skipped; `off` stays off.
  now_ += 1min;
  chronos.context.executor_.fire();
  chronos.offer();
  chronos.context.executor_.drain();
  EXPECT_EQ(chronos.driver.launched.size(), 1u);
}

TEST_F(ChronosFrameworkTest, ADependentRunsOnceAllItsParentsSucceeded) {
  Instance chronos(&now_, &store_);
  for (const char* parent : {"p1", "p2"}) {
    ASSERT_EQ(chronos
                  .request("POST", "/scheduler/iso8601",
                           fmt::format(R"({{"name":"{}","command":"true",)"
                                       R"("schedule":"R1/2100-01-01T00:00:00Z/PT1H"}})",
                                       parent))
                  .status,
              204);
  }
  ASSERT_EQ(chronos
                .request("PUT", "/scheduler/dependency",
                         R"({"name":"child","command":"true","parents":["p1","p2"]})")
                .status,
            204);
  // A cycle is refused.
  auto cycle = chronos.request("PUT", "/scheduler/dependency",
                               R"({"name":"p1","command":"true","parents":["child"]})");
  EXPECT_EQ(cycle.status, 400);
  auto runAndFinish = [&](const std::string& name) {
    ASSERT_EQ(chronos.request("PUT", "/scheduler/job/" + name).status, 204);
    chronos.offer();
    chronos.context.executor_.drain();
    const std::string id = chronos.driver.launched.back().task_id().value();
    ASSERT_NE(id.find(":" + name + ":"), std::string::npos);
    chronos.update(id, v1::TASK_FINISHED);
    chronos.context.executor_.drain();
  };
  runAndFinish("p1");
  chronos.offer();
  chronos.context.executor_.drain();
  EXPECT_EQ(chronos.driver.launched.size(), 1u);  // p2 has not succeeded yet
  runAndFinish("p2");
  chronos.offer();
  chronos.context.executor_.drain();
  ASSERT_EQ(chronos.driver.launched.size(), 3u);
  EXPECT_NE(chronos.driver.launched[2].task_id().value().find(":child:"), std::string::npos);
  // Deleting a parent drops it from the child, which keeps the other one.
  EXPECT_EQ(chronos.request("DELETE", "/scheduler/job/p1").status, 204);
  EXPECT_NE(chronos.job().find(R"("parents":["p2"])"), std::string::npos) << chronos.job();
  EXPECT_EQ(chronos.request("DELETE", "/scheduler/job/p2").status, 204);
  EXPECT_EQ(chronos.job(), "[]");
}

}  // namespace
}  // namespace tessera::modules::chronos
