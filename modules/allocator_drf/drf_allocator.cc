#include "modules/allocator_drf/drf_allocator.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <tuple>
#include <utility>

namespace tessera::modules::drf {

using api::Resources;
using api::Status;

namespace {

// Mesos's minimum offerable resources: at least 0.01 cpus or 32 MB of memory.
constexpr int64_t kMinCpusMillis = 10;
constexpr int64_t kMinMemMillis = 32 * api::kScalarScale;
constexpr std::string_view kPrefix = "allocator/drf/";

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

int64_t at(const std::vector<int64_t>& values, size_t index) {
  return index < values.size() ? values[index] : 0;
}

}  // namespace

// --- Parameters ---------------------------------------------------------------------------

api::Result<DrfParameters> DrfParameters::parse(const api::Parameters& parameters) {
  api::ParameterReader reader(parameters);
  DrfParameters result;
  auto interval = reader.duration("allocation_interval", result.allocationInterval);
  if (!interval) return interval.status();
  if (interval->count() <= 0) return reader.invalid("allocation_interval", "must be positive");
  result.allocationInterval = *interval;
  result.fairnessExcludedResourceNames = reader.list("fair_sharing_excluded_resource_names");
  if (auto unknown = reader.rejectUnknown(); !unknown) return unknown;
  return result;
}

// --- Construction -------------------------------------------------------------------------

api::Result<std::unique_ptr<api::Module>> DrfAllocator::create(const api::Parameters& parameters,
                                                               api::Context& context) {
  auto parsed = DrfParameters::parse(parameters);
  if (!parsed) return parsed.status();
  return std::unique_ptr<api::Module>(std::make_unique<DrfAllocator>(
      context.executor(), &context.metrics(), &context.logger(), *std::move(parsed)));
}

DrfAllocator::DrfAllocator(api::Executor& executor, api::Metrics* metrics, api::Logger* logger,
                           DrfParameters parameters)
    : executor_(executor), metrics_(metrics), logger_(logger), parameters_(std::move(parameters)) {
  for (const std::string& name : parameters_.fairnessExcludedResourceNames) {
    excluded_[nameIndex(name)] = true;
  }
  if (metrics_ != nullptr) {
    runs_ = &metrics_->counter(std::string(kPrefix) + "allocation_runs");
    runTimer_ = &metrics_->timer(std::string(kPrefix) + "allocation_run_ms");
    latencyTimer_ = &metrics_->timer(std::string(kPrefix) + "allocation_run_latency_ms");
    metrics_->gauge(std::string(kPrefix) + "offer_filters/active",
                    [this] { return static_cast<double>(activeFiltersForTest()); });
    metrics_->gauge(std::string(kPrefix) + "event_queue_dispatches",
                    [this] { return runScheduled_ ? 1.0 : 0.0; });
  }
}

DrfAllocator::~DrfAllocator() {
  *alive_ = false;
  // Destroying a handle does not cancel its timer.
  if (timer_) timer_->cancel();
}

void DrfAllocator::stop() {
  assertOnStrand();
  stopped_ = true;
  *alive_ = false;
  if (timer_) timer_->cancel();
  timer_.reset();
  options_.offerCallback = nullptr;
}

DrfAllocator::Clock::time_point DrfAllocator::now() const {
  return options_.clock ? options_.clock() : Clock::now();
}

Status DrfAllocator::initialize(api::AllocatorOptions options) {
  assertOnStrand();
  if (initialized_) return api::failedPrecondition("allocator already initialized");
  if (!options.offerCallback) return api::invalidArgument("no offer callback");
  if (options.allocationInterval.count() < 0) {
    return api::invalidArgument("negative allocation interval");
  }
  if (options.allocationInterval.count() == 0) {
    options.allocationInterval = parameters_.allocationInterval;
  }
  for (const std::string& name : options.fairnessExcludedResourceNames) {
    excluded_[nameIndex(name)] = true;
  }
  options_ = std::move(options);
  initialized_ = true;
  armTimer();
  return Status::ok();
}

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

// --- Policy -------------------------------------------------------------------------------

Status DrfAllocator::updateWeights(const std::map<std::string, double>& weights) {
  assertOnStrand();
  for (const auto& [role, weight] : weights) {
    if (Status valid = api::validateRole(role); !valid || role == "*") {
      return api::invalidArgument("invalid role '{}' in weights", role);
    }
    if (!std::isfinite(weight) || weight <= 0) {
      return api::invalidArgument("weight of role '{}' must be positive, not {}", role, weight);
    }
  }
  for (const auto& [role, weight] : weights) roles_[roleIndex(role)].weight = weight;
  sharesDirty_ = true;
  return Status::ok();
}

Status DrfAllocator::updateQuota(std::string_view role, const Resources& guarantee,
                                 const Resources& limit) {
  assertOnStrand();
  if (Status valid = api::validateRole(role); !valid || role == "*") {
    return api::invalidArgument("invalid quota role '{}'", role);
  }
  for (const Resources* resources : {&guarantee, &limit}) {
    for (const Resources::Entry& entry : resources->entries()) {
      if (entry.type != api::ResourceType::kScalar || entry.isReserved()) {
        return api::invalidArgument("quota of role '{}' must be unreserved scalars, not '{}'", role,
                                    resources->toString());
      }
    }
  }
  for (const Resources::Entry& entry : guarantee.entries()) {
    int64_t cap = limit.scalarMillis(entry.name);
    if (!limit.empty() && cap < entry.millis) {
      return api::invalidArgument("quota of role '{}': guarantee '{}' above limit '{}'", role,
                                  guarantee.toString(), limit.toString());
    }
  }
  uint32_t index = roleIndex(role);
  Role& r = roles_[index];
  r.guarantee.assign(scalarNames_.size(), 0);
  r.limit.assign(scalarNames_.size(), 0);
  addScalars(r.guarantee, guarantee, +1, true);
  addScalars(r.limit, limit, +1, true);
  bool had = r.hasGuarantee || r.hasLimit;
  r.hasGuarantee = !guarantee.empty();
  r.hasLimit = !limit.empty();
  bool has = r.hasGuarantee || r.hasLimit;
  if (has != had) quotaRoles_ += has ? 1 : -1;
  if (metrics_ != nullptr) {
    std::string base = std::string(kPrefix) + "quota/roles/" + std::string(role) + "/resources/";
    for (const Resources* resources : {&guarantee, &limit}) {
      for (const Resources::Entry& entry : resources->entries()) {
        uint32_t name = nameIndex(entry.name);
        metrics_->gauge(base + entry.name + "/guarantee", [this, index, name] {
          return at(roles_[index].guarantee, name) / double(api::kScalarScale);
        });
        metrics_->gauge(base + entry.name + "/limit", [this, index, name] {
          return at(roles_[index].limit, name) / double(api::kScalarScale);
        });
        metrics_->gauge(base + entry.name + "/offered_or_allocated", [this, index, name] {
          return at(roles_[index].allocated, name) / double(api::kScalarScale);
        });
      }
    }
  }
  requestAll();
  return Status::ok();
}

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

// --- Inspection ---------------------------------------------------------------------------

Resources DrfAllocator::availableForTest(std::string_view agentId) const {
  auto it = agentIndex_.find(std::string(agentId));
  return it == agentIndex_.end() ? Resources() : agents_[it->second].available;
}

Resources DrfAllocator::allocatedForTest(std::string_view agentId) const {
  auto it = agentIndex_.find(std::string(agentId));
  Resources allocated;
  if (it == agentIndex_.end()) return allocated;
  for (const AgentAllocation& a : agents_[it->second].allocations) allocated += a.resources;
  return allocated;
}

Resources DrfAllocator::totalForTest(std::string_view agentId) const {
  auto it = agentIndex_.find(std::string(agentId));
  return it == agentIndex_.end() ? Resources() : agents_[it->second].total;
}

double DrfAllocator::roleShareForTest(std::string_view role) {
  auto it = roleIndex_.find(std::string(role));
  if (it == roleIndex_.end()) return 0;
  if (sharesDirty_) recomputeShares();
  return roleShare(roles_[it->second]);
}

size_t DrfAllocator::activeFiltersForTest() const {
  Clock::time_point t = now();
  size_t count = 0;
  for (const Framework& framework : frameworks_) {
    for (const auto& [agent, until] : framework.filters) count += until > t ? 1 : 0;
  }
  return count;
}

}  // namespace tessera::modules::drf
