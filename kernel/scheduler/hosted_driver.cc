#include "kernel/scheduler/hosted_driver.h"

#include <fmt/format.h>

#include "kernel/net/v1_json.h"

namespace tessera::kernel::scheduler {

std::string basicAuthorization(std::string_view principal, std::string_view secret) {
  return "Basic " + net::base64Encode(fmt::format("{}:{}", principal, secret));
}

HostedDriver::HostedDriver(runtime::Runtime& runtime, api::Executor& executor,
                           api::Framework& framework, DriverOptions driver,
                           HostedDriverOptions options)
    : framework_(framework),
      options_(std::move(options)),
      inner_(std::make_unique<HttpSchedulerDriver>(
          runtime, executor, static_cast<api::Scheduler&>(*this), std::move(driver))) {}

HostedDriver::~HostedDriver() = default;

api::Status HostedDriver::subscribe(v1::FrameworkInfo info,
                                    std::vector<std::string> suppressedRoles) {
  if (!info.has_id() && options_.frameworkId) *info.mutable_id() = *options_.frameworkId;
  if (!info.has_failover_timeout()) {
    info.set_failover_timeout(static_cast<double>(options_.failoverTimeout.count()));
  }
  if (!info.has_principal() && options_.principal) info.set_principal(*options_.principal);
  return inner_->subscribe(std::move(info), std::move(suppressedRoles));
}

void HostedDriver::accept(std::vector<v1::OfferID> offerIds,
                          std::vector<v1::Offer::Operation> operations,
                          std::optional<v1::Filters> filters, api::CallCallback done) {
  inner_->accept(std::move(offerIds), std::move(operations), std::move(filters), std::move(done));
}
void HostedDriver::decline(std::vector<v1::OfferID> offerIds, std::optional<v1::Filters> filters,
                           api::CallCallback done) {
  inner_->decline(std::move(offerIds), std::move(filters), std::move(done));
}
void HostedDriver::revive(std::vector<std::string> roles, api::CallCallback done) {
  inner_->revive(std::move(roles), std::move(done));
}
void HostedDriver::suppress(std::vector<std::string> roles, api::CallCallback done) {
  inner_->suppress(std::move(roles), std::move(done));
}
void HostedDriver::kill(const v1::TaskID& taskId, const std::optional<v1::AgentID>& agentId,
                        api::CallCallback done) {
  inner_->kill(taskId, agentId, std::move(done));
}
void HostedDriver::acknowledge(const v1::AgentID& agentId, const v1::TaskID& taskId,
                               const std::string& uuid, api::CallCallback done) {
  inner_->acknowledge(agentId, taskId, uuid, std::move(done));
}
void HostedDriver::reconcile(std::vector<v1::scheduler::Call::Reconcile::Task> tasks,
                             api::CallCallback done) {
  inner_->reconcile(std::move(tasks), std::move(done));
}
void HostedDriver::message(const v1::AgentID& agentId, const v1::ExecutorID& executorId,
                           const std::string& data, api::CallCallback done) {
  inner_->message(agentId, executorId, data, std::move(done));
}
void HostedDriver::teardown(api::CallCallback done) { inner_->teardown(std::move(done)); }

std::optional<v1::FrameworkID> HostedDriver::frameworkId() const {
  if (auto id = inner_->frameworkId()) return id;
  return options_.frameworkId;
}

void HostedDriver::subscribed(const v1::FrameworkID& frameworkId,
                              std::chrono::nanoseconds heartbeatInterval,
                              const v1::MasterInfo& master) {
  options_.frameworkId = frameworkId;
  if (options_.recordFrameworkId) options_.recordFrameworkId(frameworkId);
  framework_.subscribed(frameworkId, heartbeatInterval, master);
}
void HostedDriver::offers(std::vector<v1::Offer> offers) { framework_.offers(std::move(offers)); }
void HostedDriver::rescind(const v1::OfferID& offerId) { framework_.rescind(offerId); }
void HostedDriver::update(const v1::TaskStatus& status) { framework_.update(status); }
void HostedDriver::message(const v1::AgentID& agentId, const v1::ExecutorID& executorId,
                           const std::string& data) {
  framework_.message(agentId, executorId, data);
}
void HostedDriver::failure(const v1::AgentID& agentId,
                           const std::optional<v1::ExecutorID>& executorId,
                           std::optional<int> status) {
  framework_.failure(agentId, executorId, status);
}
void HostedDriver::error(std::string_view message) { framework_.error(message); }
void HostedDriver::disconnected() { framework_.disconnected(); }

}  // namespace tessera::kernel::scheduler
