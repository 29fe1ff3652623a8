#include "modules/framework_marathon/scheduler.h"

namespace tessera::modules::marathon {

class AppScheduler::Impl {
 public:
  Impl(api::Context& context, Options options) : context_(context), options_(std::move(options)) {}

  api::Context& context_;
  Options options_;
};

AppScheduler::AppScheduler(api::Context& context, Options options)
    : impl_(std::make_unique<Impl>(context, std::move(options))) {}
AppScheduler::~AppScheduler() = default;

void AppScheduler::start(api::SchedulerDriver&, std::vector<App>) {}
void AppScheduler::stop() {}
void AppScheduler::subscribed(const v1::FrameworkID&) {}
void AppScheduler::offers(std::vector<v1::Offer>) {}
void AppScheduler::rescind(const v1::OfferID&) {}
void AppScheduler::update(const v1::TaskStatus&) {}
void AppScheduler::failure(const v1::AgentID&) {}
void AppScheduler::disconnected() {}

api::Result<Deployment> AppScheduler::deploy(std::vector<App>, std::vector<std::string>,
                                             std::vector<std::string>, bool) {
  return api::Status(api::StatusCode::kUnimplemented, "deployments are not implemented yet");
}
api::Result<Deployment> AppScheduler::cancel(std::string_view id) {
  return api::notFound("unknown deployment '{}'", id);
}
std::vector<Deployment> AppScheduler::deployments() const { return {}; }
api::Result<std::vector<App>> AppScheduler::killTasks(const std::vector<std::string>&, bool, bool) {
  return std::vector<App>{};
}
std::vector<Task> AppScheduler::tasks() const { return {}; }
std::vector<Task> AppScheduler::tasks(std::string_view) const { return {}; }
AppCounts AppScheduler::counts(std::string_view) const { return {}; }
std::vector<std::string> AppScheduler::deploymentsOf(std::string_view) const { return {}; }
std::vector<QueueEntry> AppScheduler::queue() const { return {}; }
bool AppScheduler::resetDelay(std::string_view) { return false; }

}  // namespace tessera::modules::marathon
