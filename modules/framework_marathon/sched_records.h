#pragma once

// What the Marathon scheduling engine (scheduler.cc) keeps per task and per app, and the counts
// it decides with. Internal to the engine: the API sees Task and AppCounts (scheduler.h).

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "modules/framework_marathon/app.h"
#include "modules/framework_marathon/scheduler.h"
#include "tessera/api/executor.h"
#include "tessera/api/task_state.h"

namespace tessera::modules::marathon::sched {

// A task the engine knows: what the API shows, plus what the engine decides with.
struct TaskRecord {
  Task task;
  v1::TaskState state = v1::TASK_STAGING;  // task.state as an enum, for the hot paths
  int generation = 0;                      // the app's config generation the task was launched for
  bool killRequested = false;  // the engine (or the API) killed it: no backoff, no replacement
  std::optional<bool> healthy;
  bool launchConfirmed = false;  // an update was received for it
};

struct AppState {
  App app;
  int generation = 0;     // bumped on a config change or a restart: older tasks are replaced
  bool removing = false;  // StopApplication: every task is killed, then the app is forgotten
  int failures = 0;       // failed tasks since the last backoff reset
  std::optional<Clock::time_point> delayUntil;
  std::optional<Clock::time_point> waitingSince;
  std::unique_ptr<api::TimerHandle> delayTimer;
};

// An app's tasks counted by what the engine decides with, kept up to date as each task changes
// (addTask/eraseTask and the untally/tally pair around every change of a record), so that an
// update, counts() and the common case of planFor() cost O(1) in the app's task count.
struct GenerationTally {
  int live = 0;            // isLive
  int killed = 0;          // live and killRequested
  int running = 0;         // TASK_RUNNING
  int runningHealthy = 0;  // TASK_RUNNING and healthy == true
};
struct AppTally {
  int records = 0;
  int live = 0;
  int staged = 0;
  int running = 0;
  int runningHealthy = 0;
  int unhealthy = 0;                           // healthy == false, whatever the state
  std::map<int, GenerationTally> generations;  // only generations with a live task
};

// What an app needs now: tasks to launch, tasks to kill.
struct Plan {
  int launch = 0;
  std::vector<std::string> kill;
};

inline bool isLive(const TaskRecord& record) {
  const v1::TaskState state = record.state;
  return !api::isTerminal(state) && state != v1::TASK_UNREACHABLE && state != v1::TASK_UNKNOWN;
}

inline bool isRunning(const TaskRecord& record) { return record.state == v1::TASK_RUNNING; }

inline bool isStaged(const TaskRecord& record) {
  return record.state == v1::TASK_STAGING || record.state == v1::TASK_STARTING;
}

inline std::string stateName(v1::TaskState state) { return v1::TaskState_Name(state); }

}  // namespace tessera::modules::marathon::sched
