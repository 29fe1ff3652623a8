#include "kernel/modules/module_manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "kernel/runtime/logging.h"
#include "kernel/runtime/runtime.h"
#include "kernel/state/memory_store.h"

namespace tessera::kernel::modules {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const fs::path kModuleDir = fs::path(TESSERA_BINARY_DIR) / "tests" / "modules";

std::string lib(std::string_view target) {
  return (kModuleDir / fmt::format("lib{}.so", target)).string();
}

ManifestEntry entry(std::string_view target, std::string_view name,
                    std::vector<std::pair<std::string, std::string>> parameters = {}) {
  return ManifestEntry{
      lib(target), std::string(name), api::Parameters(std::move(parameters)), "test", {}};
}

/// A Context for factories run directly by the loader's tests (no daemon around them).
class TestContext final : public api::Context {
 public:
  class NullRouter final : public api::HttpRouter {
   public:
    api::Status addRoute(std::string_view, std::string_view path, api::HttpHandler handler,
                         bool) override {
      paths.emplace_back(path);
      handlers.push_back(std::move(handler));
      return api::Status::ok();
    }
    /// The body the handler of `path` answers a GET with.
    std::string get(std::string_view path) {
      for (size_t i = 0; i < paths.size(); ++i) {
        if (paths[i] != path) continue;
        std::string body;
        handlers[i](api::HttpRequest{}, [&](api::HttpResponse response) { body = response.body; });
        return body;
      }
      return "no route";
    }
    std::vector<std::string> paths;
    std::vector<api::HttpHandler> handlers;
  };
  class MapMetrics final : public api::Metrics {
   public:
    api::Counter& counter(std::string_view name) override { return counters[std::string(name)]; }
    api::Timer& timer(std::string_view) override { std::abort(); }
    void gauge(std::string_view name, std::function<double()> read) override {
      gauges[std::string(name)] = std::move(read);
    }
    void removeGauge(std::string_view name) override { gauges.erase(std::string(name)); }
    std::map<std::string, api::Counter> counters;
    std::map<std::string, std::function<double()>> gauges;
  };

  api::Logger& logger() override { return logger_; }
  api::Metrics& metrics() override { return metrics_; }
  api::Executor& executor() override { return *executor_; }
  api::HttpRouter& http() override { return router_; }
  std::string_view role() const override { return "test"; }
  std::string_view workDir() const override { return ""; }
  api::StateStore& state() override { return stateStore_; }
  kernel::state::MemoryStore stateStore_;

