// The Marathon module's scheduling against a real cluster (master, agents and a marathon as
// processes): a task SIGKILLed on its agent is replaced; `hostname UNIQUE` puts one task per
// agent; a failing HTTP health check (run by the agent) gets the task killed and replaced; a
// rolling restart never drops below upgradeStrategy's minimum healthy capacity, sampled
// continuously through the REST API.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cmath>
#include <fstream>
#include <set>
#include <thread>

#include "tests/system/marathon_fixture.h"

namespace tessera::testing {
namespace {

using namespace std::chrono_literals;

class MarathonSchedulingTest : public MarathonTest {
 protected:
  std::set<std::string> ids(const std::string& appId, const std::string& state = "TASK_RUNNING") {
    std::set<std::string> out;
    for (const auto& task : tasks(appId, state)) out.insert(task->getValue<std::string>("id"));
    return out;
  }
};

TEST_F(MarathonSchedulingTest, ATaskKilledOnItsAgentIsReplaced) {
  ASSERT_NO_FATAL_FAILURE(startCluster());
  const auto pids = dir_.path() / "pids";
  std::filesystem::create_directories(pids);
  // The shell execs sleep: the pid written is the task's process.
  auto created = post("/v2/apps", fmt::format(R"({{"id": "/victim", "cpus": 0.1, "mem": 16,
    "instances": 1, "backoffSeconds": 0.1,
    "cmd": "echo $$ > {}/$MESOS_TASK_ID && exec sleep 1000"}})",
                                              pids.string()));
  ASSERT_EQ(created.status, 201) << created.body << logs();
  ASSERT_TRUE(waitUntil([&] { return runningTasks("/victim") == 1; }, 60s)) << logs();
  const std::string first = *ids("/victim").begin();
  pid_t pid = 0;
  ASSERT_TRUE(waitUntil(
      [&] {
        std::ifstream in(pids / first);
        return static_cast<bool>(in >> pid) && pid > 0;
      },
      30s))
      << "the task wrote no pid\n"
      << logs();
  ASSERT_EQ(::kill(pid, SIGKILL), 0);

  ASSERT_TRUE(waitUntil(
      [&] {
        auto running = ids("/victim");
        return running.size() == 1 && !running.count(first);
      },
      60s))
      << "no replacement ran\n"
      << logs();
  // Exactly the app's instances: the dead task is gone, one new one runs.
  EXPECT_EQ(ids("/victim", "").size(), 1u);
  EXPECT_TRUE(waitUntil([&] { return masterRunningTasks() == 1; }, 30s)) << logs();
}

TEST_F(MarathonSchedulingTest, HostnameUniquePutsOneTaskOnEachAgent) {
  Options options;
  options.agents = {AgentOptions{"alpha.test"}, AgentOptions{"beta.test"},
                    AgentOptions{"gamma.test"}};
  ASSERT_NO_FATAL_FAILURE(startCluster(options));
  auto created = post("/v2/apps", R"({"id": "/spread", "cmd": "sleep 1000", "cpus": 0.1,
    "mem": 16, "instances": 3, "constraints": [["hostname", "UNIQUE"]]})");
  ASSERT_EQ(created.status, 201) << created.body << logs();
  ASSERT_TRUE(waitUntil([&] { return runningTasks("/spread") == 3; }, 60s)) << logs();
  std::set<std::string> hosts;
  for (const auto& task : tasks("/spread")) hosts.insert(task->getValue<std::string>("host"));
  EXPECT_EQ(hosts, (std::set<std::string>{"alpha.test", "beta.test", "gamma.test"}));

  // A fourth instance has nowhere to go: it waits in the queue, nothing else runs.
  auto scaled = put("/v2/apps/spread", R"({"instances": 4})");
  ASSERT_EQ(scaled.status, 200) << scaled.body;
  ASSERT_TRUE(waitUntil(
      [&] {
        auto queue = get("/v2/queue").object();
        auto list = queue ? queue->getArray("queue") : nullptr;
        return list && list->size() == 1;
      },
      30s))
      << get("/v2/queue").body;
  // Offers come every 100ms: for two seconds, none may put a second task on an agent.
  EXPECT_FALSE(waitUntil([&] { return ids("/spread", "").size() > 3; }, 2s));
  EXPECT_EQ(masterRunningTasks(), 3u);
}

