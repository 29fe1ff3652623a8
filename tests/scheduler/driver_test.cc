// HttpSchedulerDriver against a fake master on loopback: subscription, calls with the stream
// id, events to callbacks, redirects, lost streams and failover.

#include "kernel/scheduler/driver.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <set>

#include "kernel/runtime/runtime.h"
#include "tests/scheduler/fake_master.h"
#include "tests/support/subprocess.h"

namespace tessera::kernel::scheduler {
namespace {

using namespace std::chrono_literals;
using testing::FakeMaster;
using v1::scheduler::Call;
using v1::scheduler::Event;

// Records every callback as a line ("subscribed fw-1", "offers o-1,o-2", ...).
class RecordingScheduler final : public api::Scheduler {
 public:
  void subscribed(const v1::FrameworkID& id, std::chrono::nanoseconds heartbeat,
                  const v1::MasterInfo& master) override {
    add(fmt::format("subscribed {} {}ms {}", id.value(),
                    std::chrono::duration_cast<std::chrono::milliseconds>(heartbeat).count(),
                    master.id()));
  }
  void offers(std::vector<v1::Offer> offers) override {
    std::string ids;
    for (const auto& offer : offers) ids += (ids.empty() ? "" : ",") + offer.id().value();
    add(fmt::format("offers {}", ids));
  }
  void rescind(const v1::OfferID& id) override { add(fmt::format("rescind {}", id.value())); }
  void update(const v1::TaskStatus& status) override {
    add(fmt::format("update {} {} {}", status.task_id().value(), v1::TaskState_Name(status.state()),
                    status.uuid()));
  }
  void message(const v1::AgentID& agent, const v1::ExecutorID& executor,
               const std::string& data) override {
    add(fmt::format("message {} {} {}", agent.value(), executor.value(), data));
  }
  void failure(const v1::AgentID& agent, const std::optional<v1::ExecutorID>& executor,
               std::optional<int> status) override {
    add(fmt::format("failure {} {} {}", agent.value(), executor ? executor->value() : "-",
                    status ? std::to_string(*status) : "-"));
  }
  void error(std::string_view message) override { add(fmt::format("error {}", message)); }
  void disconnected() override { add("disconnected"); }

  std::vector<std::string> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }
  bool waitFor(const std::string& line, std::chrono::milliseconds timeout = 10s) const {
    return tessera::testing::waitFor(
        [&] {
          for (const auto& e : events()) {
            if (e == line) return true;
          }
          return false;
        },
        timeout);
  }
  size_t count(const std::string& line) const {
    size_t n = 0;
    for (const auto& e : events()) n += e == line ? 1 : 0;
    return n;
  }

 private:
  void add(std::string line) {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(line));
  }
  mutable std::mutex mutex_;
  std::vector<std::string> events_;
};

v1::FrameworkInfo frameworkInfo() {
  v1::FrameworkInfo info;
  info.set_user("tester");
  info.set_name("test-framework");
  return info;
}

// A runtime, an executor for the scheduler and a driver on it.
class DriverTest : public ::testing::Test {
 protected:
  DriverTest() { runtime_.start(); }
  ~DriverTest() override {
    if (driver_) {
      executor_->call([&] {
        driver_->stop();
        return 0;
      });
      executor_->drain();
      driver_.reset();
    }
    master_.reset();
    other_.reset();
    runtime_.stop();
  }

  void makeDriver(const std::string& master, DriverOptions options = {}) {
    options.master = master;
    options.minBackoff = 10ms;
    options.maxBackoff = 100ms;
    driver_ = std::make_unique<HttpSchedulerDriver>(runtime_, *executor_, scheduler_, options);
  }
  api::Status subscribe(v1::FrameworkInfo info = frameworkInfo()) {
    return executor_->call([&] { return driver_->subscribe(info, {}); });
  }
  // Runs a driver call on the executor and waits for its completion.
  api::Status callAndWait(const std::function<void(api::CallCallback)>& call) {
    std::promise<api::Status> done;
    auto future = done.get_future();
    executor_->post([&] { call([&](api::Status status) { done.set_value(status); }); });
    if (future.wait_for(10s) != std::future_status::ready) {
      return api::Status(api::StatusCode::kDeadlineExceeded, "no completion");
    }
    return future.get();
  }

