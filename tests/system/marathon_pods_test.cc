// Marathon pods through the REST API against a real cluster (master, agent and marathon
// processes): a pod of two containers runs as one task group on one agent, `::status` shows
// its instance, it scales, a restarted Marathon keeps its instance, DELETE kills its tasks,
// containers' health checks run on the agent and show in `::status` (an unhealthy container's
// instance is replaced), and a bad definition gets 422 with the failing path.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "tests/system/marathon_fixture.h"

namespace tessera::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

class MarathonPodsTest : public MarathonTest {
 protected:
  // A task of the marathon framework as the master's /state lists it.
  struct MasterTask {
    std::string id;
    std::string state;
    std::string agentId;
    std::string executorId;
  };

  std::vector<MasterTask> masterTasks(const std::string& state = "TASK_RUNNING") {
    std::vector<MasterTask> out;
    auto json = getJson(masterPort_, "/state", std::chrono::seconds(3));
    if (!json) return out;
    auto frameworks = json->getArray("frameworks");
    for (size_t i = 0; frameworks && i < frameworks->size(); ++i) {
      auto framework = frameworks->getObject(i);
      if (framework->optValue<std::string>("name", "") != "marathon") continue;
      auto list = framework->getArray("tasks");
      for (size_t j = 0; list && j < list->size(); ++j) {
        auto task = list->getObject(j);
        MasterTask entry{task->optValue<std::string>("id", ""),
                         task->optValue<std::string>("state", ""),
                         task->optValue<std::string>("slave_id", ""),
                         task->optValue<std::string>("executor_id", "")};
        if (state.empty() || entry.state == state) out.push_back(entry);
      }
    }
    return out;
  }

  // GET /v2/pods/{id}::status, or nullptr.
  Poco::JSON::Object::Ptr podStatus(const std::string& id) {
    auto answer = get(fmt::format("/v2/pods{}::status", id));
    return answer.status == 200 ? answer.object() : nullptr;
  }

  // The ids of the pod's instances whose status is STABLE with every container TASK_RUNNING.
  std::vector<std::string> stableInstances(const std::string& id) {
    std::vector<std::string> out;
    auto status = podStatus(id);
    if (!status) return out;
    auto instances = status->getArray("instances");
    for (size_t i = 0; instances && i < instances->size(); ++i) {
      auto instance = instances->getObject(i);
      if (instance->optValue<std::string>("status", "") != "STABLE") continue;
      auto containers = instance->getArray("containers");
      bool running = containers && containers->size() > 0;
      for (size_t j = 0; containers && j < containers->size(); ++j) {
        running &= containers->getObject(j)->optValue<std::string>("status", "") == "TASK_RUNNING";
      }
      if (running) out.push_back(instance->getValue<std::string>("id"));
    }
    return out;
  }

  static std::string podJson(int instances) {
    return fmt::format(R"({{"id": "/prod/duo", "scaling": {{"kind": "fixed", "instances": {}}},
      "containers": [
        {{"name": "main", "resources": {{"cpus": 0.1, "mem": 32}},
          "exec": {{"command": {{"shell": "sleep 1000"}}}},
          "endpoints": [{{"name": "http", "hostPort": 0}}]}},
        {{"name": "helper", "resources": {{"cpus": 0.1, "mem": 32}},
          "exec": {{"command": {{"shell": "sleep 1000"}}}}}}],
      "networks": [{{"mode": "host"}}]}})",
                       instances);
  }
};

