#include "modules/containerizer_native/native_containerizer.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "kernel/runtime/logging.h"
#include "kernel/runtime/runtime.h"
#include "kernel/state/memory_store.h"
#include "modules/containerizer_native/proc.h"
#include "tests/support/ci.h"
#include "tests/support/module_context.h"
#include "tests/support/subprocess.h"

namespace tessera::modules::containerizer_native {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr auto kDeadline = 30s;

api::Parameters parameter(std::string key, std::string value) {
  return api::Parameters(std::vector<std::pair<std::string, std::string>>{{key, value}});
}

/// The module's context: a real runtime and strand.
class TestContext final : public tessera::testing::ModuleContext {
 public:
  TestContext() : ModuleContext("containerizer_native_test") {}
};

/// An isolator double: records the calls in order and answers as told, posting its callbacks
/// back to the containerizer's executor the way the kernel's proxies do.
class FakeIsolator final : public api::Isolator {
 public:
  explicit FakeIsolator(api::Executor& executor) : executor_(executor) {}

  void stop() override {}
  std::vector<std::string> isolations() const override { return {"fake/isolator"}; }
  void recover(const std::vector<api::ContainerCheckpoint>& alive,
               std::function<void(api::Status)> done) override {
    std::string ids;
    for (const auto& checkpoint : alive) ids += checkpoint.containerId;
    record("recover:" + ids);
    reply(std::move(done), api::Status::ok());
  }
  void prepare(const api::ContainerConfig&, std::function<void(api::Status)> done) override {
    record("prepare");
    reply(std::move(done), prepareResult);
  }
  void isolate(std::string_view id, int64_t pid, std::function<void(api::Status)> done) override {
    {
      std::lock_guard lock(mutex_);
      isolatedInto_.emplace_back(id);
    }
    // The child must not have exec'd yet: it still runs this test binary's image.
    std::error_code ec;
    exeAtIsolate = fs::read_symlink(fmt::format("/proc/{}/exe", pid), ec).string();
    record("isolate");
    if (holdIsolate) {
      std::lock_guard lock(mutex_);
      heldIsolate_ = std::move(done);
      return;
    }
    reply(std::move(done), isolateResult);
  }
  void watch(std::string_view, std::function<void(api::ContainerLimitation)> limited) override {
    record("watch");
    std::lock_guard lock(mutex_);
    limited_ = std::move(limited);
  }
  void update(std::string_view, const api::Resources&,
              std::function<void(api::Status)> done) override {
    record("update");
    reply(std::move(done), api::Status::ok());
  }
  void usage(std::string_view, v1::ResourceStatistics stats,
             std::function<void(api::Result<v1::ResourceStatistics>)> done) override {
    stats.set_cpus_limit(1.5);
    executor_.post([done = std::move(done), stats] { done(stats); });
  }
  void cleanup(std::string_view, std::function<void(api::Status)> done) override {
    record("cleanup");
    {
      std::lock_guard lock(mutex_);
      limited_ = nullptr;
    }
    reply(std::move(done), api::Status::ok());
  }

  /// Reports a limitation through the callback given to watch(), on the executor.
  void limit(api::ContainerLimitation limitation) {
    executor_.post([this, limitation] {
      std::function<void(api::ContainerLimitation)> limited;
      {
        std::lock_guard lock(mutex_);
        limited = std::exchange(limited_, nullptr);
      }
      if (limited) limited(limitation);
    });
  }
  /// Answers an isolate() held back by `holdIsolate`.
  void answerHeldIsolate(api::Status status) {
    std::lock_guard lock(mutex_);
    if (heldIsolate_) reply(std::exchange(heldIsolate_, nullptr), status);
  }
  std::vector<std::string> calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  /// The container ids isolate() was called with, in order.
  std::vector<std::string> isolatedInto() {
    std::lock_guard lock(mutex_);
    return isolatedInto_;
  }

  api::Status prepareResult;
  api::Status isolateResult;
  bool holdIsolate = false;
  std::string exeAtIsolate;

 private:
  void record(std::string call) {
    std::lock_guard lock(mutex_);
    calls_.push_back(std::move(call));
  }
  void reply(std::function<void(api::Status)> done, api::Status status) {
    executor_.post([done = std::move(done), status] { done(status); });
  }

