#include "modules/allocator_drf/drf_allocator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "tests/modules/allocator_drf/test_harness.h"

namespace tessera::modules::drf {
namespace {

using namespace std::chrono_literals;
using api::Resources;
using testing::Harness;
using testing::Offer;
using testing::res;

double sumCpus(const std::vector<Offer>& offers, std::string_view framework) {
  double cpus = 0;
  for (const Offer& offer : offers) {
    if (offer.framework == framework) cpus += offer.resources.cpus();
  }
  return cpus;
}

// Ghodsi et al., NSDI 2011, section 4: 9 CPUs and 18 GB; A's tasks need <1 CPU, 4 GB>, B's
// <3 CPUs, 1 GB>. Each framework launches one task per offer and gives the rest back; a
// framework that cannot fit a task declines. DRF ends with A running 3 tasks, B running 2,
// both at a dominant share of 2/3.
TEST(DrfAllocatorTest, DrfPaperExample) {
  Harness h;
  h.addAgent("agent", "cpus:9;mem:18432");
  h.addFramework("A", {"a"});
  h.addFramework("B", {"b"});
  const std::map<std::string, Resources> task = {{"A", res("cpus:1;mem:4096")},
                                                 {"B", res("cpus:3;mem:1024")}};
  std::map<std::string, int> tasks;
  for (int round = 0; round < 20; ++round) {
    std::vector<Offer> offers = h.allocate();
    if (offers.empty()) break;
    ASSERT_EQ(offers.size(), 1u);  // one agent, one framework per run while it has everything
    const Offer& offer = offers[0];
    const Resources& need = task.at(offer.framework);
    if (offer.resources.contains(need)) {
      ++tasks[offer.framework];
      ASSERT_TRUE(h.allocator()
                      .recoverResources(offer.framework, offer.agent, offer.resources - need, 0s)
                      .isOk());
    } else {
      h.decline(offer);
    }
  }
  EXPECT_EQ(tasks["A"], 3);
  EXPECT_EQ(tasks["B"], 2);
  EXPECT_NEAR(h.allocator().roleShareForTest("a"), 2.0 / 3, 1e-9);
  EXPECT_NEAR(h.allocator().roleShareForTest("b"), 2.0 / 3, 1e-9);
  EXPECT_EQ(h.allocator().availableForTest("agent"), res("mem:4096"));
}

// With small agents as the unit, roles weighted 1 and 3 end up holding 1/4 and 3/4.
TEST(DrfAllocatorTest, WeightedRolesConvergeToWeights) {
  Harness h;
  for (int i = 0; i < 40; ++i) h.addAgent("agent-" + std::to_string(i), "cpus:1;mem:1024");
  ASSERT_TRUE(h.allocator().updateWeights({{"light", 1}, {"heavy", 3}}).isOk());
  h.addFramework("f-light", {"light"});
  h.addFramework("f-heavy", {"heavy"});
  std::vector<Offer> offers = h.allocate();
  EXPECT_DOUBLE_EQ(sumCpus(offers, "f-light"), 10);
  EXPECT_DOUBLE_EQ(sumCpus(offers, "f-heavy"), 30);
  EXPECT_NEAR(h.allocator().roleShareForTest("light"), 0.25, 1e-9);
  EXPECT_NEAR(h.allocator().roleShareForTest("heavy"), 0.75 / 3, 1e-9);
}

// Weights also hold among more roles, and shares stay equal while they converge.
TEST(DrfAllocatorTest, ThreeWeightedRoles) {
  Harness h;
  for (int i = 0; i < 60; ++i) h.addAgent("agent-" + std::to_string(i), "cpus:1;mem:1024");
  ASSERT_TRUE(h.allocator().updateWeights({{"r1", 1}, {"r2", 2}, {"r3", 3}}).isOk());
  h.addFramework("f1", {"r1"});
  h.addFramework("f2", {"r2"});
  h.addFramework("f3", {"r3"});
  std::vector<Offer> offers = h.allocate();
  EXPECT_DOUBLE_EQ(sumCpus(offers, "f1"), 10);
  EXPECT_DOUBLE_EQ(sumCpus(offers, "f2"), 20);
  EXPECT_DOUBLE_EQ(sumCpus(offers, "f3"), 30);
}

// Frameworks within a role share it by DRF too.
TEST(DrfAllocatorTest, FrameworksWithinRoleShareFairly) {
  Harness h;
  for (int i = 0; i < 10; ++i) h.addAgent("agent-" + std::to_string(i), "cpus:1;mem:1024");
  h.addFramework("f1", {"r"});
  h.addFramework("f2", {"r"});
  std::vector<Offer> offers = h.allocate();
  EXPECT_DOUBLE_EQ(sumCpus(offers, "f1"), 5);
  EXPECT_DOUBLE_EQ(sumCpus(offers, "f2"), 5);
}

// A framework in two roles is offered in both, as a member of each.
TEST(DrfAllocatorTest, FrameworkInSeveralRoles) {
  Harness h;
  h.addAgent("agent-0", "cpus:1;mem:1024");
  h.addAgent("agent-1", "cpus:1;mem:1024");
  h.addFramework("multi", {"x", "y"});
  h.addFramework("other", {"y"});
  std::vector<Offer> offers = h.allocate();
  ASSERT_EQ(offers.size(), 2u);
  // Roles x and y each get one agent: multi as x's only member, and in y, multi or other.
  std::map<std::string, int> byRole;
  for (const Offer& offer : offers) ++byRole[offer.role];
  EXPECT_EQ(byRole["x"], 1);
  EXPECT_EQ(byRole["y"], 1);
}

// Quota: a guarantee is held back from a greedy role even before its own framework appears,
// and then offered to it.
TEST(DrfAllocatorTest, QuotaGuaranteeHoldsWhileOthersAreGreedy) {
  Harness h;
  for (int i = 0; i < 20; ++i) h.addAgent("agent-" + std::to_string(i), "cpus:1;mem:1024");
  ASSERT_TRUE(h.allocator().updateQuota("q", res("cpus:8"), Resources()).isOk());
  h.addFramework("greedy", {"g"});
  std::vector<Offer> offers = h.allocate();
  EXPECT_DOUBLE_EQ(sumCpus(offers, "greedy"), 12);
  // The greedy framework keeps everything and asks again: nothing more comes.
  EXPECT_DOUBLE_EQ(sumCpus(h.allocate(), "greedy"), 0);
  h.addFramework("quota", {"q"});
  offers = h.allocate();
  EXPECT_DOUBLE_EQ(sumCpus(offers, "quota"), 8);
  EXPECT_DOUBLE_EQ(sumCpus(offers, "greedy"), 0);
}

// Stage 1 serves guarantees first even when the quota role's share is higher.
TEST(DrfAllocatorTest, QuotaGuaranteeServedBeforeFairShare) {
  Harness h;
  for (int i = 0; i < 10; ++i) h.addAgent("agent-" + std::to_string(i), "cpus:1;mem:1024");
  ASSERT_TRUE(h.allocator().updateQuota("q", res("cpus:6"), Resources()).isOk());
  h.addFramework("quota", {"q"});
  h.addFramework("other", {"o"});
  std::vector<Offer> offers = h.allocate();
  EXPECT_DOUBLE_EQ(sumCpus(offers, "quota"), 6);
  EXPECT_DOUBLE_EQ(sumCpus(offers, "other"), 4);
}

// A limit is never exceeded, however often the role asks.
TEST(DrfAllocatorTest, QuotaLimitNeverExceeded) {
  Harness h;
  for (int i = 0; i < 20; ++i) h.addAgent("agent-" + std::to_string(i), "cpus:1;mem:1024");
  ASSERT_TRUE(h.allocator().updateQuota("l", Resources(), res("cpus:5.5")).isOk());
  h.addFramework("limited", {"l"});
  double held = 0;
  for (int round = 0; round < 5; ++round) {
    std::vector<Offer> offers = h.allocate();
    held += sumCpus(offers, "limited");
    EXPECT_LE(held, 5.5);
    // Give half of what came back, keep the rest.
    for (const Offer& offer : offers) {
      if (round % 2 == 0 && offer.resources.cpus() > 0) {
        Resources back = offer.resources;
        ASSERT_TRUE(h.allocator().recoverResources(offer.framework, offer.agent, back, 0s).isOk());
        held -= back.cpus();
      }
    }
  }
  EXPECT_GT(held, 0);
}

TEST(DrfAllocatorTest, DeclinedAgentFilteredUntilExpiryButOfferedToOthers) {
  Harness h;
  h.addAgent("agent", "cpus:2;mem:2048");
  h.addFramework("f1", {"r"});
  h.addFramework("f2", {"r"});
  std::vector<Offer> offers = h.allocate();
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].framework, "f1");
  h.decline(offers[0], 5s);
  // At once, to the other framework.
  offers = h.allocate();
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].framework, "f2");
  h.decline(offers[0], 60s);
  EXPECT_EQ(h.allocator().activeFiltersForTest(), 2u);
  h.advance(4999ms);
  EXPECT_TRUE(h.allocate().empty());
  h.advance(2ms);
  offers = h.allocate();
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].framework, "f1");
  EXPECT_EQ(h.allocator().activeFiltersForTest(), 1u);
}

