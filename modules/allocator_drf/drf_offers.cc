// Allocation runs: when they are scheduled, and how each agent's resources become offers
// (DRF order, filters, quota shaping, delivery).

#include <algorithm>
#include <limits>
#include <tuple>
#include <utility>

#include "modules/allocator_drf/drf_allocator.h"
#include "modules/allocator_drf/drf_util.h"

namespace tessera::modules::drf {

using api::Resources;
using detail::at;

namespace {

// Mesos's minimum offerable resources: at least 0.01 cpus or 32 MB of memory.
constexpr int64_t kMinCpusMillis = 10;
constexpr int64_t kMinMemMillis = 32 * api::kScalarScale;

bool offerable(const Resources& resources) {
  int64_t cpus = 0;
  int64_t mem = 0;
  for (const Resources::Entry& entry : resources.entries()) {
    if (entry.type != api::ResourceType::kScalar) continue;
    std::string_view name = entry.name;
    if (name == "cpus") {
      cpus += entry.millis;
    } else if (name == "mem") {
      mem += entry.millis;
    }
    if (cpus >= kMinCpusMillis || mem >= kMinMemMillis) return true;
  }
  return false;
}

}  // namespace

// --- Scheduling runs ----------------------------------------------------------------------

void DrfAllocator::requestAgent(uint32_t agentIndex) {
  Agent& agent = agents_[agentIndex];
  if (!agent.dirty) {
    agent.dirty = true;
    dirtyAgents_.push_back(agentIndex);
  }
  scheduleRun();
}

void DrfAllocator::requestAll() {
  allDirty_ = true;
  scheduleRun();
}

void DrfAllocator::allocate() {
  assertOnStrand();
  if (!initialized_ || stopped_) return;
  allDirty_ = true;
  if (runScheduled_) return;
  runScheduled_ = true;
  requestedAt_ = now();
  executor_.post([this, alive = alive_] {
    if (!*alive) return;
    runScheduled_ = false;
    run(false);
  });
}

void DrfAllocator::scheduleRun() {
  if (!initialized_ || stopped_ || !options_.automaticRuns || runScheduled_) return;
  runScheduled_ = true;
  requestedAt_ = now();
  // One posted task serves every event before it runs: bursts coalesce into one run.
  executor_.post([this, alive = alive_] {
    if (!*alive) return;
    runScheduled_ = false;
    run(false);
  });
}

void DrfAllocator::armTimer() {
  if (stopped_ || !options_.automaticRuns) return;
  timer_ = executor_.schedule(options_.allocationInterval, [this, alive = alive_] {
    if (!*alive) return;
    requestedAt_ = now();
    run(true);
    armTimer();
  });
}

api::AllocationRunStats DrfAllocator::allocateNow() {
  assertOnStrand();
  requestedAt_ = now();
  return run(true);
}

api::AllocationRunStats DrfAllocator::run(bool full) {
  api::AllocationRunStats stats;
  if (!initialized_ || stopped_) return stats;
  full = full || allDirty_;
  if (!full && dirtyAgents_.empty()) return stats;
  Clock::time_point start = now();
  auto wallStart = Clock::now();
  if (latencyTimer_ != nullptr) latencyTimer_->record(start - requestedAt_);

  if (sharesDirty_) recomputeShares();

  std::vector<uint32_t> agents;
  if (full) {
    agents.reserve(agentCount_);
    for (uint32_t i = 0; i < agents_.size(); ++i) {
      if (agents_[i].present) agents.push_back(i);
    }
  } else {
    agents = dirtyAgents_;
  }
  for (uint32_t index : dirtyAgents_) agents_[index].dirty = false;
  dirtyAgents_.clear();
  allDirty_ = false;

  // Quota: how much of each role's guarantee is unmet, and the headroom that holds back.
  quotaInRun_ = false;
  bool anyUnmet = false;
  // A count, not a scan of every role: incremental runs must not cost O(roles).
  quotaInRun_ = quotaRoles_ > 0;
  if (quotaInRun_) {
    requiredHeadroom_.assign(scalarNames_.size(), 0);
    for (uint32_t role = 0; role < roles_.size(); ++role) {
      Role& r = roles_[role];
      Scalars& unmet = unmet_[role];
      unmet.assign(scalarNames_.size(), 0);
      if (!r.hasGuarantee) continue;
      for (size_t i = 0; i < scalarNames_.size(); ++i) {
        int64_t consumed = at(r.allocatedUnreserved, i) + at(r.reserved, i);
        unmet[i] = std::max<int64_t>(0, at(r.guarantee, i) - consumed);
        requiredHeadroom_[i] += unmet[i];
        anyUnmet = anyUnmet || unmet[i] > 0;
      }
    }
    // Cluster-wide unreserved availability on active agents (only scanned when quota is set).
    unreservedAvailable_.assign(scalarNames_.size(), 0);
    for (const Agent& agent : agents_) {
      if (agent.present && agent.active) {
        addScalars(unreservedAvailable_, agent.available, +1, true);
      }
    }
    unreservedAvailable_.resize(scalarNames_.size(), 0);
    requiredHeadroom_.resize(scalarNames_.size(), 0);
  }

  if (!roleSorter_.empty()) {
    if (anyUnmet) {
      for (uint32_t index : agents) allocateAgent(index, Stage::kGuarantees, start, stats);
    }
    for (uint32_t index : agents) allocateAgent(index, Stage::kAll, start, stats);
  }
  stats.agentsVisited = agents.size();
  deliver(stats);

  if (runs_ != nullptr) runs_->increment();
  if (runTimer_ != nullptr) runTimer_->record(Clock::now() - wallStart);
  return stats;
}

bool DrfAllocator::filtered(Framework& framework, uint32_t agentIndex, Clock::time_point now) {
  if (framework.filters.empty()) return false;
  auto it = framework.filters.find(agentIndex);
  if (it == framework.filters.end()) return false;
  if (it->second > now) return true;
  framework.filters.erase(it);
  return false;
}

bool DrfAllocator::shape(Resources& offer, uint32_t role, Stage stage) {
  if (!quotaInRun_) return true;
  Role& r = roles_[role];
  const Scalars& unmet = unmet_[role];
  bool guaranteed = false;
  std::vector<std::pair<std::string, int64_t>> cuts;
  for (const Resources::Entry& entry : offer.entries()) {
    if (entry.type != api::ResourceType::kScalar || entry.isReserved()) continue;
    uint32_t i = nameIndex(entry.name);
    int64_t cap = std::numeric_limits<int64_t>::max();
    // A limit that does not name a resource leaves that resource unlimited.
    if (r.hasLimit && at(r.limit, i) > 0) {
      cap = at(r.limit, i) - at(r.allocatedUnreserved, i) - at(r.reserved, i);
    }
    int64_t surplus = at(unreservedAvailable_, i) - at(requiredHeadroom_, i);
    if (stage == Stage::kGuarantees && at(unmet, i) > 0) {
      cap = std::min(cap, at(unmet, i));
      guaranteed = true;
    } else {
      // Another role's unmet guarantee is held back; this role's own unmet part is not.
      cap = std::min(cap, surplus + at(unmet, i));
    }
    cap = std::max<int64_t>(cap, 0);
    if (entry.millis > cap) cuts.emplace_back(entry.name, entry.millis - cap);
  }
  for (const auto& [name, excess] : cuts) offer -= Resources::ofScalar(name, excess);
  if (stage == Stage::kGuarantees) {
    // Only the guarantee, reservations and non-scalars travel in stage 1.
    return guaranteed;
  }
  return true;
}

void DrfAllocator::allocateAgent(uint32_t agentIndex, Stage stage, Clock::time_point now,
                                 api::AllocationRunStats& stats) {
  if (!agents_[agentIndex].present || !agents_[agentIndex].active) return;
  if (!offerable(agents_[agentIndex].available)) return;
  // Roles that already had their turn on this agent in this stage.
  uint32_t served[8];
  size_t servedCount = 0;
  std::vector<uint32_t> servedMore;
  auto wasServed = [&](uint32_t role) {
    for (size_t i = 0; i < std::min<size_t>(servedCount, 8); ++i) {
      if (served[i] == role) return true;
    }
    return std::find(servedMore.begin(), servedMore.end(), role) != servedMore.end();
  };
  auto markServed = [&](uint32_t role) {
    if (servedCount < 8) {
      served[servedCount] = role;
    } else {
      servedMore.push_back(role);
    }
    ++servedCount;
  };
  bool progress = true;
  while (progress) {
    progress = false;
    for (auto it = roleSorter_.begin(); it != roleSorter_.end(); ++it) {
      uint32_t role = it->client;
      if (wasServed(role)) continue;
      Role& r = roles_[role];
      if (stage == Stage::kGuarantees &&
          std::none_of(unmet_[role].begin(), unmet_[role].end(), [](int64_t v) { return v > 0; })) {
        continue;
      }
      uint32_t chosen = 0;
      bool found = false;
      for (auto ft = r.frameworks.begin(); ft != r.frameworks.end(); ++ft) {
        if (!filtered(frameworks_[ft->client], agentIndex, now)) {
          chosen = ft->client;
          found = true;
          break;
        }
      }
      if (!found) continue;
      Agent& agent = agents_[agentIndex];
      Resources offer;
      if (!agent.hasReservations && !quotaInRun_) {
        // The common case: everything on the agent goes to this role; no copy needed.
        offer = std::move(agent.available);
        agent.available = Resources();
      } else {
        offer = agent.hasReservations ? agent.available.allocatableTo(r.name) : agent.available;
        if (!shape(offer, role, stage)) offer = Resources();
        if (!offerable(offer)) {
          markServed(role);
          continue;
        }
        agent.available -= offer;
      }
      markServed(role);
      commit(agentIndex, chosen, role, std::move(offer));
      ++stats.offersMade;
      if (!offerable(agents_[agentIndex].available)) return;
      // Sorter order changed (the served role's share rose): walk again from the lowest.
      progress = true;
      break;
    }
  }
}

void DrfAllocator::commit(uint32_t agentIndex, uint32_t fw, uint32_t role, Resources offer) {
  if (quotaInRun_) {
    Scalars delta;
    addScalars(delta, offer, +1, true);
    for (size_t i = 0; i < delta.size(); ++i) {
      if (delta[i] == 0) continue;
      unreservedAvailable_[i] -= delta[i];
      int64_t met = std::min(unmet_[role][i], delta[i]);
      unmet_[role][i] -= met;
      requiredHeadroom_[i] -= met;
    }
    // Reserved resources count as consumed already; nothing else changes.
  }
  track(agentIndex, fw, role, offer, +1);
  Framework& framework = frameworks_[fw];
  if (framework.pending.empty()) {
    touched_.push_back(fw);
    framework.pending.reserve(framework.lastOffers);
  }
  framework.pending.push_back({roles_[role].name, agents_[agentIndex].id, std::move(offer)});
}

void DrfAllocator::deliver(api::AllocationRunStats& stats) {
  std::vector<uint32_t> touched;
  touched.swap(touched_);
  for (uint32_t fw : touched) {
    Framework& framework = frameworks_[fw];
    std::vector<api::Offer> offers;
    offers.swap(framework.pending);
    framework.lastOffers = offers.size();
    if (offers.empty() || !options_.offerCallback) continue;
    if (quotaInRun_) {
      // Stage 1 and stage 2 may both have offered a (role, agent): merge them.
      std::sort(offers.begin(), offers.end(), [](const api::Offer& a, const api::Offer& b) {
        return std::tie(a.role, a.agentId) < std::tie(b.role, b.agentId);
      });
      size_t out = 0;
      for (size_t i = 0; i < offers.size(); ++i) {
        if (out > 0 && offers[out - 1].role == offers[i].role &&
            offers[out - 1].agentId == offers[i].agentId) {
          offers[out - 1].resources += offers[i].resources;
        } else if (out != i) {
          offers[out++] = std::move(offers[i]);
        } else {
          ++out;
        }
      }
      offers.resize(out);
    }
    ++stats.frameworksOffered;
    // Copy the id: the callback may post work that changes frameworks_.
    std::string id = framework.id;
    options_.offerCallback(id, std::move(offers));
  }
}

}  // namespace tessera::modules::drf
