#include "modules/framework_chronos/graph.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace tessera::modules::chronos {
namespace {

using Names = std::vector<std::string>;
using Seconds = std::chrono::seconds;

JobGraph::TimePoint at(int64_t seconds) { return JobGraph::TimePoint{Seconds{seconds}}; }

// a -> c <- b, c -> d
JobGraph diamond() {
  JobGraph graph;
  for (const char* name : {"a", "b", "c", "d"}) EXPECT_TRUE(graph.addJob(name).isOk());
  EXPECT_TRUE(graph.setParents("c", {"a", "b"}).isOk());
  EXPECT_TRUE(graph.setParents("d", {"c"}).isOk());
  return graph;
}

TEST(JobGraphTest, AddRemoveAndLinks) {
  JobGraph graph = diamond();
  EXPECT_EQ(graph.size(), 4u);
  EXPECT_EQ(graph.jobs(), (Names{"a", "b", "c", "d"}));
  EXPECT_EQ(graph.parents("c"), (Names{"a", "b"}));
  EXPECT_EQ(graph.children("a"), (Names{"c"}));
  EXPECT_EQ(graph.children("c"), (Names{"d"}));
  EXPECT_TRUE(graph.parents("nope").empty());
  EXPECT_EQ(graph.addJob("a").code(), api::StatusCode::kAlreadyExists);
  EXPECT_EQ(graph.addJob("").code(), api::StatusCode::kInvalidArgument);

  auto orphans = graph.removeJob("c");
  ASSERT_TRUE(orphans.isOk());
  EXPECT_EQ(*orphans, (Names{"d"}));
  EXPECT_FALSE(graph.contains("c"));
  EXPECT_TRUE(graph.children("a").empty());
  EXPECT_TRUE(graph.parents("d").empty());
  EXPECT_EQ(graph.removeJob("c").status().code(), api::StatusCode::kNotFound);
}

TEST(JobGraphTest, SetParentsErrorsChangeNothing) {
  JobGraph graph = diamond();
  auto unknown = graph.setParents("c", {"a", "ghost"});
  EXPECT_EQ(unknown.code(), api::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.message().find("'ghost'"), std::string::npos) << unknown.message();
  EXPECT_EQ(graph.parents("c"), (Names{"a", "b"}));

  auto self = graph.setParents("a", {"a"});
  EXPECT_EQ(self.code(), api::StatusCode::kInvalidArgument);
  EXPECT_NE(self.message().find("own parent"), std::string::npos) << self.message();

  // a -> c -> d, so d cannot be a's parent.
  auto cycle = graph.setParents("a", {"b", "d"});
  EXPECT_EQ(cycle.code(), api::StatusCode::kInvalidArgument);
  EXPECT_NE(cycle.message().find("'a' -> 'c' -> 'd' -> 'a'"), std::string::npos) << cycle.message();
  EXPECT_TRUE(graph.parents("a").empty());
  EXPECT_TRUE(graph.children("b") == (Names{"c"}));
  EXPECT_TRUE(graph.children("d").empty());

  EXPECT_EQ(graph.setParents("zzz", {"a"}).code(), api::StatusCode::kNotFound);
}

TEST(JobGraphTest, ReplacingParentsMovesLinks) {
  JobGraph graph = diamond();
  ASSERT_TRUE(graph.setParents("c", {"b", "b"}).isOk());  // duplicates are one parent
  EXPECT_EQ(graph.parents("c"), (Names{"b"}));
  EXPECT_TRUE(graph.children("a").empty());
  ASSERT_TRUE(graph.setParents("c", {}).isOk());
  EXPECT_TRUE(graph.children("b").empty());
  EXPECT_FALSE(graph.ready("c"));
  // With c cut loose, nothing leads from a to d any more, so d may be a's parent.
  ASSERT_TRUE(graph.setParents("a", {"d"}).isOk());
  EXPECT_EQ(graph.children("d"), (Names{"a"}));
}

TEST(JobGraphTest, ChildReadyOnceAllParentsSucceededSinceItsLastStart) {
  JobGraph graph = diamond();
  EXPECT_TRUE(graph.parentSucceeded("a", at(10)).empty());  // b has not yet
  EXPECT_FALSE(graph.ready("c"));
  EXPECT_TRUE(graph.parentSucceeded("a", at(20)).empty());  // a twice is still not b
  EXPECT_EQ(graph.parentSucceeded("b", at(30)), (Names{"c"}));
  EXPECT_TRUE(graph.ready("c"));
  // Already ready and not started yet: another success does not make it ready twice.
  EXPECT_TRUE(graph.parentSucceeded("a", at(35)).empty());
  graph.childStarted("c", at(40));
  EXPECT_FALSE(graph.ready("c"));
  // Each parent must succeed again after the start.
  EXPECT_TRUE(graph.parentSucceeded("b", at(50)).empty());
  EXPECT_EQ(graph.parentSucceeded("a", at(60)), (Names{"c"}));
  // A single-parent child is ready on each success, once per start.
  EXPECT_EQ(graph.parentSucceeded("c", at(70)), (Names{"d"}));
  EXPECT_TRUE(graph.parentSucceeded("c", at(80)).empty());
  graph.childStarted("d", at(90));
  EXPECT_EQ(graph.parentSucceeded("c", at(100)), (Names{"d"}));
  EXPECT_TRUE(graph.parentSucceeded("nope", at(100)).empty());
  graph.childStarted("nope", at(100));  // ignored
}

TEST(JobGraphTest, NewParentMustSucceedBeforeTheChildIsReady) {
  JobGraph graph = diamond();
  EXPECT_TRUE(graph.parentSucceeded("a", at(10)).empty());
  ASSERT_TRUE(graph.addJob("e").isOk());
  ASSERT_TRUE(graph.setParents("c", {"a", "b", "e"}).isOk());
  EXPECT_TRUE(graph.parentSucceeded("b", at(20)).empty());  // a kept, b now, e missing
  EXPECT_EQ(graph.parentSucceeded("e", at(30)), (Names{"c"}));
  // Removing the parent that was missing leaves the child ready by the others.
  graph.childStarted("c", at(40));
  EXPECT_TRUE(graph.parentSucceeded("a", at(50)).empty());
  EXPECT_TRUE(graph.parentSucceeded("b", at(50)).empty());
  ASSERT_TRUE(graph.removeJob("e").isOk());
  EXPECT_TRUE(graph.ready("c"));
}

TEST(JobGraphTest, RestoreFromStoredTimes) {
  JobGraph graph = diamond();
  // After a failover: a succeeded at 100 and b at 50, c last started at 60.
  graph.restore("a", at(100), std::nullopt);
  graph.restore("b", at(50), std::nullopt);
  graph.restore("c", std::nullopt, at(60));
  graph.restore("d", std::nullopt, std::nullopt);
  EXPECT_FALSE(graph.ready("c"));  // b's success predates c's start
  EXPECT_EQ(graph.parentSucceeded("b", at(110)), (Names{"c"}));
  // A child that never started is ready when every parent has ever succeeded.
  JobGraph fresh = diamond();
  fresh.restore("a", at(1), std::nullopt);
  fresh.restore("b", at(2), std::nullopt);
  fresh.restore("c", std::nullopt, std::nullopt);
  EXPECT_TRUE(fresh.ready("c"));
  EXPECT_FALSE(fresh.ready("d"));
}

TEST(JobGraphTest, DotAndCsv) {
  JobGraph graph = diamond();
  EXPECT_EQ(graph.toDot(),
            "digraph G {\n"
            "  1 [ label=\"a\" ];\n"
            "  2 [ label=\"b\" ];\n"
            "  3 [ label=\"c\" ];\n"
            "  4 [ label=\"d\" ];\n"
            "  1 -> 3;\n"
            "  2 -> 3;\n"
            "  3 -> 4;\n"
            "}\n");
  std::map<std::string, std::pair<LastStatus, JobState>> status = {
      {"a", {LastStatus::kSuccess, JobState::kIdle}},
      {"b", {LastStatus::kFailure, JobState::kQueued}},
      {"c", {LastStatus::kFresh, JobState::kRunning}},
      {"d", {LastStatus::kFresh, JobState::kIdle}}};
  EXPECT_EQ(graph.toCsv([&](const std::string& name) { return status.at(name); }),
            "node,a,success,idle\n"
            "node,b,failure,queued\n"
            "node,c,fresh,running\n"
            "node,d,fresh,idle\n"
            "link,a,c\n"
            "link,b,c\n"
            "link,c,d\n");
  EXPECT_EQ(JobGraph().toDot(), "digraph G {\n}\n");
  EXPECT_EQ(JobGraph().toCsv([](const std::string&) {
    return std::pair{LastStatus::kFresh, JobState::kIdle};
  }),
            "");
}

TEST(JobGraphTest, LastStatusFromTimes) {
  EXPECT_EQ(lastStatusOf(std::nullopt, std::nullopt), LastStatus::kFresh);
  EXPECT_EQ(lastStatusOf(at(1), std::nullopt), LastStatus::kSuccess);
  EXPECT_EQ(lastStatusOf(std::nullopt, at(1)), LastStatus::kFailure);
  EXPECT_EQ(lastStatusOf(at(2), at(1)), LastStatus::kSuccess);
  EXPECT_EQ(lastStatusOf(at(1), at(2)), LastStatus::kFailure);
  EXPECT_EQ(lastStatusOf(at(1), at(1)), LastStatus::kFailure);
  EXPECT_EQ(lastStatusName(LastStatus::kFresh), "fresh");
  EXPECT_EQ(jobStateName(JobState::kQueued), "queued");
}

TEST(JobGraphTest, DeepChainCycleCheckIsLinear) {
  JobGraph graph;
  constexpr int kJobs = 20000;
  for (int i = 0; i < kJobs; ++i) ASSERT_TRUE(graph.addJob(fmt::format("j{}", i)).isOk());
  for (int i = 1; i < kJobs; ++i) {
    ASSERT_TRUE(graph.setParents(fmt::format("j{}", i), {fmt::format("j{}", i - 1)}).isOk());
  }
  auto cycle = graph.setParents("j0", {fmt::format("j{}", kJobs - 1)});
  EXPECT_EQ(cycle.code(), api::StatusCode::kInvalidArgument);
  EXPECT_TRUE(graph.parents("j0").empty());
}

}  // namespace
}  // namespace tessera::modules::chronos
