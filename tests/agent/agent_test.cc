#include "kernel/agent/agent.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>

#include "kernel/agent/agent_files.h"
#include "kernel/agent/agent_resources.h"
#include "kernel/http/mesos_json.h"
#include "kernel/modules/module_host.h"
#include "kernel/modules/module_manager.h"
#include "kernel/net/http_client.h"
#include "kernel/net/http_server.h"
#include "kernel/net/transport.h"
#include "kernel/protocol/internal.pb.h"
#include "kernel/runtime/metrics.h"
#include "kernel/runtime/runtime.h"
#include "kernel/state/file_store.h"
#include "tests/agent/agent_fixture.h"
#include "tests/support/subprocess.h"

namespace tessera::kernel::agent {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr auto kDeadline = 30s;
constexpr const char* kNative = "org_tessera_containerizer_native";

// ---- resources and attributes ---------------------------------------------------------------

TEST(AgentResourcesTest, DetectsWithMesosReserves) {
  MachineResources machine;
  machine.cpus = 4;
  machine.memBytes = 8ull << 30;
  machine.memKnown = true;
  machine.diskBytes = 100ull << 30;
  machine.diskKnown = true;
  auto resources = agentResources("", machine);
  ASSERT_TRUE(resources) << resources.status().toString();
  EXPECT_EQ(resources->cpus(), 4);
  EXPECT_EQ(resources->mem(), 7 * 1024);    // 1 GB left to the system
  EXPECT_EQ(resources->disk(), 95 * 1024);  // 5 GB left
  ASSERT_EQ(resources->ports().size(), 1u);
  EXPECT_EQ(resources->ports()[0].begin, 31000u);
  EXPECT_EQ(resources->ports()[0].end, 32000u);

  machine.memBytes = 1ull << 30;  // small machines give half
  machine.diskBytes = 8ull << 30;
  resources = agentResources("", machine);
  ASSERT_TRUE(resources);
  EXPECT_EQ(resources->mem(), 512);
  EXPECT_EQ(resources->disk(), 4 * 1024);
}

TEST(AgentResourcesTest, TheFlagWinsPerName) {
  MachineResources machine;
  machine.cpus = 8;
  machine.memBytes = 8ull << 30;
  machine.memKnown = true;
  auto resources = agentResources("cpus:2;mem:1024;ports:[5000-5010];cpus(ops):1", machine);
  ASSERT_TRUE(resources) << resources.status().toString();
  EXPECT_EQ(resources->cpus(), 3);
  EXPECT_EQ(resources->reserved("ops").cpus(), 1);
  EXPECT_EQ(resources->mem(), 1024);
  EXPECT_EQ(resources->ports()[0].begin, 5000u);
  EXPECT_GT(resources->disk(), 0);  // still detected

  auto json =
      agentResources(R"([{"name":"cpus","type":"SCALAR","scalar":{"value":1.5}}])", machine);
  ASSERT_TRUE(json) << json.status().toString();
  EXPECT_EQ(json->cpus(), 1.5);
  EXPECT_EQ(json->mem(), 7 * 1024);

  auto bad = agentResources("cpus:abc", machine);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().code(), api::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("'--resources'"));
}

TEST(AgentResourcesTest, ParsesAttributes) {
  auto attributes = parseAttributes("rack:r1;zone:a;level:3;ids:[1-5,7-9]");
  ASSERT_TRUE(attributes) << attributes.status().toString();
  ASSERT_EQ(attributes->size(), 4);
  EXPECT_EQ((*attributes)[0].name(), "rack");
  EXPECT_EQ((*attributes)[0].type(), v1::Value::TEXT);
  EXPECT_EQ((*attributes)[0].text().value(), "r1");
  EXPECT_EQ((*attributes)[2].type(), v1::Value::SCALAR);
  EXPECT_EQ((*attributes)[2].scalar().value(), 3);
  EXPECT_EQ((*attributes)[3].type(), v1::Value::RANGES);
  EXPECT_EQ((*attributes)[3].ranges().range_size(), 2);
  EXPECT_EQ(http::writeJson([&](http::JsonWriter& w) { http::writeAttributes(w, *attributes); }),
            R"({"ids":"[1-5, 7-9]","level":3,"rack":"r1","zone":"a"})");
  EXPECT_TRUE(parseAttributes("")->empty());

  for (const char* bad : {"rack", "rack:", ":r1", "a:b:c", "s:{a,b}", "r:[5-1]"}) {
    auto parsed = parseAttributes(bad);
    ASSERT_FALSE(parsed) << bad;
    EXPECT_THAT(parsed.status().message(), HasSubstr("'--attributes'")) << bad;
  }
}