  api::Executor& executor_;
  std::mutex mutex_;
  std::vector<std::string> calls_;
  std::vector<std::string> isolatedInto_;
  std::function<void(api::ContainerLimitation)> limited_;
  std::function<void(api::Status)> heldIsolate_;
};

class NativeContainerizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::permissions(dir_.path(), fs::perms::all, fs::perm_options::replace);
    containerizer_ = make();
  }
  void TearDown() override {
    for (pid_t pid : started_) kill(-pid, SIGKILL);
    if (containerizer_) shutdown(std::move(containerizer_));
  }

  /// Runs `fn(done)` on the executor and waits for `done`; throws (failing the test) after the
  /// deadline. A second call of `done` throws std::future_error, on the executor: loud.
  template <typename T, typename Fn>
  T call(Fn fn) {
    auto promise = std::make_shared<std::promise<T>>();
    auto future = promise->get_future();
    context_.executor().post([fn = std::move(fn), promise]() mutable {
      fn([promise](T value) { promise->set_value(std::move(value)); });
    });
    if (future.wait_for(kDeadline) != std::future_status::ready) {
      throw std::runtime_error("callback not called before the deadline");
    }
    return future.get();
  }

  std::unique_ptr<NativeContainerizer> make(
      std::vector<std::shared_ptr<api::Isolator>> isolators = {},
      std::vector<std::string> isolation = {}) {
    auto created = call<api::Result<std::unique_ptr<api::Module>>>([&](auto done) {
      done(NativeContainerizer::create(parameter("default_grace_period", "5secs"), context_));
    });
    if (!created) throw std::runtime_error(created.status().toString());
    std::unique_ptr<NativeContainerizer> instance(
        static_cast<NativeContainerizer*>(created->release()));
    api::ContainerizerSettings settings;
    settings.agentWorkDir = (dir_.path() / "agent").string();
    settings.isolators = std::move(isolators);
    settings.isolation = std::move(isolation);
    auto status =
        call<api::Status>([&](auto done) { instance->initialize(settings, std::move(done)); });
    if (!status) throw std::runtime_error(status.toString());
    return instance;
  }

  /// As the kernel does: stop() and destroy on the executor.
  void shutdown(std::unique_ptr<NativeContainerizer> instance) {
    call<int>([&](auto done) {
      instance->stop();
      instance.reset();
      done(0);
    });
  }

  api::ContainerConfig config(const std::string& id, const std::string& command) {
    api::ContainerConfig config;
    config.containerId = id;
    config.taskId = "task-" + id;
    config.frameworkId = "fw";
    config.sandboxDirectory = (dir_.path() / id).string();
    fs::create_directories(config.sandboxDirectory);
    fs::permissions(config.sandboxDirectory, fs::perms::all, fs::perm_options::replace);
    config.command.set_value(command);
    return config;
  }

  api::Result<api::ContainerCheckpoint> launch(const api::ContainerConfig& config,
                                               NativeContainerizer* on = nullptr) {
    NativeContainerizer* target = on ? on : containerizer_.get();
    auto result = call<api::Result<api::ContainerCheckpoint>>(
        [&](auto done) { target->launch(config, std::move(done)); });
    if (result) started_.push_back(static_cast<pid_t>(result->pid));
    return result;
  }
  api::Result<api::ContainerTermination> wait(const std::string& id,
                                              NativeContainerizer* on = nullptr) {
    NativeContainerizer* target = on ? on : containerizer_.get();
    return call<api::Result<api::ContainerTermination>>(
        [&](auto done) { target->wait(id, std::move(done)); });
  }
  api::Status destroy(const std::string& id, std::chrono::nanoseconds grace) {
    return call<api::Status>(
        [&](auto done) { containerizer_->destroy(id, grace, std::move(done)); });
  }
  api::Result<v1::ResourceStatistics> usage(const std::string& id) {
    return call<api::Result<v1::ResourceStatistics>>(
        [&](auto done) { containerizer_->usage(id, std::move(done)); });
  }
  api::Result<std::vector<api::RecoveredContainer>> recover(
      std::vector<api::ContainerCheckpoint> checkpoints) {
    return call<api::Result<std::vector<api::RecoveredContainer>>>(
        [&](auto done) { containerizer_->recover(checkpoints, std::move(done)); });
  }
  fs::path runtimeDir(const std::string& id) { return dir_.path() / "agent" / "containers" / id; }
  std::vector<std::string> containers(NativeContainerizer* on = nullptr) {
    NativeContainerizer* target = on ? on : containerizer_.get();
    return call<std::vector<std::string>>([&](auto done) { target->containers(std::move(done)); });
  }

  std::string read(const std::string& id, const std::string& name) {
    std::ifstream in(dir_.path() / id / name);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  testing::TempDir dir_;
  TestContext context_;
  std::unique_ptr<NativeContainerizer> containerizer_;
  std::vector<pid_t> started_;
};

TEST_F(NativeContainerizerTest, CommandExitingWithZero) {
  auto checkpoint = launch(config("c0", "exit 0"));
  ASSERT_TRUE(checkpoint) << checkpoint.status().toString();
  EXPECT_EQ(checkpoint->containerId, "c0");
  EXPECT_EQ(checkpoint->containerizer, "org_tessera_containerizer_native");
  EXPECT_GT(checkpoint->pid, 0);
  EXPECT_GT(checkpoint->startTime, 0u);
  auto termination = wait("c0");
  ASSERT_TRUE(termination) << termination.status().toString();
  ASSERT_TRUE(termination->waitStatus);
  EXPECT_TRUE(WIFEXITED(*termination->waitStatus));
  EXPECT_EQ(WEXITSTATUS(*termination->waitStatus), 0);
  EXPECT_FALSE(termination->killed);
  EXPECT_EQ(termination->message, "Command exited with status 0");
  EXPECT_THAT(containers(), ElementsAre());
  EXPECT_EQ(context_.metrics_.counters["containerizer/native/launched"].value(), 1u);
  // A wait after the end is answered at once; the id cannot be launched again.
  EXPECT_TRUE(wait("c0"));
  EXPECT_EQ(launch(config("c0", "true")).status().code(), api::StatusCode::kAlreadyExists);
}

TEST_F(NativeContainerizerTest, CommandExitingWithThree) {
  ASSERT_TRUE(launch(config("c3", "exit 3")));
  auto termination = wait("c3");
  ASSERT_TRUE(termination) << termination.status().toString();
  EXPECT_EQ(WEXITSTATUS(*termination->waitStatus), 3);
  EXPECT_EQ(termination->message, "Command exited with status 3");
}

TEST_F(NativeContainerizerTest, ArgvFormPassesArgumentsWithoutAShell) {
  api::ContainerConfig argv = config("argv", "printf");
  argv.command.set_shell(false);
  for (const char* arg : {"printf-as-argv0", "%s|%s", "a b", "$HOME"}) {
    argv.command.add_arguments(arg);
  }
  ASSERT_TRUE(launch(argv));
  auto termination = wait("argv");
  ASSERT_TRUE(termination);
  EXPECT_EQ(termination->message, "Command exited with status 0");
  EXPECT_EQ(read("argv", "stdout"), "a b|$HOME");
}

TEST_F(NativeContainerizerTest, AMissingProgramFailsTheLaunchWithTheReason) {
  api::ContainerConfig argv = config("missing", "/nonexistent/program");
  argv.command.set_shell(false);
  auto result = launch(argv);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.status().toString(),
            "internal: cannot execute '/nonexistent/program': No such file or directory");
  auto termination = wait("missing");
  ASSERT_TRUE(termination);
  EXPECT_EQ(termination->message,
            "cannot execute '/nonexistent/program': No such file or directory");
}

TEST_F(NativeContainerizerTest, EnvironmentAndWorkingDirectory) {
  api::ContainerConfig env = config("env", R"(echo "$FOO|$BAR|$TESSERA_CONTAINER_ID"; pwd)");
  auto* variable = env.command.mutable_environment()->add_variables();
  variable->set_name("FOO");
  variable->set_value("from command");
  variable = env.command.mutable_environment()->add_variables();
  variable->set_name("BAR");
  variable->set_value("from command");
  env.environment["BAR"] = "from agent";
  ASSERT_TRUE(launch(env));
  ASSERT_TRUE(wait("env"));
  EXPECT_EQ(read("env", "stdout"),
            "from command|from agent|env\n" + fs::canonical(env.sandboxDirectory).string() + "\n");
}

TEST_F(NativeContainerizerTest, OutputIsAppendedToTheSandboxFiles) {
  api::ContainerConfig out = config("out", "echo to-out; echo to-err >&2");
  dir_.write("out/stdout", "earlier\n");
  ASSERT_TRUE(launch(out));
  ASSERT_TRUE(wait("out"));
  EXPECT_EQ(read("out", "stdout"), "earlier\nto-out\n");
  EXPECT_EQ(read("out", "stderr"), "to-err\n");
}