TEST(DrfAllocatorTest, ZeroRefuseDurationSetsNoFilter) {
  Harness h;
  h.addAgent("agent", "cpus:2;mem:2048");
  h.addFramework("f1", {"r"});
  std::vector<Offer> offers = h.allocate();
  ASSERT_EQ(offers.size(), 1u);
  h.decline(offers[0], 0s);
  EXPECT_EQ(h.allocator().activeFiltersForTest(), 0u);
  EXPECT_EQ(h.allocate().size(), 1u);
}

TEST(DrfAllocatorTest, SuppressAndReviveRoundTrip) {
  Harness h;
  h.addAgent("agent", "cpus:2;mem:2048");
  h.addFramework("f", {"r1", "r2"});
  ASSERT_TRUE(h.allocator().suppressOffers("f", {}).isOk());
  EXPECT_TRUE(h.allocate().empty());
  std::vector<std::string> r2 = {"r2"};
  ASSERT_TRUE(h.allocator().reviveOffers("f", r2).isOk());
  std::vector<Offer> offers = h.allocate();
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].role, "r2");
  // Revive clears filters too.
  h.decline(offers[0], 1h);
  EXPECT_TRUE(h.allocate().empty());
  ASSERT_TRUE(h.allocator().reviveOffers("f", r2).isOk());
  EXPECT_EQ(h.allocate().size(), 1u);
  std::vector<std::string> unknown = {"nope"};
  EXPECT_EQ(h.allocator().suppressOffers("f", unknown).code(), api::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.allocator().suppressOffers("ghost", {}).code(), api::StatusCode::kNotFound);
}

