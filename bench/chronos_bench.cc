// #23's Measure: the Chronos framework in-process, with N jobs scheduled every minute
// (R/<start>/PT1M). A fake clock moves from one schedule point to the next; a fake driver
// answers each accepted launch with TASK_RUNNING then TASK_FINISHED at once (tasks that only
// pretend to run), and one synthetic offer large enough for every run is handed in after the
// points fire, and again while runs still wait. The kernel's in-memory state store holds the
// jobs.
//
// Scheduling lag of a run = real (steady-clock) time from the moment the fake clock reaches the
// point (its timers fire) to the run's TASK_RUNNING reaching the framework: all the framework's
// own work for that point, with a master and agents that cost nothing. Reported per minute as
// p50/p99, then the median (min–max) over the minutes. API latency: GET /scheduler/jobs and
// POST /scheduler/iso8601 (a new job), p50/p99 over repetitions, with the N jobs in place.
//
// Usage: chronos_bench [jobs=100000] [minutes=3] [get_reps=5] [post_reps=50]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernel/state/memory_store.h"
#include "modules/framework_chronos/chronos_framework.h"
#include "tests/support/module_context.h"

namespace tessera::modules::chronos {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

double seconds(Steady::duration d) { return std::chrono::duration<double>(d).count(); }

// The process's CPU time (s): the bench is one thread, so on a shared machine this is the
// framework's own work without the time other processes took the core.
double cpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

std::string jobName(size_t i) { return "job-" + std::to_string(i); }

// Posted work runs when drained; timers (ordered by time) fire when the clock is moved, all
// those expired at once ahead of what they post.
class BenchExecutor final : public api::Executor {
 public:
  struct Timer final : api::TimerHandle {
    void cancel() override { cancelled = true; }
    std::function<void()> fn;
    bool cancelled = false;
  };
  explicit BenchExecutor(Clock::time_point* now) : now_(now) {}
  void post(std::function<void()> fn) override { queue_.push_back(std::move(fn)); }
  bool runningInThisThread() const override { return true; }
  std::unique_ptr<api::TimerHandle> schedule(std::chrono::nanoseconds delay,
                                             std::function<void()> fn) override {
    auto timer = std::make_shared<Timer>();
    timer->fn = std::move(fn);
    timers_.emplace(*now_ + std::chrono::duration_cast<Clock::duration>(delay), timer);
    struct Handle final : api::TimerHandle {
      std::shared_ptr<Timer> timer;
      void cancel() override { timer->cancel(); }
    };
    auto handle = std::make_unique<Handle>();
    handle->timer = timer;
    return handle;
  }
  api::Status runBlocking(std::function<void()> work, std::function<void()> done) override {
    work();
    post(std::move(done));
    return api::Status::ok();
  }
  void drain() {
    while (!queue_.empty()) {
      auto fn = std::move(queue_.front());
      queue_.pop_front();
      fn();
    }
  }
  void fire() {
    drain();
    while (!timers_.empty() && timers_.begin()->first <= *now_) {
      auto timer = timers_.begin()->second;
      timers_.erase(timers_.begin());
      if (timer->cancelled) continue;
      timer->cancelled = true;
      // Like an asio strand: the timers expired by now are ready together, and work posted while
      // they run queues behind them.
      queue_.push_back([timer] { timer->fn(); });
    }
    drain();
  }

