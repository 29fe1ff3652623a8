#pragma once

// A running deployment as the Marathon module keeps it in its state store (one key per
// deployment under /modules/org_tessera_marathon/deployments, written before the API answers and
// removed when the deployment ends), so a restarted or failed-over leader shows and finishes it.

#include <optional>
#include <string>
#include <string_view>

#include "modules/framework_marathon/scheduler.h"

namespace tessera::modules::marathon {

/// `deployment` as JSON: id, version, affectedApps, steps, currentStep, original and target (app
/// definitions as appToJson writes them), removed.
std::string deploymentToStoreJson(const Deployment& deployment);

/// The deployment deploymentToStoreJson wrote; nullopt when `json` is not one.
std::optional<Deployment> deploymentFromStoreJson(std::string_view json);

}  // namespace tessera::modules::marathon
