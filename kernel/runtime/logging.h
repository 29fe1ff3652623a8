#pragma once

#include <spdlog/logger.h>

#include <memory>
#include <string>
#include <string_view>

#include "tessera/api/logger.h"
#include "tessera/api/status.h"

namespace tessera::kernel::runtime {

struct LoggingOptions {
  std::string role = "tessera";  ///< names the log file: <log_dir>/tessera-<role>.log
  std::string level = "INFO";    ///< Mesos's --logging_level: INFO, WARNING or ERROR (DEBUG too)
  std::string logDir;            ///< empty: stderr only
  bool quiet = false;            ///< no stderr sink (Mesos's --quiet)
};

/// Sets the process's sinks: stderr and, with a log dir, a file in it. Errors: InvalidArgument
/// for an unknown level; Unavailable if the log dir cannot be created or written.
api::Status setupLogging(const LoggingOptions& options);

/// A logger named `name` on the process's sinks (the default logger before setupLogging).
std::shared_ptr<spdlog::logger> logger(std::string_view name);

/// The module-facing logger, on the process's sinks.
class SpdLogger final : public api::Logger {
 public:
  explicit SpdLogger(std::string_view name) : logger_(runtime::logger(name)) {}
  void log(Level level, std::string_view message) override;

 private:
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace tessera::kernel::runtime
