// Task groups end to end: `tessera execute --task_group` against a real master and agent. The
// group survives an agent killed with SIGKILL; its tasks share one set of cgroups limited to the
// sum of their resources (real cgroups, v1 or v2); the Docker containerizer refuses a group with
// a clear message. Tests that need cgroups or Docker skip without them (fail when CI=true).

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <set>
#include <sstream>

#include "tests/support/docker.h"
#include "tests/system/agent_system_fixture.h"

namespace tessera::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

const fs::path kHierarchy = "/sys/fs/cgroup";

bool unified() { return fs::exists(kHierarchy / "cgroup.controllers"); }

std::string readText(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A TaskGroupInfo of `tasks` (each a TaskInfo as JSON).
std::string groupJson(const std::vector<std::string>& tasks) {
  std::string json = R"({"tasks":[)";
  for (size_t i = 0; i < tasks.size(); ++i) json += (i ? "," : "") + tasks[i];
  return json + "]}";
}

class TaskGroupSystemTest : public AgentSystemFixture {
 protected:
  // A task that writes its pid to <dir>/<id>.pid, then runs until <dir>/<id>.stop appears and
  // exits with the status written in it.
  std::string waitingTask(const std::string& id) {
    const fs::path pid = dir_.path() / (id + ".pid");
    const fs::path stop = dir_.path() / (id + ".stop");
    return taskJson(id,
                    fmt::format("echo $$ > {0}; while [ ! -e {1} ]; do sleep 0.1; done; "
                                "exit $(cat {1})",
                                pid.string(), stop.string()),
                    0.1, 32);
  }

  void stop(const std::string& id, int status) {
    std::ofstream(dir_.path() / (id + ".stop")) << status;
  }
};

// Mesos recovers a checkpointed default executor: after the agent is SIGKILLed and restarted on
// the same work dir, the group's tasks still run, and the default executor's policy still holds
// (one task failing kills the other).
TEST_F(TaskGroupSystemTest, AGroupSurvivesAnAgentKilledWithSigkill) {
  startMaster();
  startAgent();
  execute({"--task_group=" + groupJson({waitingTask("first"), waitingTask("second")})});
  ASSERT_TRUE(waitForState("first", "TASK_RUNNING")) << run_->out() << run_->err();
  ASSERT_TRUE(waitForState("second", "TASK_RUNNING")) << run_->out() << run_->err();
  const pid_t first = pidIn(dir_.path() / "first.pid");
  const pid_t second = pidIn(dir_.path() / "second.pid");
  ASSERT_TRUE(processAlive(first) && processAlive(second));

  killAgent();
  EXPECT_TRUE(processAlive(first) && processAlive(second)) << "the tasks died with the agent";
  startAgent();
  // Recovered, not killed as orphans: both still run, and the master still has them running.
  EXPECT_TRUE(processAlive(first) && processAlive(second));
  EXPECT_EQ(taskState(masterPort_, "first"), "TASK_RUNNING");
  EXPECT_EQ(taskState(masterPort_, "second"), "TASK_RUNNING");
  EXPECT_THAT(run_->out(), ::testing::Not(HasSubstr("TASK_KILLED")));

  stop("first", 3);
  ASSERT_TRUE(run_->wait(60s)) << run_->out() << run_->err();
  EXPECT_THAT(run_->out(), HasSubstr("Received status update TASK_FAILED for task 'first'"));
  EXPECT_THAT(run_->out(), HasSubstr("Received status update TASK_KILLED for task 'second'"));
  EXPECT_NE(run_->exitCode(), 0);
  EXPECT_TRUE(waitFor([&] { return !processAlive(second); }, 30s));
}

// The Docker containerizer cannot nest containers: a group with a Docker task is refused with
// TASK_ERROR naming the reason, and on an agent whose only containerizer is Docker, a group of
// native tasks fails naming the Docker containerizer; nothing runs either way.
class DockerTaskGroupSystemTest : public TaskGroupSystemTest {
 protected:
  void SetUp() override { TESSERA_REQUIRE_DOCKER(); }
};

TEST_F(DockerTaskGroupSystemTest, AGroupWithADockerTaskIsRefusedWithTaskError) {
  startMaster();
  startAgent({"--containerizers=docker,mesos"});
  const std::string docker =
      R"("container":{"type":"DOCKER","docker":{"image":"busybox","network":"HOST"}})";
  execute({"--task_group=" + groupJson({taskJson("plain", "sleep 30", 0.1, 32),
                                        taskJson("boxed", "sleep 30", 0.1, 32, docker)})});
  ASSERT_TRUE(run_->wait(60s)) << run_->out() << run_->err();
  EXPECT_NE(run_->exitCode(), 0);
  for (const char* id : {"plain", "boxed"}) {
    EXPECT_THAT(run_->out(), HasSubstr(fmt::format("TASK_ERROR for task '{}'", id)));
  }
  EXPECT_THAT(run_->out(), HasSubstr("a DOCKER container is not supported in a task group"));
  EXPECT_THAT(run_->out(), HasSubstr("(reason: REASON_TASK_GROUP_INVALID)"));
  EXPECT_THAT(run_->out(), ::testing::Not(HasSubstr("TASK_RUNNING")));
}

TEST_F(DockerTaskGroupSystemTest, AnAgentWithOnlyDockerFailsAGroupNamingDocker) {
  startMaster();
  startAgent({"--containerizers=docker"});
  execute({"--task_group=" + groupJson({taskJson("lonely", "sleep 30", 0.1, 32)})});
  ASSERT_TRUE(run_->wait(60s)) << run_->out() << run_->err();
  EXPECT_NE(run_->exitCode(), 0);
  EXPECT_THAT(run_->out(), HasSubstr("TASK_FAILED for task 'lonely'"));
  EXPECT_THAT(run_->out(), HasSubstr("the Docker containerizer does not support task groups"));
  EXPECT_THAT(run_->out(), HasSubstr("(reason: REASON_CONTAINER_LAUNCH_FAILED)"));
  EXPECT_THAT(run_->out(), ::testing::Not(HasSubstr("TASK_RUNNING")));
}

// The tasks of a group run in their executor's cgroups, limited to the sum of their resources.
class CgroupsTaskGroupSystemTest : public TaskGroupSystemTest {
 protected:
  void SetUp() override {
    std::string why;
    if (geteuid() != 0) {
      why = "needs root for the host's cgroups";
    } else if (!unified() &&
               ::access((kHierarchy / "memory" / "cgroup.procs").c_str(), W_OK) != 0) {
      why = "no writable cgroup hierarchy at /sys/fs/cgroup";
    }
    if (!why.empty()) TESSERA_SKIP_UNLESS_CI(why);
    root_ = fmt::format("tessera_group_{}", getpid());
  }

  void TearDown() override {
    TaskGroupSystemTest::TearDown();
    for (const auto& dir : directories()) {
      std::error_code error;
      for (const auto& entry : fs::directory_iterator(dir, error)) ::rmdir(entry.path().c_str());
      ::rmdir(dir.c_str());
    }
  }

  // The container cgroups' parents, one per controller (v1) or the one of v2.
  std::vector<fs::path> directories() const {
    if (root_.empty()) return {};
    if (unified()) return {kHierarchy / root_};
    return {kHierarchy / "cpu" / root_, kHierarchy / "memory" / root_,
            kHierarchy / "cpuacct" / root_};
  }

  std::set<std::string> cgroups() const {
    std::set<std::string> names;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(directories().front(), error)) {
      if (entry.is_directory()) names.insert(entry.path().filename().string());
    }
    return names;
  }

  std::string root_;
};

