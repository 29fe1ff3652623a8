#pragma once

// Chronos's web UI on the module's port: the files of webui/chronos at /, beside the API's
// /scheduler and /v1/scheduler routes (longer prefixes win). The page reads only that API.

#include <filesystem>

#include "tessera/api/module.h"
#include "tessera/api/parameters.h"
#include "tessera/api/status.h"

namespace tessera::modules::chronos {

/// Where the UI's files are: parameter `ui_dir`, else `<prefix>/share/tessera/webui/chronos`
/// with `<prefix>` the parent of the running binary's directory (the build tree's and an
/// install's layout alike).
std::filesystem::path uiDirectory(const api::Parameters& parameters);

/// Adds GET / (prefix; the files under `dir`, read on the blocking pool). On a port where / is
/// already taken (the master's, when Chronos is hosted there) the UI is left out with a warning.
[[nodiscard]] api::Status addUiRoutes(api::Context& context, std::filesystem::path dir);

}  // namespace tessera::modules::chronos
