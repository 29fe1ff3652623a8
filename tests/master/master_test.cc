// The master end to end on loopback: a real DRF allocator module, a fake agent on the internal
// transport and a scheduler on the v1 HTTP API.

#include "kernel/master/master.h"

#include <gmock/gmock.h>

#include <algorithm>
#include <set>

#include "tests/master/master_fixture.h"

namespace tessera::kernel::master::testing {
namespace {

using ::testing::HasSubstr;

/// Subscribes a scheduler and registers an agent; waits for the first offer.
struct Cluster {
  std::unique_ptr<FakeAgent> agent;
  std::unique_ptr<TestScheduler> scheduler;
  Event offers;

  std::string offerId(int i = 0) const { return offers.offers().offers(i).id().value(); }
};

std::string launchJson(const TestScheduler& scheduler, const std::string& offerId,
                       const std::string& tasks, const std::string& filters = "") {
  return fmt::format(
      R"({{"framework_id":{{"value":"{}"}},"type":"ACCEPT","accept":{{"offer_ids":[{{"value":"{}"}}],)"
      R"("operations":[{{"type":"LAUNCH","launch":{{"task_infos":[{}]}}}}]{}}}}})",
      scheduler.frameworkId, offerId, tasks, filters);
}

std::string taskJson(const std::string& id, const std::string& agentId,
                     const std::string& resources = "cpus:1;mem:128") {
  return fmt::format(R"({{"name":"{}","task_id":{{"value":"{}"}},"agent_id":{{"value":"{}"}},)"
                     R"("resources":{},"command":{{"value":"sleep 100"}}}})",
                     id, id, agentId, api::Resources::parse(resources).value().toJson());
}

class MasterTest : public MasterFixture {
 protected:
  Cluster cluster(const char* info = kFrameworkInfo) {
    Cluster c;
    c.agent = makeAgent();
    EXPECT_FALSE(c.agent->registerAgent().empty());
    c.scheduler = makeScheduler();
    EXPECT_EQ(c.scheduler->subscribe(info), 200);
    auto offers = c.scheduler->next(Event::OFFERS);
    EXPECT_TRUE(offers.has_value());
    if (offers) c.offers = *offers;
    return c;
  }

