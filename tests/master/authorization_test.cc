// The master's authorization refusals with Mesos's local authorizer (modules/auth): RESERVE and
// UNRESERVE through ACCEPT (reserve_resources / unreserve_resources: a refused operation is
// dropped and the resources stay as they were) and POST /master/teardown (teardown_frameworks on
// the framework's principal).

#include <gtest/gtest.h>

#include "tests/master/master_fixture.h"
#include "tests/master/reservation_helpers.h"

namespace tessera::kernel::master::testing {
namespace {

// A framework in role "web" whose principal is "p".
const char* kWebOfP = R"({"user":"u","name":"web","roles":["web"],"principal":"p"})";

double reservedCpus(const Event& offers) {
  double cpus = 0;
  for (const auto& offer : offers.offers().offers()) {
    cpus += api::Resources::fromProto(offer.resources()).value().reserved("web").cpus();
  }
  return cpus;
}

double unreservedCpus(const Event& offers) {
  double cpus = 0;
  for (const auto& offer : offers.offers().offers()) {
    cpus += api::Resources::fromProto(offer.resources()).value().unreserved().cpus();
  }
  return cpus;
}

class MasterAuthorizationTest : public MasterFixture {
 protected:
  std::unique_ptr<FakeAgent> agent;
  std::unique_ptr<TestScheduler> web;

  // Both go before the master, as they did when they were locals of the test bodies.
  void TearDown() override {
    web.reset();
    agent.reset();
    MasterFixture::TearDown();
  }

  /// Starts the master with `acls`, registers an agent (4 cpus) and subscribes `web` (principal
  /// p); web asks to reserve kReservedCpus on its first offer (202): `after` is its next offer.
  void startAndReserve(const char* acls, std::optional<Event>& after) {
    useAcls(acls);
    startMaster();
    agent = makeAgent();
    ASSERT_FALSE(agent->registerAgent().empty());
    web = makeScheduler();
    ASSERT_EQ(web->subscribe(kWebOfP), 200);
    auto offers = web->next(Event::OFFERS);
    ASSERT_TRUE(offers.has_value());
    auto reserved = web->call(operationJson(*web, *offers, "RESERVE", "reserve"));
    ASSERT_EQ(reserved.status, 202) << reserved.body;
    after = web->next(Event::OFFERS);
    ASSERT_TRUE(after.has_value());
  }

  /// Reserved cpus of the first agent in /state, all roles.
  size_t reservedRolesInState() {
    auto slave = getJson("/state")->getArray("slaves")->getObject(0);
    return slave ? slave->getObject("reserved_resources")->size() : 0;
  }
};

TEST_F(MasterAuthorizationTest, ARefusedReserveIsDroppedAndTheResourcesStayUnreserved) {
  std::optional<Event> again;
  ASSERT_NO_FATAL_FAILURE(startAndReserve(
      R"({"reserve_resources": [{"principals": {"values": ["p"]}, "roles": {"type": "NONE"}}]})",
      again));
  EXPECT_DOUBLE_EQ(reservedCpus(*again), 0.0);
  EXPECT_DOUBLE_EQ(unreservedCpus(*again), 4.0);
  EXPECT_EQ(reservedRolesInState(), 0u);
  // The agent is told of no reservation (only the empty set it got when it registered).
  while (auto checkpoint = agent->received.take(
             [](const internal::Envelope& envelope) { return envelope.has_checkpoint_resources(); },
             std::chrono::milliseconds(200))) {
    EXPECT_EQ(checkpoint->checkpoint_resources().resources_size(), 0);
  }
}

TEST_F(MasterAuthorizationTest, ARefusedUnreserveIsDroppedAndTheReservationStays) {
  // p may reserve (nothing says otherwise: permissive) but not give back what it reserved.
  std::optional<Event> withReservation;
  ASSERT_NO_FATAL_FAILURE(
      startAndReserve(R"({"unreserve_resources": [{"principals": {"values": ["p"]},
              "reserver_principals": {"type": "NONE"}}]})",
                      withReservation));
  ASSERT_DOUBLE_EQ(reservedCpus(*withReservation), 2.0);
  ASSERT_EQ(reservedRolesInState(), 1u);

  auto unreserved = web->call(operationJson(*web, *withReservation, "UNRESERVE", "unreserve"));
  ASSERT_EQ(unreserved.status, 202) << unreserved.body;
  auto after = web->next(Event::OFFERS);
  ASSERT_TRUE(after.has_value());
  EXPECT_DOUBLE_EQ(reservedCpus(*after), 2.0);
  EXPECT_DOUBLE_EQ(unreservedCpus(*after), 2.0);
  EXPECT_EQ(reservedRolesInState(), 1u);
}

