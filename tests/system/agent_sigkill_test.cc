// Health checks and the fetcher across an agent killed with SIGKILL, with real processes: the
// agent dies in the middle of a check, or of a download, and starts again on the same work dir.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/agent/test_http_server.h"
#include "tests/system/agent_system_fixture.h"

namespace tessera::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

size_t lineCount(const fs::path& file) {
  std::ifstream in(file);
  size_t lines = 0;
  for (std::string line; std::getline(in, line);) ++lines;
  return lines;
}

using AgentSigkillTest = AgentSystemFixture;

// A COMMAND check that logs each run and takes a second: the agent is killed while one runs.
// The restarted agent checks the recovered task again, and kills it once the check fails.
TEST_F(AgentSigkillTest, HealthChecksResumeAfterTheAgentIsKilledMidCheck) {
  startMaster();
  startAgent();
  const fs::path log = dir_.path() / "checks";
  const fs::path sick = dir_.path() / "sick";
  const std::string check =
      fmt::format(R"("health_check":{{"type":"COMMAND","command":{{"value":{}}},"delay_seconds":0,)"
                  R"("interval_seconds":0.2,"timeout_seconds":20,"consecutive_failures":2,)"
                  R"("grace_period_seconds":0}})",
                  jsonString(fmt::format("echo started >> {}; sleep 1; test ! -e {}", log.string(),
                                         sick.string())));
  execute({"--task=" + taskJson("checked", "exec sleep 600", 0.1, 32, check)});
  ASSERT_TRUE(waitForState("checked", "TASK_RUNNING")) << run_->out() << run_->err();
  // A check has passed (the second has started), and a third has just started: kill now.
  ASSERT_TRUE(waitFor([&] { return lineCount(log) >= 2; }, 60s)) << run_->out();
  const size_t before = lineCount(log);
  ASSERT_TRUE(waitFor([&] { return lineCount(log) > before; }, 30s));
  killAgent();
  const size_t atKill = lineCount(log);

  startAgent();
  ASSERT_EQ(taskState(masterPort_, "checked"), "TASK_RUNNING");
  // The recovered task is checked again...
  ASSERT_TRUE(waitFor([&] { return lineCount(log) >= atKill + 2; }, 60s))
      << "no check ran after the restart";
  EXPECT_THAT(run_->out(), ::testing::Not(HasSubstr("TASK_KILLED")));
  // ...and a failing check still kills it, saying why.
  std::ofstream(sick) << "now";
  ASSERT_TRUE(run_->wait(90s)) << run_->out() << run_->err();
  EXPECT_THAT(run_->out(), HasSubstr("Received status update TASK_KILLED for task 'checked'"));
  EXPECT_THAT(run_->out(), HasSubstr("health check failed"));
}

// The agent is killed while a cached download is half done. The task, which never started, fails
// cleanly after the restart; the half-written file is never used: the next task fetching the
// same URI downloads it again and gets all of it.
TEST_F(AgentSigkillTest, AFetchCutByAnAgentKillLeavesNoHalfWrittenCacheEntry) {
  kernel::agent::testing::TestHttpServer server;
  std::string payload(4 << 20, 'x');
  payload.replace(payload.size() - 3, 3, "END");
  server.serve("/payload.bin", payload);
  server.cutHalfway("/payload.bin");

  startMaster();
  startAgent();
  const std::string uris = fmt::format(
      R"("command":{{"value":{},"uris":[{{"value":"{}","cache":true,"output_file":"payload"}}]}})",
      jsonString(fmt::format("test $(wc -c < payload) -eq {} && test $(tail -c 3 payload) = END",
                             payload.size())),
      server.url("/payload.bin"));
  // taskJson's own command is replaced by the one with the URIs.
  auto withUris = [&](const std::string& id) {
    std::string task = taskJson(id, "unused", 0.1, 32);
    const auto begin = task.find(R"("command":)");
    const auto end = task.find(R"(,"resources")");
    return task.replace(begin, end - begin, uris);
  };

  execute({"--task=" + withUris("cut")});
  ASSERT_TRUE(server.waitForRequests("/payload.bin", 1)) << run_->out() << run_->err();
  // Half of the file is on its way into the agent's cache when the agent dies.
  const fs::path cache = agentWorkDir() / "fetch";
  ASSERT_TRUE(waitFor(
      [&] {
        std::error_code error;
        for (const auto& entry : fs::recursive_directory_iterator(cache, error)) {
          if (entry.is_regular_file(error) && entry.file_size(error) > 0) return true;
        }
        return false;
      },
      30s))
      << "no partial download in " << cache;
  killAgent();
  server.release("/payload.bin");

  startAgent();
  ASSERT_TRUE(run_->wait(60s)) << run_->out() << run_->err();
  EXPECT_THAT(run_->out(), HasSubstr("Received status update TASK_FAILED for task 'cut'"));
  EXPECT_THAT(run_->out(), HasSubstr("(reason: REASON_CONTAINER_LAUNCH_FAILED)"));
  EXPECT_THAT(run_->out(), ::testing::Not(HasSubstr("TASK_RUNNING")));

  // The same URI again: downloaded anew, whole.
  execute({"--task=" + withUris("whole")});
  ASSERT_TRUE(run_->wait(60s)) << run_->out() << run_->err();
  EXPECT_EQ(run_->exitCode(), 0) << run_->out();
  EXPECT_THAT(run_->out(), HasSubstr("Received status update TASK_FINISHED for task 'whole'"));
  EXPECT_EQ(server.requests("/payload.bin"), 2);
}

}  // namespace
}  // namespace tessera::testing
