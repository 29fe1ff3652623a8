// Docker tasks end to end: `tessera master`, `tessera agent --containerizers=docker,mesos` and
// `tessera execute --docker_image` as real processes against the real engine; the agent killed
// with SIGKILL. Skipped without an engine (failed when CI=true).
#include "tests/support/docker.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>

#include "modules/containerizer_docker/docker_spec.h"
#include "tests/support/cluster_state.h"
#include "tests/support/subprocess.h"

namespace tessera::testing {
namespace {

namespace fs = std::filesystem;
using modules::containerizer_docker::EngineClient;
using modules::containerizer_docker::kLabelWorkDir;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

class DockerSystemTest : public ::testing::Test {
 protected:
  void SetUp() override { TESSERA_REQUIRE_DOCKER(); }

  void TearDown() override {
    for (const auto& id : dockerContainersWithLabel(client_, kLabelWorkDir, agentWorkDir())) {
      (void)client_.call("DELETE", fmt::format("/containers/{}?force=1", id));
    }
  }

  std::string agentWorkDir() const { return (dir_.path() / "agent").string(); }

  std::unique_ptr<Subprocess> startMaster() {
    return launch({tesseraBinary().string(), "master", fmt::format("--port={}", masterPort_),
                   fmt::format("--work_dir={}", (dir_.path() / "master").string()), "--quiet"},
                  masterPort_, "/state");
  }

