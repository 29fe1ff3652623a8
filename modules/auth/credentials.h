#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "tessera/api/status.h"

namespace tessera::modules::auth {

/// principal -> secret.
using CredentialMap = std::map<std::string, std::string, std::less<>>;

/// Parses a credentials file's text: Mesos's JSON form
/// `{"credentials":[{"principal":"p","secret":"s"}, ...]}` or one `principal secret` per line
/// (blank lines and lines starting with '#' skipped). Errors: InvalidArgument naming the line or
/// the entry at fault, never quoting a secret.
[[nodiscard]] api::Result<CredentialMap> parseCredentials(std::string_view text);

/// `file:///path` or a plain path -> the path.
std::string credentialsPath(std::string_view flag);

/// The credentials of one file, re-read when its modification time, size or inode changes (checked
/// at most every `interval`, on the caller's thread). A file that does not parse on reload
/// keeps the credentials loaded before, and the reason is reported through `onError` (which
/// never sees a secret). Thread-safe.
class CredentialsFile {
 public:
  using Clock = std::chrono::steady_clock;

  /// Loads `path` now. Errors: NotFound / InvalidArgument when it cannot be read or parsed.
  [[nodiscard]] static api::Result<std::unique_ptr<CredentialsFile>> open(
      std::string path, std::chrono::milliseconds interval = std::chrono::milliseconds(250));

  /// A flag's value: the credentials inline (text starting with '{', Mesos's JSON; never
  /// reloaded) or `file:///path` / a path, as open(). Errors: as open().
  [[nodiscard]] static api::Result<std::unique_ptr<CredentialsFile>> fromFlag(
      std::string_view flag, std::chrono::milliseconds interval = std::chrono::milliseconds(250));

  /// Re-reads the file if it changed since the last look and `interval` passed. Returns the
  /// reason when a changed file was refused (the old credentials stay), else nullopt.
  std::optional<std::string> refresh(bool force = false);

  /// True when `principal` is known with exactly `secret` (compared in constant time).
  bool check(std::string_view principal, std::string_view secret);

  /// The secret of `principal`, if known.
  std::optional<std::string> secretOf(std::string_view principal);

  /// Successful reloads since open() (test hook).
  size_t reloads() const;

 private:
  CredentialsFile(std::string path, std::chrono::milliseconds interval);
  api::Status load(bool initial);

  const std::string path_;
  const std::chrono::milliseconds interval_;
  mutable std::mutex mutex_;
  std::shared_ptr<const CredentialMap> credentials_;
  Clock::time_point lastLook_{};
  int64_t mtimeNs_ = -1;
  int64_t size_ = -1;
  uint64_t inode_ = 0;  // a rename puts a new file in place: same size and tick, new inode
  size_t reloads_ = 0;
};

/// Compares two strings in time that depends only on their lengths.
bool constantTimeEquals(std::string_view a, std::string_view b);

}  // namespace tessera::modules::auth
