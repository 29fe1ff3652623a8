// Loads libtessera_allocator_drf.so the way the kernel's module manager does (Boost.DLL,
// RTLD_NOW | RTLD_LOCAL, the one exported descriptor), creates the allocator through its
// factory with a test Context, and runs it: the shim, the export and the metrics wiring.

#include <gtest/gtest.h>

#include <boost/dll/shared_library.hpp>
#include <map>
#include <string>
#include <vector>

#include "kernel/state/memory_store.h"
#include "tessera/api/allocator.h"
#include "tessera/api/module.h"
#include "tests/modules/allocator_drf/test_harness.h"

namespace tessera::modules::drf {
namespace {

namespace dll = boost::dll;

class TestContext final : public api::Context {
 public:
  class NullLogger final : public api::Logger {
   public:
    void log(Level, std::string_view) override {}
  };
  class NullRouter final : public api::HttpRouter {
   public:
    api::Status addRoute(std::string_view, std::string_view, api::HttpHandler, bool) override {
      return api::Status::ok();
    }
  };
  class CountingTimer final : public api::Timer {
   public:
    void record(std::chrono::nanoseconds) override { ++count; }
    int count = 0;
  };
  class MapMetrics final : public api::Metrics {
   public:
    api::Counter& counter(std::string_view name) override { return counters[std::string(name)]; }
    api::Timer& timer(std::string_view name) override { return timers[std::string(name)]; }
    void gauge(std::string_view name, std::function<double()> read) override {
      gauges[std::string(name)] = std::move(read);
    }
    void removeGauge(std::string_view name) override { gauges.erase(std::string(name)); }
    std::map<std::string, api::Counter> counters;
    std::map<std::string, CountingTimer> timers;
    std::map<std::string, std::function<double()>> gauges;
  };

  api::Logger& logger() override { return logger_; }
  api::Metrics& metrics() override { return metrics_; }
  api::Executor& executor() override { return executor_; }
  api::HttpRouter& http() override { return router_; }
  std::string_view role() const override { return "master"; }
  std::string_view workDir() const override { return ""; }
  api::StateStore& state() override { return stateStore_; }
  kernel::state::MemoryStore stateStore_;

  NullLogger logger_;
  MapMetrics metrics_;
  testing::ManualExecutor executor_;
  NullRouter router_;
};

api::Parameters params(std::vector<std::pair<std::string, std::string>> entries) {
  return api::Parameters(std::move(entries));
}

// Never closed, as in production: the instance's code lives in the library. Kept reachable
// so the leak checker stays quiet.
void keepOpen(dll::shared_library library) {
  static auto* libraries = new std::vector<dll::shared_library>();
  libraries->push_back(std::move(library));
}

const api::ModuleDescriptor* load(dll::shared_library& library) {
  library.load(TESSERA_ALLOCATOR_DRF_SO, dll::load_mode::rtld_now | dll::load_mode::rtld_local);
  if (!library.has(api::kDescriptorSymbol)) return nullptr;
  return library.get<const api::ModuleDescriptor*>(api::kDescriptorSymbol);
}

TEST(ModuleLibraryTest, DescriptorNamesTheAllocator) {
  dll::shared_library library;
  const api::ModuleDescriptor* descriptor = load(library);
  ASSERT_NE(descriptor, nullptr);
  EXPECT_EQ(descriptor->api_version, api::kApiVersion);
  EXPECT_STREQ(descriptor->fingerprint, TESSERA_BUILD_FINGERPRINT);
  EXPECT_EQ(std::string_view(descriptor->kind), api::kKindAllocator);
  EXPECT_STREQ(descriptor->name, "org_tessera_allocator_drf");
  keepOpen(std::move(library));
}

TEST(ModuleLibraryTest, CreatesAndRunsAnAllocator) {
  dll::shared_library library;
  const api::ModuleDescriptor* descriptor = load(library);
  ASSERT_NE(descriptor, nullptr);
  TestContext context;
  {
    auto created = descriptor->create(params({{"allocation_interval", "250ms"}}), context);
    ASSERT_TRUE(created.isOk()) << created.status().toString();
    // The kernel checks the kind, then static_casts (no dynamic_cast across the boundary).
    std::unique_ptr<api::Allocator> allocator(static_cast<api::Allocator*>(created->release()));
    std::vector<std::string> offered;
    api::AllocatorOptions options;
    options.offerCallback = [&](std::string_view framework, std::vector<api::Offer> offers) {
      for (const api::Offer& offer : offers) {
        offered.push_back(std::string(framework) + "@" + offer.agentId);
      }
    };
    ASSERT_TRUE(allocator->initialize(std::move(options)).isOk());
    ASSERT_TRUE(allocator->addAgent("a1", testing::res("cpus:2;mem:1024"), {}).isOk());
    api::FrameworkOptions framework;
    framework.roles = {"web"};
    ASSERT_TRUE(allocator->addFramework("f1", framework, {}, true).isOk());
    context.executor_.runAll();  // the run the agent's arrival scheduled
    EXPECT_EQ(offered, (std::vector<std::string>{"f1@a1"}));
    EXPECT_GE(context.metrics_.counters["allocator/drf/allocation_runs"].value(), 1u);
    EXPECT_GE(context.metrics_.timers["allocator/drf/allocation_run_ms"].count, 1);
    ASSERT_EQ(context.metrics_.gauges.count("allocator/drf/roles/web/shares/dominant"), 1u);
    EXPECT_DOUBLE_EQ(context.metrics_.gauges["allocator/drf/roles/web/shares/dominant"](), 1.0);
    EXPECT_EQ(context.metrics_.gauges["allocator/drf/offer_filters/active"](), 0.0);
    allocator->stop();
  }
  EXPECT_FALSE(descriptor->create(params({{"allocation_interval", "soon"}}), context).isOk());
  keepOpen(std::move(library));
}

}  // namespace
}  // namespace tessera::modules::drf
