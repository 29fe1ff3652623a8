// The Docker containerizer against the real engine at /var/run/docker.sock (skipped without
// one, failed when CI=true), with the test image tessera-test/busybox built locally.
#include "modules/containerizer_docker/docker_containerizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <sstream>

#include "kernel/runtime/logging.h"
#include "kernel/runtime/runtime.h"
#include "kernel/state/memory_store.h"
#include "modules/containerizer_docker/docker_spec.h"
#include "tests/support/docker.h"
#include "tests/support/module_context.h"
#include "tests/support/subprocess.h"

namespace tessera::modules::containerizer_docker {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using namespace std::chrono_literals;
using tessera::testing::onExecutor;

constexpr auto kDeadline = 60s;

api::Parameters params(std::vector<std::pair<std::string, std::string>> entries) {
  return api::Parameters(std::move(entries));
}

/// The module's context: a real runtime and strand.
class TestContext final : public tessera::testing::ModuleContext {
 public:
  TestContext() : ModuleContext("containerizer_docker_test") {}
};

std::string readFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// One containerizer instance on a fresh agent work dir, plus cleanup of every container it
/// may leave (by the work-dir label).
class DockerContainerizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TESSERA_REQUIRE_DOCKER();
    containerizer_ = make(kDefaultSocket);
    ASSERT_TRUE(containerizer_);
  }

  void TearDown() override {
    if (containerizer_) shutDown(*context_, containerizer_);
    for (const auto& id :
         testing::dockerContainersWithLabel(client_, kLabelWorkDir, workDir_.path().string())) {
      (void)client_.call("DELETE", fmt::format("/containers/{}?force=1", id));
    }
  }

  std::unique_ptr<DockerContainerizer> make(const std::string& socket,
                                            std::unique_ptr<TestContext>* context = nullptr) {
    auto& slot = context ? *context : context_;
    slot = std::make_unique<TestContext>();
    auto made =
        onExecutor<api::Result<std::unique_ptr<api::Module>>>(slot->executor(), [&](auto done) {
          done(DockerContainerizer::create(params({{"docker_socket", socket}}), *slot));
        });
    if (!made || !*made) return nullptr;
    std::unique_ptr<DockerContainerizer> instance(
        static_cast<DockerContainerizer*>(made->value().release()));
    api::ContainerizerSettings settings;
    settings.agentWorkDir = workDir_.path().string();
    settings.defaultGracePeriod = 2s;
    auto initialized = onExecutor<api::Status>(
        slot->executor(), [&](auto done) { instance->initialize(settings, done); });
    EXPECT_TRUE(initialized && *initialized);
    return instance;
  }

  void shutDown(TestContext& context, std::unique_ptr<DockerContainerizer>& instance) {
    onExecutor<int>(context.executor(), [&](auto done) {
      instance->stop();
      instance.reset();
      done(0);
    });
  }

  api::ContainerConfig config(const std::string& command,
                              const std::string& resources = "cpus:0.1;mem:64") {
    api::ContainerConfig config;
    config.containerId = fmt::format("test-{}-{}", getpid(), counter_++);
    config.agentId = "agent";
    config.frameworkId = "framework";
    config.taskId = config.containerId;
    config.sandboxDirectory = (workDir_.path() / config.containerId).string();
    fs::create_directories(config.sandboxDirectory);
    config.command.set_shell(true);
    config.command.set_value(command);
    config.container.emplace();
    config.container->set_type(v1::ContainerInfo::DOCKER);
    config.container->mutable_docker()->set_image(testing::kDockerTestImage);
    config.resources = api::Resources::parse(resources).value();
    config.environment = {{"MESOS_TASK_ID", config.taskId}};
    return config;
  }

  api::Result<api::ContainerCheckpoint> launch(DockerContainerizer& containerizer,
                                               TestContext& context,
                                               const api::ContainerConfig& config) {
    auto launched = onExecutor<api::Result<api::ContainerCheckpoint>>(
        context.executor(), [&](auto done) { containerizer.launch(config, done); });
    if (!launched) return api::makeStatus(api::StatusCode::kDeadlineExceeded, "launch hung");
    return *launched;
  }
  api::Result<api::ContainerCheckpoint> launch(const api::ContainerConfig& config) {
    return launch(*containerizer_, *context_, config);
  }

  api::Result<api::ContainerTermination> wait(DockerContainerizer& containerizer,
                                              TestContext& context, const std::string& id) {
    auto ended = onExecutor<api::Result<api::ContainerTermination>>(
        context.executor(), [&](auto done) { containerizer.wait(id, done); });
    if (!ended) return api::makeStatus(api::StatusCode::kDeadlineExceeded, "wait hung");
    return *ended;
  }
  api::Result<api::ContainerTermination> wait(const std::string& id) {
    return wait(*containerizer_, *context_, id);
  }

  bool containerExists(const std::string& containerId) {
    auto inspected =
        client_.call("GET", fmt::format("/containers/{}/json", containerName(containerId)));
    return inspected && inspected->status == 200;
  }

  std::string containerState(const std::string& containerId) {
    auto inspected =
        client_.call("GET", fmt::format("/containers/{}/json", containerName(containerId)));
    if (!inspected || inspected->status != 200) return "";
    auto at = inspected->body.find("\"Status\":\"");
    if (at == std::string::npos) return "";
    at += 10;
    return inspected->body.substr(at, inspected->body.find('"', at) - at);
  }

  testing::TempDir workDir_;
  EngineClient client_{kDefaultSocket};
  std::unique_ptr<TestContext> context_;
  std::unique_ptr<DockerContainerizer> containerizer_;
  static inline std::atomic<int> counter_{0};  // ids unique across the tests of a process
};

