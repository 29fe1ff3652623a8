#pragma once

/// The allocator kind: decides which framework is offered which agent's resources.
///
/// Modelled on Mesos's `mesos::allocator::Allocator` (include/mesos/allocator/allocator.hpp),
/// reduced to what the master needs and written in Tessera's style: IDs are strings (agent
/// ids, framework ids, role names), resources are `api::Resources`, errors are `api::Status`.
///
/// Threading. The kernel creates the instance on the allocator's own executor (its strand,
/// `Context::executor()`) and calls every method below only from there; an implementation
/// keeps no locks and may assert `executor().runningInThisThread()`. The offer callback is
/// invoked from that same executor; the master posts what it receives to its own strand.
///
/// Accounting. The allocator counts offered resources as allocated (as Mesos does): what it
/// hands to the offer callback stays allocated to that framework until the master gives it
/// back with recoverResources() (declined, rescinded, or a task ended), or the framework or
/// agent is removed. For every agent, allocated + available = total at all times.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/api/module.h"
#include "tessera/api/resources.h"
#include "tessera/api/status.h"
#include "tessera/api/visibility.h"

namespace tessera::api {

/// One offer: resources of one agent, allocatable to one role of the framework it goes to.
struct Offer {
  std::string role;
  std::string agentId;
  Resources resources;
};

/// Receives the offers of one allocation run for one framework, each (role, agent) pair at
/// most once; the offers are the callee's to keep. Called on the allocator's executor, at most
/// once per framework per run, after the run's accounting is complete (so the callee may post
/// back into the allocator, e.g. recoverResources(), without surprises). Must not block; must
/// not call the allocator re-entrantly (post instead).
using OfferCallback = std::function<void(std::string_view frameworkId, std::vector<Offer> offers)>;

/// The allocator's clock; monotonic. Injected so tests can drive filter expiry without sleeping.
using AllocatorClock = std::function<std::chrono::steady_clock::time_point()>;

/// What initialize() needs.
struct AllocatorOptions {
  /// How often a full allocation run happens; zero means the module's own default (for
  /// allocator_drf its `allocation_interval` parameter, 1s unless set).
  std::chrono::nanoseconds allocationInterval{0};
  /// Where offers go; required.
  OfferCallback offerCallback;
  /// Time source for filters and metrics; std::chrono::steady_clock::now when empty.
  AllocatorClock clock;
  /// Scalar resource names left out of dominant-share computation (Mesos's
  /// `--fair_sharing_excluded_resource_names`, e.g. "gpus").
  std::vector<std::string> fairnessExcludedResourceNames;
  /// When false, no periodic timer is armed and nothing is scheduled after events: runs
  /// happen only through allocate() / allocateNow(). For tests and benchmarks.
  bool automaticRuns = true;
};

/// How a framework takes part in allocation.
struct FrameworkOptions {
  /// The roles it subscribes to; non-empty, each a valid role ("*", Mesos's default, is offered
  /// unreserved resources only).
  std::vector<std::string> roles;
  /// Roles (a subset of `roles`) it is suppressed in from the start (Mesos v1 SUBSCRIBE's
  /// `suppressed_roles`).
  std::set<std::string, std::less<>> suppressedRoles;
};

/// Resources already in use when an agent or a framework is added (after a master failover):
/// what `frameworkId` holds on `agentId`, allocated under `role`.
struct Allocation {
  std::string frameworkId;
  std::string agentId;
  std::string role;
  Resources resources;
};

/// A reservation change the master applied to offered resources (Mesos's RESERVE and
/// UNRESERVE offer operations).
struct ReservationOperation {
  enum class Type { kReserve, kUnreserve };
  Type type = Type::kReserve;
  /// What the framework was offered and is converting (unreserved for kReserve).
  Resources from;
  /// What it becomes (reserved to the framework's role for kReserve; unreserved for
  /// kUnreserve). Must have the same amounts as `from` (`from.flatten() == to.flatten()`).
  Resources to;
};

/// What one allocation run did; returned by allocateNow() for tests and benchmarks.
struct AllocationRunStats {
  /// Agents looked at.
  size_t agentsVisited = 0;
  /// (framework, role, agent) offers made.
  size_t offersMade = 0;
  /// Frameworks the callback was called for.
  size_t frameworksOffered = 0;
};

/// The master-facing allocator interface. Implementations are modules of kind "allocator";
/// the master uses the one named by `--allocator`.
///
/// Every method runs on the allocator's executor. Unless stated otherwise a method that
/// returns an error has changed nothing. Unknown ids are NotFound, duplicates AlreadyExists,
/// malformed input InvalidArgument, calls before initialize() FailedPrecondition.
class TESSERA_API Allocator : public Module {
 public:
  ~Allocator() override = default;