  /// Launches task `id` on the first offer and returns the run_task the agent got.
  internal::RunTask launch(Cluster& c, const std::string& id) {
    // No decline filter on what is left, so the next offer comes at once.
    auto response =
        c.scheduler->call(launchJson(*c.scheduler, c.offerId(), taskJson(id, c.agent->id),
                                     R"(,"filters":{"refuse_seconds":0})"));
    EXPECT_EQ(response.status, 202) << response.body;
    auto run = c.agent->received.take([](const internal::Envelope& e) { return e.has_run_task(); });
    EXPECT_TRUE(run.has_value());
    return run ? run->run_task() : internal::RunTask();
  }
};

// The task `run` launched, as an agent re-registering with it running reports it.
internal::Task runningTask(const internal::RunTask& run, const std::string& frameworkId) {
  internal::Task task;
  *task.mutable_info() = run.task();
  task.mutable_framework_id()->set_value(frameworkId);
  task.set_state(v1::TASK_RUNNING);
  task.set_role(run.role());
  return task;
}

// No role in framework_info means Mesos's default role "*": offers of unreserved resources.
TEST_F(MasterTest, FrameworkWithoutARoleGetsOffersInTheDefaultRole) {
  startMaster();
  Cluster c = cluster(R"({"user":"u","name":"no-role"})");
  ASSERT_GT(c.offers.offers().offers_size(), 0);
  EXPECT_EQ(c.offers.offers().offers(0).allocation_info().role(), "*");
  launch(c, "t-default-role");
}

TEST_F(MasterTest, AgentRegistersAndAppearsInStateAndSlaves) {
  startMaster();
  auto transport = getJson("/master/transport");
  EXPECT_EQ(transport->getValue<int>("port"), master_->transportPort());

  auto agent = makeAgent();
  std::string id = agent->registerAgent();
  EXPECT_THAT(id, HasSubstr(master_->id() + "-S"));

  auto state = getJson("/state");
  EXPECT_EQ(state->getValue<std::string>("id"), master_->id());
  EXPECT_EQ(state->getValue<int>("activated_slaves"), 1);
  EXPECT_EQ(state->getValue<std::string>("cluster"), "test");
  EXPECT_THAT(state->getValue<std::string>("pid"), HasSubstr("master@127.0.0.1:"));
  auto slaves = state->getArray("slaves");
  ASSERT_EQ(slaves->size(), 1u);
  auto slave = slaves->getObject(0);
  EXPECT_EQ(slave->getValue<std::string>("id"), id);
  EXPECT_EQ(slave->getValue<std::string>("hostname"), "agent1");
  EXPECT_TRUE(slave->getValue<bool>("active"));
  EXPECT_EQ(slave->getObject("resources")->getValue<double>("cpus"), 4);
  EXPECT_EQ(slave->getObject("resources")->getValue<std::string>("ports"), "[31000-32000]");

  auto slavesJson = getJson("/slaves");
  EXPECT_EQ(slavesJson->getArray("slaves")->size(), 1u);
  EXPECT_EQ(getJson("/agents")->getArray("slaves")->size(), 1u);
  EXPECT_EQ(getJson("/state-summary")->getArray("slaves")->size(), 1u);
}

TEST_F(MasterTest, LaunchStatusUpdatesAndAcknowledgements) {
  startMaster();
  Cluster c = cluster();
  ASSERT_FALSE(c.scheduler->frameworkId.empty());
  ASSERT_FALSE(c.scheduler->streamId.empty());
  EXPECT_EQ(c.offers.offers().offers(0).agent_id().value(), c.agent->id);
  EXPECT_EQ(c.offers.offers().offers(0).allocation_info().role(), "web");

  internal::RunTask run = launch(c, "t1");
  EXPECT_EQ(run.task().task_id().value(), "t1");
  EXPECT_EQ(run.framework().id().value(), c.scheduler->frameworkId);
  EXPECT_EQ(run.role(), "web");

  c.agent->sendStatus(c.scheduler->frameworkId, "t1", v1::TASK_RUNNING, "uuid-running-1");
  auto update = c.scheduler->update("t1");
  ASSERT_TRUE(update.has_value());
  EXPECT_EQ(update->update().status().state(), v1::TASK_RUNNING);
  EXPECT_EQ(update->update().status().uuid(), "uuid-running-1");

  Call ack;
  ack.set_type(Call::ACKNOWLEDGE);
  ack.mutable_framework_id()->set_value(c.scheduler->frameworkId);
  ack.mutable_acknowledge()->mutable_agent_id()->set_value(c.agent->id);
  ack.mutable_acknowledge()->mutable_task_id()->set_value("t1");
  ack.mutable_acknowledge()->set_uuid("uuid-running-1");
  EXPECT_EQ(c.scheduler->call(ack).status, 202);
  auto forwarded = c.agent->received.take(
      [](const internal::Envelope& e) { return e.has_status_update_acknowledgement(); });
  ASSERT_TRUE(forwarded.has_value());
  EXPECT_EQ(forwarded->status_update_acknowledgement().uuid(), "uuid-running-1");
  EXPECT_EQ(forwarded->status_update_acknowledgement().task_id().value(), "t1");

  auto tasks = getJson("/tasks")->getArray("tasks");
  ASSERT_EQ(tasks->size(), 1u);
  EXPECT_EQ(tasks->getObject(0)->getValue<std::string>("state"), "TASK_RUNNING");
  EXPECT_EQ(tasks->getObject(0)->getValue<std::string>("slave_id"), c.agent->id);
  // /state-summary counts running tasks per agent and per framework.
  auto summary = getJson("/state-summary");
  EXPECT_EQ(summary->getArray("slaves")->getObject(0)->getValue<int>("TASK_RUNNING"), 1);
  EXPECT_EQ(summary->getArray("frameworks")->getObject(0)->getValue<int>("TASK_RUNNING"), 1);

  c.agent->sendStatus(c.scheduler->frameworkId, "t1", v1::TASK_FINISHED, "uuid-finished");
  ASSERT_TRUE(c.scheduler->update("t1").has_value());
  ack.mutable_acknowledge()->set_uuid("uuid-finished");
  EXPECT_EQ(c.scheduler->call(ack).status, 202);
  EXPECT_TRUE(waitFor([&] {
    auto frameworks = getJson("/state")->getArray("frameworks");
    if (frameworks->size() != 1) return false;
    auto framework = frameworks->getObject(0);
    return framework->getArray("tasks")->size() == 0 &&
           framework->getArray("completed_tasks")->size() == 1;
  }));
  summary = getJson("/state-summary");
  EXPECT_EQ(summary->getArray("slaves")->getObject(0)->getValue<int>("TASK_RUNNING"), 0);
}

TEST_F(MasterTest, InvalidLaunchesGetTaskError) {
  startMaster();
  Cluster c = cluster();
  std::string tasks = taskJson("big", c.agent->id, "cpus:100;mem:128") + "," +
                      taskJson("ok", c.agent->id) + "," + taskJson("ok", c.agent->id) + "," +
                      R"({"name":"empty","task_id":{"value":"empty"},"command":{"value":"x"}})";
  EXPECT_EQ(c.scheduler->call(launchJson(*c.scheduler, c.offerId(), tasks)).status, 202);
  for (const char* id : {"big", "ok", "empty"}) {
    if (std::string(id) == "ok") continue;
    auto update = c.scheduler->update(id);
    ASSERT_TRUE(update.has_value()) << id;
    EXPECT_EQ(update->update().status().state(), v1::TASK_ERROR) << id;
    EXPECT_EQ(update->update().status().reason(), v1::TaskStatus::REASON_TASK_INVALID);
    EXPECT_FALSE(update->update().status().message().empty());
  }
  // The first "ok" launches, the duplicate is refused.
  auto duplicate = c.scheduler->update("ok");
  ASSERT_TRUE(duplicate.has_value());
  EXPECT_EQ(duplicate->update().status().state(), v1::TASK_ERROR);
  EXPECT_THAT(duplicate->update().status().message(), HasSubstr("already in use"));
  auto run = c.agent->received.take([](const internal::Envelope& e) { return e.has_run_task(); });
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(run->run_task().task().task_id().value(), "ok");

  // An offer that is gone: TASK_LOST with REASON_INVALID_OFFERS.
  EXPECT_EQ(
      c.scheduler->call(launchJson(*c.scheduler, "no-such-offer", taskJson("t9", c.agent->id)))
          .status,
      202);
  auto lost = c.scheduler->update("t9");
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->update().status().state(), v1::TASK_LOST);
  EXPECT_EQ(lost->update().status().reason(), v1::TaskStatus::REASON_INVALID_OFFERS);
}

/// An ACCEPT of `offerId` with the operations `operations` (JSON objects, comma-separated).
std::string acceptJson(const TestScheduler& scheduler, const std::string& offerId,
                       const std::string& operations) {
  return fmt::format(
      R"({{"framework_id":{{"value":"{}"}},"type":"ACCEPT","accept":{{"offer_ids":[{{"value":"{}"}}],)"
      R"("operations":[{}],"filters":{{"refuse_seconds":0}}}}}})",
      scheduler.frameworkId, offerId, operations);
}

double offeredCpus(const Event& offers) {
  double cpus = 0;
  for (const auto& offer : offers.offers().offers()) {
    cpus += api::Resources::fromProto(offer.resources()).value().cpus();
  }
  return cpus;
}

/// A LAUNCH_GROUP operation of executor `executor` (a JSON object) with `tasks`.
std::string launchGroupJson(const std::string& executor, const std::string& tasks) {
  return fmt::format(
      R"({{"type":"LAUNCH_GROUP","launch_group":{{"executor":{},"task_group":{{"tasks":[{}]}}}}}})",
      executor, tasks);
}

constexpr const char* kDefaultExecutor =
    R"({"type":"DEFAULT","executor_id":{"value":"e"},"resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":0.5}}]})";

// /tasks takes Mesos's query: limit (default 100), offset, order by when each task was first
// reported (desc by default), framework_id and task_id; a bad one is a 400 naming it.
TEST_F(MasterTest, TasksTakeMesosPagingAndFilterParameters) {
  startMaster();
  Cluster c = cluster();
  // Three tasks launched one after another (each on the next offer): first reported in order.
  for (const char* id : {"p1", "p2", "p3"}) {
    if (std::string(id) != "p1") {
      auto next = c.scheduler->next(Event::OFFERS);
      ASSERT_TRUE(next.has_value());
      c.offers = *next;
    }
    launch(c, id);
  }
  auto ids = [&](const std::string& query) {
    std::vector<std::string> out;
    auto tasks = getJson("/tasks" + query)->getArray("tasks");
    for (size_t i = 0; tasks && i < tasks->size(); ++i) {
      out.push_back(tasks->getObject(i)->getValue<std::string>("id"));
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids(""), (V{"p3", "p2", "p1"}));
  EXPECT_EQ(ids("?order=asc"), (V{"p1", "p2", "p3"}));
  EXPECT_EQ(ids("?limit=2"), (V{"p3", "p2"}));
  EXPECT_EQ(ids("?limit=2&offset=2"), (V{"p1"}));
  EXPECT_EQ(ids("?offset=7"), V{});
  EXPECT_EQ(ids("?limit=0"), V{});
  EXPECT_EQ(ids("?order=asc&offset=1&limit=1"), (V{"p2"}));
  EXPECT_EQ(ids("?task_id=p2&framework_id=" + c.scheduler->frameworkId), (V{"p2"}));
  EXPECT_EQ(ids("?framework_id=someone-else"), V{});
  EXPECT_EQ(getJson("/master/tasks?limit=1")->getArray("tasks")->size(), 1u);
  for (const char* bad : {"?limit=-1", "?limit=", "?offset=x", "?limit=2x", "?order=sideways"}) {
    auto response = net::httpRequest("GET", "127.0.0.1", server_->port(),
                                     std::string("/tasks") + bad, {}, "", std::chrono::seconds(10));
    ASSERT_TRUE(response.isOk());
    EXPECT_EQ(response->status, 400) << bad;
    EXPECT_THAT(response->body, HasSubstr("\"message\"")) << bad;
    EXPECT_THAT(response->body, HasSubstr(std::string(bad).substr(1, 4))) << bad;
  }
}

// A valid LAUNCH_GROUP goes to the agent as one RunTaskGroup; its tasks are the master's tasks
// (/tasks), and the executor's resources are held along with them.
TEST_F(MasterTest, LaunchGroupSendsTheGroupToTheAgentInOneMessage) {
  startMaster();
  Cluster c = cluster();
  std::string group = launchGroupJson(
      kDefaultExecutor, taskJson("g1", c.agent->id) + "," + taskJson("g2", c.agent->id));
  auto response = c.scheduler->call(acceptJson(*c.scheduler, c.offerId(), group));
  EXPECT_EQ(response.status, 202) << response.body;
  auto run =
      c.agent->received.take([](const internal::Envelope& e) { return e.has_run_task_group(); });
  ASSERT_TRUE(run.has_value());
  const auto& message = run->run_task_group();
  EXPECT_EQ(message.executor().executor_id().value(), "e");
  EXPECT_EQ(message.executor().type(), v1::ExecutorInfo::DEFAULT);
  EXPECT_EQ(message.executor().framework_id().value(), c.scheduler->frameworkId);
  ASSERT_EQ(message.tasks_size(), 2);
  EXPECT_EQ(message.tasks(0).task_id().value(), "g1");
  EXPECT_EQ(message.tasks(1).task_id().value(), "g2");
  EXPECT_EQ(message.tasks(1).agent_id().value(), c.agent->id);
  EXPECT_EQ(getJson("/tasks")->getArray("tasks")->size(), 2u);
  // The group holds 2 + 0.5 of the 4 cpus: the next offer has the rest.
  auto again = c.scheduler->next(Event::OFFERS);
  ASSERT_TRUE(again.has_value());
  EXPECT_DOUBLE_EQ(offeredCpus(*again), 1.5);
  // Its tasks' updates reach the framework as any task's do.
  c.agent->sendStatus(c.scheduler->frameworkId, "g1", v1::TASK_RUNNING, "uuid-g1");
  auto update = c.scheduler->update("g1");
  ASSERT_TRUE(update.has_value());
  EXPECT_EQ(update->update().status().state(), v1::TASK_RUNNING);
}

// An invalid group (Mesos's rules): every task hears TASK_ERROR with REASON_TASK_GROUP_INVALID
// naming why, the rest of the call goes on, and the group's resources are offered again.
TEST_F(MasterTest, InvalidTaskGroupsGetTaskErrorForEveryTask) {
  startMaster();
  Cluster c = cluster();
  struct Case {
    std::string executor;
    std::string tasks;
    std::string why;
  };
  std::vector<Case> cases = {
      {R"({"executor_id":{"value":"e"}})",
       taskJson("n1", c.agent->id) + "," + taskJson("n2", c.agent->id), "not of type DEFAULT"},
      {kDefaultExecutor, taskJson("d1", c.agent->id) + "," + taskJson("d1", c.agent->id),
       "duplicate task id 'd1'"},
      {kDefaultExecutor,
       taskJson("big1", c.agent->id, "cpus:3;mem:128") + "," +
           taskJson("big2", c.agent->id, "cpus:1;mem:128"),
       "not in the offers"},
      {kDefaultExecutor, taskJson("w1", c.agent->id) + "," + taskJson("w2", "other-agent"),
       "not the offers' agent"},
  };
  std::string operations;
  for (const auto& one : cases) {
    if (!operations.empty()) operations += ",";
    operations += launchGroupJson(one.executor, one.tasks);
  }
  std::string launch = fmt::format(R"({{"type":"LAUNCH","launch":{{"task_infos":[{}]}}}})",
                                   taskJson("ok", c.agent->id));
  auto response =
      c.scheduler->call(acceptJson(*c.scheduler, c.offerId(), operations + "," + launch));
  EXPECT_EQ(response.status, 202) << response.body;
  std::vector<std::pair<std::string, std::string>> expected = {
      {"n1", cases[0].why},   {"n2", cases[0].why}, {"d1", cases[1].why}, {"big1", cases[2].why},
      {"big2", cases[2].why}, {"w1", cases[3].why}, {"w2", cases[3].why}};
  for (const auto& [id, why] : expected) {
    auto update = c.scheduler->update(id);
    ASSERT_TRUE(update.has_value()) << id;
    EXPECT_EQ(update->update().status().state(), v1::TASK_ERROR) << id;
    EXPECT_EQ(update->update().status().reason(), v1::TaskStatus::REASON_TASK_GROUP_INVALID) << id;
    EXPECT_EQ(update->update().status().source(), v1::TaskStatus::SOURCE_MASTER) << id;
    EXPECT_THAT(update->update().status().message(), HasSubstr(why)) << id;
  }
  auto run = c.agent->received.take([](const internal::Envelope& e) { return e.has_run_task(); });
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(run->run_task().task().task_id().value(), "ok");
  // Messages to the agent keep their order: no group came before "ok".
  EXPECT_FALSE(
      c.agent->received.take([](const internal::Envelope& e) { return e.has_run_task_group(); },
                             std::chrono::milliseconds(0)));
  // Only "ok" holds resources: the next offer has the other 3 of the 4 cpus.
  auto again = c.scheduler->next(Event::OFFERS);
  ASSERT_TRUE(again.has_value());
  EXPECT_DOUBLE_EQ(offeredCpus(*again), 3.0);
  EXPECT_EQ(getJson("/tasks")->getArray("tasks")->size(), 1u);
}

// Any other operation the master does not carry out refuses the whole call (501, naming the
// operation) and changes nothing: the offer stays usable.
TEST_F(MasterTest, UnsupportedOperationsRefuseTheAcceptAndChangeNothing) {
  startMaster();
  Cluster c = cluster();
  std::string launch = fmt::format(R"({{"type":"LAUNCH","launch":{{"task_infos":[{}]}}}})",
                                   taskJson("t1", c.agent->id));
  std::string volume = api::Resources::parse("disk:10").value().toJson();
  for (const char* name : {"CREATE", "DESTROY", "GROW_VOLUME", "NO_SUCH_OPERATION"}) {
    std::string operation =
        fmt::format(R"({{"type":"{}","create":{{"volumes":{}}}}})", name, volume);
    auto response =
        c.scheduler->call(acceptJson(*c.scheduler, c.offerId(), launch + "," + operation));
    EXPECT_EQ(response.status, 501) << name << ": " << response.body;
    EXPECT_THAT(response.body, HasSubstr(fmt::format("operation '{}' is not supported", name)));
  }
  EXPECT_EQ(getJson("/tasks")->getArray("tasks")->size(), 0u);
  // The offer is still outstanding: launching from it works, and t2 is the first task run.
  std::string second = fmt::format(R"({{"type":"LAUNCH","launch":{{"task_infos":[{}]}}}})",
                                   taskJson("t2", c.agent->id));
  EXPECT_EQ(c.scheduler->call(acceptJson(*c.scheduler, c.offerId(), second)).status, 202);
  auto run = c.agent->received.take([](const internal::Envelope& e) { return e.has_run_task(); });
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(run->run_task().task().task_id().value(), "t2");
}

TEST_F(MasterTest, MalformedCallsAre400AndChangeNothing) {
  startMaster();
  Cluster c = cluster();
  auto malformed = c.scheduler->call("{not json");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_THAT(malformed.body, HasSubstr("\"message\""));
  auto unknown = c.scheduler->call(fmt::format(
      R"({{"framework_id":{{"value":"{}"}},"type":"NOPE"}})", c.scheduler->frameworkId));
  EXPECT_EQ(unknown.status, 400);
  auto noStream =
      c.scheduler->call(fmt::format(R"({{"framework_id":{{"value":"{}"}},"type":"REVIVE"}})",
                                    c.scheduler->frameworkId),
                        false);
  EXPECT_EQ(noStream.status, 400);
  EXPECT_THAT(noStream.body, HasSubstr("Mesos-Stream-Id"));
  auto noFramework = c.scheduler->call(R"({"type":"REVIVE"})");
  EXPECT_EQ(noFramework.status, 400);
  auto wrongType = post("/api/v1/scheduler", "{}", "text/plain");
  EXPECT_EQ(wrongType.status, 415);
  auto badRole = makeScheduler();
  EXPECT_EQ(badRole->subscribe(R"({"user":"u","name":"x","roles":["a//b"]})"), 400);

  // The master still works: the framework is there, the offer still usable.
  auto state = getJson("/state");
  EXPECT_EQ(state->getArray("frameworks")->size(), 1u);
  launch(c, "t1");
}

TEST_F(MasterTest, DeclineThenRevive) {
  startMaster();
  Cluster c = cluster();
  auto response = c.scheduler->call(fmt::format(
      R"({{"framework_id":{{"value":"{}"}},"type":"DECLINE","decline":{{"offer_ids":[{{"value":"{}"}}],"filters":{{"refuse_seconds":1000}}}}}})",
      c.scheduler->frameworkId, c.offerId()));
  EXPECT_EQ(response.status, 202);
  // Filtered: no offer for a while.
  EXPECT_FALSE(c.scheduler->next(Event::OFFERS, 500ms).has_value());
  response = c.scheduler->call(fmt::format(R"({{"framework_id":{{"value":"{}"}},"type":"REVIVE"}})",
                                           c.scheduler->frameworkId));
  EXPECT_EQ(response.status, 202);
  EXPECT_TRUE(c.scheduler->next(Event::OFFERS).has_value());
}

TEST_F(MasterTest, KillReachesTheAgent) {
  startMaster();
  Cluster c = cluster();
  launch(c, "t1");
  auto response = c.scheduler->call(fmt::format(
      R"({{"framework_id":{{"value":"{}"}},"type":"KILL","kill":{{"task_id":{{"value":"t1"}}}}}})",
      c.scheduler->frameworkId));
  EXPECT_EQ(response.status, 202);
  auto kill = c.agent->received.take([](const internal::Envelope& e) { return e.has_kill_task(); });
  ASSERT_TRUE(kill.has_value());
  EXPECT_EQ(kill->kill_task().task_id().value(), "t1");
  EXPECT_EQ(kill->kill_task().framework_id().value(), c.scheduler->frameworkId);
}

TEST_F(MasterTest, ReconcileExplicitAndImplicit) {
  startMaster();
  Cluster c = cluster();
  launch(c, "t1");
  c.agent->sendStatus(c.scheduler->frameworkId, "t1", v1::TASK_RUNNING, "u1");
  ASSERT_TRUE(c.scheduler->update("t1").has_value());

  auto response = c.scheduler->call(
      fmt::format(R"({{"framework_id":{{"value":"{}"}},"type":"RECONCILE","reconcile":{{"tasks":[)"
                  R"({{"task_id":{{"value":"t1"}}}},{{"task_id":{{"value":"ghost"}}}}]}}}})",
                  c.scheduler->frameworkId));
  EXPECT_EQ(response.status, 202);
  auto known = c.scheduler->update("t1");
  ASSERT_TRUE(known.has_value());
  EXPECT_EQ(known->update().status().state(), v1::TASK_RUNNING);
  EXPECT_EQ(known->update().status().reason(), v1::TaskStatus::REASON_RECONCILIATION);
  EXPECT_TRUE(known->update().status().uuid().empty());
  auto ghost = c.scheduler->update("ghost");
  ASSERT_TRUE(ghost.has_value());
  EXPECT_EQ(ghost->update().status().state(), v1::TASK_LOST);

  response = c.scheduler->call(
      fmt::format(R"({{"framework_id":{{"value":"{}"}},"type":"RECONCILE","reconcile":{{}}}})",
                  c.scheduler->frameworkId));
  EXPECT_EQ(response.status, 202);
  auto implicit = c.scheduler->update("t1");
  ASSERT_TRUE(implicit.has_value());
  EXPECT_EQ(implicit->update().status().reason(), v1::TaskStatus::REASON_RECONCILIATION);
}

// An implicit RECONCILE answers in batches, each sent once the stream took the last (#20): a
// framework with more tasks than a batch still hears of every one, once.
TEST_F(MasterTest, AnImplicitReconcileOfManyTasksAnswersEveryTaskOnce) {
  startMaster();
  Cluster c = cluster();
  constexpr int kTasks = 700;  // more than two batches
  std::string tasks;
  for (int i = 0; i < kTasks; ++i) {
    if (i > 0) tasks += ',';
    tasks += taskJson(fmt::format("many-{:04}", i), c.agent->id, "cpus:0.001");
  }
  auto response = c.scheduler->call(launchJson(*c.scheduler, c.offerId(), tasks, ""));
  ASSERT_EQ(response.status, 202) << response.body;
  ASSERT_TRUE(c.agent->received.take([](const internal::Envelope& e) { return e.has_run_task(); }));

  response = c.scheduler->call(
      fmt::format(R"({{"framework_id":{{"value":"{}"}},"type":"RECONCILE","reconcile":{{}}}})",
                  c.scheduler->frameworkId));
  ASSERT_EQ(response.status, 202);
  std::set<std::string> heard;
  for (int i = 0; i < kTasks; ++i) {
    auto update = c.scheduler->next(Event::UPDATE);
    ASSERT_TRUE(update.has_value()) << "after " << heard.size() << " updates";
    EXPECT_EQ(update->update().status().reason(), v1::TaskStatus::REASON_RECONCILIATION);
    EXPECT_TRUE(heard.insert(update->update().status().task_id().value()).second)
        << update->update().status().task_id().value() << " twice";
  }
  EXPECT_EQ(heard.size(), static_cast<size_t>(kTasks));
  EXPECT_EQ(*heard.begin(), "many-0000");
  EXPECT_EQ(*heard.rbegin(), fmt::format("many-{:04}", kTasks - 1));
}

TEST_F(MasterTest, AgentDisconnectRescindsAndMarksUnreachableThenReregisters) {
  startMaster();
  Cluster c = cluster(
      R"({"user":"u","name":"fw","roles":["web"],"capabilities":[{"type":"PARTITION_AWARE"}]})");
  launch(c, "t1");
  c.agent->sendStatus(c.scheduler->frameworkId, "t1", v1::TASK_RUNNING, "u1");
  ASSERT_TRUE(c.scheduler->update("t1").has_value());
  // Wait for the offer of what is left, so there is something to rescind.
  ASSERT_TRUE(c.scheduler->next(Event::OFFERS).has_value());

  std::string id = c.agent->id;
  c.agent->stop();
  EXPECT_TRUE(c.scheduler->next(Event::RESCIND).has_value());
  auto unreachable = c.scheduler->update("t1");
  ASSERT_TRUE(unreachable.has_value());
  EXPECT_EQ(unreachable->update().status().state(), v1::TASK_UNREACHABLE);
  EXPECT_TRUE(waitFor([&] { return getJson("/state")->getValue<int>("unreachable_slaves") == 1; }));

  // The agent comes back with the same id and its task.
  auto agent = makeAgent();
  agent->id = id;
  internal::Task task;
  task.mutable_info()->set_name("t1");
  task.mutable_info()->mutable_task_id()->set_value("t1");
  *task.mutable_info()->mutable_resources() =
      api::Resources::parse("cpus:1;mem:128").value().toProto();
  task.mutable_framework_id()->set_value(c.scheduler->frameworkId);
  task.set_state(v1::TASK_RUNNING);
  task.set_role("web");
  EXPECT_EQ(agent->registerAgent({task}), id);
  EXPECT_TRUE(waitFor([&] {
    auto state = getJson("/state");
    return state->getValue<int>("activated_slaves") == 1 &&
           state->getValue<int>("unreachable_slaves") == 0;
  }));
  auto tasks = getJson("/tasks")->getArray("tasks");
  ASSERT_EQ(tasks->size(), 1u);
  EXPECT_EQ(tasks->getObject(0)->getValue<std::string>("state"), "TASK_RUNNING");
}

TEST_F(MasterTest, NonPartitionAwareTasksAreLost) {
  startMaster();
  Cluster c = cluster();
  launch(c, "t1");
  c.agent->stop();
  auto lost = c.scheduler->update("t1");
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->update().status().state(), v1::TASK_LOST);
}

// A failover while the old connection still looks open (a SIGKILLed scheduler whose socket
// the master has not read since) takes that connection's offers back, so the new connection
// is offered the agent's resources; before, they stayed with the dead connection.
TEST_F(MasterTest, FailoverRescindsTheReplacedConnectionsOffers) {
  startMaster();
  const char* info = R"({"user":"u","name":"fw","roles":["web"],"failover_timeout":60})";
  Cluster c = cluster(info);
  auto second = makeScheduler();
  second->frameworkId = c.scheduler->frameworkId;
  ASSERT_EQ(second->subscribe(info), 200);
  auto offers = second->next(Event::OFFERS);
  ASSERT_TRUE(offers.has_value());
  ASSERT_GT(offers->offers().offers_size(), 0);
  EXPECT_EQ(offers->offers().offers(0).agent_id().value(), c.agent->id);
}

TEST_F(MasterTest, SchedulerFailoverKeepsTasksAndTimeoutTearsDown) {
  startMaster();
  Cluster c = cluster(R"({"user":"u","name":"fw","roles":["web"],"failover_timeout":1})");
  launch(c, "t1");
  std::string frameworkId = c.scheduler->frameworkId;

  // Re-subscribe on a second connection: the first stream gets ERROR and ends.
  auto second = makeScheduler();
  second->frameworkId = frameworkId;
  EXPECT_EQ(second->subscribe(R"({"user":"u","name":"fw","roles":["web"],"failover_timeout":1})"),
            200);
  EXPECT_EQ(second->frameworkId, frameworkId);
  auto error = c.scheduler->next(Event::ERROR);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->error().message(), "framework failed over");
  EXPECT_EQ(getJson("/tasks")->getArray("tasks")->size(), 1u);
  // The old stream id is no longer accepted.
  EXPECT_EQ(
      c.scheduler
          ->call(fmt::format(R"({{"framework_id":{{"value":"{}"}},"type":"REVIVE"}})", frameworkId))
          .status,
      400);

  // Disconnect and reconnect within the timeout: the task is kept.
  second->disconnect();
  auto third = makeScheduler();
  third->frameworkId = frameworkId;
  EXPECT_EQ(third->subscribe(R"({"user":"u","name":"fw","roles":["web"],"failover_timeout":1})"),
            200);
  EXPECT_EQ(getJson("/tasks")->getArray("tasks")->size(), 1u);

  // Gone for longer than failover_timeout: torn down, the agent is told.
  third->disconnect();
  auto shutdown = c.agent->received.take(
      [](const internal::Envelope& e) { return e.has_shutdown_framework(); });
  ASSERT_TRUE(shutdown.has_value());
  EXPECT_EQ(shutdown->shutdown_framework().framework_id().value(), frameworkId);
  auto state = getJson("/state");
  EXPECT_EQ(state->getArray("frameworks")->size(), 0u);
  EXPECT_EQ(state->getArray("completed_frameworks")->size(), 1u);
}

TEST_F(MasterTest, TeardownRemovesTheFramework) {
  startMaster();
  Cluster c = cluster();
  launch(c, "t1");
  auto response = c.scheduler->call(fmt::format(
      R"({{"framework_id":{{"value":"{}"}},"type":"TEARDOWN"}})", c.scheduler->frameworkId));
  EXPECT_EQ(response.status, 202);
  auto shutdown = c.agent->received.take(
      [](const internal::Envelope& e) { return e.has_shutdown_framework(); });
  EXPECT_TRUE(shutdown.has_value());
  EXPECT_TRUE(waitFor([&] { return c.scheduler->ended.load(); }));
  // A removed framework cannot come back under its id.
  auto again = makeScheduler();
  again->frameworkId = c.scheduler->frameworkId;
  EXPECT_EQ(again->subscribe(kFrameworkInfo), 403);
}

TEST_F(MasterTest, RegistrySurvivesRestartOnFileStore) {
  TempDir dir;
  useFileStore(dir.path() / "state");
  startMaster();
  auto agent = makeAgent();
  std::string id = agent->registerAgent();
  agent->stop();
  restartMaster();
  EXPECT_EQ(getJson("/slaves")->getArray("recovered_slaves")->size(), 1u);
  auto again = makeAgent();
  again->id = id;
  EXPECT_EQ(again->registerAgent(), id);
  EXPECT_EQ(getJson("/state")->getValue<int>("activated_slaves"), 1);
}

TEST_F(MasterTest, MasterFailoverRebuildsTasksFromAgentsAndFrameworksResubscribe) {
  TempDir dir;
  useFileStore(dir.path() / "state");
  startMaster();
  Cluster c = cluster();
  internal::RunTask run = launch(c, "t1");
  c.agent->sendStatus(c.scheduler->frameworkId, "t1", v1::TASK_RUNNING, "u1");
  ASSERT_TRUE(c.scheduler->update("t1").has_value());
  std::string agentId = c.agent->id;
  std::string frameworkId = c.scheduler->frameworkId;
  c.agent->stop();
  c.scheduler->disconnect();
  restartMaster();

  auto agent = makeAgent();
  agent->id = agentId;
  EXPECT_EQ(agent->registerAgent({runningTask(run, frameworkId)}, {run.framework()}), agentId);

  auto scheduler = makeScheduler();
  scheduler->frameworkId = frameworkId;
  ASSERT_EQ(scheduler->subscribe(kFrameworkInfo), 200);
  EXPECT_EQ(scheduler->frameworkId, frameworkId);
  auto frameworks = getJson("/state")->getArray("frameworks");
  ASSERT_EQ(frameworks->size(), 1u);
  EXPECT_TRUE(frameworks->getObject(0)->getValue<bool>("active"));
  auto tasks = frameworks->getObject(0)->getArray("tasks");
  ASSERT_EQ(tasks->size(), 1u);
  EXPECT_EQ(tasks->getObject(0)->getValue<std::string>("state"), "TASK_RUNNING");

  // Its updates flow to the re-subscribed framework, and the task's resources are not offered.
  agent->sendStatus(frameworkId, "t1", v1::TASK_FINISHED, "u2");
  auto finished = scheduler->update("t1");
  ASSERT_TRUE(finished.has_value());
  EXPECT_EQ(finished->update().status().state(), v1::TASK_FINISHED);
}

// A framework the new master knows only from a re-registering agent gets its failover timeout:
// never subscribing, it is removed and its tasks are killed.
TEST_F(MasterTest, RecoveredFrameworkThatDoesNotResubscribeIsRemovedAfterItsFailoverTimeout) {
  TempDir dir;
  useFileStore(dir.path() / "state");
  startMaster();
  Cluster c = cluster(R"({"user":"u","name":"fw","roles":["web"],"failover_timeout":2})");
  internal::RunTask run = launch(c, "t1");
  EXPECT_DOUBLE_EQ(run.framework().failover_timeout(), 2.0);
  std::string agentId = c.agent->id;
  std::string frameworkId = c.scheduler->frameworkId;
  c.agent->stop();
  c.scheduler->disconnect();
  restartMaster();

  auto agent = makeAgent();
  agent->id = agentId;
  EXPECT_EQ(agent->registerAgent({runningTask(run, frameworkId)}, {run.framework()}), agentId);
  EXPECT_EQ(getJson("/state")->getArray("frameworks")->size(), 1u);

  auto shutdown =
      agent->received.take([](const internal::Envelope& e) { return e.has_shutdown_framework(); });
  ASSERT_TRUE(shutdown.has_value());
  EXPECT_EQ(shutdown->shutdown_framework().framework_id().value(), frameworkId);
  auto state = getJson("/state");
  EXPECT_EQ(state->getArray("frameworks")->size(), 0u);
  auto completed = state->getArray("completed_frameworks");
  ASSERT_EQ(completed->size(), 1u);
  EXPECT_EQ(completed->getObject(0)->getValue<std::string>("id"), frameworkId);
  auto tasks = completed->getObject(0)->getArray("completed_tasks");
  ASSERT_EQ(tasks->size(), 1u);
  EXPECT_EQ(tasks->getObject(0)->getValue<std::string>("state"), "TASK_KILLED");
  // Removed for good: it cannot subscribe under its id again.
  auto late = makeScheduler();
  late->frameworkId = frameworkId;
  EXPECT_EQ(late->subscribe(R"({"user":"u","name":"fw","roles":["web"]})"), 403);
}

// Without a failover_timeout a recovered framework is kept for --agent_reregister_timeout.
TEST_F(MasterTest, RecoveredFrameworkWithoutFailoverTimeoutIsKeptForTheReregisterTimeout) {
  TempDir dir;
  useFileStore(dir.path() / "state");
  options.agentReregisterTimeout = 500ms;
  startMaster();
  Cluster c = cluster();
  internal::RunTask run = launch(c, "t1");
  std::string agentId = c.agent->id;
  std::string frameworkId = c.scheduler->frameworkId;
  c.agent->stop();
  c.scheduler->disconnect();
  restartMaster();
  auto agent = makeAgent();
  agent->id = agentId;
  EXPECT_EQ(agent->registerAgent({runningTask(run, frameworkId)}, {run.framework()}), agentId);
  auto shutdown =
      agent->received.take([](const internal::Envelope& e) { return e.has_shutdown_framework(); });
  ASSERT_TRUE(shutdown.has_value());
  EXPECT_EQ(getJson("/state")->getArray("completed_frameworks")->size(), 1u);
}

TEST_F(MasterTest, GoneAgentIsRefused) {
  startMaster();
  // An agent marked gone in the registry is refused.
  std::promise<bool> written;
  auto executor = runtime_.makeExecutor();
  store->set("/master/registry/agents/old-S1",
             R"({"state":"gone","agent_info":{"hostname":"h","id":{"value":"old-S1"}}})", 0,
             *executor, [&](api::Result<uint64_t> r) { written.set_value(r.isOk()); });
  ASSERT_TRUE(written.get_future().get());
  restartMaster();
  auto agent = makeAgent();
  agent->id = "old-S1";
  internal::Envelope envelope;
  *envelope.mutable_reregister_agent()->mutable_agent_info()->mutable_id() = v1::AgentID();
  envelope.mutable_reregister_agent()->mutable_agent_info()->mutable_id()->set_value("old-S1");
  ASSERT_TRUE(agent->send(envelope));
  auto refused =
      agent->received.take([](const internal::Envelope& e) { return e.has_agent_refused(); });
  ASSERT_TRUE(refused.has_value());
  EXPECT_THAT(refused->agent_refused().message(), HasSubstr("gone"));
}

std::string markGoneJson(const std::string& agentId) {
  return fmt::format(
      R"({{"type":"MARK_AGENT_GONE","mark_agent_gone":{{"agent_id":{{"value":"{}"}}}}}})", agentId);
}

TEST_F(MasterTest, MarkAgentGoneRefusesTheAgentAndEndsItsTasks) {
  startMaster();
  Cluster c = cluster(
      R"({"user":"u","name":"fw","roles":["web"],"capabilities":[{"type":"PARTITION_AWARE"}]})");
  launch(c, "t1");
  c.agent->sendStatus(c.scheduler->frameworkId, "t1", v1::TASK_RUNNING, "u1");
  ASSERT_TRUE(c.scheduler->update("t1").has_value());
  // What is left is offered again: an outstanding offer of the agent to rescind.
  auto outstanding = c.scheduler->next(Event::OFFERS);
  ASSERT_TRUE(outstanding.has_value());

  auto marked = post("/api/v1", markGoneJson(c.agent->id));
  EXPECT_EQ(marked.status, 200) << marked.body;

  // The registry says gone (written before the 200).
  std::promise<std::string> read;
  auto executor = runtime_.makeExecutor();
  store->get(fmt::format("/master/registry/agents/{}", c.agent->id), *executor,
             [&](api::Result<std::optional<api::StateEntry>> entry) {
               read.set_value(entry && *entry ? (*entry)->value : "");
             });
  EXPECT_THAT(read.get_future().get(), HasSubstr(R"("state":"gone")"));

  auto refused =
      c.agent->received.take([](const internal::Envelope& e) { return e.has_agent_refused(); });
  ASSERT_TRUE(refused.has_value());
  EXPECT_THAT(refused->agent_refused().message(), HasSubstr("marked gone"));
  auto rescind = c.scheduler->next(Event::RESCIND);
  ASSERT_TRUE(rescind.has_value());
  EXPECT_EQ(rescind->rescind().offer_id().value(), outstanding->offers().offers(0).id().value());
  auto gone = c.scheduler->update("t1");
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->update().status().state(), v1::TASK_GONE_BY_OPERATOR);
  EXPECT_EQ(gone->update().status().reason(), v1::TaskStatus::REASON_AGENT_REMOVED_BY_OPERATOR);

  auto state = getJson("/state");
  EXPECT_EQ(state->getArray("slaves")->size(), 0u);
  EXPECT_EQ(state->getValue<int>("activated_slaves"), 0);
  auto tasks = getJson("/tasks")->getArray("tasks");  // completed ones included
  ASSERT_EQ(tasks->size(), 1u);
  EXPECT_EQ(tasks->getObject(0)->getValue<std::string>("state"), "TASK_GONE_BY_OPERATOR");
  // Marking it again changes nothing.
  EXPECT_EQ(post("/api/v1", markGoneJson(c.agent->id)).status, 200);

  // It stays refused when it comes back.
  std::string id = c.agent->id;
  c.agent->stop();
  auto again = makeAgent();
  again->id = id;
  internal::Envelope envelope;
  envelope.mutable_reregister_agent()->mutable_agent_info()->mutable_id()->set_value(id);
  ASSERT_TRUE(again->send(envelope));
  ASSERT_TRUE(
      again->received.take([](const internal::Envelope& e) { return e.has_agent_refused(); }));
}

TEST_F(MasterTest, MarkAgentGoneLosesTasksOfFrameworksNotPartitionAware) {
  startMaster();
  Cluster c = cluster();
  launch(c, "t1");
  EXPECT_EQ(post("/api/v1", markGoneJson(c.agent->id)).status, 200);
  auto lost = c.scheduler->update("t1");
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->update().status().state(), v1::TASK_LOST);
  EXPECT_EQ(lost->update().status().reason(), v1::TaskStatus::REASON_AGENT_REMOVED_BY_OPERATOR);
}