  runtime::Runtime runtime_;
  std::unique_ptr<runtime::StrandExecutor> executor_ = runtime_.makeExecutor();
  RecordingScheduler scheduler_;
  std::unique_ptr<FakeMaster> master_ = std::make_unique<FakeMaster>(runtime_);
  std::unique_ptr<FakeMaster> other_;
  std::unique_ptr<HttpSchedulerDriver> driver_;
};

TEST(MasterAddressTest, ParsesHostPortAndRefusesZk) {
  auto parsed = parseMasterAddress("127.0.0.1:5050");
  ASSERT_TRUE(parsed.isOk());
  EXPECT_EQ(parsed->host, "127.0.0.1");
  EXPECT_EQ(parsed->port, 5050);
  EXPECT_TRUE(parseMasterAddress("http://master.example:5050/").isOk());
  EXPECT_FALSE(parseMasterAddress("master").isOk());
  EXPECT_FALSE(parseMasterAddress("master:0").isOk());
  EXPECT_FALSE(parseMasterAddress("master:99999").isOk());
  auto zk = parseMasterAddress("zk://h1:2181/tessera");
  ASSERT_FALSE(zk.isOk());
  EXPECT_NE(zk.status().message().find("zk:// URLs are not supported yet"), std::string::npos);

  auto location = parseLocation("//10.0.0.2:5050/api/v1/scheduler");
  ASSERT_TRUE(location.isOk());
  EXPECT_EQ(location->toString(), "10.0.0.2:5050");
  EXPECT_EQ(parseLocation("http://m2:5051/master/redirect")->toString(), "m2:5051");
}

TEST_F(DriverTest, SubscribesAndSendsCallsWithTheStreamId) {
  makeDriver(master_->address());
  ASSERT_TRUE(subscribe().isOk());
  ASSERT_TRUE(scheduler_.waitFor("subscribed fw-1 15000ms master-1"));
  auto subscribes = master_->callsOf(Call::SUBSCRIBE);
  ASSERT_EQ(subscribes.size(), 1u);
  EXPECT_EQ(subscribes[0].call.subscribe().framework_info().name(), "test-framework");
  EXPECT_FALSE(subscribes[0].call.has_framework_id());
  EXPECT_EQ(subscribes[0].contentType, "application/json");
  EXPECT_EQ(subscribes[0].accept, "application/json");
  EXPECT_TRUE(executor_->call([&] { return driver_->subscribed(); }));
  EXPECT_EQ(executor_->call([&] { return driver_->frameworkId()->value(); }), "fw-1");

  v1::OfferID offer;
  offer.set_value("o-1");
  auto declined = callAndWait(
      [&](api::CallCallback done) { driver_->decline({offer}, std::nullopt, std::move(done)); });
  EXPECT_TRUE(declined.isOk()) << declined.toString();
  v1::TaskID task;
  task.set_value("t-1");
  v1::AgentID agent;
  agent.set_value("a-1");
  EXPECT_TRUE(callAndWait([&](api::CallCallback done) {
                driver_->acknowledge(agent, task, "uuid-bytes", std::move(done));
              }).isOk());
  EXPECT_TRUE(callAndWait([&](api::CallCallback done) {
                driver_->revive({"web"}, std::move(done));
              }).isOk());

  auto declines = master_->callsOf(Call::DECLINE);
  ASSERT_EQ(declines.size(), 1u);
  EXPECT_EQ(declines[0].streamId, "stream-1");
  EXPECT_EQ(declines[0].call.framework_id().value(), "fw-1");
  EXPECT_EQ(declines[0].call.decline().offer_ids(0).value(), "o-1");
  auto acks = master_->callsOf(Call::ACKNOWLEDGE);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].call.acknowledge().uuid(), "uuid-bytes");
  EXPECT_EQ(acks[0].streamId, "stream-1");
  ASSERT_EQ(master_->callsOf(Call::REVIVE).size(), 1u);
  EXPECT_EQ(master_->callsOf(Call::REVIVE)[0].call.revive().roles(0), "web");
}

