// `tessera framework` (runFramework): a daemon of role "framework" hosting the example module
// against a fake master, until a stop signal.

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <future>
#include <thread>

#include "kernel/cli/framework.h"
#include "kernel/runtime/runtime.h"
#include "tests/scheduler/fake_master.h"
#include "tests/support/subprocess.h"

namespace tessera::kernel::cli {
namespace {

using namespace std::chrono_literals;
using scheduler::testing::FakeMaster;
using v1::scheduler::Call;

TEST(FrameworkCommandTest, HostsTheModuleUntilStopped) {
  runtime::Runtime runtime;
  runtime.start();
  {
    FakeMaster master(runtime);
    testing::TempDir dir;
    auto manifest = dir.write(
        "modules.json",
        fmt::format(R"({{"libraries":[{{"file":"{}/tests/modules/libtest_sleep_framework.so",)"
                    R"("modules":[{{"name":"org_tessera_test_sleep_framework"}}]}}]}})",
                    TESSERA_BINARY_DIR));
    std::promise<int> done;
    std::thread thread([&] {
      done.set_value(
          runFramework({"--module=org_tessera_test_sleep_framework", "--master=" + master.address(),
                        "--modules=" + manifest.string(), "--port=0", "--quiet"}));
    });
    auto future = done.get_future();
    if (!master.waitForCalls(Call::SUBSCRIBE, 1, 20s)) {
      thread.join();  // it can only have ended early
      FAIL() << "no SUBSCRIBE; runFramework returned " << future.get();
    }
    // The command's thread blocks the stop signals and waits for one.
    pthread_kill(thread.native_handle(), SIGTERM);
    ASSERT_EQ(future.wait_for(20s), std::future_status::ready);
    thread.join();
    EXPECT_EQ(future.get(), 0);
  }
  runtime.stop();
}

TEST(FrameworkCommandTest, FlagErrors) {
  EXPECT_EQ(runFramework({"--master=127.0.0.1:5050"}), 1);  // --module is required
  EXPECT_EQ(runFramework({"--module=x", "--master=zk://h/tessera", "--quiet"}), 1);  // no port
}

}  // namespace
}  // namespace tessera::kernel::cli
