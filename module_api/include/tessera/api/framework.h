#pragma once

/// The framework kind: a scheduler (Marathon, Chronos, a vendor's) hosted by Tessera, talking to
/// the master through the Mesos v1 scheduler API.
///
/// Modelled on the Mesos v1 scheduler library (`mesos::v1::scheduler::Mesos` and its callbacks,
/// include/mesos/v1/scheduler.hpp), split in two interfaces:
///
/// - `Scheduler` is what a framework implements: one method per v1 scheduler event, plus
///   disconnected() when the event stream is lost.
/// - `SchedulerDriver` is what the kernel provides: one method per v1 scheduler call. The kernel's
///   driver speaks the HTTP API (`POST /api/v1/scheduler`, RecordIO event stream with
///   `Mesos-Stream-Id`), follows redirects to the leading master, watches heartbeats and
///   re-subscribes with the FrameworkID it was given after a lost connection (failover).
///
/// A framework module derives from `Framework` (a Module and a Scheduler). The host creates the
/// instance (kind "framework"), makes a driver bound to the instance's executor and calls
/// start(driver); the module subscribes from there (`driver.subscribe(info)`). Its HTTP routes,
/// state store, timers and logger come through its Context, as for any module.
///
/// Threading. Every Scheduler method is called on the module's executor (`Context::executor()`),
/// one at a time. Every SchedulerDriver method must be called from that executor too, and
/// completion callbacks run there. Nothing is called re-entrantly: a driver method never calls
/// back into the Scheduler before it returns.
///
/// Lifetime. The driver outlives the instance: it stays valid until after the instance was
/// stopped and destroyed. The host stops the driver before it calls Module::stop(); from then
/// on no Scheduler method is called, calls fail with FailedPrecondition and pending completion
/// callbacks are dropped.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/api/module.h"
#include "tessera/api/status.h"
#include "tessera/api/visibility.h"
#include "tessera/v1/messages.pb.h"
#include "tessera/v1/scheduler.pb.h"

namespace tessera::api {

/// The framework's side of the scheduler API: the events of its subscription.
class TESSERA_API Scheduler {
 public:
  virtual ~Scheduler() = default;

  /// SUBSCRIBED: the master accepted the subscription (the first one or a re-subscription after
  /// a lost connection). `frameworkId` is the framework's id, to keep for failover; the master
  /// sends a HEARTBEAT at least every `heartbeatInterval`.
  virtual void subscribed(const v1::FrameworkID& frameworkId,
                          std::chrono::nanoseconds heartbeatInterval,
                          const v1::MasterInfo& master) = 0;

  /// OFFERS: resources offered to the framework. Each offer must be answered with accept() or
  /// decline() (or is rescinded).
  virtual void offers(std::vector<v1::Offer> offers) = 0;

  /// RESCIND: an offer is no longer valid; accepting it would fail.
  virtual void rescind(const v1::OfferID& offerId) = 0;

  /// UPDATE: a task's state changed. When `status.uuid()` is set the update is delivered
  /// reliably and must be acknowledged (acknowledge()) or it is sent again.
  virtual void update(const v1::TaskStatus& status) = 0;

  /// MESSAGE: opaque data from an executor.
  virtual void message(const v1::AgentID& agentId, const v1::ExecutorID& executorId,
                       const std::string& data) = 0;

  /// FAILURE: an agent was lost (no `executorId`) or an executor ended (`status` is its exit
  /// status when known).
  virtual void failure(const v1::AgentID& agentId, const std::optional<v1::ExecutorID>& executorId,
                       std::optional<int> status) = 0;

  /// ERROR: the master removed the framework (or refused its subscription, e.g. an invalid
  /// FrameworkInfo). The driver does not re-subscribe after an error.
  virtual void error(std::string_view message) = 0;

  /// The event stream was lost (connection closed, master gone, no heartbeat in time). The
  /// driver re-subscribes with the framework's id by itself; subscribed() follows once the
  /// master (perhaps a new leader) accepts it. Offers received before are void.
  virtual void disconnected() = 0;
};

/// Completes a call: ok when the master accepted it (202), else why not (Unavailable when it
/// could not be reached, FailedPrecondition when not subscribed, InvalidArgument with the
/// master's message for a 4xx). Runs on the framework's executor.
using CallCallback = std::function<void(Status)>;

/// The kernel's side of the scheduler API: the calls. Every method runs on the framework's
/// executor; calls are sent in the order they are made, each with the framework's id and the
/// stream id of the current subscription. A call made while not subscribed fails with
/// FailedPrecondition (through its callback) and is not queued.
class TESSERA_API SchedulerDriver {
 public:
  virtual ~SchedulerDriver() = default;