TEST_F(NativeContainerizerTest, FdsTheAgentLeakedDoNotReachTheContainer) {
  int leaked = open("/dev/null", O_RDONLY);  // no O_CLOEXEC, as careless agent code might
  ASSERT_GE(leaked, 0);
  ASSERT_TRUE(
      launch(config("fds", fmt::format("test -e /proc/self/fd/{} && echo leaked", leaked))));
  ASSERT_TRUE(wait("fds"));
  close(leaked);
  EXPECT_EQ(read("fds", "stdout"), "");
}

TEST_F(NativeContainerizerTest, RunsAsTheGivenUserWhenRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  api::ContainerConfig user = config("user", "id -u; id -g");
  user.user = "nobody";
  ASSERT_TRUE(launch(user));
  auto termination = wait("user");
  ASSERT_TRUE(termination);
  EXPECT_EQ(termination->message, "Command exited with status 0");
  EXPECT_EQ(read("user", "stdout"), "65534\n65534\n");

  api::ContainerConfig unknown = config("unknown-user", "true");
  unknown.user = "no-such-user-tessera";
  EXPECT_EQ(launch(unknown).status().toString(),
            "invalid argument: user 'no-such-user-tessera' does not exist");
}

TEST_F(NativeContainerizerTest, DestroySendsSigkillAfterTheGracePeriodToWhatIgnoresSigterm) {
  ASSERT_TRUE(launch(config("stubborn", "trap '' TERM; echo ready; exec sleep 60")));
  ASSERT_TRUE(testing::waitFor([&] { return read("stubborn", "stdout") == "ready\n"; }));
  auto grace = 300ms;
  auto before = std::chrono::steady_clock::now();
  EXPECT_TRUE(destroy("stubborn", grace));
  EXPECT_GE(std::chrono::steady_clock::now() - before, grace);
  auto termination = wait("stubborn");
  ASSERT_TRUE(termination);
  EXPECT_TRUE(termination->killed);
  EXPECT_EQ(termination->message, "Command terminated with signal KILL");
  EXPECT_EQ(context_.metrics_.counters["containerizer/native/destroyed"].value(), 1u);
  // Idempotent after the end; unknown ids are NotFound.
  EXPECT_TRUE(destroy("stubborn", 0s));
}

TEST_F(NativeContainerizerTest, DestroyEndsANormalCommandWithSigterm) {
  ASSERT_TRUE(launch(config("sleeper", "sleep 60")));
  // The grace period is far longer than the deadline: only SIGTERM can end it in time.
  EXPECT_TRUE(destroy("sleeper", std::chrono::hours(1)));
  auto termination = wait("sleeper");
  ASSERT_TRUE(termination);
  EXPECT_TRUE(termination->killed);
  EXPECT_EQ(termination->message, "Command terminated with signal TERM");
}

TEST_F(NativeContainerizerTest, DestroyKillsTheWholeProcessGroup) {
  ASSERT_TRUE(launch(config("tree", "sleep 60 & echo $! > child; wait")));
  ASSERT_TRUE(testing::waitFor([&] { return read("tree", "child").ends_with("\n"); }));
  pid_t child = std::stoi(read("tree", "child"));
  EXPECT_TRUE(destroy("tree", 0s));
  ASSERT_TRUE(wait("tree"));
  // The grandchild was reparented, so it is not ours to reap: it is gone or a zombie of init.
  EXPECT_TRUE(testing::waitFor([&] {
    auto stat = readProcStat(child);
    return !stat || stat->state == 'Z';
  }));
}

TEST_F(NativeContainerizerTest, UnknownContainersAreNotFound) {
  EXPECT_EQ(destroy("nope", 0s).code(), api::StatusCode::kNotFound);
  EXPECT_EQ(wait("nope").status().code(), api::StatusCode::kNotFound);
  EXPECT_EQ(usage("nope").status().code(), api::StatusCode::kNotFound);
  auto update = call<api::Status>(
      [&](auto done) { containerizer_->update("nope", api::Resources(), std::move(done)); });
  EXPECT_EQ(update.code(), api::StatusCode::kNotFound);
}

TEST_F(NativeContainerizerTest, SupportsPlainAndMesosContainersOnly) {
  api::ContainerConfig plain = config("s", "true");
  EXPECT_TRUE(call<bool>([&](auto done) { containerizer_->supports(plain, std::move(done)); }));
  plain.container.emplace().set_type(v1::ContainerInfo::DOCKER);
  EXPECT_FALSE(call<bool>([&](auto done) { containerizer_->supports(plain, std::move(done)); }));
  EXPECT_EQ(launch(plain).status().code(), api::StatusCode::kInvalidArgument);
}

TEST_F(NativeContainerizerTest, IsolatorsArePreparedIsolatedBeforeExecWatchedAndCleanedUp) {
  shutdown(std::move(containerizer_));
  auto isolator = std::make_shared<FakeIsolator>(context_.executor());
  containerizer_ = make({isolator});  // served by the module, so not in the own-names list
  ASSERT_TRUE(launch(config("iso", "true")));
  ASSERT_TRUE(wait("iso"));
  EXPECT_THAT(isolator->calls(), ElementsAre("prepare", "isolate", "watch", "cleanup"));
  EXPECT_EQ(isolator->exeAtIsolate, fs::read_symlink("/proc/self/exe").string());
}

TEST_F(NativeContainerizerTest, AFailedIsolateFailsTheLaunchAndTheCommandNeverRuns) {
  shutdown(std::move(containerizer_));
  auto isolator = std::make_shared<FakeIsolator>(context_.executor());
  isolator->isolateResult = api::internalError("no cgroup for you");
  containerizer_ = make({isolator});
  auto result = launch(config("never", "touch marker"));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.status().toString(), "internal: isolating: no cgroup for you");
  EXPECT_THAT(isolator->calls(), ElementsAre("prepare", "isolate", "cleanup"));
  EXPECT_FALSE(fs::exists(dir_.path() / "never" / "marker"));
  auto termination = wait("never");
  ASSERT_TRUE(termination);
  EXPECT_EQ(termination->message, "isolating: no cgroup for you");
  EXPECT_EQ(context_.metrics_.counters["containerizer/native/launch_failed"].value(), 1u);
}