TEST_F(MarathonPodsTest, APodRunsAsOneTaskGroupScalesAndIsDeleted) {
  ASSERT_NO_FATAL_FAILURE(startCluster());

  auto created = post("/v2/pods", podJson(1));
  ASSERT_EQ(created.status, 201) << created.body << logs();
  EXPECT_FALSE(created.headers["marathon-deployment-id"].empty());
  ASSERT_TRUE(created.object());
  EXPECT_EQ(created.object()->getValue<std::string>("id"), "/prod/duo");
  EXPECT_EQ(post("/v2/pods", podJson(1)).status, 409);

  // Both containers run, as tasks of one group (one executor) on one agent.
  ASSERT_TRUE(waitUntil([&] { return stableInstances("/prod/duo").size() == 1; }, 60s)) << logs();
  ASSERT_TRUE(waitUntil([&] { return masterTasks().size() == 2; }, 30s)) << logs();
  const std::string instance = stableInstances("/prod/duo").at(0);
  auto tasks = masterTasks();
  std::set<std::string> ids, agents, executors;
  for (const auto& task : tasks) {
    ids.insert(task.id);
    agents.insert(task.agentId);
    executors.insert(task.executorId);
  }
  EXPECT_EQ(ids, (std::set<std::string>{instance + ".main", instance + ".helper"}));
  EXPECT_EQ(agents.size(), 1u);
  EXPECT_EQ(executors.size(), 1u);

  // ::status shows the instance, its agent and its containers' endpoints.
  auto status = podStatus("/prod/duo");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->getValue<std::string>("status"), "STABLE");
  auto first = status->getArray("instances")->getObject(0);
  EXPECT_EQ(first->getValue<std::string>("agentId"), *agents.begin());
  EXPECT_THAT(get("/v2/pods/prod/duo::status").body, HasSubstr(R"("allocatedHostPort":)"));

  // The list, one pod, every status, the versions.
  auto list = get("/v2/pods");
  ASSERT_EQ(list.status, 200);
  ASSERT_TRUE(list.array());
  EXPECT_EQ(list.array()->size(), 1u);
  auto one = get("/v2/pods/prod/duo");
  ASSERT_EQ(one.status, 200);
  EXPECT_THAT(one.body, HasSubstr(R"("scaling":{"kind":"fixed","instances":1})"));
  auto all = get("/v2/pods/::status");
  ASSERT_EQ(all.status, 200);
  ASSERT_TRUE(all.array());
  EXPECT_EQ(all.array()->size(), 1u);

  // Scale to 2 (PUT of the whole definition).
  auto scaled = put("/v2/pods/prod/duo", podJson(2));
  ASSERT_EQ(scaled.status, 200) << scaled.body;
  EXPECT_FALSE(scaled.headers["marathon-deployment-id"].empty());
  ASSERT_TRUE(waitUntil([&] { return stableInstances("/prod/duo").size() == 2; }, 60s)) << logs();
  EXPECT_TRUE(waitUntil([&] { return masterTasks().size() == 4; }, 30s)) << logs();
  // Scaling alone does not replace the first instance.
  auto both = stableInstances("/prod/duo");
  EXPECT_NE(std::find(both.begin(), both.end(), instance), both.end());
  auto versions = get("/v2/pods/prod/duo::versions");
  ASSERT_EQ(versions.status, 200);
  ASSERT_TRUE(versions.array());
  EXPECT_EQ(versions.array()->size(), 2u);

  // Killing one instance: it is replaced.
  auto killed = del(fmt::format("/v2/pods/prod/duo::instances/{}", instance));
  ASSERT_EQ(killed.status, 200) << killed.body;
  ASSERT_TRUE(waitUntil(
      [&] {
        auto now = stableInstances("/prod/duo");
        return now.size() == 2 && std::find(now.begin(), now.end(), instance) == now.end();
      },
      60s))
      << logs();

  // Delete: the pod goes, its tasks are killed.
  auto deleted = del("/v2/pods/prod/duo");
  ASSERT_EQ(deleted.status, 202) << deleted.body;
  EXPECT_FALSE(deleted.headers["marathon-deployment-id"].empty());
  EXPECT_EQ(get("/v2/pods/prod/duo").status, 404);
  EXPECT_TRUE(waitUntil([&] { return masterTasks().empty(); }, 60s)) << logs();
}

