// The Marathon module through its REST API against a real cluster (master, agent and marathon
// processes): create, scale, kill, restart and delete apps; Marathon's error bodies (422 with the
// failing path, 409 for a duplicate id, 404); the event stream; and, with real ZooKeeper, a
// SIGKILLed leader replaced by a second marathon with every app and task.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/system/marathon_fixture.h"

namespace tessera::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

class MarathonSystemTest : public MarathonTest {
 protected:
  // Two Marathons electing their leader through a real ZooKeeper; leading_ is the leader's index.
  void startTwoMarathons() {
    MarathonClusterOptions options;
    options.marathons = 2;
    options.zookeeper = true;
    ASSERT_NO_FATAL_FAILURE(startCluster(options));
    const int first = leader();
    ASSERT_GE(first, 0);
    leading_ = static_cast<size_t>(first);
  }

  // SIGKILLs the leading Marathon and waits for the other one to lead; leading_ is then its index.
  void killTheLeader() {
    marathons_[leading_]->kill(SIGKILL);
    marathons_[leading_]->wait(10s);
    const size_t other = 1 - leading_;
    ASSERT_TRUE(waitUntil([&] { return leader() == static_cast<int>(other); }, 60s)) << logs();
    leading_ = other;
  }

  size_t leading_ = 0;
};

std::vector<std::string> taskIds(const std::vector<Poco::JSON::Object::Ptr>& tasks) {
  std::vector<std::string> ids;
  for (const auto& task : tasks) ids.push_back(task->getValue<std::string>("id"));
  return ids;
}

TEST_F(MarathonSystemTest, CreateScaleKillRestartAndDeleteAnApp) {
  ASSERT_NO_FATAL_FAILURE(startCluster());
  EXPECT_EQ(get("/ping").status, 200);

  auto created = post("/v2/apps", R"({"id": "/prod/sleeper", "cmd": "sleep 1000", "cpus": 0.1,
    "mem": 32, "instances": 2})");
  ASSERT_EQ(created.status, 201) << created.body << logs();
  EXPECT_FALSE(created.headers["marathon-deployment-id"].empty());
  ASSERT_TRUE(created.object());
  EXPECT_EQ(created.object()->getValue<std::string>("id"), "/prod/sleeper");
  ASSERT_TRUE(waitUntil([&] { return runningTasks("/prod/sleeper") == 2; }, 60s)) << logs();
  EXPECT_TRUE(waitUntil([&] { return masterRunningTasks() == 2; }, 30s));

  // The same app under a path with an empty segment; the group tree follows the ids.
  auto app = get("/v2/apps//prod/sleeper");
  ASSERT_EQ(app.status, 200) << app.body;
  EXPECT_EQ(app.object()->getObject("app")->getValue<int>("tasksRunning"), 2);
  auto groups = get("/v2/groups");
  ASSERT_EQ(groups.status, 200);
  EXPECT_THAT(groups.body, HasSubstr(R"("id":"/prod")"));

  // Scale up and down.
  auto scaled = put("/v2/apps/prod/sleeper", R"({"instances": 3})");
  ASSERT_EQ(scaled.status, 200) << scaled.body;
  EXPECT_THAT(scaled.body, HasSubstr("deploymentId"));
  ASSERT_TRUE(waitUntil([&] { return runningTasks("/prod/sleeper") == 3; }, 60s)) << logs();
  ASSERT_TRUE(awaitDeployments());
  ASSERT_EQ(put("/v2/apps/prod/sleeper?force=TRUE", R"({"instances": 1})").status, 200);
  ASSERT_TRUE(waitUntil([&] { return runningTasks("/prod/sleeper") == 1; }, 60s)) << logs();
  ASSERT_TRUE(awaitDeployments());

  // Whether the app's one task (`previous`) is replaced by one other task, within a minute.
  auto taskReplaced = [&](const std::vector<std::string>& previous) {
    return waitUntil(
        [&] {
          auto now = taskIds(tasks("/prod/sleeper"));
          return now.size() == 1 && now[0] != previous[0];
        },
        60s);
  };

  // A killed task is replaced by a new one.
  auto before = taskIds(tasks("/prod/sleeper"));
  ASSERT_EQ(before.size(), 1u);
  auto killed = del("/v2/apps/prod/sleeper/tasks");
  ASSERT_EQ(killed.status, 200) << killed.body;
  ASSERT_TRUE(taskReplaced(before)) << logs();

  // Restart replaces every task.
  before = taskIds(tasks("/prod/sleeper"));
  auto restarted = post("/v2/apps/prod/sleeper/restart", "");
  ASSERT_EQ(restarted.status, 200) << restarted.body;
  ASSERT_TRUE(taskReplaced(before)) << logs();
  ASSERT_TRUE(awaitDeployments());

  // Kill with scale: instances drop.
  auto scaledDown = del("/v2/apps/prod/sleeper/tasks?scale=true");
  ASSERT_EQ(scaledDown.status, 200) << scaledDown.body;
  ASSERT_TRUE(waitUntil(
      [&] {
        auto answer = get("/v2/apps/prod/sleeper");
        return answer.object() &&
               answer.object()->getObject("app")->getValue<int>("instances") == 0;
      },
      30s));
  ASSERT_EQ(put("/v2/apps/prod/sleeper", R"({"instances": 1})").status, 200);
  ASSERT_TRUE(waitUntil([&] { return runningTasks("/prod/sleeper") == 1; }, 60s)) << logs();
  ASSERT_TRUE(awaitDeployments());

  // Versions are kept.
  auto versions = get("/v2/apps/prod/sleeper/versions");
  ASSERT_EQ(versions.status, 200);
  EXPECT_GE(versions.object()->getArray("versions")->size(), 3u);

  // Delete: the app and its tasks go.
  auto deleted = del("/v2/apps/prod/sleeper");
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(get("/v2/apps/prod/sleeper").status, 404);
  EXPECT_TRUE(waitUntil([&] { return masterRunningTasks() == 0; }, 60s)) << logs();
}

