// Sandbox garbage collection: the disk-headroom formula, the collector on its own (injected
// clock and disk usage), and the agent removing finished tasks' sandboxes, keeping live ones,
// showing the schedule, and keeping it across a restart.

#include "kernel/agent/gc.h"

#include <fstream>
#include <set>

#include "kernel/cli/roles.h"
#include "kernel/runtime/flags.h"
#include "tessera/api/duration.h"
#include "tests/agent/agent_fixture.h"

namespace tessera::kernel::agent {
namespace {

using namespace std::chrono_literals;
using fixture::AgentFixture;
using fixture::kDeadline;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

// ---- the formula ------------------------------------------------------------------------------

TEST(GcFormulaTest, MaxAllowedAgeShrinksAsTheDiskFills) {
  const runtime::Duration delay = 100s;
  EXPECT_EQ(maxAllowedAge(delay, 0.1, 0.0), runtime::Duration(90s));
  EXPECT_EQ(maxAllowedAge(delay, 0.1, 0.5), runtime::Duration(40s));
  EXPECT_EQ(maxAllowedAge(delay, 0.0, 0.25), runtime::Duration(75s));
  // At or past the headroom nothing may stay.
  EXPECT_EQ(maxAllowedAge(delay, 0.1, 0.9), runtime::Duration::zero());
  EXPECT_EQ(maxAllowedAge(delay, 0.1, 1.0), runtime::Duration::zero());
  EXPECT_EQ(maxAllowedAge(delay, 1.0, 0.0), runtime::Duration::zero());
}

TEST(GcFormulaTest, ReadsTheDiskUsageAndRefusesAMissingPath) {
  testing::TempDir dir;
  auto usage = diskUsage(dir.path().string());
  ASSERT_TRUE(usage) << usage.status().toString();
  EXPECT_GE(*usage, 0.0);
  EXPECT_LE(*usage, 1.0);
  auto missing = diskUsage((dir.path() / "nope").string());
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.status().message(), HasSubstr("nope"));
}

TEST(GcFormulaTest, CheckpointRoundTrips) {
  GcEntry entry{"/work/slaves/a/frameworks/f/executors/e/runs/c", 1000.5, 1100.5};
  auto parsed = parseGcEntryJson(gcEntryJson(entry));
  ASSERT_TRUE(parsed) << parsed.status().toString();
  EXPECT_EQ(parsed->path, entry.path);
  EXPECT_EQ(parsed->scheduledAt, entry.scheduledAt);
  EXPECT_EQ(parsed->removeAt, entry.removeAt);
  EXPECT_FALSE(parseGcEntryJson("{"));
  EXPECT_FALSE(parseGcEntryJson(R"({"path":"relative","scheduled_at":1,"remove_at":2})"));
}

TEST(GcFlagsTest, MesosNamesAndDefaultsAndTheHeadroomIsAFraction) {
  auto load = [](std::vector<std::string> args, cli::AgentFlags& agent) {
    runtime::FlagSet flags;
    cli::addAgentFlags(flags, agent, false);
    return flags.load(args, {.envPrefixes = {}});
  };
  cli::AgentFlags defaults;
  ASSERT_TRUE(load({}, defaults));
  EXPECT_EQ(defaults.gcDelay, runtime::Duration(std::chrono::hours(24 * 7)));
  EXPECT_EQ(defaults.gcDiskHeadroom, 0.1);
  EXPECT_EQ(defaults.diskWatchInterval, runtime::Duration(1min));
  cli::AgentFlags set;
  ASSERT_TRUE(
      load({"--gc_delay=2days", "--gc_disk_headroom=0.25", "--disk_watch_interval=30secs"}, set));
  EXPECT_EQ(set.gcDelay, runtime::Duration(std::chrono::hours(48)));
  EXPECT_EQ(set.gcDiskHeadroom, 0.25);
  EXPECT_EQ(set.diskWatchInterval, runtime::Duration(30s));
  for (const char* bad : {"--gc_disk_headroom=1.5", "--gc_disk_headroom=-0.1"}) {
    cli::AgentFlags agent;
    auto loaded = load({bad}, agent);
    ASSERT_FALSE(loaded) << bad;
    EXPECT_THAT(loaded.status().message(), HasSubstr("'--gc_disk_headroom'")) << bad;
  }
  cli::AgentFlags zero;
  EXPECT_FALSE(load({"--disk_watch_interval=0secs"}, zero));
}

// ---- the collector on its own -----------------------------------------------------------------

class GarbageCollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runtime_.start();
    strand_ = runtime_.makeExecutor();
    metrics_ = std::make_unique<runtime::MetricsRegistry>(runtime_.io());
  }
  void TearDown() override {
    if (gc_)
      strand_->call([&] {
        gc_->stop();
        return 0;
      });
    gc_.reset();
    runtime_.stop();
  }

  // A collector with a one-week delay, a fake clock at `now_` and a disk `usage_` full.
  void makeCollector() {
    GcOptions options;
    options.delay = 100s;
    options.diskHeadroom = 0.1;
    options.diskWatchInterval = 1h;  // checks are started by hand
    GarbageCollector::Hooks hooks;
    hooks.live = [this](const std::string& path) { return live_.count(path) > 0; };
    hooks.removed = [this](const GcEntry& entry, const api::Status& result) {
      std::lock_guard lock(mutex_);
      results_.emplace_back(entry.path, result.code());
    };
    hooks.usage = [this] { return api::Result<double>(usage_.load()); };
    hooks.now = [this] { return now_.load(); };
    gc_ = std::make_shared<GarbageCollector>(*strand_, options, dir_.path().string(),
                                             std::move(hooks),
                                             metrics_->counter("gc/path_removals_succeeded"),
                                             metrics_->counter("gc/path_removals_failed"));
  }

  fs::path makeDir(const std::string& name) {
    fs::path path = dir_.path() / name;
    fs::create_directories(path / "inner");
    std::ofstream(path / "inner" / "file") << "data";
    return path;
  }

  size_t results() {
    std::lock_guard lock(mutex_);
    return results_.size();
  }

  testing::TempDir dir_;
  runtime::Runtime runtime_;
  std::unique_ptr<runtime::StrandExecutor> strand_;
  std::unique_ptr<runtime::MetricsRegistry> metrics_;
  std::shared_ptr<GarbageCollector> gc_;
  std::set<std::string> live_;
  std::atomic<double> usage_{0.0};
  std::atomic<double> now_{1'000'000.0};
  std::mutex mutex_;
  std::vector<std::pair<std::string, api::StatusCode>> results_;
};

