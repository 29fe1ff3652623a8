// Random sequences of agent/framework churn, recoveries, declines, suppress/revive and clock
// jumps, checked after every step against a model of what the frameworks hold. Seeded and
// reproducible: a failure prints the seed and step.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "modules/allocator_drf/drf_allocator.h"
#include "tests/modules/allocator_drf/test_harness.h"

namespace tessera::modules::drf {
namespace {

using namespace std::chrono_literals;
using api::Resources;
using testing::Harness;
using testing::Offer;
using testing::res;

uint64_t portCount(const Resources& resources) {
  uint64_t count = 0;
  for (const api::ValueRange& range : resources.ports()) count += range.end - range.begin + 1;
  return count;
}

class Model {
 public:
  explicit Model(uint32_t seed) : rng_(seed) {}

  void run(int steps) {
    for (step_ = 0; step_ < steps; ++step_) {
      randomStep();
      std::vector<Offer> offers = h_.allocate();
      for (const Offer& offer : offers) checkOffer(offer);
      offers_ += offers.size();
      checkLedger();
      if (::testing::Test::HasFailure()) return;
    }
  }

 private:
  struct FrameworkState {
    std::vector<std::string> roles;
    std::set<std::string> suppressed;
    bool active = true;
    std::map<std::string, Harness::Clock::time_point> filters;  // agent -> until
  };

  std::string where() const { return fmt::format("step {}", step_); }
  size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  template <typename Map>
  auto pickKey(const Map& map) {
    auto it = map.begin();
    std::advance(it, pick(map.size()));
    return it->first;
  }

  void randomStep() {
    switch (pick(14)) {
      case 12:
        ASSERT_TRUE(
            h_.allocator().updateWeights({{fmt::format("r{}", pick(3)), 0.5 + pick(4)}}).isOk());
        break;
      case 13: {
        // Quota churn: exercises stage 1, headroom and limit shaping under the same checks.
        std::string role = fmt::format("r{}", pick(3));
        Resources guarantee = pick(2) == 0 ? res(fmt::format("cpus:{}", pick(6))) : Resources();
        Resources limit = pick(2) == 0 ? res(fmt::format("cpus:{}", 6 + pick(6))) : Resources();
        ASSERT_TRUE(h_.allocator().updateQuota(role, guarantee, limit).isOk()) << where();
        break;
      }
      case 0:
      case 1:
        if (agents_.size() < 12) addAgent();
        break;
      case 2:
        if (!agents_.empty() && pick(3) == 0) removeAgent(pickKey(agents_));
        break;
      case 3:
        if (frameworks_.size() < 8) addFramework();
        break;
      case 4:
        if (!frameworks_.empty() && pick(3) == 0) removeFramework(pickKey(frameworks_));
        break;
      case 5:
      case 6:
        recoverSome(false);
        break;
      case 7:
        recoverSome(true);
        break;
      case 8:
        toggleSuppress();
        break;
      case 9:
        toggleActive();
        break;
      case 10:
        h_.advance(std::chrono::milliseconds(pick(4000)));
        break;
      case 11:
        toggleAgent();
        break;
    }
  }

  void addAgent() {
    std::string id = fmt::format("agent-{}", nextAgent_++);
    // fmt rather than string concatenation: g++ 12 warns falsely (-Wrestrict) on the latter.
    std::string total = fmt::format("cpus:{};mem:{};ports:[31000-{}];disk:100", 1 + pick(8),
                                    256 * (1 + pick(16)), 31000 + pick(10));
    if (pick(3) == 0) total += fmt::format(";cpus(r{}):1;mem(r0):128", pick(3));
    Resources resources = res(total);
    ASSERT_TRUE(h_.allocator().addAgent(id, resources, {}).isOk()) << where();
    agents_[id] = resources;
    activeAgents_.insert(id);
  }

  void removeAgent(const std::string& id) {
    ASSERT_TRUE(h_.allocator().removeAgent(id).isOk()) << where();
    agents_.erase(id);
    activeAgents_.erase(id);
    for (auto& [fw, byAgent] : held_) byAgent.erase(id);
    for (auto& [fw, state] : frameworks_) state.filters.erase(id);
  }

  void addFramework() {
    std::string id = fmt::format("fw-{}", nextFramework_++);
    FrameworkState state;
    state.roles.push_back(fmt::format("r{}", pick(3)));
    if (pick(2) == 0) {
      std::string second = fmt::format("r{}", pick(3));
      if (second != state.roles[0]) state.roles.push_back(second);
    }
    api::FrameworkOptions options;
    options.roles = state.roles;
    ASSERT_TRUE(h_.allocator().addFramework(id, options, {}, true).isOk()) << where();
    frameworks_[id] = state;
  }

  void removeFramework(const std::string& id) {
    ASSERT_TRUE(h_.allocator().removeFramework(id).isOk()) << where();
    frameworks_.erase(id);
    held_.erase(id);
  }

  void recoverSome(bool decline) {
    std::vector<std::pair<std::string, std::string>> holdings;
    for (const auto& [fw, byAgent] : held_) {
      for (const auto& [agent, resources] : byAgent) {
        if (!resources.empty()) holdings.emplace_back(fw, agent);
      }
    }
    if (holdings.empty()) return;
    auto [fw, agent] = holdings[pick(holdings.size())];
    Resources& held = held_[fw][agent];
    Resources back = held;
    if (!decline && pick(2) == 0) {
      // Part of it: half the unreserved cpus if there are any, else everything.
      int64_t cpus = back.unreserved().scalarMillis("cpus");
      if (cpus >= 2) back = Resources::ofScalar("cpus", cpus / 2);
    }
    std::optional<std::chrono::nanoseconds> refuse;
    if (decline) refuse = std::chrono::milliseconds(1 + pick(6000));
    ASSERT_TRUE(h_.allocator().recoverResources(fw, agent, back, refuse).isOk())
        << where() << ": " << back.toString() << " of " << held.toString();
    held -= back;
    ++recoveries_;
    if (refuse) frameworks_[fw].filters[agent] = now() + *refuse;
  }

