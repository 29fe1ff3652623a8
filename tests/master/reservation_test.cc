// Dynamic reservations (RESERVE / UNRESERVE through ACCEPT) are kept in the master's registry:
// they survive the agent re-registering and a master restart on the same store, and are then
// offered to their role only.

#include <gtest/gtest.h>

#include "tests/master/master_fixture.h"
#include "tests/master/reservation_helpers.h"

namespace tessera::kernel::master::testing {
namespace {

const char* kWeb = R"({"user":"u","name":"web","roles":["web"]})";
const char* kOther = R"({"user":"u","name":"other","roles":["other"]})";

struct Offered {
  double reservedToWeb = 0;
  double unreserved = 0;
  double reservedToOthers = 0;
};

Offered cpusIn(const Event& offers) {
  Offered offered;
  for (const auto& offer : offers.offers().offers()) {
    api::Resources resources = api::Resources::fromProto(offer.resources()).value();
    offered.reservedToWeb += resources.reserved("web").cpus();
    offered.unreserved += resources.unreserved().cpus();
    offered.reservedToOthers += resources.reserved().cpus() - resources.reserved("web").cpus();
  }
  return offered;
}

class ReservationTest : public MasterFixture {
 protected:
  /// Subscribes a framework in "other", then one in "web": the first is offered what is not
  /// reserved, the second what is reserved to "web" (the rest is held by the first).
  void expectOfferedToWebOnly(const std::string& when) {
    auto other = makeScheduler();
    ASSERT_EQ(other->subscribe(kOther), 200) << when;
    auto otherOffers = other->next(Event::OFFERS);
    ASSERT_TRUE(otherOffers.has_value()) << when;
    EXPECT_DOUBLE_EQ(cpusIn(*otherOffers).unreserved, 2.0) << when;
    EXPECT_DOUBLE_EQ(cpusIn(*otherOffers).reservedToWeb, 0.0) << when;
    auto web = makeScheduler();
    ASSERT_EQ(web->subscribe(kWeb), 200) << when;
    auto webOffers = web->next(Event::OFFERS);
    ASSERT_TRUE(webOffers.has_value()) << when;
    EXPECT_DOUBLE_EQ(cpusIn(*webOffers).reservedToWeb, 2.0) << when;
    EXPECT_DOUBLE_EQ(cpusIn(*webOffers).unreserved, 0.0) << when;
    EXPECT_DOUBLE_EQ(cpusIn(*webOffers).reservedToOthers, 0.0) << when;
  }

  /// A fake agent re-registering as `id` (after the previous one stopped), reporting
  /// `checkpointed` as the reservations it checkpointed.
  std::unique_ptr<FakeAgent> reregister(
      const std::string& id, const google::protobuf::RepeatedPtrField<v1::Resource>& checkpointed =
                                 google::protobuf::RepeatedPtrField<v1::Resource>()) {
    auto agent = makeAgent();
    agent->id = id;
    agent->checkpointedResources = checkpointed;
    EXPECT_EQ(agent->registerAgent(), id);
    return agent;
  }

  /// The next CheckpointResources the agent gets, as resources (an error if none comes).
  static api::Resources nextCheckpoint(FakeAgent& agent) {
    auto message = agent.received.take(
        [](const internal::Envelope& envelope) { return envelope.has_checkpoint_resources(); });
    if (!message) {
      ADD_FAILURE() << "no CheckpointResources";
      return api::Resources();
    }
    return api::Resources::fromProto(message->checkpoint_resources().resources()).value();
  }

  /// Reserves 2 cpus to "web" through an ACCEPT and waits until they are offered back.
  void reserveForWeb() {
    auto web = makeScheduler();
    ASSERT_EQ(web->subscribe(kWeb), 200);
    auto offers = web->next(Event::OFFERS);
    ASSERT_TRUE(offers.has_value());
    auto reserved = web->call(operationJson(*web, *offers, "RESERVE", "reserve"));
    ASSERT_EQ(reserved.status, 202) << reserved.body;
    auto again = web->next(Event::OFFERS);
    ASSERT_TRUE(again.has_value());
    ASSERT_DOUBLE_EQ(cpusIn(*again).reservedToWeb, 2.0);
  }

  /// Makes the master started next use an empty in-memory store: a registry that lost its data.
  void useFreshMemoryStore() {
    freshStore_ = std::make_unique<state::MemoryStore>();
    store = freshStore_.get();
  }

