// The cgroups isolator against the host's real cgroup hierarchy (under a unique root, removed at
// the end), plus the v2 logic against a fake hierarchy in a temp dir. The real-host tests skip
// when not root or the hierarchy is not writable, and fail instead under CI=true.
#include "modules/isolator_cgroups/cgroups_isolator.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>

#include "kernel/runtime/logging.h"
#include "kernel/runtime/runtime.h"
#include "kernel/state/memory_store.h"
#include "tests/support/ci.h"
#include "tests/support/module_context.h"
#include "tests/support/subprocess.h"

namespace tessera::modules::isolator_cgroups {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr auto kDeadline = 30s;
using tessera::testing::TempDir;
using tessera::testing::waitFor;

/// The module's context: a real runtime and strand.
class TestContext final : public tessera::testing::ModuleContext {
 public:
  TestContext() : ModuleContext("isolator_cgroups_test") {}
};

api::Parameters params(std::vector<std::pair<std::string, std::string>> entries) {
  return api::Parameters(std::move(entries));
}

std::string readText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// --- no host needed ------------------------------------------------------------------------

TEST(CgroupsMath, SharesAndWeightFollowMesosAndRunc) {
  EXPECT_EQ(cpuShares(1.0), 1024u);
  EXPECT_EQ(cpuShares(0.5), 512u);
  EXPECT_EQ(cpuShares(0.0), 2u);  // the kernel's minimum
  EXPECT_EQ(cpuWeight(2), 1u);
  EXPECT_EQ(cpuWeight(1024), 39u);
  EXPECT_EQ(cpuWeight(262144), 10000u);
}

class CgroupsParametersTest : public ::testing::Test {
 protected:
  api::Result<std::unique_ptr<api::Module>> make(
      std::vector<std::pair<std::string, std::string>> entries) {
    std::promise<api::Result<std::unique_ptr<api::Module>>> made;
    context_.executor().post(
        [&] { made.set_value(CgroupsIsolator::create(params(entries), context_)); });
    return made.get_future().get();
  }
  TestContext context_;
};

TEST_F(CgroupsParametersTest, RejectsUnknownAndMalformedParameters) {
  auto unknown = make({{"cgroups_rooot", "x"}});
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown parameter 'cgroups_rooot'"));
  auto cfs = make({{"cgroups_enable_cfs", "yes"}});
  ASSERT_FALSE(cfs);
  EXPECT_THAT(cfs.status().message(), HasSubstr("'cgroups_enable_cfs'"));
  auto pids = make({{"pids_max", "-3"}});
  ASSERT_FALSE(pids);
  EXPECT_THAT(pids.status().message(), HasSubstr("'pids_max'"));
  auto isolation = make({{"isolation", "cgroups/cpu,cgroups/blkio"}});
  ASSERT_FALSE(isolation);
  EXPECT_THAT(isolation.status().message(), HasSubstr("'cgroups/blkio'"));
}

TEST_F(CgroupsParametersTest, InactiveWithoutCgroupsIsolationAndRefusesToPrepare) {
  TempDir empty;  // no controller anywhere: never looked at
  auto made = make(
      {{"isolation", "posix/cpu,namespaces/pid"}, {"cgroups_hierarchy", empty.path().string()}});
  ASSERT_TRUE(made) << made.status().toString();
  auto* isolator = static_cast<CgroupsIsolator*>(made->get());
  EXPECT_FALSE(isolator->layout());
  std::promise<api::Status> prepared;
  context_.executor().post([&] {
    api::ContainerConfig config;
    config.containerId = "c1";
    isolator->prepare(config, [&](api::Status status) { prepared.set_value(status); });
  });
  auto status = prepared.get_future().get();
  EXPECT_EQ(status.code(), api::StatusCode::kFailedPrecondition);
  std::promise<void> stopped;
  context_.executor().post([&] {
    isolator->stop();
    made->reset();
    stopped.set_value();
  });
  stopped.get_future().wait();
}

TEST_F(CgroupsParametersTest, MissingV1ControllerNamesTheControllerAndPath) {
  TempDir hierarchy;
  fs::create_directories(hierarchy.path() / "cpu");
  std::ofstream(hierarchy.path() / "cpu" / "cgroup.procs").put('\n');
  fs::create_directories(hierarchy.path() / "cpuacct");
  std::ofstream(hierarchy.path() / "cpuacct" / "cgroup.procs").put('\n');
  auto made = make(
      {{"isolation", "cgroups/cpu,cgroups/mem"}, {"cgroups_hierarchy", hierarchy.path().string()}});
  ASSERT_FALSE(made);
  EXPECT_EQ(made.status().code(), api::StatusCode::kFailedPrecondition);
  EXPECT_THAT(made.status().message(), HasSubstr("controller 'memory'"));
  EXPECT_THAT(made.status().message(), HasSubstr((hierarchy.path() / "memory").string()));
}

// A fake v2 hierarchy: cgroup.controllers at the top, subtree_control files to write.
class FakeV2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    hierarchy_.write("cgroup.controllers", "cpuset cpu io memory pids\n");
    hierarchy_.write("cgroup.subtree_control", "");
    fs::create_directories(hierarchy_.path() / "tessera");
    hierarchy_.write("tessera/cgroup.subtree_control", "");
  }
  TempDir hierarchy_;
};

