#pragma once

/// The state store: a small hierarchical key/value store with versioned compare-and-set, the
/// shape ZooKeeper implements. The master keeps its registry in one; framework modules keep
/// their own state in one under their own path. The kernel picks the implementation (memory,
/// a file store under --work_dir, ZooKeeper) and hands it out; modules see only this header.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/api/executor.h"
#include "tessera/api/status.h"
#include "tessera/api/visibility.h"

namespace tessera::api {

/// Largest value a store accepts, in bytes: ZooKeeper's default znode limit (jute.maxbuffer).
inline constexpr size_t kMaxStateValueBytes = 1024 * 1024;

/// Longest key a store accepts, in bytes. A store may document a lower limit of its own (the
/// file store's is lower: each key names one file).
inline constexpr size_t kMaxStateKeyBytes = 1024;

/// What a key holds: its bytes and its version. Versions start at 1 when a key is created and
/// grow by one with every set; 0 means "absent" wherever a version is expected. A key that is
/// removed and created again starts over at 1 (as a znode's version does).
struct StateEntry {
  std::string value;     ///< raw bytes, at most kMaxStateValueBytes
  uint64_t version = 0;  ///< >= 1 for an entry that exists
};

/// A key/value store with compare-and-set on versions.
///
/// Keys are absolute '/'-separated paths, e.g. "/registry/agents/a-17": they start with '/',
/// do not end with one (except the root "/", which is valid only as a children() prefix), have
/// no empty segment and no "." or ".." segment, consist of printable ASCII (0x20-0x7e) and are
/// at most kMaxStateKeyBytes long. A bad key fails with InvalidArgument, naming it.
///
/// Ancestors are implicit: setting "/a/b/c" needs no "/a/b"; get("/a/b") still says absent
/// unless "/a/b" itself was set, and children("/a") lists "b". Removing a key leaves its
/// descendants alone. (A ZooKeeper store creates the missing parent znodes with a marker.)
///
/// Threading: every method is thread-safe, returns at once and never blocks on I/O; the store
/// does its work on its own thread or strand. `done` is called exactly once, also on failure,
/// and always through `replyOn.post(...)`, never inline, so a component passes its own strand and
/// handles the reply there without locks. `replyOn` must outlive the reply.
///
/// Lifetime: the owner destroys the store after its users are done; calls still pending then
/// are answered before the destructor returns (with their result, or with Unavailable).
///
/// Ordering: the operations of one store take effect in the order their calls were made (one
/// caller's set followed by its get sees the set), and each is atomic.
///
/// Errors common to all operations: InvalidArgument for a bad key; Unavailable when the store
/// cannot reach its backing storage (disk, ZooKeeper session) or is shutting down, Internal for
/// a failed write whose outcome is unknown; ResourceExhausted when too many calls are queued.
class TESSERA_API StateStore {
 public:
  template <typename T>
  using Callback = std::function<void(Result<T>)>;
  using StatusCallback = std::function<void(Status)>;

  virtual ~StateStore() = default;

  /// Reads `key`: its entry, or nullopt when absent.
  virtual void get(std::string_view key, Executor& replyOn,
                   Callback<std::optional<StateEntry>> done) = 0;

  /// Writes `value` at `key` if its current version is `expectedVersion` (0: the key must not
  /// exist) and replies with the new version (expectedVersion + 1). Durable (per the store's
  /// own promise: fsync'd for the file store, a quorum write for ZooKeeper) before the reply.
  /// Errors: Aborted when the version differs, naming the key and both versions, and nothing is
  /// written; ResourceExhausted when `value` is larger than kMaxStateValueBytes.
  virtual void set(std::string_view key, std::string value, uint64_t expectedVersion,
                   Executor& replyOn, Callback<uint64_t> done) = 0;

  /// Removes `key` if its current version is `expectedVersion` (which must be >= 1).
  /// Errors: NotFound when the key is absent; Aborted when the version differs, naming the key
  /// and both versions; InvalidArgument for expectedVersion 0.
  virtual void remove(std::string_view key, uint64_t expectedVersion, Executor& replyOn,
                      StatusCallback done) = 0;

  /// The names (last segment only) of the direct children of `prefix` — keys one level below
  /// it, set themselves or holding a descendant — sorted bytewise, without duplicates. Empty
  /// when there are none. `prefix` may be "/".
  virtual void children(std::string_view prefix, Executor& replyOn,
                        Callback<std::vector<std::string>> done) = 0;
};

}  // namespace tessera::api