  /// Starts the allocator: stores the options and arms the periodic allocation timer. Call
  /// once, before anything else. Errors: FailedPrecondition if already initialized;
  /// InvalidArgument if there is no offer callback or the interval is negative.
  [[nodiscard]] virtual Status initialize(AllocatorOptions options) = 0;

  // --- Frameworks -------------------------------------------------------------------------

  /// Adds a framework taking part in allocation under `options.roles`. `used` lists what it
  /// already holds (after a failover); entries for agents not yet added are ignored, and
  /// entries for agents that already reported this framework's usage in addAgent() are not
  /// counted twice. An inactive framework keeps its allocation but gets no offers; an active
  /// one triggers an allocation run (its first offers do not wait for the periodic run).
  /// Errors: AlreadyExists; InvalidArgument for no roles, an invalid role, a used
  /// entry naming another framework, or a suppressed role it does not subscribe to.
  [[nodiscard]] virtual Status addFramework(std::string_view frameworkId,
                                            const FrameworkOptions& options,
                                            std::span<const Allocation> used, bool active) = 0;

  /// Removes a framework: everything allocated to it returns to its agents (which are then
  /// allocated again), its filters are dropped. Errors: NotFound.
  [[nodiscard]] virtual Status removeFramework(std::string_view frameworkId) = 0;

  /// Makes a framework eligible for offers again (it re-subscribed). Errors: NotFound.
  [[nodiscard]] virtual Status activateFramework(std::string_view frameworkId) = 0;

  /// Stops offers to a framework (it disconnected) without touching what it holds; its
  /// filters are dropped (Mesos does the same), suppression is kept. Errors: NotFound.
  [[nodiscard]] virtual Status deactivateFramework(std::string_view frameworkId) = 0;

  /// Replaces a framework's roles and suppressed roles (Mesos's UPDATE_FRAMEWORK). Resources
  /// it holds in a role it leaves stay allocated, and counted, until recovered.
  /// Errors: NotFound; InvalidArgument as in addFramework().
  [[nodiscard]] virtual Status updateFramework(std::string_view frameworkId,
                                               const FrameworkOptions& options) = 0;

  // --- Agents -----------------------------------------------------------------------------

  /// Adds an agent with `total` resources, of which `used` are held already by frameworks
  /// (which need not have been added yet). Triggers an allocation run for it.
  /// Errors: AlreadyExists; InvalidArgument if `used` names another agent or an invalid
  /// role, or is not contained in `total`.
  [[nodiscard]] virtual Status addAgent(std::string_view agentId, const Resources& total,
                                        std::span<const Allocation> used) = 0;

  /// Removes an agent and everything allocated on it; filters for it are dropped.
  /// Errors: NotFound.
  [[nodiscard]] virtual Status removeAgent(std::string_view agentId) = 0;

  /// Replaces an agent's total (it re-registered with other resources). What is allocated is
  /// kept. Errors: NotFound; FailedPrecondition if the new total does not contain what is
  /// allocated on the agent.
  [[nodiscard]] virtual Status updateAgent(std::string_view agentId, const Resources& total) = 0;