TEST(AgentFilesTest, ResolvesOnlyInsideTheSandboxes) {
  testing::TempDir dir;
  fs::path root = dir.path() / "slaves";
  fs::create_directories(root / "a");
  std::ofstream(root / "a" / "stdout") << "hello";
  fs::create_symlink("/etc", root / "a" / "etc");
  EXPECT_TRUE(openSandboxPath(root, (root / "a" / "stdout").string()));
  EXPECT_EQ(openSandboxPath(root, (root / "a" / ".." / "a" / "stdout").string()).status().code(),
            api::StatusCode::kPermissionDenied);
  EXPECT_EQ(openSandboxPath(root, "/etc/passwd").status().code(),
            api::StatusCode::kPermissionDenied);
  EXPECT_EQ(openSandboxPath(root, (root / "a" / "etc" / "passwd").string()).status().code(),
            api::StatusCode::kPermissionDenied);
  EXPECT_EQ(openSandboxPath(root, (root / "a" / "nope").string()).status().code(),
            api::StatusCode::kNotFound);
  EXPECT_EQ(openSandboxPath(root, "a/stdout").status().code(), api::StatusCode::kInvalidArgument);
}

// The fake master and the fixture are shared with the later agent features' tests.
using fixture::FakeMaster;
using AgentTest = fixture::AgentFixture;

TEST_F(AgentTest, BadFlagsFailStartNamingTheFlag) {
  auto bad = options();
  bad.resources = "cpus:lots";
  auto status = startAgent(bad);
  EXPECT_EQ(status.code(), api::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("'--resources'"));
  bad = options();
  bad.attributes = "rack";
  status = startAgent(bad);
  EXPECT_EQ(status.code(), api::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("'--attributes'"));
}

TEST_F(AgentTest, RegistersAndReregistersWithTheSameIdAfterARestart) {
  ASSERT_TRUE(startAgent().isOk());
  ASSERT_TRUE(master_->waitForRegistrations(1));
  ASSERT_TRUE(waitForRegistered());
  const std::string id = agent_->id();
  EXPECT_EQ(id, "agent-1");
  auto first = master_->registrations()[0];
  ASSERT_TRUE(first.has_register_agent());
  const auto& info = first.register_agent().agent_info();
  EXPECT_FALSE(info.has_id());
  EXPECT_EQ(info.port(), server_->port());
  EXPECT_EQ(info.hostname(), "127.0.0.1");
  EXPECT_EQ(info.attributes_size(), 1);
  EXPECT_EQ(first.register_agent().pid(), fmt::format("slave(1)@127.0.0.1:{}", server_->port()));

  crashAgent();
  ASSERT_TRUE(startAgent().isOk());
  EXPECT_EQ(agent_->id(), id);  // known from the checkpoint before the master answers
  ASSERT_TRUE(master_->waitForRegistrations(2));
  auto second = master_->registrations()[1];
  ASSERT_TRUE(second.has_reregister_agent());
  EXPECT_EQ(second.reregister_agent().agent_info().id().value(), id);
}

