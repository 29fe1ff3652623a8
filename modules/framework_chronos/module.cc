// The shim: exports the descriptor; the logic is in framework_chronos_lib.
#include <boost/dll/alias.hpp>

#include "modules/framework_chronos/chronos_framework.h"

const tessera::api::ModuleDescriptor kDescriptor{
    tessera::api::kApiVersion,
    TESSERA_BUILD_FINGERPRINT,
    "framework",
    "org_tessera_chronos",
    "Chronos: ISO-8601, cron and dependent jobs with retries, kept in the state store",
    "Tessera",
    &tessera::api::guardedFactory<&tessera::modules::chronos::ChronosFramework::create>};
BOOST_DLL_ALIAS(kDescriptor, tessera_module_descriptor)
