#pragma once

// Fakes for the Marathon scheduling engine's unit tests: a SchedulerDriver that records every
// call, a Context whose executor runs posted work at once and keeps timers until the test fires
// them, and a clock the test moves (AppScheduler::Options::now).

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernel/state/memory_store.h"
#include "modules/framework_marathon/scheduler.h"
#include "tessera/api/framework.h"
#include "tessera/api/module.h"
#include "tessera/api/resources.h"
#include "tests/support/module_context.h"

namespace tessera::modules::marathon::testing {

class FakeDriver final : public api::SchedulerDriver {
 public:
  struct Accept {
    std::vector<v1::OfferID> offers;
    std::vector<v1::Offer::Operation> operations;
    std::optional<v1::Filters> filters;
    api::CallCallback done;
  };
  struct Decline {
    std::vector<v1::OfferID> offers;
    std::optional<v1::Filters> filters;
  };

  api::Status subscribe(v1::FrameworkInfo, std::vector<std::string>) override {
    return api::Status::ok();
  }
  void accept(std::vector<v1::OfferID> offerIds, std::vector<v1::Offer::Operation> operations,
              std::optional<v1::Filters> filters, api::CallCallback done) override {
    accepts.push_back({std::move(offerIds), std::move(operations), filters, std::move(done)});
  }
  void decline(std::vector<v1::OfferID> offerIds, std::optional<v1::Filters> filters,
               api::CallCallback) override {
    declines.push_back({std::move(offerIds), filters});
  }
  void revive(std::vector<std::string>, api::CallCallback) override { ++revives; }
  void suppress(std::vector<std::string>, api::CallCallback) override { ++suppresses; }
  void kill(const v1::TaskID& taskId, const std::optional<v1::AgentID>&,
            api::CallCallback) override {
    kills.push_back(taskId.value());
  }
  void acknowledge(const v1::AgentID&, const v1::TaskID& taskId, const std::string&,
                   api::CallCallback) override {
    acks.push_back(taskId.value());
  }
  void reconcile(std::vector<v1::scheduler::Call::Reconcile::Task> tasks,
                 api::CallCallback) override {
    reconciles.push_back(tasks.size());
  }
  void message(const v1::AgentID&, const v1::ExecutorID&, const std::string&,
               api::CallCallback) override {}
  void teardown(api::CallCallback) override {}
  std::optional<v1::FrameworkID> frameworkId() const override { return std::nullopt; }
  bool subscribed() const override { return true; }

  /// Every task launched so far, in order.
  std::vector<v1::TaskInfo> launched() const {
    std::vector<v1::TaskInfo> out;
    for (const auto& accept : accepts) {
      for (const auto& operation : accept.operations) {
        for (const auto& task : operation.launch().task_infos()) out.push_back(task);
      }
    }
    return out;
  }

  std::vector<Accept> accepts;
  std::vector<Decline> declines;
  std::vector<std::string> kills;
  std::vector<std::string> acks;
  std::vector<size_t> reconciles;  // how many tasks each reconcile named (0: implicit)
  int revives = 0;
  int suppresses = 0;
};

class FakeExecutor final : public api::Executor {
 public:
  struct Pending {
    std::chrono::nanoseconds delay;
    std::function<void()> fn;
    std::shared_ptr<bool> cancelled;
  };
  class Handle final : public api::TimerHandle {
   public:
    explicit Handle(std::shared_ptr<bool> cancelled) : cancelled_(std::move(cancelled)) {}
    void cancel() override { *cancelled_ = true; }

   private:
    std::shared_ptr<bool> cancelled_;
  };