// The master's CheckpointResources is written to the store; after a crash the agent reads it
// back and reports it on re-registration, its AgentInfo's resources still without it.
TEST_F(AgentTest, CheckpointsReservationsAndReportsThemWhenItReregisters) {
  ASSERT_TRUE(startAgent().isOk());
  ASSERT_TRUE(master_->waitForRegistrations(1));
  ASSERT_TRUE(waitForRegistered());
  internal::Envelope envelope;
  v1::Resource& cpus = *envelope.mutable_checkpoint_resources()->add_resources();
  cpus.set_name("cpus");
  cpus.set_type(v1::Value::SCALAR);
  cpus.mutable_scalar()->set_value(1);
  auto& reservation = *cpus.add_reservations();
  reservation.set_type(v1::Resource::ReservationInfo::DYNAMIC);
  reservation.set_role("web");
  reservation.set_principal("p");
  master_->send(envelope);
  ASSERT_TRUE(testing::waitFor(
      [&] {
        auto children = storeChildren("/agent");
        return std::find(children.begin(), children.end(), "resources") != children.end();
      },
      kDeadline));

  crashAgent();
  ASSERT_TRUE(startAgent().isOk());
  ASSERT_TRUE(master_->waitForRegistrations(2));
  auto second = master_->registrations()[1];
  ASSERT_TRUE(second.has_reregister_agent());
  auto reported =
      api::Resources::fromProto(second.reregister_agent().checkpointed_resources()).value();
  EXPECT_DOUBLE_EQ(reported.reserved("web").cpus(), 1.0);
  EXPECT_TRUE(reported.unreserved().empty());
  auto info = api::Resources::fromProto(second.reregister_agent().agent_info().resources()).value();
  EXPECT_TRUE(info.reserved().empty());
  EXPECT_DOUBLE_EQ(info.cpus(), 2.0);
}

TEST_F(AgentTest, ReconnectsToAMasterOnANewPort) {
  ASSERT_TRUE(startAgent().isOk());
  ASSERT_TRUE(master_->waitForRegistrations(1));
  master_->stopTransport();
  master_->startTransport();  // another ephemeral port
  ASSERT_TRUE(master_->waitForRegistrations(2));
  EXPECT_TRUE(master_->registrations()[1].has_reregister_agent());
}

TEST_F(AgentTest, RunsATaskToFinished) {
  ASSERT_TRUE(startAgent().isOk());
  ASSERT_TRUE(master_->waitForRegistrations(1));
  ASSERT_TRUE(waitForRegistered());
  master_->runTask("t1", "echo hi; exit 0");
  auto finished = master_->waitForState("t1", v1::TASK_FINISHED);
  ASSERT_TRUE(finished);
  EXPECT_EQ(master_->states("t1"),
            (std::vector<v1::TaskState>{v1::TASK_STARTING, v1::TASK_RUNNING, v1::TASK_FINISHED}));
  EXPECT_EQ(finished->status().uuid().size(), 16u);
  EXPECT_EQ(finished->status().agent_id().value(), agent_->id());
  EXPECT_EQ(finished->framework_id().value(), "fw-1");
  fs::path sandbox = sandboxOf("t1");
  std::ifstream in(sandbox / "stdout");
  std::stringstream out;
  out << in.rdbuf();
  EXPECT_EQ(out.str(), "hi\n");
  EXPECT_EQ(fs::status(sandbox).permissions() & fs::perms::all, fs::perms(0755));

  // Acknowledged terminal: the task moves to the completed ones.
  ASSERT_TRUE(testing::waitFor(
      [&] { return get("/state").find("\"completed_executors\":[{") != std::string::npos; }));
  auto snapshot = metrics_->snapshotAndWait(5s).flat();
  EXPECT_EQ(snapshot["slave/tasks_finished"], 1);
  EXPECT_EQ(snapshot["slave/valid_status_updates"], 3);
  EXPECT_EQ(snapshot["slave/tasks_running"], 0);
  EXPECT_EQ(snapshot["slave/registered"], 1);
  EXPECT_GT(snapshot["slave/uptime_secs"], 0);
}

TEST_F(AgentTest, AFailingCommandFailsTheTask) {
  ASSERT_TRUE(startAgent().isOk());
  ASSERT_TRUE(master_->waitForRegistrations(1));
  master_->runTask("t3", "exit 3");
  auto failed = master_->waitForState("t3", v1::TASK_FAILED);
  ASSERT_TRUE(failed);
  EXPECT_THAT(failed->status().message(), HasSubstr("status 3"));
  master_->runTask("bad", "/nonexistent/program");
  ASSERT_TRUE(master_->waitForState("bad", v1::TASK_FAILED));
}

