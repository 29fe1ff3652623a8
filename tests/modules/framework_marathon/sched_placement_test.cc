// Constraints and offer matching of the Marathon engine (sched_placement), and constraints as
// the engine applies them to offers.

#include "modules/framework_marathon/sched_placement.h"

#include <gtest/gtest.h>

#include "tests/modules/framework_marathon/sched_fakes.h"

namespace tessera::modules::marathon::testing {
namespace {

AgentFacts agent(std::string host, std::map<std::string, std::string> attributes = {}) {
  return AgentFacts{std::move(host), std::move(attributes)};
}

bool fits(const Constraint& c, const AgentFacts& where, const std::vector<AgentFacts>& placed) {
  std::vector<const AgentFacts*> pointers;
  for (const auto& p : placed) pointers.push_back(&p);
  return meetsConstraints({c}, where, pointers);
}

TEST(ConstraintTest, Unique) {
  Constraint c{"hostname", "UNIQUE", std::nullopt};
  EXPECT_TRUE(fits(c, agent("h1"), {}));
  EXPECT_FALSE(fits(c, agent("h1"), {agent("h1")}));
  EXPECT_TRUE(fits(c, agent("h2"), {agent("h1")}));
  Constraint rack{"rack", "UNIQUE", std::nullopt};
  EXPECT_FALSE(fits(rack, agent("h2", {{"rack", "r1"}}), {agent("h1", {{"rack", "r1"}})}));
  EXPECT_FALSE(fits(rack, agent("h2"), {})) << "an agent without the attribute";
}

TEST(ConstraintTest, ClusterWithAndWithoutValue) {
  Constraint fixed{"rack", "CLUSTER", "r2"};
  EXPECT_FALSE(fits(fixed, agent("h", {{"rack", "r1"}}), {}));
  EXPECT_TRUE(fits(fixed, agent("h", {{"rack", "r2"}}), {}));
  Constraint follow{"rack", "CLUSTER", std::nullopt};
  EXPECT_TRUE(fits(follow, agent("h", {{"rack", "r1"}}), {}));
  EXPECT_TRUE(fits(follow, agent("h", {{"rack", "r1"}}), {agent("x", {{"rack", "r1"}})}));
  EXPECT_FALSE(fits(follow, agent("h", {{"rack", "r2"}}), {agent("x", {{"rack", "r1"}})}));
}

TEST(ConstraintTest, GroupBySpreadsEvenly) {
  Constraint c{"zone", "GROUP_BY", "2"};
  auto a = agent("h1", {{"zone", "a"}});
  auto b = agent("h2", {{"zone", "b"}});
  EXPECT_TRUE(fits(c, a, {}));
  EXPECT_FALSE(fits(c, a, {a})) << "zone b has none yet and two zones are expected";
  EXPECT_TRUE(fits(c, b, {a}));
  EXPECT_TRUE(fits(c, a, {a, b}));
  EXPECT_FALSE(fits(c, a, {a, a, b}));
  Constraint any{"zone", "GROUP_BY", std::nullopt};
  EXPECT_TRUE(fits(any, b, {a}));
  EXPECT_FALSE(fits(any, a, {a, a, b}));
}

TEST(ConstraintTest, LikeUnlikeAreFullRegexMatches) {
  Constraint like{"hostname", "LIKE", "web-[0-9]+"};
  EXPECT_TRUE(fits(like, agent("web-12"), {}));
  EXPECT_FALSE(fits(like, agent("web-12.example.com"), {})) << "a full match";
  Constraint unlike{"rack", "UNLIKE", "r[12]"};
  EXPECT_FALSE(fits(unlike, agent("h", {{"rack", "r1"}}), {}));
  EXPECT_TRUE(fits(unlike, agent("h", {{"rack", "r3"}}), {}));
  EXPECT_TRUE(fits(unlike, agent("h"), {})) << "no attribute: UNLIKE holds";
  Constraint bad{"hostname", "LIKE", "("};
  EXPECT_FALSE(fits(bad, agent("h"), {}));
}

TEST(ConstraintTest, MaxPerAndIs) {
  Constraint max{"rack", "MAX_PER", "2"};
  auto r1 = agent("h", {{"rack", "r1"}});
  EXPECT_TRUE(fits(max, r1, {r1}));
  EXPECT_FALSE(fits(max, r1, {r1, r1}));
  Constraint is{"os", "IS", "linux"};
  EXPECT_TRUE(fits(is, agent("h", {{"os", "linux"}}), {}));
  EXPECT_FALSE(fits(is, agent("h", {{"os", "bsd"}}), {}));
  Constraint unknown{"hostname", "SOMETIMES", std::nullopt};
  EXPECT_FALSE(fits(unknown, agent("h"), {}));
}

TEST(ConstraintTest, OfferAttributesAsText) {
  v1::Offer offer = makeOffer("o", "a", "h", "cpus:1");
  auto* scalar = offer.add_attributes();
  scalar->set_name("size");
  scalar->set_type(v1::Value::SCALAR);
  scalar->mutable_scalar()->set_value(2.5);
  auto* text = offer.add_attributes();
  text->set_name("rack");
  text->set_type(v1::Value::TEXT);
  text->mutable_text()->set_value("r1");
  auto facts = agentFacts(offer);
  EXPECT_EQ(fieldValue(facts, "hostname"), "h");
  EXPECT_EQ(fieldValue(facts, "size"), "2.5");
  EXPECT_EQ(fieldValue(facts, "rack"), "r1");
  EXPECT_EQ(fieldValue(facts, "nope"), std::nullopt);
}

TEST(OfferPoolTest, TakesUntilExhaustedAndNeverTheSamePortTwice) {
  OfferPool pool(makeOffer("o", "a", "h", "cpus:1;mem:100;ports:[31000-31002]"));
  App app = makeApp("/a", 1);
  app.portDefinitions = {PortDefinition{}, PortDefinition{}};
  std::set<int> ports;
  auto first = pool.take(app, {"*"});
  ASSERT_TRUE(first);
  auto second = pool.take(app, {"*"});
  EXPECT_FALSE(second) << "one port left, two needed";
  app.portDefinitions = {PortDefinition{}};
  second = pool.take(app, {"*"});
  ASSERT_TRUE(second);
  for (int p : first->hostPorts) ports.insert(p);
  for (int p : second->hostPorts) ports.insert(p);
  EXPECT_EQ(ports, (std::set<int>{31000, 31001, 31002}));
  EXPECT_FALSE(pool.take(app, {"*"}));
}

using ConstraintPlacementTest = SchedulerHarness;

TEST_F(ConstraintPlacementTest, HostnameUniquePlacesOneTaskPerAgent) {
  App app = makeApp("/u", 3);
  app.constraints = {Constraint{"hostname", "UNIQUE", std::nullopt}};
  ASSERT_TRUE(scheduler->deploy({app}, {}, {}, false).isOk());
  scheduler->offers({offer("cpus:4;mem:4096;ports:[31000-31099]", "a1", "h1"),
                     offer("cpus:4;mem:4096;ports:[31000-31099]", "a2", "h2")});
  EXPECT_EQ(driver.launched().size(), 2u);
  scheduler->offers({offer("cpus:4;mem:4096;ports:[31000-31099]", "a1", "h1")});
  EXPECT_EQ(driver.launched().size(), 2u) << "h1 has one already";
  scheduler->offers({offer("cpus:4;mem:4096;ports:[31000-31099]", "a3", "h3")});
  EXPECT_EQ(driver.launched().size(), 3u);
  std::set<std::string> hosts;
  for (const auto& task : scheduler->tasks("/u")) hosts.insert(task.host);
  EXPECT_EQ(hosts, (std::set<std::string>{"h1", "h2", "h3"}));
}

TEST_F(ConstraintPlacementTest, LikeOnAnAttributeOnlyUsesMatchingAgents) {
  App app = makeApp("/l", 2);
  app.constraints = {Constraint{"rack", "LIKE", "r[1-2]"}};
  ASSERT_TRUE(scheduler->deploy({app}, {}, {}, false).isOk());
  scheduler->offers({offer("cpus:4;mem:4096;ports:[31000-31099]", "a3", "h3", {{"rack", "r3"}})});
  EXPECT_TRUE(driver.launched().empty());
  scheduler->offers({offer("cpus:4;mem:4096;ports:[31000-31099]", "a2", "h2", {{"rack", "r2"}})});
  EXPECT_EQ(driver.launched().size(), 2u);
}

}  // namespace
}  // namespace tessera::modules::marathon::testing