// Mesos tells every registered framework of a removed agent (its LostSlaveMessage, FAILURE in
// v1), after the updates of the tasks it ran there.
TEST_F(MasterTest, AnUnreachableAgentIsAFailureEventToEverySubscribedFramework) {
  startMaster();
  Cluster c = cluster();
  launch(c, "t1");
  auto other = makeScheduler();
  ASSERT_EQ(other->subscribe(R"({"user":"u","name":"other","roles":["web"]})"), 200);
  const std::string id = c.agent->id;
  c.agent->stop();
  auto lost = c.scheduler->update("t1");
  ASSERT_TRUE(lost.has_value());
  auto failure = c.scheduler->next(Event::FAILURE);
  ASSERT_TRUE(failure.has_value());
  EXPECT_EQ(failure->failure().agent_id().value(), id);
  EXPECT_FALSE(failure->failure().has_executor_id());
  EXPECT_FALSE(failure->failure().has_status());
  auto toOther = other->next(Event::FAILURE);
  ASSERT_TRUE(toOther.has_value());
  EXPECT_EQ(toOther->failure().agent_id().value(), id);
}

TEST_F(MasterTest, AnAgentMarkedGoneIsAFailureEvent) {
  startMaster();
  Cluster c = cluster();
  launch(c, "t1");
  EXPECT_EQ(post("/api/v1", markGoneJson(c.agent->id)).status, 200);
  ASSERT_TRUE(c.scheduler->update("t1").has_value());
  auto failure = c.scheduler->next(Event::FAILURE);
  ASSERT_TRUE(failure.has_value());
  EXPECT_EQ(failure->failure().agent_id().value(), c.agent->id);
}

