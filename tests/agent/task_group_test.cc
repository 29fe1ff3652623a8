// Task groups on the agent (RunTaskGroup): the tasks run as nested containers of one executor
// container, each with its own sandbox under the executor's and its own updates, and the default
// executor's policy kills the others when one fails or is killed.

#include <fstream>

#include "tests/agent/agent_fixture.h"

namespace tessera::kernel::agent {
namespace {

using namespace std::chrono_literals;
using fixture::AgentFixture;
namespace fs = std::filesystem;

class TaskGroupTest : public AgentFixture {
 protected:
  void start() {
    ASSERT_TRUE(startAgent().isOk());
    ASSERT_TRUE(master_->waitForRegistrations(1));
    ASSERT_TRUE(waitForRegistered());
  }

  // Sends a RunTaskGroup of executor 'exec' with one task per (id, command).
  void runGroup(const std::vector<std::pair<std::string, std::string>>& tasks) {
    internal::Envelope envelope;
    auto* run = envelope.mutable_run_task_group();
    run->mutable_framework()->mutable_id()->set_value("fw-1");
    run->mutable_framework()->set_name("test-framework");
    run->mutable_executor()->set_type(v1::ExecutorInfo::DEFAULT);
    run->mutable_executor()->mutable_executor_id()->set_value("exec");
    run->mutable_executor()->mutable_framework_id()->set_value("fw-1");
    for (const auto& [id, command] : tasks) {
      auto* task = run->add_tasks();
      task->set_name(id);
      task->mutable_task_id()->set_value(id);
      task->mutable_command()->set_value(command);
      auto* cpus = task->add_resources();
      cpus->set_name("cpus");
      cpus->set_type(v1::Value::SCALAR);
      cpus->mutable_scalar()->set_value(0.1);
    }
    run->set_role("*");
    master_->send(envelope);
  }

  fs::path executorSandbox() { return sandboxOf("exec"); }
};

TEST_F(TaskGroupTest, ThreeTasksRunTogetherEachInItsOwnSandboxAndFinish) {
  start();
  runGroup({{"a", "echo a > out; exit 0"}, {"b", "echo b > out; exit 0"}, {"c", "exit 0"}});
  for (const char* id : {"a", "b", "c"}) {
    auto finished = master_->waitForState(id, v1::TASK_FINISHED);
    ASSERT_TRUE(finished) << id;
    EXPECT_EQ(finished->status().executor_id().value(), "exec");
    EXPECT_EQ(master_->states(id),
              (std::vector<v1::TaskState>{v1::TASK_STARTING, v1::TASK_RUNNING, v1::TASK_FINISHED}))
        << id;
  }
  // Mesos's layout: <executor sandbox>/tasks/<task id>, each task's files in its own.
  fs::path sandbox = executorSandbox();
  ASSERT_FALSE(sandbox.empty());
  for (const char* id : {"a", "b"}) {
    std::ifstream in(sandbox / "tasks" / id / "out");
    std::string text;
    std::getline(in, text);
    EXPECT_EQ(text, id);
  }
  EXPECT_TRUE(fs::is_directory(sandbox / "tasks" / "c"));
  // Every task ended: so does the executor container.
  EXPECT_TRUE(testing::waitFor([&] { return containers().empty(); }, fixture::kDeadline));
}

TEST_F(TaskGroupTest, AFailingTaskKillsTheOthers) {
  start();
  runGroup({{"ok1", "sleep 60"}, {"bad", "sleep 0.5; exit 3"}, {"ok2", "sleep 60"}});
  auto failed = master_->waitForState("bad", v1::TASK_FAILED);
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->status().message(), "Command exited with status 3");
  for (const char* id : {"ok1", "ok2"}) {
    auto killed = master_->waitForState(id, v1::TASK_KILLED);
    ASSERT_TRUE(killed) << id;
    EXPECT_EQ(master_->states(id).front(), v1::TASK_STARTING);
  }
  EXPECT_TRUE(testing::waitFor([&] { return containers().empty(); }, fixture::kDeadline));
}

TEST_F(TaskGroupTest, KillingOneTaskKillsTheWholeGroup) {
  start();
  runGroup({{"x", "sleep 60"}, {"y", "sleep 60"}});
  ASSERT_TRUE(master_->waitForState("x", v1::TASK_RUNNING));
  ASSERT_TRUE(master_->waitForState("y", v1::TASK_RUNNING));
  master_->killTask("x");
  EXPECT_TRUE(master_->waitForState("x", v1::TASK_KILLED));
  EXPECT_TRUE(master_->waitForState("y", v1::TASK_KILLED));
  EXPECT_TRUE(testing::waitFor([&] { return containers().empty(); }, fixture::kDeadline));
}

TEST_F(TaskGroupTest, ADockerTaskInAGroupIsRefusedWithTaskError) {
  start();
  internal::Envelope envelope;
  auto* run = envelope.mutable_run_task_group();
  run->mutable_framework()->mutable_id()->set_value("fw-1");
  run->mutable_executor()->set_type(v1::ExecutorInfo::DEFAULT);
  run->mutable_executor()->mutable_executor_id()->set_value("exec");
  auto* task = run->add_tasks();
  task->mutable_task_id()->set_value("d");
  task->mutable_command()->set_value("true");
  task->mutable_container()->set_type(v1::ContainerInfo::DOCKER);
  master_->send(envelope);
  auto error = master_->waitForState("d", v1::TASK_ERROR);
  ASSERT_TRUE(error);
  EXPECT_NE(error->status().message().find("Docker containerizer does not support task groups"),
            std::string::npos)
      << error->status().message();
}

}  // namespace
}  // namespace tessera::kernel::agent
