// Unit tests of the acme/nofile logic against the SDK's headers only: a hand-written executor,
// metrics registry and logger stand in for the agent, and real child processes get the limit.
#include "nofile_isolator.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <deque>

namespace acme::nofile {
namespace {

namespace api = tessera::api;
using namespace std::chrono_literals;

// A serial executor the test drives: posted work and blocking-pool replies queue up until
// drain(); timers fire when the test says so.
class TestExecutor final : public api::Executor {
 public:
  struct Timer final : api::TimerHandle {
    void cancel() override { *cancelled = true; }
    std::shared_ptr<bool> cancelled = std::make_shared<bool>(false);
  };

  void post(std::function<void()> fn) override { queue_.push_back(std::move(fn)); }
  bool runningInThisThread() const override { return true; }
  std::unique_ptr<api::TimerHandle> schedule(std::chrono::nanoseconds delay,
                                             std::function<void()> fn) override {
    auto handle = std::make_unique<Timer>();
    timers_.push_back({delay, std::move(fn), handle->cancelled});
    return handle;
  }
  api::Status runBlocking(std::function<void()> work, std::function<void()> done) override {
    work();
    post(std::move(done));
    return api::Status::ok();
  }

  void drain() {
    while (!queue_.empty()) {
      auto fn = std::move(queue_.front());
      queue_.pop_front();
      fn();
    }
  }
  // Fires the timers scheduled so far (those not cancelled), then drains; false if none.
  bool fireTimers() {
    auto due = std::move(timers_);
    timers_.clear();
    bool fired = false;
    for (auto& timer : due) {
      if (*timer.cancelled) continue;
      timer.fn();
      fired = true;
    }
    drain();
    return fired;
  }
  size_t pendingTimers() const { return timers_.size(); }
  std::chrono::nanoseconds firstDelay() const { return timers_.front().delay; }

 private:
  struct Pending {
    std::chrono::nanoseconds delay;
    std::function<void()> fn;
    std::shared_ptr<bool> cancelled;
  };
  std::deque<std::function<void()>> queue_;
  std::vector<Pending> timers_;
};

class TestMetrics final : public api::Metrics {
 public:
  api::Counter& counter(std::string_view name) override { return counters_[std::string(name)]; }
  api::Timer& timer(std::string_view) override { std::abort(); }
  void gauge(std::string_view name, std::function<double()> read) override {
    gauges_[std::string(name)] = std::move(read);
  }
  void removeGauge(std::string_view name) override { gauges_.erase(std::string(name)); }
  double read(std::string_view name) { return gauges_.at(std::string(name))(); }

 private:
  std::map<std::string, api::Counter> counters_;
  std::map<std::string, std::function<double()>> gauges_;
};

class TestLogger final : public api::Logger {
 public:
  void log(Level, std::string_view message) override { lines.emplace_back(message); }
  std::vector<std::string> lines;
};

// A child that opens `extra` more files (of /dev/null), then waits until killed. Only
// async-signal-safe calls after fork.
class Child {
 public:
  explicit Child(int extra) {
    int ready[2];
    EXPECT_EQ(::pipe(ready), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(ready[0]);
      for (int i = 0; i < extra; ++i) ::open("/dev/null", O_RDONLY);
      char one = 1;
      (void)!::write(ready[1], &one, 1);
      for (;;) ::pause();
    }
    ::close(ready[1]);
    char one = 0;
    EXPECT_EQ(::read(ready[0], &one, 1), 1);
    ::close(ready[0]);
  }
  ~Child() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

api::Parameters params(std::vector<std::pair<std::string, std::string>> entries) {
  return api::Parameters(std::move(entries));
}

api::ContainerConfig configFor(const std::string& id) {
  api::ContainerConfig config;
  config.containerId = id;
  return config;
}

// The status a one-shot callback was called with.
struct Captured {
  std::optional<api::Status> status;
  std::function<void(api::Status)> callback() {
    return [this](api::Status s) { status = std::move(s); };
  }
};

class NofileIsolatorTest : public ::testing::Test {
 protected:
  std::unique_ptr<NofileIsolator> make(Options options = {}) {
    return std::make_unique<NofileIsolator>(options, executor_, metrics_, logger_);
  }
  api::Status prepare(NofileIsolator& isolator, const std::string& id) {
    Captured done;
    isolator.prepare(configFor(id), done.callback());
    executor_.drain();
    EXPECT_TRUE(done.status.has_value());
    return done.status.value_or(api::internalError("no answer"));
  }
  api::Status isolate(NofileIsolator& isolator, const std::string& id, int64_t pid) {
    Captured done;
    isolator.isolate(id, pid, done.callback());
    executor_.drain();
    EXPECT_TRUE(done.status.has_value());
    return done.status.value_or(api::internalError("no answer"));
  }

