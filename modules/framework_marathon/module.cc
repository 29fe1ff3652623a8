// The shim: exports the descriptor; the logic is in framework_marathon_lib.
#include <boost/dll/alias.hpp>

#include "modules/framework_marathon/marathon_framework.h"

const tessera::api::ModuleDescriptor kDescriptor{
    tessera::api::kApiVersion,
    TESSERA_BUILD_FINGERPRINT,
    "framework",
    "org_tessera_marathon",
    "Marathon: long-running apps kept alive, scaled, health-checked and rolled (Marathon 1.x's "
    "REST API)",
    "Tessera",
    &tessera::api::guardedFactory<&tessera::modules::marathon::MarathonFramework::create>};
BOOST_DLL_ALIAS(kDescriptor, tessera_module_descriptor)
