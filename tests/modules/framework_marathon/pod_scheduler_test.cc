// The pod engine: an instance is one LAUNCH_GROUP of the pod's containers (with the default
// executor and its resources) on one offer; it keeps `instances` of them, replaces a failed one
// after the backoff, kills on scale-down and removal, and adopts a predecessor's tasks.

#include "modules/framework_marathon/pod_scheduler.h"

#include <gtest/gtest.h>

#include "tests/modules/framework_marathon/sched_fakes.h"

namespace tessera::modules::marathon::testing {
namespace {

Pod makePod(const std::string& id, int instances) {
  Pod pod;
  pod.id = id;
  pod.instances = instances;
  PodContainer web;
  web.name = "web";
  web.resources = {0.5, 64, 0, 0};
  web.command = "sleep 1000";
  web.endpoints = {PodEndpoint{"http", std::nullopt, 0, {"tcp"}, {}}};
  PodContainer sidecar;
  sidecar.name = "sidecar";
  sidecar.resources = {0.25, 32, 0, 0};
  sidecar.command = "sleep 2000";
  pod.containers = {web, sidecar};
  pod.version = Clock::time_point(std::chrono::seconds(1'800'000'000));
  return pod;
}

double scalarOf(const google::protobuf::RepeatedPtrField<v1::Resource>& resources,
                const std::string& name) {
  double total = 0;
  for (const auto& resource : resources) {
    if (resource.name() == name) total += resource.scalar().value();
  }
  return total;
}

class PodSchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override { make({}); }

  void make(std::vector<Pod> pods) {
    PodScheduler::Options options;
    options.now = [this] { return now; };
    options.user = "root";
    scheduler = std::make_unique<PodScheduler>(context, options);
    scheduler->start(driver, std::move(pods));
    scheduler->subscribed();
    context.fakeExecutor.fireTimers();
  }

  // Every LAUNCH_GROUP accepted so far.
  std::vector<v1::Offer::Operation::LaunchGroup> groups() const {
    std::vector<v1::Offer::Operation::LaunchGroup> out;
    for (const auto& accept : driver.accepts) {
      for (const auto& operation : accept.operations) {
        if (operation.type() == v1::Offer::Operation::LAUNCH_GROUP) {
          out.push_back(operation.launch_group());
        }
      }
    }
    return out;
  }

  v1::Offer offer(const std::string& resources = "cpus:4;mem:4096;disk:1000;ports:[31000-31099]") {
    return makeOffer("o" + std::to_string(++offers), "a1", "host1", resources);
  }

  void report(const v1::TaskInfo& task, v1::TaskState state) {
    EXPECT_TRUE(scheduler->update(makeStatus(task.task_id().value(), state)));
  }

  Clock::time_point now = Clock::time_point(std::chrono::seconds(1'900'000'000));
  FakeContext context;
  FakeDriver driver;
  std::unique_ptr<PodScheduler> scheduler;
  int offers = 0;
};

TEST_F(PodSchedulerTest, LaunchesAnInstanceAsOneTaskGroupWithTheDefaultExecutor) {
  scheduler->setPod(makePod("/prod/web", 1));
  EXPECT_TRUE(scheduler->wantsOffers());
  EXPECT_GE(driver.revives, 1);
  auto rest = scheduler->offers({offer()});
  EXPECT_TRUE(rest.empty());
  auto launched = groups();
  ASSERT_EQ(launched.size(), 1u);
  const auto& group = launched[0];
  EXPECT_EQ(group.executor().type(), v1::ExecutorInfo::DEFAULT);
  EXPECT_TRUE(group.executor().executor_id().value().starts_with("instance-prod_web.instance-"));
  EXPECT_FALSE(group.executor().has_command());
  EXPECT_DOUBLE_EQ(scalarOf(group.executor().resources(), "cpus"), 0.1);
  EXPECT_DOUBLE_EQ(scalarOf(group.executor().resources(), "mem"), 32);
  ASSERT_EQ(group.task_group().tasks_size(), 2);
  const auto& web = group.task_group().tasks(0);
  const auto& sidecar = group.task_group().tasks(1);
  EXPECT_EQ(web.name(), "web");
  EXPECT_TRUE(web.task_id().value().ends_with(".web"));
  EXPECT_DOUBLE_EQ(scalarOf(web.resources(), "cpus"), 0.5);
  EXPECT_DOUBLE_EQ(scalarOf(sidecar.resources(), "mem"), 32);
  EXPECT_EQ(web.command().value(), "sleep 1000");
  EXPECT_FALSE(web.has_executor());
  auto port = envOf(web, "ENDPOINT_HTTP");
  ASSERT_TRUE(port);
  EXPECT_GE(std::stoi(*port), 31000);
  EXPECT_EQ(envOf(sidecar, "ENDPOINT_HTTP"), port);  // the containers share the host
  EXPECT_EQ(envOf(web, "MARATHON_APP_ID"), "/prod/web");
  EXPECT_FALSE(scheduler->wantsOffers());

  auto instances = scheduler->instances("/prod/web");
  ASSERT_EQ(instances.size(), 1u);
  EXPECT_EQ(instances[0].status(), "STAGING");
  report(web, v1::TASK_RUNNING);
  EXPECT_EQ(scheduler->instances("/prod/web")[0].status(), "STAGING");
  report(sidecar, v1::TASK_RUNNING);
  instances = scheduler->instances("/prod/web");
  EXPECT_EQ(instances[0].status(), "STABLE");
  EXPECT_EQ(instances[0].containers[0].state, "TASK_RUNNING");
  EXPECT_EQ(driver.acks.size(), 2u);
  EXPECT_EQ(instances[0].containers[0].endpoints.at("http"), std::stoi(*port));

  // An app's task is not the pod engine's.
  EXPECT_FALSE(scheduler->update(makeStatus("prod_api.1234", v1::TASK_RUNNING)));
}

TEST_F(PodSchedulerTest, AContainersHealthCheckGoesToItsTaskAndDecidesTheInstanceStatus) {
  Pod pod = makePod("/hc", 1);
  PodHealthCheck http;
  http.type = "http";
  http.endpoint = "http";
  http.path = "/ping";
  http.maxConsecutiveFailures = 2;
  http.delaySeconds = 0;
  pod.containers[0].healthCheck = http;
  PodHealthCheck exec;
  exec.type = "exec";
  exec.argv = {"/bin/test", "-f", "ok"};
  pod.containers[1].healthCheck = exec;
  scheduler->setPod(pod);
  scheduler->offers({offer()});
  const auto launched = groups();
  ASSERT_EQ(launched.size(), 1u);
  const auto& web = launched[0].task_group().tasks(0);
  const auto& sidecar = launched[0].task_group().tasks(1);
  ASSERT_TRUE(web.has_health_check());
  EXPECT_EQ(web.health_check().type(), v1::HealthCheck::HTTP);
  EXPECT_EQ(web.health_check().http().path(), "/ping");
  EXPECT_EQ(web.health_check().http().scheme(), "http");
  EXPECT_EQ(std::to_string(web.health_check().http().port()), *envOf(web, "ENDPOINT_HTTP"))
      << "host networking: the endpoint's host port";
  EXPECT_EQ(web.health_check().consecutive_failures(), 2u);
  EXPECT_DOUBLE_EQ(web.health_check().delay_seconds(), 0);
  EXPECT_DOUBLE_EQ(web.health_check().grace_period_seconds(), 300);
  ASSERT_TRUE(sidecar.has_health_check());
  EXPECT_EQ(sidecar.health_check().type(), v1::HealthCheck::COMMAND);
  EXPECT_FALSE(sidecar.health_check().command().shell());
  EXPECT_EQ(sidecar.health_check().command().value(), "/bin/test");
  EXPECT_EQ(sidecar.health_check().command().arguments_size(), 3);

  // Running but not yet reported healthy: DEGRADED, as Marathon.
  report(web, v1::TASK_RUNNING);
  report(sidecar, v1::TASK_RUNNING);
  auto instance = scheduler->instances("/hc")[0];
  EXPECT_EQ(instance.status(), "DEGRADED");
  EXPECT_TRUE(instance.unhealthy());
  EXPECT_TRUE(instance.containers[0].checked);
  EXPECT_FALSE(instance.containers[0].healthy);
  EXPECT_TRUE(scheduler->update(makeStatus(web.task_id().value(), v1::TASK_RUNNING, "a1", true)));
  EXPECT_TRUE(
      scheduler->update(makeStatus(sidecar.task_id().value(), v1::TASK_RUNNING, "a1", true)));
  instance = scheduler->instances("/hc")[0];
  EXPECT_EQ(instance.status(), "STABLE");
  EXPECT_EQ(instance.containers[0].healthy, true);
  EXPECT_TRUE(
      scheduler->update(makeStatus(web.task_id().value(), v1::TASK_RUNNING, "a1", false, "503")));
  instance = scheduler->instances("/hc")[0];
  EXPECT_EQ(instance.status(), "DEGRADED");
  EXPECT_EQ(instance.containers[0].healthy, false);
  EXPECT_TRUE(instance.live()) << "an unhealthy instance still counts until the agent kills it";

  // The agent kills the task for its health: the instance is replaced after the backoff.
  EXPECT_TRUE(scheduler->update(makeStatus(web.task_id().value(), v1::TASK_KILLED, "a1", false)));
  EXPECT_TRUE(scheduler->wantsOffers());
  now += std::chrono::seconds(2);
  scheduler->offers({offer()});
  EXPECT_EQ(groups().size(), 2u);
}

TEST_F(PodSchedulerTest, AnOfferTooSmallForTheWholeGroupIsLeftForTheApps) {
  scheduler->setPod(makePod("/p", 1));
  // 0.5 + 0.25 + 0.1 (executor) cpus are needed.
  auto rest = scheduler->offers({offer("cpus:0.8;mem:4096;disk:1000;ports:[31000-31099]")});
  EXPECT_EQ(rest.size(), 1u);
  EXPECT_TRUE(groups().empty());
  EXPECT_TRUE(scheduler->wantsOffers());
}

TEST_F(PodSchedulerTest, KeepsTheCountScalesAndReplacesAFailedInstanceAfterTheBackoff) {
  scheduler->setPod(makePod("/p", 2));
  scheduler->offers({offer()});
  ASSERT_EQ(groups().size(), 2u);
  for (const auto& group : groups()) {
    for (const auto& task : group.task_group().tasks()) report(task, v1::TASK_RUNNING);
  }
  // One container fails: the instance is done (its other task killed), replaced after 1s.
  const auto failedGroup = groups()[0];
  report(failedGroup.task_group().tasks(0), v1::TASK_FAILED);
  EXPECT_EQ(driver.kills.size(), 1u);
  EXPECT_EQ(driver.kills[0], failedGroup.task_group().tasks(1).task_id().value());
  EXPECT_TRUE(scheduler->wantsOffers());
  EXPECT_EQ(scheduler->offers({offer()}).size(), 1u);  // still delayed
  now += std::chrono::seconds(2);
  scheduler->offers({offer()});
  ASSERT_EQ(groups().size(), 3u);
  report(failedGroup.task_group().tasks(1), v1::TASK_KILLED);
  EXPECT_EQ(scheduler->instances("/p").size(), 2u);

  // Scale down to one: the youngest goes.
  const std::string youngest = groups()[2].task_group().tasks(0).task_id().value();
  Pod smaller = makePod("/p", 1);
  scheduler->setPod(smaller);
  EXPECT_NE(std::find(driver.kills.begin(), driver.kills.end(), youngest), driver.kills.end());

  // Removed: every task is killed.
  scheduler->removePod("/p");
  const std::string survivor = groups()[1].task_group().tasks(0).task_id().value();
  EXPECT_NE(std::find(driver.kills.begin(), driver.kills.end(), survivor), driver.kills.end());
}

TEST_F(PodSchedulerTest, ANewConfigReplacesEveryInstance) {
  scheduler->setPod(makePod("/p", 1));
  scheduler->offers({offer()});
  ASSERT_EQ(groups().size(), 1u);
  const std::string old = groups()[0].task_group().tasks(0).task_id().value();
  Pod changed = makePod("/p", 1);
  changed.containers[0].command = "sleep 3000";
  scheduler->setPod(changed);
  EXPECT_NE(std::find(driver.kills.begin(), driver.kills.end(), old), driver.kills.end());
  scheduler->offers({offer()});
  ASSERT_EQ(groups().size(), 2u);
  EXPECT_EQ(groups()[1].task_group().tasks(0).command().value(), "sleep 3000");
}

TEST_F(PodSchedulerTest, ANewLeaderAdoptsItsPredecessorsTasksAndKillsStrays) {
  make({makePod("/p", 1)});
  // Reconciliation answers (routed here by task id) before any offer.
  const std::string instance = newInstanceId("/p");
  EXPECT_TRUE(scheduler->update(makeStatus(instance + ".web", v1::TASK_RUNNING)));
  EXPECT_TRUE(scheduler->update(makeStatus(instance + ".sidecar", v1::TASK_RUNNING)));
  auto instances = scheduler->instances("/p");
  ASSERT_EQ(instances.size(), 1u);
  EXPECT_EQ(instances[0].status(), "STABLE");
  EXPECT_FALSE(scheduler->wantsOffers());
  EXPECT_EQ(scheduler->offers({offer()}).size(), 1u);

  const std::string stray = newInstanceId("/gone") + ".web";
  EXPECT_TRUE(scheduler->update(makeStatus(stray, v1::TASK_RUNNING)));
  EXPECT_EQ(driver.kills, std::vector<std::string>{stray});
}

TEST_F(PodSchedulerTest, KillingAnInstanceReplacesIt) {
  scheduler->setPod(makePod("/p", 1));
  scheduler->offers({offer()});
  const auto instance = scheduler->instances("/p").at(0);
  EXPECT_FALSE(scheduler->killInstance("/p", "nope"));
  EXPECT_TRUE(scheduler->killInstance("/p", instance.id));
  EXPECT_EQ(driver.kills.size(), 2u);
  scheduler->offers({offer()});  // no backoff for a kill asked for
  EXPECT_EQ(groups().size(), 2u);
}

}  // namespace
}  // namespace tessera::modules::marathon::testing

namespace tessera::modules::marathon::testing {
namespace {

// The app engine shares the framework's offers with the pods: while a pod waits for offers, it
// neither suppresses them nor declines them for the idle two minutes.
TEST(SharedOffersTest, TheAppEngineKeepsOffersComingWhileAPodWaits) {
  FakeContext context;
  FakeDriver driver;
  bool podWaits = true;
  AppScheduler::Options options;
  options.othersWantOffers = [&] { return podWaits; };
  AppScheduler scheduler(context, options);
  scheduler.start(driver, {});
  v1::FrameworkID id;
  id.set_value("fw");
  scheduler.subscribed(id);
  context.fakeExecutor.fireTimers();
  scheduler.offers({makeOffer("o1", "a1", "host1", "cpus:1;mem:128")});
  EXPECT_EQ(driver.suppresses, 0);
  ASSERT_EQ(driver.declines.size(), 1u);
  ASSERT_TRUE(driver.declines[0].filters);
  EXPECT_DOUBLE_EQ(driver.declines[0].filters->refuse_seconds(), options.refuseSecondsBusy);

  podWaits = false;
  scheduler.offers({makeOffer("o2", "a1", "host1", "cpus:1;mem:128")});
  EXPECT_EQ(driver.suppresses, 1);
  ASSERT_EQ(driver.declines.size(), 2u);
  EXPECT_DOUBLE_EQ(driver.declines[1].filters->refuse_seconds(), options.refuseSecondsIdle);
}

}  // namespace
}  // namespace tessera::modules::marathon::testing
