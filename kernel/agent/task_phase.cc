#include "kernel/agent/task_phase.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>

namespace tessera::kernel::agent {

std::string_view phaseName(TaskPhase phase) {
  switch (phase) {
    case TaskPhase::kStaging:
      return "staging";
    case TaskPhase::kRecovering:
      return "recovering";
    case TaskPhase::kLaunching:
      return "launching";
    case TaskPhase::kCheckpointing:
      return "checkpointing";
    case TaskPhase::kRunning:
      return "running";
    case TaskPhase::kTerminating:
      return "terminating";
    case TaskPhase::kTerminated:
      return "terminated";
    case TaskPhase::kForgotten:
      return "forgotten";
  }
  return "unknown";
}

bool transitionAllowed(TaskPhase from, TaskPhase to) {
  using P = TaskPhase;
  switch (from) {
    case P::kStaging:
      return to == P::kLaunching || to == P::kTerminated;
    case P::kRecovering:
      return to == P::kRunning || to == P::kTerminated;
    case P::kLaunching:
      return to == P::kCheckpointing || to == P::kTerminated;
    case P::kCheckpointing:
      return to == P::kRunning || to == P::kTerminating;
    case P::kRunning:
      return to == P::kTerminating || to == P::kTerminated;
    case P::kTerminating:
      return to == P::kTerminating || to == P::kTerminated;
    case P::kTerminated:
      return to == P::kForgotten;
    case P::kForgotten:
      return false;
  }
  return false;
}

bool initialPhase(TaskPhase phase) {
  return phase == TaskPhase::kStaging || phase == TaskPhase::kRecovering;
}

bool containerLives(TaskPhase phase) {
  return phase == TaskPhase::kCheckpointing || phase == TaskPhase::kRunning ||
         phase == TaskPhase::kTerminating;
}

void checkTransition(TaskPhase from, TaskPhase to, std::string_view what) {
  if (transitionAllowed(from, to)) return;
  fmt::print(stderr, "agent bug: {} cannot go from {} to {}\n", what, phaseName(from),
             phaseName(to));
  std::abort();
}

std::string_view linkStateName(LinkState state) {
  switch (state) {
    case LinkState::kDisconnected:
      return "disconnected";
    case LinkState::kConnected:
      return "connected";
    case LinkState::kRegistered:
      return "registered";
    case LinkState::kRefused:
      return "refused";
  }
  return "unknown";
}

bool linkTransitionAllowed(LinkState from, LinkState to) {
  using S = LinkState;
  switch (from) {
    case S::kDisconnected:
      return to == S::kDisconnected || to == S::kConnected;
    case S::kConnected:
      return to == S::kDisconnected || to == S::kRegistered || to == S::kRefused;
    case S::kRegistered:
      return to == S::kDisconnected || to == S::kRegistered || to == S::kRefused;
    case S::kRefused:
      return false;
  }
  return false;
}

void checkLinkTransition(LinkState from, LinkState to) {
  if (linkTransitionAllowed(from, to)) return;
  fmt::print(stderr, "agent bug: the master connection cannot go from {} to {}\n",
             linkStateName(from), linkStateName(to));
  std::abort();
}

}  // namespace tessera::kernel::agent
