#pragma once

/// Value types shared by the containerizer and isolator kinds.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "tessera/api/resources.h"
#include "tessera/v1/messages.pb.h"

namespace tessera::api {

/// What the agent asks a containerizer to run: one task's container, or a task group's executor
/// container, or a nested container of one of a group's tasks.
struct ContainerConfig {
  std::string containerId;  ///< unique on the agent (a UUID)
  /// Set for a nested container (a task of a task group, Mesos's nested containers): it runs
  /// inside this running container's isolation (its cgroups, so under its limits) and is not
  /// given isolation of its own; `resources` is then informational. Empty for a top-level one.
  std::string parentContainerId;
  std::string agentId;
  std::string frameworkId;
  std::string executorId;
  std::string taskId;
  /// Exists and belongs to the agent; the container's stdout and stderr go to files named
  /// `stdout` and `stderr` in it, and its working directory is this.
  std::string sandboxDirectory;
  v1::CommandInfo command;  ///< what to run (shell or argv form, environment, user)
  /// How to contain it; absent for a plain command. A DOCKER one is for the Docker
  /// containerizer.
  std::optional<v1::ContainerInfo> container;
  Resources resources;  ///< what the task was given
  /// Run as this user (honoured when the agent runs as root).
  std::optional<std::string> user;
  /// Set by the agent on top of the command's own (MESOS_SANDBOX, MESOS_TASK_ID, ...).
  std::map<std::string, std::string> environment;
};

/// A limit a container ran into (an OOM kill, say); it ends the container.
struct ContainerLimitation {
  v1::TaskStatus::Reason reason = v1::TaskStatus::REASON_CONTAINER_LIMITATION;
  std::string message;  ///< "memory limit of 64MB exceeded"
  Resources resources;  ///< the resources whose limit was hit, if known
};

/// How a container ended.
struct ContainerTermination {
  /// As from waitpid(); absent when not known (it ended while the agent was down).
  std::optional<int> waitStatus;
  bool killed = false;  ///< ended because destroy() was called
  /// Set when a limitation ended it (REASON_CONTAINER_LIMITATION_MEMORY, ...).
  std::optional<ContainerLimitation> limitation;
  std::string message;  ///< "Command exited with status 3", "Command terminated with signal KILL"
};

/// What the agent checkpoints to find a container again after a restart.
struct ContainerCheckpoint {
  std::string containerId;
  std::string containerizer;  ///< the module that runs it
  int64_t pid = 0;            ///< the container's main process, when it has one the agent knows
  /// The main process's start time in clock ticks after boot (field 22 of /proc/<pid>/stat),
  /// so that a reused pid is never taken for the container.
  uint64_t startTime = 0;
  std::string sandboxDirectory;
  std::string data;  ///< anything else the containerizer needs, opaque to the agent
};

/// A checkpointed container as recover() found it.
struct RecoveredContainer {
  std::string containerId;
  /// Absent: it still runs and is watched again. Present: it ended while the agent was down.
  std::optional<ContainerTermination> ended;
};

}  // namespace tessera::api