TEST_F(FakeV2Test, DetectsV2AndEnablesTheControllersDownToTheRoot) {
  auto layout = detect(hierarchy_.path().string(), "tessera",
                       {Controller::kCpu, Controller::kCpuacct, Controller::kMemory});
  ASSERT_TRUE(layout) << layout.status().toString();
  EXPECT_EQ(layout->version, 2);
  EXPECT_EQ(layout->path(Controller::kMemory, "c1"),
            (hierarchy_.path() / "tessera" / "c1").string());
  EXPECT_EQ(layout->directories("c1").size(), 1u);  // one unified tree
  EXPECT_EQ(readText((hierarchy_.path() / "cgroup.subtree_control").string()), "+cpu +memory");
  EXPECT_EQ(readText((hierarchy_.path() / "tessera" / "cgroup.subtree_control").string()),
            "+cpu +memory");
}

TEST_F(FakeV2Test, AControllerThatIsNotDelegatedIsAnError) {
  hierarchy_.write("cgroup.controllers", "cpu memory\n");
  auto layout = detect(hierarchy_.path().string(), "tessera", {Controller::kPids});
  ASSERT_FALSE(layout);
  EXPECT_THAT(layout.status().message(), HasSubstr("controller 'pids'"));
  EXPECT_THAT(layout.status().message(),
              HasSubstr((hierarchy_.path() / "cgroup.controllers").string()));
}

TEST_F(FakeV2Test, LimitsUseWeightAndCpuMax) {
  auto layout = detect(hierarchy_.path().string(), "tessera",
                       {Controller::kCpu, Controller::kMemory, Controller::kPids});
  ASSERT_TRUE(layout);
  CgroupsIsolator::Options options;
  options.cpu = options.mem = options.pids = true;
  options.enableCfs = true;
  options.pidsMax = 100;
  auto writes = CgroupsIsolator::limitWrites(*layout, options, "c1", 0.5, 64);
  const std::string dir = (hierarchy_.path() / "tessera" / "c1").string();
  EXPECT_THAT(writes, ::testing::ElementsAre(
                          std::pair<std::string, std::string>(dir + "/cpu.weight", "20"),
                          std::pair<std::string, std::string>(dir + "/cpu.max", "50000 100000"),
                          std::pair<std::string, std::string>(dir + "/pids.max", "100")));
  options.enableCfs = false;
  writes = CgroupsIsolator::limitWrites(*layout, options, "c1", 2, 64);
  EXPECT_EQ(writes[1].second, "max 100000");
}

