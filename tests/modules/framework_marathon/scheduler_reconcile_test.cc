// Reconciliation in the Marathon engine: after subscribing it asks the master for every task,
// adopts those of known apps, kills strays, and launches nothing until the answers are in, so a
// new leader neither loses nor duplicates instances.

#include <gtest/gtest.h>

#include "modules/framework_marathon/sched_task_builder.h"
#include "tests/modules/framework_marathon/sched_fakes.h"

namespace tessera::modules::marathon::testing {
namespace {

using ReconcileTest = SchedulerHarness;

TEST_F(ReconcileTest, NewLeaderAdoptsItsPredecessorsTasksWithoutDuplicates) {
  // A new leader: it knows the apps (from the store), not the tasks.
  driver = FakeDriver();
  makeScheduler({makeApp("/web", 2), makeApp("/db", 1)}, /*settle=*/false);
  ASSERT_EQ(driver.reconciles, std::vector<size_t>{0}) << "one implicit reconciliation";

  // Offers before the answers are in: declined, nothing launched.
  scheduler->offers({offer()});
  EXPECT_TRUE(driver.launched().empty());
  EXPECT_EQ(driver.declines.size(), 1u);

  const std::string web1 = newTaskId("/web");
  const std::string web2 = newTaskId("/web");
  const std::string stray = newTaskId("/gone");
  scheduler->update(makeStatus(web1, v1::TASK_RUNNING, "a1"));
  scheduler->update(makeStatus(web2, v1::TASK_STAGING, "a2"));
  scheduler->update(makeStatus(stray, v1::TASK_RUNNING, "a1"));
  scheduler->update(makeStatus("not-marathons", v1::TASK_RUNNING, "a1"));
  scheduler->update(makeStatus(newTaskId("/web"), v1::TASK_FINISHED, "a1"));  // long gone
  EXPECT_EQ(driver.acks.size(), 5u);
  EXPECT_EQ(driver.kills, (std::vector<std::string>{stray, "not-marathons"}));
  EXPECT_EQ(scheduler->tasks("/web").size(), 2u);
  EXPECT_EQ(scheduler->counts("/web").running, 1);
  EXPECT_EQ(scheduler->counts("/web").staged, 1);

  // Reconciliation over: only /db needs a task.
  context.fakeExecutor.fireTimers();
  scheduler->offers({offer()});
  auto launched = driver.launched();
  ASSERT_EQ(launched.size(), 1u);
  EXPECT_EQ(appIdOfTask(launched[0].task_id().value()), "/db");
  EXPECT_EQ(scheduler->tasks().size(), 3u);
}

TEST_F(ReconcileTest, TooManyAdoptedTasksAreScaledDownOnlyAfterReconciliation) {
  driver = FakeDriver();
  makeScheduler({makeApp("/web", 1)}, /*settle=*/false);
  const std::string a = newTaskId("/web");
  const std::string b = newTaskId("/web");
  scheduler->update(makeStatus(a, v1::TASK_RUNNING));
  scheduler->update(makeStatus(b, v1::TASK_RUNNING));
  EXPECT_TRUE(driver.kills.empty()) << "the engine may not know every task yet";
  context.fakeExecutor.fireTimers();
  EXPECT_EQ(driver.kills.size(), 1u);
}

TEST_F(ReconcileTest, ResubscribingAsksForKnownTasksExplicitlyAndForgetsLostOnes) {
  ASSERT_TRUE(scheduler->deploy({makeApp("/a", 2)}, {}, {}, false).isOk());
  scheduler->offers({offer()});
  reportAll(v1::TASK_RUNNING);
  ASSERT_EQ(scheduler->tasks("/a").size(), 2u);
  const auto lost = scheduler->tasks("/a")[0].id;

  scheduler->disconnected();
  v1::FrameworkID id;
  id.set_value("fw");
  driver.reconciles.clear();
  scheduler->subscribed(id);
  EXPECT_EQ(driver.reconciles, (std::vector<size_t>{2, 0})) << "explicit, then implicit";
  // The master no longer knows one task.
  scheduler->update(makeStatus(lost, v1::TASK_LOST));
  context.fakeExecutor.fireTimers();
  EXPECT_EQ(scheduler->tasks("/a").size(), 1u);
  EXPECT_TRUE(scheduler->resetDelay("/a"));
  scheduler->offers({offer()});
  EXPECT_EQ(driver.launched().size(), 3u);
}

}  // namespace
}  // namespace tessera::modules::marathon::testing
