#pragma once

#include "tessera/api/module.h"

namespace tessera::api {

/// A hook module, created at daemon start like an anonymous one. The kernel calls its hook
/// points as the roles define them; today none are defined, so a hook acts through its Context
/// only. New hook points are added here with an API version bump.
class TESSERA_API Hook : public Module {};

}  // namespace tessera::api
