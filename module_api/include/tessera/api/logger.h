#pragma once

#include <fmt/format.h>

#include <string_view>

#include "tessera/api/visibility.h"

namespace tessera::api {

/// Where a module writes its log. The kernel hands each module instance one, already named
/// after the module, and routes it to the daemon's sinks (stderr, --log_dir).
/// Thread-safe: may be called from any thread.
class TESSERA_API Logger {
 public:
  enum class Level { kDebug, kInfo, kWarning, kError };

  virtual ~Logger() = default;

  /// Writes one line at `level`.
  virtual void log(Level level, std::string_view message) = 0;

  template <typename... Args>
  void debug(fmt::format_string<Args...> format, Args&&... args) {
    log(Level::kDebug, fmt::format(format, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void info(fmt::format_string<Args...> format, Args&&... args) {
    log(Level::kInfo, fmt::format(format, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void warning(fmt::format_string<Args...> format, Args&&... args) {
    log(Level::kWarning, fmt::format(format, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void error(fmt::format_string<Args...> format, Args&&... args) {
    log(Level::kError, fmt::format(format, std::forward<Args>(args)...));
  }
};

}  // namespace tessera::api
