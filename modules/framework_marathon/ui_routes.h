#pragma once

// Marathon's web UI on the module's port: the files of webui/marathon at /ui/, and / sending
// the browser there, as Marathon does. The page reads only the public /v2 API.

#include <filesystem>

#include "tessera/api/module.h"
#include "tessera/api/parameters.h"
#include "tessera/api/status.h"

namespace tessera::modules::marathon {

/// Where the UI's files are: parameter `ui_dir`, else `<prefix>/share/tessera/webui/marathon`
/// with `<prefix>` the parent of the running binary's directory (the build tree's and an
/// install's layout alike).
std::filesystem::path uiDirectory(const api::Parameters& parameters);

/// Adds GET /ui (prefix; the files under `dir`, read on the blocking pool) and GET / (a 302 to
/// /ui/). On a port where / is already taken (the master's, when Marathon is hosted there) the
/// redirect is left out; a taken /ui is an error (AlreadyExists).
[[nodiscard]] api::Status addUiRoutes(api::Context& context, std::filesystem::path dir);

}  // namespace tessera::modules::marathon