TEST(DrfAllocatorTest, SuppressedAtSubscription) {
  Harness h;
  h.addAgent("agent", "cpus:2;mem:2048");
  api::FrameworkOptions options;
  options.roles = {"r"};
  options.suppressedRoles = {"r"};
  ASSERT_TRUE(h.allocator().addFramework("f", options, {}, true).isOk());
  EXPECT_TRUE(h.allocate().empty());
  ASSERT_TRUE(h.allocator().reviveOffers("f", {}).isOk());
  EXPECT_EQ(h.allocate().size(), 1u);
}

TEST(DrfAllocatorTest, ReservationsGoOnlyToTheirRole) {
  Harness h;
  h.addAgent("agent", "cpus:4;mem:4096;cpus(ops):2;mem(ops):1024");
  h.addFramework("dev", {"dev"});
  std::vector<Offer> offers = h.allocate();
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].resources, res("cpus:4;mem:4096"));
  EXPECT_TRUE(h.allocate().empty());  // the reserved part stays for ops
  h.addFramework("ops", {"ops"});
  offers = h.allocate();
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].framework, "ops");
  EXPECT_EQ(offers[0].resources, res("cpus(ops):2;mem(ops):1024"));
}

TEST(DrfAllocatorTest, ReservedRoleGetsReservedAndUnreserved) {
  Harness h;
  h.addAgent("agent", "cpus:4;mem:4096;cpus(ops):2;mem(ops):1024");
  h.addFramework("ops", {"ops"});
  std::vector<Offer> offers = h.allocate();
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].resources, res("cpus:4;mem:4096;cpus(ops):2;mem(ops):1024"));
}