  std::unique_ptr<Subprocess> startAgent(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {
        tesseraBinary().string(),
        "agent",
        fmt::format("--port={}", agentPort_),
        fmt::format("--master=127.0.0.1:{}", masterPort_),
        fmt::format("--work_dir={}", agentWorkDir()),
        "--containerizers=docker,mesos",
        fmt::format("--resources=cpus:2;mem:1024;disk:1024;ports:[{}-{}]", kPortsBegin, kPortsEnd),
        "--quiet"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return launch(std::move(argv), agentPort_, "/state");
  }

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

  std::unique_ptr<Subprocess> launch(std::vector<std::string> argv, uint16_t port,
                                     const std::string& path) {
    auto process = Subprocess::start({std::move(argv), env(), {}, std::nullopt});
    EXPECT_TRUE(process) << process.status().message();
    if (!process) return nullptr;
    bool ready = waitFor([&] {
      auto response = httpRequest(port, "GET", path);
      return response && response->status == 200;
    });
    if (!ready) {
      ADD_FAILURE() << "the process did not become ready: " << (*process)->err();
      return nullptr;
    }
    return std::move(process).value();
  }

  bool agentActive() {
    auto state = getJson(masterPort_, "/state");
    return state && state->has("activated_slaves") &&
           state->getValue<size_t>("activated_slaves") == 1;
  }

  // The sandbox directory of `taskId` from the agent's /state.
  std::string sandboxOf(const std::string& taskId) {
    auto state = getJson(agentPort_, "/state");
    if (!state) return "";
    for (const char* list : {"frameworks", "completed_frameworks"}) {
      auto frameworks = state->getArray(list);
      for (size_t i = 0; frameworks && i < frameworks->size(); ++i) {
        for (const char* executors : {"executors", "completed_executors"}) {
          auto array = frameworks->getObject(i)->getArray(executors);
          for (size_t j = 0; array && j < array->size(); ++j) {
            auto executor = array->getObject(j);
            if (executor->getValue<std::string>("id") == taskId) {
              return executor->getValue<std::string>("directory");
            }
          }
        }
      }
    }
    return "";
  }

  size_t containersOfThisAgent() {
    return dockerContainersWithLabel(client_, kLabelWorkDir, agentWorkDir()).size();
  }

  static constexpr uint16_t kPortsBegin = 31000;
  static constexpr uint16_t kPortsEnd = 31099;

  TempDir dir_;
  TempDir config_;
  uint16_t masterPort_ = freePort();
  uint16_t agentPort_ = freePort();
  EngineClient client_{kDockerSocket};
};

TEST_F(DockerSystemTest, TaskRunsAndFinishesWithItsOutputInTheSandbox) {
  auto master = startMaster();
  auto agent = startAgent();
  ASSERT_TRUE(master && agent);
  ASSERT_TRUE(waitFor([&] { return agentActive(); }));
  auto run = execute("docker-hello", "echo hello-from-docker; echo sandbox=$MESOS_SANDBOX",
                     {fmt::format("--docker_image={}", kDockerTestImage)});
  ASSERT_TRUE(run);
  ASSERT_TRUE(run->wait(120s)) << run->out() << run->err();
  EXPECT_EQ(run->exitCode(), 0) << run->out() << run->err();
  EXPECT_THAT(run->out(), HasSubstr("TASK_RUNNING"));
  EXPECT_THAT(run->out(), HasSubstr("TASK_FINISHED"));
  EXPECT_EQ(taskState(masterPort_, "docker-hello"), "TASK_FINISHED");

  const std::string directory = sandboxOf("docker-hello");
  ASSERT_FALSE(directory.empty());
  auto read = getJson(agentPort_, fmt::format("/files/read?path={}/stdout&offset=0", directory));
  ASSERT_TRUE(read);
  EXPECT_THAT(read->getValue<std::string>("data"), HasSubstr("hello-from-docker"));
  EXPECT_THAT(read->getValue<std::string>("data"), HasSubstr("sandbox=/mnt/mesos/sandbox"));
  EXPECT_TRUE(waitFor([&] { return containersOfThisAgent() == 0; }));
}

TEST_F(DockerSystemTest, ExitCodeIsPropagated) {
  auto master = startMaster();
  auto agent = startAgent();
  ASSERT_TRUE(master && agent);
  auto run = execute("docker-exit", "exit 3", {fmt::format("--docker_image={}", kDockerTestImage)});
  ASSERT_TRUE(run);
  ASSERT_TRUE(run->wait(120s)) << run->out() << run->err();
  EXPECT_EQ(run->exitCode(), 3) << run->out() << run->err();
  EXPECT_THAT(run->out(), HasSubstr("TASK_FAILED"));
  EXPECT_EQ(taskState(masterPort_, "docker-exit"), "TASK_FAILED");
}

TEST_F(DockerSystemTest, KillStopsTheContainer) {
  auto master = startMaster();
  auto agent = startAgent();
  ASSERT_TRUE(master && agent);
  auto run = execute("docker-kill", "sleep 600",
                     {fmt::format("--docker_image={}", kDockerTestImage), "--kill_after=1secs"});
  ASSERT_TRUE(run);
  ASSERT_TRUE(run->wait(120s)) << run->out() << run->err();
  EXPECT_THAT(run->out(), HasSubstr("TASK_KILLED"));
  EXPECT_EQ(taskState(masterPort_, "docker-kill"), "TASK_KILLED");
  EXPECT_TRUE(waitFor([&] { return containersOfThisAgent() == 0; }));
}

TEST_F(DockerSystemTest, BridgePortMappingIsReachableFromTheHost) {
  auto master = startMaster();
  auto agent = startAgent();
  ASSERT_TRUE(master && agent);
  const uint16_t hostPort = kPortsBegin + static_cast<uint16_t>(getpid() % 100);
  const std::string container = fmt::format(
      R"({{"type":"DOCKER","docker":{{"image":"{}","network":"BRIDGE",)"
      R"("port_mappings":[{{"host_port":{},"container_port":80,"protocol":"tcp"}}]}}}})",
      kDockerTestImage, hostPort);
  auto run =
      execute("docker-httpd", "httpd -f -p 80 -h /www",
              {fmt::format("--container={}", container),
               fmt::format("--resources=cpus:0.1;mem:32;ports:[{}-{}]", hostPort, hostPort)});
  ASSERT_TRUE(run);
  ASSERT_TRUE(
      waitFor([&] { return taskState(masterPort_, "docker-httpd") == "TASK_RUNNING"; }, 120s))
      << run->out() << run->err();
  std::string body;
  EXPECT_TRUE(waitFor(
      [&] {
        auto response = httpRequest(hostPort, "GET", "/index.html", "", 2s);
        if (!response || response->status != 200) return false;
        body = response->body;
        return true;
      },
      60s));
  EXPECT_THAT(body, HasSubstr("hello from tessera-test/busybox"));
  run->kill(SIGTERM);  // tessera execute kills the task on SIGTERM
  ASSERT_TRUE(run->wait(60s)) << run->out() << run->err();
  EXPECT_TRUE(waitFor([&] { return containersOfThisAgent() == 0; }));
}

TEST_F(DockerSystemTest, HostPortOutsideTheOfferedPortsFailsTheTask) {
  auto master = startMaster();
  auto agent = startAgent();
  ASSERT_TRUE(master && agent);
  const std::string container =
      fmt::format(R"({{"type":"DOCKER","docker":{{"image":"{}","network":"BRIDGE",)"
                  R"("port_mappings":[{{"host_port":8080,"container_port":80}}]}}}})",
                  kDockerTestImage);
  auto run =
      execute("docker-badport", "httpd -f -p 80",
              {fmt::format("--container={}", container),
               fmt::format("--resources=cpus:0.1;mem:32;ports:[{}-{}]", kPortsBegin, kPortsBegin)});
  ASSERT_TRUE(run);
  ASSERT_TRUE(run->wait(120s)) << run->out() << run->err();
  EXPECT_THAT(run->out(), HasSubstr("TASK_FAILED"));
  EXPECT_THAT(run->out(), HasSubstr("host port 8080"));
}

TEST_F(DockerSystemTest, MemoryLimitIsEnforced) {
  auto master = startMaster();
  auto agent = startAgent();
  ASSERT_TRUE(master && agent);
  auto run =
      execute("docker-oom", "x=xxxxxxxxxxxxxxxx; while true; do x=$x$x; done",
              {fmt::format("--docker_image={}", kDockerTestImage), "--resources=cpus:0.1;mem:16"});
  ASSERT_TRUE(run);
  ASSERT_TRUE(run->wait(120s)) << run->out() << run->err();
  EXPECT_NE(run->exitCode(), 0);
  EXPECT_THAT(run->out(), HasSubstr("TASK_FAILED"));
  EXPECT_THAT(run->out(), HasSubstr("OOM-killed"));
}

TEST_F(DockerSystemTest, AgentSigkillAndRestartRecoversTheRunningContainer) {
  auto master = startMaster();
  auto agent = startAgent();
  ASSERT_TRUE(master && agent);
  auto run = execute("docker-survivor",
                     "touch $MESOS_SANDBOX/started; while [ ! -e $MESOS_SANDBOX/go ]; do sleep 1; "
                     "done; echo finished",
                     {fmt::format("--docker_image={}", kDockerTestImage), "--checkpoint"});
  ASSERT_TRUE(run);
  ASSERT_TRUE(
      waitFor([&] { return taskState(masterPort_, "docker-survivor") == "TASK_RUNNING"; }, 120s))
      << run->out() << run->err();
  const std::string sandbox = sandboxOf("docker-survivor");
  ASSERT_FALSE(sandbox.empty());
  ASSERT_TRUE(waitFor([&] { return fs::exists(fs::path(sandbox) / "started"); }));

  agent->kill(SIGKILL);
  ASSERT_TRUE(agent->wait(10s));
  EXPECT_EQ(containersOfThisAgent(), 1u) << "the container died with the agent";

  auto restarted = startAgent();
  ASSERT_TRUE(restarted);
  ASSERT_TRUE(waitFor([&] { return agentActive(); }));
  EXPECT_EQ(taskState(masterPort_, "docker-survivor"), "TASK_RUNNING");
  EXPECT_EQ(containersOfThisAgent(), 1u);

  // The re-attached container ends normally and the framework hears about it.
  std::ofstream(fs::path(sandbox) / "go") << "now";
  ASSERT_TRUE(run->wait(120s)) << run->out() << run->err();
  EXPECT_EQ(run->exitCode(), 0) << run->out() << run->err();
  EXPECT_THAT(run->out(), HasSubstr("TASK_FINISHED"));
  std::ifstream stdoutFile(fs::path(sandbox) / "stdout");
  std::stringstream out;
  out << stdoutFile.rdbuf();
  EXPECT_THAT(out.str(), HasSubstr("finished"));
}

TEST_F(DockerSystemTest, MissingImageFailsTheTaskNamingTheImage) {
  auto master = startMaster();
  auto agent = startAgent();
  ASSERT_TRUE(master && agent);
  auto run = execute("docker-noimage", "true", {"--docker_image=tessera-test/no-such-image"});
  ASSERT_TRUE(run);
  ASSERT_TRUE(run->wait(120s)) << run->out() << run->err();
  EXPECT_EQ(run->exitCode(), 1);
  EXPECT_THAT(run->out(), HasSubstr("TASK_FAILED"));
  EXPECT_THAT(run->out(), HasSubstr("tessera-test/no-such-image"));
}

TEST_F(DockerSystemTest, OrphanContainersAreRemovedWhenTheAgentStarts) {
  // A container labelled with this agent's work dir that no checkpoint knows.
  const std::string body =
      fmt::format(R"({{"Image":"{}","Cmd":["sleep","600"],"Labels":{{"{}":"{}","{}":"orphan"}}}})",
                  kDockerTestImage, kLabelWorkDir, agentWorkDir(),
                  modules::containerizer_docker::kLabelContainerId);
  auto created = client_.call(
      "POST", fmt::format("/containers/create?name=tessera-orphan-{}", getpid()), body);
  ASSERT_TRUE(created && created->status == 201) << (created ? created->body : "");
  auto started = client_.call("POST", fmt::format("/containers/tessera-orphan-{}/start", getpid()));
  ASSERT_TRUE(started && started->status == 204);
  ASSERT_EQ(containersOfThisAgent(), 1u);

  auto master = startMaster();
  auto agent = startAgent();
  ASSERT_TRUE(master && agent);
  EXPECT_TRUE(waitFor([&] { return containersOfThisAgent() == 0; }));
}

TEST_F(DockerSystemTest, UnreachableDaemonIsReportedAndDockerTasksFailFast) {
  auto master = startMaster();
  auto agent = startAgent({"--docker_socket=/nonexistent/docker.sock"});
  ASSERT_TRUE(master && agent);
  auto metrics = getJson(agentPort_, "/metrics/snapshot");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->getValue<double>("containerizer/docker/daemon_reachable"), 0.0);
  auto health = httpRequest(agentPort_, "GET", "/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_THAT(health->body, HasSubstr("containerizer/docker/daemon_reachable"));
  auto run =
      execute("docker-nodaemon", "true", {fmt::format("--docker_image={}", kDockerTestImage)});
  ASSERT_TRUE(run);
  ASSERT_TRUE(run->wait(60s)) << run->out() << run->err();
  EXPECT_THAT(run->out(), HasSubstr("TASK_FAILED"));
  EXPECT_THAT(run->out(), HasSubstr("/nonexistent/docker.sock"));
  // Command tasks still run on the native containerizer.
  auto native = execute("native-still-works", "true");
  ASSERT_TRUE(native);
  ASSERT_TRUE(native->wait(60s)) << native->out() << native->err();
  EXPECT_EQ(native->exitCode(), 0) << native->out() << native->err();
}

}  // namespace
}  // namespace tessera::testing
