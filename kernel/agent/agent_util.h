#pragma once

// Small helpers and constants shared by the agent's .cc files (not part of the agent's API).

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "tessera/api/containerizer.h"
#include "tessera/api/executor.h"
#include "tessera/api/status.h"

namespace tessera::kernel::agent::detail {

using namespace std::chrono_literals;

/// Longest interval between two retries of an unacknowledged status update.
inline constexpr auto kMaxRetryInterval = std::chrono::minutes(10);
/// Completed executors kept for /state.
inline constexpr size_t kMaxCompletedExecutors = 1000;
/// How long start() waits for the state store and the containerizers.
inline constexpr auto kSyncTimeout = 60s;
/// How long GET /master/transport may take.
inline constexpr auto kDiscoveryTimeout = 5s;
/// A client that has not connected within this is dropped and the port discovered again (the
/// master may have come back on another port).
inline constexpr auto kConnectWatchdog = 15s;
/// The Mesos version the agent claims in its registration and /state.
inline constexpr const char* kAgentVersion = "1.11.0";

/// Cancels and drops a timer: destroying a handle alone leaves the callback scheduled.
void cancelTimer(std::unique_ptr<api::TimerHandle>& timer);

/// A state-store key segment for an id: anything but [A-Za-z0-9._-] is %XX-escaped, and so are
/// the segments "." and "..".
std::string keySegment(std::string_view id);

/// Whether an id may become a directory name in a sandbox path.
bool safePathComponent(std::string_view id);

/// `count` random bytes (not for secrets: a per-thread mt19937_64).
std::string randomBytes(size_t count);

/// The text form of a version-4 UUID made from 16 random bytes.
std::string uuidText(std::string bytes);

/// The checkpoint of a container, as JSON, and back. Errors: InvalidArgument when it does not
/// parse.
std::string containerJson(const api::ContainerCheckpoint& c);
api::Result<api::ContainerCheckpoint> parseContainerJson(const std::string& text);

}  // namespace tessera::kernel::agent::detail