TEST_F(MarathonSystemTest, ErrorsAreMarathons) {
  ASSERT_NO_FATAL_FAILURE(startCluster());
  auto invalid = post("/v2/apps", R"({"id": "/bad", "cmd": "sleep 1", "cpus": -1})");
  ASSERT_EQ(invalid.status, 422) << invalid.body;
  ASSERT_TRUE(invalid.object());
  EXPECT_EQ(invalid.object()->getValue<std::string>("message"), "Object is not valid");
  EXPECT_THAT(invalid.body, HasSubstr(R"("path":"/cpus")"));

  EXPECT_EQ(post("/v2/apps", R"({"id": "/bad", )").status, 400);
  auto badId = post("/v2/apps", R"({"id": "/Bad_Id", "cmd": "sleep 1"})");
  EXPECT_EQ(badId.status, 422);
  EXPECT_THAT(badId.body, HasSubstr(R"("path":"/id")"));

  const std::string app = R"({"id": "/dup", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16})";
  ASSERT_EQ(post("/v2/apps", app).status, 201);
  auto duplicate = post("/v2/apps", app);
  EXPECT_EQ(duplicate.status, 409);
  EXPECT_THAT(duplicate.body, HasSubstr("already exists"));

  auto missing = get("/v2/apps/nope");
  EXPECT_EQ(missing.status, 404);
  ASSERT_TRUE(missing.object());
  EXPECT_TRUE(missing.object()->has("message"));
}

