// HostedDriver: what a framework host fills into a module's FrameworkInfo (the kept FrameworkID,
// failover_timeout, principal), the credentials it sends, and the id it records.
#include "kernel/scheduler/hosted_driver.h"

#include <gtest/gtest.h>

#include <future>

#include "kernel/runtime/runtime.h"
#include "tests/scheduler/fake_master.h"
#include "tests/support/subprocess.h"

namespace tessera::kernel::scheduler {
namespace {

using namespace std::chrono_literals;
using testing::FakeMaster;
using v1::scheduler::Call;

// A framework that only remembers the ids it was told of.
class RecordingFramework final : public api::Framework {
 public:
  void start(api::SchedulerDriver&) override {}
  void stop() override {}
  void subscribed(const v1::FrameworkID& id, std::chrono::nanoseconds,
                  const v1::MasterInfo&) override {
    ids.push_back(id.value());
  }
  void offers(std::vector<v1::Offer>) override {}
  void rescind(const v1::OfferID&) override {}
  void update(const v1::TaskStatus&) override {}
  void message(const v1::AgentID&, const v1::ExecutorID&, const std::string&) override {}
  void failure(const v1::AgentID&, const std::optional<v1::ExecutorID>&,
               std::optional<int>) override {}
  void error(std::string_view) override {}
  void disconnected() override {}
  std::vector<std::string> ids;  // the executor only
};

class HostedDriverTest : public ::testing::Test {
 protected:
  HostedDriverTest() { runtime_.start(); }
  ~HostedDriverTest() override {
    if (driver_)
      executor_->call([this] {
        driver_->stop();
        driver_.reset();
        return 0;
      });
    master_.reset();
    runtime_.stop();
  }

  // Makes the driver on the executor and subscribes with `info`.
  void subscribe(HostedDriverOptions options, v1::FrameworkInfo info,
                 std::string authorization = {}) {
    DriverOptions driver;
    driver.master = master_->address();
    driver.authorization = std::move(authorization);
    options.recordFrameworkId = [this](const v1::FrameworkID& id) {
      recorded_.push_back(id.value());
    };
    executor_->call([&] {
      driver_ = std::make_unique<HostedDriver>(runtime_, *executor_, framework_, driver,
                                               std::move(options));
      EXPECT_TRUE(driver_->subscribe(info, {}));
      return 0;
    });
  }

  runtime::Runtime runtime_;
  std::unique_ptr<runtime::StrandExecutor> executor_ = runtime_.makeExecutor();
  std::unique_ptr<FakeMaster> master_ = std::make_unique<FakeMaster>(runtime_);
  RecordingFramework framework_;
  std::unique_ptr<HostedDriver> driver_;
  std::vector<std::string> recorded_;  // the executor only
};

TEST_F(HostedDriverTest, FillsInWhatTheModuleLeavesUnset) {
  HostedDriverOptions options;
  options.frameworkId.emplace();
  options.frameworkId->set_value("fw-kept");
  options.failoverTimeout = std::chrono::hours(2);
  options.principal = "ops";
  v1::FrameworkInfo info;
  info.set_user("root");
  info.set_name("module");
  subscribe(options, info, basicAuthorization("ops", "pw"));
  ASSERT_TRUE(master_->waitForCalls(Call::SUBSCRIBE, 1));
  auto call = master_->callsOf(Call::SUBSCRIBE).at(0);
  const auto& sent = call.call.subscribe().framework_info();
  EXPECT_EQ(sent.id().value(), "fw-kept");
  EXPECT_EQ(sent.failover_timeout(), 7200.0);
  EXPECT_EQ(sent.principal(), "ops");
  EXPECT_EQ(sent.name(), "module");
  EXPECT_EQ(call.authorization, "Basic b3BzOnB3");  // base64("ops:pw")
  // The id SUBSCRIBED carries is recorded before the module hears of it.
  ASSERT_TRUE(tessera::testing::waitFor(
      [&] { return executor_->call([&] { return framework_.ids.size(); }) == 1; }));
  executor_->call([&] {
    EXPECT_EQ(recorded_, std::vector<std::string>{"fw-kept"});
    EXPECT_EQ(framework_.ids, std::vector<std::string>{"fw-kept"});
    EXPECT_EQ(driver_->frameworkId()->value(), "fw-kept");
    return 0;
  });
}

TEST_F(HostedDriverTest, KeepsWhatTheModuleSets) {
  HostedDriverOptions options;
  options.frameworkId.emplace();
  options.frameworkId->set_value("fw-kept");
  options.principal = "ops";
  v1::FrameworkInfo info;
  info.set_user("root");
  info.set_name("module");
  info.mutable_id()->set_value("fw-own");
  info.set_failover_timeout(5);
  info.set_principal("own");
  subscribe(options, info);
  ASSERT_TRUE(master_->waitForCalls(Call::SUBSCRIBE, 1));
  auto call = master_->callsOf(Call::SUBSCRIBE).at(0);
  const auto& sent = call.call.subscribe().framework_info();
  EXPECT_EQ(sent.id().value(), "fw-own");
  EXPECT_EQ(sent.failover_timeout(), 5.0);
  EXPECT_EQ(sent.principal(), "own");
  EXPECT_EQ(call.authorization, "");
}

TEST_F(HostedDriverTest, WithoutAKeptIdTheMastersIsRecorded) {
  v1::FrameworkInfo info;
  info.set_user("root");
  info.set_name("module");
  subscribe({}, info);
  ASSERT_TRUE(master_->waitForCalls(Call::SUBSCRIBE, 1));
  const auto calls = master_->callsOf(Call::SUBSCRIBE);
  const auto& sent = calls.at(0).call.subscribe().framework_info();
  EXPECT_FALSE(sent.has_id());
  EXPECT_EQ(sent.failover_timeout(), 7.0 * 24 * 3600);  // a week, Marathon's default
  ASSERT_TRUE(tessera::testing::waitFor(
      [&] { return executor_->call([&] { return recorded_.size(); }) == 1; }));
  executor_->call([&] {
    EXPECT_EQ(recorded_.at(0), "fw-1");
    return 0;
  });
}

}  // namespace
}  // namespace tessera::kernel::scheduler
