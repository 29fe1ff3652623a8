// The fetcher: one job per task on a small pool of its own threads, each URI downloaded
// (libcurl) or copied into the sandbox, possibly through the cache, then possibly unpacked.
// Files in the sandbox are created with openat() below a descriptor of the sandbox, one
// component at a time and O_NOFOLLOW, so no name and no symlink leads out of it.

#include "kernel/agent/fetcher.h"

#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <linux/fs.h>
#include <pwd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <unordered_set>

#include "kernel/agent/fetcher_archive.h"

namespace tessera::kernel::agent {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxQueuedFetches = 4096;
constexpr const char* kLogName = "fetcher.log";

bool startsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

api::Status errnoStatus(std::string_view what) {
  return api::internalError("{}: {}", what, std::strerror(errno));
}

// Closes a descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// fetcher.log in the sandbox, one line per event; best effort (a log that cannot be written
// never fails a fetch).
class FetchLog {
 public:
  explicit FetchLog(int sandboxFd)
      : fd_(::openat(sandboxFd, kLogName, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC,
                     0644)) {}
  template <typename... Args>
  void line(fmt::format_string<Args...> format, Args&&... args) {
    if (fd_.get() < 0) return;
    std::string text = fmt::format("{:%Y-%m-%dT%H:%M:%S}Z ", fmt::gmtime(std::time(nullptr))) +
                       fmt::format(format, std::forward<Args>(args)...) + "\n";
    [[maybe_unused]] ssize_t written = ::write(fd_.get(), text.data(), text.size());
  }