TEST_F(NativeContainerizerTest, DestroyDuringIsolationAbortsTheLaunch) {
  shutdown(std::move(containerizer_));
  auto isolator = std::make_shared<FakeIsolator>(context_.executor());
  isolator->holdIsolate = true;
  containerizer_ = make({isolator});
  auto pending =
      std::async(std::launch::async, [&] { return launch(config("held", "touch marker")); });
  ASSERT_TRUE(testing::waitFor([&] { return isolator->calls().size() == 2; }));
  EXPECT_TRUE(destroy("held", std::chrono::hours(1)));
  auto result = pending.get();
  ASSERT_FALSE(result);
  EXPECT_EQ(result.status().toString(), "aborted: container 'held' was destroyed during launch");
  auto termination = wait("held");
  ASSERT_TRUE(termination);
  EXPECT_TRUE(termination->killed);
  // The late answer is ignored, and the command never ran.
  isolator->answerHeldIsolate(api::Status::ok());
  EXPECT_THAT(containers(), ElementsAre());
  EXPECT_THAT(isolator->calls(), ElementsAre("prepare", "isolate", "cleanup"));
  EXPECT_FALSE(fs::exists(dir_.path() / "held" / "marker"));
}

TEST_F(NativeContainerizerTest, AFailedPrepareFailsTheLaunchBeforeAnyFork) {
  shutdown(std::move(containerizer_));
  auto isolator = std::make_shared<FakeIsolator>(context_.executor());
  isolator->prepareResult = api::invalidArgument("bad limits");
  containerizer_ = make({isolator});
  auto result = launch(config("unprepared", "touch marker"));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.status().toString(), "invalid argument: preparing isolation: bad limits");
  EXPECT_THAT(isolator->calls(), ElementsAre("prepare", "cleanup"));
  EXPECT_FALSE(fs::exists(dir_.path() / "unprepared" / "marker"));
}

TEST_F(NativeContainerizerTest, ALimitationDestroysTheContainerAndIsReported) {
  shutdown(std::move(containerizer_));
  auto isolator = std::make_shared<FakeIsolator>(context_.executor());
  containerizer_ = make({isolator});
  ASSERT_TRUE(launch(config("hog", "sleep 60")));
  api::ContainerLimitation limitation;
  limitation.reason = v1::TaskStatus::REASON_CONTAINER_LIMITATION_MEMORY;
  limitation.message = "memory limit of 64MB exceeded";
  isolator->limit(limitation);
  auto termination = wait("hog");
  ASSERT_TRUE(termination);
  ASSERT_TRUE(termination->limitation);
  EXPECT_EQ(termination->limitation->reason, v1::TaskStatus::REASON_CONTAINER_LIMITATION_MEMORY);
  EXPECT_EQ(termination->message, "memory limit of 64MB exceeded");
  EXPECT_FALSE(termination->killed);
  EXPECT_TRUE(WIFSIGNALED(*termination->waitStatus));
  EXPECT_EQ(isolator->calls().back(), "cleanup");
}

TEST_F(NativeContainerizerTest, UpdateAndUsageGoThroughTheIsolators) {
  shutdown(std::move(containerizer_));
  auto isolator = std::make_shared<FakeIsolator>(context_.executor());
  containerizer_ = make({isolator});
  ASSERT_TRUE(launch(config("busy", "while :; do :; done")));
  auto update = call<api::Status>(
      [&](auto done) { containerizer_->update("busy", api::Resources(), std::move(done)); });
  EXPECT_TRUE(update) << update.toString();
  EXPECT_THAT(isolator->calls(), ::testing::Contains("update"));
  ASSERT_TRUE(testing::waitFor([&] {
    auto stats = usage("busy");
    return stats && stats->cpus_user_time_secs() + stats->cpus_system_time_secs() > 0;
  }));
  auto stats = usage("busy");
  ASSERT_TRUE(stats) << stats.status().toString();
  EXPECT_GE(stats->processes(), 1u);
  EXPECT_GE(stats->threads(), 1u);
  EXPECT_GT(stats->mem_rss_bytes(), 0u);
  EXPECT_GT(stats->timestamp(), 0);
  EXPECT_DOUBLE_EQ(stats->cpus_limit(), 1.5);  // the isolator's part
  EXPECT_TRUE(destroy("busy", 0s));
}

TEST_F(NativeContainerizerTest, ManyConcurrentLaunchesAreAllReaped) {
  constexpr int kTasks = 50;
  std::vector<std::future<api::Result<api::ContainerTermination>>> ends;
  std::vector<std::shared_ptr<std::promise<api::Result<api::ContainerCheckpoint>>>> launches;
  std::vector<api::ContainerConfig> configs;
  for (int i = 0; i < kTasks; ++i)
    configs.push_back(config(fmt::format("m{}", i), fmt::format("exit {}", i % 7)));
  auto allLaunched = call<int>([&](auto done) {
    auto remaining = std::make_shared<int>(kTasks);
    for (const auto& config : configs) {
      containerizer_->launch(config, [this, done, remaining, config](auto result) {
        EXPECT_TRUE(result) << result.status().toString();
        if (result) started_.push_back(static_cast<pid_t>(result->pid));
        if (--*remaining == 0) done(0);
      });
    }
  });
  EXPECT_EQ(allLaunched, 0);
  for (int i = 0; i < kTasks; ++i) {
    auto termination = wait(fmt::format("m{}", i));
    ASSERT_TRUE(termination) << termination.status().toString();
    EXPECT_EQ(termination->message, fmt::format("Command exited with status {}", i % 7));
  }
  EXPECT_THAT(containers(), ElementsAre());
  auto running = call<double>(
      [&](auto done) { done(context_.metrics_.gauges["containerizer/native/running"]()); });
  EXPECT_EQ(running, 0);
  for (pid_t pid : started_) EXPECT_NE(waitpid(pid, nullptr, WNOHANG), 0) << "already reaped";
}

TEST_F(NativeContainerizerTest, RecoveryReadoptsALiveProcess) {
  auto isolator = std::make_shared<FakeIsolator>(context_.executor());
  auto checkpoint = launch(config("survivor", "sleep 60"));
  ASSERT_TRUE(checkpoint);
  shutdown(std::move(containerizer_));  // the agent goes away; the task keeps running
  ASSERT_TRUE(readProcStat(static_cast<pid_t>(checkpoint->pid)));

  containerizer_ = make({isolator});
  auto recovered = call<api::Result<std::vector<api::RecoveredContainer>>>(
      [&](auto done) { containerizer_->recover({*checkpoint}, std::move(done)); });
  ASSERT_TRUE(recovered) << recovered.status().toString();
  ASSERT_EQ(recovered->size(), 1u);
  EXPECT_EQ((*recovered)[0].containerId, "survivor");
  EXPECT_FALSE((*recovered)[0].ended);
  EXPECT_THAT(isolator->calls(), ElementsAre("recover:survivor", "watch"));
  EXPECT_THAT(containers(), ElementsAre("survivor"));
  auto usageAfter = usage("survivor");
  ASSERT_TRUE(usageAfter);
  EXPECT_GE(usageAfter->processes(), 1u);

  auto pending = std::async(std::launch::async, [&] { return wait("survivor"); });
  kill(static_cast<pid_t>(checkpoint->pid), SIGKILL);  // killed outside the agent
  auto termination = pending.get();
  ASSERT_TRUE(termination) << termination.status().toString();
  EXPECT_FALSE(termination->killed);
  // In this test the process is still our child, so its status is known; after a real agent
  // restart it would not be and waitStatus would be absent.
  if (termination->waitStatus) {
    EXPECT_EQ(termination->message, "Command terminated with signal KILL");
  } else {
    EXPECT_THAT(termination->message, HasSubstr("unknown"));
  }
  EXPECT_THAT(containers(), ElementsAre());
}