 private:
  Clock::time_point* now_;
  std::deque<std::function<void()>> queue_;
  std::multimap<Clock::time_point, std::shared_ptr<Timer>> timers_;
};

// Answers every launch with TASK_RUNNING then TASK_FINISHED (posted, as a real driver's events
// arrive later on the executor); TASK_RUNNING's arrival time is the run's start.
class PretendDriver final : public api::SchedulerDriver {
 public:
  PretendDriver(api::Executor& executor, ChronosFramework** framework)
      : executor_(executor), framework_(framework) {}
  api::Status subscribe(v1::FrameworkInfo, std::vector<std::string>) override {
    return api::Status::ok();
  }
  void accept(std::vector<v1::OfferID>, std::vector<v1::Offer::Operation> operations,
              std::optional<v1::Filters>, api::CallCallback) override {
    for (const auto& operation : operations) {
      for (const auto& task : operation.launch().task_infos()) {
        ++launched;
        // Only the ids: copying each TaskInfo into its callback cost more than the framework's
        // own work on it.
        executor_.post([this, taskId = task.task_id().value(), agentId = task.agent_id().value()] {
          for (v1::TaskState state : {v1::TASK_RUNNING, v1::TASK_FINISHED}) {
            v1::TaskStatus status;
            status.mutable_task_id()->set_value(taskId);
            status.mutable_agent_id()->set_value(agentId);
            status.set_state(state);
            status.set_uuid(taskId + (state == v1::TASK_RUNNING ? "r" : "f"));
            if (state == v1::TASK_RUNNING) {
              running.push_back(Steady::now());
              runningCpu.push_back(cpuSeconds());
            }
            (*framework_)->update(status);
          }
        });
      }
    }
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

  size_t launched = 0;
  std::vector<Steady::time_point> running;
  std::vector<double> runningCpu;

 private:
  api::Executor& executor_;
  ChronosFramework** framework_;
};

struct Bench {
  explicit Bench(size_t jobs)
      : executor(&now), context(executor), driver(executor, &raw), jobs(jobs) {
    auto created = ChronosFramework::create(api::Parameters(), context);
    if (!created) {
      std::fprintf(stderr, "create: %s\n", created.status().message().c_str());
      std::exit(1);
    }
    framework.reset(static_cast<ChronosFramework*>(created->release()));
    raw = framework.get();
    framework->setClockForTest([this] { return now; });
    // The jobs are in the store before the framework starts (as after a failover), so it loads
    // them at start: creating 100,000 through POST costs a check of every job per POST.
    const auto seeding = Steady::now();
    for (size_t i = 0; i < jobs; ++i) {
      context.state().set("/jobs/" + jobName(i), jobBody(jobName(i)), 0, executor,
                          [](api::Result<uint64_t> written) {
                            if (!written) std::abort();
                          });
    }
    executor.drain();
    framework->start(driver);
    executor.drain();
    v1::FrameworkID id;
    id.set_value("fw-bench");
    framework->subscribed(id, 15s, v1::MasterInfo());
    executor.drain();
    std::printf("jobs: %zu, stored and loaded at start in %.2f s\n", jobs,
                seconds(Steady::now() - seeding));
  }
  ~Bench() { framework->stop(); }

  api::HttpResponse request(const std::string& method, const std::string& path,
                            const std::string& body = "") {
    api::HttpRequest request;
    request.method = method;
    request.path = path;
    request.body = body;
    std::optional<api::HttpResponse> response;
    framework->handle(request, [&](api::HttpResponse answer) { response = std::move(answer); });
    executor.drain();
    if (!response) {
      std::fprintf(stderr, "%s %s: no answer\n", method.c_str(), path.c_str());
      std::exit(1);
    }
    return *response;
  }

  std::string jobBody(const std::string& name) const {
    return "{\"name\":\"" + name +
           "\",\"command\":\"true\",\"schedule\":\"R/2026-03-01T00:01:00Z/PT1M\","
           "\"cpus\":0.01,\"mem\":1,\"disk\":0}";
  }

  void offer() {
    v1::Offer offer;
    offer.mutable_id()->set_value("o-" + std::to_string(++offers));
    offer.mutable_agent_id()->set_value("agent-1");
    offer.set_hostname("host-1");
    auto resources = api::Resources::parse("cpus:1000000;mem:100000000;disk:100000000");
    *offer.mutable_resources() = resources->toProto();
    framework->offers({offer});
    executor.drain();
  }

