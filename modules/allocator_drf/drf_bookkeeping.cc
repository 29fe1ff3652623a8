// What the master tells the allocator: frameworks, agents, and what comes back from offers
// (recovered resources, SUPPRESS/REVIVE, reservations).

#include <algorithm>
#include <utility>

#include "modules/allocator_drf/drf_allocator.h"

namespace tessera::modules::drf {

using api::Resources;
using api::Status;

// --- Frameworks ---------------------------------------------------------------------------

Status DrfAllocator::validateOptions(std::string_view frameworkId,
                                     const api::FrameworkOptions& options) const {
  if (options.roles.empty())
    return api::invalidArgument("framework '{}' has no roles", frameworkId);
  for (const std::string& role : options.roles) {
    Status valid = api::validateRole(role);
    if (!valid) return valid.withContext("framework '{}'", frameworkId);
  }
  for (const std::string& role : options.suppressedRoles) {
    if (std::find(options.roles.begin(), options.roles.end(), role) == options.roles.end()) {
      return api::invalidArgument("framework '{}' suppresses role '{}' it does not subscribe to",
                                  frameworkId, role);
    }
  }
  return Status::ok();
}

void DrfAllocator::setFrameworkRoles(uint32_t fw, const api::FrameworkOptions& options) {
  std::vector<uint32_t> roles;
  std::vector<uint32_t> suppressed;
  for (const std::string& role : options.roles) {
    uint32_t index = roleIndex(role);
    if (std::find(roles.begin(), roles.end(), index) == roles.end()) roles.push_back(index);
  }
  for (const std::string& role : options.suppressedRoles) suppressed.push_back(roleIndex(role));
  frameworks_[fw].roles = std::move(roles);
  frameworks_[fw].suppressed = std::move(suppressed);
}

Status DrfAllocator::addFramework(std::string_view frameworkId,
                                  const api::FrameworkOptions& options,
                                  std::span<const api::Allocation> used, bool active) {
  assertOnStrand();
  if (!initialized_) return api::failedPrecondition("allocator not initialized");
  if (findFramework(frameworkId) != nullptr) {
    return api::alreadyExists("framework '{}' already added", frameworkId);
  }
  if (Status valid = validateOptions(frameworkId, options); !valid) return valid;
  for (const api::Allocation& a : used) {
    if (a.frameworkId != frameworkId) {
      return api::invalidArgument("used resources of framework '{}' given for framework '{}'",
                                  a.frameworkId, frameworkId);
    }
    if (Status valid = api::validateRole(a.role); !valid) {
      return api::invalidArgument("framework '{}' uses resources in invalid role '{}'", frameworkId,
                                  a.role);
    }
  }
  uint32_t fw = frameworkIndex(frameworkId);
  Framework& framework = frameworks_[fw];
  framework.known = true;
  framework.active = active;
  setFrameworkRoles(fw, options);
  // Agents that reported this framework's usage already hold the truth; count the rest.
  for (const api::Allocation& a : used) {
    uint32_t agentIndex = 0;
    Agent* agent = findAgent(a.agentId, &agentIndex);
    if (agent == nullptr || holdsOn(*agent, fw)) continue;
    Resources part = a.resources - (a.resources - agent->available);
    agent->available -= part;
    track(agentIndex, fw, roleIndex(a.role), part, +1);
  }
  refreshFramework(fw);
  // New demand: offer it on this strand's next turn, not on the next periodic run.
  if (active) requestAll();
  return Status::ok();
}

Status DrfAllocator::removeFramework(std::string_view frameworkId) {
  assertOnStrand();
  Framework* framework = findFramework(frameworkId);
  if (framework == nullptr) return api::notFound("framework '{}' not found", frameworkId);
  uint32_t fw = frameworkIndex_.at(std::string(frameworkId));
  // A scan of all agents: removal is rare, and no per-offer index has to be kept for it.
  for (uint32_t agentIndex = 0; agentIndex < agents_.size(); ++agentIndex) {
    if (!agents_[agentIndex].present || !holdsOn(agents_[agentIndex], fw)) continue;
    releaseAllOnAgent(agentIndex, fw);
    requestAgent(agentIndex);
  }
  framework = &frameworks_[fw];
  framework->known = false;
  framework->active = false;
  framework->filters.clear();
  framework->pending.clear();
  std::vector<uint32_t> roles = framework->roles;
  framework->roles.clear();
  framework->suppressed.clear();
  for (Role& role : roles_) {
    role.frameworks.remove(fw);
    role.members.erase(fw);
  }
  for (uint32_t role = 0; role < roles_.size(); ++role) refreshRoleInSorter(role);
  return Status::ok();
}

Status DrfAllocator::activateFramework(std::string_view frameworkId) {
  assertOnStrand();
  Framework* framework = findFramework(frameworkId);
  if (framework == nullptr) return api::notFound("framework '{}' not found", frameworkId);
  framework->active = true;
  refreshFramework(frameworkIndex_.at(std::string(frameworkId)));
  requestAll();
  return Status::ok();
}

Status DrfAllocator::deactivateFramework(std::string_view frameworkId) {
  assertOnStrand();
  Framework* framework = findFramework(frameworkId);
  if (framework == nullptr) return api::notFound("framework '{}' not found", frameworkId);
  framework->active = false;
  framework->filters.clear();
  refreshFramework(frameworkIndex_.at(std::string(frameworkId)));
  return Status::ok();
}

Status DrfAllocator::updateFramework(std::string_view frameworkId,
                                     const api::FrameworkOptions& options) {
  assertOnStrand();
  Framework* framework = findFramework(frameworkId);
  if (framework == nullptr) return api::notFound("framework '{}' not found", frameworkId);
  if (Status valid = validateOptions(frameworkId, options); !valid) return valid;
  uint32_t fw = frameworkIndex_.at(std::string(frameworkId));
  std::vector<uint32_t> oldRoles = framework->roles;
  setFrameworkRoles(fw, options);
  refreshFramework(fw);
  for (uint32_t role : oldRoles) refreshMembership(fw, role);
  requestAll();
  return Status::ok();
}

// --- Agents -------------------------------------------------------------------------------

Status DrfAllocator::addAgent(std::string_view agentId, const Resources& total,
                              std::span<const api::Allocation> used) {
  assertOnStrand();
  if (!initialized_) return api::failedPrecondition("allocator not initialized");
  if (agentIndex_.count(std::string(agentId)) != 0) {
    return api::alreadyExists("agent '{}' already added", agentId);
  }
  Resources usedTotal;
  for (const api::Allocation& a : used) {
    if (a.agentId != agentId) {
      return api::invalidArgument("used resources on agent '{}' given for agent '{}'", a.agentId,
                                  agentId);
    }
    if (Status valid = api::validateRole(a.role); !valid) {
      return api::invalidArgument("agent '{}' has resources used in invalid role '{}'", agentId,
                                  a.role);
    }
    usedTotal += a.resources;
  }
  if (!total.contains(usedTotal)) {
    return api::invalidArgument("agent '{}' uses more than its total: '{}' is not within '{}'",
                                agentId, usedTotal.toString(), total.toString());
  }
  uint32_t index = 0;
  if (!freeAgents_.empty()) {
    index = freeAgents_.back();
    freeAgents_.pop_back();
  } else {
    index = static_cast<uint32_t>(agents_.size());
    agents_.emplace_back();
  }
  agentIndex_.emplace(std::string(agentId), index);
  ++agentCount_;
  Agent& agent = agents_[index];
  agent = Agent{};
  agent.id = std::string(agentId);
  agent.present = true;
  agent.active = true;
  agent.total = total;
  agent.available = total;
  agent.hasReservations = !total.reserved().empty();
  addScalars(totals_, total, +1, false);
  accountReservations(total, +1);
  sharesDirty_ = true;
  for (const api::Allocation& a : used) {
    uint32_t fw = frameworkIndex(a.frameworkId);
    agents_[index].available -= a.resources;
    track(index, fw, roleIndex(a.role), a.resources, +1);
  }
  requestAgent(index);
  return Status::ok();
}

Status DrfAllocator::removeAgent(std::string_view agentId) {
  assertOnStrand();
  uint32_t index = 0;
  Agent* agent = findAgent(agentId, &index);
  if (agent == nullptr) return api::notFound("agent '{}' not found", agentId);
  std::vector<AgentAllocation> allocations = agent->allocations;
  for (const AgentAllocation& a : allocations) track(index, a.framework, a.role, a.resources, -1);
  for (uint32_t fw = 0; fw < frameworks_.size(); ++fw) {
    Framework& framework = frameworks_[fw];
    framework.filters.erase(index);
  }
  agent = &agents_[index];
  addScalars(totals_, agent->total, -1, false);
  accountReservations(agent->total, -1);
  sharesDirty_ = true;
  agentIndex_.erase(agent->id);
  if (agent->dirty) std::erase(dirtyAgents_, index);  // the slot may be reused before the run
  *agent = Agent{};
  freeAgents_.push_back(index);
  --agentCount_;
  // Frameworks that held resources only there may now leave roles they unsubscribed from.
  for (const AgentAllocation& a : allocations) refreshMembership(a.framework, a.role);
  return Status::ok();
}

Status DrfAllocator::updateAgent(std::string_view agentId, const Resources& total) {
  assertOnStrand();
  uint32_t index = 0;
  Agent* agent = findAgent(agentId, &index);
  if (agent == nullptr) return api::notFound("agent '{}' not found", agentId);
  Resources allocated = agent->total - agent->available;
  if (!total.contains(allocated)) {
    return api::failedPrecondition(
        "agent '{}': new total '{}' does not contain what is allocated '{}'", agentId,
        total.toString(), allocated.toString());
  }
  addScalars(totals_, agent->total, -1, false);
  accountReservations(agent->total, -1);
  agent->total = total;
  agent->available = total - allocated;
  agent->hasReservations = !total.reserved().empty();
  addScalars(totals_, total, +1, false);
  accountReservations(total, +1);
  sharesDirty_ = true;
  requestAgent(index);
  return Status::ok();
}

Status DrfAllocator::activateAgent(std::string_view agentId) {
  assertOnStrand();
  uint32_t index = 0;
  Agent* agent = findAgent(agentId, &index);
  if (agent == nullptr) return api::notFound("agent '{}' not found", agentId);
  agent->active = true;
  requestAgent(index);
  return Status::ok();
}

Status DrfAllocator::deactivateAgent(std::string_view agentId) {
  assertOnStrand();
  Agent* agent = findAgent(agentId);
  if (agent == nullptr) return api::notFound("agent '{}' not found", agentId);
  agent->active = false;
  return Status::ok();
}

// --- Offers and their outcome -------------------------------------------------------------

Status DrfAllocator::recoverResources(std::string_view frameworkId, std::string_view agentId,
                                      const Resources& resources,
                                      std::optional<std::chrono::nanoseconds> refuseFor) {
  assertOnStrand();
  if (refuseFor && refuseFor->count() < 0) {
    return api::invalidArgument("negative refuse duration for framework '{}'", frameworkId);
  }
  uint32_t agentIndex = 0;
  Agent* agent = findAgent(agentId, &agentIndex);
  auto fwIt = frameworkIndex_.find(std::string(frameworkId));
  if (agent == nullptr || fwIt == frameworkIndex_.end()) return Status::ok();
  uint32_t fw = fwIt->second;
  Resources held;
  for (const AgentAllocation& a : agent->allocations) {
    if (a.framework == fw) held += a.resources;
  }
  if (!held.contains(resources)) {
    return api::invalidArgument("framework '{}' does not hold '{}' on agent '{}' (it holds '{}')",
                                frameworkId, resources.toString(), agentId, held.toString());
  }
  // Take the resources out of the framework's records on the agent, role by role.
  Resources remaining = resources;
  std::vector<std::pair<uint32_t, Resources>> parts;
  for (const AgentAllocation& a : agent->allocations) {
    if (a.framework != fw || remaining.empty()) continue;
    Resources leftover = remaining - a.resources;
    Resources part = remaining - leftover;
    if (!part.empty()) parts.emplace_back(a.role, std::move(part));
    remaining = std::move(leftover);
  }
  for (auto& [role, part] : parts) {
    track(agentIndex, fw, role, part, -1);
    agents_[agentIndex].available += part;
  }
  Framework& framework = frameworks_[fw];
  if (refuseFor && refuseFor->count() > 0 && framework.known) {
    framework.filters[agentIndex] = now() + *refuseFor;
  }
  for (auto& [role, part] : parts) refreshMembership(fw, role);
  requestAgent(agentIndex);
  return Status::ok();
}

api::Result<std::vector<uint32_t>> DrfAllocator::subscribedRoles(
    const Framework& framework, std::string_view frameworkId,
    std::span<const std::string> roles) const {
  if (roles.empty()) return framework.roles;
  std::vector<uint32_t> targets;
  for (const std::string& role : roles) {
    auto it = roleIndex_.find(role);
    if (it == roleIndex_.end() || std::find(framework.roles.begin(), framework.roles.end(),
                                            it->second) == framework.roles.end()) {
      return api::invalidArgument("framework '{}' does not subscribe to role '{}'", frameworkId,
                                  role);
    }
    targets.push_back(it->second);
  }
  return targets;
}

Status DrfAllocator::suppressOffers(std::string_view frameworkId,
                                    std::span<const std::string> roles) {
  assertOnStrand();
  Framework* framework = findFramework(frameworkId);
  if (framework == nullptr) return api::notFound("framework '{}' not found", frameworkId);
  uint32_t fw = frameworkIndex_.at(std::string(frameworkId));
  auto targets = subscribedRoles(*framework, frameworkId, roles);
  if (!targets) return targets.status();
  for (uint32_t role : *targets) {
    if (!isSuppressed(*framework, role)) framework->suppressed.push_back(role);
    refreshMembership(fw, role);
  }
  return Status::ok();
}

Status DrfAllocator::reviveOffers(std::string_view frameworkId,
                                  std::span<const std::string> roles) {
  assertOnStrand();
  Framework* framework = findFramework(frameworkId);
  if (framework == nullptr) return api::notFound("framework '{}' not found", frameworkId);
  uint32_t fw = frameworkIndex_.at(std::string(frameworkId));
  auto targets = subscribedRoles(*framework, frameworkId, roles);
  if (!targets) return targets.status();
  for (uint32_t role : *targets) {
    std::erase(framework->suppressed, role);
    refreshMembership(fw, role);
  }
  framework->filters.clear();
  requestAll();
  return Status::ok();
}

Status DrfAllocator::updateAllocation(std::string_view frameworkId, std::string_view agentId,
                                      std::span<const api::ReservationOperation> operations) {
  assertOnStrand();
  Framework* framework = findFramework(frameworkId);
  if (framework == nullptr) return api::notFound("framework '{}' not found", frameworkId);
  uint32_t agentIndex = 0;
  Agent* agent = findAgent(agentId, &agentIndex);
  if (agent == nullptr) return api::notFound("agent '{}' not found", agentId);
  uint32_t fw = frameworkIndex_.at(std::string(frameworkId));
  // Validate everything against a copy of the records first: all or nothing.
  std::vector<AgentAllocation> records = agent->allocations;
  for (const api::ReservationOperation& op : operations) {
    if (op.from.flatten() != op.to.flatten()) {
      return api::invalidArgument("operation on agent '{}' changes amounts: '{}' to '{}'", agentId,
                                  op.from.toString(), op.to.toString());
    }
    auto record = std::find_if(records.begin(), records.end(), [&](const AgentAllocation& a) {
      return a.framework == fw && a.resources.contains(op.from);
    });
    if (record == records.end()) {
      return api::invalidArgument("framework '{}' does not hold '{}' on agent '{}'", frameworkId,
                                  op.from.toString(), agentId);
    }
    record->resources -= op.from;
    record->resources += op.to;
  }
  for (const api::ReservationOperation& op : operations) {
    auto record = std::find_if(agent->allocations.begin(), agent->allocations.end(),
                               [&](const AgentAllocation& a) {
                                 return a.framework == fw && a.resources.contains(op.from);
                               });
    uint32_t role = record->role;
    track(agentIndex, fw, role, op.from, -1);
    track(agentIndex, fw, role, op.to, +1);
    agent = &agents_[agentIndex];
    agent->total -= op.from;
    agent->total += op.to;
    accountReservations(op.from, -1);
    accountReservations(op.to, +1);
  }
  agent->hasReservations = !agent->total.reserved().empty();
  return Status::ok();
}

}  // namespace tessera::modules::drf
