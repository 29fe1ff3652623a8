// Task life in the Marathon engine: failed tasks are replaced with exponential backoff, scale
// down kills by killSelection, health results are kept and unhealthy kills reported, the API's
// kills (with and without scale) and the launch queue.

#include <gtest/gtest.h>

#include "tests/modules/framework_marathon/sched_fakes.h"

namespace tessera::modules::marathon::testing {
namespace {

using namespace std::chrono_literals;
using TasksTest = SchedulerHarness;

TEST_F(TasksTest, FailedTaskIsReplacedAfterAnExponentialBackoff) {
  App app = makeApp("/flaky", 1);
  app.backoffSeconds = 2;
  app.backoffFactor = 3;
  app.maxLaunchDelaySeconds = 10;
  ASSERT_TRUE(scheduler->deploy({app}, {}, {}, false).isOk());
  scheduler->offers({offer()});
  ASSERT_EQ(driver.launched().size(), 1u);

  auto failLast = [&] {
    const auto id = driver.launched().back().task_id().value();
    scheduler->update(makeStatus(id, v1::TASK_RUNNING));
    scheduler->update(makeStatus(id, v1::TASK_FAILED, "a1", std::nullopt, "exited with 1"));
  };
  // Delays 2s, 6s, then capped at 10s.
  for (auto delay : {2000ms, 6000ms, 10000ms}) {
    failLast();
    EXPECT_TRUE(scheduler->tasks("/flaky").empty());
    ASSERT_EQ(scheduler->queue().size(), 1u);
    EXPECT_EQ(scheduler->queue()[0].delaySecondsLeft, int(delay.count() / 1000));
    const size_t before = driver.launched().size();
    advance(delay - 100ms);
    scheduler->offers({offer()});
    EXPECT_EQ(driver.launched().size(), before) << "still backing off after " << delay.count();
    advance(200ms);
    scheduler->offers({offer()});
    EXPECT_EQ(driver.launched().size(), before + 1) << "launched after " << delay.count();
  }
  // The delay timer exists to ask for offers again when it ends.
  EXPECT_FALSE(context.fakeExecutor.timers.empty());
}

TEST_F(TasksTest, BackoffResetsOnceATaskStaysUpAndOnDemand) {
  App app = makeApp("/flaky", 1);
  app.backoffSeconds = 5;
  app.backoffFactor = 2;
  ASSERT_TRUE(scheduler->deploy({app}, {}, {}, false).isOk());
  scheduler->offers({offer()});
  for (int i = 0; i < 3; ++i) {
    const auto id = driver.launched().back().task_id().value();
    scheduler->update(makeStatus(id, v1::TASK_FAILED));
    advance(60s);
    scheduler->offers({offer()});
  }
  // Three failures: the next delay would be 5 * 2^3 = 40s. A task that runs long enough resets.
  const auto id = driver.launched().back().task_id().value();
  scheduler->update(makeStatus(id, v1::TASK_RUNNING));
  advance(31s);
  scheduler->offers({offer()});  // the engine notices the task has been up long enough
  scheduler->update(makeStatus(id, v1::TASK_FAILED));
  ASSERT_EQ(scheduler->queue().size(), 1u);
  EXPECT_EQ(scheduler->queue()[0].delaySecondsLeft, 5);

  // DELETE /v2/queue/{id}/delay: launches at once.
  EXPECT_TRUE(scheduler->resetDelay("/flaky"));
  const size_t before = driver.launched().size();
  scheduler->offers({offer()});
  EXPECT_EQ(driver.launched().size(), before + 1);
  EXPECT_FALSE(scheduler->resetDelay("/flaky")) << "nothing is queued any more";
  EXPECT_FALSE(scheduler->resetDelay("/unknown"));
}

TEST_F(TasksTest, EveryTerminalStateIsReplaced) {
  ASSERT_TRUE(scheduler->deploy({makeApp("/a", 1)}, {}, {}, false).isOk());
  scheduler->offers({offer()});
  for (auto state : {v1::TASK_FAILED, v1::TASK_KILLED, v1::TASK_LOST, v1::TASK_ERROR, v1::TASK_GONE,
                     v1::TASK_DROPPED, v1::TASK_FINISHED}) {
    const auto id = driver.launched().back().task_id().value();
    const size_t before = driver.launched().size();
    scheduler->update(makeStatus(id, state));
    EXPECT_TRUE(scheduler->resetDelay("/a")) << v1::TaskState_Name(state);
    scheduler->offers({offer()});
    EXPECT_EQ(driver.launched().size(), before + 1) << v1::TaskState_Name(state);
  }
}

TEST_F(TasksTest, ScaleDownKillsTheYoungestFirstOrTheOldest) {
  for (std::string selection : {"YOUNGEST_FIRST", "OLDEST_FIRST"}) {
    driver = FakeDriver();
    makeScheduler();
    App app = makeApp("/s", 3);
    app.killSelection = selection;
    ASSERT_TRUE(scheduler->deploy({app}, {}, {}, false).isOk());
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
      advance(1s);
      scheduler->offers({offer("cpus:0.1;mem:16;ports:[31000-31000]")});
      ids.push_back(driver.launched().back().task_id().value());
      scheduler->update(makeStatus(ids.back(), v1::TASK_RUNNING));
    }
    app.instances = 2;
    auto deployment = scheduler->deploy({app}, {}, {}, false);
    ASSERT_TRUE(deployment.isOk());
    ASSERT_EQ(deployment->steps.size(), 1u);
    EXPECT_EQ(deployment->steps[0][0].action, "ScaleApplication");
    ASSERT_EQ(driver.kills.size(), 1u) << selection;
    EXPECT_EQ(driver.kills[0], selection == "YOUNGEST_FIRST" ? ids[2] : ids[0]) << selection;
    EXPECT_EQ(scheduler->deployments().size(), 1u) << "done once the task has ended";
    scheduler->update(makeStatus(driver.kills[0], v1::TASK_KILLED));
    EXPECT_TRUE(scheduler->deployments().empty());
    EXPECT_TRUE(scheduler->queue().empty()) << "a task killed for scaling is not replaced";
    EXPECT_EQ(scheduler->counts("/s").running, 2);
  }
}

TEST_F(TasksTest, HealthResultsCountsAndUnhealthyKills) {
  App app = makeApp("/h", 1);
  app.healthChecks = {HealthCheck{}};
  ASSERT_TRUE(scheduler->deploy({app}, {}, {}, false).isOk());
  scheduler->offers({offer()});
  const auto id = driver.launched().back().task_id().value();
  scheduler->update(makeStatus(id, v1::TASK_RUNNING));
  EXPECT_EQ(scheduler->counts("/h").healthy, 0);
  scheduler->update(makeStatus(id, v1::TASK_RUNNING, "a1", true));
  auto counts = scheduler->counts("/h");
  EXPECT_EQ(counts.healthy, 1);
  EXPECT_EQ(counts.unhealthy, 0);
  auto task = scheduler->tasks("/h").at(0);
  ASSERT_EQ(task.healthCheckResults.size(), 1u);
  EXPECT_TRUE(task.healthCheckResults[0].alive);
  EXPECT_TRUE(task.healthCheckResults[0].firstSuccess);
  EXPECT_EQ(eventsOf("health_status_changed_event"), 1);

  scheduler->update(makeStatus(id, v1::TASK_RUNNING, "a1", false, "HTTP 500"));
  counts = scheduler->counts("/h");
  EXPECT_EQ(counts.healthy, 0);
  EXPECT_EQ(counts.unhealthy, 1);
  task = scheduler->tasks("/h").at(0);
  EXPECT_FALSE(task.healthCheckResults[0].alive);
  EXPECT_EQ(task.healthCheckResults[0].consecutiveFailures, 1);
  EXPECT_EQ(task.healthCheckResults[0].lastFailureCause, "HTTP 500");
  EXPECT_EQ(eventsOf("failed_health_check_event"), 1);

  // The agent kills the task after maxConsecutiveFailures: reported, and replaced.
  scheduler->update(makeStatus(id, v1::TASK_KILLED, "a1", false,
                               "the task was killed because its health check failed"));
  EXPECT_EQ(eventsOf("unhealthy_task_kill_event"), 1);
  const std::string kill = lastEventOf("unhealthy_task_kill_event");
  EXPECT_NE(kill.find("\"taskId\":\"" + id + "\""), std::string::npos) << kill;
  EXPECT_NE(kill.find("\"appId\":\"/h\""), std::string::npos) << kill;
  ASSERT_EQ(scheduler->queue().size(), 1u);
  EXPECT_EQ(scheduler->queue()[0].count, 1);
}

TEST_F(TasksTest, KillTasksReplacesOrScales) {
  ASSERT_TRUE(scheduler->deploy({makeApp("/k", 3)}, {}, {}, false).isOk());
  scheduler->offers({offer()});
  reportAll(v1::TASK_RUNNING);
  auto ids = scheduler->tasks("/k");
  ASSERT_EQ(ids.size(), 3u);

  EXPECT_EQ(scheduler->killTasks({"k.nope"}, false, false).status().code(),
            api::StatusCode::kNotFound);
  EXPECT_TRUE(driver.kills.empty()) << "nothing is killed when one id is unknown";

  // Without scale: killed and replaced (without backoff).
  auto killed = scheduler->killTasks({ids[0].id}, false, false);
  ASSERT_TRUE(killed.isOk());
  EXPECT_TRUE(killed->empty());
  EXPECT_EQ(driver.kills, std::vector<std::string>{ids[0].id});
  scheduler->update(makeStatus(ids[0].id, v1::TASK_KILLED));
  ASSERT_EQ(scheduler->queue().size(), 1u);
  EXPECT_EQ(scheduler->queue()[0].delaySecondsLeft, 0);
  scheduler->offers({offer()});
  reportAll(v1::TASK_RUNNING);
  EXPECT_EQ(scheduler->counts("/k").running, 3);

  // With scale: the app shrinks and the changed app is returned for the store.
  auto scaled = scheduler->killTasks({ids[1].id, ids[2].id}, true, false);
  ASSERT_TRUE(scaled.isOk());
  ASSERT_EQ(scaled->size(), 1u);
  EXPECT_EQ(scaled->at(0).instances, 1);
  EXPECT_EQ(scaled->at(0).version, now);
  scheduler->update(makeStatus(ids[1].id, v1::TASK_KILLED));
  scheduler->update(makeStatus(ids[2].id, v1::TASK_KILLED));
  EXPECT_TRUE(scheduler->queue().empty());
  EXPECT_EQ(scheduler->counts("/k").running, 1);

  // wipe forgets the task at once.
  auto last = scheduler->tasks("/k").at(0).id;
  ASSERT_TRUE(scheduler->killTasks({last}, false, true).isOk());
  EXPECT_TRUE(scheduler->tasks("/k").empty());
  EXPECT_EQ(scheduler->queue().size(), 1u);
}

TEST_F(TasksTest, UnreachableTasksAreReplacedAndTheExcessKilledWhenTheyReturn) {
  ASSERT_TRUE(scheduler->deploy({makeApp("/u", 1)}, {}, {}, false).isOk());
  scheduler->offers({offer()});
  const auto first = driver.launched().back().task_id().value();
  scheduler->update(makeStatus(first, v1::TASK_RUNNING));
  scheduler->update(makeStatus(first, v1::TASK_UNREACHABLE));
  advance(1s);
  scheduler->offers({offer("cpus:1;mem:100;ports:[31000-31010]", "a2", "host2")});
  ASSERT_EQ(driver.launched().size(), 2u);
  const auto second = driver.launched().back().task_id().value();
  scheduler->update(makeStatus(second, v1::TASK_RUNNING, "a2"));
  // The first agent comes back: one task too many, the youngest goes.
  scheduler->update(makeStatus(first, v1::TASK_RUNNING));
  ASSERT_EQ(driver.kills.size(), 1u);
  EXPECT_EQ(driver.kills[0], second);
}

TEST_F(TasksTest, TheLastTaskFailureIsKeptPerAppButNotForKills) {
  ASSERT_TRUE(scheduler->deploy({makeApp("/flaky", 2)}, {}, {}, false).isOk());
  scheduler->offers({offer()});
  ASSERT_EQ(driver.launched().size(), 2u);
  EXPECT_FALSE(scheduler->lastTaskFailure("/flaky"));
  const auto first = driver.launched()[0].task_id().value();
  const auto second = driver.launched()[1].task_id().value();
  scheduler->update(makeStatus(first, v1::TASK_RUNNING));
  scheduler->update(makeStatus(first, v1::TASK_FAILED, "a1", std::nullopt, "exited with 3"));
  auto failure = scheduler->lastTaskFailure("/flaky");
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->taskId, first);
  EXPECT_EQ(failure->state, "TASK_FAILED");
  EXPECT_EQ(failure->message, "exited with 3");
  EXPECT_EQ(failure->appId, "/flaky");
  // A kill the API asked for is no failure.
  ASSERT_TRUE(scheduler->killTasks({second}, false, false).isOk());
  scheduler->update(makeStatus(second, v1::TASK_KILLED));
  EXPECT_EQ(scheduler->lastTaskFailure("/flaky")->taskId, first);
}

}  // namespace
}  // namespace tessera::modules::marathon::testing