TEST_F(MarathonSystemTest, TheEventStreamCarriesStatusUpdates) {
  ASSERT_NO_FATAL_FAILURE(startCluster());
  EventStreamClient events;
  ASSERT_TRUE(events.open(marathonPorts_[0]));
  auto attached =
      events.next([](const auto& e) { return e.event == "event_stream_attached"; }, 10s);
  ASSERT_TRUE(attached) << events.head();
  EXPECT_THAT(events.head(), HasSubstr("text/event-stream"));

  ASSERT_EQ(
      post("/v2/apps", R"({"id": "/evented", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16})").status,
      201);
  auto posted = events.next([](const auto& e) { return e.event == "api_post_event"; }, 10s);
  ASSERT_TRUE(posted);
  EXPECT_THAT(posted->data, HasSubstr(R"("eventType":"api_post_event")"));
  EXPECT_THAT(posted->data, HasSubstr(R"("timestamp":")"));
  auto running = events.next(
      [](const auto& e) {
        return e.event == "status_update_event" && e.data.find("TASK_RUNNING") != std::string::npos;
      },
      60s);
  ASSERT_TRUE(running) << logs();
  EXPECT_THAT(running->data, HasSubstr(R"("appId":"/evented")"));

  // event_type filters.
  EventStreamClient filtered;
  ASSERT_TRUE(filtered.open(marathonPorts_[0], "/v2/events?event_type=app_terminated_event"));
  ASSERT_EQ(del("/v2/apps/evented").status, 200);
  auto terminated = filtered.next([](const auto&) { return true; }, 10s);
  ASSERT_TRUE(terminated);
  EXPECT_EQ(terminated->event, "app_terminated_event");
}

TEST_F(MarathonSystemTest, ARunningDeploymentLocksItsAppUntilForcedOrCancelled) {
  ASSERT_NO_FATAL_FAILURE(startCluster());
  // More instances than the agent can hold: the deployment cannot finish.
  auto created = post("/v2/apps", R"({"id": "/big", "cmd": "sleep 1000", "cpus": 1, "mem": 16,
    "instances": 10, "labels": {"tier": "web"}})");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string deploymentId = created.headers["marathon-deployment-id"];
  auto deployments = get("/v2/deployments");
  ASSERT_EQ(deployments.status, 200);
  ASSERT_TRUE(deployments.array()) << deployments.body;
  ASSERT_EQ(deployments.array()->size(), 1u);
  EXPECT_EQ(deployments.array()->getObject(0)->getValue<std::string>("id"), deploymentId);

  auto locked = put("/v2/apps/big", R"({"instances": 2})");
  EXPECT_EQ(locked.status, 409);
  EXPECT_THAT(locked.body, HasSubstr(deploymentId));

  // Filters of GET /v2/apps.
  auto byLabel = get("/v2/apps?label=tier==web");
  ASSERT_TRUE(byLabel.object());
  EXPECT_EQ(byLabel.object()->getArray("apps")->size(), 1u);
  auto byOtherLabel = get("/v2/apps?label=tier==db");
  ASSERT_TRUE(byOtherLabel.object());
  EXPECT_EQ(byOtherLabel.object()->getArray("apps")->size(), 0u);
  auto byCmd = get("/v2/apps?cmd=sleep&embed=apps.tasks");
  ASSERT_TRUE(byCmd.object());
  ASSERT_EQ(byCmd.object()->getArray("apps")->size(), 1u);
  EXPECT_TRUE(byCmd.object()->getArray("apps")->getObject(0)->has("tasks"));

  // The app waits in the queue for offers.
  auto queue = get("/v2/queue");
  ASSERT_TRUE(queue.object()) << queue.body;
  EXPECT_THAT(queue.body, HasSubstr(R"("id":"/big")"));

  // force=true (any case) overrides the lock; cancelling with force just stops it.
  auto forced = request("PATCH", "/v2/apps/big?force=True", R"({"instances": 2})");
  ASSERT_EQ(forced.status, 200) << forced.body;
  ASSERT_TRUE(awaitDeployments()) << get("/v2/deployments").body;
  EXPECT_TRUE(waitUntil([&] { return runningTasks("/big") == 2; }, 60s)) << logs();

  ASSERT_EQ(put("/v2/apps/big", R"({"instances": 10})").status, 200);
  auto running = get("/v2/deployments");
  ASSERT_TRUE(running.array() && running.array()->size() == 1u) << running.body;
  const std::string id = running.array()->getObject(0)->getValue<std::string>("id");
  EXPECT_EQ(del("/v2/deployments/" + id + "?force=true").status, 202);
  EXPECT_TRUE(awaitDeployments());
  EXPECT_EQ(del("/v2/deployments/" + id).status, 404);
}

TEST_F(MarathonSystemTest, DeletingADeploymentRollsBack) {
  ASSERT_NO_FATAL_FAILURE(startCluster());
  ASSERT_EQ(
      post("/v2/apps", R"({"id": "/roll", "cmd": "sleep 1000", "cpus": 1, "mem": 16})").status,
      201);
  ASSERT_TRUE(awaitDeployments());
  ASSERT_TRUE(waitUntil([&] { return runningTasks("/roll") == 1; }, 60s)) << logs();
  // A scale the agent cannot hold, then rolled back: instances are 1 again.
  auto scaled = put("/v2/apps/roll", R"({"instances": 10})");
  ASSERT_EQ(scaled.status, 200) << scaled.body;
  const std::string id = scaled.object()->getValue<std::string>("deploymentId");
  auto rolledBack = del("/v2/deployments/" + id);
  ASSERT_EQ(rolledBack.status, 200) << rolledBack.body;
  EXPECT_NE(rolledBack.object()->getValue<std::string>("deploymentId"), id);
  auto app = get("/v2/apps/roll");
  ASSERT_TRUE(app.object());
  EXPECT_EQ(app.object()->getObject("app")->getValue<int>("instances"), 1);
  ASSERT_TRUE(awaitDeployments()) << get("/v2/deployments").body;
  EXPECT_TRUE(waitUntil([&] { return runningTasks("/roll") == 1; }, 60s)) << logs();
}