TEST_F(DockerContainerizerTest, RunsACommandWithItsOutputInTheSandboxAndRemovesTheContainer) {
  auto task = config(
      "echo to-stdout; echo to-stderr >&2; echo sandbox=$MESOS_SANDBOX; "
      "echo file > $MESOS_SANDBOX/written");
  auto launched = launch(task);
  ASSERT_TRUE(launched) << launched.status().message();
  EXPECT_EQ(launched->containerizer, kModuleName);
  auto ended = wait(task.containerId);
  ASSERT_TRUE(ended) << ended.status().message();
  ASSERT_TRUE(ended->waitStatus);
  EXPECT_TRUE(WIFEXITED(*ended->waitStatus));
  EXPECT_EQ(WEXITSTATUS(*ended->waitStatus), 0);
  EXPECT_FALSE(ended->killed);
  const fs::path sandbox = task.sandboxDirectory;
  EXPECT_THAT(readFile(sandbox / "stdout"), HasSubstr("to-stdout"));
  EXPECT_THAT(readFile(sandbox / "stdout"), HasSubstr("sandbox=/mnt/mesos/sandbox"));
  EXPECT_THAT(readFile(sandbox / "stderr"), HasSubstr("to-stderr"));
  EXPECT_EQ(readFile(sandbox / "written"), "file\n");
  EXPECT_TRUE(testing::waitFor([&] { return !containerExists(task.containerId); }, kDeadline));
}

TEST_F(DockerContainerizerTest, ExitCodeIsPropagated) {
  auto task = config("exit 3");
  ASSERT_TRUE(launch(task));
  auto ended = wait(task.containerId);
  ASSERT_TRUE(ended && ended->waitStatus);
  EXPECT_EQ(WEXITSTATUS(*ended->waitStatus), 3);
  EXPECT_THAT(ended->message, HasSubstr("exited with status 3"));
}

TEST_F(DockerContainerizerTest, DestroyStopsTheContainerWithinTheGracePeriod) {
  // A shell that ignores SIGTERM: only the SIGKILL after the grace period ends it.
  auto task = config("trap '' TERM; while true; do sleep 1; done");
  ASSERT_TRUE(launch(task));
  const auto start = std::chrono::steady_clock::now();
  auto destroyed = onExecutor<api::Status>(context_->executor(), [&](auto done) {
    containerizer_->destroy(task.containerId, 1s, done);
  });
  ASSERT_TRUE(destroyed);
  EXPECT_TRUE(*destroyed) << destroyed->message();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 900ms);
  auto ended = wait(task.containerId);
  ASSERT_TRUE(ended);
  EXPECT_TRUE(ended->killed);
  ASSERT_TRUE(ended->waitStatus);
  EXPECT_EQ(WEXITSTATUS(*ended->waitStatus), 137);  // SIGKILL
  EXPECT_TRUE(testing::waitFor([&] { return !containerExists(task.containerId); }, kDeadline));
}

TEST_F(DockerContainerizerTest, OomKillIsAMemoryLimitation) {
  // Doubles a shell variable until the 16MB limit kills it.
  auto task = config("x=xxxxxxxxxxxxxxxx; while true; do x=$x$x; done", "cpus:0.1;mem:16");
  ASSERT_TRUE(launch(task));
  auto ended = wait(task.containerId);
  ASSERT_TRUE(ended);
  ASSERT_TRUE(ended->limitation) << ended->message;
  EXPECT_EQ(ended->limitation->reason, v1::TaskStatus::REASON_CONTAINER_LIMITATION_MEMORY);
  EXPECT_THAT(ended->limitation->message, HasSubstr("OOM"));
  EXPECT_FALSE(ended->killed);
}

