// The shim: exports the descriptor; the logic is in containerizer_docker_lib.
#include <boost/dll/alias.hpp>

#include "modules/containerizer_docker/docker_containerizer.h"

const tessera::api::ModuleDescriptor kDescriptor{
    tessera::api::kApiVersion,
    TESSERA_BUILD_FINGERPRINT,
    "containerizer",
    tessera::modules::containerizer_docker::kModuleName,
    "runs tasks with a DOCKER ContainerInfo as Docker containers through the Engine API on the "
    "daemon's unix socket (Mesos's Docker containerizer, without the CLI)",
    "Tessera",
    &tessera::api::guardedFactory<
        &tessera::modules::containerizer_docker::DockerContainerizer::create>};
BOOST_DLL_ALIAS(kDescriptor, tessera_module_descriptor)
