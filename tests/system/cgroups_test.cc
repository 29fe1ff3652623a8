// The cgroups isolator end to end on the host's real cgroups: `tessera master`, `tessera agent
// --isolation=cgroups/...` and `tessera execute` as real processes. Skips when not root or the
// cgroups are not writable (a failure under CI=true).
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "tests/support/ci.h"
#include "tests/support/cluster_state.h"
#include "tests/support/subprocess.h"

namespace tessera::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

const fs::path kHierarchy = "/sys/fs/cgroup";

bool unified() { return fs::exists(kHierarchy / "cgroup.controllers"); }

// The directories that hold the containers' cgroups under `root`, one per controller (v1).
std::vector<fs::path> rootDirectories(const std::string& root) {
  if (unified()) return {kHierarchy / root};
  std::vector<fs::path> dirs;
  for (const char* controller : {"cpu", "cpuacct", "memory", "freezer"}) {
    dirs.push_back(kHierarchy / controller / root);
  }
  return dirs;
}

std::set<std::string> cgroupsUnder(const std::string& root) {
  std::set<std::string> names;
  for (const auto& dir : rootDirectories(root)) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.is_directory()) names.insert(entry.path().filename().string());
    }
  }
  return names;
}

std::string readText(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::map<std::string, double> keyValues(const fs::path& path) {
  std::map<std::string, double> values;
  std::ifstream in(path);
  std::string key;
  double value;
  while (in >> key >> value) values[key] = value;
  return values;
}

Poco::JSON::Array::Ptr getArray(uint16_t port, const std::string& path) {
  auto response = httpRequest(port, "GET", path);
  if (!response || response->status != 200) return nullptr;
  try {
    return Poco::JSON::Parser().parse(response->body).extract<Poco::JSON::Array::Ptr>();
  } catch (const Poco::Exception&) {
    return nullptr;
  }
}

// The statistics of the first container in the agent's /monitor/statistics.
Poco::JSON::Object::Ptr statistics(uint16_t agentPort) {
  auto entries = getArray(agentPort, "/monitor/statistics");
  if (!entries || entries->size() == 0) return nullptr;
  return entries->getObject(0)->getObject("statistics");
}

class CgroupsSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (geteuid() != 0) {
      why = "needs root for the host's cgroups";
    } else if (!unified() &&
               ::access((kHierarchy / "memory" / "cgroup.procs").c_str(), W_OK) != 0) {
      why = "no writable cgroup hierarchy at /sys/fs/cgroup";
    }
    if (!why.empty()) {
      TESSERA_SKIP_UNLESS_CI(why);
    }
    root_ = "tessera_system_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  void TearDown() override {
    if (root_.empty()) return;
    agent_.reset();  // SIGKILL: what runs in the cgroups is the test's to check, not the agent's
    master_.reset();
    // Nothing may be left under the root after a test; the root itself goes too (and after a
    // failed test, whatever still runs in a leftover cgroup is killed first).
    EXPECT_TRUE(cgroupsUnder(root_).empty()) << "cgroups left under " << root_;
    for (const auto& dir : rootDirectories(root_)) {
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (!entry.is_directory()) continue;
        waitFor(
            [&] {
              std::ifstream procs(entry.path() / "cgroup.procs");
              pid_t pid = 0;
              bool any = false;
              while (procs >> pid) {
                ::kill(pid, SIGKILL);
                any = true;
              }
              return !any && ::rmdir(entry.path().c_str()) == 0;
            },
            10s);
      }
      ::rmdir(dir.c_str());
    }
    if (!unified()) ::rmdir((kHierarchy / "pids" / root_).c_str());
  }

  std::map<std::string, std::string> env() const {
    return {{"TESSERA_CONFIG_DIR", config_.path().string()}};
  }

  std::unique_ptr<Subprocess> launch(std::vector<std::string> argv,
                                     const std::function<bool()>& ready) {
    auto process = Subprocess::start({std::move(argv), env(), {}, std::nullopt});
    EXPECT_TRUE(process) << process.status().message();
    if (!process) return nullptr;
    if (!waitFor(ready, 60s)) {
      ADD_FAILURE() << "the process did not become ready: " << (*process)->err();
      return nullptr;
    }
    return std::move(process).value();
  }

  static bool httpOk(uint16_t port, const std::string& path) {
    auto response = httpRequest(port, "GET", path);
    return response && response->status == 200;
  }

  void startMaster() {
    master_ = launch({tesseraBinary().string(), "master", fmt::format("--port={}", masterPort_),
                      "--registry=in_memory", "--quiet"},
                     [this] { return httpOk(masterPort_, "/state"); });
  }

  std::vector<std::string> agentArgv(std::vector<std::string> extra) {
    std::vector<std::string> argv = {tesseraBinary().string(),
                                     "agent",
                                     fmt::format("--port={}", agentPort_),
                                     fmt::format("--master=127.0.0.1:{}", masterPort_),
                                     fmt::format("--work_dir={}", (dir_.path() / "agent").string()),
                                     "--resources=cpus:2;mem:1024;disk:1024",
                                     "--isolation=cgroups/cpu,cgroups/mem",
                                     fmt::format("--cgroups_root={}", root_),
                                     "--quiet"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  void startAgent(std::vector<std::string> extra = {}) {
    agent_ = launch(agentArgv(std::move(extra)), [this] {
      auto state = getJson(masterPort_, "/state");
      return state && state->has("activated_slaves") &&
             state->getValue<size_t>("activated_slaves") == 1;
    });
  }

  std::unique_ptr<Subprocess> execute(const std::string& name, const std::string& command,
                                      const std::string& resources) {
    auto process = Subprocess::start(
        {{tesseraBinary().string(), "execute", fmt::format("--master=127.0.0.1:{}", masterPort_),
          fmt::format("--name={}", name), fmt::format("--command={}", command),
          fmt::format("--resources={}", resources)},
         env(),
         {},
         std::nullopt});
    EXPECT_TRUE(process) << process.status().message();
    return process ? std::move(process).value() : nullptr;
  }

  TempDir dir_;
  TempDir config_;
  uint16_t masterPort_ = freePort();
  uint16_t agentPort_ = freePort();
  std::string root_;
  std::unique_ptr<Subprocess> master_;
  std::unique_ptr<Subprocess> agent_;
};

TEST_F(CgroupsSystemTest, OomKillFailsTheTaskWithTheMemoryLimitationReason) {
  startMaster();
  startAgent();
  ASSERT_TRUE(master_ && agent_);
  auto run = execute("hog", "exec dd if=/dev/zero of=/dev/null bs=256M count=1", "cpus:0.5;mem:32");
  ASSERT_TRUE(run);
  ASSERT_TRUE(run->wait(90s)) << run->out() << run->err();
  EXPECT_NE(run->exitCode(), 0);
  EXPECT_THAT(run->out(), HasSubstr("TASK_RUNNING"));
  EXPECT_THAT(run->out(), HasSubstr("TASK_FAILED"));
  EXPECT_THAT(run->out(), HasSubstr("memory limit of 32MB"));
  EXPECT_THAT(run->out(), HasSubstr("(reason: REASON_CONTAINER_LIMITATION_MEMORY)"));
  EXPECT_TRUE(waitFor([&] { return cgroupsUnder(root_).empty(); }, 30s));
}

TEST_F(CgroupsSystemTest, CfsQuotaThrottlesAHalfCpuTaskAndUsageIsPlausible) {
  startMaster();
  startAgent({"--cgroups_enable_cfs"});
  ASSERT_TRUE(master_ && agent_);
  auto run = execute("spin", "while :; do :; done", "cpus:0.5;mem:64");
  ASSERT_TRUE(run);
  std::set<std::string> names;
  ASSERT_TRUE(waitFor(
      [&] {
        names = cgroupsUnder(root_);
        return names.size() == 1;
      },
      60s))
      << run->out() << run->err();
  const std::string id = *names.begin();

  // Consumed CPU ÷ elapsed, from the kernel's own accounting of the cgroup over ~2s.
  const bool v2 = unified();
  const fs::path cpuDir = v2 ? kHierarchy / root_ / id : kHierarchy / "cpu" / root_ / id;
  auto consumed = [&]() -> double {  // seconds
    if (v2) return keyValues(cpuDir / "cpu.stat")["usage_usec"] / 1e6;
    std::ifstream in(kHierarchy / "cpuacct" / root_ / id / "cpuacct.usage");
    double ns = 0;
    in >> ns;
    return ns / 1e9;
  };
  ASSERT_TRUE(waitFor([&] { return consumed() > 0.2; }, 60s));  // it is spinning
  const double cpu0 = consumed();
  const auto t0 = std::chrono::steady_clock::now();
  // No event tells "2 seconds of CPU accounting have passed": wait on the kernel's counter of
  // CFS periods instead (20 periods of 100ms).
  const double periods0 = keyValues(cpuDir / "cpu.stat")["nr_periods"];
  ASSERT_TRUE(
      waitFor([&] { return keyValues(cpuDir / "cpu.stat")["nr_periods"] >= periods0 + 20; }, 60s));
  const double cpu1 = consumed();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double ratio = (cpu1 - cpu0) / elapsed;
  // The quota caps it at 0.5; below that only contention can push it (concurrent builds on a
  // small CI machine), hence the wider lower bound. A task without the quota gets ~1 CPU.
  EXPECT_LE(ratio, 0.55) << "consumed " << (cpu1 - cpu0) << "s of CPU in " << elapsed << "s";
  EXPECT_GE(ratio, 0.3) << "consumed " << (cpu1 - cpu0) << "s of CPU in " << elapsed << "s";

  // /monitor/statistics shows the same through the isolator, with Mesos's names.
  Poco::JSON::Object::Ptr stats;
  ASSERT_TRUE(waitFor(
      [&] {
        stats = statistics(agentPort_);
        return stats && stats->has("cpus_nr_throttled") &&
               stats->getValue<double>("cpus_nr_throttled") > 0;
      },
      30s));
  EXPECT_DOUBLE_EQ(stats->getValue<double>("cpus_limit"), 0.5);
  EXPECT_GT(stats->getValue<double>("cpus_user_time_secs") +
                stats->getValue<double>("cpus_system_time_secs"),
            0.2);
  EXPECT_GT(stats->getValue<double>("cpus_throttled_time_secs"), 0.0);
  EXPECT_EQ(stats->getValue<uint64_t>("mem_limit_bytes"), 64u << 20);
  EXPECT_GT(stats->getValue<uint64_t>("mem_total_bytes"), 0u);
  EXPECT_LT(stats->getValue<uint64_t>("mem_total_bytes"), 64u << 20);
  EXPECT_TRUE(stats->has("mem_rss_bytes"));
  EXPECT_TRUE(stats->has("mem_cache_bytes"));
  EXPECT_GT(stats->getValue<double>("timestamp"), 1e9);

  run->kill(SIGTERM);  // `tessera execute` kills its task on the way out
  ASSERT_TRUE(run->wait(60s)) << run->out() << run->err();
  EXPECT_THAT(run->out(), HasSubstr("killing task 'spin'"));
  EXPECT_TRUE(waitFor([&] { return cgroupsUnder(root_).empty(); }, 30s));
}

TEST_F(CgroupsSystemTest, RestartedAgentReadoptsLiveContainersAndDestroysOrphans) {
  startMaster();
  startAgent();
  ASSERT_TRUE(master_ && agent_);
  auto run = execute("survivor", "exec sleep 1000", "cpus:0.5;mem:64");
  ASSERT_TRUE(run);
  std::set<std::string> names;
  ASSERT_TRUE(waitFor(
      [&] {
        names = cgroupsUnder(root_);
        return names.size() == 1 && run->out().find("TASK_RUNNING") != std::string::npos;
      },
      60s))
      << run->out() << run->err();
  const std::string live = *names.begin();
  const fs::path liveProcs =
      (unified() ? kHierarchy / root_ : kHierarchy / "memory" / root_) / live / "cgroup.procs";
  const std::string livePids = readText(liveProcs);
  ASSERT_FALSE(livePids.empty());

  agent_->kill(SIGKILL);
  ASSERT_TRUE(agent_->wait(10s));

  // An orphan: a cgroup under the root with a process in it that no checkpoint knows.
  auto orphanProcess = Subprocess::start({{"/bin/sleep", "1000"}, {}, {}, std::nullopt});
  ASSERT_TRUE(orphanProcess);
  for (const auto& dir : rootDirectories(root_)) {
    fs::create_directories(dir / "orphan");
    std::ofstream(dir / "orphan" / "cgroup.procs") << (*orphanProcess)->pid();
  }
  ASSERT_THAT(readText(rootDirectories(root_).front() / "orphan" / "cgroup.procs"),
              HasSubstr(std::to_string((*orphanProcess)->pid())));

  startAgent();
  ASSERT_TRUE(agent_);
  // The orphan's process is killed and its cgroup removed; the live one is untouched.
  ASSERT_TRUE((*orphanProcess)->wait(30s)) << "the orphan's process survived the recovery";
  EXPECT_EQ((*orphanProcess)->exitCode(), -SIGKILL);
  EXPECT_EQ(cgroupsUnder(root_), std::set<std::string>{live});
  std::istringstream pids(livePids);
  for (std::string pid; pids >> pid;) {
    EXPECT_THAT(readText(liveProcs), HasSubstr(pid + "\n")) << "process " << pid << " is gone";
  }
  // Re-adopted: the isolator reports its usage again.
  Poco::JSON::Object::Ptr stats;
  ASSERT_TRUE(waitFor(
      [&] {
        stats = statistics(agentPort_);
        return stats && stats->has("mem_limit_bytes");
      },
      30s));
  EXPECT_EQ(stats->getValue<uint64_t>("mem_limit_bytes"), 64u << 20);

  run->kill(SIGTERM);  // `tessera execute` kills its task on the way out
  ASSERT_TRUE(run->wait(60s)) << run->out() << run->err();
  EXPECT_THAT(run->out(), HasSubstr("killing task 'survivor'"));
  EXPECT_TRUE(waitFor([&] { return cgroupsUnder(root_).empty(); }, 30s));
}

TEST_F(CgroupsSystemTest, AgentRefusesToStartWhenAControllerIsMissing) {
  // The default manifest plus a cgroups hierarchy where nothing is mounted.
  TempDir empty;
  const std::string manifest = fmt::format(
      R"({{"libraries": [{{"name": "tessera_containerizer_native", "modules": [{{"name": "org_tessera_containerizer_native"}}]}},
          {{"name": "tessera_isolator_cgroups", "modules": [{{"name": "org_tessera_isolator_cgroups",
            "parameters": [{{"key": "cgroups_hierarchy", "value": "{}"}}]}}]}}]}})",
      empty.path().string());
  auto argv = agentArgv({"--modules=" + manifest});
  auto agent = Subprocess::start({argv, env(), {}, std::nullopt});
  ASSERT_TRUE(agent);
  ASSERT_TRUE((*agent)->wait(30s));
  EXPECT_EQ((*agent)->exitCode(), 1);
  EXPECT_THAT((*agent)->err(), HasSubstr("controller 'cpu'"));
  EXPECT_THAT((*agent)->err(), HasSubstr((empty.path() / "cpu").string()));
}

}  // namespace
}  // namespace tessera::testing
