// DRF allocator benchmarks: one full allocation run (every agent free, every framework wants
// resources) and the incremental run after one agent's resources are recovered, swept over
// agents {1k, 10k, 50k} x frameworks {10, 100, 1k, 5k}, each framework in its own role (the
// worst case for the role sorter). Also reports heap bytes per agent. See bench/RESULTS.md.
//   build/bin/allocator_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "modules/allocator_drf/drf_allocator.h"
#include "tessera/api/executor.h"

namespace tessera::modules::drf {
namespace {

using namespace std::chrono_literals;

// Posted work runs when the benchmark says so; timers never fire.
class BenchExecutor final : public api::Executor {
 public:
  struct Handle final : api::TimerHandle {
    void cancel() override {}
  };
  void post(std::function<void()> fn) override { queue_.push_back(std::move(fn)); }
  bool runningInThisThread() const override { return true; }
  std::unique_ptr<api::TimerHandle> schedule(std::chrono::nanoseconds,
                                             std::function<void()>) override {
    return std::make_unique<Handle>();
  }
  api::Status runBlocking(std::function<void()> work, std::function<void()> done) override {
    work();
    done();
    return api::Status::ok();
  }
  void runAll() {
    while (!queue_.empty()) {
      auto fn = std::move(queue_.front());
      queue_.pop_front();
      fn();
    }
  }

 private:
  std::deque<std::function<void()>> queue_;
};

api::Resources mustParse(std::string_view text) {
  auto parsed = api::Resources::parse(text);
  if (!parsed) std::abort();
  return *std::move(parsed);
}

struct Held {
  std::string framework;
  std::string agent;
  api::Resources resources;
};

// A cluster of `agents` identical agents and `frameworks` frameworks, each in its own role.
class Cluster {
 public:
  // With `allocate`, the run the additions scheduled is executed: everything is offered.
  Cluster(int agents, int frameworks, bool allocate = true)
      : allocator_(executor_, nullptr, nullptr) {
    api::AllocatorOptions options;
    options.clock = [] { return std::chrono::steady_clock::now(); };
    options.offerCallback = [this](std::string_view framework, std::vector<api::Offer> offers) {
      for (api::Offer& offer : offers) {
        held_.push_back(
            {std::string(framework), std::move(offer.agentId), std::move(offer.resources)});
      }
    };
    // Runs are driven by hand; events still schedule the incremental run on the executor.
    if (!allocator_.initialize(std::move(options)).isOk()) std::abort();
    api::Resources total = mustParse("cpus:32;mem:131072;disk:1000000;ports:[31000-32000]");
    for (int i = 0; i < frameworks; ++i) {
      api::FrameworkOptions framework;
      framework.roles = {fmt::format("role-{}", i)};
      if (!allocator_.addFramework(fmt::format("framework-{}", i), framework, {}, true).isOk()) {
        std::abort();
      }
    }
    for (int i = 0; i < agents; ++i) {
      if (!allocator_.addAgent(fmt::format("agent-{:06}", i), total, {}).isOk()) std::abort();
    }
    if (allocate) executor_.runAll();
  }

  // Every framework gives back everything it holds, with no filter.
  void recoverAll() {
    for (const Held& held : held_) {
      if (!allocator_.recoverResources(held.framework, held.agent, held.resources, 0s).isOk()) {
        std::abort();
      }
    }
    held_.clear();
  }

  DrfAllocator& allocator() { return allocator_; }
  BenchExecutor& executor() { return executor_; }
  std::vector<Held>& held() { return held_; }

