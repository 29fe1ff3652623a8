// The seed walkthrough with real processes: `tessera master`, `tessera agent`,
// `tessera execute`, `tessera local`, talking over loopback; agents killed with SIGKILL.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "tests/support/ci.h"
#include "tests/support/cluster_state.h"
#include "tests/support/subprocess.h"

namespace tessera::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

bool processAlive(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

// A master and agents as real processes, each with its own config dir (so /etc/tessera on the
// machine never leaks in) and work dir.
class ClusterTest : public ::testing::Test {
 protected:
  std::unique_ptr<Subprocess> startMaster(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {
        tesseraBinary().string(), "master", fmt::format("--port={}", masterPort_),
        fmt::format("--work_dir={}", (dir_.path() / "master").string()), "--quiet"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return launch(std::move(argv), [this] { return httpOk(masterPort_, "/state"); });
  }

  std::unique_ptr<Subprocess> startAgent(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {tesseraBinary().string(),
                                     "agent",
                                     fmt::format("--port={}", agentPort_),
                                     fmt::format("--master=127.0.0.1:{}", masterPort_),
                                     fmt::format("--work_dir={}", (dir_.path() / "agent").string()),
                                     "--resources=cpus:2;mem:1024;disk:1024;ports:[31000-31100]",
                                     "--quiet"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return launch(std::move(argv), [this] { return httpOk(agentPort_, "/state"); });
  }

  // `tessera execute` against the master, not waited for.
  std::unique_ptr<Subprocess> execute(const std::string& name, const std::string& command,
                                      std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {
        tesseraBinary().string(), "execute", fmt::format("--master=127.0.0.1:{}", masterPort_),
        fmt::format("--name={}", name), fmt::format("--command={}", command)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto process = Subprocess::start({argv, env(), {}, std::nullopt});
    EXPECT_TRUE(process) << process.status().message();
    return process ? std::move(process).value() : nullptr;
  }

  std::map<std::string, std::string> env() const {
    return {{"TESSERA_CONFIG_DIR", config_.path().string()}};
  }

  static bool httpOk(uint16_t port, const std::string& path) {
    auto response = httpRequest(port, "GET", path);
    return response && response->status == 200;
  }

  std::unique_ptr<Subprocess> launch(std::vector<std::string> argv,
                                     const std::function<bool()>& ready) {
    auto process = Subprocess::start({std::move(argv), env(), {}, std::nullopt});
    EXPECT_TRUE(process) << process.status().message();
    if (!process) return nullptr;
    if (!waitFor(ready)) {
      ADD_FAILURE() << "the process did not become ready: " << (*process)->err();
      return nullptr;
    }
    return std::move(process).value();
  }

  TempDir dir_;
  TempDir config_;
  uint16_t masterPort_ = freePort();
  uint16_t agentPort_ = freePort();
};

TEST_F(ClusterTest, ExecuteRunsATaskToFinishedAndTheMasterShowsIt) {
  auto master = startMaster();
  auto agent = startAgent();
  ASSERT_TRUE(master && agent);
  ASSERT_TRUE(waitFor([&] { return activatedAgents(masterPort_) == 1; }));

  auto run = execute("cluster-test", "sleep 1");
  ASSERT_TRUE(run);
  ASSERT_TRUE(run->wait(std::chrono::seconds(60))) << run->out() << run->err();
  EXPECT_EQ(run->exitCode(), 0) << run->out() << run->err();
  EXPECT_THAT(run->out(), HasSubstr("TASK_RUNNING"));
  EXPECT_THAT(run->out(), HasSubstr("TASK_FINISHED"));
  EXPECT_EQ(taskState(masterPort_, "cluster-test"), "TASK_FINISHED");
}

TEST_F(ClusterTest, ExecuteExitsWithTheTaskExitCode) {
  auto master = startMaster();
  auto agent = startAgent();
  ASSERT_TRUE(master && agent);
  auto run = execute("fails", "echo to-stdout; exit 3");
  ASSERT_TRUE(run);
  ASSERT_TRUE(run->wait(std::chrono::seconds(60))) << run->out() << run->err();
  EXPECT_EQ(run->exitCode(), 3) << run->out() << run->err();
  EXPECT_THAT(run->out(), HasSubstr("TASK_FAILED"));
  EXPECT_EQ(taskState(masterPort_, "fails"), "TASK_FAILED");

  // The task's stdout is in its sandbox, readable through the agent's /files/read.
  auto state = getJson(agentPort_, "/state");
  ASSERT_TRUE(state);
  std::string directory;
  for (const char* list : {"frameworks", "completed_frameworks"}) {
    auto frameworks = state->getArray(list);
    for (size_t i = 0; frameworks && i < frameworks->size(); ++i) {
      for (const char* executors : {"executors", "completed_executors"}) {
        auto array = frameworks->getObject(i)->getArray(executors);
        for (size_t j = 0; array && j < array->size(); ++j) {
          auto executor = array->getObject(j);
          if (executor->getValue<std::string>("id") == "fails") {
            directory = executor->getValue<std::string>("directory");
          }
        }
      }
    }
  }
  ASSERT_FALSE(directory.empty()) << "no executor 'fails' in the agent's /state";
  auto read = getJson(agentPort_, fmt::format("/files/read?path={}/stdout&offset=0", directory));
  ASSERT_TRUE(read);
  EXPECT_THAT(read->getValue<std::string>("data"), HasSubstr("to-stdout"));
}

TEST_F(ClusterTest, PidNamespaceIsolationRunsTheTaskInItsOwnNamespace) {
  if (geteuid() != 0) {
    TESSERA_SKIP_UNLESS_CI(
        "--isolation=namespaces/pid needs root (run the tests as root to cover it)");
  }
  auto master = startMaster();
  auto agent = startAgent({"--isolation=namespaces/pid"});
  ASSERT_TRUE(master && agent);
  // Outside a PID namespace the shell's pid would be far above 2, and the task would exit 1.
  auto run =
      execute("pidns", "test $$ -le 2 && test $(ls /proc | grep -c '^[0-9]') -le 5 && exit 7");
  ASSERT_TRUE(run);
  ASSERT_TRUE(run->wait(std::chrono::seconds(60))) << run->out() << run->err();
  EXPECT_EQ(run->exitCode(), 7) << run->out() << run->err();
  EXPECT_EQ(taskState(masterPort_, "pidns"), "TASK_FAILED");
}

TEST_F(ClusterTest, UnreachableMasterIsAClearError) {
  auto run = execute("nowhere", "true");
  ASSERT_TRUE(run);
  ASSERT_TRUE(run->wait(std::chrono::seconds(60))) << run->out() << run->err();
  EXPECT_NE(run->exitCode(), 0);
  EXPECT_THAT(run->err(), HasSubstr(fmt::format("127.0.0.1:{}", masterPort_)));
}

TEST_F(ClusterTest, TaskSurvivesAnAgentKilledWithSigkill) {
  auto master = startMaster();
  auto agent = startAgent();
  ASSERT_TRUE(master && agent);
  // The task writes its pid, then runs until the file `stop` appears.
  auto pidFile = dir_.path() / "task.pid";
  auto stopFile = dir_.path() / "stop";
  auto run = execute("survivor", fmt::format("echo $$ > {}; while [ ! -e {} ]; do sleep 0.1; done",
                                             pidFile.string(), stopFile.string()));
  ASSERT_TRUE(run);
  ASSERT_TRUE(waitFor([&] { return taskState(masterPort_, "survivor") == "TASK_RUNNING"; }))
      << run->out() << run->err();
  ASSERT_TRUE(waitFor([&] { return fs::exists(pidFile) && fs::file_size(pidFile) > 0; }));
  pid_t taskPid = 0;
  std::ifstream(pidFile) >> taskPid;
  ASSERT_GT(taskPid, 0);

  agent->kill(SIGKILL);
  ASSERT_TRUE(agent->wait(std::chrono::seconds(10)));
  EXPECT_TRUE(processAlive(taskPid)) << "the task died with the agent";

  auto restarted = startAgent();
  ASSERT_TRUE(restarted);
  ASSERT_TRUE(waitFor([&] { return activatedAgents(masterPort_) == 1; }));
  EXPECT_EQ(taskState(masterPort_, "survivor"), "TASK_RUNNING");
  EXPECT_TRUE(processAlive(taskPid));

  // The recovered task ends normally and the framework hears about it.
  std::ofstream(stopFile) << "now";
  ASSERT_TRUE(run->wait(std::chrono::seconds(60))) << run->out() << run->err();
  EXPECT_THAT(run->out(), HasSubstr("TASK_FINISHED"));
  EXPECT_EQ(taskState(masterPort_, "survivor"), "TASK_FINISHED");
}

TEST_F(ClusterTest, AnAgentThatNeverReturnsMakesItsTasksLost) {
  auto master = startMaster({"--agent_ping_timeout=200ms", "--max_agent_ping_timeouts=3"});
  auto agent = startAgent();
  ASSERT_TRUE(master && agent);
  auto run = execute("orphaned", "sleep 1000");
  ASSERT_TRUE(run);
  ASSERT_TRUE(waitFor([&] { return taskState(masterPort_, "orphaned") == "TASK_RUNNING"; }))
      << run->out() << run->err();
  agent->kill(SIGKILL);
  ASSERT_TRUE(agent->wait(std::chrono::seconds(10)));
  // `tessera execute` does not declare PARTITION_AWARE, so it hears TASK_LOST.
  ASSERT_TRUE(run->wait(std::chrono::seconds(60))) << run->out() << run->err();
  EXPECT_THAT(run->out(), HasSubstr("TASK_LOST"));
  EXPECT_NE(run->exitCode(), 0);
  auto state = getJson(masterPort_, "/state");
  ASSERT_TRUE(state);
  EXPECT_EQ(state->getValue<size_t>("activated_slaves"), 0u);
  EXPECT_EQ(state->getValue<size_t>("unreachable_slaves"), 1u);
  // What the SIGKILLed agent left running is cleaned up by the next agent on its work dir.
  auto next = startAgent({"--recover=cleanup"});
  ASSERT_TRUE(next);
}

TEST_F(ClusterTest, AnAgentMarkedGoneExitsAndStaysOut) {
  auto master = startMaster();
  auto agent = startAgent();
  ASSERT_TRUE(master && agent);
  ASSERT_TRUE(waitFor([&] { return activatedAgents(masterPort_) == 1; }));
  auto state = getJson(masterPort_, "/state");
  ASSERT_TRUE(state);
  std::string agentId = state->getArray("slaves")->getObject(0)->getValue<std::string>("id");

  auto marked = httpRequest(
      masterPort_, "POST", "/api/v1",
      fmt::format(
          R"({{"type":"MARK_AGENT_GONE","mark_agent_gone":{{"agent_id":{{"value":"{}"}}}}}})",
          agentId));
  ASSERT_TRUE(marked) << marked.status().message();
  EXPECT_EQ(marked->status, 200) << marked->body;

  // The refused agent exits 1 naming the refusal.
  ASSERT_TRUE(agent->wait(std::chrono::seconds(30))) << agent->err();
  EXPECT_EQ(agent->exitCode(), 1) << agent->err();
  EXPECT_THAT(agent->err(), HasSubstr("the master refused this agent"));
  EXPECT_THAT(agent->err(), HasSubstr("marked gone"));

  state = getJson(masterPort_, "/state");
  ASSERT_TRUE(state);
  EXPECT_EQ(state->getValue<size_t>("activated_slaves"), 0u);
  EXPECT_EQ(state->getArray("slaves")->size(), 0u);

  // Restarted on the same work dir (same id), it is refused again.
  auto again =
      Subprocess::start({{tesseraBinary().string(), "agent", fmt::format("--port={}", agentPort_),
                          fmt::format("--master=127.0.0.1:{}", masterPort_),
                          fmt::format("--work_dir={}", (dir_.path() / "agent").string()),
                          "--resources=cpus:2;mem:1024;disk:1024;ports:[31000-31100]"},
                         env(),
                         {},
                         std::nullopt});
  ASSERT_TRUE(again);
  ASSERT_TRUE((*again)->wait(std::chrono::seconds(30))) << (*again)->err();
  EXPECT_EQ((*again)->exitCode(), 1) << (*again)->err();
  EXPECT_THAT((*again)->err(), HasSubstr("marked gone"));
}

TEST_F(ClusterTest, MesosNamesRunTheRoles) {
  TempDir bin;
  for (const char* name : {"mesos-master", "mesos-agent", "mesos-execute"}) {
    fs::create_symlink(tesseraBinary(), bin.path() / name);
  }
  auto master = launch({(bin.path() / "mesos-master").string(),
                        fmt::format("--port={}", masterPort_), "--registry=in_memory", "--quiet"},
                       [this] { return httpOk(masterPort_, "/state"); });
  auto agent = launch({(bin.path() / "mesos-agent").string(), fmt::format("--port={}", agentPort_),
                       fmt::format("--master=127.0.0.1:{}", masterPort_),
                       fmt::format("--work_dir={}", (dir_.path() / "agent").string()),
                       "--resources=cpus:1;mem:256", "--containerizers=mesos", "--quiet"},
                      [this] { return httpOk(agentPort_, "/state"); });
  ASSERT_TRUE(master && agent);
  auto run = Subprocess::start(
      {{(bin.path() / "mesos-execute").string(), fmt::format("--master=127.0.0.1:{}", masterPort_),
        "--name=classic", "--command=true"},
       env(),
       {},
       std::nullopt});
  ASSERT_TRUE(run);
  ASSERT_TRUE((*run)->wait(std::chrono::seconds(60))) << (*run)->out() << (*run)->err();
  EXPECT_EQ((*run)->exitCode(), 0) << (*run)->out() << (*run)->err();
}

TEST_F(ClusterTest, AgentRefusesAnIsolationNothingProvides) {
  auto agent = Subprocess::start(
      {{tesseraBinary().string(), "agent", fmt::format("--port={}", agentPort_),
        fmt::format("--master=127.0.0.1:{}", masterPort_),
        fmt::format("--work_dir={}", (dir_.path() / "agent").string()), "--isolation=gpu/nvidia"},
       env(),
       {},
       std::nullopt});
  ASSERT_TRUE(agent);
  ASSERT_TRUE((*agent)->wait(std::chrono::seconds(30)));
  EXPECT_EQ((*agent)->exitCode(), 1);
  EXPECT_THAT((*agent)->err(), HasSubstr("'gpu/nvidia'"));
}

TEST_F(ClusterTest, MasterNeedsAWorkDirForADurableRegistry) {
  auto master = Subprocess::start(
      {{tesseraBinary().string(), "master", fmt::format("--port={}", masterPort_)}, env(), {}, {}});
  ASSERT_TRUE(master);
  ASSERT_TRUE((*master)->wait(std::chrono::seconds(30)));
  EXPECT_EQ((*master)->exitCode(), 1);
  EXPECT_THAT((*master)->err(), HasSubstr("'--work_dir'"));
}

TEST_F(ClusterTest, LocalLeavesNoTaskBehindWhenStopped) {
  auto local = launch({tesseraBinary().string(), "local", fmt::format("--port={}", masterPort_),
                       "--marathon_port=0", "--chronos_port=0", "--quiet"},
                      [this] { return activatedAgents(masterPort_) == 1; });
  ASSERT_TRUE(local);
  auto pidFile = dir_.path() / "task.pid";
  auto run = execute("lingering", fmt::format("echo $$ > {}; exec sleep 1000", pidFile.string()));
  ASSERT_TRUE(run);
  ASSERT_TRUE(waitFor([&] { return fs::exists(pidFile) && fs::file_size(pidFile) > 0; }))
      << run->out() << run->err();
  pid_t taskPid = 0;
  std::ifstream(pidFile) >> taskPid;
  ASSERT_GT(taskPid, 0);
  ASSERT_TRUE(processAlive(taskPid));

  local->kill(SIGTERM);
  ASSERT_TRUE(local->wait(std::chrono::seconds(30)));
  EXPECT_EQ(local->exitCode(), 0) << local->err();
  EXPECT_TRUE(waitFor([&] { return !processAlive(taskPid); }, std::chrono::seconds(10)));
}

// A master with an authenticator module (the test Basic one, knowing alice:secret) and
// --authenticate_frameworks: an anonymous `tessera execute` is refused with the master's 401,
// one with --principal/--secret runs its task.
TEST_F(ClusterTest, AuthenticatingMasterRefusesAnAnonymousFramework) {
  fs::path manifest = dir_.path() / "authn.json";
  std::ofstream(manifest) << fmt::format(
      R"({{"libraries": [{{"file": "{}", "modules": [{{"name": )"
      R"("org_tessera_test_basic_authenticator", "parameters": [{{"key": "credentials", )"
      R"("value": "alice:secret"}}]}}]}}]}})",
      (fs::path(TESSERA_BINARY_DIR) / "tests" / "modules" / "libtest_basic_authenticator.so")
          .string());
  auto master = startMaster({fmt::format("--modules={}", manifest.string()),
                             "--http_framework_authenticators=org_tessera_test_basic_authenticator",
                             "--authenticate_frameworks"});
  auto agent = startAgent();
  ASSERT_TRUE(master && agent);
  ASSERT_TRUE(waitFor([&] { return activatedAgents(masterPort_) == 1; }));

  auto anonymous = execute("anonymous", "true");
  ASSERT_TRUE(anonymous);
  ASSERT_TRUE(anonymous->wait(std::chrono::seconds(60))) << anonymous->out() << anonymous->err();
  EXPECT_EQ(anonymous->exitCode(), 1) << anonymous->out() << anonymous->err();
  EXPECT_THAT(anonymous->err(), HasSubstr("refused the subscription (401)"));
  EXPECT_THAT(anonymous->err(), HasSubstr("not authenticated"));
  EXPECT_EQ(taskState(masterPort_, "anonymous"), "");

  auto wrong = execute("wrong", "true", {"--principal=alice", "--secret=guess"});
  ASSERT_TRUE(wrong);
  ASSERT_TRUE(wrong->wait(std::chrono::seconds(60))) << wrong->out() << wrong->err();
  EXPECT_EQ(wrong->exitCode(), 1) << wrong->out() << wrong->err();
  EXPECT_THAT(wrong->err(), HasSubstr("(401)"));

  auto alice = execute("alice", "true", {"--principal=alice", "--secret=secret"});
  ASSERT_TRUE(alice);
  ASSERT_TRUE(alice->wait(std::chrono::seconds(60))) << alice->out() << alice->err();
  EXPECT_EQ(alice->exitCode(), 0) << alice->out() << alice->err();
  EXPECT_EQ(taskState(masterPort_, "alice"), "TASK_FINISHED");
}

TEST_F(ClusterTest, MasterAuthenticationFlagsAreChecked) {
  auto run = [&](std::vector<std::string> flags) {
    std::vector<std::string> argv = {tesseraBinary().string(), "master",
                                     fmt::format("--port={}", masterPort_), "--registry=in_memory",
                                     "--quiet"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto process = Subprocess::start({argv, env(), {}, std::nullopt});
    EXPECT_TRUE(process) << process.status().message();
    EXPECT_TRUE((*process)->wait(std::chrono::seconds(30)));
    return std::move(process).value();
  };
  auto noAuthenticator = run({"--authenticate_frameworks"});
  EXPECT_EQ(noAuthenticator->exitCode(), 1);
  EXPECT_THAT(noAuthenticator->err(), HasSubstr("'--authenticate_frameworks'"));
  auto unknown = run({"--http_framework_authenticators=org_nope"});
  EXPECT_EQ(unknown->exitCode(), 1);
  EXPECT_THAT(unknown->err(), HasSubstr("'--http_framework_authenticators'"));
  EXPECT_THAT(unknown->err(), HasSubstr("'org_nope' is not a loaded authenticator module"));
  // The shipped `basic` authenticator needs the credentials it checks against.
  auto noCredentials = run({"--http_framework_authenticators=basic"});
  EXPECT_EQ(noCredentials->exitCode(), 1);
  EXPECT_THAT(noCredentials->err(), HasSubstr("flag '--http_framework_authenticators=basic'"));
  EXPECT_THAT(noCredentials->err(), HasSubstr("'--credentials'"));
  EXPECT_THAT(noCredentials->err(), HasSubstr("parameter 'credentials' is required"));
}

}  // namespace
}  // namespace tessera::testing