TEST_F(MasterTest, MarkAgentGoneNeedsAKnownAgent) {
  startMaster();
  auto unknown = post("/api/v1", markGoneJson("nope-S9"));
  EXPECT_EQ(unknown.status, 404);
  EXPECT_THAT(unknown.body, HasSubstr(R"("message":"agent 'nope-S9' is unknown")"));
  for (const char* body :
       {R"({"type":"MARK_AGENT_GONE"})", R"({"type":"MARK_AGENT_GONE","mark_agent_gone":{}})",
        R"({"type":"MARK_AGENT_GONE","mark_agent_gone":{"agent_id":"x"}})"}) {
    auto missing = post("/api/v1", body);
    EXPECT_EQ(missing.status, 400) << body;
    EXPECT_THAT(missing.body, HasSubstr("mark_agent_gone.agent_id")) << body;
  }
}

TEST_F(MasterTest, AgentsNotReregisteringInTimeAreMarkedUnreachable) {
  startMaster();
  auto agent = makeAgent();
  agent->registerAgent();
  agent->stop();
  options.agentReregisterTimeout = 100ms;
  restartMaster();
  EXPECT_TRUE(waitFor([&] { return getJson("/state")->getValue<int>("unreachable_slaves") == 1; }));
}

TEST_F(MasterTest, KillOfUnknownTaskAndMessages) {
  startMaster();
  Cluster c = cluster();
  // Unknown task, no agent named: the master answers TASK_LOST itself.
  auto response = c.scheduler->call(fmt::format(
      R"({{"framework_id":{{"value":"{}"}},"type":"KILL","kill":{{"task_id":{{"value":"nope"}}}}}})",
      c.scheduler->frameworkId));
  EXPECT_EQ(response.status, 202);
  auto lost = c.scheduler->update("nope");
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->update().status().state(), v1::TASK_LOST);

  response = c.scheduler->call(fmt::format(
      R"({{"framework_id":{{"value":"{}"}},"type":"MESSAGE","message":{{"agent_id":{{"value":"{}"}},)"
      R"("executor_id":{{"value":"e1"}},"data":"aGVsbG8="}}}})",
      c.scheduler->frameworkId, c.agent->id));
  EXPECT_EQ(response.status, 202);
  auto message = c.agent->received.take(
      [](const internal::Envelope& e) { return e.has_framework_to_executor(); });
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(message->framework_to_executor().data(), "hello");
  EXPECT_EQ(message->framework_to_executor().executor_id().value(), "e1");

  response = c.scheduler->call(fmt::format(
      R"({{"framework_id":{{"value":"{}"}},"type":"SUPPRESS","suppress":{{"roles":["web"]}}}})",
      c.scheduler->frameworkId));
  EXPECT_EQ(response.status, 202);
}