// Role "*" is Mesos's default framework role: it gets unreserved resources only.
TEST(DrfAllocatorTest, DefaultRoleGetsOnlyUnreservedResources) {
  Harness h;
  h.addAgent("agent", "cpus:4;mem:4096;cpus(ops):2;mem(ops):1024");
  h.addFramework("any", {"*"});
  std::vector<Offer> offers = h.allocate();
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].role, "*");
  EXPECT_EQ(offers[0].resources, res("cpus:4;mem:4096"));
  EXPECT_TRUE(h.allocate().empty());
}

// A child role may use its ancestor's reservation (Resources::allocatableTo).
TEST(DrfAllocatorTest, SubroleGetsAncestorReservation) {
  Harness h;
  h.addAgent("agent", "cpus(eng):2;mem(eng):1024");
  h.addFramework("web", {"eng/web"});
  std::vector<Offer> offers = h.allocate();
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].resources, res("cpus(eng):2;mem(eng):1024"));
}

TEST(DrfAllocatorTest, DynamicReservationViaUpdateAllocation) {
  Harness h;
  h.addAgent("agent", "cpus:4;mem:4096");
  h.addFramework("ops-fw", {"ops"});
  h.addFramework("dev-fw", {"dev"});
  ASSERT_TRUE(h.allocator().suppressOffers("dev-fw", {}).isOk());
  std::vector<Offer> offers = h.allocate();
  ASSERT_EQ(offers.size(), 1u);
  api::ReservationOperation reserve;
  reserve.type = api::ReservationOperation::Type::kReserve;
  reserve.from = res("cpus:1;mem:512");
  reserve.to = res("cpus(ops,alice):1;mem(ops,alice):512");
  ASSERT_TRUE(h.allocator().updateAllocation("ops-fw", "agent", {&reserve, 1}).isOk());
  EXPECT_EQ(h.allocator().totalForTest("agent"),
            res("cpus:3;mem:3584;cpus(ops,alice):1;mem(ops,alice):512"));
  // Everything comes back; dev may only have the unreserved part.
  ASSERT_TRUE(h.allocator()
                  .recoverResources("ops-fw", "agent", h.allocator().allocatedForTest("agent"), 1h)
                  .isOk());
  ASSERT_TRUE(h.allocator().reviveOffers("dev-fw", {}).isOk());
  offers = h.allocate();
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].framework, "dev-fw");
  EXPECT_EQ(offers[0].resources, res("cpus:3;mem:3584"));
  // Unreserving something not held fails and changes nothing.
  api::ReservationOperation bad;
  bad.type = api::ReservationOperation::Type::kUnreserve;
  bad.from = res("cpus(ops,alice):1");
  bad.to = res("cpus:1");
  EXPECT_EQ(h.allocator().updateAllocation("dev-fw", "agent", {&bad, 1}).code(),
            api::StatusCode::kInvalidArgument);
}

TEST(DrfAllocatorTest, DeactivatedAgentIsNotOffered) {
  Harness h;
  h.addAgent("agent", "cpus:2;mem:2048");
  h.addFramework("f", {"r"});
  ASSERT_TRUE(h.allocator().deactivateAgent("agent").isOk());
  EXPECT_TRUE(h.allocate().empty());
  ASSERT_TRUE(h.allocator().activateAgent("agent").isOk());
  EXPECT_EQ(h.allocate().size(), 1u);
}

TEST(DrfAllocatorTest, DeactivatedFrameworkKeepsAllocation) {
  Harness h;
  h.addAgent("a1", "cpus:2;mem:2048");
  h.addFramework("f", {"r"});
  ASSERT_EQ(h.allocate().size(), 1u);
  ASSERT_TRUE(h.allocator().deactivateFramework("f").isOk());
  h.addAgent("a2", "cpus:2;mem:2048");
  EXPECT_TRUE(h.allocate().empty());
  EXPECT_EQ(h.allocator().allocatedForTest("a1"), res("cpus:2;mem:2048"));
  EXPECT_NEAR(h.allocator().roleShareForTest("r"), 0.5, 1e-9);
  ASSERT_TRUE(h.allocator().activateFramework("f").isOk());
  std::vector<Offer> offers = h.allocate();
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].agent, "a2");
}