  void post(std::function<void()> fn) override { fn(); }
  bool runningInThisThread() const override { return true; }
  std::unique_ptr<api::TimerHandle> schedule(std::chrono::nanoseconds delay,
                                             std::function<void()> fn) override {
    auto cancelled = std::make_shared<bool>(false);
    timers.push_back({delay, std::move(fn), cancelled});
    return std::make_unique<Handle>(cancelled);
  }
  api::Status runBlocking(std::function<void()> work, std::function<void()> done) override {
    work();
    done();
    return api::Status::ok();
  }
  /// Runs every timer scheduled so far that was not cancelled; returns how many ran.
  int fireTimers() {
    auto due = std::move(timers);
    timers.clear();
    int ran = 0;
    for (auto& timer : due) {
      if (*timer.cancelled) continue;
      timer.fn();
      ++ran;
    }
    return ran;
  }
  std::vector<Pending> timers;
};

// The shared stub Context (tests/support/module_context.h) on the manual FakeExecutor.
class FakeContext final : public tessera::testing::StubContext {
 public:
  FakeContext() : StubContext(fakeExecutor) {}
  FakeExecutor fakeExecutor;
};

/// An offer of `resources` (Mesos text form) from agent `agent` on `hostname`, with text
/// attributes.
inline v1::Offer makeOffer(const std::string& id, const std::string& agent,
                           const std::string& hostname, const std::string& resources,
                           const std::map<std::string, std::string>& attributes = {}) {
  v1::Offer offer;
  offer.mutable_id()->set_value(id);
  offer.mutable_agent_id()->set_value(agent);
  offer.set_hostname(hostname);
  auto parsed = api::Resources::parse(resources);
  EXPECT_TRUE(parsed.isOk()) << parsed.status().toString();
  if (parsed) *offer.mutable_resources() = parsed->toProto();
  for (const auto& [name, value] : attributes) {
    auto* attribute = offer.add_attributes();
    attribute->set_name(name);
    attribute->set_type(v1::Value::TEXT);
    attribute->mutable_text()->set_value(value);
  }
  return offer;
}

/// A small app: `sleep 1000`, 0.1 cpus, 16 MB, one any-port definition, at a fixed version.
inline App makeApp(const std::string& id, int instances) {
  App app;
  app.id = id;
  app.cmd = "sleep 1000";
  app.cpus = 0.1;
  app.mem = 16;
  app.instances = instances;
  app.portDefinitions = {PortDefinition{}};
  app.version = Clock::time_point(std::chrono::seconds(1'800'000'000));
  app.lastConfigChangeAt = app.version;
  app.lastScalingAt = app.version;
  return app;
}

inline v1::TaskStatus makeStatus(const std::string& taskId, v1::TaskState state,
                                 const std::string& agent = "a1",
                                 std::optional<bool> healthy = std::nullopt,
                                 const std::string& message = "") {
  v1::TaskStatus status;
  status.mutable_task_id()->set_value(taskId);
  status.set_state(state);
  status.mutable_agent_id()->set_value(agent);
  status.set_uuid(std::string("uuid-").append(taskId));
  if (healthy) status.set_healthy(*healthy);
  if (!message.empty()) status.set_message(message);
  return status;
}

/// The engine with fakes around it, subscribed and past reconciliation.
class SchedulerHarness : public ::testing::Test {
 protected:
  void SetUp() override { makeScheduler(); }

  void makeScheduler(std::vector<App> apps = {}, bool settle = true) {
    AppScheduler::Options options;
    options.now = [this] { return now; };
    options.user = "root";
    options.events = [this](std::string_view type, std::string json) {
      events.emplace_back(std::string(type), std::move(json));
    };
    scheduler = std::make_unique<AppScheduler>(context, options);
    scheduler->start(driver, std::move(apps));
    v1::FrameworkID id;
    id.set_value("fw");
    scheduler->subscribed(id);
    if (settle) context.fakeExecutor.fireTimers();
  }

  void advance(std::chrono::milliseconds by) { now += by; }

  /// Sends `state` for every task launched so far that is still known to the engine.
  void reportAll(v1::TaskState state, std::optional<bool> healthy = std::nullopt) {
    for (const auto& task : scheduler->tasks()) {
      scheduler->update(makeStatus(task.id, state, task.agentId, healthy));
    }
  }

  int eventsOf(std::string_view type) const {
    int count = 0;
    for (const auto& [t, json] : events) count += t == type ? 1 : 0;
    return count;
  }

  std::string lastEventOf(std::string_view type) const {
    for (auto it = events.rbegin(); it != events.rend(); ++it) {
      if (it->first == type) return it->second;
    }
    return "";
  }

  Clock::time_point now = Clock::time_point(std::chrono::seconds(1'900'000'000));
  FakeContext context;
  FakeDriver driver;
  std::unique_ptr<AppScheduler> scheduler;
  std::vector<std::pair<std::string, std::string>> events;
  int offerCount = 0;

  v1::Offer offer(const std::string& resources = "cpus:4;mem:4096;disk:1000;ports:[31000-31099]",
                  const std::string& agent = "a1", const std::string& hostname = "host1",
                  const std::map<std::string, std::string>& attributes = {}) {
    return makeOffer(std::string("o").append(std::to_string(++offerCount)), agent, hostname,
                     resources, attributes);
  }
};

/// The value of environment variable `name` in `task`'s command, or nullopt.
inline std::optional<std::string> envOf(const v1::TaskInfo& task, const std::string& name) {
  for (const auto& variable : task.command().environment().variables()) {
    if (variable.name() == name) return variable.value();
  }
  return std::nullopt;
}

}  // namespace tessera::modules::marathon::testing
