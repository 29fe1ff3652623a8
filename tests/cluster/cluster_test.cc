// The whole cluster in one process: a real master, real agents running real processes through
// the native containerizer, and frameworks on the HTTP scheduler driver.

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

#include "tests/cluster/cluster_fixture.h"

namespace tessera::kernel::cluster::testing {
namespace {

using ::testing::HasSubstr;
using Kind = SchedulerEvent::Kind;

Poco::JSON::Object::Ptr parseObject(const std::string& text) {
  try {
    return Poco::JSON::Parser().parse(text).extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception&) {
    return nullptr;
  }
}

class ClusterTest : public ClusterFixture {
 protected:
  /// The ids of the completed tasks of framework `frameworkId` in the master's /state.
  std::vector<std::string> completedTasks(const std::string& frameworkId) {
    std::vector<std::string> ids;
    auto state = parseObject(get("/state").body);
    if (!state) return ids;
    auto frameworks = state->getArray("frameworks");
    for (size_t i = 0; frameworks && i < frameworks->size(); ++i) {
      auto framework = frameworks->getObject(i);
      if (framework->getValue<std::string>("id") != frameworkId) continue;
      auto tasks = framework->getArray("completed_tasks");
      for (size_t j = 0; tasks && j < tasks->size(); ++j) {
        ids.push_back(tasks->getObject(j)->getValue<std::string>("id"));
      }
    }
    return ids;
  }

  /// Subscribes `framework`, launches `command` as `taskId` on its first offer and waits for
  /// TASK_RUNNING. Returns the agent id.
  std::string launchRunning(TestFramework& framework, const std::string& taskId,
                            const std::string& command) {
    auto offer = framework.offer();
    if (!offer) {
      ADD_FAILURE() << "no offer";
      return "";
    }
    auto launched = framework.launch(*offer, taskId, command);
    EXPECT_TRUE(launched) << launched.toString();
    auto running = framework.updateIn(taskId, v1::TASK_RUNNING);
    EXPECT_TRUE(running.has_value()) << "task '" << taskId << "' never ran";
    return offer->agent_id().value();
  }
};

TEST_F(ClusterTest, TaskRunsToFinishedInOrderAndIsAcknowledged) {
  startCluster(1);
  auto& framework = addFramework();
  ASSERT_FALSE(framework.subscribe().empty());
  auto offer = framework.offer();
  ASSERT_TRUE(offer);
  EXPECT_EQ(offer->agent_id().value(), agentAt(0).agent->id());
  ASSERT_TRUE(framework.launch(*offer, "ok", "true"));

  std::vector<v1::TaskState> states;
  for (int i = 0; i < 3; ++i) {
    auto status = framework.update("ok");
    ASSERT_TRUE(status) << "after " << states.size() << " updates";
    EXPECT_FALSE(status->uuid().empty());
    EXPECT_EQ(status->agent_id().value(), offer->agent_id().value());
    states.push_back(status->state());
  }
  EXPECT_EQ(states,
            (std::vector<v1::TaskState>{v1::TASK_STARTING, v1::TASK_RUNNING, v1::TASK_FINISHED}));
  // The terminal update's acknowledgement completes the task in the master.
  EXPECT_TRUE(tessera::testing::waitFor(
      [&] { return completedTasks(framework.frameworkId) == std::vector<std::string>{"ok"}; },
      kWait));
}

TEST_F(ClusterTest, ExitCodeFailsTheTaskAndKillKillsIt) {
  startCluster(1);
  auto& framework = addFramework();
  ASSERT_FALSE(framework.subscribe().empty());
  auto offer = framework.offer();
  ASSERT_TRUE(offer);
  ASSERT_TRUE(framework.launch(*offer, "fails", "exit 3"));
  auto failed = framework.terminalUpdate("fails");
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->state(), v1::TASK_FAILED);
  EXPECT_THAT(failed->message(), HasSubstr("status 3"));