TEST_F(AgentTest, KillsATask) {
  ASSERT_TRUE(startAgent().isOk());
  ASSERT_TRUE(master_->waitForRegistrations(1));
  master_->runTask("sleeper", "sleep 60");
  ASSERT_TRUE(master_->waitForState("sleeper", v1::TASK_RUNNING));
  master_->killTask("sleeper");
  auto killed = master_->waitForState("sleeper", v1::TASK_KILLED);
  ASSERT_TRUE(killed);
  EXPECT_EQ(master_->states("sleeper"),
            (std::vector<v1::TaskState>{v1::TASK_STARTING, v1::TASK_RUNNING, v1::TASK_KILLED}));

  // Frameworks that know TASK_KILLING hear it first.
  master_->runTask("polite", "sleep 60", "fw-2", true);
  ASSERT_TRUE(master_->waitForState("polite", v1::TASK_RUNNING));
  master_->killTask("polite", "fw-2");
  ASSERT_TRUE(master_->waitForState("polite", v1::TASK_KILLED));
  EXPECT_EQ(master_->states("polite"),
            (std::vector<v1::TaskState>{v1::TASK_STARTING, v1::TASK_RUNNING, v1::TASK_KILLING,
                                        v1::TASK_KILLED}));

  // Killing what the agent does not know answers TASK_LOST (without a uuid).
  master_->killTask("ghost");
  auto lost = master_->waitForState("ghost", v1::TASK_LOST);
  ASSERT_TRUE(lost);
  EXPECT_FALSE(lost->status().has_uuid());
}

TEST_F(AgentTest, ResendsUnacknowledgedUpdatesAndKeepsTheRestQueued) {
  master_->setAutoAcknowledge(false);
  auto opts = options();
  opts.statusUpdateRetryInterval = 100ms;
  ASSERT_TRUE(startAgent(opts).isOk());
  ASSERT_TRUE(master_->waitForRegistrations(1));
  master_->runTask("t", "exit 0");
  // STARTING comes again and again; RUNNING waits for its acknowledgement.
  ASSERT_TRUE(master_->waitUntil([&] { return master_->statesLocked("t").size() >= 3; }));
  for (auto state : master_->states("t")) EXPECT_EQ(state, v1::TASK_STARTING);
  auto starting = master_->waitForState("t", v1::TASK_STARTING);
  ASSERT_TRUE(starting);
  master_->acknowledge(*starting);
  auto running = master_->waitForState("t", v1::TASK_RUNNING);
  ASSERT_TRUE(running);
  EXPECT_NE(running->status().uuid(), starting->status().uuid());
  master_->acknowledge(*running);
  auto finished = master_->waitForState("t", v1::TASK_FINISHED);
  ASSERT_TRUE(finished);
  // The same update is re-sent with the same uuid.
  ASSERT_TRUE(master_->waitUntil([&] {
    size_t count = 0;
    for (auto state : master_->statesLocked("t")) count += state == v1::TASK_FINISHED;
    return count >= 2;
  }));
  master_->acknowledge(*finished);
}

TEST_F(AgentTest, RecoversARunningTaskAfterACrash) {
  ASSERT_TRUE(startAgent().isOk());
  ASSERT_TRUE(master_->waitForRegistrations(1));
  master_->runTask("long", "sleep 120");
  ASSERT_TRUE(master_->waitForState("long", v1::TASK_RUNNING));

  crashAgent();
  ASSERT_TRUE(startAgent().isOk());
  ASSERT_TRUE(master_->waitForRegistrations(2));
  auto reregistration = master_->registrations()[1];
  ASSERT_TRUE(reregistration.has_reregister_agent());
  ASSERT_EQ(reregistration.reregister_agent().tasks_size(), 1);
  const auto& task = reregistration.reregister_agent().tasks(0);
  EXPECT_EQ(task.info().task_id().value(), "long");
  EXPECT_EQ(task.state(), v1::TASK_RUNNING);
  EXPECT_FALSE(task.container_id().empty());
  ASSERT_EQ(reregistration.reregister_agent().frameworks_size(), 1);
  EXPECT_EQ(reregistration.reregister_agent().frameworks(0).id().value(), "fw-1");

  EXPECT_THAT(get("/state"), HasSubstr("\"state\":\"TASK_RUNNING\""));
  master_->killTask("long");
  ASSERT_TRUE(master_->waitForState("long", v1::TASK_KILLED));
}