TEST_F(MarathonSystemTest, ARestartedMarathonKeepsItsAppsAndTasks) {
  ASSERT_NO_FATAL_FAILURE(startCluster());
  ASSERT_EQ(post("/v2/apps", R"({"id": "/kept", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16,
    "instances": 2})")
                .status,
            201);
  ASSERT_TRUE(waitUntil([&] { return masterRunningTasks() == 2; }, 60s)) << logs();
  marathons_[0]->kill(SIGKILL);
  marathons_[0]->wait(10s);
  ASSERT_NO_FATAL_FAILURE(startMarathon(0));
  ASSERT_TRUE(waitUntil([&] { return runningTasks("/kept") == 2; }, 60s)) << logs();
  EXPECT_EQ(masterRunningTasks(), 2u);
}

TEST_F(MarathonSystemTest, BulkPutAndGroupDelete) {
  ASSERT_NO_FATAL_FAILURE(startCluster());
  auto bulk = put("/v2/apps", R"([{"id": "/bulk/a", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16},
                                  {"id": "/bulk/b", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16}])");
  ASSERT_EQ(bulk.status, 200) << bulk.body;
  EXPECT_TRUE(
      waitUntil([&] { return runningTasks("/bulk/a") == 1 && runningTasks("/bulk/b") == 1; }, 60s))
      << logs();
  auto group = get("/v2/groups/bulk");
  ASSERT_EQ(group.status, 200) << group.body;
  EXPECT_EQ(group.object()->getArray("apps")->size(), 2u);
  auto invalid = put("/v2/apps", R"([{"id": "/bulk/a", "cpus": -1}])");
  EXPECT_EQ(invalid.status, 422);
  EXPECT_THAT(invalid.body, HasSubstr(R"("path":"/(0)/cpus")"));

  ASSERT_TRUE(awaitDeployments());
  auto removed = del("/v2/groups/bulk");
  ASSERT_EQ(removed.status, 200) << removed.body;
  EXPECT_EQ(get("/v2/apps/bulk/a").status, 404);
  EXPECT_EQ(get("/v2/groups/bulk").status, 404);
  EXPECT_TRUE(waitUntil([&] { return masterRunningTasks() == 0; }, 60s)) << logs();
}

TEST_F(MarathonSystemTest, InfoLeaderAndMetricsAnswer) {
  ASSERT_NO_FATAL_FAILURE(startCluster());
  auto info = get("/v2/info");
  ASSERT_EQ(info.status, 200);
  ASSERT_TRUE(info.object()) << info.body;
  EXPECT_EQ(info.object()->getValue<std::string>("name"), "marathon");
  EXPECT_TRUE(info.object()->getValue<bool>("elected"));
  auto leader = get("/v2/leader");
  ASSERT_EQ(leader.status, 200);
  ASSERT_TRUE(leader.object()) << leader.body;
  EXPECT_EQ(leader.object()->getValue<std::string>("leader"),
            fmt::format("127.0.0.1:{}", marathonPorts_[0]));
  EXPECT_EQ(get("/metrics").status, 200);
  auto queue = get("/v2/queue");
  ASSERT_EQ(queue.status, 200);
  ASSERT_TRUE(queue.object()) << queue.body;
  EXPECT_TRUE(queue.object()->has("queue"));
}