  /// SUBSCRIBE: opens the event stream. Set `info.id` to fail over to an earlier registration
  /// of the framework; the driver remembers the id from SUBSCRIBED and re-subscribes with it
  /// after a lost connection. `suppressedRoles` start suppressed. Errors: FailedPrecondition
  /// when already subscribing or stopped; InvalidArgument for a master address the driver
  /// cannot use (the message names it).
  [[nodiscard]] virtual Status subscribe(v1::FrameworkInfo info,
                                         std::vector<std::string> suppressedRoles = {}) = 0;

  /// ACCEPT: uses offers for `operations` (LAUNCH, RESERVE, ...); unused resources go back,
  /// refused for `filters.refuse_seconds` (Mesos's default 5s when absent).
  virtual void accept(std::vector<v1::OfferID> offerIds,
                      std::vector<v1::Offer::Operation> operations,
                      std::optional<v1::Filters> filters = std::nullopt,
                      CallCallback done = nullptr) = 0;

  /// DECLINE: gives offers back, refused for `filters.refuse_seconds`.
  virtual void decline(std::vector<v1::OfferID> offerIds,
                       std::optional<v1::Filters> filters = std::nullopt,
                       CallCallback done = nullptr) = 0;

  /// REVIVE: offers again in `roles` (every role of the framework when empty); clears filters.
  virtual void revive(std::vector<std::string> roles = {}, CallCallback done = nullptr) = 0;

  /// SUPPRESS: no offers in `roles` (every role when empty) until revive().
  virtual void suppress(std::vector<std::string> roles = {}, CallCallback done = nullptr) = 0;

  /// KILL: kills a task (its agent when known).
  virtual void kill(const v1::TaskID& taskId, const std::optional<v1::AgentID>& agentId,
                    CallCallback done = nullptr) = 0;

  /// ACKNOWLEDGE: acknowledges the status update `uuid` (the raw bytes of TaskStatus.uuid).
  virtual void acknowledge(const v1::AgentID& agentId, const v1::TaskID& taskId,
                           const std::string& uuid, CallCallback done = nullptr) = 0;

  /// RECONCILE: asks for the latest state of `tasks` (every task of the framework when empty);
  /// the answers come as update()s.
  virtual void reconcile(std::vector<v1::scheduler::Call::Reconcile::Task> tasks,
                         CallCallback done = nullptr) = 0;

  /// MESSAGE: sends opaque data to an executor.
  virtual void message(const v1::AgentID& agentId, const v1::ExecutorID& executorId,
                       const std::string& data, CallCallback done = nullptr) = 0;

  /// TEARDOWN: ends the framework: the master kills its tasks and forgets it. The driver does
  /// not re-subscribe afterwards.
  virtual void teardown(CallCallback done = nullptr) = 0;

  /// The framework's id once subscribed (kept across lost connections).
  virtual std::optional<v1::FrameworkID> frameworkId() const = 0;

  /// True while the event stream is open and SUBSCRIBED was received.
  virtual bool subscribed() const = 0;
};

/// What a framework module learns about its host: leadership among the hosts of the module
/// (`--zk`), where they serve the module's API, and a way to give leadership up. Without `--zk`
/// the one host always leads. Every method is thread-safe and returns at once; the object lives
/// as long as the instance.
class TESSERA_API FrameworkHost {
 public:
  virtual ~FrameworkHost() = default;

  /// True while this host leads: the module's scheduler runs (start() was called) and its routes
  /// are served here; false on a follower, whose host forwards the module's routes to the leader.
  virtual bool leading() const = 0;

  /// `host:port` of the leading host's API (this host's own when leading); nullopt while no
  /// leader is known.
  virtual std::optional<std::string> leaderAddress() const = 0;

  /// `host:port` at which this host serves the module's API (for `webui_url`, Marathon's
  /// /v2/info); empty when not known.
  virtual std::string advertisedAddress() const = 0;

  /// Gives leadership up (Marathon's DELETE /v2/leader): the host stops the driver, withdraws
  /// from the election and ends its process with status 0 shortly after, for a supervisor to
  /// start it again as a follower; another host takes over. Answer the request first: the
  /// process goes away after this call returns. Nothing happens on a host that does not lead,
  /// nor without `--zk` (there is no one to hand over to).
  virtual void abdicate() = 0;
};

/// The interface of modules of kind "framework".
class TESSERA_API Framework : public Module, public Scheduler {
 public:
  ~Framework() override = default;

  /// Called once by the host right after the factory, on the module's executor, before start()
  /// (which a follower's host calls only once it leads): the framework may keep `host`, valid
  /// until the instance is destroyed. The default ignores it.
  virtual void attached(FrameworkHost& host) { (void)host; }

  /// Called once by the host when it leads (at once without `--zk`), on the module's
  /// executor: the framework keeps `driver` (valid until after the instance is destroyed) and
  /// usually subscribes right away. Errors are the module's to log; the host does not retry.
  virtual void start(SchedulerDriver& driver) = 0;
};

/// The kernel owns framework instances through this.
using FrameworkPtr = std::unique_ptr<Framework>;

}  // namespace tessera::api
