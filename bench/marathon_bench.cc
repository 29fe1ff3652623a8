// #16's Measure: the Marathon engine (AppScheduler) driven in-process by a driver that answers
// every accepted launch with TASK_RUNNING at once (a containerizer that only pretends) and by
// synthetic offers from N agents: one app scaled 0 -> 10,000, tasks/s to RUNNING and time to
// all running; then GET /v2/apps latency (p50/p99) with 1,000 apps x 10 instances, the route
// handler called in-process. Median of --reps repetitions.
//
//   build/bin/marathon_bench --reps=5 --instances=10000 --agents=100
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <iostream>
#include <map>

#include "kernel/state/memory_store.h"
#include "modules/framework_marathon/marathon_framework.h"
#include "modules/framework_marathon/scheduler.h"
#include "tessera/api/resources.h"
#include "tests/support/module_context.h"

using namespace tessera;
using namespace tessera::modules::marathon;
using SteadyClock = std::chrono::steady_clock;

namespace {

int flag(int argc, char** argv, const std::string& name, int fallback) {
  const std::string prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind(prefix, 0) == 0) return std::stoi(arg.substr(prefix.size()));
  }
  return fallback;
}

// Answers each launch with TASK_RUNNING, queued so the engine is not re-entered.
class PretendDriver final : public api::SchedulerDriver {
 public:
  api::Status subscribe(v1::FrameworkInfo, std::vector<std::string>) override {
    return api::Status::ok();
  }
  void accept(std::vector<v1::OfferID>, std::vector<v1::Offer::Operation> operations,
              std::optional<v1::Filters>, api::CallCallback done) override {
    for (const auto& operation : operations) {
      for (const auto& task : operation.launch().task_infos()) {
        v1::TaskStatus status;
        *status.mutable_task_id() = task.task_id();
        *status.mutable_agent_id() = task.agent_id();
        status.set_state(v1::TASK_RUNNING);
        pending.push_back(std::move(status));
      }
    }
    if (done) done(api::Status::ok());
  }
  void decline(std::vector<v1::OfferID>, std::optional<v1::Filters>, api::CallCallback) override {}
  void revive(std::vector<std::string>, api::CallCallback) override {}
  void suppress(std::vector<std::string>, api::CallCallback) override {}
  void kill(const v1::TaskID&, const std::optional<v1::AgentID>&, api::CallCallback) override {}
  void acknowledge(const v1::AgentID&, const v1::TaskID&, const std::string&,
                   api::CallCallback) override {}
  void reconcile(std::vector<v1::scheduler::Call::Reconcile::Task>, api::CallCallback) override {}
  void message(const v1::AgentID&, const v1::ExecutorID&, const std::string&,
               api::CallCallback) override {}
  void teardown(api::CallCallback) override {}
  std::optional<v1::FrameworkID> frameworkId() const override { return std::nullopt; }
  bool subscribed() const override { return true; }
  std::deque<v1::TaskStatus> pending;
};

class InlineExecutor final : public api::Executor {
 public:
  class Handle final : public api::TimerHandle {
   public:
    void cancel() override {}
  };
  void post(std::function<void()> fn) override { fn(); }
  bool runningInThisThread() const override { return true; }
  std::unique_ptr<api::TimerHandle> schedule(std::chrono::nanoseconds,
                                             std::function<void()> fn) override {
    timers.push_back(std::move(fn));
    return std::make_unique<Handle>();
  }
  api::Status runBlocking(std::function<void()> work, std::function<void()> done) override {
    work();
    done();
    return api::Status::ok();
  }
  void fire() {
    auto due = std::move(timers);
    timers.clear();
    for (auto& fn : due) fn();
  }
  std::vector<std::function<void()>> timers;
};

// The shared stub Context (tests/support/module_context.h) on the inline executor.
class BenchContext final : public tessera::testing::StubContext {
 public:
  BenchContext() : StubContext(inlineExecutor) {}
  InlineExecutor inlineExecutor;
};

class Host final : public api::FrameworkHost {
 public:
  bool leading() const override { return true; }
  std::optional<std::string> leaderAddress() const override { return "127.0.0.1:8080"; }
  std::string advertisedAddress() const override { return "127.0.0.1:8080"; }
  void abdicate() override {}
};

std::vector<v1::Offer> offersFrom(int agents, int& serial) {
  static const auto resources =
      api::Resources::parse("cpus:64;mem:65536;disk:100000;ports:[31000-32000]")->toProto();
  std::vector<v1::Offer> out;
  for (int a = 0; a < agents; ++a) {
    v1::Offer offer;
    offer.mutable_id()->set_value(fmt::format("o{}", ++serial));
    offer.mutable_agent_id()->set_value(fmt::format("agent{}", a));
    offer.set_hostname(fmt::format("host{}", a));
    *offer.mutable_resources() = resources;
    out.push_back(std::move(offer));
  }
  return out;
}

