// Chronos for Tessera against a real cluster: a `tessera local` master and agent, and Chronos in
// its own `tessera framework --module=org_tessera_chronos` process. Jobs run at their schedule
// points exactly as often as their `R` says, failed runs are retried `retries` times, a
// dependent job runs after its parent, run-now and kill work, and a Chronos host SIGKILLed
// just before or during a run and started again neither loses nor repeats it; with two hosts on a
// real ZooKeeper, leaders SIGKILLed during and after runs leave exactly one run per point.
#include <fmt/chrono.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <set>

#include "tests/support/zookeeper.h"
#include "tests/system/chronos_fixture.h"

namespace tessera::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

TEST_F(ChronosSystemTest, AJobRunsOncePerSchedulePointAndRTwoMeansTwice) {
  startCluster();
  startChronos();
  ASSERT_TRUE(awaitApi()) << logs();

  auto created = call("POST", "/scheduler/iso8601",
                      R"({"name":"twice","command":"echo $CHRONOS_JOB_NAME",)"
                      R"("schedule":"R2//PT2S","epsilon":"PT30S","owner":"ops@example.com"})");
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 204) << created->body;
  ASSERT_TRUE(waitFor([&] { return counter("twice", "successCount") == 2; }, 60s)) << logs();
  // No third run: the schedule is spent (R0), and the master saw exactly two tasks.
  EXPECT_FALSE(waitFor([&] { return counter("twice", "successCount") > 2; }, 5s));
  EXPECT_EQ(tasksOf("twice").size(), 2u);
  for (const auto& [id, state] : tasksOf("twice")) {
    EXPECT_THAT(id, StartsWith("ct:"));
    EXPECT_EQ(state, "TASK_FINISHED");
  }
  auto twice = job("twice");
  ASSERT_TRUE(twice);
  EXPECT_THAT(twice->getValue<std::string>("schedule"), StartsWith("R0/"));
  EXPECT_THAT(twice->getValue<std::string>("lastSuccess"), HasSubstr("Z"));
  EXPECT_EQ(twice->getValue<int64_t>("errorCount"), 0);

  // Chronos's clients read the first line of GET jobs: it is all on one line, at both paths.
  for (const char* path : {"/scheduler/jobs", "/v1/scheduler/jobs"}) {
    auto jobs = call("GET", path);
    ASSERT_TRUE(jobs);
    EXPECT_EQ(jobs->status, 200);
    EXPECT_EQ(jobs->body.find('\n'), std::string::npos) << jobs->body;
    EXPECT_THAT(jobs->body, HasSubstr(R"("name":"twice")"));
  }
}

TEST_F(ChronosSystemTest, AFailingJobIsRetriedRetriesTimes) {
  startCluster();
  startChronos();
  ASSERT_TRUE(awaitApi()) << logs();
  auto created = call("PUT", "/v1/scheduler/iso8601",
                      R"({"name":"flaky","command":"exit 3","schedule":"R1//PT1H","retries":2})");
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 204) << created->body;
  // The first attempt and two retries fail; then no more. The run counts once in errorCount,
  // when its retries are spent (as Chronos counts it); each attempt in errorsSinceLastSuccess.
  ASSERT_TRUE(waitFor([&] { return counter("flaky", "errorCount") == 1; }, 60s)) << logs();
  EXPECT_EQ(counter("flaky", "errorsSinceLastSuccess"), 3);
  EXPECT_FALSE(waitFor([&] { return counter("flaky", "errorsSinceLastSuccess") > 3; }, 3s));
  EXPECT_EQ(counter("flaky", "errorCount"), 1);
  EXPECT_EQ(counter("flaky", "successCount"), 0);
  auto tasks = tasksOf("flaky");
  EXPECT_EQ(tasks.size(), 3u);
  for (const auto& [id, state] : tasks) EXPECT_EQ(state, "TASK_FAILED") << id;
}

