// The shim of the transport authenticator (HMAC-SHA256 challenge-response, the role of Mesos's
// crammd5): exports the descriptor; the logic is in auth_lib.
#include <boost/dll/alias.hpp>

#include "modules/auth/hmac_authenticator.h"

const tessera::api::ModuleDescriptor kDescriptor{
    tessera::api::kApiVersion,
    TESSERA_BUILD_FINGERPRINT,
    "authenticator",
    "org_tessera_auth_hmac",
    "Agents on the internal transport: HMAC-SHA256 challenge-response against --credentials",
    "Tessera",
    &tessera::api::guardedFactory<&tessera::modules::auth::HmacAuthenticator::create>};
BOOST_DLL_ALIAS(kDescriptor, tessera_module_descriptor)
