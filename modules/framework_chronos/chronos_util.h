#pragma once

// Small helpers shared by the Chronos framework's source files (not part of its interface).

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "modules/framework_chronos/schedule.h"
#include "tessera/api/status.h"

namespace tessera::modules::chronos::detail {

/// The store's folder of jobs; a job lives at `/jobs/<name>`.
inline constexpr std::string_view kJobsKey = "/jobs";

/// The store key of job `name`.
inline std::string jobKey(std::string_view name) {
  return std::string(kJobsKey) + "/" + std::string(name);
}

/// Milliseconds since the epoch as Chronos's UTC text (`...Z`).
inline std::string formatMillis(int64_t millis) {
  return formatDateTime(Clock::time_point(std::chrono::milliseconds(millis)));
}

/// Milliseconds since the epoch, floored to a second.
inline TimePoint toSeconds(int64_t millis) {
  return std::chrono::floor<std::chrono::seconds>(
      Clock::time_point(std::chrono::milliseconds(millis)));
}

/// The value of `result`, or `fallback` on an error.
inline int64_t orElse(const api::Result<int64_t>& result, int64_t fallback) {
  return result ? *result : fallback;
}

}  // namespace tessera::modules::chronos::detail