TEST_F(ChronosSystemTest, ADependentJobRunsAfterItsParentSucceeded) {
  startCluster();
  startChronos();
  ASSERT_TRUE(awaitApi()) << logs();
  // A parent far in the future: it runs when asked to.
  auto parent = call("POST", "/scheduler/iso8601",
                     R"({"name":"extract","command":"true",)"
                     R"("schedule":"R1/2100-01-01T00:00:00Z/PT1H"})");
  ASSERT_TRUE(parent);
  ASSERT_EQ(parent->status, 204) << parent->body;
  auto orphan = call("POST", "/scheduler/dependency",
                     R"({"name":"lost","command":"true","parents":["nobody"]})");
  ASSERT_TRUE(orphan);
  EXPECT_EQ(orphan->status, 400);
  EXPECT_THAT(orphan->body, HasSubstr("nobody"));
  auto child = call("POST", "/scheduler/dependency",
                    R"({"name":"load","command":"true","parents":["extract"]})");
  ASSERT_TRUE(child);
  ASSERT_EQ(child->status, 204) << child->body;
  // Not before the parent ran.
  EXPECT_FALSE(waitFor([&] { return counter("load", "successCount") > 0; }, 2s));

  auto run = call("PUT", "/scheduler/job/extract");
  ASSERT_TRUE(run);
  EXPECT_EQ(run->status, 204) << run->body;
  ASSERT_TRUE(waitFor([&] { return counter("extract", "successCount") == 1; }, 60s)) << logs();
  ASSERT_TRUE(waitFor([&] { return counter("load", "successCount") == 1; }, 60s)) << logs();
  EXPECT_FALSE(waitFor([&] { return counter("load", "successCount") > 1; }, 2s));

  auto dot = call("GET", "/scheduler/graph/dot");
  ASSERT_TRUE(dot);
  EXPECT_EQ(dot->status, 200);
  EXPECT_THAT(dot->body, HasSubstr(R"(label="extract")"));
  EXPECT_THAT(dot->body, HasSubstr("1 -> 2;"));
  auto csv = call("GET", "/scheduler/graph/csv");
  ASSERT_TRUE(csv);
  EXPECT_THAT(csv->body, HasSubstr("link,extract,load"));
}

TEST_F(ChronosSystemTest, RunNowKillAndDelete) {
  startCluster();
  startChronos();
  ASSERT_TRUE(awaitApi()) << logs();
  auto created = call("POST", "/scheduler/iso8601",
                      R"({"name":"sleeper","command":"sleep 1000","retries":2,)"
                      R"("schedule":"R/2100-01-01T00:00:00Z/P1D"})");
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 204) << created->body;
  auto missing = call("PUT", "/scheduler/job/nobody");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);

  auto run = call("PUT", "/scheduler/job/sleeper");
  ASSERT_TRUE(run);
  EXPECT_EQ(run->status, 204);
  ASSERT_TRUE(waitFor(
      [&] {
        auto tasks = tasksOf("sleeper");
        return tasks.size() == 1 && tasks[0].second == "TASK_RUNNING";
      },
      60s))
      << logs();

  auto killed = call("DELETE", "/scheduler/task/kill/sleeper");
  ASSERT_TRUE(killed);
  EXPECT_EQ(killed->status, 204);
  // Killed through the API: an error, and no retry.
  ASSERT_TRUE(waitFor([&] { return counter("sleeper", "errorCount") == 1; }, 60s)) << logs();
  EXPECT_FALSE(waitFor([&] { return tasksOf("sleeper").size() > 1; }, 2s));
  EXPECT_EQ(tasksOf("sleeper")[0].second, "TASK_KILLED");

  auto deleted = call("DELETE", "/scheduler/job/sleeper");
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->status, 204);
  EXPECT_FALSE(job("sleeper"));
  auto again = call("DELETE", "/scheduler/job/sleeper");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 404);
  EXPECT_THAT(again->body, HasSubstr(R"("message")"));
}

// The `chronos` command (Chronos's flags) hosts the module; a run sees Chronos's environment and
// the job's own variables.
TEST_F(ChronosSystemTest, TheChronosCommandRunsJobsWithChronosEnvironment) {
  startCluster();
  hosts_.resize(1);
  ports_.assign(1, freePort());
  hosts_[0] = start({tesseraBinary().string(), "chronos", "--master",
                     fmt::format("127.0.0.1:{}", masterPort_), "--http_port",
                     std::to_string(ports_[0]), "--modules=" + chronosManifest(200),
                     fmt::format("--work_dir={}", (dir_.path() / "chronos-cli").string())});
  ASSERT_TRUE(hosts_[0]);
  ASSERT_TRUE(awaitApi()) << logs();
  auto created = call(
      "POST", "/v1/scheduler/iso8601",
      R"({"name":"env-check","schedule":"R1//PT1H","retries":0,"owner":"ops@example.com",)"
      R"("environmentVariables":[{"name":"GREETING","value":"hello"}],)"
      R"("command":"test \"$CHRONOS_JOB_NAME\" = env-check && test \"$GREETING\" = hello && )"
      R"(test \"$CHRONOS_JOB_OWNER\" = ops@example.com && test -n \"$CHRONOS_JOB_RUN_TIME\""})");
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 204) << created->body;
  ASSERT_TRUE(waitFor(
      [&] { return counter("env-check", "successCount") + counter("env-check", "errorCount") > 0; },
      60s))
      << logs();
  EXPECT_EQ(counter("env-check", "successCount"), 1);
}