TEST_F(MasterTest, OperatorApi) {
  startMaster();
  Cluster c = cluster();
  launch(c, "t1");
  auto health = post("/api/v1", R"({"type":"GET_HEALTH"})");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, R"({"get_health":{"healthy":true},"type":"GET_HEALTH"})");
  Poco::JSON::Parser parser;
  for (const char* type : {"GET_VERSION", "GET_FLAGS", "GET_STATE", "GET_AGENTS", "GET_FRAMEWORKS",
                           "GET_TASKS", "GET_METRICS"}) {
    auto response = post("/api/v1", fmt::format(R"({{"type":"{}"}})", type));
    EXPECT_EQ(response.status, 200) << type << response.body;
    auto object = parser.parse(response.body).extract<Poco::JSON::Object::Ptr>();
    EXPECT_EQ(object->getValue<std::string>("type"), type);
  }
  auto agents = parser.parse(post("/api/v1", R"({"type":"GET_AGENTS"})").body)
                    .extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(agents->getObject("get_agents")->getArray("agents")->size(), 1u);
  auto tasks = parser.parse(post("/api/v1", R"({"type":"GET_TASKS"})").body)
                   .extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(tasks->getObject("get_tasks")->getArray("tasks")->size(), 1u);
  auto unknown = post("/api/v1", R"({"type":"NOPE"})");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_THAT(unknown.body, HasSubstr("message"));
  EXPECT_EQ(post("/api/v1", "{oops").status, 400);

  auto redirect = net::httpRequest("GET", "127.0.0.1", httpPort(), "/master/redirect", {}, "", 10s);
  ASSERT_TRUE(redirect.isOk());
  EXPECT_EQ(redirect->status, 307);
  EXPECT_EQ(redirect->header("Location"), fmt::format("//127.0.0.1:{}", httpPort()));
}

