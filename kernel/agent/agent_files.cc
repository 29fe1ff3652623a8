#include "kernel/agent/agent_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <system_error>
#include <utility>
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

api::Result<SandboxFile> pathParam(const fs::path& root, const api::HttpRequest& request) {
  auto path = request.queryParam("path");
  if (!path) return api::invalidArgument("expecting 'path' in query");
  return openSandboxPath(root, *path);
}

// The path as the client asked for it, without trailing separators, for what is shown back.
std::string shownPath(const api::HttpRequest& request) {
  std::string shown = request.queryParam("path").value_or("");
  while (shown.size() > 1 && shown.back() == '/') shown.pop_back();
  return shown;
}

api::Status outside(std::string_view requested) {
  return api::makeStatus(api::StatusCode::kPermissionDenied,
                         "path '{}' is outside the agent's sandboxes", requested);
}

// `path` below `root` as a relative path ("." for `root` itself); nothing when `path` is not
// lexically under `root`.
std::optional<std::string> below(const fs::path& path, const fs::path& root) {
  if (!isWithin(path, root)) return std::nullopt;
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r) {
    if (!r->empty()) ++p;
  }
  std::string relative;
  for (; p != path.end(); ++p) {
    if (p->empty() || *p == ".") continue;
    if (!relative.empty()) relative += '/';
    relative += p->string();
  }
  return relative.empty() ? std::string(".") : relative;
}

// The kernel resolves `relative` beneath `rootFd`: escaping through `..` or a symlink (any
// absolute one included) fails with EXDEV, a /proc magic link with ELOOP. The walk and the
// open are one step, so there is no gap between checking a path and opening it.
int openBeneath(int rootFd, const std::string& relative, uint64_t flags = O_RDONLY,
                uint64_t resolve = 0) {
  struct open_how how {};
  // openat2 refuses O_PATH with any flag but O_DIRECTORY, O_NOFOLLOW and O_CLOEXEC.
  how.flags = flags | O_CLOEXEC | ((flags & O_PATH) != 0 ? 0 : O_NONBLOCK | O_NOCTTY);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | resolve;
  // EAGAIN: a concurrent rename made the kernel unsure a `..` stayed beneath; it asks us to
  // retry.
  for (int attempt = 0;; ++attempt) {
    long fd = ::syscall(SYS_openat2, rootFd, relative.c_str(), &how, sizeof(how));
    if (fd >= 0 || errno != EAGAIN || attempt == 16) return static_cast<int>(fd);
  }
}

// Below the root, a sandbox is `<agent>/frameworks/<framework>/executors/<executor>/runs/
// <container>`: these components are the agent's own directories.
constexpr size_t kSandboxDepth = 7;

// Opens `relative` (below the sandboxes' root) confined to the one sandbox it names: the
// agent's directories down to the sandbox are walked with no symlink allowed, and what lies
// inside the sandbox is resolved beneath the sandbox, so one task's symlink cannot reach
// another task's files. `inAgentDirs` says whether a failure came from the agent's part.
int openInItsSandbox(int rootFd, const std::string& relative, bool& inAgentDirs) {
  std::vector<std::string> parts;
  for (size_t begin = 0; begin <= relative.size();) {
    size_t end = std::min(relative.find('/', begin), relative.size());
    parts.push_back(relative.substr(begin, end - begin));
    begin = end + 1;
  }
  auto join = [&](size_t from, size_t to) {
    std::string out;
    for (size_t i = from; i < to; ++i) out += (i > from ? "/" : "") + parts[i];
    return out;
  };
  inAgentDirs = true;
  if (parts.size() <= kSandboxDepth) {
    return openBeneath(rootFd, relative, O_RDONLY, RESOLVE_NO_SYMLINKS);
  }
  const int sandboxFd =
      openBeneath(rootFd, join(0, kSandboxDepth), O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
  if (sandboxFd < 0) return -1;
  inAgentDirs = false;
  const int fd = openBeneath(sandboxFd, join(kSandboxDepth, parts.size()));
  const int openError = errno;
  ::close(sandboxFd);
  errno = openError;
  return fd;
}

// Keeps `value` from closing the quoted filename of a Content-Disposition header or
// breaking the header line.
std::string headerSafe(std::string value) {
  for (char& c : value) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '_';
  }
  return value;
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

SandboxFile::~SandboxFile() {
  if (fd_ >= 0) ::close(fd_);
}

SandboxFile& SandboxFile::operator=(SandboxFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    stat_ = other.stat_;
  }
  return *this;
}

