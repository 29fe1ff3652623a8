// Scalars and dominant shares, index lookups, membership in the sorters, and the accounting
// of what is allocated to whom.

#include <algorithm>
#include <cassert>

#include "modules/allocator_drf/drf_allocator.h"
#include "modules/allocator_drf/drf_util.h"

namespace tessera::modules::drf {

using api::Resources;
using detail::kPrefix;

// --- Scalars and shares -------------------------------------------------------------------

uint32_t DrfAllocator::nameIndex(std::string_view name) {
  for (size_t i = 0; i < scalarNames_.size(); ++i) {
    if (scalarNames_[i] == name) return static_cast<uint32_t>(i);
  }
  scalarNames_.emplace_back(name);
  excluded_.push_back(false);
  totals_.resize(scalarNames_.size(), 0);
  return static_cast<uint32_t>(scalarNames_.size() - 1);
}

void DrfAllocator::addScalars(Scalars& into, const Resources& resources, int64_t sign,
                              bool unreservedOnly) {
  for (const Resources::Entry& entry : resources.entries()) {
    if (entry.type != api::ResourceType::kScalar) continue;
    if (unreservedOnly && entry.isReserved()) continue;
    uint32_t index = nameIndex(entry.name);
    if (into.size() <= index) into.resize(scalarNames_.size(), 0);
    into[index] += sign * entry.millis;
  }
}

double DrfAllocator::shareOf(const Scalars& allocated) const {
  double share = 0;
  size_t n = std::min(allocated.size(), totals_.size());
  for (size_t i = 0; i < n; ++i) {
    if (excluded_[i] || totals_[i] <= 0 || allocated[i] <= 0) continue;
    share = std::max(share, static_cast<double>(allocated[i]) / static_cast<double>(totals_[i]));
  }
  return share;
}

// --- Lookups ------------------------------------------------------------------------------

uint32_t DrfAllocator::roleIndex(std::string_view role) {
  auto it = roleIndex_.find(std::string(role));
  if (it != roleIndex_.end()) return it->second;
  uint32_t index = static_cast<uint32_t>(roles_.size());
  roles_.emplace_back();
  roles_.back().name = std::string(role);
  roleIndex_.emplace(std::string(role), index);
  unmet_.emplace_back();
  registerRoleGauges(index);
  return index;
}

uint32_t DrfAllocator::frameworkIndex(std::string_view id) {
  auto it = frameworkIndex_.find(std::string(id));
  if (it != frameworkIndex_.end()) return it->second;
  uint32_t index = static_cast<uint32_t>(frameworks_.size());
  frameworks_.emplace_back();
  frameworks_.back().id = std::string(id);
  frameworkIndex_.emplace(std::string(id), index);
  return index;
}

DrfAllocator::Framework* DrfAllocator::findFramework(std::string_view id) {
  auto it = frameworkIndex_.find(std::string(id));
  if (it == frameworkIndex_.end() || !frameworks_[it->second].known) return nullptr;
  return &frameworks_[it->second];
}

DrfAllocator::Agent* DrfAllocator::findAgent(std::string_view id, uint32_t* index) {
  auto it = agentIndex_.find(std::string(id));
  if (it == agentIndex_.end()) return nullptr;
  if (index != nullptr) *index = it->second;
  return &agents_[it->second];
}

void DrfAllocator::registerRoleGauges(uint32_t role) {
  if (metrics_ == nullptr) return;
  std::string base = std::string(kPrefix) + "roles/" + roles_[role].name;
  metrics_->gauge(base + "/shares/dominant", [this, role] {
    if (sharesDirty_) recomputeShares();
    return roleShare(roles_[role]);
  });
}

// --- Membership in the sorters ------------------------------------------------------------

bool DrfAllocator::isSuppressed(const Framework& framework, uint32_t role) const {
  return std::find(framework.suppressed.begin(), framework.suppressed.end(), role) !=
         framework.suppressed.end();
}

void DrfAllocator::refreshRoleInSorter(uint32_t role) {
  Role& r = roles_[role];
  if (r.frameworks.empty()) {
    roleSorter_.remove(role);
  } else if (!roleSorter_.contains(role)) {
    roleSorter_.add(role, roleShare(r));
  }
}

void DrfAllocator::refreshMembership(uint32_t fw, uint32_t role) {
  Framework& framework = frameworks_[fw];
  Role& r = roles_[role];
  bool subscribed =
      std::find(framework.roles.begin(), framework.roles.end(), role) != framework.roles.end();
  bool eligible =
      framework.known && framework.active && subscribed && !isSuppressed(framework, role);
  if (eligible) {
    Member& member = r.members[fw];
    if (!r.frameworks.contains(fw)) r.frameworks.add(fw, shareOf(member.allocated));
  } else {
    r.frameworks.remove(fw);
    auto it = r.members.find(fw);
    if (it != r.members.end() && !subscribed &&
        std::all_of(it->second.allocated.begin(), it->second.allocated.end(),
                    [](int64_t v) { return v == 0; })) {
      r.members.erase(it);
    }
  }
  refreshRoleInSorter(role);
}

void DrfAllocator::refreshFramework(uint32_t fw) {
  // Every role it subscribes to, and every role it has a member record in.
  std::vector<uint32_t> roles = frameworks_[fw].roles;
  for (uint32_t role = 0; role < roles_.size(); ++role) {
    if (roles_[role].members.count(fw) != 0 &&
        std::find(roles.begin(), roles.end(), role) == roles.end()) {
      roles.push_back(role);
    }
  }
  for (uint32_t role : roles) refreshMembership(fw, role);
}

void DrfAllocator::recomputeShares() {
  sharesDirty_ = false;
  for (uint32_t role = 0; role < roles_.size(); ++role) {
    Role& r = roles_[role];
    roleSorter_.update(role, roleShare(r));
    for (auto& [fw, member] : r.members) r.frameworks.update(fw, shareOf(member.allocated));
  }
}

// --- Accounting ---------------------------------------------------------------------------

void DrfAllocator::scalarItems(const Resources& resources, std::vector<ScalarItem>& out) {
  out.clear();
  for (const Resources::Entry& entry : resources.entries()) {
    if (entry.type != api::ResourceType::kScalar) continue;
    out.push_back({nameIndex(entry.name), entry.millis, entry.isReserved()});
  }
}

void DrfAllocator::track(uint32_t agentIndex, uint32_t fw, uint32_t role,
                         const Resources& resources, int sign) {
  if (resources.empty()) return;
  Agent& agent = agents_[agentIndex];
  Role& r = roles_[role];
  auto record =
      std::find_if(agent.allocations.begin(), agent.allocations.end(),
                   [&](const AgentAllocation& a) { return a.framework == fw && a.role == role; });
  if (sign > 0) {
    if (record == agent.allocations.end()) {
      agent.allocations.push_back({fw, role, resources});
    } else {
      record->resources += resources;
    }
  } else {
    assert(record != agent.allocations.end());
    record->resources -= resources;
    if (record->resources.empty()) agent.allocations.erase(record);
  }
  Member& member = r.members[fw];
  scalarItems(resources, items_);
  size_t names = scalarNames_.size();
  for (Scalars* v : {&r.allocated, &r.allocatedUnreserved, &member.allocated}) {
    if (v->size() < names) v->resize(names, 0);
  }
  for (const ScalarItem& item : items_) {
    int64_t delta = sign * item.millis;
    r.allocated[item.name] += delta;
    member.allocated[item.name] += delta;
    if (!item.reserved) r.allocatedUnreserved[item.name] += delta;
  }
  if (!sharesDirty_) {
    r.frameworks.update(fw, shareOf(member.allocated));
    roleSorter_.update(role, roleShare(r));
  }
}

void DrfAllocator::accountReservations(const Resources& resources, int64_t sign) {
  for (const Resources::Entry& entry : resources.entries()) {
    if (entry.type != api::ResourceType::kScalar || !entry.isReserved()) continue;
    Role& r = roles_[roleIndex(entry.reservationRole())];
    uint32_t index = nameIndex(entry.name);
    if (r.reserved.size() <= index) r.reserved.resize(scalarNames_.size(), 0);
    r.reserved[index] += sign * entry.millis;
  }
}

bool DrfAllocator::holdsOn(const Agent& agent, uint32_t fw) const {
  return std::any_of(agent.allocations.begin(), agent.allocations.end(),
                     [fw](const AgentAllocation& a) { return a.framework == fw; });
}

void DrfAllocator::releaseAllOnAgent(uint32_t agentIndex, uint32_t fw) {
  Agent& agent = agents_[agentIndex];
  std::vector<AgentAllocation> mine;
  for (const AgentAllocation& a : agent.allocations) {
    if (a.framework == fw) mine.push_back(a);
  }
  for (const AgentAllocation& a : mine) {
    track(agentIndex, fw, a.role, a.resources, -1);
    agent.available += a.resources;
  }
}

}  // namespace tessera::modules::drf
