#pragma once

// The Chronos unit tests' executor: the shared one that runs everything in place
// (tests/support/test_router.h).

#include "tests/support/test_router.h"

namespace tessera::modules::chronos {

using InlineExecutor = tessera::testing::InlineExecutor;

}  // namespace tessera::modules::chronos