TEST(DrfAllocatorTest, RemoveFrameworkReturnsResources) {
  Harness h;
  h.addAgent("a1", "cpus:2;mem:2048");
  h.addFramework("f", {"r"});
  h.addFramework("g", {"r"});
  std::vector<Offer> offers = h.allocate();
  ASSERT_EQ(offers.size(), 1u);
  ASSERT_TRUE(h.allocator().removeFramework(offers[0].framework).isOk());
  EXPECT_TRUE(h.allocator().allocatedForTest("a1").empty());
  offers = h.allocate();
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].framework, "g");
}

TEST(DrfAllocatorTest, MinimumOfferableSize) {
  Harness h;
  h.addAgent("tiny", "cpus:0.009;mem:31;disk:100");
  h.addAgent("cpu-only", "cpus:0.01");
  h.addAgent("mem-only", "mem:32");
  h.addFramework("f", {"r"});
  std::vector<Offer> offers = h.allocate();
  std::vector<std::string> agents;
  for (const Offer& offer : offers) agents.push_back(offer.agent);
  std::sort(agents.begin(), agents.end());
  EXPECT_EQ(agents, (std::vector<std::string>{"cpu-only", "mem-only"}));
}

TEST(DrfAllocatorTest, RecoveryStateFromAgentsAndFrameworks) {
  Harness h;
  api::Allocation used{"f", "a1", "r", res("cpus:1;mem:1024")};
  ASSERT_TRUE(h.allocator().addAgent("a1", res("cpus:4;mem:4096"), {&used, 1}).isOk());
  api::FrameworkOptions options;
  options.roles = {"r"};
  // The same usage reported again by the framework is not counted twice.
  ASSERT_TRUE(h.allocator().addFramework("f", options, {&used, 1}, true).isOk());
  EXPECT_EQ(h.allocator().allocatedForTest("a1"), res("cpus:1;mem:1024"));
  std::vector<Offer> offers = h.allocate();
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].resources, res("cpus:3;mem:3072"));
  api::Allocation tooMuch{"g", "a2", "r", res("cpus:5")};
  EXPECT_EQ(h.allocator().addAgent("a2", res("cpus:4"), {&tooMuch, 1}).code(),
            api::StatusCode::kInvalidArgument);
}

TEST(DrfAllocatorTest, Errors) {
  Harness h;
  h.addAgent("a1", "cpus:1;mem:128");
  h.addFramework("f", {"r"});
  EXPECT_EQ(h.allocator().addAgent("a1", res("cpus:1"), {}).code(),
            api::StatusCode::kAlreadyExists);
  api::FrameworkOptions options;
  options.roles = {"r"};
  EXPECT_EQ(h.allocator().addFramework("f", options, {}, true).code(),
            api::StatusCode::kAlreadyExists);
  options.roles = {"a//b"};
  EXPECT_EQ(h.allocator().addFramework("g", options, {}, true).code(),
            api::StatusCode::kInvalidArgument);
  options.roles = {};
  EXPECT_EQ(h.allocator().addFramework("g", options, {}, true).code(),
            api::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.allocator().removeAgent("nope").code(), api::StatusCode::kNotFound);
  EXPECT_EQ(h.allocator().removeFramework("nope").code(), api::StatusCode::kNotFound);
  EXPECT_EQ(h.allocator().recoverResources("f", "a1", res("cpus:1"), 0s).code(),
            api::StatusCode::kInvalidArgument);  // not held
  EXPECT_TRUE(h.allocator().recoverResources("gone", "a1", res("cpus:1"), 0s).isOk());
  EXPECT_EQ(h.allocator().updateWeights({{"r", 0}}).code(), api::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.allocator().updateQuota("r", res("ports:[1-2]"), Resources()).code(),
            api::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.allocator().updateQuota("r", res("cpus:2"), res("cpus:1")).code(),
            api::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.allocator().initialize({}).code(), api::StatusCode::kFailedPrecondition);
}

