#pragma once

/// Facts about v1 task states that the master, the agent and frameworks all need.

#include "tessera/api/visibility.h"
#include "tessera/v1/messages.pb.h"

namespace tessera::api {

/// Whether a task in `state` has ended for good (FINISHED, FAILED, KILLED, ERROR, LOST, DROPPED,
/// GONE, GONE_BY_OPERATOR), as Mesos's `protobuf::isTerminalState`. UNREACHABLE and UNKNOWN are
/// not: the task may come back.
TESSERA_API bool isTerminal(v1::TaskState state);

}  // namespace tessera::api
