#pragma once

#include "tessera/api/module.h"

namespace tessera::api {

/// A module with no interface beyond its life: created when the daemon starts (after every
/// library loaded), stopped when it ends. It acts through its Context: HTTP routes, metrics,
/// timers. Mesos's "anonymous" kind.
class TESSERA_API Anonymous : public Module {};

}  // namespace tessera::api