// ACKNOWLEDGE calls go several at once, beside the other calls (#23): with the master holding
// every acknowledgement unanswered, the next ones and a REVIVE still reach it; the other calls
// keep their order; every call completes once answered.
TEST_F(DriverTest, AcknowledgementsGoSeveralAtOnceAndDoNotHoldUpOtherCalls) {
  DriverOptions options;
  options.acknowledgeConnections = 4;
  makeDriver(master_->address(), options);
  ASSERT_TRUE(subscribe().isOk());
  ASSERT_TRUE(scheduler_.waitFor("subscribed fw-1 15000ms master-1"));
  master_->holdAcknowledgements(true);
  v1::AgentID agent;
  agent.set_value("a-1");
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<api::Status> acked;
  std::vector<std::string> revived;
  executor_->post([&] {
    for (int i = 0; i < 6; ++i) {
      v1::TaskID task;
      task.set_value(fmt::format("t-{}", i));
      driver_->acknowledge(agent, task, fmt::format("uuid-{}", i), [&](api::Status status) {
        std::lock_guard lock(mutex);
        acked.push_back(status);
        changed.notify_all();
      });
    }
    for (int i = 0; i < 3; ++i) {
      driver_->revive({fmt::format("r{}", i)}, [&, i](api::Status status) {
        std::lock_guard lock(mutex);
        revived.push_back(status ? fmt::format("r{}", i) : status.toString());
        changed.notify_all();
      });
    }
  });
  // Four acknowledgements in flight at once, none answered; the revives went on regardless.
  ASSERT_TRUE(master_->waitForCalls(Call::ACKNOWLEDGE, 4));
  ASSERT_TRUE(master_->waitForCalls(Call::REVIVE, 3));
  EXPECT_EQ(master_->callsOf(Call::ACKNOWLEDGE).size(), 4u);
  auto revives = master_->callsOf(Call::REVIVE);
  ASSERT_EQ(revives.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(revives[i].call.revive().roles(0), fmt::format("r{}", i));
  {
    std::lock_guard lock(mutex);
    EXPECT_TRUE(acked.empty());
  }
  // Answered, the rest follow; each acknowledgement reaches the master once.
  master_->holdAcknowledgements(false);
  master_->releaseHeld();
  ASSERT_TRUE(master_->waitForCalls(Call::ACKNOWLEDGE, 6));
  std::set<std::string> uuids;
  for (const auto& ack : master_->callsOf(Call::ACKNOWLEDGE)) {
    uuids.insert(ack.call.acknowledge().uuid());
  }
  EXPECT_EQ(uuids.size(), 6u);
  std::unique_lock lock(mutex);
  ASSERT_TRUE(changed.wait_for(lock, 10s, [&] { return acked.size() == 6 && revived.size() == 3; }))
      << "not every call completed";
  for (const auto& status : acked) EXPECT_TRUE(status.isOk()) << status.toString();
  EXPECT_EQ(revived, (std::vector<std::string>{"r0", "r1", "r2"}));
}

TEST_F(DriverTest, CallsBeforeSubscribingFail) {
  makeDriver(master_->address());
  auto status = callAndWait([&](api::CallCallback done) { driver_->teardown(std::move(done)); });
  EXPECT_EQ(status.code(), api::StatusCode::kFailedPrecondition) << status.toString();
  EXPECT_TRUE(master_->calls().empty());
}

TEST_F(DriverTest, EventsBecomeCallbacks) {
  makeDriver(master_->address());
  ASSERT_TRUE(subscribe().isOk());
  ASSERT_TRUE(scheduler_.waitFor("subscribed fw-1 15000ms master-1"));

  Event offers;
  offers.set_type(Event::OFFERS);
  *offers.mutable_offers()->add_offers() = testing::makeOffer("o-1", "a-1", "cpus:1;mem:128");
  *offers.mutable_offers()->add_offers() = testing::makeOffer("o-2", "a-2", "cpus:2");
  ASSERT_TRUE(master_->send(offers));
  Event rescind;
  rescind.set_type(Event::RESCIND);
  rescind.mutable_rescind()->mutable_offer_id()->set_value("o-2");
  ASSERT_TRUE(master_->send(rescind));
  ASSERT_TRUE(master_->send(testing::makeUpdate("t-1", v1::TASK_RUNNING, "u-1")));
  Event heartbeat;
  heartbeat.set_type(Event::HEARTBEAT);
  ASSERT_TRUE(master_->send(heartbeat));
  Event message;
  message.set_type(Event::MESSAGE);
  message.mutable_message()->mutable_agent_id()->set_value("a-1");
  message.mutable_message()->mutable_executor_id()->set_value("e-1");
  message.mutable_message()->set_data("hi");
  ASSERT_TRUE(master_->send(message));
  Event failure;
  failure.set_type(Event::FAILURE);
  failure.mutable_failure()->mutable_agent_id()->set_value("a-1");
  failure.mutable_failure()->mutable_executor_id()->set_value("e-1");
  failure.mutable_failure()->set_status(9);
  ASSERT_TRUE(master_->send(failure));
  Event error;
  error.set_type(Event::ERROR);
  error.mutable_error()->set_message("framework removed");
  ASSERT_TRUE(master_->send(error));

  ASSERT_TRUE(scheduler_.waitFor("error framework removed"));
  std::vector<std::string> expected = {
      "subscribed fw-1 15000ms master-1", "offers o-1,o-2",     "rescind o-2",
      "update t-1 TASK_RUNNING u-1",      "message a-1 e-1 hi", "failure a-1 e-1 9",
      "error framework removed"};
  EXPECT_EQ(scheduler_.events(), expected);
  // After an ERROR the driver does not come back on its own.
  master_->closeStream();
  executor_->drain();
  EXPECT_EQ(master_->callsOf(Call::SUBSCRIBE).size(), 1u);
}

TEST_F(DriverTest, FollowsRedirectToTheLeader) {
  other_ = std::make_unique<FakeMaster>(runtime_);
  master_->redirectTo(fmt::format("//127.0.0.1:{}/api/v1/scheduler", other_->port()));
  makeDriver(master_->address());
  ASSERT_TRUE(subscribe().isOk());
  ASSERT_TRUE(scheduler_.waitFor("subscribed fw-1 15000ms master-1"));
  EXPECT_EQ(other_->callsOf(Call::SUBSCRIBE).size(), 1u);
  EXPECT_EQ(executor_->call([&] { return driver_->currentMaster(); }), other_->address());
  // Calls go to the leader too.
  EXPECT_TRUE(
      callAndWait([&](api::CallCallback done) { driver_->suppress({}, std::move(done)); }).isOk());
  EXPECT_EQ(other_->callsOf(Call::SUPPRESS).size(), 1u);
  EXPECT_TRUE(master_->calls().empty());
}

TEST_F(DriverTest, CallsFollowARedirectToo) {
  makeDriver(master_->address());
  ASSERT_TRUE(subscribe().isOk());
  ASSERT_TRUE(scheduler_.waitFor("subscribed fw-1 15000ms master-1"));
  other_ = std::make_unique<FakeMaster>(runtime_);
  master_->redirectTo(fmt::format("http://127.0.0.1:{}/api/v1/scheduler", other_->port()));
  v1::OfferID offer;
  offer.set_value("o-1");
  auto status = callAndWait(
      [&](api::CallCallback done) { driver_->decline({offer}, std::nullopt, std::move(done)); });
  // The other master has no subscription with that stream id: it refuses, with its message.
  EXPECT_EQ(status.code(), api::StatusCode::kInvalidArgument) << status.toString();
  EXPECT_NE(status.message().find("Mesos-Stream-Id is wrong"), std::string::npos)
      << status.message();
  ASSERT_EQ(other_->callsOf(Call::DECLINE).size(), 1u);
  EXPECT_EQ(other_->callsOf(Call::DECLINE)[0].streamId, "stream-1");
}

TEST_F(DriverTest, ARefusedSubscriptionIsAnErrorAndNotRetried) {
  master_->refuseSubscriptions("framework_info.user is required");
  makeDriver(master_->address());
  ASSERT_TRUE(subscribe().isOk());
  ASSERT_TRUE(tessera::testing::waitFor([&] { return !scheduler_.events().empty(); }, 10s));
  auto events = scheduler_.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_NE(events[0].find("error master 127.0.0.1:"), std::string::npos) << events[0];
  EXPECT_NE(events[0].find("framework_info.user is required"), std::string::npos) << events[0];
  executor_->drain();
  EXPECT_EQ(master_->callsOf(Call::SUBSCRIBE).size(), 1u);
}

TEST_F(DriverTest, ResubscribesWithTheFrameworkIdAfterTheStreamDrops) {
  makeDriver(master_->address());
  ASSERT_TRUE(subscribe().isOk());
  ASSERT_TRUE(scheduler_.waitFor("subscribed fw-1 15000ms master-1"));
  master_->closeStream();
  ASSERT_TRUE(scheduler_.waitFor("disconnected"));
  ASSERT_TRUE(master_->waitForCalls(Call::SUBSCRIBE, 2));
  auto second = master_->callsOf(Call::SUBSCRIBE)[1];
  EXPECT_EQ(second.call.framework_id().value(), "fw-1");
  EXPECT_EQ(second.call.subscribe().framework_info().id().value(), "fw-1");
  ASSERT_TRUE(tessera::testing::waitFor(
      [&] { return scheduler_.count("subscribed fw-1 15000ms master-1") == 2; }, 10s));
  // disconnected() came before the second subscribed().
  auto events = scheduler_.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1], "disconnected");
  // New calls carry the new stream id.
  v1::OfferID offer;
  offer.set_value("o-9");
  EXPECT_TRUE(callAndWait([&](api::CallCallback done) {
                driver_->decline({offer}, std::nullopt, std::move(done));
              }).isOk());
  EXPECT_EQ(master_->callsOf(Call::DECLINE).at(0).streamId, "stream-2");
}