TEST_F(ChronosSystemTest, BadJobsAreRefusedWithAMessage) {
  startCluster();
  startChronos();
  ASSERT_TRUE(awaitApi()) << logs();
  struct Case {
    const char* body;
    const char* needle;
  } cases[] = {
      {R"({"name":"no spaces","command":"true","schedule":"R//PT1M"})", "name"},
      {R"({"name":"a","command":"true","schedule":"every minute"})", "schedule"},
      {R"({"name":"a","command":"true"})", "schedule"},
      {R"({"name":"a","command":"true","cron":"61 * * * *"})", "cron"},
      {R"({"name":"a","command":"true","schedule":"R//PT1M","cpus":"lots"})", "cpus"},
      {"{not json", "JSON"},
  };
  for (const auto& c : cases) {
    auto response = call("POST", "/scheduler/iso8601", c.body);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 400) << c.body;
    EXPECT_THAT(response->body, HasSubstr(R"("message")")) << c.body;
    EXPECT_THAT(response->body, HasSubstr(c.needle)) << c.body << " -> " << response->body;
  }
  auto jobs = call("GET", "/scheduler/jobs");
  ASSERT_TRUE(jobs);
  EXPECT_EQ(jobs->body, "[]");
  auto leader = call("GET", "/scheduler/leader");
  ASSERT_TRUE(leader);
  EXPECT_EQ(leader->status, 200);
  EXPECT_THAT(leader->body, HasSubstr(R"("leader":)"));
  // A cron job is accepted and listed with its expression.
  auto cron = call("POST", "/scheduler/iso8601",
                   R"({"name":"nightly","command":"true","cron":"0 3 * * *",)"
                   R"("scheduleTimeZone":"Europe/Berlin","concurrencyPolicy":"FORBID"})");
  ASSERT_TRUE(cron);
  EXPECT_EQ(cron->status, 204) << cron->body;
  auto nightly = job("nightly");
  ASSERT_TRUE(nightly);
  EXPECT_EQ(nightly->getValue<std::string>("cron"), "0 3 * * *");
  EXPECT_EQ(nightly->getValue<std::string>("concurrencyPolicy"), "FORBID");
  auto search = call("GET", "/scheduler/jobs/search?name=NIGHT");
  ASSERT_TRUE(search);
  EXPECT_THAT(search->body, HasSubstr(R"("name":"nightly")"));
  auto none = call("GET", "/scheduler/jobs/search?name=daily");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->body, "[]");
}

// The host is SIGKILLed while a run is in flight and started again on the same store: the run
// is reconciled with the master, not launched again, and the next points run once each.
TEST_F(ChronosSystemTest, ARestartedHostNeitherLosesNorRepeatsARun) {
  startCluster();
  startChronos();
  ASSERT_TRUE(awaitApi()) << logs();
  auto created = call("POST", "/scheduler/iso8601",
                      R"({"name":"nap","command":"sleep 3","schedule":"R2//PT6S",)"
                      R"("epsilon":"PT60S"})");
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 204) << created->body;
  ASSERT_TRUE(waitFor(
      [&] {
        auto tasks = tasksOf("nap");
        return tasks.size() == 1 && tasks[0].second == "TASK_RUNNING";
      },
      60s))
      << logs();
  hosts_[0]->kill(SIGKILL);
  ASSERT_TRUE(hosts_[0]->wait(10s));
  startChronos();
  ASSERT_TRUE(awaitApi()) << logs();
  ASSERT_TRUE(waitFor([&] { return counter("nap", "successCount") == 2; }, 60s)) << logs();
  EXPECT_FALSE(waitFor([&] { return counter("nap", "successCount") > 2; }, 4s));
  EXPECT_EQ(tasksOf("nap").size(), 2u);
  EXPECT_EQ(counter("nap", "errorCount"), 0);
  // The run times (job/stat) are in the store too: a host SIGKILLed and started again on it
  // serves the same statistics.
  auto stat = call("GET", "/scheduler/job/stat/nap");
  ASSERT_TRUE(stat);
  ASSERT_EQ(stat->status, 200) << stat->body;
  EXPECT_THAT(stat->body, Not(HasSubstr(R"("count":0)")));
  hosts_[0]->kill(SIGKILL);
  ASSERT_TRUE(hosts_[0]->wait(10s));
  startChronos();
  ASSERT_TRUE(awaitApi()) << logs();
  auto again = call("GET", "/scheduler/job/stat/nap");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body, stat->body);
}

