// The shim: exports the descriptor; the logic is in acme_nofile_lib, which the tests link.
#include <boost/dll/alias.hpp>

#include "nofile_isolator.h"

const tessera::api::ModuleDescriptor kDescriptor{
    tessera::api::kApiVersion,
    TESSERA_BUILD_FINGERPRINT,
    "isolator",
    acme::nofile::kModuleName,
    "acme/nofile: RLIMIT_NOFILE for every task, open files counted in acme_nofile/open_files",
    "ACME Corp.",
    &tessera::api::guardedFactory<&acme::nofile::NofileIsolator::create>};
BOOST_DLL_ALIAS(kDescriptor, tessera_module_descriptor)
