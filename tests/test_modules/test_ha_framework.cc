// A framework module for the framework host's leadership tests: it subscribes when started
// (leaving FrameworkInfo.id and failover_timeout to its host), launches `tasks` sleep tasks once
// (the count launched is kept in its state store, so a new leader does not launch more), and
// counts its subscriptions in its store.
//
// Routes (under /ha/):
//   GET    /ha/whoami  {"address", "leading", "leader", "started", "subscribed", "framework_id",
//                       "subscriptions", "launched"}: the host that answers
//   POST   /ha/echo    {"method", "query", "body", "content_type", "address"}: what arrived
//   DELETE /ha/leader  abdicates (Marathon's DELETE /v2/leader)
//   GET    /ha/stream  Server-Sent Events: `event: hello` (data: the host's address) at once,
//                      then an `event: message` for each POST /ha/publish, ids 1, 2, ...
//   POST   /ha/publish the body as one event to every open /ha/stream; {"streams": N} (how many
//                      it went to)
//   GET    /ha/streams {"streams": N}: the /ha/stream responses this host has open
#include <boost/dll/alias.hpp>
#include <memory>
#include <vector>

#include "tessera/api/framework.h"
#include "tessera/api/http.h"
#include "tessera/api/module.h"
#include "tessera/api/resources.h"
#include "tessera/api/task_state.h"

namespace {

using tessera::api::Context;
using tessera::api::HttpRequest;
using tessera::api::HttpResponder;
using tessera::api::HttpResponse;
using tessera::api::HttpStreamWriter;
using tessera::api::Module;
using tessera::api::Parameters;
using tessera::api::Result;
using tessera::api::ServerSentEvent;
namespace v1 = tessera::v1;

std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out.push_back(c);
  }
  return out + "\"";
}

class HaFramework final : public tessera::api::Framework {
 public:
  HaFramework(Context& context, int tasks) : context_(context), tasks_(tasks) {}

  static Result<std::unique_ptr<Module>> create(const Parameters& parameters, Context& context) {
    int tasks = std::stoi(parameters.getOr("tasks", "0"));
    auto module = std::make_unique<HaFramework>(context, tasks);
    auto* self = module.get();
    auto& http = context.http();
    if (auto added = http.addRoute("GET", "/ha/whoami",
                                   [self](const HttpRequest&, HttpResponder respond) {
                                     respond(HttpResponse::json(200, self->whoami()));
                                   });
        !added) {
      return added;
    }
    if (auto added = http.addRoute("POST", "/ha/echo",
                                   [self](const HttpRequest& request, HttpResponder respond) {
                                     respond(HttpResponse::json(200, self->echo(request)));
                                   });
        !added) {
      return added;
    }
    if (auto added =
            http.addRoute("DELETE", "/ha/leader",
                          [self](const HttpRequest&, HttpResponder respond) {
                            if (self->host_ == nullptr || !self->host_->leading()) {
                              return respond(HttpResponse::error(404, "not leading"));
                            }
                            respond(HttpResponse::json(200, R"({"message":"abdicating"})"));
                            self->host_->abdicate();
                          });
        !added) {
      return added;
    }
    if (auto added = http.addStreamingRoute(
            "GET", "/ha/stream",
            [self](const HttpRequest&, std::shared_ptr<HttpStreamWriter> stream) {
              self->openStream(std::move(stream));
            });
        !added) {
      return added;
    }
    if (auto added = http.addRoute("POST", "/ha/publish",
                                   [self](const HttpRequest& request, HttpResponder respond) {
                                     size_t sent = self->publish(request.body);
                                     respond(HttpResponse::json(
                                         200, fmt::format(R"({{"streams":{}}})", sent)));
                                   });
        !added) {
      return added;
    }
    if (auto added = http.addRoute("GET", "/ha/streams",
                                   [self](const HttpRequest&, HttpResponder respond) {
                                     respond(HttpResponse::json(
                                         200, fmt::format(R"({{"streams":{}}})", self->prune())));
                                   });
        !added) {
      return added;
    }
    return std::unique_ptr<Module>(std::move(module));
  }

  void attached(tessera::api::FrameworkHost& host) override { host_ = &host; }

  void start(tessera::api::SchedulerDriver& driver) override {
    driver_ = &driver;
    started_ = true;
    // What the previous leader launched, then the subscription.
    context_.state().get("/launched", context_.executor(), [this](auto entry) {
      if (entry && *entry) {
        launched_ = std::stoi((*entry)->value);
        launchedVersion_ = (*entry)->version;
      }
      if (driver_ == nullptr) return;
      v1::FrameworkInfo info;
      info.set_user("root");
      info.set_name("ha-framework");
      info.add_roles()->assign(1, '*');
      info.add_capabilities()->set_type(v1::FrameworkInfo::Capability::MULTI_ROLE);
      if (auto status = driver_->subscribe(info, {}); !status) {
        context_.logger().log(tessera::api::Logger::Level::kError,
                              fmt::format("cannot subscribe: {}", status.message()));
      }
    });
  }

  void stop() override {
    driver_ = nullptr;
    for (auto& stream : streams_) stream->end();
    streams_.clear();
  }

