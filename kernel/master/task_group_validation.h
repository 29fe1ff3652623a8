#pragma once

// The rules of a LAUNCH_GROUP that do not depend on the offers (Mesos's master/validation.cpp,
// task group part). Core::validateTaskGroup (task_group_validation.cc) applies them in order,
// together with the per-task checks of a single launch and the fit of the whole in the offers.

#include <string>

#include "tessera/v1/scheduler.pb.h"

namespace tessera::kernel::master {

/// Why the group's executor cannot run a task group: none, no id, not of type DEFAULT, a command
/// of its own, or a container that is not MESOS. Empty when it can. Pure; any thread.
std::string validateGroupExecutor(const v1::Offer::Operation::LaunchGroup& launchGroup);

/// Why `task` cannot be a member of a task group, whatever the offers: an executor of its own,
/// no command, or a DOCKER container (groups run in nested containers, which Docker lacks).
/// Empty when it can. Pure; any thread.
std::string validateGroupMember(const v1::TaskInfo& task);

}  // namespace tessera::kernel::master