TEST_F(AgentTest, ATaskThatEndedWhileTheAgentWasDownGetsItsTerminalUpdate) {
  ASSERT_TRUE(startAgent().isOk());
  ASSERT_TRUE(master_->waitForRegistrations(1));
  master_->runTask("brief", "while [ ! -f go ]; do sleep 0.05; done; touch gone");
  ASSERT_TRUE(master_->waitForState("brief", v1::TASK_RUNNING));
  fs::path sandbox = sandboxOf("brief");

  crashAgent();
  std::ofstream(sandbox / "go") << "";
  ASSERT_TRUE(testing::waitFor([&] { return fs::exists(sandbox / "gone"); }));
  ASSERT_TRUE(startAgent().isOk());
  // The task's supervisor recorded its exit status, which the new agent reads: TASK_FINISHED,
  // even though (in a real crash) the new agent process is not the task's parent.
  ASSERT_TRUE(master_->waitForState("brief", v1::TASK_FINISHED));
  // RUNNING may come twice: the crash may beat its acknowledgement (at least once, in order).
  auto states = master_->states("brief");
  states.erase(std::unique(states.begin(), states.end()), states.end());
  EXPECT_EQ(states,
            (std::vector<v1::TaskState>{v1::TASK_STARTING, v1::TASK_RUNNING, states.back()}));
}

TEST_F(AgentTest, ServesSandboxFilesAndRefusesEverythingElse) {
  ASSERT_TRUE(startAgent().isOk());
  ASSERT_TRUE(master_->waitForRegistrations(1));
  master_->runTask("files", "printf 0123456789; ln -s /etc escape");
  ASSERT_TRUE(master_->waitForState("files", v1::TASK_FINISHED));
  const std::string sandbox = sandboxOf("files").string();

  EXPECT_EQ(get("/files/read?path=" + sandbox + "/stdout&offset=-1"), R"({"data":"","offset":10})");
  EXPECT_EQ(get("/files/read?path=" + sandbox + "/stdout&offset=2&length=3"),
            R"({"data":"234","offset":2})");
  EXPECT_EQ(get("/slave(1)/files/read?path=" + sandbox + "/stdout&offset=0"),
            R"({"data":"0123456789","offset":0})");
  EXPECT_EQ(get("/files/download?path=" + sandbox + "/stdout"), "0123456789");
  EXPECT_THAT(get("/files/browse?path=" + sandbox), HasSubstr("/stdout\""));

  get("/files/read?path=" + sandbox + "/../../../../../../../../etc/passwd&offset=0", 403);
  get("/files/read?path=/etc/passwd&offset=0", 403);
  get("/files/read?path=" + sandbox + "/escape/passwd&offset=0", 403);
  get("/files/browse?path=" + sandbox + "/escape", 403);
  get("/files/read?path=" + sandbox + "/nothing&offset=0", 404);
  get("/files/read?offset=0", 400);
}