TEST_F(NativeContainerizerTest, RecoveryReportsEndedContainersAndNeverTrustsAReusedPid) {
  api::ContainerCheckpoint reused;
  reused.containerId = "reused";
  reused.containerizer = kModuleName;
  reused.pid = getpid();  // alive, but not the process that was checkpointed
  reused.startTime = readProcStat(getpid())->startTime + 1;
  api::ContainerCheckpoint gone = reused;
  gone.containerId = "gone";
  gone.pid = 0x3ffffe;  // beyond any pid in use here
  api::ContainerCheckpoint other = reused;
  other.containerId = "docker";
  other.containerizer = "org_tessera_containerizer_docker";

  auto recovered = call<api::Result<std::vector<api::RecoveredContainer>>>([&](auto done) {
    containerizer_->recover({reused, gone, other}, std::move(done));
  });
  ASSERT_TRUE(recovered) << recovered.status().toString();
  ASSERT_EQ(recovered->size(), 2u);
  for (const auto& container : *recovered) {
    ASSERT_TRUE(container.ended) << container.containerId;
    EXPECT_FALSE(container.ended->waitStatus);
    EXPECT_THAT(container.ended->message, HasSubstr("exit status is unknown"));
  }
  EXPECT_THAT(containers(), ElementsAre());
  EXPECT_TRUE(wait("reused"));  // its termination is kept for the agent
}

TEST_F(NativeContainerizerTest, RecoveryKillsOrphansItStarted) {
  auto checkpoint = launch(config("orphan", "sleep 60"));
  ASSERT_TRUE(checkpoint);
  shutdown(std::move(containerizer_));
  containerizer_ = make();
  // The agent lost the checkpoint (it crashed before writing it, say).
  auto recovered = call<api::Result<std::vector<api::RecoveredContainer>>>(
      [&](auto done) { containerizer_->recover({}, std::move(done)); });
  ASSERT_TRUE(recovered);
  EXPECT_TRUE(recovered->empty());
  int status = 0;
  ASSERT_EQ(waitpid(static_cast<pid_t>(checkpoint->pid), &status, 0), checkpoint->pid);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST_F(NativeContainerizerTest, ACommandKilledByASignalIsReportedWithIt) {
  ASSERT_TRUE(launch(config("usr1", "kill -USR1 $$")));
  auto termination = wait("usr1");
  ASSERT_TRUE(termination);
  ASSERT_TRUE(termination->waitStatus);
  EXPECT_TRUE(WIFSIGNALED(*termination->waitStatus));
  EXPECT_EQ(termination->message, "Command terminated with signal USR1");
  EXPECT_FALSE(fs::exists(runtimeDir("usr1")));  // removed once reported
}

/// A signal mask line ("SigBlk", "SigIgn") of /proc/<pid>/status.
uint64_t signalMask(pid_t pid, const std::string& name) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(name + ":")) return std::stoull(line.substr(name.size() + 1), nullptr, 16);
  }
  throw std::runtime_error(fmt::format("no {} for pid {}", name, pid));
}

TEST_F(NativeContainerizerTest, TheSupervisorBlocksSignalsAndTheCommandStartsWithNone) {
  ASSERT_TRUE(launch(config("pair", "echo $PPID $$ > pids; exec sleep 60")));
  ASSERT_TRUE(testing::waitFor([&] { return read("pair", "pids").ends_with("\n"); }));
  std::istringstream pids(read("pair", "pids"));
  pid_t parent = 0, command = 0;
  pids >> parent >> command;
  const auto supervisor = static_cast<pid_t>(started_.back());
  EXPECT_EQ(parent, supervisor);
  const uint64_t term = uint64_t{1} << (SIGTERM - 1);
  EXPECT_EQ(signalMask(supervisor, "SigBlk") & term, term);
  EXPECT_EQ(signalMask(command, "SigBlk"), 0u);
  EXPECT_EQ(signalMask(command, "SigIgn"), 0u);
  // So destroy's SIGTERM ends the command, and the supervisor lives to record it.
  EXPECT_TRUE(destroy("pair", std::chrono::hours(1)));
  auto termination = wait("pair");
  ASSERT_TRUE(termination);
  EXPECT_TRUE(termination->killed);
  EXPECT_EQ(termination->message, "Command terminated with signal TERM");
}

TEST_F(NativeContainerizerTest, ARecoveredContainerEndsWithItsRealExitStatus) {
  auto checkpoint =
      launch(config("later", "while [ ! -f go ]; do sleep 0.01; done; echo done; exit 3"));
  ASSERT_TRUE(checkpoint);
  shutdown(std::move(containerizer_));  // the agent crashes; the task keeps running
  containerizer_ = make();
  auto recovered = recover({*checkpoint});
  ASSERT_TRUE(recovered) << recovered.status().toString();
  ASSERT_EQ(recovered->size(), 1u);
  EXPECT_FALSE((*recovered)[0].ended);

  dir_.write("later/go", "");
  auto termination = wait("later");
  ASSERT_TRUE(termination) << termination.status().toString();
  ASSERT_TRUE(termination->waitStatus);
  EXPECT_TRUE(WIFEXITED(*termination->waitStatus));
  EXPECT_EQ(WEXITSTATUS(*termination->waitStatus), 3);
  EXPECT_EQ(termination->message, "Command exited with status 3");
  EXPECT_FALSE(termination->killed);
  EXPECT_EQ(read("later", "stdout"), "done\n");
  EXPECT_FALSE(fs::exists(runtimeDir("later")));
}

