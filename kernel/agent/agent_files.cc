#include "kernel/agent/agent_files.h"

#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <system_error>
#include <vector>

#include "kernel/http/http_status.h"
#include "kernel/http/json_writer.h"

namespace tessera::kernel::agent {

namespace fs = std::filesystem;

namespace {

bool isWithin(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // a trailing separator
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

api::Result<fs::path> pathParam(const fs::path& root, const api::HttpRequest& request) {
  auto path = request.queryParam("path");
  if (!path) return api::invalidArgument("expecting 'path' in query");
  return resolveSandboxPath(root, *path);
}

// "drwxr-xr-x", as Mesos's browse shows modes.
std::string modeString(mode_t mode) {
  std::string out(10, '-');
  if (S_ISDIR(mode)) out[0] = 'd';
  if (S_ISLNK(mode)) out[0] = 'l';
  const char* letters = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) {
    if (mode & (1 << (8 - i))) out[1 + i] = letters[i];
  }
  return out;
}

std::string userName(uid_t uid) {
  struct passwd* entry = getpwuid(uid);
  return entry ? entry->pw_name : std::to_string(uid);
}

std::string groupName(gid_t gid) {
  struct group* entry = getgrgid(gid);
  return entry ? entry->gr_name : std::to_string(gid);
}

void writeEntry(http::JsonWriter& w, const fs::path& shown, const struct stat& st) {
  w.beginObject();
  w.field("path", shown.string());
  w.field("nlink", static_cast<uint64_t>(st.st_nlink));
  w.field("size", static_cast<int64_t>(st.st_size));
  w.field("mtime", static_cast<int64_t>(st.st_mtim.tv_sec));
  w.field("mode", modeString(st.st_mode));
  w.field("uid", userName(st.st_uid));
  w.field("gid", groupName(st.st_gid));
  w.endObject();
}

api::Result<int64_t> intParam(const api::HttpRequest& request, std::string_view name,
                              int64_t fallback) {
  auto text = request.queryParam(name);
  if (!text) return fallback;
  errno = 0;
  char* end = nullptr;
  long long value = std::strtoll(text->c_str(), &end, 10);
  if (text->empty() || *end != '\0' || errno != 0) {
    return api::invalidArgument("failed to parse {}: '{}' is not a number", name, *text);
  }
  return static_cast<int64_t>(value);
}

}  // namespace

api::Result<fs::path> resolveSandboxPath(const fs::path& root, std::string_view requested) {
  if (requested.empty()) return api::invalidArgument("expecting 'path' in query");
  fs::path path(requested);
  if (!path.is_absolute()) {
    return api::invalidArgument("path '{}' is not absolute", requested);
  }
  for (const auto& part : path) {
    if (part == "..") {
      return api::makeStatus(api::StatusCode::kPermissionDenied, "path '{}' may not contain '..'",
                             requested);
    }
  }
  std::error_code error;
  fs::path realRoot = fs::weakly_canonical(root, error);
  if (error) realRoot = root;
  fs::path resolved = fs::weakly_canonical(path, error);
  if (error) return api::notFound("path '{}' cannot be resolved: {}", requested, error.message());
  if (!isWithin(resolved, realRoot)) {
    return api::makeStatus(api::StatusCode::kPermissionDenied,
                           "path '{}' is outside the agent's sandboxes", requested);
  }
  if (!fs::exists(resolved, error)) return api::notFound("path '{}' does not exist", requested);
  return resolved;
}

api::HttpResponse filesBrowse(const fs::path& root, const api::HttpRequest& request) {
  auto resolved = pathParam(root, request);
  if (!resolved) return http::errorResponse(resolved.status());
  std::string shown = *request.queryParam("path");
  while (shown.size() > 1 && shown.back() == '/') shown.pop_back();
  struct stat st {};
  if (::stat(resolved->c_str(), &st) != 0) {
    return http::errorResponse(api::notFound("path '{}' does not exist", shown));
  }
  http::JsonWriter w;
  w.beginArray();
  if (!S_ISDIR(st.st_mode)) {
    writeEntry(w, shown, st);
    return api::HttpResponse::json(200, w.endArray().take());
  }
  std::vector<std::pair<fs::path, struct stat>> entries;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(*resolved, error)) {
    struct stat child {};
    if (::lstat(entry.path().c_str(), &child) != 0) continue;
    entries.emplace_back(fs::path(shown) / entry.path().filename(), child);
  }
  if (error) return http::errorResponse(api::internalError("{}", error.message()));
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.first.string() < b.first.string(); });
  for (const auto& [path, child] : entries) writeEntry(w, path, child);
  return api::HttpResponse::json(200, w.endArray().take());
}

api::HttpResponse filesRead(const fs::path& root, const api::HttpRequest& request) {
  auto offset = intParam(request, "offset", -1);
  if (!offset) return http::errorResponse(offset.status());
  auto length = intParam(request, "length", kMaxReadLength);
  if (!length) return http::errorResponse(length.status());
  if (*offset < -1) return http::errorResponse(api::invalidArgument("negative offset provided"));
  if (*length < 0) return http::errorResponse(api::invalidArgument("negative length provided"));
  auto resolved = pathParam(root, request);
  if (!resolved) return http::errorResponse(resolved.status());
  std::error_code error;
  if (fs::is_directory(*resolved, error)) {
    return http::errorResponse(api::invalidArgument("cannot read a directory"));
  }
  std::ifstream in(*resolved, std::ios::binary);
  if (!in) return http::errorResponse(api::notFound("cannot open the file"));
  in.seekg(0, std::ios::end);
  const int64_t size = in.tellg();
  if (*offset == -1) {
    return api::HttpResponse::json(
        200, http::writeJson([&](http::JsonWriter& w) {
          w.beginObject().field("data", "").field("offset", size).endObject();
        }));
  }
  std::string data;
  if (*offset < size) {
    const int64_t count = std::min({*length, size - *offset, kMaxReadLength});
    data.resize(static_cast<size_t>(count));
    in.seekg(*offset);
    in.read(data.data(), count);
    data.resize(static_cast<size_t>(in.gcount()));
  }
  return api::HttpResponse::json(200, http::writeJson([&](http::JsonWriter& w) {
                                   w.beginObject().field("data", data).field("offset", *offset);
                                   w.endObject();
                                 }));
}

api::HttpResponse filesDownload(const fs::path& root, const api::HttpRequest& request) {
  auto resolved = pathParam(root, request);
  if (!resolved) return http::errorResponse(resolved.status());
  std::error_code error;
  if (fs::is_directory(*resolved, error)) {
    return http::errorResponse(api::invalidArgument("cannot download a directory"));
  }
  std::ifstream in(*resolved, std::ios::binary);
  if (!in) return http::errorResponse(api::notFound("cannot open the file"));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  api::HttpResponse response;
  response.status = 200;
  response.contentType = "application/octet-stream";
  response.headers.emplace_back("Content-Disposition", fmt::format("attachment; filename=\"{}\"",
                                                                   resolved->filename().string()));
  response.body = std::move(data);
  return response;
}

}  // namespace tessera::kernel::agent