TEST(FakeV1Test, LimitsUseSharesAndCfs) {
  Layout layout;
  layout.hierarchy = "/h";
  layout.root = "r";
  layout.mounts = {{Controller::kCpu, "/h/cpu"}, {Controller::kPids, "/h/pids"}};
  CgroupsIsolator::Options options;
  options.cpu = options.pids = true;
  options.enableCfs = true;
  auto writes = CgroupsIsolator::limitWrites(layout, options, "c", 1.5, 0);
  ASSERT_EQ(writes.size(), 4u);
  EXPECT_EQ(writes[0], (std::pair<std::string, std::string>("/h/cpu/r/c/cpu.shares", "1536")));
  EXPECT_EQ(writes[1],
            (std::pair<std::string, std::string>("/h/cpu/r/c/cpu.cfs_period_us", "100000")));
  EXPECT_EQ(writes[2],
            (std::pair<std::string, std::string>("/h/cpu/r/c/cpu.cfs_quota_us", "150000")));
  EXPECT_EQ(writes[3], (std::pair<std::string, std::string>("/h/pids/r/c/pids.max", "max")));
}

// --- the real host ------------------------------------------------------------------------

// A child that waits on a pipe, then runs `command` with /bin/sh: the test decides when it
// starts, after it is in its cgroup, as the containerizer does.
struct Child {
  pid_t pid = -1;
  int release = -1;
  static Child start(const std::string& command) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return {};
    pid_t pid = fork();
    if (pid == 0) {
      char byte;
      if (read(fds[0], &byte, 1) != 1) _exit(111);
      execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[0]);
    return {pid, fds[1]};
  }
  void go() {
    char byte = 1;
    ASSERT_EQ(write(release, &byte, 1), 1);
    close(release);
    release = -1;
  }
  int reap() {
    int status = 0;
    if (pid > 0) waitpid(pid, &status, 0);
    pid = -1;
    return status;
  }
  ~Child() {
    if (release >= 0) close(release);
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
};

class HostCgroupsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (geteuid() != 0) {
      why = "needs root for the host's cgroups";
    } else if (::access("/sys/fs/cgroup/cgroup.controllers", F_OK) != 0 &&
               ::access("/sys/fs/cgroup/memory/cgroup.procs", W_OK) != 0) {
      why = "no writable cgroup hierarchy at /sys/fs/cgroup";
    }
    if (!why.empty()) {
      TESSERA_SKIP_UNLESS_CI(why);
    }
    root_ = "tessera_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    make({{"isolation", "cgroups/cpu,cgroups/mem,cgroups/pids"},
          {"cgroups_root", root_},
          {"cgroups_enable_cfs", "true"},
          {"pids_max", "64"}});
  }

  void TearDown() override {
    stopIsolator();
    if (root_.empty()) return;
    // Nothing may be left under the root; then the root goes too.
    for (const char* controller : {"cpu", "cpuacct", "memory", "pids", "freezer"}) {
      fs::path dir = fs::path("/sys/fs/cgroup") / controller / root_;
      if (::access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
        dir = fs::path("/sys/fs/cgroup") / root_;
      }
      std::error_code ec;
      size_t left = 0;
      for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (entry.is_directory()) ++left;
      }
      EXPECT_EQ(left, 0u) << "cgroups left under " << dir;
      ::rmdir(dir.c_str());
    }
  }

  void make(std::vector<std::pair<std::string, std::string>> entries) {
    std::promise<api::Result<std::unique_ptr<api::Module>>> made;
    context_.executor().post(
        [&] { made.set_value(CgroupsIsolator::create(params(entries), context_)); });
    auto result = made.get_future().get();
    ASSERT_TRUE(result) << result.status().toString();
    instance_ = std::move(*result);
    isolator_ = static_cast<CgroupsIsolator*>(instance_.get());
  }

  void stopIsolator() {
    if (!instance_) return;
    std::promise<void> stopped;
    context_.executor().post([&] {
      isolator_->stop();
      instance_.reset();
      stopped.set_value();
    });
    stopped.get_future().wait();
    isolator_ = nullptr;
  }

  template <typename T, typename Fn>
  T call(Fn fn) {
    auto promise = std::make_shared<std::promise<T>>();
    auto future = promise->get_future();
    context_.executor().post([this, fn, promise] {
      fn(*isolator_, [promise](T value) { promise->set_value(std::move(value)); });
    });
    EXPECT_EQ(future.wait_for(kDeadline), std::future_status::ready);
    return future.get();
  }

  api::Status prepare(const std::string& id, const std::string& resources) {
    api::ContainerConfig config;
    config.containerId = id;
    config.resources = *api::Resources::parse(resources);
    return call<api::Status>([config](CgroupsIsolator& i, auto done) { i.prepare(config, done); });
  }
  api::Status isolate(const std::string& id, pid_t pid) {
    return call<api::Status>(
        [id, pid](CgroupsIsolator& i, auto done) { i.isolate(id, pid, done); });
  }
  api::Status cleanup(const std::string& id) {
    return call<api::Status>([id](CgroupsIsolator& i, auto done) { i.cleanup(id, done); });
  }
  api::Result<v1::ResourceStatistics> usage(const std::string& id) {
    return call<api::Result<v1::ResourceStatistics>>(
        [id](CgroupsIsolator& i, auto done) { i.usage(id, v1::ResourceStatistics(), done); });
  }
  std::string path(Controller controller, const std::string& id) {
    return isolator_->layout()->path(controller, id);
  }

  TestContext context_;
  std::unique_ptr<api::Module> instance_;
  CgroupsIsolator* isolator_ = nullptr;
  std::string root_;
};