TEST_F(NativeContainerizerTest, AContainerThatEndedWhileTheAgentWasDownIsRecoveredWithItsStatus) {
  auto checkpoint = launch(config("brief", "while [ ! -f go ]; do sleep 0.01; done; exit 3"));
  ASSERT_TRUE(checkpoint);
  shutdown(std::move(containerizer_));
  dir_.write("brief/go", "");
  // Reap the supervisor here, as init does after a real agent crash: no waitid can tell its
  // status any more, only the file it left.
  const auto pid = static_cast<pid_t>(checkpoint->pid);
  int status = 0;
  ASSERT_TRUE(testing::waitFor([&] { return waitpid(pid, &status, WNOHANG) == pid; }));
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3);  // the supervisor ends as its command did
  EXPECT_TRUE(fs::exists(runtimeDir("brief") / "exit_status"));

  containerizer_ = make();
  auto recovered = recover({*checkpoint});
  ASSERT_TRUE(recovered) << recovered.status().toString();
  ASSERT_EQ(recovered->size(), 1u);
  ASSERT_TRUE((*recovered)[0].ended);
  ASSERT_TRUE((*recovered)[0].ended->waitStatus);
  EXPECT_EQ(WEXITSTATUS(*(*recovered)[0].ended->waitStatus), 3);
  EXPECT_EQ((*recovered)[0].ended->message, "Command exited with status 3");
  auto termination = wait("brief");
  ASSERT_TRUE(termination);
  EXPECT_EQ(termination->message, "Command exited with status 3");
  EXPECT_FALSE(fs::exists(runtimeDir("brief")));
}

TEST_F(NativeContainerizerTest, DestroyingARecoveredContainerEndsItWithSigterm) {
  auto checkpoint = launch(config("readopted", "sleep 60"));
  ASSERT_TRUE(checkpoint);
  shutdown(std::move(containerizer_));
  containerizer_ = make();
  auto recovered = recover({*checkpoint});
  ASSERT_TRUE(recovered);
  ASSERT_EQ(recovered->size(), 1u);
  EXPECT_FALSE((*recovered)[0].ended);
  // The grace period is far longer than the deadline: only SIGTERM can end it in time.
  EXPECT_TRUE(destroy("readopted", std::chrono::hours(1)));
  auto termination = wait("readopted");
  ASSERT_TRUE(termination);
  EXPECT_TRUE(termination->killed);
  ASSERT_TRUE(termination->waitStatus);
  EXPECT_EQ(termination->message, "Command terminated with signal TERM");
}

TEST_F(NativeContainerizerTest, RejectsIsolationItCannotDo) {
  EXPECT_THROW(make({}, {"filesystem/linux"}), std::runtime_error);
  EXPECT_THROW(make({}, {"namespaces/ipc"}), std::runtime_error);
  auto created = NativeContainerizer::create(parameter("default_grace_period", "3"), context_);
  EXPECT_EQ(created.status().code(), api::StatusCode::kInvalidArgument);
}

// The agent hands Docker's flags to the Docker containerizer only (kernel/cli/module_flags.h),
// so the native one knows nothing of them and refuses them like any unknown key.
TEST_F(NativeContainerizerTest, RefusesDockerParametersLikeAnyUnknownKey) {
  auto docker =
      NativeContainerizer::create(parameter("docker_socket", "/var/run/docker.sock"), context_);
  EXPECT_EQ(docker.status().code(), api::StatusCode::kInvalidArgument);
  EXPECT_EQ(docker.status().message(),
            "unknown parameter 'docker_socket' (known: default_grace_period)");
  auto unknown = NativeContainerizer::create(parameter("docker_colour", "blue"), context_);
  EXPECT_EQ(unknown.status().code(), api::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("docker_colour"));
  auto grace = NativeContainerizer::create(parameter("default_grace_period", "3sec"), context_);
  EXPECT_EQ(grace.status().message(),
            "parameter 'default_grace_period': '3sec' is not a valid duration: unknown unit 'sec' "
            "(use ns, us, ms, secs, mins, hrs, days or weeks)");
}

TEST_F(NativeContainerizerTest, PidNamespaceIsolationNeedsRoot) {
  auto created = call<api::Result<std::unique_ptr<api::Module>>>(
      [&](auto done) { done(NativeContainerizer::create(api::Parameters(), context_)); });
  ASSERT_TRUE(created) << created.status().toString();
  std::unique_ptr<NativeContainerizer> instance(
      static_cast<NativeContainerizer*>(created->release()));
  instance->setEffectiveUidForTest(1000);
  api::ContainerizerSettings settings;
  settings.agentWorkDir = (dir_.path() / "agent").string();
  settings.isolation = {"namespaces/pid"};
  auto status =
      call<api::Status>([&](auto done) { instance->initialize(settings, std::move(done)); });
  EXPECT_EQ(status.code(), api::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "isolation 'namespaces/pid' needs the agent to run as root");
  shutdown(std::move(instance));
}

// A name nothing implements (no isolator module serves it) is refused, never run unisolated;
// Mesos's usage-only posix isolators are accepted.
TEST_F(NativeContainerizerTest, UnknownIsolationIsRefused) {
  for (const auto& [name, ok] : std::vector<std::pair<std::string, bool>>{
           {"cgroups/cpu", false}, {"posix/cpu", true}, {"filesystem/posix", true}}) {
    auto created = call<api::Result<std::unique_ptr<api::Module>>>(
        [&](auto done) { done(NativeContainerizer::create(api::Parameters(), context_)); });
    ASSERT_TRUE(created) << created.status().toString();
    std::unique_ptr<NativeContainerizer> instance(
        static_cast<NativeContainerizer*>(created->release()));
    api::ContainerizerSettings settings;
    settings.agentWorkDir = (dir_.path() / "agent").string();
    settings.isolation = {name};
    auto status =
        call<api::Status>([&](auto done) { instance->initialize(settings, std::move(done)); });
    EXPECT_EQ(status.isOk(), ok) << name << ": " << status.toString();
    if (!ok) {
      EXPECT_THAT(status.message(), HasSubstr(fmt::format("'{}'", name)));
    }
    shutdown(std::move(instance));
  }
}

/// The container's processes by host pid, found by the marker they all carry (zombies have no
/// readable environment, so only live ones count).
std::vector<pid_t> markedProcesses(const fs::path& agentWorkDir, const std::string& id) {
  auto marked = findMarkedProcesses(agentWorkDir.string());
  auto it = marked.find(id);
  return it == marked.end() ? std::vector<pid_t>() : it->second;
}

/// The same tests with --isolation=namespaces/pid; they need root (CI runs them as root, and
/// there not being root is a failure, not a skip).
class NativeContainerizerPidNamespaceTest : public NativeContainerizerTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      TESSERA_SKIP_UNLESS_CI("namespaces/pid needs root (run the tests as root to cover it)");
    }
    fs::permissions(dir_.path(), fs::perms::all, fs::perm_options::replace);
    containerizer_ = make({}, {"namespaces/pid"});
  }

  fs::path agentWorkDir() { return dir_.path() / "agent"; }
};