TEST_F(DockerContainerizerTest, MissingImageFailsTheLaunchNamingTheImage) {
  auto task = config("true");
  task.container->mutable_docker()->set_image("tessera-test/no-such-image:1");
  const auto start = std::chrono::steady_clock::now();
  auto launched = launch(task);
  ASSERT_FALSE(launched);
  EXPECT_THAT(launched.status().message(), HasSubstr("tessera-test/no-such-image:1"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
  EXPECT_FALSE(containerExists(task.containerId));
}

TEST_F(DockerContainerizerTest, ForcePullOfAnUnpullableImageFails) {
  auto task = config("true");
  task.container->mutable_docker()->set_force_pull_image(true);
  auto launched = launch(task);
  ASSERT_FALSE(launched);
  EXPECT_THAT(launched.status().message(), HasSubstr("cannot pull image 'tessera-test/busybox'"));
}

TEST_F(DockerContainerizerTest, InvalidTaskIsRefusedBeforeTheEngineIsAsked) {
  auto task = config("true");
  auto* parameter = task.container->mutable_docker()->add_parameters();
  parameter->set_key("no-such-option");
  auto launched = launch(task);
  ASSERT_FALSE(launched);
  EXPECT_EQ(launched.status().code(), api::StatusCode::kInvalidArgument);
  EXPECT_THAT(launched.status().message(), HasSubstr("no-such-option"));
}

TEST_F(DockerContainerizerTest, UsageComesFromTheEngineStatistics) {
  auto task = config("sleep 60");
  ASSERT_TRUE(launch(task));
  auto stats = onExecutor<api::Result<v1::ResourceStatistics>>(
      context_->executor(), [&](auto done) { containerizer_->usage(task.containerId, done); });
  ASSERT_TRUE(stats && *stats) << (stats ? stats->status().message() : "hung");
  EXPECT_EQ((*stats)->mem_limit_bytes(), 64u * 1024 * 1024);
  EXPECT_GT((*stats)->mem_total_bytes(), 0u);
  auto destroyed = onExecutor<api::Status>(context_->executor(), [&](auto done) {
    containerizer_->destroy(task.containerId, 0s, done);
  });
  ASSERT_TRUE(destroyed && *destroyed);
}

TEST_F(DockerContainerizerTest, SupportsOnlyDockerContainers) {
  auto task = config("true");
  auto docker = onExecutor<bool>(context_->executor(),
                                 [&](auto done) { containerizer_->supports(task, done); });
  EXPECT_EQ(docker, std::optional<bool>(true));
  task.container.reset();
  auto plain = onExecutor<bool>(context_->executor(),
                                [&](auto done) { containerizer_->supports(task, done); });
  EXPECT_EQ(plain, std::optional<bool>(false));
}

TEST_F(DockerContainerizerTest, RecoveryReattachesRemovesOrphansAndReportsExits) {
  auto running = config("echo before; sleep 600");
  auto exits = config("sleep 1; exit 4");
  auto orphan = config("sleep 600");
  auto runningCheckpoint = launch(running);
  auto exitsCheckpoint = launch(exits);
  ASSERT_TRUE(runningCheckpoint && exitsCheckpoint);
  ASSERT_TRUE(launch(orphan));
  ASSERT_TRUE(testing::waitFor(
      [&] {
        return readFile(fs::path(running.sandboxDirectory) / "stdout").find("before") !=
               std::string::npos;
      },
      kDeadline));
  // The agent goes away; its containers stay.
  shutDown(*context_, containerizer_);
  ASSERT_TRUE(
      testing::waitFor([&] { return containerState(exits.containerId) == "exited"; }, kDeadline));
  EXPECT_EQ(containerState(running.containerId), "running");

  containerizer_ = make(kDefaultSocket);
  ASSERT_TRUE(containerizer_);
  auto recovered = onExecutor<api::Result<std::vector<api::RecoveredContainer>>>(
      context_->executor(), [&](auto done) {
        containerizer_->recover({*runningCheckpoint, *exitsCheckpoint}, done);
      });
  ASSERT_TRUE(recovered && *recovered) << (recovered ? recovered->status().message() : "hung");
  EXPECT_EQ((*recovered)->size(), 2u);
  // The orphan (in no checkpoint) is removed.
  EXPECT_TRUE(testing::waitFor([&] { return !containerExists(orphan.containerId); }, kDeadline));
  // The one that exited meanwhile reports its real exit code.
  auto exited = wait(exits.containerId);
  ASSERT_TRUE(exited && exited->waitStatus) << (exited ? exited->message : "");
  EXPECT_EQ(WEXITSTATUS(*exited->waitStatus), 4);
  // The running one is watched again and can be destroyed.
  auto destroyed = onExecutor<api::Status>(context_->executor(), [&](auto done) {
    containerizer_->destroy(running.containerId, 0s, done);
  });
  ASSERT_TRUE(destroyed && *destroyed);
  auto ended = wait(running.containerId);
  ASSERT_TRUE(ended);
  EXPECT_TRUE(ended->killed);
  // Its logs were not copied twice.
  const std::string out = readFile(fs::path(running.sandboxDirectory) / "stdout");
  EXPECT_EQ(out.find("before"), out.rfind("before")) << out;
}

TEST_F(DockerContainerizerTest, OrphansAreKeptWhenKillOrphansIsOff) {
  auto orphan = config("sleep 600");
  ASSERT_TRUE(launch(orphan));
  shutDown(*context_, containerizer_);
  context_ = std::make_unique<TestContext>();
  auto made =
      onExecutor<api::Result<std::unique_ptr<api::Module>>>(context_->executor(), [&](auto done) {
        done(DockerContainerizer::create(params({{"docker_kill_orphans", "false"}}), *context_));
      });
  ASSERT_TRUE(made && *made);
  containerizer_.reset(static_cast<DockerContainerizer*>(made->value().release()));
  api::ContainerizerSettings settings;
  settings.agentWorkDir = workDir_.path().string();
  ASSERT_TRUE(onExecutor<api::Status>(
      context_->executor(), [&](auto done) { containerizer_->initialize(settings, done); }));
  auto recovered = onExecutor<api::Result<std::vector<api::RecoveredContainer>>>(
      context_->executor(), [&](auto done) { containerizer_->recover({}, done); });
  ASSERT_TRUE(recovered && *recovered);
  EXPECT_TRUE(containerExists(orphan.containerId));
}

TEST_F(DockerContainerizerTest, UnreachableDaemonFailsLaunchesFastAndSaysSo) {
  std::unique_ptr<TestContext> context;
  auto containerizer = make("/nonexistent/docker.sock", &context);
  ASSERT_TRUE(containerizer);
  auto reachable = onExecutor<double>(context->executor(), [&](auto done) {
    done(context->metrics_.gauges.at("containerizer/docker/daemon_reachable")());
  });
  EXPECT_EQ(reachable, std::optional<double>(0.0));
  const auto start = std::chrono::steady_clock::now();
  auto launched = launch(*containerizer, *context, config("true"));
  ASSERT_FALSE(launched);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_THAT(launched.status().message(), HasSubstr("/nonexistent/docker.sock"));
  // Recovery with Docker checkpoints cannot go on without the daemon.
  api::ContainerCheckpoint checkpoint;
  checkpoint.containerId = "x";
  checkpoint.containerizer = kModuleName;
  auto recovered = onExecutor<api::Result<std::vector<api::RecoveredContainer>>>(
      context->executor(), [&](auto done) { containerizer->recover({checkpoint}, done); });
  ASSERT_TRUE(recovered);
  EXPECT_FALSE(*recovered);
  shutDown(*context, containerizer);
}

TEST(DockerContainerizerParametersTest, MalformedParametersAreRefusedByName) {
  TestContext context;
  auto bad = DockerContainerizer::create(params({{"docker_kill_orphans", "maybe"}}), context);
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.status().message(), HasSubstr("docker_kill_orphans"));
  auto relative = DockerContainerizer::create(params({{"docker_socket", "docker.sock"}}), context);
  ASSERT_FALSE(relative);
  EXPECT_THAT(relative.status().message(), HasSubstr("docker_socket"));
  auto unknown = DockerContainerizer::create(params({{"colour", "blue"}}), context);
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.status().message(), HasSubstr("colour"));
}

// Task groups need nested containers, which Docker cannot give: refused, naming why.
TEST_F(DockerContainerizerTest, RefusesNestedContainersOfTaskGroups) {
  auto task = config("true");
  task.parentContainerId = "executor";
  auto launched = launch(task);
  ASSERT_FALSE(launched);
  EXPECT_EQ(launched.status().code(), api::StatusCode::kInvalidArgument);
  EXPECT_THAT(launched.status().message(),
              HasSubstr("the Docker containerizer does not support task groups"));
  EXPECT_FALSE(containerExists(task.containerId));
}

}  // namespace
}  // namespace tessera::modules::containerizer_docker