// Issue #20: as Mesos, the operator API takes JSON (or protobuf, which Tessera does not read):
// any other Content-Type is 415, none at all 400, each with a JSON message; a body that is not
// JSON says what is wrong in it rather than Poco's bare "JSON Exception".
TEST_F(MasterTest, OperatorApiRefusesOtherContentTypesAndExplainsBadJson) {
  startMaster();
  auto message = [](const net::ClientResponse& response) {
    Poco::JSON::Parser parser;
    auto object = parser.parse(response.body).extract<Poco::JSON::Object::Ptr>();
    return object->optValue<std::string>("message", "");
  };
  const std::string health = R"({"type":"GET_HEALTH"})";
  for (const char* type : {"text/plain", "application/x-www-form-urlencoded", "text/json",
                           "application/x-protobuf", "application/jsonx"}) {
    SCOPED_TRACE(type);
    auto refused = post("/api/v1", health, type);
    EXPECT_EQ(refused.status, 415) << refused.body;
    EXPECT_THAT(message(refused), HasSubstr("application/json"));
  }
  auto untyped = net::httpRequest("POST", "127.0.0.1", httpPort(), "/api/v1", {}, health, 10s);
  ASSERT_TRUE(untyped.isOk());
  EXPECT_EQ(untyped->status, 400) << untyped->body;
  EXPECT_THAT(message(*untyped), HasSubstr("'Content-Type'"));
  // Parameters and case do not matter.
  for (const char* type : {"application/json; charset=utf-8", "Application/JSON"}) {
    SCOPED_TRACE(type);
    EXPECT_EQ(post("/api/v1", health, type).status, 200);
  }

  for (const char* body :
       {"{oops", "not json", "", "{\"type\":\"GET_HEALTH\"", "[1]", "\xff\xfe"}) {
    SCOPED_TRACE(body);
    auto bad = post("/api/v1", body);
    EXPECT_EQ(bad.status, 400) << bad.body;
    std::string text = message(bad);
    EXPECT_THAT(text, HasSubstr("the body is not"));
    EXPECT_THAT(text, ::testing::Not(::testing::EndsWith("JSON Exception")));
    EXPECT_TRUE(std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; }))
        << text;
  }
  EXPECT_THAT(message(post("/api/v1", "{oops")), HasSubstr("'o'"));
}