TEST_F(MarathonSystemTest, AKilledLeaderIsReplacedWithEveryAppAndTask) {
  ASSERT_NO_FATAL_FAILURE(startTwoMarathons());
  const size_t first = leading_;
  auto created = request("POST", "/v2/apps",
                         R"({"id": "/ha/sleeper", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16,
                             "instances": 2})",
                         first);
  ASSERT_EQ(created.status, 201) << created.body;
  ASSERT_TRUE(waitUntil([&] { return masterRunningTasks() == 2; }, 60s)) << logs();
  // The follower answers with the leader's API.
  const size_t follower = 1 - first;
  auto forwarded = request("GET", "/v2/apps/ha/sleeper", "", follower);
  EXPECT_EQ(forwarded.status, 200) << forwarded.body;
  auto leaderSeen = request("GET", "/v2/leader", "", follower);
  ASSERT_TRUE(leaderSeen.object()) << leaderSeen.body;
  EXPECT_EQ(leaderSeen.object()->getValue<std::string>("leader"),
            fmt::format("127.0.0.1:{}", marathonPorts_[first]));

  ASSERT_NO_FATAL_FAILURE(killTheLeader());
  const size_t second = leading_;
  ASSERT_TRUE(waitUntil(
      [&] {
        auto app = request("GET", "/v2/apps/ha/sleeper", "", second);
        return app.status == 200 &&
               app.object()->getObject("app")->getValue<int>("tasksRunning") == 2;
      },
      60s))
      << logs();
  // Neither lost nor duplicated.
  EXPECT_EQ(masterRunningTasks(), 2u);
}

TEST_F(MarathonSystemTest, AKilledLeaderIsReplacedWithItsRunningDeployments) {
  ASSERT_NO_FATAL_FAILURE(startTwoMarathons());
  const size_t first = leading_;
  // More instances than the agent can hold: the deployment is still running at the failover.
  auto created = request("POST", "/v2/apps",
                         R"({"id": "/ha/big", "cmd": "sleep 1000", "cpus": 1, "mem": 16,
                             "instances": 10})",
                         first);
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = created.headers["marathon-deployment-id"];
  ASSERT_FALSE(id.empty());

  ASSERT_NO_FATAL_FAILURE(killTheLeader());
  const size_t second = leading_;
  JsonResponse deployments;
  ASSERT_TRUE(waitUntil(
      [&] {
        deployments = request("GET", "/v2/deployments", "", second);
        return deployments.status == 200 && deployments.array() != nullptr;
      },
      60s))
      << logs();
  ASSERT_EQ(deployments.array()->size(), 1u) << deployments.body;
  EXPECT_EQ(deployments.array()->getObject(0)->getValue<std::string>("id"), id);
  // It still locks the app on the new leader, and it can be stopped there.
  auto locked = request("PUT", "/v2/apps/ha/big", R"({"instances": 1})", second);
  EXPECT_EQ(locked.status, 409) << locked.body;
  EXPECT_EQ(request("DELETE", "/v2/deployments/" + id + "?force=true", "", second).status, 202);
  auto after = request("GET", "/v2/deployments", "", second);
  ASSERT_TRUE(after.array()) << after.body;
  EXPECT_EQ(after.array()->size(), 0u);
}

TEST_F(MarathonSystemTest, GroupsCreateUpdateAndDeleteTheirApps) {
  ASSERT_NO_FATAL_FAILURE(startCluster());
  auto created = post("/v2/groups", R"({"id": "/shop", "groups": [{"id": "web", "apps": [
      {"id": "api", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16},
      {"id": "ui", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16}]}]})");
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_FALSE(created.headers["marathon-deployment-id"].empty());
  ASSERT_TRUE(awaitDeployments()) << get("/v2/deployments").body << logs();
  ASSERT_TRUE(waitUntil(
      [&] { return runningTasks("/shop/web/api") == 1 && runningTasks("/shop/web/ui") == 1; }, 60s))
      << logs();
  EXPECT_EQ(post("/v2/groups", R"({"id": "/shop"})").status, 409);

  // PUT: api scaled to 2, ui no longer listed (stopped).
  auto updated = put("/v2/groups/shop/web", R"({"apps": [
      {"id": "api", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 2}]})");
  ASSERT_EQ(updated.status, 200) << updated.body;
  ASSERT_TRUE(awaitDeployments()) << get("/v2/deployments").body << logs();
  EXPECT_TRUE(waitUntil([&] { return runningTasks("/shop/web/api") == 2; }, 60s)) << logs();
  EXPECT_EQ(get("/v2/apps/shop/web/ui").status, 404);

  ASSERT_EQ(del("/v2/groups/shop").status, 200);
  ASSERT_TRUE(awaitDeployments()) << get("/v2/deployments").body << logs();
  EXPECT_TRUE(waitUntil([&] { return masterRunningTasks() == 0; }, 60s)) << logs();
  EXPECT_EQ(get("/v2/groups/shop").status, 404);
}

}  // namespace
}  // namespace tessera::testing
