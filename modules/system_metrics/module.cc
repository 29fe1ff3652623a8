// The shim: exports the descriptor; the logic is in system_metrics_lib.
#include <boost/dll/alias.hpp>

#include "modules/system_metrics/system_metrics_module.h"

const tessera::api::ModuleDescriptor kDescriptor{
    tessera::api::kApiVersion,
    TESSERA_BUILD_FINGERPRINT,
    "anonymous",
    "org_tessera_system_metrics",
    "the host's cpus, load and memory as system/* metrics",
    "Tessera",
    &tessera::api::guardedFactory<&tessera::modules::system_metrics::SystemMetricsModule::create>};
BOOST_DLL_ALIAS(kDescriptor, tessera_module_descriptor)