TEST_F(GarbageCollectorTest, TheDiskWatchRemovesWhatIsTooOldForTheUsage) {
  makeCollector();
  const fs::path old = makeDir("old");
  const fs::path young = makeDir("young");
  strand_->call([&] {
    gc_->schedule(old.string(), now_ - 50);    // 50s old
    gc_->schedule(young.string(), now_ - 10);  // 10s old
    return 0;
  });
  EXPECT_EQ(gc_->pending(), 2);

  // Half full: max age 100s * (1 - 0.1 - 0.5) = 40s: only the 50s old one goes.
  usage_ = 0.5;
  strand_->call([&] {
    gc_->checkDiskUsage();
    return 0;
  });
  ASSERT_TRUE(testing::waitFor([&] { return results() == 1; }, kDeadline));
  EXPECT_FALSE(fs::exists(old));
  EXPECT_TRUE(fs::exists(young));
  EXPECT_EQ(metrics_->counter("gc/path_removals_succeeded").value(), 1u);
  auto left = strand_->call([&] { return gc_->scheduled(); });
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].path, young.string());
  EXPECT_EQ(left[0].removeAt, now_ - 10 + 100);

  // Past the headroom: everything goes at once, a week's delay or not.
  usage_ = 0.95;
  strand_->call([&] {
    gc_->checkDiskUsage();
    return 0;
  });
  ASSERT_TRUE(testing::waitFor([&] { return results() == 2; }, kDeadline));
  EXPECT_FALSE(fs::exists(young));
  EXPECT_EQ(gc_->pending(), 0);
}

TEST_F(GarbageCollectorTest, ALiveSandboxIsNeverRemoved) {
  makeCollector();
  const fs::path running = makeDir("running");
  live_.insert(running.string());
  strand_->call([&] {
    gc_->schedule(running.string(), now_ - 1000);  // long overdue
    gc_->prune(0s);
    return 0;
  });
  ASSERT_TRUE(testing::waitFor([&] { return results() == 1; }, kDeadline));
  EXPECT_TRUE(fs::exists(running / "inner" / "file"));
  EXPECT_EQ(results_[0].second, api::StatusCode::kFailedPrecondition);
  EXPECT_EQ(gc_->pending(), 0);
  EXPECT_EQ(metrics_->counter("gc/path_removals_succeeded").value(), 0u);
}

TEST_F(GarbageCollectorTest, TheTimerRemovesWhatIsDueAndRestoreKeepsTheTime) {
  makeCollector();
  const fs::path due = makeDir("due");
  const fs::path later = makeDir("later");
  strand_->call([&] {
    gc_->restore({due.string(), now_ - 200, now_ - 100});  // due a while ago
    gc_->restore({later.string(), now_, now_ + 3600});
    return 0;
  });
  // Its removal reported (the directory goes first, on the blocking pool).
  ASSERT_TRUE(testing::waitFor([&] { return results() == 1; }, kDeadline));
  EXPECT_FALSE(fs::exists(due));
  EXPECT_TRUE(fs::exists(later));
  EXPECT_TRUE(strand_->call([&] { return gc_->unschedule(later.string()); }));
  EXPECT_EQ(gc_->pending(), 0);
}

// ---- the agent --------------------------------------------------------------------------------

class AgentGcTest : public AgentFixture {
 protected:
  AgentOptions gcOptions(runtime::Duration delay) {
    AgentOptions o = options();
    o.gc.delay = delay;
    o.gc.diskWatchInterval = 1h;  // only the delay decides, whatever this disk's usage
    return o;
  }

