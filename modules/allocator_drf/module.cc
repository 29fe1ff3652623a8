// The shim: exports the descriptor; the logic is in allocator_drf_lib.
#include <boost/dll/alias.hpp>

#include "modules/allocator_drf/drf_allocator.h"

namespace {

tessera::api::Result<std::unique_ptr<tessera::api::Module>> create(
    const tessera::api::Parameters& parameters, tessera::api::Context& context) {
  try {
    return tessera::modules::drf::DrfAllocator::create(parameters, context);
  } catch (const std::exception& e) {
    return tessera::api::internalError("{}", e.what());
  }
}

}  // namespace

const tessera::api::ModuleDescriptor kDescriptor{
    tessera::api::kApiVersion,
    TESSERA_BUILD_FINGERPRINT,
    "allocator",
    "org_tessera_allocator_drf",
    "hierarchical DRF allocator: roles, weights, quota, reservations, filters",
    "Tessera",
    &create};
BOOST_DLL_ALIAS(kDescriptor, tessera_module_descriptor)
