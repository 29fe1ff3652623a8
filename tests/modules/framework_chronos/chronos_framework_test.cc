// The Chronos framework driven by hand: a manual executor and a fake clock, a recording
// scheduler driver, the kernel's in-memory state store. Shows the order that makes failovers
// safe (a run is in the store before its offer is accepted; an update is acknowledged only once
// its outcome is stored), that a new instance on the same store reconciles the runs in flight
// instead of launching them again (and launches once more only what the master never saw),
// that missed points run once within epsilon, and retries, disabled jobs and FORBID.
#include "modules/framework_chronos/chronos_framework.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <set>

#include "kernel/state/memory_store.h"
#include "tests/modules/framework_chronos/inline_executor.h"
#include "tests/support/module_context.h"

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

// Records the calls; accept() also notes whether the store held the run at that moment.
class FakeDriver final : public api::SchedulerDriver {
 public:
  explicit FakeDriver(kernel::state::MemoryStore* store) : store_(store) {}
  api::Status subscribe(v1::FrameworkInfo info, std::vector<std::string>) override {
    this->info = std::move(info);
    return api::Status::ok();
  }
  void accept(std::vector<v1::OfferID>, std::vector<v1::Offer::Operation> operations,
              std::optional<v1::Filters> filters, api::CallCallback) override {
    acceptFilters.push_back(filters);
    for (const auto& operation : operations) {
      for (const auto& task : operation.launch().task_infos()) {
        launched.push_back(task);
        storedAtLaunch.push_back(storeHolds(task.task_id().value()));
      }
    }
  }
  void decline(std::vector<v1::OfferID>, std::optional<v1::Filters> filters,
               api::CallCallback) override {
    ++declined;
    declineFilters.push_back(filters);
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
    InlineExecutor inlineExecutor;
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

  // The version of job `name`'s record (0 when there is none), read as storeHolds() reads.
  uint64_t storeVersion(const std::string& name) {
    InlineExecutor inlineExecutor;
    uint64_t version = 0;
    store_->get("/jobs/" + name, inlineExecutor, [&](auto entry) {
      if (entry && *entry) version = (*entry)->version;
    });
    return version;
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
  std::vector<std::optional<v1::Filters>> acceptFilters;   // per accept()
  std::vector<std::optional<v1::Filters>> declineFilters;  // per decline()

 private:
  kernel::state::MemoryStore* store_;
};

// One Chronos instance (a leader) on a shared store and clock.
struct Instance {
  Instance(Clock::time_point* now, kernel::state::MemoryStore* store,
           api::Parameters parameters = api::Parameters(
               std::vector<std::pair<std::string, std::string>>{{"failure_retry", "10000"}}))
      : executor(now), context(executor, *store), driver(store) {
    auto created = ChronosFramework::create(parameters, context);
    EXPECT_TRUE(created) << created.status().message();
    framework.reset(static_cast<ChronosFramework*>(created->release()));
    framework->setClockForTest([now] { return *now; });
    framework->start(driver);
    executor.drain();
    driver.isSubscribed = true;
    v1::FrameworkID id;
    id.set_value("fw-1");
    framework->subscribed(id, 15s, v1::MasterInfo());
    executor.drain();
  }
  ~Instance() {
    if (framework) framework->stop();
  }

  api::HttpResponse request(const std::string& method, const std::string& path,
                            const std::string& body = "") {
    api::HttpRequest request;
    request.method = method;
    request.path = path.substr(0, path.find('?'));
    if (path.find('?') != std::string::npos) request.query = path.substr(path.find('?') + 1);
    request.body = body;
    std::optional<api::HttpResponse> response;
    framework->handle(request, [&](api::HttpResponse answer) { response = std::move(answer); });
    executor.drain();
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

  ManualExecutor executor;
  // The shared stub Context (tests/support/module_context.h) on this instance's executor and
  // the test's store.
  tessera::testing::StubContext context;
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
  chronos.executor.fire();
  chronos.offer();
  // The offer is held while the run is written; accepted once it is.
  EXPECT_TRUE(chronos.driver.launched.empty());
  chronos.executor.drain();
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
  chronos.executor.fire(/*drainFirst=*/false);
  chronos.executor.drain();
  EXPECT_GT(chronos.driver.revived, revivedBefore);
}

// The refuse filters (#23): an ACCEPT sets none on what is left of the offer (Mesos's default,
// 5 s, kept a run queued during the launch's write waiting that long, offers never having been
// suppressed to revive them), and an offer too small for every waiting run is refused for 1 s,
// not 5, so that the run starts once running tasks give their resources back.
TEST_F(ChronosFrameworkTest, AcceptsSetNoRefuseFilterAndATooSmallOfferIsRefusedBriefly) {
  Instance chronos(&now_, &store_);
  ASSERT_EQ(
      chronos
          .request("POST", "/scheduler/iso8601",
                   R"({"name":"a","command":"true","schedule":"R1/2099-01-01T00:00:00Z/PT1H"})")
          .status,
      204);
  ASSERT_EQ(chronos.request("PUT", "/scheduler/job/a").status, 204);
  chronos.offer();
  chronos.executor.drain();
  ASSERT_EQ(chronos.driver.launched.size(), 1u);
  ASSERT_EQ(chronos.driver.acceptFilters.size(), 1u);
  ASSERT_TRUE(chronos.driver.acceptFilters[0].has_value());
  EXPECT_TRUE(chronos.driver.acceptFilters[0]->has_refuse_seconds());
  EXPECT_EQ(chronos.driver.acceptFilters[0]->refuse_seconds(), 0);

  // 8 cpus: more than the offers' 4.
  ASSERT_EQ(chronos
                .request("POST", "/scheduler/iso8601",
                         R"({"name":"big","command":"true","cpus":8,)"
                         R"("schedule":"R1/2099-01-01T00:00:00Z/PT1H"})")
                .status,
            204);
  ASSERT_EQ(chronos.request("PUT", "/scheduler/job/big").status, 204);
  const int declinedBefore = chronos.driver.declined;
  chronos.offer();
  chronos.executor.drain();
  EXPECT_EQ(chronos.driver.launched.size(), 1u);
  ASSERT_EQ(chronos.driver.declined, declinedBefore + 1);
  ASSERT_TRUE(chronos.driver.declineFilters.back().has_value());
  EXPECT_EQ(chronos.driver.declineFilters.back()->refuse_seconds(), 1);
}

TEST_F(ChronosFrameworkTest, AnUpdateIsAcknowledgedOnlyOnceItsOutcomeIsStored) {
  Instance chronos(&now_, &store_);
  chronos.request("POST", "/scheduler/iso8601",
                  R"({"name":"a","command":"true","schedule":"R1//PT1M"})");
  chronos.executor.fire();
  chronos.offer();
  chronos.executor.drain();
  ASSERT_EQ(chronos.driver.launched.size(), 1u);
  const std::string id = chronos.driver.launched[0].task_id().value();
  chronos.update(id, v1::TASK_FINISHED);
  EXPECT_TRUE(chronos.driver.acknowledged.empty());
  chronos.executor.drain();
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
    first.executor.fire();
    first.offer();
    first.executor.drain();
    ASSERT_EQ(first.driver.launched.size(), 1u);
    id = first.driver.launched[0].task_id().value();
  }
  Instance second(&now_, &store_);
  EXPECT_EQ(second.driver.reconciled, std::vector<std::string>{id});
  second.offer();
  second.executor.drain();
  EXPECT_TRUE(second.driver.launched.empty());
  // The master knows it: it finished while no one led.
  second.update(id, v1::TASK_FINISHED, true);
  second.executor.drain();
  EXPECT_NE(second.job().find(R"("successCount":1)"), std::string::npos) << second.job();
  second.offer();
  second.executor.drain();
  EXPECT_TRUE(second.driver.launched.empty());
  // The agent's own update comes again after the failover: acknowledged, counted once.
  second.update(id, v1::TASK_FINISHED);
  second.executor.drain();
  EXPECT_NE(second.job().find(R"("successCount":1)"), std::string::npos) << second.job();
  EXPECT_FALSE(second.driver.acknowledged.empty());
}

TEST_F(ChronosFrameworkTest, ARunTheMasterNeverSawIsLaunchedOnceMoreWithItsTaskId) {
  std::string id;
  {
    Instance first(&now_, &store_);
    first.request("POST", "/scheduler/iso8601",
                  R"({"name":"a","command":"true","schedule":"R1//PT1H"})");
    first.executor.fire();
    first.offer();
    first.executor.drain();
    ASSERT_EQ(first.driver.launched.size(), 1u);
    id = first.driver.launched[0].task_id().value();
    // The leader dies with the accept unsent: the master never hears of the task.
  }
  Instance second(&now_, &store_);
  ASSERT_EQ(second.driver.reconciled, std::vector<std::string>{id});
  second.update(id, v1::TASK_LOST, true, fmt::format("reconciliation: task '{}' is unknown", id));
  second.executor.drain();
  second.offer();
  second.executor.drain();
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
  second.executor.fire();
  for (int i = 0; i < 3; ++i) {
    second.offer();
    second.executor.drain();
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
  second.executor.fire();
  second.offer();
  second.executor.drain();
  ASSERT_EQ(second.driver.launched.size(), 1u);
  EXPECT_EQ(second.driver.launched[0].task_id().value(), "ct:1772323500000:0:c:");
  second.offer();
  second.executor.drain();
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
  chronos.executor.drain();
  now_ += 1h;
  chronos.executor.fire();
  chronos.offer();
  chronos.executor.drain();
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
  chronos.executor.fire();
  chronos.offer("x1");
  chronos.executor.drain();
  chronos.offer();
  chronos.executor.drain();
  EXPECT_TRUE(chronos.driver.launched.empty());
  chronos.offer("r12");
  chronos.executor.drain();
  EXPECT_EQ(chronos.driver.launched.size(), 1u);
}

TEST_F(ChronosFrameworkTest, AFailedRunIsRetriedAfterTheDelayUpToRetriesTimes) {
  Instance chronos(&now_, &store_);
  chronos.request("POST", "/scheduler/iso8601",
                  R"({"name":"a","command":"false","retries":1,"schedule":"R1//PT1H"})");
  chronos.executor.fire();
  chronos.offer();
  chronos.executor.drain();
  ASSERT_EQ(chronos.driver.launched.size(), 1u);
  chronos.update(chronos.driver.launched[0].task_id().value(), v1::TASK_FAILED);
  chronos.executor.drain();
  // A retry is left: the run is not an error yet (Chronos counts a run once its retries are
  // spent); the attempt shows in errorsSinceLastSuccess.
  EXPECT_NE(chronos.job().find(R"("errorCount":0)"), std::string::npos) << chronos.job();
  EXPECT_NE(chronos.job().find(R"("errorsSinceLastSuccess":1)"), std::string::npos)
      << chronos.job();
  // Not before failure_retry (10s here).
  chronos.offer();
  chronos.executor.drain();
  EXPECT_EQ(chronos.driver.launched.size(), 1u);
  now_ += 10s;
  chronos.executor.fire();
  chronos.offer();
  chronos.executor.drain();
  ASSERT_EQ(chronos.driver.launched.size(), 2u);
  EXPECT_EQ(chronos.driver.launched[1].task_id().value(), "ct:1772323200000:1:a:");
  chronos.update(chronos.driver.launched[1].task_id().value(), v1::TASK_FAILED);
  chronos.executor.drain();
  now_ += 1min;
  chronos.executor.fire();
  chronos.offer();
  chronos.executor.drain();
  EXPECT_EQ(chronos.driver.launched.size(), 2u);  // retries: 1
  // One run failed for good, in two attempts.
  EXPECT_NE(chronos.job().find(R"("errorCount":1)"), std::string::npos) << chronos.job();
  EXPECT_NE(chronos.job().find(R"("errorsSinceLastSuccess":2)"), std::string::npos)
      << chronos.job();
}

TEST_F(ChronosFrameworkTest, DisabledJobsAndForbiddenOverlapsDoNotRun) {
  Instance chronos(&now_, &store_);
  chronos.request("POST", "/scheduler/iso8601",
                  R"({"name":"off","command":"true","disabled":true,"schedule":"R//PT1M"})");
  chronos.request("POST", "/scheduler/iso8601",
                  R"({"name":"slow","command":"sleep 600","concurrent":true,)"
                  R"("concurrencyPolicy":"FORBID","schedule":"R//PT1M"})");
  chronos.executor.fire();
  chronos.offer();
  chronos.executor.drain();
  ASSERT_EQ(chronos.driver.launched.size(), 1u);
  EXPECT_NE(chronos.driver.launched[0].task_id().value().find(":slow:"), std::string::npos);
  chronos.update(chronos.driver.launched[0].task_id().value(), v1::TASK_RUNNING);
  chronos.executor.drain();
  // The next point comes while `slow` still runs: skipped; `off` stays off.
  now_ += 1min;
  chronos.executor.fire();
  chronos.offer();
  chronos.executor.drain();
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
    chronos.executor.drain();
    const std::string id = chronos.driver.launched.back().task_id().value();
    ASSERT_NE(id.find(":" + name + ":"), std::string::npos);
    chronos.update(id, v1::TASK_FINISHED);
    chronos.executor.drain();
  };
  runAndFinish("p1");
  chronos.offer();
  chronos.executor.drain();
  EXPECT_EQ(chronos.driver.launched.size(), 1u);  // p2 has not succeeded yet
  runAndFinish("p2");
  chronos.offer();
  chronos.executor.drain();
  ASSERT_EQ(chronos.driver.launched.size(), 3u);
  EXPECT_NE(chronos.driver.launched[2].task_id().value().find(":child:"), std::string::npos);
  // Deleting a parent drops it from the child, which keeps the other one.
  EXPECT_EQ(chronos.request("DELETE", "/scheduler/job/p1").status, 204);
  EXPECT_NE(chronos.job().find(R"("parents":["p2"])"), std::string::npos) << chronos.job();
  EXPECT_EQ(chronos.request("DELETE", "/scheduler/job/p2").status, 204);
  EXPECT_EQ(chronos.job(), "[]");
}

// A schedule point's change waits for its launch's write (one record write per point, not two);
// a run no offer took within the deferral is written on its own.
TEST_F(ChronosFrameworkTest, APointIsWrittenWithItsLaunchOrAloneWhenNoOfferCame) {
  Instance chronos(&now_, &store_);
  ASSERT_EQ(chronos
                .request("POST", "/scheduler/iso8601",
                         R"({"name":"a","command":"true","schedule":"R2//PT1M"})")
                .status,
            204);
  const uint64_t created = chronos.driver.storeVersion("a");
  chronos.executor.fire();
  EXPECT_EQ(chronos.driver.storeVersion("a"), created);  // the point is not written alone
  chronos.offer();
  chronos.executor.drain();
  ASSERT_EQ(chronos.driver.launched.size(), 1u);
  EXPECT_TRUE(chronos.driver.storedAtLaunch[0]);
  const uint64_t launched = chronos.driver.storeVersion("a");
  EXPECT_GT(launched, created);
  chronos.update(chronos.driver.launched[0].task_id().value(), v1::TASK_FINISHED);
  chronos.executor.drain();
  const uint64_t finished = chronos.driver.storeVersion("a");
  EXPECT_GT(finished, launched);
  // The second point: no offer comes. After the deferral the queued run is in the store.
  now_ += 1min;
  chronos.executor.fire();
  EXPECT_EQ(chronos.driver.storeVersion("a"), finished);
  now_ += 5s;
  chronos.executor.fire();
  EXPECT_GT(chronos.driver.storeVersion("a"), finished);
  EXPECT_TRUE(chronos.driver.storeHolds(R"("chronosQueue":[{"due":1772323260000)"));
}

// Chronos's async jobs: the task's own end leaves the run open (stored, so a new leader neither
// reconciles nor relaunches it); PUT task/{id} with a status code ends it.
TEST_F(ChronosFrameworkTest, AnAsyncRunEndsWithItsCallbackNotItsTask) {
  std::string id;
  {
    Instance first(&now_, &store_);
    ASSERT_EQ(first
                  .request("POST", "/scheduler/iso8601",
                           R"({"name":"a","command":"true","async":true,"retries":0,)"
                           R"("schedule":"R2//PT1H"})")
                  .status,
              204);
    first.executor.fire();
    first.offer();
    first.executor.drain();
    ASSERT_EQ(first.driver.launched.size(), 1u);
    id = first.driver.launched[0].task_id().value();
    first.update(id, v1::TASK_FINISHED);
    EXPECT_TRUE(first.driver.acknowledged.empty());  // not before the store says so
    first.executor.drain();
    EXPECT_EQ(first.driver.acknowledged, std::vector<std::string>{id});
    EXPECT_NE(first.job().find(R"("successCount":0)"), std::string::npos) << first.job();
  }
  Instance second(&now_, &store_);
  EXPECT_TRUE(second.driver.reconciled.empty());  // the task is gone; the run waits
  EXPECT_EQ(second.request("PUT", "/scheduler/task/nope", R"({"statusCode":0})").status, 404);
  EXPECT_EQ(second.request("PUT", "/scheduler/task/" + id, "{}").status, 400);
  EXPECT_EQ(second.request("PUT", "/scheduler/task/" + id, R"({"statusCode":0})").status, 204);
  EXPECT_NE(second.job().find(R"("successCount":1)"), std::string::npos) << second.job();
  // A second run reports a failure.
  now_ += 1h;
  second.executor.fire();
  second.offer();
  second.executor.drain();
  ASSERT_EQ(second.driver.launched.size(), 1u);
  const std::string next = second.driver.launched[0].task_id().value();
  second.update(next, v1::TASK_FINISHED);
  second.executor.drain();
  EXPECT_EQ(second.request("PUT", "/v1/scheduler/task/" + next, R"({"statusCode":2})").status, 204);
  EXPECT_NE(second.job().find(R"("errorCount":1)"), std::string::npos) << second.job();
  EXPECT_NE(second.job().find(R"("successCount":1)"), std::string::npos) << second.job();
}

// softError (as Chronos does): a parent's run that failed for good still lets its dependents run;
// without it they wait for a success.
TEST_F(ChronosFrameworkTest, ASoftErrorParentsFinalFailureStillRunsItsDependents) {
  Instance chronos(&now_, &store_);
  for (const char* soft : {"true", "false"}) {
    const std::string parent = fmt::format("p-{}", soft);
    ASSERT_EQ(
        chronos
            .request("POST", "/scheduler/iso8601",
                     fmt::format(R"({{"name":"{}","command":"false","retries":0,)"
                                 R"("softError":{},"schedule":"R1/2100-01-01T00:00:00Z/PT1H"}})",
                                 parent, soft))
            .status,
        204);
    ASSERT_EQ(chronos
                  .request("PUT", "/scheduler/dependency",
                           fmt::format(R"({{"name":"c-{}","command":"true","parents":["{}"]}})",
                                       soft, parent))
                  .status,
              204);
  }
  for (const char* parent : {"p-true", "p-false"}) {
    ASSERT_EQ(chronos.request("PUT", std::string("/scheduler/job/") + parent).status, 204);
    chronos.offer();
    chronos.executor.drain();
    chronos.update(chronos.driver.launched.back().task_id().value(), v1::TASK_FAILED);
    chronos.executor.drain();
  }
  chronos.offer();
  chronos.executor.drain();
  std::set<std::string> names;
  for (const auto& task : chronos.driver.launched) names.insert(task.name());
  EXPECT_EQ(names, (std::set<std::string>{"ChronosTask:p-true", "ChronosTask:p-false",
                                          "ChronosTask:c-true"}));
  EXPECT_EQ(chronos.driver.launched.size(), 3u);
}

// Chronos's --disable_after_failures: failures since the last success (retries included) disable
// the job; 0 (the default) never does.
TEST_F(ChronosFrameworkTest, DisableAfterFailuresDisablesAJobThatKeepsFailing) {
  Instance chronos(&now_, &store_,
                   api::Parameters(std::vector<std::pair<std::string, std::string>>{
                       {"failure_retry", "1000"}, {"disable_after_failures", "2"}}));
  ASSERT_EQ(chronos
                .request("POST", "/scheduler/iso8601",
                         R"({"name":"a","command":"false","retries":1,"schedule":"R//PT1M"})")
                .status,
            204);
  chronos.executor.fire();
  chronos.offer();
  chronos.executor.drain();
  chronos.update(chronos.driver.launched.back().task_id().value(), v1::TASK_FAILED);
  chronos.executor.drain();
  EXPECT_NE(chronos.job().find(R"("disabled":false)"), std::string::npos) << chronos.job();
  now_ += 1s;
  chronos.executor.fire();
  chronos.offer();
  chronos.executor.drain();
  ASSERT_EQ(chronos.driver.launched.size(), 2u);
  chronos.update(chronos.driver.launched.back().task_id().value(), v1::TASK_FAILED);
  chronos.executor.drain();
  EXPECT_NE(chronos.job().find(R"("disabled":true)"), std::string::npos) << chronos.job();
  now_ += 1min;
  chronos.executor.fire();
  chronos.offer();
  chronos.executor.drain();
  EXPECT_EQ(chronos.driver.launched.size(), 2u);
  // The parameter is checked.
  ManualExecutor executor(&now_);
  tessera::testing::StubContext context(executor);  // a store of its own
  EXPECT_FALSE(ChronosFramework::create(
      api::Parameters(
          std::vector<std::pair<std::string, std::string>>{{"disable_after_failures", "-1"}}),
      context));
}

// PUT job/{name}?arguments=: that run (and its retries) gets them; the job does not.
TEST_F(ChronosFrameworkTest, RunNowWithArgumentsAddsThemToThatRunOnly) {
  Instance chronos(&now_, &store_);
  ASSERT_EQ(chronos
                .request("POST", "/scheduler/iso8601",
                         R"({"name":"sh","command":"echo","retries":1,)"
                         R"("schedule":"R1/2100-01-01T00:00:00Z/PT1H"})")
                .status,
            204);
  ASSERT_EQ(chronos
                .request("POST", "/scheduler/iso8601",
                         R"({"name":"exec","command":"/bin/echo","shell":false,"arguments":["-n"],)"
                         R"("schedule":"R1/2100-01-01T00:00:00Z/PT1H"})")
                .status,
            204);
  ASSERT_EQ(chronos.request("PUT", "/scheduler/job/sh?arguments=hello%20world").status, 204);
  ASSERT_EQ(chronos.request("PUT", "/scheduler/job/exec?arguments=a%20b").status, 204);
  chronos.offer();
  chronos.executor.drain();
  ASSERT_EQ(chronos.driver.launched.size(), 2u);
  std::map<std::string, v1::CommandInfo> commands;
  for (const auto& task : chronos.driver.launched) commands[task.name()] = task.command();
  EXPECT_EQ(commands["ChronosTask:sh"].value(), "echo hello world");
  const auto& exec = commands["ChronosTask:exec"];
  EXPECT_EQ(exec.value(), "/bin/echo");
  ASSERT_EQ(exec.arguments_size(), 4);
  EXPECT_EQ(exec.arguments(1), "-n");
  EXPECT_EQ(exec.arguments(2), "a");
  EXPECT_EQ(exec.arguments(3), "b");
  // The retry of the failed run keeps them; a plain run-now has none.
  for (const auto& task : chronos.driver.launched) {
    if (task.name() == "ChronosTask:sh") chronos.update(task.task_id().value(), v1::TASK_FAILED);
  }
  chronos.executor.drain();
  now_ += 10s;
  chronos.executor.fire();
  chronos.offer();
  chronos.executor.drain();
  ASSERT_EQ(chronos.driver.launched.size(), 3u);
  EXPECT_EQ(chronos.driver.launched[2].command().value(), "echo hello world");
  chronos.update(chronos.driver.launched[2].task_id().value(), v1::TASK_FINISHED);
  chronos.executor.drain();
  ASSERT_EQ(chronos.request("PUT", "/scheduler/job/sh").status, 204);
  chronos.offer();
  chronos.executor.drain();
  ASSERT_EQ(chronos.driver.launched.size(), 4u);
  EXPECT_EQ(chronos.driver.launched[3].command().value(), "echo");
  EXPECT_NE(chronos.job().find(R"("command":"echo")"), std::string::npos);
}

// Run times (job/stat, stats/...) are in the store with the job: a new leader serves them.
TEST_F(ChronosFrameworkTest, RunStatisticsSurviveAFailover) {
  {
    Instance first(&now_, &store_);
    ASSERT_EQ(first
                  .request("POST", "/scheduler/iso8601",
                           R"({"name":"a","command":"sleep 5","schedule":"R//PT1H"})")
                  .status,
              204);
    for (int run = 0; run < 2; ++run) {
      first.executor.fire();
      first.offer();
      first.executor.drain();
      const std::string id = first.driver.launched.back().task_id().value();
      first.update(id, v1::TASK_RUNNING);
      now_ += 5s * (run + 1);
      first.update(id, v1::TASK_FINISHED);
      first.executor.drain();
      now_ += 1h - 5s * (run + 1);
    }
    EXPECT_NE(first.request("GET", "/scheduler/job/stat/a").body.find(R"("count":2)"),
              std::string::npos);
  }
  Instance second(&now_, &store_);
  const std::string stat = second.request("GET", "/scheduler/job/stat/a").body;
  EXPECT_NE(stat.find(R"("count":2)"), std::string::npos) << stat;
  EXPECT_NE(stat.find(R"("99thPercentile":10)"), std::string::npos) << stat;
  EXPECT_NE(stat.find(R"("mean":7.5)"), std::string::npos) << stat;
  const std::string median = second.request("GET", "/scheduler/stats/median").body;
  EXPECT_EQ(median, R"([{"jobNameLabel":"a","time":5}])");
}

// A job's record and its runs' tasks are built from parts kept per job (its spec's JSON, the
// parsed resources, the task's texts): a PUT that replaces the job replaces them, the counters
// stay, and a new leader reads the new definition.
TEST_F(ChronosFrameworkTest, AReplacedJobsRecordAndTasksCarryItsNewDefinition) {
  auto variable = [](const v1::TaskInfo& task, const std::string& name) {
    for (const auto& item : task.command().environment().variables()) {
      if (item.name() == name) return item.value();
    }
    return std::string("(none)");
  };
  {
    Instance first(&now_, &store_);
    ASSERT_EQ(first
                  .request("POST", "/scheduler/iso8601",
                           R"({"name":"a","command":"echo one","schedule":"R//PT1H","cpus":0.5,)"
                           R"("owner":"ann@example.com"})")
                  .status,
              204);
    first.executor.fire();
    first.offer();
    first.executor.drain();
    ASSERT_EQ(first.driver.launched.size(), 1u);
    EXPECT_EQ(first.driver.launched[0].command().value(), "echo one");
    EXPECT_EQ(variable(first.driver.launched[0], "CHRONOS_RESOURCE_CPU"), "0.5");
    first.update(first.driver.launched[0].task_id().value(), v1::TASK_FINISHED);
    first.executor.drain();
    ASSERT_EQ(first
                  .request("PUT", "/scheduler/iso8601",
                           R"({"name":"a","command":"echo two","schedule":"R//PT1H","cpus":2,)"
                           R"("owner":"bob@example.com"})")
                  .status,
              204);
    now_ += 1h;
    first.executor.fire();
    first.offer();
    first.executor.drain();
    ASSERT_EQ(first.driver.launched.size(), 2u);
    const v1::TaskInfo& task = first.driver.launched[1];
    EXPECT_EQ(task.command().value(), "echo two");
    EXPECT_EQ(variable(task, "CHRONOS_RESOURCE_CPU"), "2");
    EXPECT_EQ(variable(task, "CHRONOS_JOB_OWNER"), "bob@example.com");
    double cpus = 0;
    for (const auto& resource : task.resources()) {
      if (resource.name() == "cpus") cpus = resource.scalar().value();
    }
    EXPECT_EQ(cpus, 2);
  }
  Instance second(&now_, &store_);
  const std::string job = second.job();
  EXPECT_NE(job.find(R"("command":"echo two")"), std::string::npos) << job;
  EXPECT_NE(job.find(R"("owner":"bob@example.com")"), std::string::npos) << job;
  EXPECT_NE(job.find(R"("cpus":2)"), std::string::npos) << job;
  EXPECT_NE(job.find(R"("successCount":1)"), std::string::npos) << job;
  EXPECT_EQ(job.find("echo one"), std::string::npos) << job;
}

// The stored run times are the last 100 (kept as text beside the numbers): after 102 runs of
// 1..102 s the stats, before and after a failover, count 100 with the first two gone.
TEST_F(ChronosFrameworkTest, RunStatisticsKeepTheLastHundredRunsAcrossAFailover) {
  {
    Instance first(&now_, &store_);
    ASSERT_EQ(first
                  .request("POST", "/scheduler/iso8601",
                           R"({"name":"a","command":"true","schedule":"R//PT1H"})")
                  .status,
              204);
    for (int run = 1; run <= 102; ++run) {
      first.executor.fire();
      first.offer();
      first.executor.drain();
      ASSERT_EQ(first.driver.launched.size(), static_cast<size_t>(run));
      const std::string id = first.driver.launched.back().task_id().value();
      first.update(id, v1::TASK_RUNNING);
      now_ += std::chrono::seconds(run);
      first.update(id, v1::TASK_FINISHED);
      first.executor.drain();
      now_ += 1h - std::chrono::seconds(run);
    }
    const std::string stat = first.request("GET", "/scheduler/job/stat/a").body;
    EXPECT_NE(stat.find(R"("count":100)"), std::string::npos) << stat;
    EXPECT_NE(stat.find(R"("mean":52.5)"), std::string::npos) << stat;
  }
  {
    Instance second(&now_, &store_);
    const std::string stat = second.request("GET", "/scheduler/job/stat/a").body;
    EXPECT_NE(stat.find(R"("count":100)"), std::string::npos) << stat;
    EXPECT_NE(stat.find(R"("mean":52.5)"), std::string::npos) << stat;
    // One more run (103 s) on the times read back: the oldest goes, in the store too.
    second.executor.fire();
    second.offer();
    second.executor.drain();
    ASSERT_EQ(second.driver.launched.size(), 1u);
    const std::string id = second.driver.launched[0].task_id().value();
    second.update(id, v1::TASK_RUNNING);
    now_ += 103s;
    second.update(id, v1::TASK_FINISHED);
    second.executor.drain();
  }
  Instance third(&now_, &store_);
  const std::string stat = third.request("GET", "/scheduler/job/stat/a").body;
  EXPECT_NE(stat.find(R"("count":100)"), std::string::npos) << stat;
  EXPECT_NE(stat.find(R"("mean":53.5)"), std::string::npos) << stat;
}

}  // namespace
}  // namespace tessera::modules::chronos