// The host is SIGKILLed just before a schedule point and comes back after it: the point runs
// once, late, within epsilon; the next one on time.
TEST_F(ChronosSystemTest, APointPassedWhileTheHostWasDownRunsOnceWhenItIsBack) {
  startCluster();
  startChronos();
  ASSERT_TRUE(awaitApi()) << logs();
  const auto point = std::chrono::ceil<std::chrono::seconds>(std::chrono::system_clock::now()) + 4s;
  const std::string start = fmt::format("{:%Y-%m-%dT%H:%M:%S}Z",
                                        fmt::gmtime(std::chrono::system_clock::to_time_t(point)));
  auto created = call("POST", "/scheduler/iso8601",
                      fmt::format(R"({{"name":"late","command":"true",)"
                                  R"("schedule":"R2/{}/PT6S","epsilon":"PT60S"}})",
                                  start));
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 204) << created->body;
  ASSERT_TRUE(waitFor([&] { return std::chrono::system_clock::now() > point - 1500ms; }, 10s));
  hosts_[0]->kill(SIGKILL);
  ASSERT_TRUE(hosts_[0]->wait(10s));
  EXPECT_TRUE(tasksOf("late").empty());
  ASSERT_TRUE(waitFor([&] { return std::chrono::system_clock::now() > point + 1s; }, 10s));
  startChronos();
  ASSERT_TRUE(awaitApi()) << logs();
  ASSERT_TRUE(waitFor([&] { return counter("late", "successCount") == 2; }, 60s)) << logs();
  EXPECT_FALSE(waitFor([&] { return tasksOf("late").size() > 2; }, 3s));
  std::set<std::string> points;
  for (const auto& [id, state] : tasksOf("late")) points.insert(id.substr(0, id.find(":late:")));
  EXPECT_EQ(points.size(), 2u);
}

// Two Chronos hosts electing a leader in a real ZooKeeper and keeping their state there: the
// leader is SIGKILLed during one run and again after another, and every schedule point still
// runs exactly once.
TEST_F(ChronosSystemTest, SigkilledLeadersNeitherLoseNorRepeatARun) {
  TESSERA_REQUIRE_ZOOKEEPER();
  const std::string url = sharedZooKeeper().url(
      fmt::format("/chronos-ha/{}-{}", ::getpid(),
                  std::chrono::steady_clock::now().time_since_epoch().count()));
  startCluster();
  startChronos(0, url);
  startChronos(1, url);
  // The leader, as both hosts name it (a follower forwards the API to it).
  auto leader = [&](int notThis) {
    int found = -1;
    waitFor(
        [&] {
          for (size_t i = 0; i < hosts_.size(); ++i) {
            if (!hosts_[i] || !hosts_[i]->running()) continue;
            auto answer = call("GET", "/scheduler/leader", "", i);
            if (!answer || answer->status != 200) return false;
            for (size_t j = 0; j < ports_.size(); ++j) {
              if (static_cast<int>(j) != notThis &&
                  answer->body.find(fmt::format("127.0.0.1:{}", ports_[j])) != std::string::npos &&
                  hosts_[j] && hosts_[j]->running()) {
                found = static_cast<int>(j);
              }
            }
          }
          if (found < 0) return false;
          auto jobs = call("GET", "/scheduler/jobs", "", static_cast<size_t>(found));
          return jobs && jobs->status == 200;
        },
        60s);
    return found;
  };
  int first = leader(-1);
  ASSERT_GE(first, 0) << logs();
  auto created = call("POST", "/scheduler/iso8601",
                      R"({"name":"tick","command":"sleep 2","schedule":"R3//PT8S",)"
                      R"("epsilon":"PT60S"})",
                      static_cast<size_t>(first));
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 204) << created->body;

  // During the first run.
  ASSERT_TRUE(waitFor(
      [&] {
        auto tasks = tasksOf("tick");
        return tasks.size() == 1 && tasks[0].second == "TASK_RUNNING";
      },
      60s))
      << logs();
  hosts_[first]->kill(SIGKILL);
  ASSERT_TRUE(hosts_[first]->wait(10s));
  int second = leader(first);
  ASSERT_GE(second, 0) << logs();
  startChronos(static_cast<size_t>(first), url);

  // After the second run.
  ASSERT_TRUE(waitFor([&] { return counter("tick", "successCount", second) == 2; }, 60s)) << logs();
  hosts_[second]->kill(SIGKILL);
  ASSERT_TRUE(hosts_[second]->wait(10s));
  int third = leader(second);
  ASSERT_GE(third, 0) << logs();

  ASSERT_TRUE(waitFor([&] { return counter("tick", "successCount", third) == 3; }, 60s)) << logs();
  EXPECT_FALSE(waitFor([&] { return tasksOf("tick").size() > 3; }, 4s));
  // One task per schedule point: three distinct points, each run once.
  auto tasks = tasksOf("tick");
  ASSERT_EQ(tasks.size(), 3u) << logs();
  std::set<std::string> points;
  for (const auto& [id, state] : tasks) {
    EXPECT_EQ(state, "TASK_FINISHED") << id;
    points.insert(id.substr(0, id.find(":tick:")));
  }
  EXPECT_EQ(points.size(), 3u);
  EXPECT_EQ(counter("tick", "errorCount", third), 0);
}

}  // namespace
}  // namespace tessera::testing
