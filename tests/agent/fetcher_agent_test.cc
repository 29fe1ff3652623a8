// The fetcher inside a real agent (a whole cluster in one process, tests/cluster): a task's
// URIs are in its sandbox before its command runs; a URI that cannot be fetched fails the task
// with REASON_CONTAINER_LAUNCH_FAILED; a kill during the fetch ends the task without launching.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/agent/test_http_server.h"
#include "tests/cluster/cluster_fixture.h"

namespace tessera::kernel::cluster::testing {
namespace {

using ::testing::HasSubstr;
using HttpServer = agent::testing::TestHttpServer;

class FetcherAgentTest : public ClusterFixture {
 protected:
  /// Launches `command` as `taskId` on `offer` with `uris`.
  api::Status launchWithUris(TestFramework& framework, const v1::Offer& offer,
                             const std::string& taskId, const std::string& command,
                             const std::vector<v1::CommandInfo::URI>& uris) {
    v1::Offer::Operation operation;
    operation.set_type(v1::Offer::Operation::LAUNCH);
    auto* task = operation.mutable_launch()->add_task_infos();
    task->set_name(taskId);
    task->mutable_task_id()->set_value(taskId);
    *task->mutable_agent_id() = offer.agent_id();
    *task->mutable_resources() = api::Resources::parse("cpus:0.1;mem:32").value().toProto();
    task->mutable_command()->set_value(command);
    for (const auto& uri : uris) *task->mutable_command()->add_uris() = uri;
    v1::Filters filters;
    filters.set_refuse_seconds(0);
    return framework.call([id = offer.id(), operation, filters](api::SchedulerDriver& driver,
                                                                api::CallCallback done) {
      driver.accept({id}, {operation}, filters, std::move(done));
    });
  }

  static v1::CommandInfo::URI uri(const std::string& value, bool executable = false) {
    v1::CommandInfo::URI u;
    u.set_value(value);
    u.set_executable(executable);
    return u;
  }

  HttpServer http_;
};

TEST_F(FetcherAgentTest, TheUrisAreInTheSandboxBeforeTheCommandRuns) {
  http_.serve("/tool.sh", "#!/bin/sh\necho fetched-tool\n");
  startCluster(1);
  auto& framework = addFramework();
  ASSERT_FALSE(framework.subscribe().empty());
  auto offer = framework.offer();
  ASSERT_TRUE(offer);
  ASSERT_TRUE(launchWithUris(framework, *offer, "fetching",
                             "test -x ./tool.sh && ./tool.sh && test -s ./fetcher.log",
                             {uri(http_.url("/tool.sh"), true)}));
  auto terminal = framework.terminalUpdate("fetching");
  ASSERT_TRUE(terminal);
  EXPECT_EQ(terminal->state(), v1::TASK_FINISHED) << terminal->message();
  EXPECT_EQ(http_.requests("/tool.sh"), 1);
}

TEST_F(FetcherAgentTest, AUriThatCannotBeFetchedFailsTheTask) {
  startCluster(1);
  auto& framework = addFramework();
  ASSERT_FALSE(framework.subscribe().empty());
  auto offer = framework.offer();
  ASSERT_TRUE(offer);
  const std::string missing = http_.url("/missing.tgz");
  ASSERT_TRUE(launchWithUris(framework, *offer, "unlucky", "true", {uri(missing)}));
  auto status = framework.update("unlucky");  // the first update is already the last
  ASSERT_TRUE(status);
  EXPECT_EQ(status->state(), v1::TASK_FAILED);
  EXPECT_EQ(status->reason(), v1::TaskStatus::REASON_CONTAINER_LAUNCH_FAILED);
  EXPECT_EQ(status->source(), v1::TaskStatus::SOURCE_AGENT);
  EXPECT_THAT(status->message(), HasSubstr("Failed to fetch '" + missing + "': HTTP 404"));
}

TEST_F(FetcherAgentTest, AKillDuringTheFetchEndsTheTaskWithoutLaunchingIt) {
  startCluster(1);
  auto& framework = addFramework();
  ASSERT_FALSE(framework.subscribe().empty());
  auto offer = framework.offer();
  ASSERT_TRUE(offer);
  ASSERT_TRUE(
      launchWithUris(framework, *offer, "stalled", "touch ran", {uri(http_.url("/stall"))}));
  ASSERT_TRUE(http_.waitForRequests("/stall", 1));
  ASSERT_TRUE(framework.kill("stalled", offer->agent_id().value()));
  auto status = framework.update("stalled");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->state(), v1::TASK_KILLED) << status->message();
  EXPECT_EQ(status->reason(), v1::TaskStatus::REASON_TASK_KILLED_DURING_LAUNCH);
}

}  // namespace
}  // namespace tessera::kernel::cluster::testing