TEST_F(MarathonPodsTest, ARestartedMarathonKeepsItsPodInstance) {
  ASSERT_NO_FATAL_FAILURE(startCluster());
  ASSERT_EQ(post("/v2/pods", podJson(1)).status, 201);
  ASSERT_TRUE(waitUntil([&] { return stableInstances("/prod/duo").size() == 1; }, 60s)) << logs();
  const std::string instance = stableInstances("/prod/duo").at(0);
  marathons_[0]->kill(SIGKILL);
  marathons_[0]->wait(10s);
  ASSERT_NO_FATAL_FAILURE(startMarathon(0));
  ASSERT_TRUE(waitUntil([&] { return stableInstances("/prod/duo").size() == 1; }, 60s)) << logs();
  EXPECT_EQ(stableInstances("/prod/duo").at(0), instance);
  // Neither lost nor duplicated, past the new leader's reconciliation.
  ASSERT_TRUE(waitUntil([&] { return masterTasks().size() == 2; }, 30s)) << logs();
  EXPECT_FALSE(waitUntil([&] { return masterTasks("").size() > 2; }, 5s)) << logs();
}

// A container's condition `name` ("healthy") in one instance of ::status, as "true"/"false"
// with its reason; empty when it has none.
std::string conditionOf(const Poco::JSON::Object::Ptr& instance, const std::string& container) {
  auto containers = instance->getArray("containers");
  for (size_t i = 0; containers && i < containers->size(); ++i) {
    auto entry = containers->getObject(i);
    if (entry->optValue<std::string>("name", "") != container) continue;
    auto conditions = entry->getArray("conditions");
    for (size_t j = 0; conditions && j < conditions->size(); ++j) {
      auto condition = conditions->getObject(j);
      if (condition->optValue<std::string>("name", "") != "healthy") continue;
      return condition->optValue<std::string>("value", "") + "/" +
             condition->optValue<std::string>("reason", "");
    }
  }
  return "";
}

TEST_F(MarathonPodsTest, ContainerHealthChecksRunOnTheAgentAndShowInTheStatus) {
  ASSERT_NO_FATAL_FAILURE(startCluster());
  // "web" has an HTTP check of an endpoint nothing listens on (never killed for it:
  // maxConsecutiveFailures 0); "ok" has a command check that passes.
  auto created = post("/v2/pods", R"({"id": "/checked", "containers": [
    {"name": "web", "resources": {"cpus": 0.1, "mem": 32},
     "exec": {"command": {"shell": "sleep 1000"}},
     "endpoints": [{"name": "http", "hostPort": 0}],
     "healthCheck": {"http": {"endpoint": "http", "path": "/health"}, "gracePeriodSeconds": 0,
       "intervalSeconds": 1, "timeoutSeconds": 1, "delaySeconds": 0,
       "maxConsecutiveFailures": 0}},
    {"name": "ok", "resources": {"cpus": 0.1, "mem": 32},
     "exec": {"command": {"shell": "sleep 1000"}},
     "healthCheck": {"exec": {"command": {"shell": "true"}}, "gracePeriodSeconds": 0,
       "intervalSeconds": 1, "timeoutSeconds": 5, "delaySeconds": 0}}]})");
  ASSERT_EQ(created.status, 201) << created.body << logs();
  EXPECT_THAT(get("/v2/pods/checked").body,
              HasSubstr(R"("healthCheck":{"http":{"endpoint":"http","path":"/health",)"
                        R"("scheme":"HTTP"},"gracePeriodSeconds":0,)"));

  Poco::JSON::Object::Ptr instance;
  ASSERT_TRUE(waitUntil(
      [&] {
        auto status = podStatus("/checked");
        auto instances = status ? status->getArray("instances") : nullptr;
        if (!instances || instances->size() != 1) return false;
        instance = instances->getObject(0);
        return conditionOf(instance, "web") == "false/health-reported-by-mesos" &&
               conditionOf(instance, "ok") == "true/health-reported-by-mesos";
      },
      60s))
      << get("/v2/pods/checked::status").body << logs();
  EXPECT_EQ(instance->getValue<std::string>("status"), "DEGRADED");
  EXPECT_EQ(instance->optValue<std::string>("message", ""),
            "at least one container is not healthy");
  EXPECT_EQ(podStatus("/checked")->getValue<std::string>("status"), "DEGRADED");
  const std::string body = get("/v2/pods/checked::status").body;
  EXPECT_THAT(body, HasSubstr(R"("name":"http","allocatedHostPort":)"));
  EXPECT_THAT(body, HasSubstr(R"(,"healthy":false})")) << "the checked endpoint";
  // Not killed (maxConsecutiveFailures 0): the same instance, its tasks still running.
  const std::string id = instance->getValue<std::string>("id");
  EXPECT_FALSE(waitUntil(
      [&] {
        auto status = podStatus("/checked");
        auto instances = status ? status->getArray("instances") : nullptr;
        return !instances || instances->size() != 1 ||
               instances->getObject(0)->getValue<std::string>("id") != id;
      },
      3s));
  EXPECT_EQ(masterTasks().size(), 2u) << logs();
}