  std::unique_ptr<state::MemoryStore> freshStore_;  ///< outlives the master (TearDown first)
};

TEST_F(ReservationTest, TheAgentIsToldItsReservationsWhenTheyChangeAndWhenItReregisters) {
  startMaster();
  auto agent = makeAgent();
  std::string agentId = agent->registerAgent();
  ASSERT_FALSE(agentId.empty());
  EXPECT_TRUE(nextCheckpoint(*agent).empty());  // at registration: none yet
  reserveForWeb();
  api::Resources checkpointed = nextCheckpoint(*agent);
  EXPECT_DOUBLE_EQ(checkpointed.reserved("web").cpus(), 2.0);
  EXPECT_TRUE(checkpointed.unreserved().empty());

  agent->stop();
  agent = reregister(agentId);
  EXPECT_DOUBLE_EQ(nextCheckpoint(*agent).reserved("web").cpus(), 2.0);
}

TEST_F(ReservationTest, ARegistryThatLostTheAgentAdoptsTheReservationsItReports) {
  startMaster();
  auto agent = makeAgent();
  std::string agentId = agent->registerAgent();
  ASSERT_FALSE(agentId.empty());
  reserveForWeb();
  api::Resources checkpointed;
  while (checkpointed.empty()) {
    checkpointed = nextCheckpoint(*agent);
    if (::testing::Test::HasFailure()) return;
  }

  // A new master on an empty in-memory registry: it adopts what the agent checkpointed.
  agent->stop();
  useFreshMemoryStore();
  restartMaster();
  agent = reregister(agentId, checkpointed.toProto());
  EXPECT_DOUBLE_EQ(nextCheckpoint(*agent).reserved("web").cpus(), 2.0);
  expectOfferedToWebOnly("after a master restart on an empty registry");
  auto slave = getJson("/state")->getArray("slaves")->getObject(0);
  EXPECT_DOUBLE_EQ(
      slave->getObject("reserved_resources")->getObject("web")->getValue<double>("cpus"), 2.0);
}

TEST_F(ReservationTest, TheRegistryOverridesWhatAnAgentItKnowsReports) {
  startMaster();
  auto agent = makeAgent();
  std::string agentId = agent->registerAgent();
  ASSERT_FALSE(agentId.empty());

  // The agent reports a reservation the registry does not hold (say, it missed an UNRESERVE).
  google::protobuf::RepeatedPtrField<v1::Resource> stale;
  v1::Resource& cpus = *stale.Add();
  cpus.set_name("cpus");
  cpus.set_type(v1::Value::SCALAR);
  cpus.mutable_scalar()->set_value(2);
  auto& reservation = *cpus.add_reservations();
  reservation.set_type(v1::Resource::ReservationInfo::DYNAMIC);
  reservation.set_role("web");
  agent->stop();
  agent = reregister(agentId, stale);
  EXPECT_TRUE(nextCheckpoint(*agent).empty());
  auto other = makeScheduler();
  ASSERT_EQ(other->subscribe(kOther), 200);
  auto offers = other->next(Event::OFFERS);
  ASSERT_TRUE(offers.has_value());
  EXPECT_DOUBLE_EQ(cpusIn(*offers).unreserved, 4.0);
  auto slave = getJson("/state")->getArray("slaves")->getObject(0);
  EXPECT_EQ(slave->getObject("reserved_resources")->size(), 0u);
}

TEST_F(ReservationTest, ReservationSurvivesReregistrationAndRestartAndIsOfferedToItsRoleOnly) {
  TempDir dir;
  useFileStore(dir.path() / "state");
  startMaster();
  auto agent = makeAgent();
  std::string agentId = agent->registerAgent();
  ASSERT_FALSE(agentId.empty());
  {
    auto web = makeScheduler();
    ASSERT_EQ(web->subscribe(kWeb), 200);
    auto offers = web->next(Event::OFFERS);
    ASSERT_TRUE(offers.has_value());
    EXPECT_DOUBLE_EQ(cpusIn(*offers).unreserved, 4.0);
    auto reserved = web->call(operationJson(*web, *offers, "RESERVE", "reserve"));
    EXPECT_EQ(reserved.status, 202) << reserved.body;
    auto again = web->next(Event::OFFERS);
    ASSERT_TRUE(again.has_value());
    EXPECT_DOUBLE_EQ(cpusIn(*again).reservedToWeb, 2.0);
    EXPECT_DOUBLE_EQ(cpusIn(*again).unreserved, 2.0);
  }

  // The agent goes and comes back (it reports its resources without the reservation).
  agent->stop();
  agent = reregister(agentId);
  expectOfferedToWebOnly("after the agent re-registered");

  // A new master on the same registry.
  agent->stop();
  restartMaster();
  agent = reregister(agentId);
  expectOfferedToWebOnly("after a master restart");

  // UNRESERVE is kept too: after another restart everything is unreserved again.
  {
    auto web = makeScheduler();
    ASSERT_EQ(web->subscribe(kWeb), 200);
    auto offers = web->next(Event::OFFERS);
    ASSERT_TRUE(offers.has_value());
    ASSERT_DOUBLE_EQ(cpusIn(*offers).reservedToWeb, 2.0);
    auto unreserved = web->call(operationJson(*web, *offers, "UNRESERVE", "unreserve"));
    EXPECT_EQ(unreserved.status, 202) << unreserved.body;
    auto again = web->next(Event::OFFERS);
    ASSERT_TRUE(again.has_value());
    EXPECT_DOUBLE_EQ(cpusIn(*again).reservedToWeb, 0.0);
  }
  agent->stop();
  restartMaster();
  agent = reregister(agentId);
  auto other = makeScheduler();
  ASSERT_EQ(other->subscribe(kOther), 200);
  auto offers = other->next(Event::OFFERS);
  ASSERT_TRUE(offers.has_value());
  EXPECT_DOUBLE_EQ(cpusIn(*offers).unreserved, 4.0);
}

TEST_F(ReservationTest, StateShowsTheReservationUnderItsRoleUntilUnreserved) {
  startMaster();
  auto agent = makeAgent();
  ASSERT_FALSE(agent->registerAgent().empty());
  auto web = makeScheduler();
  ASSERT_EQ(web->subscribe(kWeb), 200);
  auto offers = web->next(Event::OFFERS);
  ASSERT_TRUE(offers.has_value());
  auto reserved = web->call(operationJson(*web, *offers, "RESERVE", "reserve"));
  ASSERT_EQ(reserved.status, 202) << reserved.body;
  auto again = web->next(Event::OFFERS);
  ASSERT_TRUE(again.has_value());

  for (const char* path : {"/state", "/slaves"}) {
    auto slave = getJson(path)->getArray("slaves")->getObject(0);
    ASSERT_TRUE(slave) << path;
    auto byRole = slave->getObject("reserved_resources");
    ASSERT_TRUE(byRole && byRole->has("web")) << path;
    EXPECT_EQ(byRole->size(), 1u) << path;
    EXPECT_DOUBLE_EQ(byRole->getObject("web")->getValue<double>("cpus"), 2.0) << path;
    EXPECT_DOUBLE_EQ(slave->getObject("unreserved_resources")->getValue<double>("cpus"), 2.0)
        << path;
    auto full = slave->getObject("reserved_resources_full");
    ASSERT_TRUE(full && full->has("web")) << path;
    auto resources = full->getArray("web");
    ASSERT_EQ(resources->size(), 1u) << path;
    auto cpus = resources->getObject(0);
    EXPECT_EQ(cpus->getValue<std::string>("name"), "cpus") << path;
    EXPECT_DOUBLE_EQ(cpus->getObject("scalar")->getValue<double>("value"), 2.0) << path;
    auto reservation = cpus->getArray("reservations")->getObject(0);
    EXPECT_EQ(reservation->getValue<std::string>("type"), "DYNAMIC") << path;
    EXPECT_EQ(reservation->getValue<std::string>("role"), "web") << path;
    EXPECT_EQ(reservation->getValue<std::string>("principal"), "p") << path;
    auto unreservedFull = slave->getArray("unreserved_resources_full");
    ASSERT_TRUE(unreservedFull) << path;
    EXPECT_GE(unreservedFull->size(), 1u) << path;
  }

  auto unreserved = web->call(operationJson(*web, *again, "UNRESERVE", "unreserve"));
  ASSERT_EQ(unreserved.status, 202) << unreserved.body;
  auto last = web->next(Event::OFFERS);
  ASSERT_TRUE(last.has_value());
  auto slave = getJson("/state")->getArray("slaves")->getObject(0);
  EXPECT_EQ(slave->getObject("reserved_resources")->size(), 0u);
  EXPECT_EQ(slave->getObject("reserved_resources_full")->size(), 0u);
  EXPECT_DOUBLE_EQ(slave->getObject("unreserved_resources")->getValue<double>("cpus"), 4.0);
}

}  // namespace
}  // namespace tessera::kernel::master::testing
