#pragma once

#include <cassert>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "modules/allocator_drf/drf_sorter.h"
#include "tessera/api/allocator.h"
#include "tessera/api/executor.h"
#include "tessera/api/logger.h"
#include "tessera/api/metrics.h"
#include "tessera/api/module.h"

namespace tessera::modules::drf {

/// Module parameters (modules.json `parameters`), see README.md.
struct DrfParameters {
  std::chrono::nanoseconds allocationInterval = std::chrono::seconds(1);
  std::vector<std::string> fairnessExcludedResourceNames;
  /// Parses `allocation_interval` (a Mesos duration, tessera/api/duration.h) and
  /// `fair_sharing_excluded_resource_names` (comma-separated). Errors: InvalidArgument naming the
  /// parameter, also for a parameter it does not know.
  static api::Result<DrfParameters> parse(const api::Parameters& parameters);
};

/// Hierarchical DRF allocator (roles first, then frameworks within a role), with weights,
/// quota (guarantees and limits, with headroom held back), reservations, DECLINE filters and
/// SUPPRESS/REVIVE. See README.md for the data structures. Runs on one executor; no locks.
class DrfAllocator final : public api::Allocator {
 public:
  /// The module factory: reads the parameters, binds to the context's executor, metrics and
  /// logger. Errors: InvalidArgument for a bad parameter.
  static api::Result<std::unique_ptr<api::Module>> create(const api::Parameters& parameters,
                                                          api::Context& context);

  /// `metrics` and `logger` may be null (tests, benchmarks). All three outlive the instance.
  DrfAllocator(api::Executor& executor, api::Metrics* metrics, api::Logger* logger,
               DrfParameters parameters = {});
  ~DrfAllocator() override;

  void stop() override;

  api::Status initialize(api::AllocatorOptions options) override;
  api::Status addFramework(std::string_view frameworkId, const api::FrameworkOptions& options,
                           std::span<const api::Allocation> used, bool active) override;
  api::Status removeFramework(std::string_view frameworkId) override;
  api::Status activateFramework(std::string_view frameworkId) override;
  api::Status deactivateFramework(std::string_view frameworkId) override;
  api::Status updateFramework(std::string_view frameworkId,
                              const api::FrameworkOptions& options) override;
  api::Status addAgent(std::string_view agentId, const api::Resources& total,
                       std::span<const api::Allocation> used) override;
  api::Status removeAgent(std::string_view agentId) override;
  api::Status updateAgent(std::string_view agentId, const api::Resources& total) override;
  api::Status activateAgent(std::string_view agentId) override;
  api::Status deactivateAgent(std::string_view agentId) override;
  api::Status recoverResources(std::string_view frameworkId, std::string_view agentId,
                               const api::Resources& resources,
                               std::optional<std::chrono::nanoseconds> refuseFor) override;
  api::Status suppressOffers(std::string_view frameworkId,
                             std::span<const std::string> roles) override;
  api::Status reviveOffers(std::string_view frameworkId,
                           std::span<const std::string> roles) override;
  api::Status updateAllocation(std::string_view frameworkId, std::string_view agentId,
                               std::span<const api::ReservationOperation> operations) override;
  api::Status updateWeights(const std::map<std::string, double>& weights) override;
  api::Status updateQuota(std::string_view role, const api::Resources& guarantee,
                          const api::Resources& limit) override;
  void allocate() override;
  api::AllocationRunStats allocateNow() override;

  // --- Inspection, for tests and gauges ---------------------------------------------------

  /// What is not allocated on an agent (empty if unknown).
  api::Resources availableForTest(std::string_view agentId) const;
  /// Everything allocated (offered or in use) on an agent, all frameworks and roles.
  api::Resources allocatedForTest(std::string_view agentId) const;
  /// The agent's total (empty if unknown).
  api::Resources totalForTest(std::string_view agentId) const;
  /// A role's dominant share as the sorter sees it (weighted), 0 if unknown.
  double roleShareForTest(std::string_view role);
  /// Unexpired DECLINE filters.
  size_t activeFiltersForTest() const;
  /// True if an allocation run is queued on the executor.
  bool runScheduledForTest() const { return runScheduled_; }

 private:
  using Clock = std::chrono::steady_clock;
  using Scalars = std::vector<int64_t>;

  struct Member {
    Scalars allocated;  // scalars this framework holds in the role, all agents
  };
  struct Role {
    std::string name;
    double weight = 1;
    Scalars allocated;            // all scalars allocated to the role
    Scalars allocatedUnreserved;  // the unreserved part of `allocated`
    Scalars reserved;             // reservations to the role on all agents (quota consumption)
    Scalars guarantee;
    Scalars limit;
    bool hasGuarantee = false;
    bool hasLimit = false;
    std::unordered_map<uint32_t, Member> members;  // framework index -> its allocation here
    DrfSorter frameworks;  // members that are known, active and not suppressed in this role
  };
  struct Framework {
    std::string id;
    bool known = false;  // added (or only seen in an agent's `used`)
    bool active = false;
    std::vector<uint32_t> roles;
    std::vector<uint32_t> suppressed;
    std::unordered_map<uint32_t, Clock::time_point> filters;  // agent index -> until
    std::vector<api::Offer> pending;                          // offers of the run in progress
    size_t lastOffers = 0;  // how many the last run made: reserved up front
  };
  struct AgentAllocation {
    uint32_t framework;
    uint32_t role;
    api::Resources resources;
  };
  struct Agent {
    std::string id;
    bool present = false;
    bool active = false;
    bool hasReservations = false;
    bool dirty = false;
    api::Resources total;
    api::Resources available;
    std::vector<AgentAllocation> allocations;
  };
  enum class Stage { kGuarantees, kAll };

