#pragma once

// A task's life on the agent as one phase, and the connection to the master's life as one
// state, each with the transitions it may take. A transition not listed is a bug in the agent:
// check*Transition() crash loudly, in every build type.

#include <string_view>

namespace tessera::kernel::agent {

/// Where a task is in its life on the agent (its container's life, and then its updates').
///
///   main path:   kStaging → kLaunching → kCheckpointing → kRunning → kTerminating
///                → kTerminated → kForgotten
///   recovery:    kRecovering → kRunning | kTerminated
///   short cuts:  kStaging | kLaunching | kRunning → kTerminated;
///                kCheckpointing → kTerminating; kTerminating → kTerminating
///
/// - kStaging: a new task; its record is checkpointed, its sandbox and launch config are being
///   made (synchronously, inside runTask). → kLaunching, or → kTerminated when there is no
///   sandbox or no command.
/// - kRecovering: read from the checkpoints of the previous agent on this work dir, not yet
///   matched with its container. → kRunning when its containerizer still knows the container
///   (which may have ended meanwhile: it is then terminated next), → kTerminated when its
///   checkpoint is terminal, it has no container checkpoint, or the container is unknown.
/// - kLaunching: a containerizer is being chosen, or is launching the container. A kill or a
///   framework shutdown now is only recorded (Task::kill); the launch's answer acts on it.
///   → kCheckpointing when the container started, → kTerminated when killed before launch,
///   when no containerizer supports the task, or when the launch failed.
/// - kCheckpointing: the container runs; its checkpoint is being written, and TASK_RUNNING and
///   any termination wait for it. A kill destroys the container at once. → kRunning when the
///   checkpoint is written, → kTerminating when it is written and a kill came before.
/// - kRunning: the container runs, checkpointed and watched. → kTerminating on a kill, a
///   framework shutdown or a recovered TASK_KILLING, → kTerminated when the container ends.
/// - kTerminating: the container is being destroyed. → kTerminating again on another kill
///   (destroyed again), → kTerminated when the container ends.
/// - kTerminated: the container is gone or never came; the terminal update may still wait for
///   its acknowledgement. → kForgotten when it is acknowledged, right away when there is none
///   to wait for, or when the framework is shut down.
/// - kForgotten: dropped from the agent with its checkpoints (final).
enum class TaskPhase {
  kStaging,
  kRecovering,
  kLaunching,
  kCheckpointing,
  kRunning,
  kTerminating,
  kTerminated,
  kForgotten,
};

/// Why a task is being killed, if it is. It only grows: kNone → kKill → kFrameworkShutdown.
/// A task whose framework was shut down is forgotten when its container ends, not reported.
enum class TaskKill {
  kNone,
  kKill,               ///< the framework killed it, or the agent recovered it as TASK_KILLING
  kFrameworkShutdown,  ///< its framework was shut down (the master removed it)
};

std::string_view phaseName(TaskPhase phase);

/// Whether `from` → `to` is one of the transitions documented on TaskPhase.
bool transitionAllowed(TaskPhase from, TaskPhase to);

/// Whether a task may start its life in `phase` (kStaging or kRecovering).
bool initialPhase(TaskPhase phase);

/// Whether the task's container exists and is not known to have ended (kCheckpointing,
/// kRunning, kTerminating): it can be destroyed, and asked for its usage.
bool containerLives(TaskPhase phase);

/// Crashes naming `what` (the task) when `from` → `to` is not allowed.
void checkTransition(TaskPhase from, TaskPhase to, std::string_view what);

/// The agent's connection to the master.
///
///   kDisconnected → kConnected → kRegistered (→ kRegistered)
///   kDisconnected | kConnected | kRegistered → kDisconnected   (lost or dropped)
///   kConnected | kRegistered → kRefused                        (final)
///
/// - kDisconnected: looking for the master, connecting, or waiting to retry (with backoff).
///   Dropping the connection again is allowed (a new leader while still looking).
/// - kConnected: the transport is up; the (re-)registration is sent.
/// - kRegistered: the master accepted the agent: tasks run, updates are sent. The master may
///   confirm again (kRegistered → kRegistered).
/// - kRefused: the master refused the agent (it was marked gone): it stops talking to it.
enum class LinkState {
  kDisconnected,
  kConnected,
  kRegistered,
  kRefused,
};

std::string_view linkStateName(LinkState state);

/// Whether `from` → `to` is one of the transitions documented on LinkState.
bool linkTransitionAllowed(LinkState from, LinkState to);

/// Crashes when `from` → `to` is not allowed.
void checkLinkTransition(LinkState from, LinkState to);

}  // namespace tessera::kernel::agent