App benchApp(const std::string& id, int instances) {
  App app;
  app.id = id;
  app.cmd = "sleep 1000";
  app.cpus = 0.01;
  app.mem = 4;
  app.instances = instances;
  app.portDefinitions = {PortDefinition{}};
  app.version = Clock::now();
  app.lastConfigChangeAt = app.version;
  app.lastScalingAt = app.version;
  return app;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Scales one app 0 -> instances; returns seconds to all RUNNING.
double scaleOnce(int instances, int agents) {
  BenchContext context;
  PretendDriver driver;
  AppScheduler scheduler(context, {});
  scheduler.start(driver, {});
  v1::FrameworkID id;
  id.set_value("fw");
  scheduler.subscribed(id);
  context.inlineExecutor.fire();
  const auto start = SteadyClock::now();
  if (!scheduler.deploy({benchApp("/scale", instances)}, {}, {}, false).isOk()) std::abort();
  int serial = 0;
  while (scheduler.counts("/scale").running < instances) {
    scheduler.offers(offersFrom(agents, serial));
    while (!driver.pending.empty()) {
      v1::TaskStatus status = std::move(driver.pending.front());
      driver.pending.pop_front();
      scheduler.update(status);
    }
  }
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = flag(argc, argv, "reps", 5);
  const int instances = flag(argc, argv, "instances", 10000);
  const int agents = flag(argc, argv, "agents", 100);
  const int apps = flag(argc, argv, "apps", 1000);
  const int perApp = flag(argc, argv, "per_app", 10);
  const int gets = flag(argc, argv, "gets", 50);

  std::vector<double> seconds;
  for (int r = 0; r < reps; ++r) {
    seconds.push_back(scaleOnce(instances, agents));
    std::cout << "scale 0 -> " << instances << " on " << agents << " agents: " << seconds.back()
              << " s (" << instances / seconds.back() << " tasks/s)\n";
  }
  const double s = median(seconds);
  std::cout << "MEDIAN scale: " << s << " s to all running, " << instances / s << " tasks/s\n";

  std::vector<double> p50s, p99s, setups;
  for (int r = 0; r < reps; ++r) {
    BenchContext context;
    Host host;
    PretendDriver driver;
    auto created = MarathonFramework::create(api::Parameters{}, context);
    if (!created) std::abort();
    std::unique_ptr<MarathonFramework> module(
        static_cast<MarathonFramework*>(std::move(created).value().release()));
    module->attached(host);
    module->start(driver);
    v1::FrameworkID fw;
    fw.set_value("fw");
    module->subscribed(fw, std::chrono::seconds(15), v1::MasterInfo{});
    context.inlineExecutor.fire();
    auto call = [&](const std::string& method, const std::string& path, const std::string& body) {
      api::HttpRequest request;
      request.method = method;
      request.path = path;
      request.body = body;
      request.remoteAddress = "127.0.0.1:4000";
      api::HttpResponse response{0, "", {}, ""};
      context.router.routes.at("/v2/apps").handler(request, [&](api::HttpResponse answer) {
        response = std::move(answer);
      });
      return response;
    };
    const auto setupStart = SteadyClock::now();
    for (int a = 0; a < apps; ++a) {
      auto r2 = call(
          "POST", "/v2/apps",
          fmt::format(
              R"({{"id": "/app{}", "cmd": "sleep 1000", "cpus": 0.01, "mem": 4, "instances": {}}})",
              a, perApp));
      if (r2.status != 201) {
        std::cerr << "create: " << r2.status << " " << r2.body << "\n";
        return 1;
      }
    }
    int serial = 0;
    for (int round = 0; round < 100; ++round) {
      module->offers(offersFrom(agents, serial));
      while (!driver.pending.empty()) {
        v1::TaskStatus status = std::move(driver.pending.front());
        driver.pending.pop_front();
        module->update(status);
      }
    }
    setups.push_back(std::chrono::duration<double>(SteadyClock::now() - setupStart).count());
    std::cout << "set up " << apps << " apps x " << perApp
              << " (create + offers to running): " << setups.back() << " s\n";
    std::vector<double> latencies;
    size_t bytes = 0;
    for (int g = 0; g < gets; ++g) {
      const auto start = SteadyClock::now();
      auto response = call("GET", "/v2/apps", "");
      latencies.push_back(
          std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count());
      if (response.status != 200) std::abort();
      bytes = response.body.size();
      if (g == 0) {
        // Every app is expected to show all its instances running.
        const std::string full = fmt::format("\"tasksRunning\":{}", perApp);
        int fullApps = 0;
        for (auto at = response.body.find(full); at != std::string::npos;
             at = response.body.find(full, at + 1)) {
          ++fullApps;
        }
        std::cout << fullApps << " of " << apps << " apps show " << perApp << " tasks running\n";
      }
    }
    std::sort(latencies.begin(), latencies.end());
    const double p50 = latencies[latencies.size() / 2];
    const double p99 = latencies[std::min(latencies.size() - 1, latencies.size() * 99 / 100)];
    p50s.push_back(p50);
    p99s.push_back(p99);
    std::cout << "GET /v2/apps (" << apps << " apps x " << perApp << ", " << bytes
              << " bytes): p50 " << p50 << " ms, p99 " << p99 << " ms\n";
    module->stop();
  }
  std::cout << "MEDIAN set up: " << median(setups) << " s\n";
  std::cout << "MEDIAN GET /v2/apps: p50 " << median(p50s) << " ms, p99 " << median(p99s)
            << " ms\n";
  return 0;
}