  Clock::time_point now() const;
  // Every entry point runs on the allocator's executor (the house rule instead of locks).
  void assertOnStrand() const { assert(executor_.runningInThisThread()); }
  uint32_t nameIndex(std::string_view name);
  void addScalars(Scalars& into, const api::Resources& resources, int64_t sign,
                  bool unreservedOnly);
  // The scalar entries of `resources` as (name index, millis, reserved), computed once per
  // offer and applied to the role's and member's vectors.
  struct ScalarItem {
    uint32_t name;
    int64_t millis;
    bool reserved;
  };
  void scalarItems(const api::Resources& resources, std::vector<ScalarItem>& out);
  std::vector<ScalarItem> items_;  // scratch for track()
  double shareOf(const Scalars& allocated) const;
  double roleShare(const Role& role) const { return shareOf(role.allocated) / role.weight; }

  uint32_t roleIndex(std::string_view role);
  uint32_t frameworkIndex(std::string_view id);
  Framework* findFramework(std::string_view id);
  // The role indexes `roles` names (all the framework's roles when empty). Errors:
  // InvalidArgument for a role the framework does not subscribe to.
  api::Result<std::vector<uint32_t>> subscribedRoles(const Framework& framework,
                                                     std::string_view frameworkId,
                                                     std::span<const std::string> roles) const;
  Agent* findAgent(std::string_view id, uint32_t* index = nullptr);
  api::Status validateOptions(std::string_view frameworkId,
                              const api::FrameworkOptions& options) const;
  void setFrameworkRoles(uint32_t fw, const api::FrameworkOptions& options);
  bool isSuppressed(const Framework& framework, uint32_t role) const;
  // Puts the framework into (or out of) the role's sorter, and the role into (or out of) the
  // role sorter, to match their state.
  void refreshMembership(uint32_t fw, uint32_t role);
  void refreshFramework(uint32_t fw);
  void refreshRoleInSorter(uint32_t role);
  void recomputeShares();

  // Records `resources` as allocated (sign +1) or released (-1) to (fw, role) on an agent:
  // the agent's records, the role's and member's scalars, the sorters. Leaves
  // `agent.available` alone.
  void track(uint32_t agentIndex, uint32_t fw, uint32_t role, const api::Resources& resources,
             int sign);
  void accountReservations(const api::Resources& resources, int64_t sign);
  void releaseAllOnAgent(uint32_t agentIndex, uint32_t fw);
  bool holdsOn(const Agent& agent, uint32_t fw) const;

  void requestAgent(uint32_t agentIndex);
  void requestAll();
  void scheduleRun();
  void armTimer();
  api::AllocationRunStats run(bool full);
  void allocateAgent(uint32_t agentIndex, Stage stage, Clock::time_point now,
                     api::AllocationRunStats& stats);
  bool filtered(Framework& framework, uint32_t agentIndex, Clock::time_point now);
  // Cuts unreserved scalars of `offer` to what `role` may take; returns false if the
  // stage-1 offer contains nothing the role is guaranteed.
  bool shape(api::Resources& offer, uint32_t role, Stage stage);
  void commit(uint32_t agentIndex, uint32_t fw, uint32_t role, api::Resources offer);
  void deliver(api::AllocationRunStats& stats);
  void registerRoleGauges(uint32_t role);

  api::Executor& executor_;
  api::Metrics* metrics_;
  api::Logger* logger_;
  DrfParameters parameters_;
  api::AllocatorOptions options_;
  bool initialized_ = false;
  bool stopped_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  std::vector<std::string> scalarNames_;
  std::vector<bool> excluded_;  // per scalar name: left out of shares
  Scalars totals_;              // all present agents
  bool sharesDirty_ = false;

  std::vector<Role> roles_;
  std::unordered_map<std::string, uint32_t> roleIndex_;
  DrfSorter roleSorter_;  // roles with at least one framework in their sorter

  std::vector<Framework> frameworks_;
  std::unordered_map<std::string, uint32_t> frameworkIndex_;

  std::vector<Agent> agents_;
  std::unordered_map<std::string, uint32_t> agentIndex_;
  std::vector<uint32_t> freeAgents_;
  size_t agentCount_ = 0;

  // Pending work.
  bool runScheduled_ = false;
  bool allDirty_ = false;
  std::vector<uint32_t> dirtyAgents_;
  Clock::time_point requestedAt_{};
  std::unique_ptr<api::TimerHandle> timer_;

  // Per-run quota state (only when some role has quota).
  bool quotaInRun_ = false;
  size_t quotaRoles_ = 0;          // roles with a guarantee or a limit
  Scalars unreservedAvailable_;    // unreserved, unallocated, on active agents
  Scalars requiredHeadroom_;       // sum over roles of unmet guarantees
  std::vector<Scalars> unmet_;     // per role: guarantee - consumed, floored at 0
  std::vector<uint32_t> touched_;  // frameworks with pending offers

  api::Counter* runs_ = nullptr;
  api::Timer* runTimer_ = nullptr;
  api::Timer* latencyTimer_ = nullptr;
};

}  // namespace tessera::modules::drf
