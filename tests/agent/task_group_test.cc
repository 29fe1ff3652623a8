// Task groups on the agent (RunTaskGroup): the tasks run as nested containers of one executor
// container, each with its own sandbox under the executor's and its own updates, and the default
// executor's policy kills the others when one fails or is killed.

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <signal.h>

#include <fstream>
#include <future>

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

  // The pid a task wrote to its sandbox's `pid` file.
  pid_t taskPid(const std::string& taskId) {
    pid_t pid = 0;
    testing::waitFor(
        [&] {
          std::ifstream in(executorSandbox() / "tasks" / taskId / "pid");
          return static_cast<bool>(in >> pid) && pid > 0;
        },
        fixture::kDeadline);
    return pid;
  }
};

// Running: not gone and not a zombie (the test process may be the parent of what the agent
// launched, and a crashed agent's containerizer reaps nothing).
bool alive(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat;
  std::getline(in, stat);
  const auto end = stat.rfind(')');
  return pid > 0 && end != std::string::npos && end + 2 < stat.size() && stat[end + 2] != 'Z';
}

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

// Mesos recovers a checkpointed default executor with its tasks: after a crash of the agent, the
// group's tasks keep running in their executor container and the default executor's policy
// still holds for them.
TEST_F(TaskGroupTest, AGroupSurvivesAnAgentCrashAndItsPolicyStillHolds) {
  start();
  runGroup({{"p", "echo $$ > pid; exec sleep 60"}, {"q", "echo $$ > pid; exec sleep 60"}});
  ASSERT_TRUE(master_->waitForState("p", v1::TASK_RUNNING));
  ASSERT_TRUE(master_->waitForState("q", v1::TASK_RUNNING));
  const pid_t p = taskPid("p");
  const pid_t q = taskPid("q");
  ASSERT_TRUE(alive(p) && alive(q));
  const size_t running = containers().size();
  EXPECT_EQ(running, 3u);  // the executor's and one per task

  crashAgent();
  ASSERT_TRUE(startAgent().isOk());
  ASSERT_TRUE(master_->waitForRegistrations(2));
  // Re-adopted, not killed as orphans: the executor container and both tasks.
  EXPECT_EQ(containers().size(), running);
  EXPECT_TRUE(alive(p) && alive(q));
  EXPECT_EQ(master_->states("p").back(), v1::TASK_RUNNING);

  // One task killed: the recovered group kills the other, then its executor container ends.
  master_->killTask("p");
  EXPECT_TRUE(master_->waitForState("p", v1::TASK_KILLED));
  auto killed = master_->waitForState("q", v1::TASK_KILLED);
  ASSERT_TRUE(killed);
  EXPECT_EQ(killed->status().executor_id().value(), "exec");
  EXPECT_TRUE(testing::waitFor([&] { return containers().empty(); }, fixture::kDeadline));
}

// A task that failed while the agent was down is reported, and the policy kills the others.
TEST_F(TaskGroupTest, ATaskThatFailedWhileTheAgentWasDownKillsTheOthers) {
  start();
  runGroup({{"stay", "exec sleep 60"}, {"fail", "while [ ! -e go ]; do sleep 0.1; done; exit 4"}});
  ASSERT_TRUE(master_->waitForState("stay", v1::TASK_RUNNING));
  ASSERT_TRUE(master_->waitForState("fail", v1::TASK_RUNNING));
  const fs::path go = executorSandbox() / "tasks" / "fail" / "go";
  crashAgent();
  std::ofstream(go) << "now";
  ASSERT_TRUE(startAgent().isOk());
  auto failed = master_->waitForState("fail", v1::TASK_FAILED);
  ASSERT_TRUE(failed);
  EXPECT_TRUE(master_->waitForState("stay", v1::TASK_KILLED));
  EXPECT_TRUE(testing::waitFor([&] { return containers().empty(); }, fixture::kDeadline));
}

// The executor container gone while the agent was down: Mesos fails a terminated executor's
// tasks with REASON_EXECUTOR_TERMINATED; nothing of the group is left running.
TEST_F(TaskGroupTest, TasksOfAnExecutorThatEndedWhileTheAgentWasDownFail) {
  start();
  runGroup({{"u", "echo $$ > pid; exec sleep 60"}, {"v", "exec sleep 60"}});
  ASSERT_TRUE(master_->waitForState("u", v1::TASK_RUNNING));
  ASSERT_TRUE(master_->waitForState("v", v1::TASK_RUNNING));
  const pid_t u = taskPid("u");
  crashAgent();
  // The executor container's main process, as its checkpoint names it.
  auto executor = runtime_.makeExecutor();
  std::promise<api::Result<std::optional<api::StateEntry>>> read;
  store_->get("/agent/groups/fw-1/exec/container", *executor,
              [&read](auto result) { read.set_value(std::move(result)); });
  auto entry = read.get_future().get();
  executor->drain();
  ASSERT_TRUE(entry && entry->has_value());
  auto checkpoint = Poco::JSON::Parser().parse((*entry)->value).extract<Poco::JSON::Object::Ptr>();
  const auto pid = static_cast<pid_t>(checkpoint->getValue<int64_t>("pid"));
  ASSERT_TRUE(alive(pid));
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_TRUE(testing::waitFor([&] { return !alive(pid); }, fixture::kDeadline));
  ASSERT_TRUE(startAgent().isOk());
  for (const char* id : {"u", "v"}) {
    auto failed = master_->waitForState(id, v1::TASK_FAILED);
    ASSERT_TRUE(failed) << id;
    EXPECT_EQ(failed->status().reason(), v1::TaskStatus::REASON_EXECUTOR_TERMINATED) << id;
    EXPECT_NE(failed->status().message().find("executor 'exec'"), std::string::npos)
        << failed->status().message();
  }
  EXPECT_TRUE(testing::waitFor([&] { return !alive(u); }, fixture::kDeadline));
  EXPECT_TRUE(testing::waitFor([&] { return containers().empty(); }, fixture::kDeadline));
}

// Mesos's default executor takes a framework's MESSAGE and ignores it: a message to a running
// group's executor is delivered (valid), one to an executor the agent does not run is not.
TEST_F(TaskGroupTest, AFrameworkMessageToAGroupsExecutorIsDeliveredAndIgnored) {
  start();
  runGroup({{"m", "exec sleep 60"}});
  ASSERT_TRUE(master_->waitForState("m", v1::TASK_RUNNING));
  for (const char* executor : {"exec", "nobody"}) {
    internal::Envelope envelope;
    auto* message = envelope.mutable_framework_to_executor();
    message->mutable_agent_id()->set_value(agent_->id());
    message->mutable_framework_id()->set_value("fw-1");
    message->mutable_executor_id()->set_value(executor);
    message->set_data("hello");
    master_->send(envelope);
  }
  std::map<std::string, double> snapshot;
  ASSERT_TRUE(testing::waitFor(
      [&] {
        snapshot = metrics_->snapshotAndWait(5s).flat();
        return snapshot["slave/valid_framework_messages"] +
                   snapshot["slave/invalid_framework_messages"] >=
               2;
      },
      fixture::kDeadline));
  EXPECT_EQ(snapshot["slave/valid_framework_messages"], 1);
  EXPECT_EQ(snapshot["slave/invalid_framework_messages"], 1);
  EXPECT_EQ(master_->states("m").back(), v1::TASK_RUNNING);
  master_->killTask("m");
  EXPECT_TRUE(master_->waitForState("m", v1::TASK_KILLED));
}

}  // namespace
}  // namespace tessera::kernel::agent