TEST_F(NativeContainerizerPidNamespaceTest, TheCommandSeesItsOwnPidsAndTheSupervisorIsInit) {
  auto checkpoint = launch(config("pids", "echo $$ $PPID"));
  ASSERT_TRUE(checkpoint) << checkpoint.status().toString();
  auto termination = wait("pids");
  ASSERT_TRUE(termination) << termination.status().toString();
  EXPECT_EQ(termination->message, "Command exited with status 0");
  std::istringstream out(read("pids", "stdout"));
  pid_t self = 0, parent = 0;
  out >> self >> parent;
  EXPECT_GE(self, 2);
  EXPECT_LE(self, 2) << "the host pid would be " << checkpoint->pid << " or above";
  EXPECT_EQ(parent, 1);  // the supervisor
  // The checkpoint holds the host's pid, which recovery and signals use.
  EXPECT_GT(checkpoint->pid, 1);
}

TEST_F(NativeContainerizerPidNamespaceTest, ProcShowsOnlyTheContainersProcesses) {
  ASSERT_TRUE(launch(config("proc", "ls /proc | grep -c '^[0-9]'")));
  auto termination = wait("proc");
  ASSERT_TRUE(termination) << termination.status().toString();
  EXPECT_EQ(termination->message, "Command exited with status 0");
  // The supervisor, sh, ls and grep at most; the host has far more.
  const int count = std::stoi(read("proc", "stdout"));
  EXPECT_GE(count, 2);
  EXPECT_LE(count, 5);
  EXPECT_GT(listPids().size(), 5u);
}

