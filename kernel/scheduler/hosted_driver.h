#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernel/runtime/runtime.h"
#include "kernel/scheduler/driver.h"
#include "tessera/api/framework.h"

namespace tessera::kernel::scheduler {

/// What the framework host fills in and records around a module's subscription.
struct HostedDriverOptions {
  /// FrameworkInfo.id when the module subscribes without one: the id its host kept from an
  /// earlier subscription (this host's, or a previous leader's), so the master fails the
  /// framework over instead of registering a new one.
  std::optional<v1::FrameworkID> frameworkId;
  /// FrameworkInfo.failover_timeout when the module leaves it unset.
  std::chrono::seconds failoverTimeout{7 * 24 * 3600};
  /// FrameworkInfo.principal when the module leaves it unset.
  std::optional<std::string> principal;
  /// Called with the id of every SUBSCRIBED, before the module hears of it (to keep it).
  std::function<void(const v1::FrameworkID&)> recordFrameworkId;
};

/// The driver a hosted framework module gets: an HttpSchedulerDriver between the module and the
/// master that completes the module's FrameworkInfo with what its host knows (the kept
/// FrameworkID, failover_timeout, principal) and records the FrameworkID each SUBSCRIBED
/// carries. Every other call and event passes through unchanged.
///
/// Threading: as HttpSchedulerDriver, everything on the module's executor (the constructor
/// aside); stop() there before destroying it.
class HostedDriver final : public api::SchedulerDriver, private api::Scheduler {
 public:
  /// `runtime`, `executor` and `framework` must outlive the driver.
  HostedDriver(runtime::Runtime& runtime, api::Executor& executor, api::Framework& framework,
               DriverOptions driver, HostedDriverOptions options);
  ~HostedDriver() override;
  HostedDriver(const HostedDriver&) = delete;
  HostedDriver& operator=(const HostedDriver&) = delete;

  /// Replaces the id filled in on subscribe() (a new leader reads the latest one before it
  /// starts the module). On the executor, before subscribe().
  void setFrameworkId(std::optional<v1::FrameworkID> id) { options_.frameworkId = std::move(id); }

  api::Status subscribe(v1::FrameworkInfo info, std::vector<std::string> suppressedRoles) override;
  void accept(std::vector<v1::OfferID> offerIds, std::vector<v1::Offer::Operation> operations,
              std::optional<v1::Filters> filters, api::CallCallback done) override;
  void decline(std::vector<v1::OfferID> offerIds, std::optional<v1::Filters> filters,
               api::CallCallback done) override;
  void revive(std::vector<std::string> roles, api::CallCallback done) override;
  void suppress(std::vector<std::string> roles, api::CallCallback done) override;
  void kill(const v1::TaskID& taskId, const std::optional<v1::AgentID>& agentId,
            api::CallCallback done) override;
  void acknowledge(const v1::AgentID& agentId, const v1::TaskID& taskId, const std::string& uuid,
                   api::CallCallback done) override;
  void reconcile(std::vector<v1::scheduler::Call::Reconcile::Task> tasks,
                 api::CallCallback done) override;
  void message(const v1::AgentID& agentId, const v1::ExecutorID& executorId,
               const std::string& data, api::CallCallback done) override;
  void teardown(api::CallCallback done) override;
  std::optional<v1::FrameworkID> frameworkId() const override;
  bool subscribed() const override { return inner_->subscribed(); }

  /// Stops the inner driver (see HttpSchedulerDriver::stop()). Idempotent.
  void stop() { inner_->stop(); }
  /// The HTTP driver underneath.
  HttpSchedulerDriver& inner() { return *inner_; }

 private:
  // api::Scheduler: the inner driver's events, passed to the module.
  void subscribed(const v1::FrameworkID& frameworkId, std::chrono::nanoseconds heartbeatInterval,
                  const v1::MasterInfo& master) override;
  void offers(std::vector<v1::Offer> offers) override;
  void rescind(const v1::OfferID& offerId) override;
  void update(const v1::TaskStatus& status) override;
  void message(const v1::AgentID& agentId, const v1::ExecutorID& executorId,
               const std::string& data) override;
  void failure(const v1::AgentID& agentId, const std::optional<v1::ExecutorID>& executorId,
               std::optional<int> status) override;
  void error(std::string_view message) override;
  void disconnected() override;

  api::Framework& framework_;
  HostedDriverOptions options_;
  std::unique_ptr<HttpSchedulerDriver> inner_;
};

/// `Basic <base64(principal:secret)>`, the Authorization header for a master's Basic
/// authenticator.
std::string basicAuthorization(std::string_view principal, std::string_view secret);

}  // namespace tessera::kernel::scheduler