// The master's web UI reads an agent on another host:port (docs/design.md "Agents elsewhere"):
// the agent's read-only GETs carry Access-Control-Allow-Origin when the request has an Origin,
// a download's streamed head too, and their CORS preflight is answered; never with credentials.
TEST_F(AgentTest, ReadOnlyEndpointsAreSharedCrossOrigin) {
  ASSERT_TRUE(startAgent().isOk());
  ASSERT_TRUE(master_->waitForRegistrations(1));
  master_->runTask("shared", "printf shared");
  ASSERT_TRUE(master_->waitForState("shared", v1::TASK_FINISHED));
  const std::string sandbox = sandboxOf("shared").string();
  using Headers = std::vector<std::pair<std::string, std::string>>;
  const Headers origin = {{"Origin", "http://master.example:5050"}};
  auto request = [&](const std::string& method, const std::string& target, Headers headers) {
    auto response = net::httpRequest(method, "127.0.0.1", server_->port(), target,
                                     std::move(headers), "", std::chrono::seconds(10));
    EXPECT_TRUE(response) << response.status().toString();
    return response ? *response : net::ClientResponse{};
  };
  for (const std::string& target :
       std::vector<std::string>{"/state", "/slave(1)/state.json", "/files/browse?path=" + sandbox,
                                "/files/read?path=" + sandbox + "/stdout&offset=0",
                                "/files/download?path=" + sandbox + "/stdout"}) {
    auto shared = request("GET", target, origin);
    EXPECT_EQ(shared.status, 200) << target;
    EXPECT_EQ(shared.header("access-control-allow-origin"), "*") << target;
    EXPECT_FALSE(shared.header("access-control-allow-credentials")) << target;
    // Without an Origin (curl, a same-origin page) nothing is added.
    EXPECT_FALSE(request("GET", target, {}).header("access-control-allow-origin")) << target;
  }
  EXPECT_EQ(request("GET", "/files/download?path=" + sandbox + "/stdout", origin).body, "shared");
  // An error is readable cross-origin too (the page says why).
  auto missing = request("GET", "/files/read?path=" + sandbox + "/nothing&offset=0", origin);
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.header("access-control-allow-origin"), "*");

  Headers ask = origin;
  ask.emplace_back("Access-Control-Request-Method", "GET");
  ask.emplace_back("Access-Control-Request-Headers", "authorization");
  auto preflight = request("OPTIONS", "/files/browse", ask);
  EXPECT_EQ(preflight.status, 204);
  EXPECT_EQ(preflight.header("access-control-allow-origin"), "*");
  EXPECT_EQ(preflight.header("access-control-allow-methods"), "GET, HEAD");
  EXPECT_THAT(preflight.header("access-control-allow-headers").value_or(""),
              HasSubstr("Authorization"));
  EXPECT_FALSE(preflight.header("access-control-allow-credentials"));
  EXPECT_EQ(request("OPTIONS", "/slave(1)/files/download", ask).status, 204);
  // A preflight of anything but a read is not answered as one.
  Headers write = origin;
  write.emplace_back("Access-Control-Request-Method", "POST");
  auto refused = request("OPTIONS", "/state", write);
  EXPECT_EQ(refused.status, 405);
  EXPECT_FALSE(refused.header("access-control-allow-origin"));
}

TEST_F(AgentTest, StateAndStatisticsShowARunningTask) {
  ASSERT_TRUE(startAgent().isOk());
  ASSERT_TRUE(master_->waitForRegistrations(1));
  master_->runTask("watched", "sleep 60");
  ASSERT_TRUE(master_->waitForState("watched", v1::TASK_RUNNING));

  Poco::JSON::Parser parser;
  auto state = parser.parse(get("/state")).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(state->getValue<std::string>("id"), agent_->id());
  EXPECT_EQ(state->getValue<std::string>("pid"),
            fmt::format("slave(1)@127.0.0.1:{}", server_->port()));
  EXPECT_EQ(state->getValue<std::string>("master_hostname"), "fake-master");
  EXPECT_EQ(state->getObject("resources")->getValue<double>("cpus"), 2);
  EXPECT_EQ(state->getObject("attributes")->getValue<std::string>("rack"), "r1");
  auto frameworks = state->getArray("frameworks");
  ASSERT_EQ(frameworks->size(), 1u);
  auto executors = frameworks->getObject(0)->getArray("executors");
  ASSERT_EQ(executors->size(), 1u);
  auto executor = executors->getObject(0);
  EXPECT_EQ(executor->getValue<std::string>("directory"), sandboxOf("watched").string());
  auto task = executor->getArray("tasks")->getObject(0);
  EXPECT_EQ(task->getValue<std::string>("id"), "watched");
  EXPECT_EQ(task->getValue<std::string>("state"), "TASK_RUNNING");
  EXPECT_EQ(task->getValue<std::string>("agent_id"), agent_->id());
  EXPECT_EQ(task->getValue<std::string>("slave_id"), agent_->id());
  EXPECT_TRUE(frameworks->getObject(0)->getArray("roles"));
  EXPECT_TRUE(frameworks->getObject(0)->getArray("capabilities"));
  EXPECT_TRUE(state->getObject("reserved_resources")->size() == 0);
  EXPECT_EQ(state->getObject("unreserved_resources")->getValue<double>("cpus"), 2);

  parser.reset();
  auto statistics = parser.parse(get("/monitor/statistics")).extract<Poco::JSON::Array::Ptr>();
  ASSERT_EQ(statistics->size(), 1u);
  auto entry = statistics->getObject(0);
  EXPECT_EQ(entry->getValue<std::string>("executor_id"), "watched");
  EXPECT_EQ(entry->getValue<std::string>("framework_id"), "fw-1");
  EXPECT_TRUE(entry->getObject("statistics")->has("timestamp"));

  auto snapshot = metrics_->snapshotAndWait(5s).flat();
  EXPECT_EQ(snapshot["slave/registered"], 1);
  EXPECT_EQ(snapshot["slave/tasks_running"], 1);
  EXPECT_EQ(snapshot["slave/executors_running"], 1);
}

