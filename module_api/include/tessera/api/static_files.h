#pragma once

/// Serving a directory of files (a web UI's pages, scripts and styles) over HTTP, so that the
/// kernel and modules alike can ship a UI without a web server of their own. Blocking file
/// I/O: call it from Executor::runBlocking(), not from a strand.

#include <filesystem>
#include <string_view>

#include "tessera/api/http.h"
#include "tessera/api/visibility.h"

namespace tessera::api {

/// The largest file serveStaticFile() answers; past it the answer is a 500.
inline constexpr uintmax_t kMaxStaticFileBytes = 32u << 20;

/// The Content-Type for `fileName` by its extension, case-insensitively: "text/html;
/// charset=utf-8" for .html, "text/javascript; charset=utf-8" for .js and .mjs, and so on for
/// .css, .json, .svg, .png, .ico, .txt, .map, .woff2; "application/octet-stream" otherwise.
TESSERA_API std::string_view contentTypeFor(std::string_view fileName);

/// Answers a GET for `path` (decoded, relative to `root`; leading slashes are ignored, empty
/// means the root itself) with the file's bytes and contentTypeFor() its name, with
/// `Cache-Control: no-cache` and `X-Content-Type-Options: nosniff`. A directory answers its
/// `index.html`.
///
/// Refused with 404, whatever exists on disk: a path with a "." or ".." segment, a NUL byte
/// or a backslash; a file whose real path (symlinks resolved) leaves the real path of
/// `root`; anything but a regular file. A missing file is a 404 too; a file that cannot be
/// read or is larger than kMaxStaticFileBytes is a 500. Bodies of errors are the usual
/// `{"message"}` JSON. Never throws.
TESSERA_API HttpResponse serveStaticFile(const std::filesystem::path& root, std::string_view path);

}  // namespace tessera::api
