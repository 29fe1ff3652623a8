// The shim: exports the descriptor; the logic is in allocator_drf_lib.
#include <boost/dll/alias.hpp>

#include "modules/allocator_drf/drf_allocator.h"

const tessera::api::ModuleDescriptor kDescriptor{
    tessera::api::kApiVersion,
    TESSERA_BUILD_FINGERPRINT,
    "allocator",
    "org_tessera_allocator_drf",
    "hierarchical DRF allocator: roles, weights, quota, reservations, filters",
    "Tessera",
    &tessera::api::guardedFactory<&tessera::modules::drf::DrfAllocator::create>};
BOOST_DLL_ALIAS(kDescriptor, tessera_module_descriptor)