  void subscribed(const v1::FrameworkID& id, std::chrono::nanoseconds,
                  const v1::MasterInfo&) override {
    frameworkId_ = id.value();
    subscribed_ = true;
    driver_->reconcile({}, nullptr);
    // Counts subscriptions across leaders: read, then compare-and-set.
    context_.state().get("/subscriptions", context_.executor(), [this](auto entry) {
      if (!entry) return;
      int count = *entry ? std::stoi((*entry)->value) : 0;
      uint64_t version = *entry ? (*entry)->version : 0;
      context_.state().set("/subscriptions", std::to_string(count + 1), version,
                           context_.executor(), [this, count](auto written) {
                             if (written) subscriptions_ = count + 1;
                           });
    });
  }

  void offers(std::vector<v1::Offer> offers) override {
    for (const auto& offer : offers) {
      if (launched_ >= tasks_ || launching_) {
        driver_->decline({offer.id()}, std::nullopt, nullptr);
        continue;
      }
      auto needed = tessera::api::Resources::parse("cpus:0.1;mem:16");
      auto available = tessera::api::Resources::fromProto(offer.resources());
      std::vector<v1::Offer::Operation> operations;
      int launching = launched_;
      while (available && needed && launching < tasks_ && available->contains(*needed)) {
        *available -= *needed;
        std::string id = fmt::format("ha-{}", launching++);
        v1::Offer::Operation operation;
        operation.set_type(v1::Offer::Operation::LAUNCH);
        auto* task = operation.mutable_launch()->add_task_infos();
        task->set_name(id);
        task->mutable_task_id()->set_value(id);
        *task->mutable_agent_id() = offer.agent_id();
        *task->mutable_resources() = needed->toProto();
        task->mutable_command()->set_value("sleep 1000");
        operations.push_back(std::move(operation));
      }
      if (operations.empty()) {
        driver_->decline({offer.id()}, std::nullopt, nullptr);
        continue;
      }
      // Kept before the launch: a new leader must not launch them again.
      launching_ = true;
      context_.state().set(
          "/launched", std::to_string(launching), launchedVersion_, context_.executor(),
          [this, launching, id = offer.id(), operations = std::move(operations)](auto written) {
            launching_ = false;
            if (!written || driver_ == nullptr) return;
            launchedVersion_ = *written;
            launched_ = launching;
            driver_->accept({id}, operations, std::nullopt, nullptr);
          });
    }
  }

  void rescind(const v1::OfferID&) override {}
  void update(const v1::TaskStatus& status) override {
    if (status.has_uuid()) {
      driver_->acknowledge(status.agent_id(), status.task_id(), status.uuid(), nullptr);
    }
  }
  void message(const v1::AgentID&, const v1::ExecutorID&, const std::string&) override {}
  void failure(const v1::AgentID&, const std::optional<v1::ExecutorID>&,
               std::optional<int>) override {}
  void error(std::string_view) override { subscribed_ = false; }
  void disconnected() override { subscribed_ = false; }

 private:
  void openStream(std::shared_ptr<HttpStreamWriter> stream) {
    stream->startEvents();
    ServerSentEvent hello;
    hello.event = "hello";
    hello.data = host_ ? host_->advertisedAddress() : "";
    stream->writeEvent(hello);
    // Closed (the client went): dropped at the next prune().
    streams_.push_back(std::move(stream));
  }

  size_t publish(const std::string& body) {
    prune();
    ServerSentEvent event;
    event.data = body;
    event.id = std::to_string(++published_);
    size_t sent = 0;
    for (auto& stream : streams_) {
      if (stream->writeEvent(event)) ++sent;
    }
    return sent;
  }

  // The open streams, closed ones dropped.
  size_t prune() {
    std::erase_if(streams_, [](const auto& stream) { return !stream->open(); });
    return streams_.size();
  }

  std::string whoami() const {
    std::optional<std::string> leader = host_ ? host_->leaderAddress() : std::nullopt;
    return fmt::format(R"({{"address":{},"leading":{},"leader":{},"started":{},"subscribed":{},)"
                       R"("framework_id":{},"subscriptions":{},"launched":{}}})",
                       quoted(host_ ? host_->advertisedAddress() : ""),
                       host_ != nullptr && host_->leading(), leader ? quoted(*leader) : "null",
                       started_, subscribed_, quoted(frameworkId_), subscriptions_, launched_);
  }

  std::string echo(const HttpRequest& request) const {
    return fmt::format(R"({{"method":{},"path":{},"query":{},"body":{},"content_type":{},)"
                       R"("address":{}}})",
                       quoted(request.method), quoted(request.path), quoted(request.query),
                       quoted(request.body), quoted(request.header("content-type").value_or("")),
                       quoted(host_ ? host_->advertisedAddress() : ""));
  }

  Context& context_;
  const int tasks_;
  tessera::api::FrameworkHost* host_ = nullptr;
  tessera::api::SchedulerDriver* driver_ = nullptr;
  bool started_ = false;
  bool subscribed_ = false;
  std::string frameworkId_;
  int subscriptions_ = 0;
  int launched_ = 0;
  uint64_t launchedVersion_ = 0;
  bool launching_ = false;
  std::vector<std::shared_ptr<HttpStreamWriter>> streams_;
  uint64_t published_ = 0;
};

const tessera::api::ModuleDescriptor kDescriptor{
    tessera::api::kApiVersion,
    TESSERA_BUILD_FINGERPRINT,
    "framework",
    "org_tessera_test_ha_framework",
    "a framework module for the framework host's leadership tests",
    "Tessera",
    &tessera::api::guardedFactory<&HaFramework::create>};

}  // namespace

BOOST_DLL_ALIAS(kDescriptor, tessera_module_descriptor)