/// The mount points of this (the host's) mount namespace.
std::string hostMountInfo() {
  std::ifstream in("/proc/self/mountinfo");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST_F(NativeContainerizerPidNamespaceTest, MountsInsideDoNotReachTheHost) {
  // Make the sandbox a shared mount (as / is under systemd), so a mount inside would propagate
  // to the host unless the container made its mounts private.
  api::ContainerConfig mounts = config("mounts", "");
  ASSERT_EQ(mount(mounts.sandboxDirectory.c_str(), mounts.sandboxDirectory.c_str(), nullptr,
                  MS_BIND, nullptr),
            0)
      << strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{mounts.sandboxDirectory};
  ASSERT_EQ(mount(nullptr, mounts.sandboxDirectory.c_str(), nullptr, MS_SHARED, nullptr), 0)
      << strerror(errno);
  mounts.command.set_value(
      "mkdir m && mount -t tmpfs none m && touch m/inside && echo ready && "
      "while [ ! -f go ]; do sleep 0.01; done; test -f m/inside");
  ASSERT_TRUE(launch(mounts));
  ASSERT_TRUE(testing::waitFor([&] { return read("mounts", "stdout") == "ready\n"; }))
      << read("mounts", "stderr");
  const std::string mountPoint = (dir_.path() / "mounts" / "m").string();
  EXPECT_THAT(hostMountInfo(), ::testing::Not(HasSubstr(mountPoint)));
  EXPECT_TRUE(fs::is_directory(mountPoint));
  EXPECT_FALSE(fs::exists(dir_.path() / "mounts" / "m" / "inside"));
  dir_.write("mounts/go", "");
  auto termination = wait("mounts");
  ASSERT_TRUE(termination) << termination.status().toString();
  EXPECT_EQ(termination->message, "Command exited with status 0") << read("mounts", "stderr");
  EXPECT_THAT(hostMountInfo(), ::testing::Not(HasSubstr(mountPoint)));
}

TEST_F(NativeContainerizerPidNamespaceTest, ExitStatusesPropagate) {
  ASSERT_TRUE(launch(config("three", "exit 3")));
  ASSERT_TRUE(launch(config("usr1", "kill -USR1 $$")));
  auto three = wait("three");
  ASSERT_TRUE(three) << three.status().toString();
  ASSERT_TRUE(three->waitStatus);
  EXPECT_TRUE(WIFEXITED(*three->waitStatus));
  EXPECT_EQ(WEXITSTATUS(*three->waitStatus), 3);
  EXPECT_EQ(three->message, "Command exited with status 3");
  // The supervisor, as init, cannot die of its own signal; the recorded status is the truth.
  auto usr1 = wait("usr1");
  ASSERT_TRUE(usr1) << usr1.status().toString();
  ASSERT_TRUE(usr1->waitStatus);
  EXPECT_TRUE(WIFSIGNALED(*usr1->waitStatus));
  EXPECT_EQ(usr1->message, "Command terminated with signal USR1");
}

TEST_F(NativeContainerizerPidNamespaceTest, TheSupervisorReapsOrphansReparentedToIt) {
  // The inner shell's background child is orphaned, so it is reparented to the namespace's init;
  // a zombie left unreaped would still show in /proc.
  ASSERT_TRUE(launch(config("orphans",
                            "sh -c 'true & echo $! > orphan'; sleep 0.5; test -e /proc/$(cat "
                            "orphan) && exit 4; exit 3")));
  auto termination = wait("orphans");
  ASSERT_TRUE(termination) << termination.status().toString();
  EXPECT_EQ(termination->message, "Command exited with status 3");
}

TEST_F(NativeContainerizerPidNamespaceTest, DestroyEndsTheCommandWithSigtermAndNothingRemains) {
  // A background process that left the group and ignores SIGTERM: only the end of the namespace
  // can take it.
  ASSERT_TRUE(launch(config("tree",
                            "setsid sh -c \"trap '' TERM; exec sleep 60\" & echo ready; "
                            "exec sleep 60")));
  ASSERT_TRUE(testing::waitFor([&] { return read("tree", "stdout") == "ready\n"; }));
  ASSERT_TRUE(
      testing::waitFor([&] { return markedProcesses(agentWorkDir(), "tree").size() >= 2; }));
  auto before = markedProcesses(agentWorkDir(), "tree");
  // The grace period is far longer than the deadline: only SIGTERM can end it in time.
  EXPECT_TRUE(destroy("tree", std::chrono::hours(1)));
  auto termination = wait("tree");
  ASSERT_TRUE(termination) << termination.status().toString();
  EXPECT_TRUE(termination->killed);
  EXPECT_EQ(termination->message, "Command terminated with signal TERM");
  EXPECT_TRUE(markedProcesses(agentWorkDir(), "tree").empty());
  for (pid_t pid : before) {
    auto stat = readProcStat(pid);
    EXPECT_TRUE(!stat || stat->state == 'Z') << "pid " << pid << " survived";
  }
}

TEST_F(NativeContainerizerPidNamespaceTest, DestroyKillsAfterTheGracePeriodAndNothingRemains) {
  ASSERT_TRUE(launch(config("stubborn", "trap '' TERM; sleep 60 & echo ready; wait")));
  ASSERT_TRUE(testing::waitFor([&] { return read("stubborn", "stdout") == "ready\n"; }));
  EXPECT_TRUE(destroy("stubborn", 200ms));
  auto termination = wait("stubborn");
  ASSERT_TRUE(termination) << termination.status().toString();
  EXPECT_TRUE(termination->killed);
  EXPECT_EQ(termination->message, "Command terminated with signal KILL");
  EXPECT_TRUE(markedProcesses(agentWorkDir(), "stubborn").empty());
}

TEST_F(NativeContainerizerPidNamespaceTest, RecoveryReadoptsAndSweepsByHostPid) {
  auto kept = launch(config("kept", "while [ ! -f go ]; do sleep 0.01; done; exit 3"));
  auto lost = launch(config("lost", "sleep 60"));
  ASSERT_TRUE(kept);
  ASSERT_TRUE(lost);
  ASSERT_TRUE(testing::waitFor([&] { return !markedProcesses(agentWorkDir(), "lost").empty(); }));
  shutdown(std::move(containerizer_));
  containerizer_ = make({}, {"namespaces/pid"});
  auto recovered = recover({*kept});  // the checkpoint of "lost" was never written
  ASSERT_TRUE(recovered) << recovered.status().toString();
  ASSERT_EQ(recovered->size(), 1u);
  EXPECT_FALSE((*recovered)[0].ended);
  // The sweep SIGKILLs the marked command; its supervisor (unmarked: it never exec'd) then ends.
  ASSERT_EQ(waitpid(static_cast<pid_t>(lost->pid), nullptr, 0), lost->pid);
  EXPECT_TRUE(markedProcesses(agentWorkDir(), "lost").empty());

  dir_.write("kept/go", "");
  auto termination = wait("kept");
  ASSERT_TRUE(termination) << termination.status().toString();
  EXPECT_EQ(termination->message, "Command exited with status 3");
}

// ==== nested containers (task groups) ==========================================================

TEST_F(NativeContainerizerTest, ANestedContainerJoinsItsParentsIsolationWithoutItsOwn) {
  shutdown(std::move(containerizer_));
  auto isolator = std::make_shared<FakeIsolator>(context_.executor());
  containerizer_ = make({isolator});
  ASSERT_TRUE(launch(config("parent", "sleep 60")));
  api::ContainerConfig nested = config("nested", "exit 0");
  nested.parentContainerId = "parent";
  auto checkpoint = launch(nested);
  ASSERT_TRUE(checkpoint) << checkpoint.status().toString();
  EXPECT_EQ(checkpoint->data, "native/1 parent=parent");
  auto termination = wait("nested");
  ASSERT_TRUE(termination);
  EXPECT_EQ(termination->message, "Command exited with status 0");
  // The nested one was only isolated, into the parent's isolation (its cgroups, whose limits
  // the parent's prepare() set): no prepare, watch or cleanup of its own.
  EXPECT_THAT(isolator->calls(), ElementsAre("prepare", "isolate", "watch", "isolate"));
  EXPECT_THAT(isolator->isolatedInto(), ElementsAre("parent", "parent"));
  EXPECT_TRUE(destroy("parent", std::chrono::seconds(5)));
  EXPECT_THAT(isolator->calls(), ElementsAre("prepare", "isolate", "watch", "isolate", "cleanup"));
}

TEST_F(NativeContainerizerTest, ANestedContainerNeedsARunningParent) {
  api::ContainerConfig orphan = config("orphan", "true");
  orphan.parentContainerId = "nobody";
  EXPECT_EQ(launch(orphan).status().code(), api::StatusCode::kNotFound);
  ASSERT_TRUE(launch(config("short", "exit 0")));
  ASSERT_TRUE(wait("short"));
  orphan.parentContainerId = "short";
  EXPECT_EQ(launch(orphan).status().code(), api::StatusCode::kNotFound);
}

TEST_F(NativeContainerizerTest, DestroyingAParentDestroysItsNestedContainersFirst) {
  ASSERT_TRUE(launch(config("exec", "sleep 60")));
  for (const char* id : {"t1", "t2"}) {
    api::ContainerConfig nested = config(id, "sleep 60");
    nested.parentContainerId = "exec";
    ASSERT_TRUE(launch(nested));
  }
  EXPECT_TRUE(destroy("exec", std::chrono::seconds(5)));
  for (const char* id : {"t1", "t2", "exec"}) {
    auto termination = wait(id);
    ASSERT_TRUE(termination) << id;
    EXPECT_TRUE(termination->killed) << id;
  }
  EXPECT_THAT(containers(), ElementsAre());
}

TEST_F(NativeContainerizerTest, AParentEndingByALimitationTakesItsNestedContainersAlong) {
  shutdown(std::move(containerizer_));
  auto isolator = std::make_shared<FakeIsolator>(context_.executor());
  containerizer_ = make({isolator});
  ASSERT_TRUE(launch(config("exec", "sleep 60")));
  api::ContainerConfig nested = config("task", "sleep 60");
  nested.parentContainerId = "exec";
  ASSERT_TRUE(launch(nested));
  api::ContainerLimitation limitation;
  limitation.reason = v1::TaskStatus::REASON_CONTAINER_LIMITATION_MEMORY;
  limitation.message = "memory limit of 64MB exceeded";
  isolator->limit(limitation);
  auto termination = wait("task");
  ASSERT_TRUE(termination);
  ASSERT_TRUE(termination->limitation);
  EXPECT_EQ(termination->message, "memory limit of 64MB exceeded");
  ASSERT_TRUE(wait("exec"));
  EXPECT_EQ(isolator->calls().back(), "cleanup");
}

TEST_F(NativeContainerizerTest, RecoveryRelinksNestedContainersToTheirParent) {
  auto parent = launch(config("exec", "sleep 60"));
  ASSERT_TRUE(parent);
  api::ContainerConfig nested = config("task", "sleep 60");
  nested.parentContainerId = "exec";
  auto child = launch(nested);
  ASSERT_TRUE(child);
  // A new instance (an agent restart) re-adopts both; destroying the parent takes the child.
  shutdown(std::move(containerizer_));
  containerizer_ = make();
  auto recovered = recover({*parent, *child});
  ASSERT_TRUE(recovered) << recovered.status().toString();
  EXPECT_THAT(containers(), ElementsAre("exec", "task"));
  EXPECT_TRUE(destroy("exec", std::chrono::seconds(5)));
  auto termination = wait("task");
  ASSERT_TRUE(termination);
  EXPECT_TRUE(termination->killed);
  EXPECT_THAT(containers(), ElementsAre());
}

}  // namespace
}  // namespace tessera::modules::containerizer_native
