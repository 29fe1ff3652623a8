// Launch latency of a trivial task (`/bin/sh -c true`), in one run, three ways:
//   bare     fork + exec + waitpid, nothing else;
//   native   the native containerizer: launch() until it hands back the checkpoint (the moment
//            the agent checkpoints and reports TASK_RUNNING), and until wait() reports the end;
//   cgroups  the same with the cgroups isolator (cgroups/cpu,cgroups/mem) driven by it.
// Rounds interleave the three so they share the machine's noise. Needs root for the cgroups
// case (skipped otherwise). Usage: launch_bench [rounds]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "kernel/runtime/logging.h"
#include "kernel/runtime/runtime.h"
#include "kernel/state/memory_store.h"
#include "modules/containerizer_native/native_containerizer.h"
#include "modules/isolator_cgroups/cgroups_isolator.h"

namespace {

using namespace tessera;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

class BenchContext final : public api::Context {
 public:
  class NullRouter final : public api::HttpRouter {
   public:
    api::Status addRoute(std::string_view, std::string_view, api::HttpHandler, bool) override {
      return api::Status::ok();
    }
  };
  class NullMetrics final : public api::Metrics {
   public:
    api::Counter& counter(std::string_view) override { return counter_; }
    api::Timer& timer(std::string_view) override { std::abort(); }
    void gauge(std::string_view, std::function<double()>) override {}
    void removeGauge(std::string_view) override {}
    api::Counter counter_;
  };
  class NullLogger final : public api::Logger {
   public:
    void log(Level, std::string_view) override {}
  };

  explicit BenchContext(kernel::runtime::Runtime& runtime) : executor_(runtime.makeExecutor()) {}
  api::Logger& logger() override { return logger_; }
  api::Metrics& metrics() override { return metrics_; }
  api::Executor& executor() override { return *executor_; }
  api::HttpRouter& http() override { return router_; }
  std::string_view role() const override { return "agent"; }
  std::string_view workDir() const override { return ""; }
  api::StateStore& state() override { return store_; }

 private:
  std::unique_ptr<kernel::runtime::StrandExecutor> executor_;
  NullLogger logger_;
  NullMetrics metrics_;
  NullRouter router_;
  kernel::state::MemoryStore store_;
};

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double bareForkExec() {
  auto start = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", "true", static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return ms(Clock::now() - start);
}

// Posts every call to the isolator's strand and every callback back to the containerizer's,
// like kernel/agent/isolator_proxy.cc (which a module-level bench cannot link).
class Proxy final : public api::Isolator {
 public:
  Proxy(api::Isolator& target, api::Executor& targetExecutor)
      : target_(target), executor_(targetExecutor) {}
  void setCaller(api::Executor* caller) { caller_ = caller; }
  void stop() override {}
  std::vector<std::string> isolations() const override { return target_.isolations(); }
  void recover(const std::vector<api::ContainerCheckpoint>& alive,
               std::function<void(api::Status)> done) override {
    executor_.post([this, alive, done = back(done)] { target_.recover(alive, done); });
  }
  void prepare(const api::ContainerConfig& config, std::function<void(api::Status)> done) override {
    executor_.post([this, config, done = back(done)] { target_.prepare(config, done); });
  }
  void isolate(std::string_view id, int64_t pid, std::function<void(api::Status)> done) override {
    executor_.post(
        [this, id = std::string(id), pid, done = back(done)] { target_.isolate(id, pid, done); });
  }
  void watch(std::string_view id, std::function<void(api::ContainerLimitation)> limited) override {
    executor_.post(
        [this, id = std::string(id), limited = back(limited)] { target_.watch(id, limited); });
  }
  void update(std::string_view id, const api::Resources& r,
              std::function<void(api::Status)> done) override {
    executor_.post(
        [this, id = std::string(id), r, done = back(done)] { target_.update(id, r, done); });
  }
  void usage(std::string_view id, v1::ResourceStatistics stats,
             std::function<void(api::Result<v1::ResourceStatistics>)> done) override {
    executor_.post(
        [this, id = std::string(id), stats, done = back(done)] { target_.usage(id, stats, done); });
  }
  void cleanup(std::string_view id, std::function<void(api::Status)> done) override {
    executor_.post([this, id = std::string(id), done = back(done)] { target_.cleanup(id, done); });
  }

 private:
  template <typename T>
  std::function<void(T)> back(std::function<void(T)> fn) {
    // The containerizer's executor: the one it calls from (set before any call).
    return [caller = caller_, fn](T value) {
      caller->post([fn, value = std::move(value)]() mutable { fn(std::move(value)); });
    };
  }
  api::Isolator& target_;
  api::Executor& executor_;
  api::Executor* caller_ = nullptr;
};

// One containerizer (and optionally the isolator, on its own strand as in the agent, with the
// callbacks hopping back the way the kernel's proxies do).
class Native {
 public:
  Native(kernel::runtime::Runtime& runtime, const fs::path& workDir,
         std::shared_ptr<Proxy> isolator)
      : context_(runtime), workDir_(workDir) {
    if (isolator) isolator->setCaller(&context_.executor());
    auto made =
        modules::containerizer_native::NativeContainerizer::create(api::Parameters(), context_);
    containerizer_ = std::move(*made);
    api::ContainerizerSettings settings;
    settings.agentWorkDir = workDir.string();
    if (isolator) settings.isolators.push_back(isolator);
    std::promise<api::Status> initialized;
    context_.executor().post(
        [&] { native().initialize(settings, [&](api::Status s) { initialized.set_value(s); }); });
    auto status = initialized.get_future().get();
    if (!status) std::fprintf(stderr, "initialize: %s\n", status.toString().c_str());
  }
  ~Native() {
    std::promise<void> stopped;
    context_.executor().post([&] {
      containerizer_->stop();
      containerizer_.reset();
      stopped.set_value();
    });
    stopped.get_future().wait();
  }