  std::string agentId = launchRunning(framework, "sleeper", "sleep 100");
  ASSERT_FALSE(agentId.empty());
  ASSERT_TRUE(framework.kill("sleeper", agentId));
  auto killed = framework.terminalUpdate("sleeper");
  ASSERT_TRUE(killed);
  EXPECT_EQ(killed->state(), v1::TASK_KILLED) << killed->message();
}

TEST_F(ClusterTest, TaskSurvivesAnAgentRestartedInProcess) {
  startCluster(1);
  auto& framework = addFramework();
  ASSERT_FALSE(framework.subscribe().empty());
  std::string agentId = launchRunning(framework, "survivor", "sleep 100");
  ASSERT_FALSE(agentId.empty());

  restartAgent(agentAt(0));
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(agentAt(0).agent->id(), agentId);

  // (An update not yet acknowledged when the agent went may come again first.)
  ASSERT_TRUE(framework.reconcile("survivor", agentId));
  auto reconciled = framework.updateWhere("survivor", [](const v1::TaskStatus& status) {
    return status.reason() == v1::TaskStatus::REASON_RECONCILIATION;
  });
  ASSERT_TRUE(reconciled);
  EXPECT_EQ(reconciled->state(), v1::TASK_RUNNING);

  // The new agent knows the task: a kill is TASK_KILLED, not the TASK_LOST of an unknown task.
  ASSERT_TRUE(framework.kill("survivor", agentId));
  auto killed = framework.terminalUpdate("survivor");
  ASSERT_TRUE(killed);
  EXPECT_EQ(killed->state(), v1::TASK_KILLED) << killed->message();
}

TEST_F(ClusterTest, AnAgentThatNeverReturnsRescindsItsOffersAndLosesItsTasks) {
  masterOptions.agentPingTimeout = 100ms;
  masterOptions.maxAgentPingTimeouts = 3;
  startCluster(1);
  auto& framework = addFramework();
  ASSERT_FALSE(framework.subscribe().empty());
  std::string agentId = launchRunning(framework, "orphan", "sleep 100");
  ASSERT_FALSE(agentId.empty());
  // What the task left is offered again; keep that offer outstanding.
  auto outstanding = framework.offer(agentId);
  ASSERT_TRUE(outstanding);

  stopAgent(agentAt(0), /*keepContainerizer=*/true);

  auto rescinded = framework.next(Kind::kRescind);
  ASSERT_TRUE(rescinded);
  EXPECT_EQ(rescinded->offerId, outstanding->id().value());
  // The framework is not PARTITION_AWARE: TASK_LOST.
  auto lost = framework.updateIn("orphan", v1::TASK_LOST);
  ASSERT_TRUE(lost);
  EXPECT_EQ(lost->reason(), v1::TaskStatus::REASON_AGENT_REMOVED);
}

TEST_F(ClusterTest, AFrameworkResubscribesWithItsIdAndFindsItsTask) {
  startCluster(1);
  auto* first = &addFramework();
  std::string frameworkId = first->subscribe();
  ASSERT_FALSE(frameworkId.empty());
  std::string agentId = launchRunning(*first, "kept", "sleep 100");
  ASSERT_FALSE(agentId.empty());

  // The scheduler's stream drops (it crashed); a new one fails over with the same id.
  removeFramework(*first);
  auto& second = addFramework();
  v1::FrameworkInfo info = testFrameworkInfo();
  info.mutable_id()->set_value(frameworkId);
  EXPECT_EQ(second.subscribe(info), frameworkId);

  ASSERT_TRUE(second.reconcile("kept", agentId));
  auto reconciled = second.updateWhere("kept", [](const v1::TaskStatus& status) {
    return status.reason() == v1::TaskStatus::REASON_RECONCILIATION;
  });
  ASSERT_TRUE(reconciled);
  EXPECT_EQ(reconciled->state(), v1::TASK_RUNNING);
  ASSERT_TRUE(second.kill("kept", agentId));
  auto killed = second.terminalUpdate("kept");
  ASSERT_TRUE(killed);
  EXPECT_EQ(killed->state(), v1::TASK_KILLED) << killed->message();
}

TEST_F(ClusterTest, UpdatesAreResentUntilAcknowledged) {
  startCluster(1);
  auto& framework = addFramework();
  // TASK_RUNNING is acknowledged by the test, by hand; everything else on arrival.
  framework.scheduler().setAcknowledgePolicy(
      [](const v1::TaskStatus& status) { return status.state() != v1::TASK_RUNNING; });
  ASSERT_FALSE(framework.subscribe().empty());
  auto offer = framework.offer();
  ASSERT_TRUE(offer);
  ASSERT_TRUE(framework.launch(*offer, "brief", "sleep 0.2"));

  auto running = framework.updateIn("brief", v1::TASK_RUNNING);
  ASSERT_TRUE(running);
  // The task ends meanwhile, but its terminal update waits behind the unacknowledged one.
  auto again = framework.update("brief");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->state(), v1::TASK_RUNNING);
  EXPECT_EQ(again->uuid(), running->uuid());

  ASSERT_TRUE(framework.acknowledge(*running));
  auto finished = framework.updateIn("brief", v1::TASK_FINISHED);
  ASSERT_TRUE(finished);
  EXPECT_NE(finished->uuid(), running->uuid());
}