 private:
  BenchExecutor executor_;
  std::vector<Held> held_;
  DrfAllocator allocator_;
};

void BM_FullAllocationRun(benchmark::State& state) {
  int agents = static_cast<int>(state.range(0));
  int frameworks = static_cast<int>(state.range(1));
  size_t heapBefore = mallinfo2().uordblks;
  Cluster cluster(agents, frameworks, /*allocate=*/false);
  size_t heapIdle = mallinfo2().uordblks;
  cluster.executor().runAll();
  size_t heapAllocated = mallinfo2().uordblks;
  size_t offers = 0;
  for (auto _ : state) {
    state.PauseTiming();
    cluster.recoverAll();
    cluster.executor().runAll();  // drop the incremental run the recoveries scheduled...
    cluster.recoverAll();         // ...and give back what it offered
    state.ResumeTiming();
    api::AllocationRunStats stats = cluster.allocator().allocateNow();
    offers = stats.offersMade;
  }
  state.counters["offers"] = static_cast<double>(offers);
  // Heap per agent held by the allocator with nothing allocated (agents, frameworks, roles,
  // indexes), and once everything is offered (adds the allocation records, and the copy of
  // every offer the benchmark keeps, as the master would).
  state.counters["heap_B_per_agent"] =
      static_cast<double>(heapIdle - heapBefore) / static_cast<double>(agents);
  state.counters["heap_B_per_agent_offered"] =
      static_cast<double>(heapAllocated - heapBefore) / static_cast<double>(agents);
}

void BM_IncrementalRunAfterRecovery(benchmark::State& state) {
  int agents = static_cast<int>(state.range(0));
  int frameworks = static_cast<int>(state.range(1));
  Cluster cluster(agents, frameworks);
  size_t next = 0;
  for (auto _ : state) {
    // One framework gives one agent back; the allocator's coalesced run (posted on its
    // executor) offers that agent again. Timed: the recovery and the run.
    std::vector<Held>& held = cluster.held();
    Held back = std::move(held[next % held.size()]);
    held[next % held.size()] = std::move(held.back());
    held.pop_back();
    ++next;
    if (!cluster.allocator()
             .recoverResources(back.framework, back.agent, back.resources, 0s)
             .isOk()) {
      std::abort();
    }
    cluster.executor().runAll();
  }
}

// The baseline, run in the same invocation: Mesos's approach of sorting every framework by
// dominant share again for each agent, on plain doubles with no Resources, filters, roles or
// offers. It is a lower bound of that approach's cost, so the ratio to BM_FullAllocationRun
// understates the difference.
void BM_BaselineResortPerAgent(benchmark::State& state) {
  const int agents = static_cast<int>(state.range(0));
  const int frameworks = static_cast<int>(state.range(1));
  const double agentCpus = 32, agentMem = 131072;
  const double totalCpus = agentCpus * agents, totalMem = agentMem * agents;
  std::vector<double> cpus(frameworks), mem(frameworks), share(frameworks);
  std::vector<int> order(frameworks);
  for (auto _ : state) {
    std::fill(cpus.begin(), cpus.end(), 0.0);
    std::fill(mem.begin(), mem.end(), 0.0);
    std::fill(share.begin(), share.end(), 0.0);
    for (int agent = 0; agent < agents; ++agent) {
      for (int f = 0; f < frameworks; ++f) order[f] = f;
      std::sort(order.begin(), order.end(),
                [&](int a, int b) { return share[a] != share[b] ? share[a] < share[b] : a < b; });
      int chosen = order.front();
      cpus[chosen] += agentCpus;
      mem[chosen] += agentMem;
      share[chosen] = std::max(cpus[chosen] / totalCpus, mem[chosen] / totalMem);
    }
    benchmark::DoNotOptimize(share.data());
    benchmark::ClobberMemory();
  }
}

void Sweep(benchmark::internal::Benchmark* bench) {
  for (int64_t agents : {1000, 10000, 50000}) {
    for (int64_t frameworks : {10, 100, 1000, 5000}) bench->Args({agents, frameworks});
  }
  bench->ArgNames({"agents", "frameworks"});
}

BENCHMARK(BM_FullAllocationRun)->Apply(Sweep)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_IncrementalRunAfterRecovery)->Apply(Sweep)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BaselineResortPerAgent)
    ->ArgsProduct({{10000}, {10, 100, 1000}})
    ->ArgNames({"agents", "frameworks"})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tessera::modules::drf

BENCHMARK_MAIN();
