// The shim: exports the descriptor; the logic is in system_metrics_lib.
#include <boost/dll/alias.hpp>

#include "modules/system_metrics/system_metrics_module.h"

namespace {

tessera::api::Result<std::unique_ptr<tessera::api::Module>> create(
    const tessera::api::Parameters& parameters, tessera::api::Context& context) {
  try {
    return tessera::modules::system_metrics::SystemMetricsModule::create(parameters, context);
  } catch (const std::exception& e) {
    return tessera::api::internalError("{}", e.what());
  }
}

}  // namespace

const tessera::api::ModuleDescriptor kDescriptor{
    tessera::api::kApiVersion,
    TESSERA_BUILD_FINGERPRINT,
    "anonymous",
    "org_tessera_system_metrics",
    "the host's cpus, load and memory as system/* metrics",
    "Tessera",
    &create};
BOOST_DLL_ALIAS(kDescriptor, tessera_module_descriptor)
