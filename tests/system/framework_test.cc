// The framework kind end to end: the example framework module (keeps N sleep tasks running)
// loaded inside `tessera local --frameworks` and in its own `tessera framework` process, against
// a real master and agent.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include "tests/support/subprocess.h"

namespace tessera::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFramework = "org_tessera_test_sleep_framework";

// A manifest with what a cluster needs plus the example framework, keeping `tasks` running.
std::string manifest(int tasks) {
  const fs::path lib = fs::path(TESSERA_BINARY_DIR) / "lib" / "tessera";
  const fs::path testModules = fs::path(TESSERA_BINARY_DIR) / "tests" / "modules";
  return fmt::format(
      R"({{"libraries": [
  {{"file": "{}", "modules": [{{"name": "org_tessera_allocator_drf",
    "parameters": [{{"key": "allocation_interval", "value": "100ms"}}]}}]}},
  {{"file": "{}", "modules": [{{"name": "org_tessera_containerizer_native"}}]}},
  {{"file": "{}", "modules": [{{"name": "{}", "parameters": [
    {{"key": "tasks", "value": "{}"}}, {{"key": "command", "value": "sleep 1000"}}]}}]}}
]}})",
      (lib / "libtessera_allocator_drf.so").string(),
      (lib / "libtessera_containerizer_native.so").string(),
      (testModules / "libtest_sleep_framework.so").string(), kFramework, tasks);
}

// Tasks in state TASK_RUNNING of the framework called `name`, per the master's /state.
size_t runningTasks(uint16_t port, const std::string& name) {
  auto response = httpRequest(port, "GET", "/state");
  if (!response || response->status != 200) return 0;
  auto state = Poco::JSON::Parser().parse(response->body).extract<Poco::JSON::Object::Ptr>();
  auto frameworks = state->getArray("frameworks");
  size_t running = 0;
  for (size_t i = 0; frameworks && i < frameworks->size(); ++i) {
    auto framework = frameworks->getObject(i);
    if (framework->getValue<std::string>("name") != name) continue;
    auto tasks = framework->getArray("tasks");
    for (size_t j = 0; tasks && j < tasks->size(); ++j) {
      if (tasks->getObject(j)->getValue<std::string>("state") == "TASK_RUNNING") ++running;
    }
  }
  return running;
}

class FrameworkSystemTest : public ::testing::Test {
 protected:
  std::unique_ptr<Subprocess> start(std::vector<std::string> argv) {
    auto process = Subprocess::start(
        {std::move(argv), {{"TESSERA_CONFIG_DIR", config_.path().string()}}, {}, std::nullopt});
    EXPECT_TRUE(process) << process.status().message();
    return process ? std::move(process).value() : nullptr;
  }

  TempDir config_;
  uint16_t port_ = freePort();
};

TEST_F(FrameworkSystemTest, ModuleRunsInsideLocal) {
  auto local =
      start({tesseraBinary().string(), "local", fmt::format("--port={}", port_),
             "--modules=" + manifest(2), fmt::format("--frameworks={}", kFramework), "--quiet"});
  ASSERT_TRUE(local);
  EXPECT_TRUE(waitFor([&] { return runningTasks(port_, "sleep-framework") == 2; })) << local->err();
  local->kill(SIGTERM);
  ASSERT_TRUE(local->wait(std::chrono::seconds(30)));
  EXPECT_EQ(local->exitCode(), 0) << local->err();
}

TEST_F(FrameworkSystemTest, ModuleRunsInItsOwnProcess) {
  auto local = start({tesseraBinary().string(), "local", fmt::format("--port={}", port_),
                      "--modules=" + manifest(0), "--quiet"});
  ASSERT_TRUE(local);
  ASSERT_TRUE(waitFor([&] {
    auto health = httpRequest(port_, "GET", "/health");
    return health && health->status == 200;
  }));
  uint16_t frameworkPort = freePort();
  auto framework =
      start({tesseraBinary().string(), "framework", fmt::format("--module={}", kFramework),
             fmt::format("--master=127.0.0.1:{}", port_), fmt::format("--port={}", frameworkPort),
             "--modules=" + manifest(3), "--quiet"});
  ASSERT_TRUE(framework);
  EXPECT_TRUE(waitFor([&] { return runningTasks(port_, "sleep-framework") == 3; }))
      << framework->err();
  // The module's own routes are served on the framework host's port.
  auto own = httpRequest(frameworkPort, "GET", fmt::format("/test/{}/framework", kFramework));
  ASSERT_TRUE(own);
  EXPECT_EQ(own->status, 200);
  EXPECT_THAT(own->body, ::testing::HasSubstr("\"subscribed\":true"));

  framework->kill(SIGTERM);
  ASSERT_TRUE(framework->wait(std::chrono::seconds(30)));
  EXPECT_EQ(framework->exitCode(), 0) << framework->err();
  local->kill(SIGTERM);
  ASSERT_TRUE(local->wait(std::chrono::seconds(30)));
}

}  // namespace
}  // namespace tessera::testing