TEST_F(ClusterTest, TheAgentsStateShowsPortsAsTheMasterDoesAndItsReservations) {
  agentOptions.resources = "cpus:2;cpus(eng):1;mem:1024;disk:1024;ports:[31000-31005,31007-32000]";
  startCluster(1);
  auto agent = parseObject(get("/slave(1)/state").body);
  ASSERT_TRUE(agent);
  auto slaves = parseObject(get("/slaves").body);
  ASSERT_TRUE(slaves);
  ASSERT_EQ(slaves->getArray("slaves")->size(), 1u);
  auto slave = slaves->getArray("slaves")->getObject(0);

  const std::string ports = "[31000-31005, 31007-32000]";
  EXPECT_EQ(agent->getObject("resources")->getValue<std::string>("ports"), ports);
  EXPECT_EQ(slave->getObject("resources")->getValue<std::string>("ports"), ports);
  EXPECT_EQ(agent->getObject("resources")->getValue<double>("cpus"), 3);
  EXPECT_EQ(slave->getObject("resources")->getValue<double>("cpus"), 3);

  auto eng = agent->getObject("reserved_resources")->getObject("eng");
  ASSERT_TRUE(eng);
  EXPECT_EQ(eng->getValue<double>("cpus"), 1);
  EXPECT_EQ(eng->getValue<double>("mem"), 0);
  auto engFull = agent->getObject("reserved_resources_full")->getArray("eng");
  ASSERT_TRUE(engFull);
  ASSERT_EQ(engFull->size(), 1u);
  EXPECT_EQ(engFull->getObject(0)->getValue<std::string>("name"), "cpus");
  EXPECT_EQ(agent->getObject("unreserved_resources")->getValue<double>("cpus"), 2);
  EXPECT_EQ(agent->getObject("unreserved_resources")->getValue<std::string>("ports"), ports);
  EXPECT_FALSE(agent->getObject("reserved_resources")->has("*"));
}

TEST_F(ClusterTest, AMalformedCallIsA400AndTheClusterKeepsWorking) {
  startCluster(1);
  auto& framework = addFramework();
  ASSERT_FALSE(framework.subscribe().empty());
  std::string agentId = launchRunning(framework, "busy", "sleep 100");
  ASSERT_FALSE(agentId.empty());

  for (const char* body : {"{not json", R"({"type":"ACCEPT"})", R"({"type":"NO_SUCH_CALL"})"}) {
    auto response = post("/api/v1/scheduler", body);
    EXPECT_EQ(response.status, 400) << body << ": " << response.body;
    auto object = parseObject(response.body);
    ASSERT_TRUE(object) << response.body;
    EXPECT_FALSE(object->optValue<std::string>("message", "").empty()) << response.body;
  }

  auto offer = framework.offer();
  ASSERT_TRUE(offer);
  ASSERT_TRUE(framework.launch(*offer, "later", "true"));
  EXPECT_TRUE(framework.updateIn("later", v1::TASK_FINISHED));
  ASSERT_TRUE(framework.kill("busy", agentId));
  EXPECT_TRUE(framework.updateIn("busy", v1::TASK_KILLED));
}

TEST_F(ClusterTest, AnAgentMarkedGoneIsRefusedAndItsTaskEnds) {
  // Shared: the agent (and its callback) outlives the test body until TearDown.
  auto refusals = std::make_shared<WaitQueue<std::string>>();
  agentOptions.onRefused = [refusals](const std::string& message) { refusals->push(message); };
  startCluster(1);
  auto& framework = addFramework();
  ASSERT_FALSE(framework.subscribe().empty());
  std::string agentId = launchRunning(framework, "doomed", "sleep 100");
  ASSERT_FALSE(agentId.empty());

  auto marked = post("/api/v1", fmt::format(R"({{"type":"MARK_AGENT_GONE","mark_agent_gone":)"
                                            R"({{"agent_id":{{"value":"{}"}}}}}})",
                                            agentId));
  EXPECT_EQ(marked.status, 200) << marked.body;
  auto refusal = refusals->take([](const std::string&) { return true; });
  ASSERT_TRUE(refusal);
  EXPECT_THAT(*refusal, HasSubstr("marked gone"));
  auto lost = framework.terminalUpdate("doomed");
  ASSERT_TRUE(lost);
  EXPECT_EQ(lost->state(), v1::TASK_LOST);
  EXPECT_EQ(lost->reason(), v1::TaskStatus::REASON_AGENT_REMOVED_BY_OPERATOR);
}

}  // namespace
}  // namespace tessera::kernel::cluster::testing