TEST_F(MarathonSchedulingTest, AFailingHttpHealthCheckGetsTheTaskReplaced) {
  ASSERT_NO_FATAL_FAILURE(startCluster());
  EventStreamClient events;
  ASSERT_TRUE(events.open(marathonPorts_[0]));
  ASSERT_TRUE(events.next([](const auto& e) { return e.event == "event_stream_attached"; }, 10s))
      << events.head();
  // Nothing listens on $PORT0: every check fails once the grace period is over.
  auto created = post("/v2/apps", R"({"id": "/sick", "cmd": "sleep 1000", "cpus": 0.1,
    "mem": 16, "instances": 1, "backoffSeconds": 0.1,
    "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/health", "portIndex": 0,
      "gracePeriodSeconds": 1, "intervalSeconds": 1, "timeoutSeconds": 1, "delaySeconds": 0,
      "maxConsecutiveFailures": 2}]})");
  ASSERT_EQ(created.status, 201) << created.body << logs();
  ASSERT_TRUE(waitUntil([&] { return runningTasks("/sick") == 1; }, 60s)) << logs();
  const std::string first = *ids("/sick").begin();
  ASSERT_TRUE(waitUntil(
      [&] {
        auto running = ids("/sick");
        return !running.empty() && !running.count(first);
      },
      60s))
      << "the unhealthy task was not replaced\n"
      << logs();
  // Killed by the agent for its health, and said so.
  auto killed = events.next(
      [&](const auto& e) {
        return e.event == "unhealthy_task_kill_event" && e.data.find(first) != std::string::npos;
      },
      30s);
  ASSERT_TRUE(killed) << logs();
  EXPECT_NE(killed->data.find(R"("appId":"/sick")"), std::string::npos) << killed->data;
}

TEST_F(MarathonSchedulingTest, ARollingRestartKeepsTheMinimumHealthyCapacity) {
  ASSERT_NO_FATAL_FAILURE(startCluster());
  constexpr int kInstances = 4;
  constexpr double kMinimum = 0.5;
  auto created = post("/v2/apps", fmt::format(R"({{"id": "/rolling", "cmd": "sleep 1000",
    "cpus": 0.1, "mem": 16, "instances": {},
    "upgradeStrategy": {{"minimumHealthCapacity": {}, "maximumOverCapacity": 0.25}},
    "healthChecks": [{{"protocol": "COMMAND", "command": {{"value": "true"}},
      "gracePeriodSeconds": 5, "intervalSeconds": 1, "timeoutSeconds": 2, "delaySeconds": 0,
      "maxConsecutiveFailures": 3}}]}})",
                                              kInstances, kMinimum));
  ASSERT_EQ(created.status, 201) << created.body << logs();
  auto healthy = [&] {
    size_t count = 0;
    for (const auto& task : tasks("/rolling")) {
      auto results = task->getArray("healthCheckResults");
      if (results && results->size() > 0 && results->getObject(0)->optValue("alive", false)) {
        ++count;
      }
    }
    return count;
  };
  ASSERT_TRUE(waitUntil([&] { return healthy() == kInstances; }, 90s)) << logs();
  ASSERT_TRUE(awaitDeployments(60s)) << get("/v2/deployments").body;
  const auto before = ids("/rolling");

  // Samples the healthy running tasks while the restart runs, as fast as the API answers.
  std::atomic<bool> sampling{true};
  std::atomic<size_t> lowest{kInstances};
  std::atomic<size_t> samples{0};
  std::thread sampler([&] {
    while (sampling) {
      auto answer = get("/v2/apps/rolling/tasks");
      auto object = answer.object();
      if (answer.status != 200 || !object) continue;
      auto list = object->getArray("tasks");
      size_t ready = 0;
      for (size_t i = 0; list && i < list->size(); ++i) {
        auto task = list->getObject(i);
        if (task->optValue<std::string>("state", "") != "TASK_RUNNING") continue;
        auto results = task->getArray("healthCheckResults");
        if (results && results->size() > 0 && results->getObject(0)->optValue("alive", false)) {
          ++ready;
        }
      }
      lowest = std::min<size_t>(lowest, ready);
      ++samples;
    }
  });
  auto restarted = post("/v2/apps/rolling/restart", "");
  EXPECT_EQ(restarted.status, 200) << restarted.body;
  const bool finished = restarted.status == 200 && awaitDeployments(120s) &&
                        waitUntil(
                            [&] {
                              auto now = ids("/rolling");
                              if (now.size() != size_t(kInstances)) return false;
                              for (const auto& id : now) {
                                if (before.count(id)) return false;
                              }
                              return healthy() == kInstances;
                            },
                            60s);
  sampling = false;
  sampler.join();
  ASSERT_TRUE(finished) << "the restart did not finish\n" << get("/v2/deployments").body << logs();
  EXPECT_GT(samples.load(), 5u);
  EXPECT_GE(lowest.load(), size_t(std::ceil(kInstances * kMinimum)))
      << "healthy capacity dropped below the minimum during the restart";
}

}  // namespace
}  // namespace tessera::testing