  void toggleSuppress() {
    if (frameworks_.empty()) return;
    std::string id = pickKey(frameworks_);
    FrameworkState& state = frameworks_[id];
    std::vector<std::string> role = {state.roles[pick(state.roles.size())]};
    if (state.suppressed.count(role[0]) != 0) {
      ASSERT_TRUE(h_.allocator().reviveOffers(id, role).isOk()) << where();
      state.suppressed.erase(role[0]);
      state.filters.clear();
    } else {
      ASSERT_TRUE(h_.allocator().suppressOffers(id, role).isOk()) << where();
      state.suppressed.insert(role[0]);
    }
  }

  void toggleActive() {
    if (frameworks_.empty()) return;
    std::string id = pickKey(frameworks_);
    FrameworkState& state = frameworks_[id];
    if (state.active) {
      ASSERT_TRUE(h_.allocator().deactivateFramework(id).isOk()) << where();
      state.filters.clear();
    } else {
      ASSERT_TRUE(h_.allocator().activateFramework(id).isOk()) << where();
    }
    state.active = !state.active;
  }

  void toggleAgent() {
    if (agents_.empty()) return;
    std::string id = pickKey(agents_);
    if (activeAgents_.count(id) != 0) {
      ASSERT_TRUE(h_.allocator().deactivateAgent(id).isOk()) << where();
      activeAgents_.erase(id);
    } else {
      ASSERT_TRUE(h_.allocator().activateAgent(id).isOk()) << where();
      activeAgents_.insert(id);
    }
  }

  Harness::Clock::time_point now() const { return h_.now(); }

  Resources heldOn(const std::string& agent) {
    Resources sum;
    for (const auto& [fw, byAgent] : held_) {
      auto it = byAgent.find(agent);
      if (it != byAgent.end()) sum += it->second;
    }
    return sum;
  }

  void checkOffer(const Offer& offer) {
    SCOPED_TRACE(fmt::format("{}: offer of '{}' to '{}' in '{}' on '{}'", where(),
                             offer.resources.toString(), offer.framework, offer.role, offer.agent));
    ASSERT_EQ(agents_.count(offer.agent), 1u) << "unknown agent";
    EXPECT_EQ(activeAgents_.count(offer.agent), 1u) << "inactive agent offered";
    auto fw = frameworks_.find(offer.framework);
    ASSERT_NE(fw, frameworks_.end()) << "unknown framework";
    const FrameworkState& state = fw->second;
    EXPECT_TRUE(state.active) << "inactive framework offered";
    EXPECT_NE(std::find(state.roles.begin(), state.roles.end(), offer.role), state.roles.end())
        << "role not subscribed";
    EXPECT_EQ(state.suppressed.count(offer.role), 0u) << "suppressed role offered";
    EXPECT_FALSE(offer.resources.empty());
    auto filter = state.filters.find(offer.agent);
    EXPECT_TRUE(filter == state.filters.end() || filter->second <= now())
        << "offered while a DECLINE filter is active";
    EXPECT_EQ(offer.resources.allocatableTo(offer.role), offer.resources)
        << "reserved resources of another role";
    const Resources& total = agents_[offer.agent];
    Resources held = heldOn(offer.agent);
    // Never more than the agent has, never the same thing twice (ports overlap too).
    EXPECT_TRUE(total.contains(held + offer.resources)) << "over-offered";
    EXPECT_EQ(portCount(held) + portCount(offer.resources), portCount(held + offer.resources))
        << "ports offered twice";
    held_[offer.framework][offer.agent] += offer.resources;
  }

  void checkLedger() {
    for (const auto& [id, total] : agents_) {
      SCOPED_TRACE(fmt::format("{}: agent '{}'", where(), id));
      Resources allocated = h_.allocator().allocatedForTest(id);
      Resources available = h_.allocator().availableForTest(id);
      EXPECT_EQ(h_.allocator().totalForTest(id), total);
      EXPECT_EQ(allocated + available, total);
      EXPECT_EQ(allocated, heldOn(id));
    }
  }

  Harness h_;
  std::mt19937 rng_;

 public:
  size_t offers_ = 0;
  size_t recoveries_ = 0;

 private:
  int step_ = 0;
  int nextAgent_ = 0;
  int nextFramework_ = 0;
  std::map<std::string, Resources> agents_;
  std::set<std::string> activeAgents_;
  std::map<std::string, FrameworkState> frameworks_;
  std::map<std::string, std::map<std::string, Resources>> held_;
};

TEST(DrfPropertyTest, RandomSequencesKeepTheLedger) {
  // 100 seeds x 500 steps: 50,000 random operations, each followed by an allocation run.
  size_t offers = 0;
  size_t recoveries = 0;
  for (uint32_t seed = 1; seed <= 100; ++seed) {
    SCOPED_TRACE(fmt::format("seed {}", seed));
    Model model(seed);
    model.run(500);
    if (HasFailure()) return;
    offers += model.offers_;
    recoveries += model.recoveries_;
  }
  // The sequences must actually exercise the allocator.
  EXPECT_GT(offers, 10000u);
  EXPECT_GT(recoveries, 10000u);
}

}  // namespace
}  // namespace tessera::modules::drf