TEST_F(HostCgroupsTest, PreparedCgroupHasTheLimitsAndTheChildJoinsIt) {
  ASSERT_TRUE(isolator_->layout());
  ASSERT_TRUE(prepare("c1", "cpus:0.5;mem:64"));
  Child child = Child::start("exec sleep 1000");
  ASSERT_TRUE(isolate("c1", child.pid));
  const auto& layout = *isolator_->layout();
  if (layout.version == 1) {
    EXPECT_EQ(readNumber(path(Controller::kCpu, "c1") + "/cpu.shares"), 512u);
    EXPECT_EQ(readNumber(path(Controller::kCpu, "c1") + "/cpu.cfs_quota_us"), 50000u);
    EXPECT_EQ(readNumber(path(Controller::kMemory, "c1") + "/memory.limit_in_bytes"), 64u << 20);
  } else {
    EXPECT_EQ(readText(path(Controller::kCpu, "c1") + "/cpu.max"), "50000 100000\n");
    EXPECT_EQ(readNumber(path(Controller::kMemory, "c1") + "/memory.max"), 64u << 20);
  }
  EXPECT_EQ(readNumber(path(Controller::kPids, "c1") + "/pids.max"), 64u);
  // Every controller's cgroup.procs holds the (not yet exec'd) child.
  EXPECT_EQ(processes(layout, "c1"), std::set<pid_t>{child.pid});
  EXPECT_THAT(readText("/proc/" + std::to_string(child.pid) + "/cgroup"),
              HasSubstr("/" + root_ + "/c1"));

  // update() changes the limits of the running container.
  auto resources = *api::Resources::parse("cpus:2;mem:128");
  ASSERT_TRUE(call<api::Status>(
      [resources](CgroupsIsolator& i, auto done) { i.update("c1", resources, done); }));
  if (layout.version == 1) {
    EXPECT_EQ(readNumber(path(Controller::kCpu, "c1") + "/cpu.shares"), 2048u);
    EXPECT_EQ(readNumber(path(Controller::kMemory, "c1") + "/memory.limit_in_bytes"), 128u << 20);
  }
  child.go();
  ASSERT_TRUE(cleanup("c1"));
  EXPECT_TRUE(WIFSIGNALED(child.reap()));  // cleanup killed it
  EXPECT_FALSE(exists(layout, "c1"));
  EXPECT_TRUE(cleanup("c1"));  // idempotent
}

TEST_F(HostCgroupsTest, UsageReportsCpuTimeThrottlingAndMemory) {
  ASSERT_TRUE(prepare("busy", "cpus:0.2;mem:64"));
  Child child = Child::start("while :; do :; done");
  ASSERT_TRUE(isolate("busy", child.pid));
  child.go();
  v1::ResourceStatistics stats;
  ASSERT_TRUE(waitFor(
      [&] {
        auto result = usage("busy");
        if (!result) return false;
        stats = *result;
        return stats.cpus_user_time_secs() + stats.cpus_system_time_secs() >= 0.1 &&
               stats.cpus_nr_throttled() > 0;
      },
      kDeadline))
      << stats.DebugString();
  EXPECT_DOUBLE_EQ(stats.cpus_limit(), 0.2);
  EXPECT_GT(stats.cpus_nr_periods(), 0u);
  EXPECT_GT(stats.cpus_throttled_time_secs(), 0.0);
  EXPECT_EQ(stats.mem_limit_bytes(), 64u << 20);
  EXPECT_GT(stats.mem_total_bytes(), 0u);
  EXPECT_GT(stats.timestamp(), 1e9);
  ASSERT_TRUE(cleanup("busy"));
}

