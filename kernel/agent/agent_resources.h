#pragma once

/// The agent's resources and attributes: detection and Mesos's `--resources` / `--attributes`
/// syntax.

#include <google/protobuf/repeated_ptr_field.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "tessera/api/resources.h"
#include "tessera/api/status.h"
#include "tessera/v1/messages.pb.h"

namespace tessera::kernel::agent {

/// What the machine has, before any reserve is taken off.
struct MachineResources {
  double cpus = 1;         ///< CPUs this process may run on (affinity), else the hardware's
  uint64_t memBytes = 0;   ///< total memory
  uint64_t diskBytes = 0;  ///< size of the filesystem holding the work dir
  bool diskKnown = false;  ///< false when statvfs failed
  bool memKnown = false;   ///< false when sysinfo failed
};

/// Probes this machine; `workDir` names the filesystem whose size is `disk`.
MachineResources probeMachine(const std::string& workDir);

/// Mesos's rule for what the agent offers of `machine`: all cpus; memory minus 1 GB when there
/// are at least 2 GB, else half; disk minus 5 GB when there are at least 10 GB, else half;
/// ports [31000-32000]. `flag` (--resources, text or JSON) wins per resource name: a name it
/// mentions is not detected. Errors: InvalidArgument naming '--resources'.
api::Result<api::Resources> agentResources(std::string_view flag, const MachineResources& machine);

/// Parses Mesos's `--attributes` ("rack:r1;zone:a;level:3;ids:[1-5]"): a number is a SCALAR, a
/// bracketed list RANGES, anything else TEXT; sets are refused as in Mesos. Errors:
/// InvalidArgument naming '--attributes' and the bad token.
api::Result<google::protobuf::RepeatedPtrField<v1::Attribute>> parseAttributes(
    std::string_view text);

}  // namespace tessera::kernel::agent