TEST_F(MasterTest, MetricsArePresent) {
  startMaster();
  Cluster c = cluster();
  launch(c, "t1");
  auto snapshot = metrics_.snapshotAndWait(5s);
  auto flat = snapshot.flat();
  for (const char* name :
       {"master/elected", "master/uptime_secs", "master/agents_active", "master/agents_inactive",
        "master/agents_unreachable", "master/frameworks_active", "master/frameworks_inactive",
        "master/tasks_staging", "master/tasks_running", "master/tasks_finished",
        "master/tasks_lost", "master/tasks_error", "master/messages_register_agent",
        "master/messages_status_update", "master/messages_launch_tasks", "master/offers_sent",
        "master/offers_declined", "master/offers_accepted", "master/offers_rescinded"}) {
    EXPECT_TRUE(flat.count(name)) << name;
  }
  EXPECT_EQ(flat["master/elected"], 1);
  EXPECT_EQ(flat["master/agents_active"], 1);
  EXPECT_EQ(flat["master/frameworks_active"], 1);
  EXPECT_EQ(flat["master/tasks_staging"], 1);
  EXPECT_GE(flat["master/offers_sent"], 1);
  EXPECT_EQ(flat["master/messages_register_agent"], 1);
}

TEST_F(MasterTest, HeartbeatsFlow) {
  startMaster();
  auto scheduler = makeScheduler();
  ASSERT_EQ(scheduler->subscribe(kFrameworkInfo), 200);
  EXPECT_TRUE(scheduler->next(Event::HEARTBEAT).has_value());
}

}  // namespace
}  // namespace tessera::kernel::master::testing
