#pragma once

/// The agent's fetcher (Mesos's mesos-fetcher, in process): puts the URIs of a task's
/// CommandInfo into its sandbox before the task is launched.
///
/// Per URI: `http://` and `https://` (libcurl, redirects followed), `file://` and plain absolute
/// paths (copied); the local copy is named `output_file` (a relative path inside the sandbox)
/// or the URI's last path segment; `executable` makes it mode 0755; `extract` (default true)
/// unpacks .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz, .zip and single-file .gz into the sandbox
/// (fetcher_archive.h); `cache` fetches through the agent's cache (fetcher_cache.h) and
/// hard-links the cached file into the sandbox when that is safe (the task does not run as root,
/// the URI is not `executable`, the sandbox is on the cache's file system): the sandbox's file
/// is then read-only (0444) and owned by the agent, so a write through it fails instead of
/// changing the cache; the task may still remove or replace it. Otherwise the file is copied
/// (a reflink where the file system has them). With `extract` and `cache`, when the archive
/// could be linked, it is extracted once into the cache (FetcherCache::tree()) and every
/// sandbox gets that tree: directories of its own (the task's, writable), each regular file
/// hard-linked read-only, symlinks made again; otherwise (a root task, another file system, a
/// single-file .gz, an archive with a file not readable by all) it is extracted into the
/// sandbox. A name or an archive entry that would leave
/// the sandbox is refused. A transfer that receives no byte for `stallTimeout` is aborted. What
/// happened is appended to `fetcher.log` in the sandbox.
///
/// Threading: fetch() and FetchHandle::cancel() are thread-safe and never block; the work runs
/// on the fetcher's own threads (at most `maxParallel` tasks' fetches at once), and `done` is
/// called on one of them: the caller posts it to its own strand.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernel/agent/fetcher_cache.h"
#include "kernel/runtime/duration.h"
#include "kernel/runtime/runtime.h"
#include "tessera/api/status.h"
#include "tessera/v1/messages.pb.h"

namespace tessera::kernel::agent {

/// The fetcher's settings (the agent's --fetcher_* flags).
struct FetcherOptions {
  std::filesystem::path cacheDir;   ///< --fetcher_cache_dir
  uint64_t cacheSize = 2ULL << 30;  ///< --fetcher_cache_size, bytes (Mesos: 2GB)
  /// --fetcher_stall_timeout: a transfer with no byte for this long fails (whole seconds,
  /// at least one: libcurl's low-speed check counts seconds).
  runtime::Duration stallTimeout = std::chrono::seconds(60);
  size_t maxParallel = 4;  ///< --fetcher_max_parallel: tasks fetching at once
  /// --fetcher_link_cached: cache hits may be read-only hard links (the cached file, an
  /// archive's cached extracted tree); false copies and extracts every hit, as Mesos does.
  bool linkCached = true;
};

/// One task's fetch in progress: cancel() aborts it (a transfer stops within a second; a wait
/// for another task's cached download stops at once); `done` then reports Cancelled.
class FetchHandle {
 public:
  void cancel();
  bool cancelled() const { return cancelled_.load(); }

 private:
  friend class Fetcher;
  std::atomic<bool> cancelled_{false};
  std::weak_ptr<FetcherCache> cache_;
};

class Fetcher {
 public:
  /// Called once with the outcome. Errors: InvalidArgument (a bad URI or name, an archive
  /// entry leaving the sandbox), Unavailable (the transfer failed: HTTP status, connection,
  /// stall), Cancelled; each message is "Failed to fetch '<uri>': <cause>".
  using Done = std::function<void(api::Status)>;

  /// Prepares the cache directory (emptying it) and starts the threads. Errors: Internal
  /// naming the directory.
  static api::Result<std::unique_ptr<Fetcher>> create(FetcherOptions options);
  /// stop()s.
  ~Fetcher();
  Fetcher(const Fetcher&) = delete;
  Fetcher& operator=(const Fetcher&) = delete;

  /// Queues fetching `uris` into `sandbox` (an existing directory), in order; the first
  /// failure ends it. When the agent runs as root and `user` is set, what was fetched is
  /// then chowned to that user (Mesos runs its fetcher as the task's user). Returns the
  /// handle that cancels it.
  std::shared_ptr<FetchHandle> fetch(std::vector<v1::CommandInfo::URI> uris,
                                     std::filesystem::path sandbox, Done done,
                                     std::optional<std::string> user = std::nullopt);

  /// Cancels every fetch and joins the threads; queued fetches report Cancelled. Idempotent;
  /// not from a fetcher thread.
  void stop();

  const FetcherCache& cache() const { return *cache_; }

 private:
  explicit Fetcher(FetcherOptions options);
  // `mayLink`: cached files may be hard-linked rather than copied; the names (relative to the
  // sandbox) of those that were are appended to `linked`.
  api::Status run(const std::vector<v1::CommandInfo::URI>& uris,
                  const std::filesystem::path& sandbox, const FetchHandle& handle, bool mayLink,
                  std::vector<std::filesystem::path>& linked);
  // Gives the sandbox's contents (not the sandbox itself) to `user`, except the files in
  // `linked` (shared with the cache: they stay the agent's).
  static api::Status chownFetched(const std::filesystem::path& sandbox, const std::string& user,
                                  const std::vector<std::filesystem::path>& linked);

  FetcherOptions options_;
  std::shared_ptr<FetcherCache> cache_;
  std::atomic<bool> stopping_{false};
  runtime::BlockingPool pool_;
};

}  // namespace tessera::kernel::agent