TEST_F(MarathonPodsTest, AContainerFailingItsHealthCheckIsKilledAndItsInstanceReplaced) {
  ASSERT_NO_FATAL_FAILURE(startCluster());
  auto created = post("/v2/pods", R"({"id": "/sick", "containers": [
    {"name": "main", "resources": {"cpus": 0.1, "mem": 32},
     "exec": {"command": {"shell": "sleep 1000"}},
     "healthCheck": {"exec": {"command": {"shell": "false"}}, "gracePeriodSeconds": 0,
       "intervalSeconds": 1, "timeoutSeconds": 5, "delaySeconds": 0,
       "maxConsecutiveFailures": 2}}],
    "scheduling": {"backoff": {"backoff": 0.1}}})");
  ASSERT_EQ(created.status, 201) << created.body << logs();
  std::string first;
  ASSERT_TRUE(waitUntil(
      [&] {
        auto running = masterTasks();
        if (running.size() != 1) return false;
        first = running[0].id;
        return true;
      },
      60s))
      << logs();
  // The agent kills it after two failed checks; Marathon launches a new instance.
  ASSERT_TRUE(waitUntil(
      [&] {
        auto running = masterTasks();
        return running.size() == 1 && running[0].id != first;
      },
      60s))
      << "the unhealthy container's instance was not replaced\n"
      << get("/v2/pods/sick::status").body << logs();
  // The dead instance is gone from ::status; the new one is there.
  EXPECT_TRUE(waitUntil(
      [&] { return get("/v2/pods/sick::status").body.find(first) == std::string::npos; }, 30s))
      << get("/v2/pods/sick::status").body;
}

TEST_F(MarathonPodsTest, ABadPodDefinitionIsRefusedWithThePath) {
  ASSERT_NO_FATAL_FAILURE(startCluster());
  auto invalid = post("/v2/pods", R"({"id": "/bad", "containers": [{"name": "c",
    "resources": {"cpus": -1, "mem": 32}, "exec": {"command": {"shell": "sleep 1"}}}]})");
  ASSERT_EQ(invalid.status, 422) << invalid.body;
  ASSERT_TRUE(invalid.object());
  EXPECT_TRUE(invalid.object()->has("message"));
  EXPECT_THAT(invalid.body, HasSubstr(R"("path":"/containers(0)/resources/cpus")"));
  EXPECT_EQ(post("/v2/pods", "{nope").status, 400);
  EXPECT_EQ(get("/v2/pods/bad").status, 404);
  EXPECT_EQ(get("/v2/pods/bad::status").status, 404);
  auto badCheck = post("/v2/pods", R"({"id": "/bad", "containers": [{"name": "c",
    "resources": {"cpus": 0.1, "mem": 32}, "exec": {"command": {"shell": "sleep 1"}},
    "healthCheck": {"tcp": {"endpoint": "none"}}}]})");
  ASSERT_EQ(badCheck.status, 422) << badCheck.body;
  EXPECT_THAT(badCheck.body, HasSubstr(R"("path":"/containers(0)/healthCheck/tcp/endpoint")"));
}

}  // namespace
}  // namespace tessera::testing