class TeardownTest : public MasterFixture {
 protected:
  // ops may tear down any framework; a only the frameworks of principal a.
  void startWithAcls() {
    useAcls(R"({"teardown_frameworks": [
        {"principals": {"values": ["ops"]}, "framework_principals": {"type": "ANY"}},
        {"principals": {"values": ["a"]}, "framework_principals": {"values": ["a"]}},
        {"principals": {"type": "ANY"}, "framework_principals": {"type": "NONE"}}]})");
    startMaster();
  }

  bool registered(const std::string& frameworkId) {
    auto frameworks = getJson("/frameworks")->getArray("frameworks");
    for (size_t i = 0; i < frameworks->size(); ++i) {
      if (frameworks->getObject(i)->getValue<std::string>("id") == frameworkId) return true;
    }
    return false;
  }
};

TEST_F(TeardownTest, AnAllowedPrincipalTearsDownTheFrameworkAndItsTasksAreShutDown) {
  startWithAcls();
  auto agent = makeAgent();
  ASSERT_FALSE(agent->registerAgent().empty());
  auto scheduler = makeScheduler();
  ASSERT_EQ(scheduler->subscribe(R"({"user":"u","name":"fw","roles":["web"],"principal":"b"})"),
            200);
  auto offers = scheduler->next(Event::OFFERS);
  ASSERT_TRUE(offers.has_value());
  std::string task =
      fmt::format(R"({{"name":"t1","task_id":{{"value":"t1"}},"agent_id":{{"value":"{}"}},)"
                  R"("resources":{},"command":{{"value":"sleep 100"}}}})",
                  agent->id, api::Resources::parse("cpus:1;mem:128").value().toJson());
  auto launched = scheduler->call(fmt::format(
      R"({{"framework_id":{{"value":"{}"}},"type":"ACCEPT","accept":{{"offer_ids":[{{"value":"{}"}}],)"
      R"("operations":[{{"type":"LAUNCH","launch":{{"task_infos":[{}]}}}}]}}}})",
      scheduler->frameworkId, offers->offers().offers(0).id().value(), task));
  ASSERT_EQ(launched.status, 202) << launched.body;
  ASSERT_TRUE(agent->received.take([](const internal::Envelope& e) { return e.has_run_task(); }));

  // Refused: a may not tear down b's framework (403, the action named); nothing changes.
  const std::string form = "frameworkId=" + scheduler->frameworkId;
  auto refused = post("/master/teardown", form, "application/x-www-form-urlencoded", "a");
  EXPECT_EQ(refused.status, 403);
  EXPECT_NE(refused.body.find("TEARDOWN_FRAMEWORK"), std::string::npos) << refused.body;
  EXPECT_NE(refused.body.find("\"message\""), std::string::npos) << refused.body;
  EXPECT_TRUE(registered(scheduler->frameworkId));
  // Anonymous callers match only the last rule: refused too.
  EXPECT_EQ(post("/teardown", form, "application/x-www-form-urlencoded").status, 403);
  EXPECT_TRUE(registered(scheduler->frameworkId));

  // Allowed (a JSON body works as the form does): 200, the framework goes, the agent is told
  // to shut the framework's tasks down.
  auto done =
      post("/master/teardown", fmt::format(R"({{"frameworkId":"{}"}})", scheduler->frameworkId),
           "application/json", "ops");
  EXPECT_EQ(done.status, 200) << done.body;
  EXPECT_FALSE(registered(scheduler->frameworkId));
  auto shutdown =
      agent->received.take([](const internal::Envelope& e) { return e.has_shutdown_framework(); });
  ASSERT_TRUE(shutdown);
  EXPECT_EQ(shutdown->shutdown_framework().framework_id().value(), scheduler->frameworkId);

  // Gone now: a second teardown is a 400 naming it.
  auto again = post("/master/teardown", form, "application/x-www-form-urlencoded", "ops");
  EXPECT_EQ(again.status, 400);
  EXPECT_NE(again.body.find(scheduler->frameworkId), std::string::npos) << again.body;
}

TEST_F(TeardownTest, APrincipalMayTearDownItsOwnFrameworkOnly) {
  startWithAcls();
  auto own = makeScheduler();
  ASSERT_EQ(own->subscribe(R"({"user":"u","name":"own","roles":["web"],"principal":"a"})"), 200);
  EXPECT_EQ(post("/master/teardown", "frameworkId=" + own->frameworkId,
                 "application/x-www-form-urlencoded", "a")
                .status,
            200);
  EXPECT_FALSE(registered(own->frameworkId));
}

TEST_F(TeardownTest, AMissingOrUnknownFrameworkIdIs400) {
  startMaster();  // no authorizer: everything allowed, the body still checked
  auto missing = post("/master/teardown", "", "application/x-www-form-urlencoded");
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.body.find("frameworkId"), std::string::npos) << missing.body;
  EXPECT_EQ(post("/master/teardown", "other=1", "application/x-www-form-urlencoded").status, 400);
  EXPECT_EQ(post("/master/teardown", R"({"frameworkId": 7})").status, 400);
  auto unknown =
      post("/master/teardown", "frameworkId=no-such", "application/x-www-form-urlencoded");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("no-such"), std::string::npos) << unknown.body;
}

}  // namespace
}  // namespace tessera::kernel::master::testing