TEST_F(AgentTest, ShuttingDownAFrameworkKillsItsTasksAndDropsTheirUpdates) {
  master_->setAutoAcknowledge(false);
  ASSERT_TRUE(startAgent().isOk());
  ASSERT_TRUE(master_->waitForRegistrations(1));
  master_->runTask("doomed", "sleep 60", "fw-gone");
  ASSERT_TRUE(master_->waitForState("doomed", v1::TASK_STARTING));
  ASSERT_TRUE(testing::waitFor([&] { return containers().size() == 1; }));
  master_->shutdownFramework("fw-gone");
  ASSERT_TRUE(testing::waitFor([&] { return containers().empty(); }));
  ASSERT_TRUE(testing::waitFor([&] {
    return storeChildren("/agent/tasks").empty() && storeChildren("/agent/frameworks").empty();
  }));
  EXPECT_THAT(get("/state"), HasSubstr("\"frameworks\":[]"));
  for (auto state : master_->states("doomed")) EXPECT_EQ(state, v1::TASK_STARTING);
}

TEST_F(AgentTest, RecoverCleanupKillsEverythingAndRegistersAnew) {
  ASSERT_TRUE(startAgent().isOk());
  ASSERT_TRUE(master_->waitForRegistrations(1));
  master_->runTask("old", "sleep 60");
  ASSERT_TRUE(master_->waitForState("old", v1::TASK_RUNNING));
  crashAgent();
  auto opts = options();
  opts.recover = "cleanup";
  ASSERT_TRUE(startAgent(opts).isOk());
  EXPECT_TRUE(containers().empty());
  ASSERT_TRUE(master_->waitForRegistrations(2));
  EXPECT_TRUE(master_->registrations()[1].has_register_agent());
  ASSERT_TRUE(testing::waitFor([&] { return agent_->id() == "agent-2"; }));
}