  // 2026-03-01T00:00:00Z; the first point is a minute later.
  Clock::time_point now = Clock::time_point(std::chrono::seconds(1772323200));
  BenchExecutor executor;
  // The shared stub Context (tests/support/module_context.h): its in-memory store holds the jobs.
  tessera::testing::StubContext context;
  ChronosFramework* raw = nullptr;
  PretendDriver driver;
  std::unique_ptr<ChronosFramework> framework;
  size_t jobs;
  int offers = 0;
};

// One minute's work: the points fire, then offers until every run launched. Not inlined, so a
// profiler can be told to count only this (valgrind --toggle-collect='*fireAndLaunch*').
[[gnu::noinline]] void fireAndLaunch(Bench& bench, size_t before) {
  bench.executor.fire();
  for (int tries = 0; bench.driver.launched - before < bench.jobs && tries < 10; ++tries) {
    bench.offer();
  }
}

int run(int argc, char** argv) {
  const size_t jobs = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100000;
  const int minutes = argc > 2 ? std::atoi(argv[2]) : 3;
  const int getReps = argc > 3 ? std::atoi(argv[3]) : 5;
  const int postReps = argc > 4 ? std::atoi(argv[4]) : 50;

  Bench bench(jobs);
  std::vector<double> p50s;
  std::vector<double> p99s;
  std::vector<double> maxes;
  std::vector<double> cpuP50s;
  std::vector<double> cpuP99s;
  for (int minute = 1; minute <= minutes; ++minute) {
    bench.now = Clock::time_point(std::chrono::seconds(1772323200 + 60 * minute));
    bench.driver.running.clear();
    bench.driver.runningCpu.clear();
    const size_t before = bench.driver.launched;
    const auto start = Steady::now();
    const double startCpu = cpuSeconds();
    fireAndLaunch(bench, before);
    std::vector<double> lags;
    lags.reserve(bench.driver.running.size());
    for (auto at : bench.driver.running) lags.push_back(seconds(at - start));
    p50s.push_back(percentile(lags, 0.50));
    p99s.push_back(percentile(lags, 0.99));
    maxes.push_back(percentile(lags, 1.0));
    std::vector<double> cpuLags;
    for (double at : bench.driver.runningCpu) cpuLags.push_back(at - startCpu);
    cpuP50s.push_back(percentile(cpuLags, 0.50));
    cpuP99s.push_back(percentile(cpuLags, 0.99));
    std::printf(
        "minute %d: %zu runs started (of %zu), lag p50 %.3f s, p99 %.3f s, max %.3f s; "
        "cpu p50 %.3f s, p99 %.3f s\n",
        minute, lags.size(), jobs, p50s.back(), p99s.back(), maxes.back(), cpuP50s.back(),
        cpuP99s.back());
  }
  auto summary = [](const char* what, const std::vector<double>& values) {
    std::printf("%s: median %.3f s (min %.3f, max %.3f)\n", what, percentile(values, 0.5),
                percentile(values, 0.0), percentile(values, 1.0));
  };
  summary("lag p50 over minutes", p50s);
  summary("lag p99 over minutes", p99s);
  summary("cpu lag p50 over minutes", cpuP50s);
  summary("cpu lag p99 over minutes", cpuP99s);

  std::vector<double> gets;
  size_t bytes = 0;
  for (int i = 0; i < getReps; ++i) {
    auto start = Steady::now();
    auto response = bench.request("GET", "/scheduler/jobs");
    gets.push_back(seconds(Steady::now() - start));
    bytes = response.body.size();
  }
  std::printf("GET /scheduler/jobs (%zu bytes): p50 %.4f s, p99 %.4f s over %d\n", bytes,
              percentile(gets, 0.5), percentile(gets, 0.99), getReps);
  std::vector<double> posts;
  for (int i = 0; i < postReps; ++i) {
    auto start = Steady::now();
    auto response = bench.request("POST", "/scheduler/iso8601", bench.jobBody(jobName(jobs + i)));
    posts.push_back(seconds(Steady::now() - start));
    if (response.status != 204) return 1;
  }
  std::printf("POST /scheduler/iso8601: p50 %.4f s, p99 %.4f s over %d\n", percentile(posts, 0.5),
              percentile(posts, 0.99), postReps);
  return 0;
}

}  // namespace
}  // namespace tessera::modules::chronos

int main(int argc, char** argv) { return tessera::modules::chronos::run(argc, argv); }