  // {launch → checkpoint, launch → termination} in ms.
  std::pair<double, double> run(const std::string& id) {
    api::ContainerConfig config;
    config.containerId = id;
    config.sandboxDirectory = (workDir_ / "sandboxes" / id).string();
    fs::create_directories(config.sandboxDirectory);
    config.command.set_value("true");
    config.resources = *api::Resources::parse("cpus:0.1;mem:32");
    std::promise<double> running;
    std::promise<double> ended;
    const auto start = Clock::now();
    context_.executor().post([&, config] {
      native().launch(config, [&, id](api::Result<api::ContainerCheckpoint> checkpoint) {
        running.set_value(ms(Clock::now() - start));
        if (!checkpoint) {
          std::fprintf(stderr, "launch: %s\n", checkpoint.status().toString().c_str());
          ended.set_value(0);
          return;
        }
        native().wait(id, [&](api::Result<api::ContainerTermination>) {
          ended.set_value(ms(Clock::now() - start));
        });
      });
    });
    double r = running.get_future().get();
    double e = ended.get_future().get();
    fs::remove_all(config.sandboxDirectory);
    return {r, e};
  }

 private:
  api::Containerizer& native() { return static_cast<api::Containerizer&>(*containerizer_); }
  BenchContext context_;
  fs::path workDir_;
  std::unique_ptr<api::Module> containerizer_;
};

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 200;
  kernel::runtime::Runtime runtime;
  runtime.start();
  char pattern[] = "/tmp/launch_bench.XXXXXX";
  const fs::path workDir = mkdtemp(pattern);

  // The cgroups isolator, when this machine lets us.
  BenchContext isolatorContext(runtime);
  std::unique_ptr<api::Module> isolatorModule;
  const std::string root = "tessera_bench_" + std::to_string(getpid());
  if (geteuid() == 0) {
    std::promise<api::Result<std::unique_ptr<api::Module>>> made;
    isolatorContext.executor().post([&] {
      made.set_value(modules::isolator_cgroups::CgroupsIsolator::create(
          api::Parameters({{"isolation", "cgroups/cpu,cgroups/mem"}, {"cgroups_root", root}}),
          isolatorContext));
    });
    auto result = made.get_future().get();
    if (result) {
      isolatorModule = std::move(*result);
    } else {
      std::fprintf(stderr, "no cgroups case: %s\n", result.status().toString().c_str());
    }
  }
  std::shared_ptr<Proxy> proxy;
  if (isolatorModule) {
    proxy = std::make_shared<Proxy>(static_cast<api::Isolator&>(*isolatorModule),
                                    isolatorContext.executor());
  }

  std::vector<double> bare, nativeRunning, nativeEnded, cgroupsRunning, cgroupsEnded;
  {
    Native native(runtime, workDir / "native", nullptr);
    std::unique_ptr<Native> withCgroups;
    if (proxy) {
      withCgroups = std::make_unique<Native>(runtime, workDir / "cgroups", proxy);
    }
    for (int i = 0; i < rounds + 10; ++i) {
      const bool warmup = i < 10;
      double b = bareForkExec();
      auto [nr, ne] = native.run("n" + std::to_string(i));
      if (!warmup) {
        bare.push_back(b);
        nativeRunning.push_back(nr);
        nativeEnded.push_back(ne);
      }
      if (withCgroups) {
        auto [cr, ce] = withCgroups->run("c" + std::to_string(i));
        if (!warmup) {
          cgroupsRunning.push_back(cr);
          cgroupsEnded.push_back(ce);
        }
      }
    }
  }
  if (isolatorModule) {
    std::promise<void> stopped;
    isolatorContext.executor().post([&] {
      isolatorModule->stop();
      isolatorModule.reset();
      stopped.set_value();
    });
    stopped.get_future().wait();
    for (const char* c : {"cpu", "cpuacct", "memory", "freezer"}) {
      ::rmdir(("/sys/fs/cgroup/" + std::string(c) + "/" + root).c_str());
    }
    ::rmdir(("/sys/fs/cgroup/" + root).c_str());
  }
  fs::remove_all(workDir);
  runtime.stop();

  std::printf("rounds: %d (after 10 warm-up rounds), medians in ms\n", rounds);
  std::printf("%-34s %8.3f\n", "bare fork/exec+wait", median(bare));
  std::printf("%-34s %8.3f\n", "native launch -> running", median(nativeRunning));
  std::printf("%-34s %8.3f\n", "native launch -> ended", median(nativeEnded));
  if (!cgroupsRunning.empty()) {
    std::printf("%-34s %8.3f\n", "native+cgroups launch -> running", median(cgroupsRunning));
    std::printf("%-34s %8.3f\n", "native+cgroups launch -> ended", median(cgroupsEnded));
    std::printf("%-34s %8.3f\n", "cgroups isolator adds (running)",
                median(cgroupsRunning) - median(nativeRunning));
  }
  std::printf("%-34s %8.2fx\n", "native ended / bare", median(nativeEnded) / median(bare));
  return 0;
}