  /// Makes an agent's resources offerable again (maintenance ended, it reconnected).
  /// Errors: NotFound.
  [[nodiscard]] virtual Status activateAgent(std::string_view agentId) = 0;

  /// Stops offering an agent's resources (maintenance, unreachable); its allocations stay.
  /// Errors: NotFound.
  [[nodiscard]] virtual Status deactivateAgent(std::string_view agentId) = 0;

  // --- Offers and their outcome -----------------------------------------------------------

  /// Gives resources allocated to a framework on an agent back (offer declined or rescinded,
  /// task finished). With `refuseFor` > 0 the framework is also not offered that agent again
  /// for that long (a DECLINE filter; Mesos's default `refuse_seconds` is 5s, which the
  /// master passes when the framework gives none; nullopt or 0 means no filter). Unknown
  /// framework or agent ids are ignored and answer ok, as in Mesos: the master may recover
  /// after a removal. Errors: InvalidArgument if `resources` is not part of what the
  /// framework holds on the agent, or `refuseFor` is negative.
  [[nodiscard]] virtual Status recoverResources(
      std::string_view frameworkId, std::string_view agentId, const Resources& resources,
      std::optional<std::chrono::nanoseconds> refuseFor) = 0;

  /// Stops offers to a framework in `roles` (all its roles if empty): SUPPRESS.
  /// Errors: NotFound; InvalidArgument for a role it does not subscribe to.
  [[nodiscard]] virtual Status suppressOffers(std::string_view frameworkId,
                                              std::span<const std::string> roles) = 0;

  /// Resumes offers to a framework in `roles` (all its roles if empty) and clears all of its
  /// filters: REVIVE. Triggers an allocation run. Errors: as suppressOffers().
  [[nodiscard]] virtual Status reviveOffers(std::string_view frameworkId,
                                            std::span<const std::string> roles) = 0;

  /// Applies RESERVE/UNRESERVE operations to resources a framework was offered on an agent
  /// and still holds: they stay allocated to it, in their new form. All or nothing.
  /// Errors: NotFound for an unknown framework or agent; InvalidArgument if an operation's
  /// `from` is not held by the framework there, or its `to` differs in amounts.
  [[nodiscard]] virtual Status updateAllocation(
      std::string_view frameworkId, std::string_view agentId,
      std::span<const ReservationOperation> operations) = 0;

  // --- Policy ----------------------------------------------------------------------------

  /// Sets role weights (`--weights=role=2,...`); roles not listed keep theirs (default 1).
  /// Errors: InvalidArgument for an invalid role or a weight that is not finite and > 0.
  [[nodiscard]] virtual Status updateWeights(const std::map<std::string, double>& weights) = 0;

  /// Sets a role's quota: `guarantee` is offered to it before other roles get anything that
  /// would leave the guarantee unmeetable; `limit` is never exceeded (empty: no limit). Both
  /// scalar only; an empty guarantee and limit remove the quota. Errors: InvalidArgument for
  /// an invalid role, non-scalar or reserved resources, or a guarantee above the limit.
  [[nodiscard]] virtual Status updateQuota(std::string_view role, const Resources& guarantee,
                                           const Resources& limit) = 0;

  // --- Running allocation -----------------------------------------------------------------

  /// Asks for a full allocation run soon, on the executor; several requests before it runs
  /// make one run.
  virtual void allocate() = 0;

  /// Runs a full allocation run now, synchronously, on the calling (the allocator's)
  /// executor; offers are delivered before it returns. Also runs any pending incremental
  /// request. For tests, benchmarks and tools.
  virtual AllocationRunStats allocateNow() = 0;
};

/// The kernel owns allocator instances through this.
using AllocatorPtr = std::unique_ptr<Allocator>;

}  // namespace tessera::api