TEST_F(DriverTest, MissedHeartbeatsCountAsALostStream) {
  master_->setHeartbeatSeconds(0.1);  // and the fake master never sends one
  makeDriver(master_->address());
  ASSERT_TRUE(subscribe().isOk());
  ASSERT_TRUE(scheduler_.waitFor("subscribed fw-1 100ms master-1"));
  ASSERT_TRUE(scheduler_.waitFor("disconnected"));
  ASSERT_TRUE(master_->waitForCalls(Call::SUBSCRIBE, 2));
  EXPECT_EQ(master_->callsOf(Call::SUBSCRIBE)[1].call.framework_id().value(), "fw-1");
}

TEST_F(DriverTest, RetriesAnUnreachableMasterWithBackoff) {
  uint16_t port = tessera::testing::freePort();
  makeDriver(fmt::format("127.0.0.1:{}", port));
  ASSERT_TRUE(subscribe().isOk());
  ASSERT_TRUE(tessera::testing::waitFor(
      [&] { return executor_->call([&] { return driver_->subscribeAttemptsForTest(); }) >= 3; },
      10s));
  auto error = executor_->call([&] { return driver_->lastError(); });
  EXPECT_NE(error.find(fmt::format("cannot connect to 127.0.0.1:{}", port)), std::string::npos)
      << error;
  EXPECT_EQ(scheduler_.count("disconnected"), 0u);  // it never was connected
}

TEST_F(DriverTest, SubscribeRefusesAZkMaster) {
  makeDriver("zk://127.0.0.1:2181/tessera");
  auto status = subscribe();
  EXPECT_EQ(status.code(), api::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("zk://"), std::string::npos);
}

}  // namespace
}  // namespace tessera::kernel::scheduler
