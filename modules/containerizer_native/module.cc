// The shim: exports the descriptor; the logic is in containerizer_native_lib.
#include <boost/dll/alias.hpp>

#include "modules/containerizer_native/native_containerizer.h"

const tessera::api::ModuleDescriptor kDescriptor{
    tessera::api::kApiVersion,
    TESSERA_BUILD_FINGERPRINT,
    "containerizer",
    tessera::modules::containerizer_native::kModuleName,
    "runs command tasks as process groups with stdout/stderr in the sandbox (Mesos's posix "
    "launcher), driving the isolator modules",
    "Tessera",
    &tessera::api::guardedFactory<
        &tessera::modules::containerizer_native::NativeContainerizer::create>};
BOOST_DLL_ALIAS(kDescriptor, tessera_module_descriptor)
