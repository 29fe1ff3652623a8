// The shim of Mesos's `basic` HTTP authenticator: exports the descriptor; the logic is in
// auth_lib.
#include <boost/dll/alias.hpp>

#include "modules/auth/basic_authenticator.h"

const tessera::api::ModuleDescriptor kDescriptor{
    tessera::api::kApiVersion,
    TESSERA_BUILD_FINGERPRINT,
    "authenticator",
    "org_tessera_auth_basic",
    "HTTP Basic against the --credentials file (Mesos's 'basic'), reloaded when it changes",
    "Tessera",
    &tessera::api::guardedFactory<&tessera::modules::auth::BasicAuthenticator::create>};
BOOST_DLL_ALIAS(kDescriptor, tessera_module_descriptor)
