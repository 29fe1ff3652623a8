#pragma once

#include <optional>
#include <string_view>

#include "tessera/api/status.h"

namespace tessera::modules::system_metrics {

/// The host figures Mesos reports under `system/`.
struct SystemStats {
  double cpusTotal = 0;
  double load1 = 0, load5 = 0, load15 = 0;
  double memTotalBytes = 0, memFreeBytes = 0;
};

/// Parses /proc/loadavg's text ("0.52 0.58 0.59 1/467 12345").
api::Result<SystemStats> parseLoadavg(std::string_view text, SystemStats into = {});

/// Parses /proc/meminfo's text: MemTotal and MemAvailable (MemFree on kernels without it),
/// in kB, into bytes.
api::Result<SystemStats> parseMeminfo(std::string_view text, SystemStats into = {});

/// Reads the live figures from /proc and the CPU count. Errors: Unavailable if /proc cannot
/// be read, InvalidArgument if it cannot be parsed.
api::Result<SystemStats> readSystemStats();

}  // namespace tessera::modules::system_metrics
