#include "kernel/agent/task_phase.h"

#include <gtest/gtest.h>

#include <set>
#include <utility>
#include <vector>

namespace tessera::kernel::agent {
namespace {

constexpr TaskPhase kAllPhases[] = {
    TaskPhase::kStaging, TaskPhase::kRecovering,  TaskPhase::kLaunching,  TaskPhase::kCheckpointing,
    TaskPhase::kRunning, TaskPhase::kTerminating, TaskPhase::kTerminated, TaskPhase::kForgotten,
};

// The transitions task_phase.h documents, and no others.
const std::set<std::pair<TaskPhase, TaskPhase>> kAllowed = {
    {TaskPhase::kStaging, TaskPhase::kLaunching},
    {TaskPhase::kStaging, TaskPhase::kTerminated},
    {TaskPhase::kRecovering, TaskPhase::kRunning},
    {TaskPhase::kRecovering, TaskPhase::kTerminated},
    {TaskPhase::kLaunching, TaskPhase::kCheckpointing},
    {TaskPhase::kLaunching, TaskPhase::kTerminated},
    {TaskPhase::kCheckpointing, TaskPhase::kRunning},
    {TaskPhase::kCheckpointing, TaskPhase::kTerminating},
    {TaskPhase::kRunning, TaskPhase::kTerminating},
    {TaskPhase::kRunning, TaskPhase::kTerminated},
    {TaskPhase::kTerminating, TaskPhase::kTerminating},
    {TaskPhase::kTerminating, TaskPhase::kTerminated},
    {TaskPhase::kTerminated, TaskPhase::kForgotten},
};

TEST(TaskPhaseTest, AllowsExactlyTheDocumentedTransitions) {
  for (TaskPhase from : kAllPhases) {
    for (TaskPhase to : kAllPhases) {
      EXPECT_EQ(transitionAllowed(from, to), kAllowed.count({from, to}) == 1)
          << phaseName(from) << " -> " << phaseName(to);
    }
  }
}

TEST(TaskPhaseTest, TheNormalLifeAndTheKilledBeforeLaunchLifeAreAllowed) {
  const std::vector<std::vector<TaskPhase>> lives = {
      // Launched, ran, finished, acknowledged.
      {TaskPhase::kStaging, TaskPhase::kLaunching, TaskPhase::kCheckpointing, TaskPhase::kRunning,
       TaskPhase::kTerminated, TaskPhase::kForgotten},
      // Killed while running (twice).
      {TaskPhase::kStaging, TaskPhase::kLaunching, TaskPhase::kCheckpointing, TaskPhase::kRunning,
       TaskPhase::kTerminating, TaskPhase::kTerminating, TaskPhase::kTerminated,
       TaskPhase::kForgotten},
      // Killed while its container's checkpoint was written.
      {TaskPhase::kStaging, TaskPhase::kLaunching, TaskPhase::kCheckpointing,
       TaskPhase::kTerminating, TaskPhase::kTerminated},
      // Killed before launch.
      {TaskPhase::kStaging, TaskPhase::kLaunching, TaskPhase::kTerminated, TaskPhase::kForgotten},
      // Recovered running, then ended.
      {TaskPhase::kRecovering, TaskPhase::kRunning, TaskPhase::kTerminated},
      // Recovered terminal, its last update acknowledged.
      {TaskPhase::kRecovering, TaskPhase::kTerminated, TaskPhase::kForgotten},
  };
  for (const auto& life : lives) {
    EXPECT_TRUE(initialPhase(life.front())) << phaseName(life.front());
    for (size_t i = 1; i < life.size(); ++i) {
      EXPECT_TRUE(transitionAllowed(life[i - 1], life[i]))
          << phaseName(life[i - 1]) << " -> " << phaseName(life[i]);
    }
  }
}

TEST(TaskPhaseTest, RefusesGoingBackAndLeavingForgotten) {
  EXPECT_FALSE(transitionAllowed(TaskPhase::kRunning, TaskPhase::kLaunching));
  EXPECT_FALSE(transitionAllowed(TaskPhase::kTerminated, TaskPhase::kRunning));
  EXPECT_FALSE(transitionAllowed(TaskPhase::kCheckpointing, TaskPhase::kTerminated));
  EXPECT_FALSE(transitionAllowed(TaskPhase::kLaunching, TaskPhase::kRunning));
  EXPECT_FALSE(transitionAllowed(TaskPhase::kRunning, TaskPhase::kForgotten));
  for (TaskPhase to : kAllPhases) EXPECT_FALSE(transitionAllowed(TaskPhase::kForgotten, to));
  EXPECT_FALSE(initialPhase(TaskPhase::kRunning));
}

TEST(TaskPhaseTest, OnlyLaunchedLiveContainersCount) {
  std::set<TaskPhase> live;
  for (TaskPhase phase : kAllPhases) {
    if (containerLives(phase)) live.insert(phase);
  }
  EXPECT_EQ(live, (std::set<TaskPhase>{TaskPhase::kCheckpointing, TaskPhase::kRunning,
                                       TaskPhase::kTerminating}));
}

TEST(TaskPhaseDeathTest, ARefusedTransitionCrashesNamingTheTask) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(checkTransition(TaskPhase::kTerminated, TaskPhase::kRunning, "task 't1'"),
               "agent bug: task 't1' cannot go from terminated to running");
  checkTransition(TaskPhase::kRunning, TaskPhase::kTerminated, "task 't1'");  // allowed: returns
}

TEST(LinkStateTest, AllowsExactlyTheDocumentedTransitions) {
  using S = LinkState;
  const S all[] = {S::kDisconnected, S::kConnected, S::kRegistered, S::kRefused};
  const std::set<std::pair<S, S>> allowed = {
      {S::kDisconnected, S::kDisconnected}, {S::kDisconnected, S::kConnected},
      {S::kConnected, S::kDisconnected},    {S::kConnected, S::kRegistered},
      {S::kConnected, S::kRefused},         {S::kRegistered, S::kDisconnected},
      {S::kRegistered, S::kRegistered},     {S::kRegistered, S::kRefused},
  };
  for (S from : all) {
    for (S to : all) {
      EXPECT_EQ(linkTransitionAllowed(from, to), allowed.count({from, to}) == 1)
          << linkStateName(from) << " -> " << linkStateName(to);
    }
  }
}

TEST(LinkStateDeathTest, ARefusedTransitionCrashes) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(checkLinkTransition(LinkState::kRefused, LinkState::kConnected),
               "the master connection cannot go from refused to connected");
}

}  // namespace
}  // namespace tessera::kernel::agent