  TestExecutor executor_;
  TestMetrics metrics_;
  TestLogger logger_;
};

TEST(ParseOptionsTest, DefaultsAndValues) {
  auto defaults = parseOptions(params({}));
  ASSERT_TRUE(defaults) << defaults.status().toString();
  EXPECT_EQ(defaults->limit, 1024u);
  EXPECT_EQ(defaults->sampleInterval, 1s);

  auto set = parseOptions(
      params({{"limit", "300"}, {"sample_interval", "250ms"}, {"isolation", "acme/nofile"}}));
  ASSERT_TRUE(set) << set.status().toString();
  EXPECT_EQ(set->limit, 300u);
  EXPECT_EQ(set->sampleInterval, 250ms);
}

TEST(ParseOptionsTest, ErrorsNameTheParameter) {
  auto abc = parseOptions(params({{"limit", "abc"}}));
  ASSERT_FALSE(abc);
  EXPECT_EQ(abc.status().code(), api::StatusCode::kInvalidArgument);
  EXPECT_NE(abc.status().message().find("parameter 'limit'"), std::string::npos)
      << abc.status().message();
  EXPECT_NE(abc.status().message().find("'abc'"), std::string::npos) << abc.status().message();

  auto zero = parseOptions(params({{"limit", "0"}}));
  ASSERT_FALSE(zero);
  EXPECT_NE(zero.status().message().find("parameter 'limit'"), std::string::npos);

  auto interval = parseOptions(params({{"sample_interval", "5s"}}));
  ASSERT_FALSE(interval);
  EXPECT_NE(interval.status().message().find("parameter 'sample_interval'"), std::string::npos);

  auto unknown = parseOptions(params({{"limt", "10"}}));
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.status().message().find("'limt'"), std::string::npos);
}

TEST_F(NofileIsolatorTest, IsolateSetsTheLimitOfTheProcess) {
  auto isolator = make({.limit = 321});
  EXPECT_EQ(isolator->isolations(), std::vector<std::string>{"acme/nofile"});
  Child child(0);
  ASSERT_TRUE(prepare(*isolator, "c1"));
  ASSERT_TRUE(isolate(*isolator, "c1", child.pid()));
  rlimit now{};
  ASSERT_EQ(::prlimit(child.pid(), RLIMIT_NOFILE, nullptr, &now), 0);
  EXPECT_EQ(now.rlim_cur, 321u);
  EXPECT_EQ(now.rlim_max, 321u);
}

TEST_F(NofileIsolatorTest, UnknownContainersAndDuplicatesAreErrors) {
  auto isolator = make();
  Child child(0);
  auto unknown = isolate(*isolator, "nope", child.pid());
  EXPECT_EQ(unknown.code(), api::StatusCode::kNotFound);
  ASSERT_TRUE(prepare(*isolator, "c1"));
  EXPECT_EQ(prepare(*isolator, "c1").code(), api::StatusCode::kAlreadyExists);
}

TEST_F(NofileIsolatorTest, AGoneProcessIsAnErrorNamingTheContainer) {
  auto isolator = make();
  pid_t gone = ::fork();
  if (gone == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(gone, nullptr, 0), gone);
  ASSERT_TRUE(prepare(*isolator, "c1"));
  auto status = isolate(*isolator, "c1", gone);
  EXPECT_EQ(status.code(), api::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("container 'c1'"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("RLIMIT_NOFILE"), std::string::npos) << status.message();
}

TEST(CountOpenFilesTest, CountsTheProcessAndItsDescendants) {
  Child few(0);
  Child many(25);
  const uint64_t base = countOpenFiles(few.pid());
  EXPECT_GE(countOpenFiles(many.pid()), base + 25);
  pid_t gone = ::fork();
  if (gone == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(gone, nullptr, 0), gone);
  EXPECT_EQ(countOpenFiles(gone), 0u);
  // The test process is an ancestor of both children: their files count too.
  EXPECT_GE(countOpenFiles(::getpid()), countOpenFiles(many.pid()) + countOpenFiles(few.pid()));
}

TEST_F(NofileIsolatorTest, TheGaugeSumsTheOpenFilesOfEveryContainer) {
  auto isolator = make({.limit = 1024, .sampleInterval = 500ms});
  EXPECT_EQ(metrics_.read(kOpenFilesGauge), 0);
  EXPECT_EQ(executor_.pendingTimers(), 0u);  // nothing to count yet
  Child a(10);
  Child b(20);
  ASSERT_TRUE(prepare(*isolator, "a"));
  ASSERT_TRUE(prepare(*isolator, "b"));
  ASSERT_TRUE(isolate(*isolator, "a", a.pid()));
  ASSERT_TRUE(isolate(*isolator, "b", b.pid()));
  EXPECT_EQ(metrics_.read(kContainersGauge), 2);
  ASSERT_EQ(executor_.pendingTimers(), 1u);  // one sampling round for all containers
  EXPECT_EQ(executor_.firstDelay(), 500ms);
  ASSERT_TRUE(executor_.fireTimers());
  EXPECT_GE(metrics_.read(kOpenFilesGauge), 30);
  EXPECT_EQ(metrics_.read(kOpenFilesGauge),
            static_cast<double>(countOpenFiles(a.pid()) + countOpenFiles(b.pid())));
  EXPECT_EQ(executor_.pendingTimers(), 1u);  // and the next round is scheduled

  Captured cleaned;
  isolator->cleanup("b", cleaned.callback());
  ASSERT_TRUE(cleaned.status && *cleaned.status);
  EXPECT_EQ(metrics_.read(kContainersGauge), 1);
  EXPECT_EQ(metrics_.read(kOpenFilesGauge), static_cast<double>(countOpenFiles(a.pid())));
  Captured again;
  isolator->cleanup("b", again.callback());
  EXPECT_TRUE(again.status && *again.status);  // idempotent
}

TEST_F(NofileIsolatorTest, UsagePassesTheStatisticsThrough) {
  auto isolator = make();
  ASSERT_TRUE(prepare(*isolator, "c1"));
  tessera::v1::ResourceStatistics stats;
  stats.set_mem_total_bytes(42);
  std::optional<api::Result<tessera::v1::ResourceStatistics>> result;
  isolator->usage("c1", stats, [&](auto r) { result = std::move(r); });
  ASSERT_TRUE(result && *result);
  EXPECT_EQ((*result)->mem_total_bytes(), 42u);
  isolator->usage("nope", stats, [&](auto r) { result = std::move(r); });
  EXPECT_EQ(result->status().code(), api::StatusCode::kNotFound);
}

TEST_F(NofileIsolatorTest, RecoverReadoptsLiveProcessesButNotReusedPids) {
  auto isolator = make();
  Child live(5);
  Child other(0);
  api::ContainerCheckpoint kept;
  kept.containerId = "kept";
  kept.pid = live.pid();
  kept.startTime = processStartTime(live.pid()).value();
  api::ContainerCheckpoint reused;
  reused.containerId = "reused";
  reused.pid = other.pid();
  reused.startTime = processStartTime(other.pid()).value() + 1;  // another process's pid now
  Captured recovered;
  isolator->recover({kept, reused}, recovered.callback());
  ASSERT_TRUE(recovered.status && *recovered.status);
  EXPECT_EQ(metrics_.read(kContainersGauge), 2);
  ASSERT_TRUE(executor_.fireTimers());
  EXPECT_EQ(metrics_.read(kOpenFilesGauge), static_cast<double>(countOpenFiles(live.pid())));
  EXPECT_EQ(logger_.lines.size(), 1u);  // the reused pid, named
}

TEST_F(NofileIsolatorTest, StopCancelsSampling) {
  auto isolator = make();
  Child child(0);
  ASSERT_TRUE(prepare(*isolator, "c1"));
  ASSERT_TRUE(isolate(*isolator, "c1", child.pid()));
  ASSERT_EQ(executor_.pendingTimers(), 1u);
  isolator->stop();
  EXPECT_EQ(isolator->containers(), 0u);
  EXPECT_FALSE(executor_.fireTimers());  // cancelled
  EXPECT_EQ(executor_.pendingTimers(), 0u);
}

}  // namespace
}  // namespace acme::nofile
