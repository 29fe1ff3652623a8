#include "tessera/api/static_files.h"

#include <fmt/format.h>
#include <strings.h>

#include <array>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

namespace tessera::api {

namespace fs = std::filesystem;

namespace {

constexpr std::array<std::pair<std::string_view, std::string_view>, 17> kTypes = {{
    {".html", "text/html; charset=utf-8"},
    {".htm", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".gif", "image/gif"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
    {".woff", "font/woff"},
    {".woff2", "font/woff2"},
    {".webp", "image/webp"},
}};

bool endsWithNoCase(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         strncasecmp(text.data() + text.size() - suffix.size(), suffix.data(), suffix.size()) == 0;
}

// The path's segments, or false when one of them could step outside the root or is not a
// plain name on every file system we might be asked to serve from.
bool safeSegments(std::string_view path, fs::path& relative) {
  if (path.find('\0') != std::string_view::npos || path.find('\\') != std::string_view::npos) {
    return false;
  }
  while (!path.empty()) {
    const size_t slash = path.find('/');
    const std::string_view segment = path.substr(0, slash);
    if (segment == "." || segment == "..") return false;
    if (!segment.empty()) relative /= std::string(segment);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return true;
}

// True when `inner` (a canonical path) is `outer` (canonical) or lies below it.
bool within(const fs::path& outer, const fs::path& inner) {
  auto o = outer.begin();
  auto i = inner.begin();
  for (; o != outer.end(); ++o, ++i) {
    if (i == inner.end() || *o != *i) return false;
  }
  return true;
}

HttpResponse notFound(std::string_view path) {
  return HttpResponse::error(404, fmt::format("no file '{}'", path));
}

}  // namespace

std::string_view contentTypeFor(std::string_view fileName) {
  for (const auto& [extension, type] : kTypes) {
    if (endsWithNoCase(fileName, extension)) return type;
  }
  return "application/octet-stream";
}

HttpResponse serveStaticFile(const fs::path& root, std::string_view path) {
  fs::path relative;
  if (!safeSegments(path, relative)) return notFound(path);
  std::error_code error;
  const fs::path base = fs::canonical(root, error);
  if (error) return notFound(path);
  fs::path file = fs::canonical(base / relative, error);
  if (error || !within(base, file)) return notFound(path);
  if (fs::is_directory(file, error)) {
    file = fs::canonical(file / "index.html", error);
    if (error || !within(base, file)) return notFound(path);
  }
  if (!fs::is_regular_file(file, error)) return notFound(path);
  const uintmax_t size = fs::file_size(file, error);
  if (error) return HttpResponse::error(500, fmt::format("cannot read '{}'", path));
  if (size > kMaxStaticFileBytes) {
    return HttpResponse::error(500, fmt::format("file '{}' is too large to serve", path));
  }
  std::ifstream in(file, std::ios::binary);
  std::ostringstream body;
  body << in.rdbuf();
  if (!in && !in.eof()) return HttpResponse::error(500, fmt::format("cannot read '{}'", path));
  HttpResponse response{200, std::string(contentTypeFor(file.filename().string())), {}, body.str()};
  response.headers.emplace_back("Cache-Control", "no-cache");
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return response;
}

}  // namespace tessera::api
