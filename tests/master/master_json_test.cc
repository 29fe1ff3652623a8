// The master's JSON, as written by the shared Mesos-shaped writer (kernel/http/mesos_json.h).

#include <gmock/gmock.h>

#include <set>

#include "kernel/master/master.h"
#include "tests/master/master_fixture.h"

namespace tessera::kernel::master::testing {
namespace {

using Poco::JSON::Object;

std::set<std::string> keysOf(const Object::Ptr& object) {
  std::set<std::string> keys;
  for (const auto& [key, value] : *object) keys.insert(key);
  return keys;
}

class MasterJsonTest : public MasterFixture {};

// Mesos joins ranges with ", ": "[31000-31005, 31007-32000]", everywhere the object form shows.
TEST_F(MasterJsonTest, PortsPrintAsMesosPrintsThem) {
  startMaster();
  auto agent = makeAgent("cpus:2;mem:512;ports:[31000-31005,31007-32000]");
  ASSERT_FALSE(agent->registerAgent().empty());
  const std::string expected = "[31000-31005, 31007-32000]";
  for (const char* path : {"/state", "/slaves", "/state-summary"}) {
    auto slaves = getJson(path)->getArray("slaves");
    ASSERT_EQ(slaves->size(), 1u) << path;
    auto slave = slaves->getObject(0);
    EXPECT_EQ(slave->getObject("resources")->getValue<std::string>("ports"), expected) << path;
    EXPECT_EQ(slave->getObject("unreserved_resources")->getValue<std::string>("ports"), expected)
        << path;
    EXPECT_EQ(slave->getObject("resources")->getValue<double>("gpus"), 0) << path;
  }
  // The v1 operator API keeps the Resource array form.
  auto response = post("/api/v1", R"({"type":"GET_AGENTS"})");
  ASSERT_EQ(response.status, 200) << response.body;
  auto agents = Poco::JSON::Parser()
                    .parse(response.body)
                    .extract<Object::Ptr>()
                    ->getObject("get_agents")
                    ->getArray("agents");
  ASSERT_EQ(agents->size(), 1u);
  bool sawPorts = false;
  auto total = agents->getObject(0)->getArray("total_resources");
  for (size_t i = 0; i < total->size(); ++i) {
    auto resource = total->getObject(static_cast<unsigned>(i));
    if (resource->getValue<std::string>("name") != "ports") continue;
    sawPorts = true;
    EXPECT_EQ(resource->getObject("ranges")->getArray("range")->size(), 2u);
  }
  EXPECT_TRUE(sawPorts);
}

// /frameworks and /slaves are the same objects as /state's, written by the same steps.
TEST_F(MasterJsonTest, FrameworksAndSlavesMatchState) {
  startMaster();
  auto agent = makeAgent();
  ASSERT_FALSE(agent->registerAgent().empty());
  auto scheduler = makeScheduler();
  ASSERT_EQ(scheduler->subscribe(kFrameworkInfo), 200);
  ASSERT_TRUE(scheduler->next(Event::OFFERS).has_value());

  auto state = getJson("/state");
  auto frameworks = getJson("/frameworks");
  EXPECT_EQ(keysOf(frameworks), (std::set<std::string>{"frameworks", "completed_frameworks",
                                                       "unregistered_frameworks"}));
  ASSERT_EQ(frameworks->getArray("frameworks")->size(), 1u);
  auto fromState = state->getArray("frameworks")->getObject(0);
  auto fromFrameworks = frameworks->getArray("frameworks")->getObject(0);
  EXPECT_EQ(keysOf(fromFrameworks), keysOf(fromState));
  EXPECT_EQ(fromFrameworks->getValue<std::string>("id"), scheduler->frameworkId);
  EXPECT_EQ(fromState->getValue<std::string>("id"), scheduler->frameworkId);
  EXPECT_EQ(fromFrameworks->getValue<std::string>("role"), "web");
  EXPECT_EQ(fromFrameworks->getArray("offers")->size(), fromState->getArray("offers")->size());

  auto slaves = getJson("/slaves");
  EXPECT_EQ(keysOf(slaves), (std::set<std::string>{"slaves", "recovered_slaves"}));
  ASSERT_EQ(slaves->getArray("slaves")->size(), 1u);
  EXPECT_EQ(keysOf(slaves->getArray("slaves")->getObject(0)),
            keysOf(state->getArray("slaves")->getObject(0)));
}

// Every operator call error goes through the one Status -> HTTP mapping and `{"message": ...}`.
TEST_F(MasterJsonTest, OperatorCallErrorsAreMappedJsonMessages) {
  startMaster();
  auto unknown = post("/api/v1", R"({"type":"NOPE"})");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(unknown.body, R"({"message":"unknown or unsupported call type 'NOPE'"})");
  auto untyped = post("/api/v1", R"({})");
  EXPECT_EQ(untyped.status, 400);
  EXPECT_EQ(untyped.body, R"({"message":"expecting 'type' to be present"})");
  auto malformed = post("/api/v1", "{oops");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_THAT(malformed.body, ::testing::StartsWith(R"({"message":"malformed call: )"));
  auto gone = post("/api/v1",
                   R"({"type":"MARK_AGENT_GONE","mark_agent_gone":{"agent_id":{"value":"x-S1"}}})");
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(gone.body, R"({"message":"agent 'x-S1' is unknown"})");
  auto health = post("/api/v1", R"({"type":"GET_MASTER"})");
  EXPECT_EQ(health.status, 200);
  EXPECT_THAT(health.body, ::testing::EndsWith(R"(,"type":"GET_MASTER"})"));
}

}  // namespace
}  // namespace tessera::kernel::master::testing
