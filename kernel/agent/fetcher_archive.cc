// Archive extraction for the fetcher, on libarchive. libarchive writes entries at the paths it
// is given, relative to the process's working directory, which a multi-threaded agent cannot
// change; so every entry is checked here first (its own name, and a link's target) and then
// written at an absolute path below the sandbox, with libarchive's own SECURE_NODOTDOT and
// SECURE_SYMLINKS checks on top (the latter catches a path through a symlink an earlier entry
// made).

#include "kernel/agent/fetcher_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

namespace tessera::kernel::agent {
namespace {

namespace fs = std::filesystem;

bool endsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

struct ReadCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct WriteCloser {
  void operator()(archive* a) const { archive_write_free(a); }
};
using Reader = std::unique_ptr<archive, ReadCloser>;
using Writer = std::unique_ptr<archive, WriteCloser>;

std::string errorOf(archive* a) {
  const char* text = archive_error_string(a);
  return text != nullptr ? text : "unknown libarchive error";
}

// A symlink's target, taken in the directory of the entry `name`, must stay beneath the root.
bool linkStaysBeneath(std::string_view name, std::string_view target) {
  if (target.empty() || target.front() == '/') return false;
  fs::path joined = (fs::path(name).parent_path() / fs::path(target)).lexically_normal();
  return staysBeneath(joined.string());
}

// Checks an entry and points it below `directory`. Errors name the entry.
api::Status placeEntry(archive_entry* entry, const fs::path& directory) {
  const char* raw = archive_entry_pathname(entry);
  const std::string name = raw != nullptr ? raw : "";
  if (!staysBeneath(name)) {
    return api::invalidArgument("archive entry '{}' would land outside the sandbox", name);
  }
  const mode_t type = archive_entry_filetype(entry);
  if (type == AE_IFCHR || type == AE_IFBLK) {
    return api::invalidArgument("archive entry '{}' is a device node", name);
  }
  if (const char* hardlink = archive_entry_hardlink(entry); hardlink != nullptr) {
    if (!staysBeneath(hardlink)) {
      return api::invalidArgument("archive entry '{}' is a hard link to '{}' outside the sandbox",
                                  name, hardlink);
    }
    archive_entry_set_hardlink(entry, (directory / hardlink).lexically_normal().c_str());
  }
  if (type == AE_IFLNK) {
    const char* target = archive_entry_symlink(entry);
    if (target == nullptr || !linkStaysBeneath(name, target)) {
      return api::invalidArgument("archive entry '{}' is a symlink to '{}' outside the sandbox",
                                  name, target != nullptr ? target : "");
    }
  }
  archive_entry_set_pathname(entry, (directory / name).lexically_normal().c_str());
  return api::Status::ok();
}

api::Status copyData(archive* in, archive* out, const std::string& name) {
  const void* block = nullptr;
  size_t size = 0;
  la_int64_t offset = 0;
  for (;;) {
    int r = archive_read_data_block(in, &block, &size, &offset);
    if (r == ARCHIVE_EOF) return api::Status::ok();
    if (r < ARCHIVE_WARN) return api::internalError("reading '{}': {}", name, errorOf(in));
    if (archive_write_data_block(out, block, size, offset) < ARCHIVE_WARN) {
      return api::internalError("writing '{}': {}", name, errorOf(out));
    }
  }
}

api::Result<uint64_t> extractEntries(const fs::path& path, const fs::path& directory) {
  Reader in(archive_read_new());
  archive_read_support_filter_all(in.get());
  archive_read_support_format_all(in.get());
  if (archive_read_open_filename(in.get(), path.c_str(), 64 * 1024) != ARCHIVE_OK) {
    return api::internalError("cannot open the archive: {}", errorOf(in.get()));
  }
  Writer out(archive_write_disk_new());
  // No ARCHIVE_EXTRACT_PERM or OWNER: set-id bits and foreign owners are not restored.
  archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                                ARCHIVE_EXTRACT_SECURE_SYMLINKS);
  uint64_t entries = 0;
  archive_entry* entry = nullptr;
  int r = ARCHIVE_OK;
  // ARCHIVE_EOF (1) sorts above ARCHIVE_OK: the loop takes OK and WARN only.
  while ((r = archive_read_next_header(in.get(), &entry)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    const std::string name = archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "";
    if (auto placed = placeEntry(entry, directory); !placed) return placed;
    if (archive_write_header(out.get(), entry) < ARCHIVE_WARN) {
      return api::invalidArgument("archive entry '{}' refused: {}", name, errorOf(out.get()));
    }
    if (archive_entry_size_is_set(entry) == 0 || archive_entry_size(entry) > 0) {
      if (auto copied = copyData(in.get(), out.get(), name); !copied) return copied;
    }
    if (archive_write_finish_entry(out.get()) < ARCHIVE_WARN) {
      return api::internalError("writing '{}': {}", name, errorOf(out.get()));
    }
    ++entries;
  }
  if (r != ARCHIVE_EOF) return api::internalError("corrupt archive: {}", errorOf(in.get()));
  if (archive_write_close(out.get()) != ARCHIVE_OK) {
    return api::internalError("finishing the extraction: {}", errorOf(out.get()));
  }
  return entries;
}

// A single gzipped file: its contents go beside it, named without ".gz".
api::Result<uint64_t> gunzip(const fs::path& path) {
  Reader in(archive_read_new());
  archive_read_support_filter_gzip(in.get());
  archive_read_support_format_raw(in.get());
  if (archive_read_open_filename(in.get(), path.c_str(), 64 * 1024) != ARCHIVE_OK) {
    return api::internalError("cannot open the file: {}", errorOf(in.get()));
  }
  archive_entry* entry = nullptr;
  if (archive_read_next_header(in.get(), &entry) != ARCHIVE_OK ||
      archive_filter_code(in.get(), 0) != ARCHIVE_FILTER_GZIP) {
    return api::internalError("not gzip data: {}", errorOf(in.get()));
  }
  const fs::path target = path.parent_path() / path.stem();
  // Replaced, never truncated in place: it may be a hard link to a cached file.
  ::unlink(target.c_str());
  int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    return api::internalError("cannot create '{}': {}", target.filename().string(),
                              std::strerror(errno));
  }
  std::array<char, 64 * 1024> buffer{};
  api::Status status;
  for (;;) {
    la_ssize_t n = archive_read_data(in.get(), buffer.data(), buffer.size());
    if (n == 0) break;
    if (n < 0) {
      status = api::internalError("corrupt gzip data: {}", errorOf(in.get()));
      break;
    }
    for (la_ssize_t done = 0; done < n && status;) {
      ssize_t w = ::write(fd, buffer.data() + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) status = api::internalError("writing: {}", std::strerror(errno));
      if (w > 0) done += w;
    }
    if (!status) break;
  }
  ::close(fd);
  if (!status) return status;
  return uint64_t{1};
}

}  // namespace

ArchiveKind archiveKind(std::string_view name) {
  if (auto slash = name.rfind('/'); slash != std::string_view::npos) name = name.substr(slash + 1);
  for (std::string_view suffix :
       {".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip"}) {
    if (endsWith(name, suffix)) return ArchiveKind::kArchive;
  }
  if (endsWith(name, ".gz") && name.size() > 3) return ArchiveKind::kGzip;
  return ArchiveKind::kNone;
}

bool staysBeneath(std::string_view name) {
  if (name.empty() || name.front() == '/') return false;
  if (name.find('\0') != std::string_view::npos) return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    if (name.substr(start, end - start) == "..") return false;
    start = end + 1;
  }
  return true;
}

api::Result<uint64_t> extractArchive(const fs::path& archive, const fs::path& directory,
                                     ArchiveKind kind) {
  switch (kind) {
    case ArchiveKind::kArchive:
      return extractEntries(archive, directory);
    case ArchiveKind::kGzip:
      return gunzip(archive);
    case ArchiveKind::kNone:
      break;
  }
  return uint64_t{0};
}

}  // namespace tessera::kernel::agent