api::Result<SandboxFile> openSandboxPath(const fs::path& root, std::string_view requested) {
  if (requested.empty()) return api::invalidArgument("expecting 'path' in query");
  // The C calls below would stop at a NUL: `f.txt\0.png` must not read `f.txt`.
  if (requested.find('\0') != std::string_view::npos) {
    return api::invalidArgument("'path' must not contain a NUL byte");
  }
  const fs::path path{std::string(requested)};
  if (!path.is_absolute()) {
    return api::invalidArgument("path '{}' is not absolute", requested);
  }
  for (const auto& part : path) {
    if (part == "..") {
      return api::makeStatus(api::StatusCode::kPermissionDenied, "path '{}' may not contain '..'",
                             requested);
    }
  }
  // /state shows sandboxes under the root as configured; accept its real path too.
  fs::path base = root.lexically_normal();
  auto relative = below(path, base);
  if (!relative) {
    std::error_code error;
    fs::path real = fs::weakly_canonical(root, error);
    if (!error && (relative = below(path, real))) base = real;
  }
  if (!relative) return outside(requested);

  const int rootFd = ::open(base.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootFd < 0) {
    return api::unavailable("cannot open the sandboxes' root '{}': {}", base.string(),
                            std::strerror(errno));
  }
  bool inAgentDirs = true;
  const int fd = openInItsSandbox(rootFd, *relative, inAgentDirs);
  const int openError = errno;
  ::close(rootFd);
  if (fd < 0) {
    // A symlink among the agent's own directories is not the agent's: refused like a way out.
    if (inAgentDirs && openError == ELOOP) return outside(requested);
    switch (openError) {
      case EXDEV:
        return outside(requested);
      case ENOENT:
      case ENOTDIR:
        return api::notFound("path '{}' does not exist", requested);
      case ELOOP:
        return api::notFound("path '{}' cannot be resolved: {}", requested,
                             std::strerror(openError));
      case EACCES:
      case EPERM:
        return api::makeStatus(api::StatusCode::kPermissionDenied, "path '{}': {}", requested,
                               std::strerror(openError));
      case ENXIO:  // a socket
      case ENODEV:
        return api::invalidArgument("path '{}' is not a regular file or directory", requested);
      case ENOSYS:
        return api::unavailable(
            "this kernel has no openat2 (Linux 5.6 or later), which serving sandbox files "
            "safely needs");
      case EAGAIN:
        return api::unavailable("path '{}' kept changing while it was opened", requested);
      default:
        return api::internalError("cannot open path '{}': {}", requested, std::strerror(openError));
    }
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int statError = errno;
    ::close(fd);
    return api::internalError("cannot stat path '{}': {}", requested, std::strerror(statError));
  }
  SandboxFile file(fd, st);
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    return api::invalidArgument("path '{}' is not a regular file or directory", requested);
  }
  return file;
}

