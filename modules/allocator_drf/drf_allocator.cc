// The allocator's parameters, construction and lifecycle, its policy (weights, quota) and
// inspection. Shares and accounting: drf_shares.cc; frameworks, agents and what comes back
// from offers: drf_bookkeeping.cc; allocation runs: drf_offers.cc.

#include "modules/allocator_drf/drf_allocator.h"

#include <cmath>
#include <utility>

#include "modules/allocator_drf/drf_util.h"

namespace tessera::modules::drf {

using api::Resources;
using api::Status;
using detail::at;
using detail::kPrefix;

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
