#pragma once

/// What the agent hands a containerizer for each isolator module of --isolation: every call is
/// posted to the isolator's executor and every callback posted back to the containerizer's, so
/// each module runs only on its own strand (api::ContainerizerSettings::isolators).

#include <memory>

#include "tessera/api/executor.h"
#include "tessera/api/isolator.h"

namespace tessera::kernel::agent {

/// A proxy for `isolator` (run on `isolatorExecutor`) whose callbacks land on
/// `callerExecutor`. All three must outlive the proxy and its pending callbacks (the role owns
/// them; the agent's services outlive the agent).
std::shared_ptr<api::Isolator> makeIsolatorProxy(api::Isolator& isolator,
                                                 api::Executor& isolatorExecutor,
                                                 api::Executor& callerExecutor);

}  // namespace tessera::kernel::agent