api::HttpResponse filesBrowse(const fs::path& root, const api::HttpRequest& request) {
  auto file = pathParam(root, request);
  if (!file) return http::errorResponse(file.status());
  const std::string shown = shownPath(request);
  http::JsonWriter w;
  w.beginArray();
  if (!file->isDirectory()) {
    writeEntry(w, shown, file->stat());
    return api::HttpResponse::json(200, w.endArray().take());
  }
  DIR* dir = ::fdopendir(file->fd());
  if (dir == nullptr) {
    return http::errorResponse(
        api::internalError("cannot list path '{}': {}", shown, std::strerror(errno)));
  }
  file->release();  // the DIR owns it now
  std::vector<std::pair<fs::path, struct stat>> entries;
  while (struct dirent* entry = ::readdir(dir)) {
    std::string_view name(entry->d_name);
    if (name == "." || name == "..") continue;
    struct stat child {};
    if (::fstatat(::dirfd(dir), entry->d_name, &child, AT_SYMLINK_NOFOLLOW) != 0) continue;
    entries.emplace_back(fs::path(shown) / entry->d_name, child);
  }
  ::closedir(dir);
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
  auto file = pathParam(root, request);
  if (!file) return http::errorResponse(file.status());
  if (file->isDirectory()) {
    return http::errorResponse(api::invalidArgument("cannot read a directory"));
  }
  const int64_t size = file->stat().st_size;
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
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::pread(file->fd(), data.data() + done, data.size() - done,
                          static_cast<off_t>(*offset + static_cast<int64_t>(done)));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        return http::errorResponse(
            api::internalError("cannot read the file: {}", std::strerror(errno)));
      }
      if (n == 0) break;  // shrunk since fstat
      done += static_cast<size_t>(n);
    }
    data.resize(done);
  }
  return api::HttpResponse::json(200, http::writeJson([&](http::JsonWriter& w) {
                                   w.beginObject().field("data", data).field("offset", *offset);
                                   w.endObject();
                                 }));
}

namespace {

// One download in progress: the open file, how far it went, and where the bytes go. Shared by
// the callbacks of its steps; the last one to finish frees it (and closes the file).
struct Download {
  std::shared_ptr<api::Executor> executor;
  std::shared_ptr<net::HttpStream> stream;
  std::optional<SandboxFile> file;
  api::Status error;
  std::string name;
  uint64_t size = 0;
  uint64_t sent = 0;
  std::string chunk;
};

void answerError(net::HttpStream& stream, const api::Status& status) {
  stream.respond(http::errorResponse(status));
}

// Reads the next chunk on the blocking pool, then (back on the executor) queues it and asks
// to be called again once it has gone to the socket.
void sendNext(const std::shared_ptr<Download>& download) {
  if (!download->stream->open()) return;
  if (download->sent >= download->size) return download->stream->end();
  auto read = [download] {
    const uint64_t want = std::min<uint64_t>(kDownloadChunkBytes, download->size - download->sent);
    download->chunk.resize(want);
    ssize_t n;
    do {
      n = ::pread(download->file->fd(), download->chunk.data(), want,
                  static_cast<off_t>(download->sent));
    } while (n < 0 && errno == EINTR);
    download->chunk.resize(n > 0 ? static_cast<size_t>(n) : 0);
  };
  auto send = [download] {
    // Nothing read (an error, or the file shrank since fstat): end short; the client sees a
    // body shorter than its Content-Length.
    if (download->chunk.empty()) return download->stream->end();
    download->sent += download->chunk.size();
    download->stream->write(std::exchange(download->chunk, {}));
    download->stream->whenWritten([download] { sendNext(download); });
  };
  if (!download->executor->runBlocking(std::move(read), std::move(send))) {
    download->stream->end();
  }
}

}  // namespace

void filesDownload(const fs::path& root, std::shared_ptr<api::Executor> executor,
                   const api::HttpRequest& request, std::shared_ptr<net::HttpStream> stream) {
  auto download = std::make_shared<Download>();
  download->executor = executor;
  download->stream = std::move(stream);
  auto open = [download, root, request] {
    auto file = pathParam(root, request);
    if (!file) {
      download->error = file.status();
    } else if (file->isDirectory()) {
      download->error = api::invalidArgument("cannot download a directory");
    } else {
      download->size = static_cast<uint64_t>(file->stat().st_size);
      download->name = fs::path(*request.queryParam("path")).filename().string();
      download->file.emplace(std::move(file).value());
    }
  };
  auto start = [download] {
    if (!download->error.isOk()) return answerError(*download->stream, download->error);
    download->stream->startSized(
        200, "application/octet-stream", download->size,
        {{"Content-Disposition",
          fmt::format("attachment; filename=\"{}\"", headerSafe(download->name))}});
    sendNext(download);
  };
  auto queued = executor->runBlocking(std::move(open), std::move(start));
  // A full blocking pool is the agent being unavailable for now (503), not the client's rate.
  if (!queued) answerError(*download->stream, api::unavailable("{}", queued.message()));
}

}  // namespace tessera::kernel::agent
