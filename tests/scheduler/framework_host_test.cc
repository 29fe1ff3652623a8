// FrameworkHost: loads the example framework module (a real .so), binds a driver to its
// executor and calls start(); the module subscribes to a fake master and launches its tasks.

#include "kernel/scheduler/framework_host.h"

#include <gtest/gtest.h>

#include <future>

#include "kernel/cli/daemon.h"
#include "kernel/runtime/runtime.h"
#include "kernel/state/memory_store.h"
#include "tests/scheduler/fake_master.h"
#include "tests/support/subprocess.h"

namespace tessera::kernel::scheduler {
namespace {

using namespace std::chrono_literals;
using testing::FakeMaster;
using v1::scheduler::Call;
using v1::scheduler::Event;

constexpr const char* kModule = "org_tessera_test_sleep_framework";

std::string manifest(int tasks) {
  return fmt::format(
      R"({{"libraries":[{{"file":"{}/tests/modules/libtest_sleep_framework.so","modules":[)"
      R"({{"name":"{}","parameters":[{{"key":"tasks","value":"{}"}},)"
      R"({{"key":"command","value":"sleep 1000"}}]}}]}}]}})",
      TESSERA_BINARY_DIR, kModule, tasks);
}

FrameworkHostOptions hostOptions(std::string module, std::string master) {
  FrameworkHostOptions options;
  options.module = std::move(module);
  options.master = std::move(master);
  return options;
}

cli::Daemon::Options daemonOptions(const tessera::testing::TempDir& dir, int tasks) {
  cli::Daemon::Options options;
  options.role = "framework";
  options.common.port = 0;
  options.common.modules = dir.write("modules.json", manifest(tasks)).string();
  options.flags = [] { return std::map<std::string, std::string>{}; };
  return options;
}

TEST(FrameworkHostTest, LoadsTheModuleAndStartsItWithADriver) {
  runtime::Runtime masterRuntime;
  masterRuntime.start();
  {
    FakeMaster master(masterRuntime);
    master.onCall([&master](const Call& call) {
      if (call.type() != Call::SUBSCRIBE) return;
      Event offers;
      offers.set_type(Event::OFFERS);
      *offers.mutable_offers()->add_offers() = testing::makeOffer("o-1", "a-1", "cpus:4;mem:4096");
      master.send(offers);
    });
    tessera::testing::TempDir dir;
    cli::Daemon daemon(daemonOptions(dir, 3));
    ASSERT_TRUE(daemon.start().isOk());
    {
      FrameworkHost host(daemon.runtime(), daemon.modules(),
                         hostOptions(kModule, master.address()));
      ASSERT_TRUE(host.start().isOk());
      ASSERT_TRUE(daemon.serve().isOk());
      ASSERT_NE(host.framework(), nullptr);
      ASSERT_TRUE(master.waitForCalls(Call::SUBSCRIBE, 1));
      EXPECT_EQ(master.callsOf(Call::SUBSCRIBE)[0].call.subscribe().framework_info().name(),
                "sleep-framework");
      // It launches its 3 tasks on the one offer, and reconciles after subscribing.
      ASSERT_TRUE(master.waitForCalls(Call::ACCEPT, 1));
      auto accepts = master.callsOf(Call::ACCEPT);
      const auto& accept = accepts.at(0).call.accept();
      ASSERT_EQ(accept.operations_size(), 3);
      EXPECT_EQ(accept.operations(2).launch().task_infos(0).command().value(), "sleep 1000");
      EXPECT_TRUE(master.waitForCalls(Call::RECONCILE, 1));
      // Its routes are served on the daemon's port.
      auto state = tessera::testing::httpRequest(daemon.port(), "GET",
                                                 fmt::format("/test/{}/framework", kModule));
      ASSERT_TRUE(state.isOk());
      EXPECT_EQ(state->status, 200);
      EXPECT_NE(state->body.find(R"("started":true,"subscribed":true,"framework_id":"fw-1")"),
                std::string::npos)
          << state->body;
      EXPECT_NE(state->body.find(R"("launched":3)"), std::string::npos) << state->body;
      host.stop();
      daemon.stop();
    }
  }
  masterRuntime.stop();
}

// Stopping the daemon's modules first stops the driver before the module; the host may go later.
TEST(FrameworkHostTest, ModuleHostStoppingFirstIsSafe) {
  runtime::Runtime masterRuntime;
  masterRuntime.start();
  {
    FakeMaster master(masterRuntime);
    tessera::testing::TempDir dir;
    cli::Daemon daemon(daemonOptions(dir, 1));
    ASSERT_TRUE(daemon.start().isOk());
    FrameworkHost host(daemon.runtime(), daemon.modules(), hostOptions(kModule, master.address()));
    ASSERT_TRUE(host.start().isOk());
    ASSERT_TRUE(master.waitForCalls(Call::SUBSCRIBE, 1));
    auto* driver = host.driver();
    daemon.modules().stopAll();
    EXPECT_FALSE(driver->subscribed());
    host.stop();  // nothing left to do
    daemon.stop();
  }
  masterRuntime.stop();
}

// With a store, the host keeps the FrameworkID out of the module's key space and the next host
// (a restart) subscribes with it; the module's own keys live under /modules/<module>.
TEST(FrameworkHostTest, KeepsTheFrameworkIdAndReusesIt) {
  runtime::Runtime masterRuntime;
  masterRuntime.start();
  {
    FakeMaster master(masterRuntime);
    state::MemoryStore store;
    for (int round = 0; round < 2; ++round) {
      tessera::testing::TempDir dir;
      cli::Daemon daemon(daemonOptions(dir, 0));
      ASSERT_TRUE(daemon.start().isOk());
      auto options = hostOptions(kModule, master.address());
      options.state = &store;
      options.failoverTimeout = std::chrono::seconds(60);
      FrameworkHost host(daemon.runtime(), daemon.modules(), std::move(options));
      ASSERT_TRUE(host.start().isOk());
      ASSERT_TRUE(host.leadership()->leading());
      ASSERT_TRUE(master.waitForCalls(Call::SUBSCRIBE, round + 1));
      const auto calls = master.callsOf(Call::SUBSCRIBE);
      const auto& info = calls.at(round).call.subscribe().framework_info();
      // The example module sets its own failover_timeout (a week); the id is the host's.
      EXPECT_EQ(info.failover_timeout(), 7 * 24 * 3600.0);
      if (round == 0) {
        EXPECT_FALSE(info.has_id());
      } else {
        EXPECT_EQ(info.id().value(), "fw-1");
      }
      auto executor = daemon.runtime().makeExecutor();
      EXPECT_TRUE(tessera::testing::waitFor([&] {
        std::promise<std::string> value;
        store.get(frameworkIdKey(kModule), *executor,
                  [&](auto entry) { value.set_value(entry && *entry ? (*entry)->value : ""); });
        return value.get_future().get() == "fw-1";
      }));
      host.stop();
      daemon.stop();
    }
  }
  masterRuntime.stop();
}

TEST(FrameworkHostTest, ErrorsNameTheProblem) {
  tessera::testing::TempDir dir;
  cli::Daemon daemon(daemonOptions(dir, 1));
  ASSERT_TRUE(daemon.start().isOk());
  FrameworkHost zk(daemon.runtime(), daemon.modules(), hostOptions(kModule, "zk://h:2181/tessera"));
  auto status = zk.start();
  EXPECT_EQ(status.code(), api::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("zk://"), std::string::npos);
  FrameworkHost missing(daemon.runtime(), daemon.modules(),
                        hostOptions("org_nope", "127.0.0.1:5050"));
  EXPECT_EQ(missing.start().code(), api::StatusCode::kNotFound);
  daemon.stop();
}

}  // namespace
}  // namespace tessera::kernel::scheduler
