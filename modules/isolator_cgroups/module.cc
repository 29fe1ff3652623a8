// The shim: exports the descriptor; the logic is in isolator_cgroups_lib.
#include <boost/dll/alias.hpp>

#include "modules/isolator_cgroups/cgroups_isolator.h"

const tessera::api::ModuleDescriptor kDescriptor{
    tessera::api::kApiVersion,
    TESSERA_BUILD_FINGERPRINT,
    "isolator",
    tessera::modules::isolator_cgroups::kModuleName,
    "Mesos's cgroups isolator (cgroups/cpu, cgroups/mem, cgroups/pids) on cgroup v1 or v2: "
    "limits, OOM limitations, usage and orphan cleanup",
    "Tessera",
    &tessera::api::guardedFactory<&tessera::modules::isolator_cgroups::CgroupsIsolator::create>};
BOOST_DLL_ALIAS(kDescriptor, tessera_module_descriptor)