// Events schedule one run on the executor, however many arrive before it runs, and that run
// only looks at the agents that changed.
TEST(DrfAllocatorTest, EventsCoalesceIntoOneRun) {
  Harness h(/*automaticRuns=*/true);
  EXPECT_EQ(h.executor().timers(), 1u);  // the periodic run
  h.addFramework("f", {"r"});
  for (int i = 0; i < 5; ++i) h.addAgent("agent-" + std::to_string(i), "cpus:1;mem:128");
  EXPECT_EQ(h.executor().pending(), 1u);
  EXPECT_TRUE(h.allocator().runScheduledForTest());
  EXPECT_EQ(h.executor().runAll(), 1u);
  EXPECT_EQ(h.takeOffers().size(), 5u);
  EXPECT_FALSE(h.allocator().runScheduledForTest());
}

// A framework that subscribes is new demand: a run is queued for it at once (and none for one
// added inactive), instead of it waiting for the periodic run.
TEST(DrfAllocatorTest, AddingAnActiveFrameworkSchedulesARun) {
  Harness h(/*automaticRuns=*/true);
  h.addAgent("agent", "cpus:1;mem:128");
  h.executor().runAll();
  EXPECT_TRUE(h.takeOffers().empty());
  h.addFramework("idle", {"r"}, /*active=*/false);
  EXPECT_EQ(h.executor().pending(), 0u);
  h.addFramework("f", {"r"});
  EXPECT_EQ(h.executor().pending(), 1u);
  EXPECT_EQ(h.executor().runAll(), 1u);
  auto offers = h.takeOffers();
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].framework, "f");
}

TEST(DrfAllocatorTest, StopCancelsScheduledWork) {
  Harness h(/*automaticRuns=*/true);
  h.addFramework("f", {"r"});
  h.addAgent("agent", "cpus:1;mem:128");
  h.allocator().stop();
  h.executor().runAll();
  EXPECT_TRUE(h.takeOffers().empty());
}

api::Parameters params(std::vector<std::pair<std::string, std::string>> entries) {
  return api::Parameters(std::move(entries));
}

TEST(DrfParametersTest, ReadsItsParametersWithTheSharedReaders) {
  auto parsed = DrfParameters::parse(params(
      {{"allocation_interval", "250ms"}, {"fair_sharing_excluded_resource_names", "gpus, fpgas"}}));
  ASSERT_TRUE(parsed.isOk()) << parsed.status().toString();
  EXPECT_EQ(parsed->allocationInterval, 250ms);
  EXPECT_EQ(parsed->fairnessExcludedResourceNames, (std::vector<std::string>{"gpus", "fpgas"}));
  EXPECT_EQ(DrfParameters::parse(params({{"allocation_interval", "2mins"}}))->allocationInterval,
            120s);
  EXPECT_EQ(DrfParameters::parse(params({{"allocation_interval", "0secs"}})).status().message(),
            "parameter 'allocation_interval': must be positive");
  // The kernel's grammar (stout's): no short forms.
  EXPECT_EQ(DrfParameters::parse(params({{"allocation_interval", "1.5s"}})).status().message(),
            "parameter 'allocation_interval': '1.5s' is not a valid duration: unknown unit 's' "
            "(use ns, us, ms, secs, mins, hrs, days or weeks)");
  EXPECT_EQ(DrfParameters::parse(params({{"bogus", "1"}})).status().message(),
            "unknown parameter 'bogus' (known: allocation_interval, "
            "fair_sharing_excluded_resource_names)");
}

TEST(DrfAllocatorTest, ExcludedResourcesDoNotCountInShares) {
  DrfParameters parameters;
  parameters.fairnessExcludedResourceNames = {"gpus"};
  Harness h(false, parameters);
  h.addAgent("gpu", "cpus:1;mem:1024;gpus:8");
  h.addAgent("plain", "cpus:1;mem:1024");
  h.addFramework("f", {"r"});
  h.allocate();
  // Without the exclusion the share would be 8/8 = 1.
  EXPECT_NEAR(h.allocator().roleShareForTest("r"), 1.0, 1e-9);
  ASSERT_TRUE(h.allocator().recoverResources("f", "gpu", res("cpus:1;mem:1024;gpus:8"), 1h).isOk());
  EXPECT_NEAR(h.allocator().roleShareForTest("r"), 0.5, 1e-9);
}

}  // namespace
}  // namespace tessera::modules::drf
