// Launch latency of a Docker task: the Docker containerizer's launch() until it answers with
// the checkpoint (the moment the agent reports TASK_RUNNING), beside a bare Engine-API
// create + start of the same image (what `docker run -d` does), in the same run. Needs the
// engine at /var/run/docker.sock; builds tessera-test/busybox like the tests.
//
//   build/bin/launch_docker_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>

#include "kernel/runtime/logging.h"
#include "kernel/runtime/runtime.h"
#include "kernel/state/memory_store.h"
#include "modules/containerizer_docker/docker_containerizer.h"
#include "modules/containerizer_docker/docker_spec.h"
#include "tests/support/docker.h"
#include "tests/support/module_context.h"
#include "tests/support/subprocess.h"

namespace {

using namespace tessera;
using namespace std::chrono_literals;
using modules::containerizer_docker::DockerContainerizer;
using modules::containerizer_docker::EngineClient;
namespace fs = std::filesystem;

class BenchContext final : public tessera::testing::ModuleContext {
 public:
  BenchContext() : ModuleContext("launch_docker_bench") {}
};

template <typename T, typename Call>
T onExecutor(api::Executor& executor, Call call) {
  std::promise<T> promise;
  executor.post([&] { call([&](T value) { promise.set_value(std::move(value)); }); });
  return promise.get_future().get();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0 : values[values.size() / 2];
}

void report(benchmark::State& state, const std::vector<double>& millis) {
  state.counters["median_ms"] = median(millis);
  state.counters["min_ms"] = millis.empty() ? 0 : *std::min_element(millis.begin(), millis.end());
  state.counters["max_ms"] = millis.empty() ? 0 : *std::max_element(millis.begin(), millis.end());
}

bool ready(benchmark::State& state) {
  if (auto status = tessera::testing::dockerReady(); !status) {
    state.SkipWithError(("no Docker engine: " + status.message()).c_str());
    return false;
  }
  return true;
}

// Bare Engine API: POST /containers/create + POST /containers/{id}/start.
void BM_EngineCreateStart(benchmark::State& state) {
  if (!ready(state)) return;
  EngineClient client("/var/run/docker.sock");
  std::vector<double> millis;
  int n = 0;
  for (auto _ : state) {
    const std::string name = fmt::format("tessera-bench-bare-{}-{}", getpid(), n++);
    const std::string body = fmt::format(
        R"({{"Image":"{}","Cmd":["sleep","600"],"HostConfig":{{"NetworkMode":"host"}}}})",
        tessera::testing::kDockerTestImage);
    const auto start = std::chrono::steady_clock::now();
    auto created = client.call("POST", "/containers/create?name=" + name, body);
    auto started = client.call("POST", fmt::format("/containers/{}/start", name));
    const auto elapsed = std::chrono::steady_clock::now() - start;
    if (!created || created->status != 201 || !started || started->status != 204) {
      state.SkipWithError("create/start failed");
      break;
    }
    state.SetIterationTime(std::chrono::duration<double>(elapsed).count());
    millis.push_back(std::chrono::duration<double, std::milli>(elapsed).count());
    (void)client.call("DELETE", fmt::format("/containers/{}?force=1", name));
  }
  report(state, millis);
}

// The Docker containerizer: launch() → checkpoint (TASK_RUNNING), logs followed, waited on.
void BM_DockerContainerizerLaunch(benchmark::State& state) {
  if (!ready(state)) return;
  tessera::testing::TempDir workDir;
  BenchContext context;
  auto made = onExecutor<api::Result<std::unique_ptr<api::Module>>>(
      context.executor(), [&](auto done) { done(DockerContainerizer::create({}, context)); });
  std::unique_ptr<DockerContainerizer> containerizer(
      static_cast<DockerContainerizer*>(made.value().release()));
  api::ContainerizerSettings settings;
  settings.agentWorkDir = workDir.path().string();
  (void)onExecutor<api::Status>(context.executor(),
                                [&](auto done) { containerizer->initialize(settings, done); });
  std::vector<double> millis;
  int n = 0;
  for (auto _ : state) {
    api::ContainerConfig config;
    config.containerId = fmt::format("bench-{}-{}", getpid(), n++);
    config.agentId = "agent";
    config.frameworkId = "framework";
    config.taskId = config.containerId;
    config.sandboxDirectory = (workDir.path() / config.containerId).string();
    fs::create_directories(config.sandboxDirectory);
    config.command.set_value("sleep 600");
    config.container.emplace();
    config.container->set_type(v1::ContainerInfo::DOCKER);
    config.container->mutable_docker()->set_image(tessera::testing::kDockerTestImage);
    config.resources = api::Resources::parse("cpus:0.1;mem:32").value();
    const auto start = std::chrono::steady_clock::now();
    auto launched = onExecutor<api::Result<api::ContainerCheckpoint>>(
        context.executor(), [&](auto done) { containerizer->launch(config, done); });
    const auto elapsed = std::chrono::steady_clock::now() - start;
    if (!launched) {
      state.SkipWithError(launched.status().message().c_str());
      break;
    }
    state.SetIterationTime(std::chrono::duration<double>(elapsed).count());
    millis.push_back(std::chrono::duration<double, std::milli>(elapsed).count());
    (void)onExecutor<api::Status>(context.executor(), [&](auto done) {
      containerizer->destroy(config.containerId, 0s, done);
    });
  }
  report(state, millis);
  onExecutor<int>(context.executor(), [&](auto done) {
    containerizer->stop();
    containerizer.reset();
    done(0);
  });
}

// Interleaved by registration order: bare first, then the containerizer, then bare again, so
// a drift of the engine over the run shows.
BENCHMARK(BM_EngineCreateStart)->Iterations(20)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DockerContainerizerLaunch)
    ->Iterations(20)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EngineCreateStart)->Iterations(20)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