/// Records the calls the containerizer makes through the agent's proxy, checking each runs on
/// the isolator's own executor.
class RecordingIsolator final : public api::Isolator {
 public:
  explicit RecordingIsolator(runtime::StrandExecutor& executor) : executor_(executor) {}
  void stop() override {}
  std::vector<std::string> isolations() const override { return {"test/recording"}; }
  void recover(const std::vector<api::ContainerCheckpoint>&,
               std::function<void(api::Status)> done) override {
    record("recover");
    done(api::Status::ok());
  }
  void prepare(const api::ContainerConfig&, std::function<void(api::Status)> done) override {
    record("prepare");
    done(api::Status::ok());
  }
  void isolate(std::string_view, int64_t, std::function<void(api::Status)> done) override {
    record("isolate");
    done(api::Status::ok());
  }
  void watch(std::string_view, std::function<void(api::ContainerLimitation)>) override {
    record("watch");
  }
  void update(std::string_view, const api::Resources&,
              std::function<void(api::Status)> done) override {
    done(api::Status::ok());
  }
  void usage(std::string_view, v1::ResourceStatistics stats,
             std::function<void(api::Result<v1::ResourceStatistics>)> done) override {
    done(std::move(stats));
  }
  void cleanup(std::string_view, std::function<void(api::Status)> done) override {
    record("cleanup");
    done(api::Status::ok());
  }
  std::vector<std::string> calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }

 private:
  void record(std::string call) {
    std::lock_guard lock(mutex_);
    if (!executor_.runningInThisThread()) call += " (wrong executor)";
    calls_.push_back(std::move(call));
  }
  runtime::StrandExecutor& executor_;
  std::mutex mutex_;
  std::vector<std::string> calls_;
};

TEST_F(AgentTest, DrivesIsolatorModulesThroughProxies) {
  auto executor = runtime_.makeExecutor();
  RecordingIsolator isolator(*executor);
  AgentServices services;
  services.runtime = &runtime_;
  services.metrics = metrics_.get();
  services.router = router_;
  services.state = store_.get();
  services.containerizers = {{kNative, containerizer_, containerizerExecutor_}};
  services.isolators = {{&isolator, executor.get()}};
  // "test/recording" is served by the isolator module, so it is not among the names the
  // containerizer gets (the role strips served names, see kernel/cli/roles.cc).
  auto opts = options();
  agent_ = std::make_unique<Agent>(std::move(services), opts);
  ASSERT_TRUE(agent_->start().isOk());
  ASSERT_TRUE(master_->waitForRegistrations(1));
  master_->runTask("isolated", "true");
  ASSERT_TRUE(master_->waitForState("isolated", v1::TASK_FINISHED));
  ASSERT_TRUE(testing::waitFor([&] {
    auto calls = isolator.calls();
    return std::find(calls.begin(), calls.end(), "cleanup") != calls.end();
  }));
  auto calls = isolator.calls();
  EXPECT_EQ(calls, (std::vector<std::string>{"recover", "prepare", "isolate", "watch", "cleanup"}));
  agent_.reset();
  executor->drain();
}

TEST_F(AgentTest, AnUnknownExitStatusAfterARestartFailsTheTask) {
  ASSERT_TRUE(startAgent().isOk());
  ASSERT_TRUE(master_->waitForRegistrations(1));
  master_->runTask("forgotten", "sleep 60");
  ASSERT_TRUE(master_->waitForState("forgotten", v1::TASK_RUNNING));
  crashAgent();

  // As after a real crash, the new agent cannot learn the exit status: make the checkpointed
  // process look like someone else's (another start time). The containerizer reports it ended
  // with an unknown status, and its orphan sweep kills the real one.
  const std::string key = "/agent/tasks/fw-1/forgotten/container";
  auto executor = runtime_.makeExecutor();
  std::promise<api::Result<std::optional<api::StateEntry>>> read;
  store_->get(key, *executor, [&read](auto result) { read.set_value(std::move(result)); });
  auto entry = read.get_future().get();
  ASSERT_TRUE(entry && entry->has_value());
  Poco::JSON::Parser parser;
  auto checkpoint = parser.parse((*entry)->value).extract<Poco::JSON::Object::Ptr>();
  checkpoint->set("start_time", 1);
  std::ostringstream json;
  checkpoint->stringify(json);
  std::promise<api::Result<uint64_t>> written;
  store_->set(key, json.str(), (*entry)->version, *executor,
              [&written](auto result) { written.set_value(std::move(result)); });
  ASSERT_TRUE(written.get_future().get());
  executor->drain();

  ASSERT_TRUE(startAgent().isOk());
  auto failed = master_->waitForState("forgotten", v1::TASK_FAILED);
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->status().message(), "the task ended while the agent was down");
  EXPECT_TRUE(containers().empty());
}

}  // namespace
}  // namespace tessera::kernel::agent
