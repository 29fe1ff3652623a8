// An example framework module (kind "framework"): keeps `tasks` copies of `command` running,
// each with `resources`, relaunching any that end. The framework host's tests load it as a .so;
// it is also the smallest complete example of a framework module.
//
// Parameters: tasks (default 1), command (default "sleep 1000"), resources (default
// "cpus:0.1;mem:32"), name (the FrameworkInfo name, default "sleep-framework"), user.
// Routes: GET /test/<module>/framework answers {"started", "subscribed", "framework_id",
// "launched", "active"}.
#include <boost/dll/alias.hpp>
#include <map>
#include <set>

#include "tessera/api/framework.h"
#include "tessera/api/module.h"
#include "tessera/api/resources.h"
#include "tessera/api/task_state.h"

namespace {

using tessera::api::Context;
using tessera::api::Module;
using tessera::api::Parameters;
using tessera::api::Result;
namespace v1 = tessera::v1;

class SleepFramework final : public tessera::api::Framework {
 public:
  SleepFramework(const Parameters& parameters, Context& context, tessera::api::Resources resources,
                 int tasks)
      : context_(context),
        tasks_(tasks),
        command_(parameters.getOr("command", "sleep 1000")),
        name_(parameters.getOr("name", "sleep-framework")),
        user_(parameters.getOr("user", "root")),
        resources_(std::move(resources)) {}

  static Result<std::unique_ptr<Module>> create(const Parameters& parameters, Context& context) {
    int tasks = std::stoi(parameters.getOr("tasks", "1"));
    if (tasks < 0) return tessera::api::invalidArgument("parameter 'tasks' must be >= 0");
    auto resources =
        tessera::api::Resources::parse(parameters.getOr("resources", "cpus:0.1;mem:32"));
    if (!resources) return resources.status();
    auto module =
        std::make_unique<SleepFramework>(parameters, context, std::move(resources).value(), tasks);
    auto routed =
        context.http().addRoute("GET", "/test/org_tessera_test_sleep_framework/framework",
                                [self = module.get()](const tessera::api::HttpRequest&,
                                                      tessera::api::HttpResponder respond) {
                                  respond(tessera::api::HttpResponse::json(200, self->stateJson()));
                                });
    if (!routed) return routed;
    return std::unique_ptr<Module>(std::move(module));
  }

  void start(tessera::api::SchedulerDriver& driver) override {
    driver_ = &driver;
    started_ = true;
    v1::FrameworkInfo info;
    info.set_user(user_);
    info.set_name(name_);
    info.set_failover_timeout(7 * 24 * 3600);
    info.add_roles()->assign(1, '*');  // not add_roles("*"): GCC 12 -Wrestrict false positive
    info.add_capabilities()->set_type(v1::FrameworkInfo::Capability::MULTI_ROLE);
    if (auto status = driver.subscribe(info, {}); !status) {
      context_.logger().log(tessera::api::Logger::Level::kError,
                            fmt::format("cannot subscribe: {}", status.message()));
    }
  }

  void stop() override { driver_ = nullptr; }

  void subscribed(const v1::FrameworkID& id, std::chrono::nanoseconds,
                  const v1::MasterInfo&) override {
    frameworkId_ = id.value();
    subscribed_ = true;
    driver_->reconcile({}, nullptr);
  }

  void offers(std::vector<v1::Offer> offers) override {
    for (const auto& offer : offers) {
      auto available = tessera::api::Resources::fromProto(offer.resources());
      std::vector<v1::Offer::Operation> operations;
      while (available && active_.size() < static_cast<size_t>(tasks_) &&
             available->contains(resources_)) {
        *available -= resources_;
        std::string id = fmt::format("sleep-{}", launched_++);
        active_.insert(id);
        v1::Offer::Operation operation;
        operation.set_type(v1::Offer::Operation::LAUNCH);
        auto* task = operation.mutable_launch()->add_task_infos();
        task->set_name(id);
        task->mutable_task_id()->set_value(id);
        *task->mutable_agent_id() = offer.agent_id();
        *task->mutable_resources() = resources_.toProto();
        task->mutable_command()->set_value(command_);
        operations.push_back(std::move(operation));
      }
      if (operations.empty()) {
        driver_->decline({offer.id()}, std::nullopt, nullptr);
      } else {
        driver_->accept({offer.id()}, std::move(operations), std::nullopt, nullptr);
      }
    }
  }

  void rescind(const v1::OfferID&) override {}

  void update(const v1::TaskStatus& status) override {
    if (status.has_uuid()) {
      driver_->acknowledge(status.agent_id(), status.task_id(), status.uuid(), nullptr);
    }
    if (tessera::api::isTerminal(status.state())) {
      active_.erase(status.task_id().value());
      driver_->revive({}, nullptr);  // a replacement is due
    }
  }

  void message(const v1::AgentID&, const v1::ExecutorID&, const std::string&) override {}
  void failure(const v1::AgentID&, const std::optional<v1::ExecutorID>&,
               std::optional<int>) override {}
  void error(std::string_view message) override {
    context_.logger().log(tessera::api::Logger::Level::kError,
                          fmt::format("framework removed: {}", message));
    subscribed_ = false;
  }
  void disconnected() override { subscribed_ = false; }

 private:
  std::string stateJson() const {
    return fmt::format(
        R"({{"started":{},"subscribed":{},"framework_id":"{}","launched":{},"active":{}}})",
        started_, subscribed_, frameworkId_, launched_, active_.size());
  }

  Context& context_;
  const int tasks_;
  const std::string command_;
  const std::string name_;
  const std::string user_;
  const tessera::api::Resources resources_;
  tessera::api::SchedulerDriver* driver_ = nullptr;
  bool started_ = false;
  bool subscribed_ = false;
  std::string frameworkId_;
  int launched_ = 0;
  std::set<std::string> active_;
};

const tessera::api::ModuleDescriptor kDescriptor{
    tessera::api::kApiVersion,
    TESSERA_BUILD_FINGERPRINT,
    "framework",
    "org_tessera_test_sleep_framework",
    "keeps N sleep tasks running (an example framework module)",
    "Tessera",
    &tessera::api::guardedFactory<&SleepFramework::create>};

}  // namespace

BOOST_DLL_ALIAS(kDescriptor, tessera_module_descriptor)
