#pragma once

/// The agent's `/files/*` endpoints (Mesos's files API) over the sandboxes under
/// `<work_dir>/slaves/`. Every function here blocks on the filesystem: run them on the blocking
/// pool.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "tessera/api/http.h"
#include "tessera/api/status.h"

namespace tessera::kernel::agent {

/// Largest `/files/read` answer, as Mesos: 16 pages.
inline constexpr int64_t kMaxReadLength = 16 * 4096;

/// Resolves `requested` (an absolute path, as /state shows sandbox directories) to a real path
/// inside `root` (the agent's `<work_dir>/slaves`), following symlinks. Errors:
/// InvalidArgument when empty or relative; PermissionDenied for `..` components and for paths
/// that lead (through symlinks too) outside `root`; NotFound when it does not exist.
api::Result<std::filesystem::path> resolveSandboxPath(const std::filesystem::path& root,
                                                      std::string_view requested);

/// GET /files/browse?path=: the entries of a directory (or the file itself), Mesos's fields.
api::HttpResponse filesBrowse(const std::filesystem::path& root, const api::HttpRequest& request);
/// GET /files/read?path=&offset=&length=: `{"data":..., "offset":...}`; offset -1 (or none)
/// answers the file's size as the offset with no data.
api::HttpResponse filesRead(const std::filesystem::path& root, const api::HttpRequest& request);
/// GET /files/download?path=: the file's bytes.
api::HttpResponse filesDownload(const std::filesystem::path& root, const api::HttpRequest& request);

}  // namespace tessera::kernel::agent