 private:
  Fd fd_;
};

// The local copy's name: output_file, or the last segment of the URI's path.
api::Result<std::string> outputName(const v1::CommandInfo::URI& uri) {
  if (uri.has_output_file()) {
    const std::string& name = uri.output_file();
    if (!staysBeneath(name) || name.back() == '/') {
      return api::invalidArgument("output_file '{}' is not a relative path inside the sandbox",
                                  name);
    }
    return name;
  }
  std::string_view path = uri.value();
  if (auto scheme = path.find("://"); scheme != std::string_view::npos) {
    path.remove_prefix(scheme + 3);
    path = path.substr(0, path.find_first_of("?#"));
  }
  auto slash = path.rfind('/');
  std::string name(slash == std::string_view::npos ? path : path.substr(slash + 1));
  if (name.empty() || name == "." || name == "..") {
    return api::invalidArgument("the URI names no file (set output_file)");
  }
  return name;
}

// The directory that will hold `name` below the directory `root` (created as needed; no
// component may be a symlink), and the name's last component.
struct Placement {
  Fd dir;
  std::string leaf;
};

api::Result<Placement> placeBeneath(int root, const std::string& name) {
  Fd dir(::fcntl(root, F_DUPFD_CLOEXEC, 0));
  if (dir.get() < 0) return errnoStatus("duplicating the sandbox descriptor");
  fs::path path(name);
  std::vector<std::string> parts;
  for (const auto& part : path) {
    if (!part.empty() && part != ".") parts.push_back(part.string());
  }
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (::mkdirat(dir.get(), parts[i].c_str(), 0755) != 0 && errno != EEXIST) {
      return errnoStatus(fmt::format("creating the directory '{}'", parts[i]));
    }
    Fd next(::openat(dir.get(), parts[i].c_str(), O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (next.get() < 0) return errnoStatus(fmt::format("opening the directory '{}'", parts[i]));
    dir = std::move(next);
  }
  return Placement{std::move(dir), parts.back()};
}

// Opens `name` for writing below the directory `root`, creating its parent directories; no
// component may be a symlink.
api::Result<Fd> createBeneath(int root, const std::string& name) {
  auto placed = placeBeneath(root, name);
  if (!placed) return placed.status();
  // A file already there is replaced, never truncated: it may be a link to a cached file.
  ::unlinkat(placed->dir.get(), placed->leaf.c_str(), 0);
  Fd file(::openat(placed->dir.get(), placed->leaf.c_str(),
                   O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (file.get() < 0) return errnoStatus(fmt::format("creating '{}'", name));
  return file;
}

// Hard-links the cached file `cached` as `name` below `root`. False when that cannot be done
// (another file system, a name already taken, ...): the caller copies instead.
bool linkBeneath(int root, const std::string& name, const fs::path& cached) {
  auto placed = placeBeneath(root, name);
  if (!placed) return false;
  ::unlinkat(placed->dir.get(), placed->leaf.c_str(), 0);  // as a copy replaces it
  return ::linkat(AT_FDCWD, cached.c_str(), placed->dir.get(), placed->leaf.c_str(), 0) == 0;
}

// Recreates the cached extracted `tree` below `root`: its directories made anew (the
// fetcher's, so chowned to the task's user with the rest of the sandbox, and writable), its
// regular files hard-linked (read-only, shared with the cache), its symlinks made again (they
// were checked to stay inside when it was extracted). What is in the way is replaced, as
// extraction replaces it; a directory or a symlink in the way of a directory is an error. The
// linked files' names are appended to `linked`. Errors (another file system, ...) leave what
// was made so far: the caller extracts over it.
api::Status linkTree(int root, const CachedTree& tree, std::vector<fs::path>& linked) {
  Fd treeFd(::open(tree.root.c_str(), O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (treeFd.get() < 0) return errnoStatus("opening the cached tree");
  // The open directories along the current path: the nodes come depth first.
  std::vector<std::pair<fs::path, Fd>> dirs;
  dirs.emplace_back(fs::path(), Fd(::fcntl(root, F_DUPFD_CLOEXEC, 0)));
  if (dirs.back().second.get() < 0) return errnoStatus("duplicating the sandbox descriptor");
  for (const TreeNode& node : tree.nodes) {
    const fs::path parent = node.path.parent_path();
    while (dirs.size() > 1 && dirs.back().first != parent) dirs.pop_back();
    if (dirs.back().first != parent) {
      return api::internalError("the cached tree lists '{}' before its directory",
                                node.path.string());
    }
    const int at = dirs.back().second.get();
    const std::string leaf = node.path.filename().string();
    switch (node.type) {
      case TreeNode::Type::kDirectory: {
        if (::mkdirat(at, leaf.c_str(), node.mode) != 0 && errno != EEXIST) {
          return errnoStatus(fmt::format("creating the directory '{}'", node.path.string()));
        }
        Fd dir(::openat(at, leaf.c_str(), O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (dir.get() < 0) {
          return errnoStatus(fmt::format("opening the directory '{}'", node.path.string()));
        }
        dirs.emplace_back(node.path, std::move(dir));
        break;
      }
      case TreeNode::Type::kFile:
        // Usually nothing is in the way: the link is tried first.
        if (::linkat(treeFd.get(), node.path.c_str(), at, leaf.c_str(), 0) != 0 &&
            (errno != EEXIST || ::unlinkat(at, leaf.c_str(), 0) != 0 ||
             ::linkat(treeFd.get(), node.path.c_str(), at, leaf.c_str(), 0) != 0)) {
          return errnoStatus(fmt::format("linking '{}'", node.path.string()));
        }
        linked.push_back(node.path);
        break;
      case TreeNode::Type::kSymlink:
        if (::symlinkat(node.target.c_str(), at, leaf.c_str()) != 0 &&
            (errno != EEXIST || ::unlinkat(at, leaf.c_str(), 0) != 0 ||
             ::symlinkat(node.target.c_str(), at, leaf.c_str()) != 0)) {
          return errnoStatus(fmt::format("creating the symlink '{}'", node.path.string()));
        }
        break;
    }
  }
  return api::Status::ok();
}

// Whether `fd` and `path` are on one file system (a hard link between them can work).
bool sameFileSystem(int fd, const fs::path& path) {
  struct stat a {
  }, b{};
  return ::fstat(fd, &a) == 0 && ::stat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev;
}

// Gives everything below the open directory `dir` (named `prefix` in the sandbox, "" for the
// sandbox) to uid:gid, except the regular files named in `shared` that are still shared
// (more than one link): a file linked from the cache stays the agent's, so the task cannot make
// the shared inode writable. Symlinks are not followed (their own owner changes); the task has
// not started, so nothing changes the tree meanwhile. Errors name the entry.
api::Status chownBelow(int dir, const std::string& prefix, uid_t uid, gid_t gid,
                       const std::unordered_set<std::string>& shared) {
  const int copy = ::fcntl(dir, F_DUPFD_CLOEXEC, 0);
  DIR* stream = copy >= 0 ? ::fdopendir(copy) : nullptr;
  if (stream == nullptr) {
    if (copy >= 0) ::close(copy);
    return errnoStatus(fmt::format("reading '{}'", prefix.empty() ? "." : prefix));
  }
  std::unique_ptr<DIR, int (*)(DIR*)> closer(stream, ::closedir);
  for (;;) {
    errno = 0;
    const dirent* entry = ::readdir(stream);
    if (entry == nullptr) {
      if (errno != 0) return errnoStatus(fmt::format("reading '{}'", prefix));
      return api::Status::ok();
    }
    const std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    const std::string relative = prefix.empty() ? std::string(name) : prefix + "/" + entry->d_name;
    struct stat info {};
    if (shared.count(relative) != 0 &&
        ::fstatat(dir, entry->d_name, &info, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(info.st_mode) &&
        info.st_nlink > 1) {
      continue;
    }
    if (::fchownat(dir, entry->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
      return errnoStatus(fmt::format("chown of '{}'", relative));
    }
    bool directory = entry->d_type == DT_DIR;
    if (entry->d_type == DT_UNKNOWN) {
      directory =
          ::fstatat(dir, entry->d_name, &info, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(info.st_mode);
    }
    if (!directory) continue;
    Fd below(::openat(dir, entry->d_name, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (below.get() < 0) return errnoStatus(fmt::format("opening '{}'", relative));
    if (auto given = chownBelow(below.get(), relative, uid, gid, shared); !given) return given;
  }
}

// Whether cached files may be hard-linked into the sandbox of a task run as `user`: the
// cached inode is read-only, which stops a write through the link by any task not run as
// root (root ignores permission bits). A non-root agent runs every task as itself; a root
// agent runs a task as `user` when one is set, else as root.
bool mayLinkFor(const std::optional<std::string>& user) {
  if (::geteuid() != 0) return true;
  if (!user) return false;
  std::vector<char> buffer(16 * 1024);
  passwd entry{};
  passwd* found = nullptr;
  return ::getpwnam_r(user->c_str(), &entry, buffer.data(), buffer.size(), &found) == 0 &&
         found != nullptr && found->pw_uid != 0;
}

api::Status writeAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errnoStatus("writing");
    data += n;
    size -= static_cast<size_t>(n);
  }
  return api::Status::ok();
}

// Copies the open file `from` into `to`: a reflink where the file system has them, else
// copy_file_range (in-kernel), else read and write.
api::Status copyFd(int from, int to, uint64_t& bytes) {
  struct stat info {};
  if (::fstat(from, &info) != 0) return errnoStatus("reading the source");
  if (!S_ISREG(info.st_mode)) return api::invalidArgument("not a regular file");
  if (::ioctl(to, FICLONE, from) == 0) {
    bytes = static_cast<uint64_t>(info.st_size);
    return api::Status::ok();
  }
  bytes = 0;
  for (;;) {
    ssize_t n = ::copy_file_range(from, nullptr, to, nullptr, 1 << 30, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;  // not supported here: the plain loop below carries on
    if (n == 0) return api::Status::ok();
    bytes += static_cast<uint64_t>(n);
  }
  char buffer[64 * 1024];
  for (;;) {
    ssize_t n = ::read(from, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errnoStatus("reading the source");
    if (n == 0) return api::Status::ok();
    if (auto written = writeAll(to, buffer, static_cast<size_t>(n)); !written) return written;
    bytes += static_cast<uint64_t>(n);
  }
}

api::Status copyLocal(const std::string& path, int to, uint64_t& bytes) {
  if (path.empty() || path.front() != '/') {
    return api::invalidArgument("a local path must be absolute");
  }
  Fd from(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (from.get() < 0) {
    return api::unavailable("cannot open '{}': {}", path, std::strerror(errno));
  }
  return copyFd(from.get(), to, bytes);
}

struct Transfer {
  int fd = -1;
  uint64_t bytes = 0;
  const FetchHandle* handle = nullptr;
  const std::atomic<bool>* stopping = nullptr;
  api::Status writeError;
};

size_t onData(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t total = size * count;
  if (auto written = writeAll(transfer->fd, data, total); !written) {
    transfer->writeError = written;
    return 0;  // aborts the transfer
  }
  transfer->bytes += total;
  return total;
}

int onProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* transfer = static_cast<Transfer*>(user);
  return transfer->handle->cancelled() || transfer->stopping->load() ? 1 : 0;
}

api::Status download(const std::string& url, int fd, uint64_t& bytes, const FetchHandle& handle,
                     const std::atomic<bool>& stopping, runtime::Duration stall) {
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return api::internalError("cannot create a libcurl handle");
  Transfer transfer{fd, 0, &handle, &stopping, {}};
  const long stallSeconds =
      std::max<long>(1, static_cast<long>(std::chrono::ceil<std::chrono::seconds>(stall).count()));
  char error[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "tessera-fetcher");
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, onData);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, onProgress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &transfer);
  // The stall timeout: fewer than 1 byte/s for that long aborts, as does a connection that
  // takes that long.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, stallSeconds);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, stallSeconds);
  const CURLcode code = curl_easy_perform(c);
  bytes = transfer.bytes;
  if (code == CURLE_ABORTED_BY_CALLBACK) {
    return api::makeStatus(api::StatusCode::kCancelled, "the fetch was cancelled");
  }
  if (code == CURLE_WRITE_ERROR && !transfer.writeError) return transfer.writeError;
  if (code == CURLE_OPERATION_TIMEDOUT) {
    return api::unavailable("stalled: no data for {}s ({})", stallSeconds, error);
  }
  if (code != CURLE_OK) {
    return api::unavailable("{}", error[0] != '\0' ? error : curl_easy_strerror(code));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 400) return api::unavailable("HTTP {}", status);
  return api::Status::ok();
}

}  // namespace

void FetchHandle::cancel() {
  cancelled_ = true;
  if (auto cache = cache_.lock()) cache->wakeWaiters();
}

api::Result<std::unique_ptr<Fetcher>> Fetcher::create(FetcherOptions options) {
  static std::once_flag curlReady;
  std::call_once(curlReady, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<Fetcher> fetcher(new Fetcher(std::move(options)));
  if (auto ready = fetcher->cache_->initialize(); !ready) return ready;
  return fetcher;
}

Fetcher::Fetcher(FetcherOptions options)
    : options_(std::move(options)),
      cache_(std::make_shared<FetcherCache>(options_.cacheDir, options_.cacheSize)),
      pool_(std::max<size_t>(1, options_.maxParallel), kMaxQueuedFetches) {}

Fetcher::~Fetcher() { stop(); }

void Fetcher::stop() {
  stopping_ = true;
  cache_->wakeWaiters();
  pool_.shutdown();
}

std::shared_ptr<FetchHandle> Fetcher::fetch(std::vector<v1::CommandInfo::URI> uris,
                                            fs::path sandbox, Done done,
                                            std::optional<std::string> user) {
  auto handle = std::make_shared<FetchHandle>();
  handle->cache_ = cache_;
  auto shared = std::make_shared<Done>(std::move(done));
  const bool queued = pool_.submit([this, uris = std::move(uris), sandbox, handle, shared, user] {
    std::vector<fs::path> linked;
    const bool mayLink = options_.linkCached && mayLinkFor(user);
    api::Status status = run(uris, sandbox, *handle, mayLink, linked);
    if (status && user && ::geteuid() == 0) status = chownFetched(sandbox, *user, linked);
    (*shared)(std::move(status));
  });
  if (!queued) (*shared)(api::resourceExhausted("too many fetches are queued"));
  return handle;
}

api::Status Fetcher::chownFetched(const fs::path& sandbox, const std::string& user,
                                  const std::vector<fs::path>& linked) {
  std::vector<char> buffer(16 * 1024);
  passwd entry{};
  passwd* found = nullptr;
  if (::getpwnam_r(user.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr) {
    return api::invalidArgument("Failed to fetch: unknown user '{}'", user);
  }
  std::unordered_set<std::string> shared;
  for (const auto& name : linked) shared.insert(name.string());
  Fd root(::open(sandbox.c_str(), O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (root.get() < 0) {
    return api::internalError("Failed to fetch: chown to '{}': opening the sandbox: {}", user,
                              std::strerror(errno));
  }
  if (auto given = chownBelow(root.get(), "", found->pw_uid, found->pw_gid, shared); !given) {
    return api::internalError("Failed to fetch: chown to '{}': {}", user, given.message());
  }
  return api::Status::ok();
}

api::Status Fetcher::run(const std::vector<v1::CommandInfo::URI>& uris, const fs::path& sandbox,
                         const FetchHandle& handle, bool mayLink, std::vector<fs::path>& linked) {
  std::error_code error;
  const fs::path root = fs::canonical(sandbox, error);
  if (error) return api::internalError("no sandbox '{}': {}", sandbox.string(), error.message());
  Fd rootFd(::open(root.c_str(), O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (rootFd.get() < 0) return errnoStatus("opening the sandbox");
  FetchLog log(rootFd.get());
  auto cancelled = [&] { return handle.cancelled() || stopping_.load(); };

  for (const auto& uri : uris) {
    const auto started = std::chrono::steady_clock::now();
    auto fail = [&](const api::Status& cause) {
      log.line("failed to fetch '{}': {}", uri.value(), cause.message());
      return api::Status(cause.code(),
                         fmt::format("Failed to fetch '{}': {}", uri.value(), cause.message()));
    };
    if (cancelled()) return fail(api::makeStatus(api::StatusCode::kCancelled, "cancelled"));
    auto name = outputName(uri);
    if (!name) return fail(name.status());
    const std::string& value = uri.value();
    // One way to get the bytes, wherever they go.
    FetcherCache::Download get = [&](int fd, uint64_t& bytes) -> api::Status {
      if (startsWith(value, "http://") || startsWith(value, "https://")) {
        return download(value, fd, bytes, handle, stopping_, options_.stallTimeout);
      }
      if (startsWith(value, "file://")) return copyLocal(value.substr(7), fd, bytes);
      if (startsWith(value, "/")) return copyLocal(value, fd, bytes);
      return api::invalidArgument(
          "unsupported URI (http://, https://, file:// or an absolute "
          "path)");
    };
    uint64_t bytes = 0;
    std::string how = "directly";
    std::optional<CacheLease> lease;  // held until the URI is done
    if (uri.cache()) {
      auto acquired = cache_->acquire(value, fs::path(*name).filename().string(), get, cancelled);
      if (!acquired) return fail(acquired.status());
      lease = std::move(acquired).value();
      const char* hitOrMiss = lease->hit() ? "(hit)" : "(miss)";
      // A link shares the cached inode, whose mode is every link's mode: an executable copy
      // (a chmod) never links.
      if (mayLink && !uri.executable() && linkBeneath(rootFd.get(), *name, lease->path())) {
        bytes = lease->size();
        how = fmt::format("linked from the cache {}", hitOrMiss);
        linked.push_back(fs::path(*name).lexically_normal());
      } else {
        auto target = createBeneath(rootFd.get(), *name);
        if (!target) return fail(target.status());
        how = fmt::format("copied from the cache {}", hitOrMiss);
        Fd cached(::open(lease->path().c_str(), O_RDONLY | O_CLOEXEC));
        if (cached.get() < 0) return fail(errnoStatus("opening the cached file"));
        if (auto copied = copyFd(cached.get(), target->get(), bytes); !copied) {
          return fail(copied);
        }
        if (uri.executable() && ::fchmod(target->get(), 0755) != 0) {
          return fail(errnoStatus("making it executable"));
        }
      }
    } else {
      auto target = createBeneath(rootFd.get(), *name);
      if (!target) return fail(target.status());
      if (auto got = get(target->get(), bytes); !got) {
        ::unlinkat(rootFd.get(), name->c_str(), 0);
        return fail(got);
      }
      if (uri.executable() && ::fchmod(target->get(), 0755) != 0) {
        return fail(errnoStatus("making it executable"));
      }
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
    log.line("fetched '{}' to '{}': {} bytes {} in {} ms", value, *name, bytes, how, ms);
    const ArchiveKind kind = archiveKind(*name);
    if (!uri.extract() || kind == ArchiveKind::kNone) continue;
    // A cached archive is extracted once, into the cache; its tree is linked into sandboxes
    // where its files may be linked (fetcher_cache.h). Anything else extracts it here.
    if (lease && kind == ArchiveKind::kArchive && mayLink &&
        sameFileSystem(rootFd.get(), lease->path().parent_path())) {
      const auto linkStarted = std::chrono::steady_clock::now();
      bool built = false;
      auto tree = cache_->tree(
          *lease,
          [&](const fs::path& directory) -> api::Status {
            auto entries = extractArchive(lease->path(), directory, kind);
            return entries ? api::Status::ok() : entries.status();
          },
          cancelled, built);
      if (!tree && (tree.status().code() == api::StatusCode::kInvalidArgument ||
                    tree.status().code() == api::StatusCode::kCancelled)) {
        return fail(tree.status().withContext("extracting '{}'", *name));
      }
      api::Status linkedTree = !tree ? tree.status()
                               : !(*tree)->shareable
                                   ? api::failedPrecondition("it has files not readable by all")
                                   : linkTree(rootFd.get(), **tree, linked);
      if (linkedTree) {
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - linkStarted)
                            .count();
        log.line(
            "linked the extracted tree of '{}' from the cache ({}): {} nodes, {} files, in {} us",
            *name, built ? "extracted now" : "hit", (*tree)->nodes.size(), (*tree)->files, us);
        continue;
      }
      log.line("cannot link the extracted tree of '{}' from the cache ({}): extracting it", *name,
               linkedTree.message());
    }
    auto entries = extractArchive(root / *name, root, kind);
    if (!entries) return fail(entries.status().withContext("extracting '{}'", *name));
    log.line("extracted {} entries from '{}'", *entries, *name);
  }
  return api::Status::ok();
}

}  // namespace tessera::kernel::agent
