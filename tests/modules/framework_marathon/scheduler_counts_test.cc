// The engine keeps each app's task counts incrementally: after any sequence of launches, status
// updates, health results, kills and scale changes, counts() equals a recount of tasks().

#include <gtest/gtest.h>

#include <random>

#include "tests/modules/framework_marathon/sched_fakes.h"

namespace tessera::modules::marathon::testing {
namespace {

using CountsTest = SchedulerHarness;

AppCounts recount(const std::vector<Task>& tasks, bool checked) {
  AppCounts counts;
  for (const auto& task : tasks) {
    const bool running = task.state == "TASK_RUNNING";
    if (task.state == "TASK_STAGING" || task.state == "TASK_STARTING") ++counts.staged;
    if (running) ++counts.running;
    if (!checked || task.healthCheckResults.empty()) continue;
    if (running && task.healthCheckResults.front().alive) ++counts.healthy;
    if (!task.healthCheckResults.front().alive) ++counts.unhealthy;
  }
  return counts;
}

TEST_F(CountsTest, CountsEqualARecountAfterRandomUpdates) {
  App app = makeApp("/web", 20);
  app.healthChecks = {HealthCheck{}};
  app.backoffSeconds = 0;
  ASSERT_TRUE(scheduler->deploy({app}, {}, {}, false).isOk());
  std::mt19937 random(1234);
  const std::vector<v1::TaskState> states = {
      v1::TASK_STARTING, v1::TASK_RUNNING, v1::TASK_RUNNING,     v1::TASK_RUNNING,
      v1::TASK_FAILED,   v1::TASK_KILLED,  v1::TASK_UNREACHABLE, v1::TASK_LOST};
  int checks = 0;
  for (int step = 0; step < 400; ++step) {
    advance(std::chrono::milliseconds(100));
    const int action = int(random() % 10);
    auto tasks = scheduler->tasks("/web");
    if (action == 0) {
      scheduler->offers({offer("cpus:8;mem:8192;disk:1000;ports:[31000-31999]")});
    } else if (action == 1 && !tasks.empty()) {
      const auto& task = tasks[random() % tasks.size()];
      ASSERT_TRUE(scheduler->killTasks({task.id}, random() % 2 == 0, false).isOk());
    } else if (action == 2) {
      App scaled = app;
      scaled.instances = int(random() % 30);
      scaled.version = now;
      ASSERT_TRUE(scheduler->deploy({scaled}, {}, {}, true).isOk());
      app = scaled;
    } else if (!tasks.empty()) {
      const auto& task = tasks[random() % tasks.size()];
      const v1::TaskState state = states[random() % states.size()];
      std::optional<bool> healthy;
      if (random() % 2 == 0) healthy = random() % 3 != 0;
      scheduler->update(makeStatus(task.id, state, task.agentId, healthy));
    }
    const AppCounts counts = scheduler->counts("/web");
    const AppCounts expected = recount(scheduler->tasks("/web"), true);
    ASSERT_EQ(counts.staged, expected.staged) << "step " << step;
    ASSERT_EQ(counts.running, expected.running) << "step " << step;
    ASSERT_EQ(counts.healthy, expected.healthy) << "step " << step;
    ASSERT_EQ(counts.unhealthy, expected.unhealthy) << "step " << step;
    ++checks;
  }
  EXPECT_EQ(checks, 400);
  // Something happened: tasks were launched and some reached RUNNING at some point.
  EXPECT_GT(driver.launched().size(), 20u);
}

}  // namespace
}  // namespace tessera::modules::marathon::testing