  // The "gc" array of /state.
  Poco::JSON::Array::Ptr gcState() {
    Poco::JSON::Parser parser;
    auto state = parser.parse(get("/state")).extract<Poco::JSON::Object::Ptr>();
    return state->getArray("gc");
  }
};

TEST_F(AgentGcTest, AFinishedTasksSandboxGoesARunningOneStays) {
  ASSERT_TRUE(startAgent(gcOptions(200ms)).isOk());
  ASSERT_TRUE(waitForRegistered());
  master_->runTask("sleeper", "sleep 1000", "fw-1");
  ASSERT_TRUE(master_->waitForState("sleeper", v1::TASK_RUNNING));
  master_->runTask("quick", "echo hi", "fw-2");
  ASSERT_TRUE(master_->waitForState("quick", v1::TASK_FINISHED));

  const fs::path frameworks = workDir_ / "slaves" / agent_->id() / "frameworks";
  // The run directory, then its empty parents up to the framework's directory, go.
  ASSERT_TRUE(testing::waitFor([&] { return !fs::exists(frameworks / "fw-2"); }, kDeadline));
  EXPECT_TRUE(fs::exists(frameworks));
  const fs::path sleeper = sandboxOf("sleeper", "fw-1");
  ASSERT_FALSE(sleeper.empty());
  EXPECT_TRUE(fs::exists(sleeper / "stdout"));
  auto snapshot = metrics_->snapshotAndWait(5s).flat();
  EXPECT_EQ(snapshot["gc/path_removals_succeeded"], 1);
  EXPECT_EQ(snapshot["gc/path_removals_failed"], 0);
  EXPECT_EQ(snapshot["gc/path_removals_pending"], 0);

  // Killed, the sleeper's sandbox goes too.
  master_->killTask("sleeper", "fw-1");
  ASSERT_TRUE(master_->waitForState("sleeper", v1::TASK_KILLED));
  ASSERT_TRUE(testing::waitFor([&] { return !fs::exists(sleeper); }, kDeadline));
}

TEST_F(AgentGcTest, StateAndMetricsShowThePendingRemoval) {
  ASSERT_TRUE(startAgent(gcOptions(1h)).isOk());
  ASSERT_TRUE(waitForRegistered());
  const double before = api::nowSeconds();
  master_->runTask("quick", "true");
  ASSERT_TRUE(master_->waitForState("quick", v1::TASK_FINISHED));
  const fs::path sandbox = sandboxOf("quick");
  ASSERT_TRUE(testing::waitFor([&] { return gcState()->size() == 1; }, kDeadline));
  auto entry = gcState()->getObject(0);
  EXPECT_EQ(entry->getValue<std::string>("path"), sandbox.string());
  const double removeAt = entry->getValue<double>("remove_at");
  EXPECT_GE(removeAt, before + 3600);
  EXPECT_LE(removeAt, api::nowSeconds() + 3600);
  EXPECT_TRUE(fs::exists(sandbox));
  auto snapshot = metrics_->snapshotAndWait(5s).flat();
  EXPECT_EQ(snapshot["gc/path_removals_pending"], 1);
  EXPECT_EQ(snapshot["gc/path_removals_succeeded"], 0);
}

// A sandbox path longer than a file-store key may be (a long task id) is still checkpointed.
TEST_F(AgentGcTest, ASandboxWithALongPathIsCheckpointed) {
  ASSERT_TRUE(startAgent(gcOptions(1h)).isOk());
  ASSERT_TRUE(waitForRegistered());
  const std::string id = "long-" + std::string(190, 'x');
  master_->runTask(id, "true");
  ASSERT_TRUE(master_->waitForState(id, v1::TASK_FINISHED));
  ASSERT_GT(sandboxOf(id).string().size(), 240u);
  ASSERT_TRUE(testing::waitFor([&] { return storeChildren("/agent/gc").size() == 1; }, kDeadline));
}

TEST_F(AgentGcTest, ARestartedAgentKeepsTheSchedule) {
  ASSERT_TRUE(startAgent(gcOptions(4s)).isOk());
  ASSERT_TRUE(waitForRegistered());
  master_->runTask("quick", "true");
  ASSERT_TRUE(master_->waitForState("quick", v1::TASK_FINISHED));
  const fs::path sandbox = sandboxOf("quick");
  // Checkpointed before the crash.
  ASSERT_TRUE(testing::waitFor([&] { return storeChildren("/agent/gc").size() == 1; }, kDeadline));
  crashAgent();
  ASSERT_TRUE(fs::exists(sandbox));

  // The new agent's own delay is a week: only the checkpointed time removes the sandbox.
  ASSERT_TRUE(startAgent(gcOptions(24h * 7)).isOk());
  EXPECT_EQ(gcState()->size(), 1u);
  ASSERT_TRUE(testing::waitFor([&] { return !fs::exists(sandbox); }, kDeadline));
  ASSERT_TRUE(testing::waitFor([&] { return storeChildren("/agent/gc").empty(); }, kDeadline));
  EXPECT_EQ(gcState()->size(), 0u);
}

}  // namespace
}  // namespace tessera::kernel::agent