TEST_F(HostCgroupsTest, OomKillIsReportedAsAMemoryLimitation) {
  ASSERT_TRUE(prepare("hog", "cpus:1;mem:32"));
  // dd's buffer is one 128MB block it fills from /dev/zero: far past the 32MB limit.
  Child child = Child::start("exec dd if=/dev/zero of=/dev/null bs=128M count=1");
  ASSERT_TRUE(isolate("hog", child.pid));
  std::promise<api::ContainerLimitation> limited;
  std::promise<void> watching;
  context_.executor().post([&] {
    isolator_->watch("hog", [&](api::ContainerLimitation limitation) {
      limited.set_value(std::move(limitation));
    });
    watching.set_value();
  });
  watching.get_future().wait();  // as the containerizer: watch first, then the task runs
  child.go();
  auto future = limited.get_future();
  ASSERT_EQ(future.wait_for(kDeadline), std::future_status::ready);
  auto limitation = future.get();
  EXPECT_EQ(limitation.reason, v1::TaskStatus::REASON_CONTAINER_LIMITATION_MEMORY);
  EXPECT_THAT(limitation.message, HasSubstr("memory limit of 32MB"));
  EXPECT_DOUBLE_EQ(limitation.resources.mem(), 32);
  int status = child.reap();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  ASSERT_TRUE(cleanup("hog"));
  EXPECT_EQ(context_.metrics_.counters["isolator/cgroups/oom_kills"].value(), 1u);
}

TEST_F(HostCgroupsTest, RecoverKeepsLiveContainersAndDestroysOrphans) {
  ASSERT_TRUE(prepare("live", "cpus:1;mem:64"));
  ASSERT_TRUE(prepare("orphan", "cpus:1;mem:64"));
  Child live = Child::start("exec sleep 1000");
  Child orphan = Child::start("sleep 1000 & sleep 1000");  // two processes in it
  ASSERT_TRUE(isolate("live", live.pid));
  ASSERT_TRUE(isolate("orphan", orphan.pid));
  live.go();
  orphan.go();
  const Layout layout = *isolator_->layout();
  ASSERT_TRUE(waitFor([&] { return processes(layout, "orphan").size() == 3; }, kDeadline));
  const auto orphanPids = processes(layout, "orphan");

  // An agent restart: a new instance that only knows "live".
  stopIsolator();
  make({{"isolation", "cgroups/cpu,cgroups/mem"}, {"cgroups_root", root_}});
  api::ContainerCheckpoint checkpoint;
  checkpoint.containerId = "live";
  checkpoint.pid = live.pid;
  std::vector<api::ContainerCheckpoint> alive{checkpoint};
  ASSERT_TRUE(
      call<api::Status>([alive](CgroupsIsolator& i, auto done) { i.recover(alive, done); }));
  EXPECT_FALSE(exists(layout, "orphan"));
  EXPECT_TRUE(WIFSIGNALED(orphan.reap()));
  for (pid_t pid : orphanPids) {
    EXPECT_FALSE(fs::exists("/proc/" + std::to_string(pid) + "/cgroup") &&
                 readText("/proc/" + std::to_string(pid) + "/stat").find(" Z ") ==
                     std::string::npos)
        << "orphan process " << pid << " survived";
  }
  // The live one is re-adopted: usage works, its process still runs, cleanup removes it.
  auto stats = usage("live");
  ASSERT_TRUE(stats) << stats.status().toString();
  EXPECT_DOUBLE_EQ(stats->cpus_limit(), 1.0);
  EXPECT_EQ(stats->mem_limit_bytes(), 64u << 20);
  EXPECT_EQ(kill(live.pid, 0), 0);
  ASSERT_TRUE(cleanup("live"));
  EXPECT_TRUE(WIFSIGNALED(live.reap()));
}

}  // namespace
}  // namespace tessera::modules::isolator_cgroups
