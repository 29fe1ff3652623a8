// Deployments in the Marathon engine: plans of steps, their events, rolling restarts that keep
// upgradeStrategy's bounds, locks, force and cancel, stopping apps.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "tests/modules/framework_marathon/sched_fakes.h"

namespace tessera::modules::marathon::testing {
namespace {

using namespace std::chrono_literals;

class DeployTest : public SchedulerHarness {
 protected:
  // Plays the cluster one event at a time until the deployments are done (or `rounds` pass):
  // an offer, then every staged task starts (healthy when checked), every killed task ends.
  // `check` runs after every single update, so it sees every intermediate state.
  void play(const std::function<void()>& check, int rounds = 50) {
    size_t killsSeen = 0;
    for (int round = 0; round < rounds && !scheduler->deployments().empty(); ++round) {
      advance(1s);
      scheduler->offers({offer("cpus:16;mem:16384;ports:[31000-31999]")});
      check();
      // One event at a time: first a start, else a kill ending.
      bool started = false;
      for (const auto& task : scheduler->tasks()) {
        if (task.state != "TASK_STAGING") continue;
        scheduler->update(makeStatus(task.id, v1::TASK_RUNNING, task.agentId));
        check();
        scheduler->update(makeStatus(task.id, v1::TASK_RUNNING, task.agentId, true));
        check();
        started = true;
        break;
      }
      if (started) continue;
      if (killsSeen < driver.kills.size()) {
        scheduler->update(makeStatus(driver.kills[killsSeen++], v1::TASK_KILLED));
        check();
      }
    }
  }

