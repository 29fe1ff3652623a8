#pragma once

/// What the scheduler API remembers of the Basic credentials its authenticator already
/// accepted, so a framework's next calls with the same `Authorization` header skip the round
/// trip to the authenticator's executor and back (docs/design.md, "Remembered scheduler
/// authentications"). Only successes are remembered, only for the Basic scheme (whose header
/// names the principal and its secret by itself), each for at most `ttl` and only while the
/// modules' reload count is the one it was remembered under. Keys are SHA-256 digests of the
/// header value: the secrets themselves are not kept, and a lookup compares digests. At most
/// `capacity` entries. Not thread-safe: the master's strand only.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tessera::kernel::master {

class AuthenticationCache {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kDefaultTtl{1000};
  static constexpr size_t kDefaultCapacity = 64;

  explicit AuthenticationCache(std::chrono::milliseconds ttl = kDefaultTtl,
                               size_t capacity = kDefaultCapacity);

  /// True when `authorization` may be remembered: the Basic scheme (any case), with a value.
  static bool cacheable(std::string_view authorization);

  /// The principal `authorization` was authenticated as, when remembered under `generation`
  /// (the modules' reload count now) less than `ttl` before `now`; a stale entry is dropped.
  std::optional<std::string> find(std::string_view authorization, uint64_t generation,
                                  Clock::time_point now);

  /// Remembers that `authorization` authenticated as `principal` when the reload count was
  /// `generation` (read before the authenticator was asked). Not cacheable(): ignored. When
  /// full, drops the stale entries, else the one that expires first.
  void remember(std::string_view authorization, std::string principal, uint64_t generation,
                Clock::time_point now);

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string principal;
    uint64_t generation = 0;
    Clock::time_point expires;
  };

  const std::chrono::milliseconds ttl_;
  const size_t capacity_;
  std::unordered_map<std::string, Entry> entries_;  // SHA-256 of the header value -> entry
};

}  // namespace tessera::kernel::master