  runtime::Runtime runtime_;
  std::unique_ptr<runtime::StrandExecutor> executor_ = runtime_.makeExecutor();
  runtime::SpdLogger logger_{"test"};
  MapMetrics metrics_;
  NullRouter router_;
};

TEST(ModuleManagerTest, LoadsAGoodModuleAndCreatesIt) {
  ModuleManager manager;
  ASSERT_TRUE(manager.load({entry("test_good", "org_tessera_test_good", {{"greeting", "hi"}})}));
  ASSERT_EQ(manager.modules().size(), 1u);
  const LoadedModule& loaded = manager.modules()[0];
  EXPECT_EQ(loaded.kind, "anonymous");
  EXPECT_EQ(loaded.apiVersion, api::kApiVersion);
  EXPECT_EQ(loaded.library, lib("test_good"));
  EXPECT_EQ(loaded.description, "a module for the loader's tests");

  TestContext context;
  auto module = manager.create<api::Anonymous>("org_tessera_test_good", context);
  ASSERT_TRUE(module) << module.status().toString();
  EXPECT_THAT(context.router_.paths, ::testing::ElementsAre("/test/org_tessera_test_good/hello",
                                                            "/test/org_tessera_test_good/visits"));
  EXPECT_EQ(context.metrics_.gauges.count("test/hello_alive"), 1u);
  (*module)->stop();
}

TEST(ModuleManagerTest, OverridesAreAppendedToTheManifestParameters) {
  ModuleManager manager;
  ASSERT_TRUE(manager.load({entry("test_good", "org_tessera_test_good", {{"greeting", "hi"}})}));
  TestContext plain;
  auto module = manager.create<api::Anonymous>("org_tessera_test_good", plain);
  ASSERT_TRUE(module) << module.status().toString();
  EXPECT_EQ(plain.router_.get("/test/org_tessera_test_good/hello"), "hi");
  (*module)->stop();

  TestContext overridden;
  auto other = manager.create("org_tessera_test_good", api::kKindAnonymous, overridden,
                              {{"greeting", "from a flag"}});
  ASSERT_TRUE(other) << other.status().toString();
  EXPECT_EQ(overridden.router_.get("/test/org_tessera_test_good/hello"), "from a flag");
  (*other)->stop();
  // The manifest's own parameters are unchanged for later instances.
  EXPECT_EQ(manager.modules()[0].parameters.get("greeting"), "hi");
}

struct BrokenCase {
  std::string target;
  std::string name;
  std::string expected;  // the whole message, with {lib} for the library path
};

void PrintTo(const BrokenCase& c, std::ostream* out) { *out << c.target; }

class BrokenModuleTest : public ::testing::TestWithParam<BrokenCase> {};

TEST_P(BrokenModuleTest, RefusesWithItsOwnMessage) {
  const BrokenCase& c = GetParam();
  ModuleManager manager;
  std::vector<ManifestEntry> entries = {entry(c.target, c.name)};
  if (c.target == "test_duplicate") {
    entries.insert(entries.begin(), entry("test_good", "org_tessera_test_good"));
  }
  api::Status status = manager.load(entries);
  ASSERT_FALSE(status);
  std::string expected = c.expected;
  for (auto at = expected.find("{lib}"); at != std::string::npos; at = expected.find("{lib}")) {
    expected.replace(at, 5, lib(c.target));
  }
  EXPECT_EQ(status.message(), expected);
  // All or nothing: nothing of a failed load stays registered.
  EXPECT_TRUE(manager.modules().empty());
}

INSTANTIATE_TEST_SUITE_P(
    Matrix, BrokenModuleTest,
    ::testing::Values(
        BrokenCase{"test_no_symbol", "org_tessera_test_no_symbol",
                   "module library '{lib}' (module 'org_tessera_test_no_symbol'): no "
                   "'tessera_module_descriptor' symbol: not a Tessera module library"},
        BrokenCase{"test_api_version", "org_tessera_test_api_version",
                   fmt::format("module library '{{lib}}' (module 'org_tessera_test_api_version'): "
                               "built for module API version {}, this tessera loads version {}: "
                               "rebuild the module against this tessera's SDK",
                               api::kApiVersion + 98, api::kApiVersion)},
        BrokenCase{"test_fingerprint", "org_tessera_test_fingerprint",
                   fmt::format("module library '{{lib}}' (module 'org_tessera_test_fingerprint'): "
                               "built differently from this tessera: boost is 999999 in the "
                               "module, {} here: rebuild the module against this tessera's SDK "
                               "with the same compiler, C++ standard, Boost and protobuf "
                               "('tessera modules --check {{lib}}' shows each field)",
                               BOOST_VERSION)},
        BrokenCase{"test_kind", "org_tessera_test_kind",
                   "module library '{lib}' (module 'org_tessera_test_kind'): unknown kind "
                   "'frobnicator'"},
        BrokenCase{"test_duplicate", "org_tessera_test_good",
                   fmt::format("module library '{{lib}}' (module 'org_tessera_test_good'): "
                               "duplicate module name, already loaded from '{}'",
                               lib("test_good"))},
        BrokenCase{"test_good", "org_tessera_test_misnamed",
                   "module library '{lib}' exports module 'org_tessera_test_good', not "
                   "'org_tessera_test_misnamed'"}),
    [](const auto& info) { return info.param.target + "_" + std::to_string(info.index); });

TEST(ModuleManagerTest, MissingLibraryNamesTheFile) {
  ModuleManager manager;
  api::Status status = manager.load({entry("does_not_exist", "org_x")});
  ASSERT_FALSE(status);
  EXPECT_THAT(status.message(),
              HasSubstr(fmt::format("module library '{}' (module 'org_x'): cannot load: ",
                                    lib("does_not_exist"))));
  EXPECT_THAT(status.message(), HasSubstr("No such file or directory"));
}

TEST(ModuleManagerTest, FactoryErrorAndThrowAreReportedWithTheModule) {
  ModuleManager manager;
  ASSERT_TRUE(manager.load({entry("test_factory_error", "org_tessera_test_factory_error"),
                            entry("test_factory_throws", "org_tessera_test_factory_throws")}));
  TestContext context;
  auto failed = manager.create<api::Anonymous>("org_tessera_test_factory_error", context);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.status().message(),
            fmt::format("module library '{}' (module 'org_tessera_test_factory_error'): factory "
                        "failed: parameter 'size' is required",
                        lib("test_factory_error")));
  auto threw = manager.create<api::Anonymous>("org_tessera_test_factory_throws", context);
  ASSERT_FALSE(threw);
  EXPECT_EQ(threw.status().message(),
            fmt::format("module library '{}' (module 'org_tessera_test_factory_throws'): factory "
                        "threw: out of widgets",
                        lib("test_factory_throws")));
}

TEST(ModuleManagerTest, CreateChecksTheKind) {
  ModuleManager manager;
  ASSERT_TRUE(manager.load({entry("test_good", "org_tessera_test_good")}));
  TestContext context;
  auto wrong = manager.create("org_tessera_test_good", api::kKindAllocator, context);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.status().message(),
            "module 'org_tessera_test_good' is of kind 'anonymous', not 'allocator'");
  auto missing = manager.create("org_nope", api::kKindAnonymous, context);
  EXPECT_EQ(missing.status().code(), api::StatusCode::kNotFound);
}

TEST(FingerprintTest, DescribesEachDifferingField) {
  EXPECT_EQ(describeFingerprintMismatch("a=1;b=2", "a=1;b=2"), "");
  EXPECT_EQ(describeFingerprintMismatch("a=1;b=3;c=4", "a=1;b=2"),
            "b is 3 in the module, 2 here, c is 4 in the module, unknown here");
}

}  // namespace
}  // namespace tessera::kernel::modules