TEST_F(CgroupsTaskGroupSystemTest, TheTasksShareTheExecutorsCgroupsWithTheSumOfTheirLimits) {
  startMaster();
  startAgent({"--isolation=cgroups/cpu,cgroups/mem", "--cgroups_enable_cfs",
              fmt::format("--cgroups_root={}", root_)});
  // 0.25 + 0.5 cpus and 48 + 80 MB: the group's limits are 0.75 cpus and 128 MB.
  std::string a = waitingTask("a");
  std::string b = waitingTask("b");
  a.replace(a.find(R"("value":0.1)"), 11, R"("value":0.25)");
  b.replace(b.find(R"("value":0.1)"), 11, R"("value":0.5)");
  a.replace(a.find(R"("value":32)"), 10, R"("value":48)");
  b.replace(b.find(R"("value":32)"), 10, R"("value":80)");
  execute({"--task_group=" + groupJson({a, b})});
  ASSERT_TRUE(waitForState("a", "TASK_RUNNING")) << run_->out() << run_->err();
  ASSERT_TRUE(waitForState("b", "TASK_RUNNING")) << run_->out() << run_->err();
  const pid_t pidA = pidIn(dir_.path() / "a.pid");
  const pid_t pidB = pidIn(dir_.path() / "b.pid");
  ASSERT_GT(pidA, 0);
  ASSERT_GT(pidB, 0);

  // One cgroup for the whole group (the executor's): nested containers have none of their own.
  const std::set<std::string> names = cgroups();
  ASSERT_EQ(names.size(), 1u);
  const std::string id = *names.begin();
  fs::path memory, cpu;
  if (unified()) {
    memory = cpu = kHierarchy / root_ / id;
    EXPECT_EQ(readText(memory / "memory.max"), fmt::format("{}\n", 128u << 20));
    EXPECT_EQ(readText(cpu / "cpu.max"), "75000 100000\n");
  } else {
    memory = kHierarchy / "memory" / root_ / id;
    cpu = kHierarchy / "cpu" / root_ / id;
    EXPECT_EQ(readText(memory / "memory.limit_in_bytes"), fmt::format("{}\n", 128u << 20));
    EXPECT_EQ(readText(cpu / "cpu.cfs_quota_us"), "75000\n");
    EXPECT_EQ(readText(cpu / "cpu.cfs_period_us"), "100000\n");
  }
  // Both tasks' processes are in it, in every controller.
  for (const fs::path& dir : {memory, cpu}) {
    std::istringstream procs(readText(dir / "cgroup.procs"));
    std::set<pid_t> pids;
    for (pid_t pid; procs >> pid;) pids.insert(pid);
    EXPECT_TRUE(pids.count(pidA)) << dir << " lacks task a's process " << pidA;
    EXPECT_TRUE(pids.count(pidB)) << dir << " lacks task b's process " << pidB;
  }

  stop("a", 0);
  stop("b", 0);
  ASSERT_TRUE(run_->wait(60s)) << run_->out() << run_->err();
  EXPECT_EQ(run_->exitCode(), 0) << run_->out();
  // The executor container ends with its last task, and its cgroups with it.
  EXPECT_TRUE(waitFor([&] { return cgroups().empty(); }, 30s));
}

}  // namespace
}  // namespace tessera::testing