  void runningHealthy(const std::string& appId) {
    scheduler->offers({offer("cpus:16;mem:16384;ports:[31000-31999]")});
    for (const auto& task : scheduler->tasks(appId)) {
      scheduler->update(makeStatus(task.id, v1::TASK_RUNNING, task.agentId, true));
    }
  }
};

TEST_F(DeployTest, NewAppIsStartedThenScaledWithEvents) {
  auto deployment = scheduler->deploy({makeApp("/new", 2)}, {}, {}, false);
  ASSERT_TRUE(deployment.isOk());
  ASSERT_EQ(deployment->steps.size(), 2u);
  EXPECT_EQ(deployment->steps[0][0].action, "StartApplication");
  EXPECT_EQ(deployment->steps[1][0].action, "ScaleApplication");
  EXPECT_EQ(deployment->affectedApps, std::vector<std::string>{"/new"});
  EXPECT_EQ(eventsOf("deployment_info"), 1);
  const std::string info = lastEventOf("deployment_info");
  EXPECT_NE(info.find(fmt::format("\"plan\":{{\"id\":\"{}\"", deployment->id)), std::string::npos)
      << info;
  EXPECT_NE(info.find("\"currentStep\":{\"actions\":[{\"action\":\"StartApplication\""),
            std::string::npos)
      << info;
  EXPECT_EQ(scheduler->deploymentsOf("/new"), std::vector<std::string>{deployment->id});
  EXPECT_EQ(scheduler->deployments().at(0).currentStep, 2) << "the start step is done at once";

  runningHealthy("/new");
  EXPECT_TRUE(scheduler->deployments().empty());
  EXPECT_EQ(eventsOf("deployment_step_success"), 2);
  EXPECT_EQ(eventsOf("deployment_success"), 1);
  EXPECT_NE(lastEventOf("deployment_success").find(fmt::format("\"id\":\"{}\"", deployment->id)),
            std::string::npos);
}

TEST_F(DeployTest, NewTasksOfCheckedAppsCountOnlyOnceHealthy) {
  App app = makeApp("/checked", 1);
  app.healthChecks = {HealthCheck{}};
  ASSERT_TRUE(scheduler->deploy({app}, {}, {}, false).isOk());
  scheduler->offers({offer()});
  reportAll(v1::TASK_RUNNING);
  EXPECT_EQ(scheduler->deployments().size(), 1u) << "running is not ready";
  reportAll(v1::TASK_RUNNING, true);
  EXPECT_TRUE(scheduler->deployments().empty());
}

struct Strategy {
  int instances;
  double minimumHealthCapacity;
  double maximumOverCapacity;
};

class RollingRestartTest : public DeployTest {
 protected:
  void restartWith(const Strategy& strategy);
};

void RollingRestartTest::restartWith(const Strategy& strategy) {
  driver = FakeDriver();
  makeScheduler();
  App app = makeApp("/roll", strategy.instances);
  app.healthChecks = {HealthCheck{}};
  app.upgradeStrategy = {strategy.minimumHealthCapacity, strategy.maximumOverCapacity};
  ASSERT_TRUE(scheduler->deploy({app}, {}, {}, false).isOk());
  play([] {});
  ASSERT_TRUE(scheduler->deployments().empty());
  ASSERT_EQ(scheduler->counts("/roll").healthy, strategy.instances);

  App changed = app;
  changed.cmd = "sleep 2000";
  changed.version = app.version + 1h;
  changed.lastConfigChangeAt = changed.version;
  auto deployment = scheduler->deploy({changed}, {}, {}, false);
  ASSERT_TRUE(deployment.isOk());
  ASSERT_EQ(deployment->steps.size(), 1u);
  EXPECT_EQ(deployment->steps[0][0].action, "RestartApplication");

  const int minHealthy = int(std::ceil(strategy.instances * strategy.minimumHealthCapacity - 1e-9));
  int maxTotal = int(std::floor(strategy.instances * (1 + strategy.maximumOverCapacity) + 1e-9));
  if (maxTotal <= minHealthy) maxTotal = minHealthy + 1;  // the one exception, see design.md
  int lowest = strategy.instances;
  int highest = 0;
  play([&] {
    int ready = 0;
    int present = 0;
    for (const auto& task : scheduler->tasks("/roll")) {
      ++present;
      const bool isNew = task.version == changed.version;
      const bool healthy = !task.healthCheckResults.empty() && task.healthCheckResults[0].alive;
      if (task.state == "TASK_RUNNING" && (!isNew || healthy)) ++ready;
    }
    // Killed tasks stop being ready the moment they are killed (they may not serve).
    for (const auto& killed : driver.kills) {
      for (const auto& task : scheduler->tasks("/roll")) {
        if (task.id == killed && task.state == "TASK_RUNNING") --ready;
      }
    }
    lowest = std::min(lowest, ready);
    highest = std::max(highest, present);
  });
  EXPECT_TRUE(scheduler->deployments().empty()) << "the restart finishes";
  EXPECT_GE(lowest, minHealthy);
  EXPECT_LE(highest, maxTotal);
  auto tasks = scheduler->tasks("/roll");
  ASSERT_EQ(int(tasks.size()), strategy.instances);
  for (const auto& task : tasks) EXPECT_EQ(task.version, changed.version);
}

TEST_F(RollingRestartTest, KeepsTheMinimumHealthyAndTheMaximumOverCapacity) {
  for (const Strategy& strategy :
       {Strategy{3, 1.0, 1.0}, Strategy{4, 0.5, 0.25}, Strategy{4, 0.0, 0.0}, Strategy{3, 1.0, 0.0},
        Strategy{5, 0.6, 0.2}}) {
    SCOPED_TRACE(::testing::Message()
                 << strategy.instances << " instances, minimum " << strategy.minimumHealthCapacity
                 << ", over " << strategy.maximumOverCapacity);
    restartWith(strategy);
  }
}

TEST_F(DeployTest, LockedAppsNeedForceWhichCancelsTheRunningDeployment) {
  auto first = scheduler->deploy({makeApp("/l", 2)}, {}, {}, false);
  ASSERT_TRUE(first.isOk());
  auto refused = scheduler->deploy({makeApp("/l", 3)}, {}, {}, false);
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.status().code(), api::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find(first->id), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(scheduler->deployments().size(), 1u);

  auto forced = scheduler->deploy({makeApp("/l", 3)}, {}, {}, true);
  ASSERT_TRUE(forced.isOk());
  EXPECT_EQ(eventsOf("deployment_failed"), 1);
  ASSERT_EQ(scheduler->deployments().size(), 1u);
  EXPECT_EQ(scheduler->deployments()[0].id, forced->id);
  runningHealthy("/l");
  EXPECT_EQ(scheduler->counts("/l").running, 3);
  EXPECT_TRUE(scheduler->deployments().empty());
}

TEST_F(DeployTest, CancelStopsWhereItIs) {
  EXPECT_EQ(scheduler->cancel("nope").status().code(), api::StatusCode::kNotFound);
  App app = makeApp("/c", 2);
  ASSERT_TRUE(scheduler->deploy({app}, {}, {}, false).isOk());
  runningHealthy("/c");
  App changed = app;
  changed.cmd = "sleep 5";
  changed.version = app.version + 1h;
  auto restart = scheduler->deploy({changed}, {}, {}, false);
  ASSERT_TRUE(restart.isOk());
  scheduler->offers({offer()});  // two new tasks next to the two old ones (maximumOverCapacity 1)
  ASSERT_EQ(scheduler->tasks("/c").size(), 4u);
  const size_t killsBefore = driver.kills.size();
  auto cancelled = scheduler->cancel(restart->id);
  ASSERT_TRUE(cancelled.isOk());
  EXPECT_EQ(cancelled->id, restart->id);
  EXPECT_TRUE(scheduler->deployments().empty());
  EXPECT_EQ(eventsOf("deployment_failed"), 1);
  // No more replacing: only the count decides (two too many now, the staged ones go).
  ASSERT_EQ(driver.kills.size(), killsBefore + 2);
  for (const auto& task : scheduler->tasks("/c")) {
    const bool killed =
        std::find(driver.kills.begin(), driver.kills.end(), task.id) != driver.kills.end();
    EXPECT_EQ(killed, task.state == "TASK_STAGING") << task.id;
  }
}

TEST_F(DeployTest, StopKillsEveryTaskAndForgetsTheApp) {
  ASSERT_TRUE(scheduler->deploy({makeApp("/s", 2)}, {}, {}, false).isOk());
  runningHealthy("/s");
  EXPECT_EQ(scheduler->deploy({}, {"/other"}, {}, false).status().code(),
            api::StatusCode::kNotFound);
  auto stop = scheduler->deploy({}, {"/s"}, {}, false);
  ASSERT_TRUE(stop.isOk());
  ASSERT_EQ(stop->steps.size(), 1u);
  EXPECT_EQ(stop->steps[0][0].action, "StopApplication");
  EXPECT_EQ(stop->removed, std::vector<std::string>{"/s"});
  EXPECT_EQ(driver.kills.size(), 2u);
  EXPECT_EQ(scheduler->deployments().size(), 1u);
  for (const auto& id : driver.kills) scheduler->update(makeStatus(id, v1::TASK_KILLED));
  EXPECT_TRUE(scheduler->deployments().empty());
  EXPECT_TRUE(scheduler->tasks().empty());
  EXPECT_TRUE(scheduler->queue().empty());
  EXPECT_EQ(scheduler->deploy({}, {"/s"}, {}, false).status().code(), api::StatusCode::kNotFound)
      << "forgotten";
}

TEST_F(DeployTest, RestartReplacesTasksOfAnUnchangedApp) {
  App app = makeApp("/r", 1);
  ASSERT_TRUE(scheduler->deploy({app}, {}, {}, false).isOk());
  runningHealthy("/r");
  const auto old = scheduler->tasks("/r").at(0).id;
  auto restart = scheduler->deploy({}, {}, {"/r"}, false);
  ASSERT_TRUE(restart.isOk());
  EXPECT_EQ(restart->steps.at(0).at(0).action, "RestartApplication");
  play([] {});
  EXPECT_TRUE(scheduler->deployments().empty());
  ASSERT_EQ(scheduler->tasks("/r").size(), 1u);
  EXPECT_NE(scheduler->tasks("/r")[0].id, old);
}

}  // namespace
}  // namespace tessera::modules::marathon::testing
