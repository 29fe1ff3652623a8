// Micro-benchmarks of the Resources operations the DRF allocator calls per (agent, framework)
// pair: contains, +=, -=, scalarMillis, allocatableTo. Run a Release build:
//   build-release/bin/resources_bench

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <vector>

#include "tessera/api/resources.h"

namespace tessera::api {
namespace {

Resources mustParse(std::string_view text) {
  Result<Resources> result = Resources::parse(text);
  if (!result.isOk()) std::abort();
  return *std::move(result);
}

const char* const kAgent =
    "cpus:32;mem:131072;disk:1000000;ports:[31000-32000];gpus:4;cpus(ops):8;mem(ops):16384";
const char* const kTask = "cpus:0.5;mem:512;disk:100";

void BM_ContainsScalars(benchmark::State& state) {
  Resources agent = mustParse(kAgent);
  Resources task = mustParse(kTask);
  for (auto _ : state) benchmark::DoNotOptimize(agent.contains(task));
}
BENCHMARK(BM_ContainsScalars);

void BM_ContainsWithPorts(benchmark::State& state) {
  Resources agent = mustParse(kAgent);
  Resources task = mustParse("cpus:0.5;mem:512;ports:[31500-31500]");
  for (auto _ : state) benchmark::DoNotOptimize(agent.contains(task));
}
BENCHMARK(BM_ContainsWithPorts);

void BM_AddSubtractScalars(benchmark::State& state) {
  Resources agent = mustParse(kAgent);
  Resources task = mustParse(kTask);
  for (auto _ : state) {
    agent -= task;
    agent += task;
    benchmark::DoNotOptimize(agent);
  }
}
BENCHMARK(BM_AddSubtractScalars);

void BM_ScalarMillis(benchmark::State& state) {
  Resources agent = mustParse(kAgent);
  for (auto _ : state) benchmark::DoNotOptimize(agent.scalarMillis("mem"));
}
BENCHMARK(BM_ScalarMillis);

void BM_ForEachScalar(benchmark::State& state) {
  Resources agent = mustParse(kAgent);
  for (auto _ : state) {
    int64_t total = 0;
    agent.forEachScalar([&](std::string_view, int64_t millis) { total += millis; });
    benchmark::DoNotOptimize(total);
  }
}
BENCHMARK(BM_ForEachScalar);

void BM_AllocatableTo(benchmark::State& state) {
  Resources agent = mustParse(kAgent);
  for (auto _ : state) benchmark::DoNotOptimize(agent.allocatableTo("eng"));
}
BENCHMARK(BM_AllocatableTo);

void BM_ParseText(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(Resources::parse(kAgent));
}
BENCHMARK(BM_ParseText);

// One naive allocation sweep: for `agents` agents, check a task fits and take it.
void BM_SweepAgents(benchmark::State& state) {
  std::vector<Resources> agents(static_cast<size_t>(state.range(0)), mustParse(kAgent));
  Resources task = mustParse(kTask);
  for (auto _ : state) {
    for (Resources& agent : agents) {
      if (agent.contains(task)) agent -= task;
      agent += task;
    }
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_SweepAgents)->Arg(10'000);

}  // namespace
}  // namespace tessera::api

BENCHMARK_MAIN();
