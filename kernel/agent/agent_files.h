#pragma once

/// The agent's `/files/*` endpoints (Mesos's files API) over the sandboxes under
/// `<work_dir>/slaves/`. A path is opened once, relative to that root, with
/// `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`, and everything after works on the
/// descriptor: a task swapping a directory for a symlink cannot lead a read outside. Only
/// regular files and directories are served; FIFOs, sockets and devices are refused without
/// blocking. The synchronous functions block on the filesystem: run them on the blocking pool.

#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "kernel/net/http_server.h"
#include "tessera/api/executor.h"
#include "tessera/api/http.h"
#include "tessera/api/status.h"

namespace tessera::kernel::agent {

/// Largest `/files/read` answer, as Mesos: 16 pages.
inline constexpr int64_t kMaxReadLength = 16 * 4096;
/// `/files/download` reads and sends this much at a time, one chunk in flight.
inline constexpr size_t kDownloadChunkBytes = 64 * 1024;

/// A file or directory of a sandbox, open for reading, and what fstat said about it when it
/// was opened. Owns the descriptor (closed on destruction); movable, not copyable.
class SandboxFile {
 public:
  SandboxFile(int fd, const struct stat& st) : fd_(fd), stat_(st) {}
  ~SandboxFile();
  SandboxFile(SandboxFile&& other) noexcept : fd_(other.fd_), stat_(other.stat_) { other.fd_ = -1; }
  SandboxFile& operator=(SandboxFile&& other) noexcept;
  SandboxFile(const SandboxFile&) = delete;
  SandboxFile& operator=(const SandboxFile&) = delete;

  int fd() const { return fd_; }
  const struct stat& stat() const { return stat_; }
  bool isDirectory() const { return S_ISDIR(stat_.st_mode); }
  /// Gives the descriptor up to the caller (for fdopendir, say); fd() is -1 after.
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
  struct stat stat_;
};

/// Opens `requested` (an absolute path, as /state shows sandbox directories) inside `root`
/// (the agent's `<work_dir>/slaves`, trusted): the part below `root` is resolved by the
/// kernel relative to a descriptor of `root`, beneath it, with symlinks followed only while
/// they stay beneath it (absolute symlinks are refused) and never through /proc magic links.
/// Opens non-blocking, so a FIFO never blocks. Errors: InvalidArgument when empty, relative
/// or containing a NUL byte, and for anything that is not a regular file or directory;
/// PermissionDenied for `..` components and for paths that are or lead (through symlinks)
/// outside `root`, with one message whether or not the outside target exists; NotFound when
/// it does not exist inside; Unavailable when the kernel has no openat2 (Linux < 5.6).
api::Result<SandboxFile> openSandboxPath(const std::filesystem::path& root,
                                         std::string_view requested);

/// GET /files/browse?path=: the entries of a directory (or the file itself), Mesos's fields.
api::HttpResponse filesBrowse(const std::filesystem::path& root, const api::HttpRequest& request);
/// GET /files/read?path=&offset=&length=: `{"data":..., "offset":...}`; offset -1 (or none)
/// answers the file's size as the offset with no data.
api::HttpResponse filesRead(const std::filesystem::path& root, const api::HttpRequest& request);
/// GET /files/download?path=: the file's bytes with their Content-Length, read and sent
/// `kDownloadChunkBytes` at a time on `executor`'s blocking pool, the next chunk only once the
/// previous one went to the socket (memory stays bounded whatever the file's size or the
/// client's pace). Errors are answered on `stream` as JSON. Returns at once; `executor` is
/// kept alive until the download ends.
void filesDownload(const std::filesystem::path& root, std::shared_ptr<api::Executor> executor,
                   const api::HttpRequest& request, std::shared_ptr<net::HttpStream> stream);

}  // namespace tessera::kernel::agent
