// The shim of the local authorizer: exports the descriptor; the logic is in auth_lib.
#include <boost/dll/alias.hpp>

#include "modules/auth/local_authorizer.h"

const tessera::api::ModuleDescriptor kDescriptor{
    tessera::api::kApiVersion,
    TESSERA_BUILD_FINGERPRINT,
    "authorizer",
    "org_tessera_authorizer_local",
    "Mesos's local authorizer: the --acls JSON, reloaded when its file changes",
    "Tessera",
    &tessera::api::guardedFactory<&tessera::modules::auth::LocalAuthorizer::create>};
BOOST_DLL_ALIAS(kDescriptor, tessera_module_descriptor)
