#pragma once

/// The fetcher's archive extraction, on libarchive: what counts as an archive (by its name, as
/// Mesos's fetcher decides), and unpacking one into a sandbox without letting any entry land
/// outside it.
///
/// Threading: plain blocking functions, called on the fetcher's threads; no shared state.

#include <cstdint>
#include <filesystem>
#include <string_view>

#include "tessera/api/status.h"

namespace tessera::kernel::agent {

/// How a fetched file is unpacked, judged by its name.
enum class ArchiveKind {
  kNone,     ///< not an archive: left as it is
  kArchive,  ///< .tar, .tar.gz/.tgz, .tar.bz2/.tbz2, .tar.xz/.txz, .zip: its entries
  kGzip,     ///< a single gzipped file (.gz, not .tar.gz): unpacked beside it without ".gz"
};

/// The kind of `name` (a file name; its directory is ignored).
ArchiveKind archiveKind(std::string_view name);

/// Whether `name` is a relative path that stays below the directory it is taken in: not empty,
/// not absolute, no ".." component (a leading "./" is fine).
bool staysBeneath(std::string_view name);

/// Unpacks `archive` (of `kind`, not kNone) into `directory`, which must be absolute and
/// free of symlinks (std::filesystem::canonical). Returns the number of entries written.
/// Errors: InvalidArgument naming the first entry that would escape `directory` (an absolute
/// name, a ".." component, a hard link to outside, a symlink whose target leads outside, or a
/// path through an existing symlink); Internal for a corrupt archive or a write that fails.
/// Entries before a refused one stay extracted (inside `directory`).
api::Result<uint64_t> extractArchive(const std::filesystem::path& archive,
                                     const std::filesystem::path& directory, ArchiveKind kind);

}  // namespace tessera::kernel::agent
