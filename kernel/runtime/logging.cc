#include "kernel/runtime/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <mutex>
#include <vector>

namespace tessera::kernel::runtime {

namespace {

std::mutex gMutex;
std::vector<spdlog::sink_ptr> gSinks;
bool gConfigured = false;  // setupLogging() ran: an empty gSinks then means "log nowhere"
spdlog::level::level_enum gLevel = spdlog::level::info;

std::vector<spdlog::sink_ptr>& sinks() {
  if (!gConfigured && gSinks.empty()) {
    gSinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  }
  return gSinks;
}

}  // namespace

api::Status setupLogging(const LoggingOptions& options) {
  spdlog::level::level_enum level;
  if (options.level == "INFO") {
    level = spdlog::level::info;
  } else if (options.level == "WARNING") {
    level = spdlog::level::warn;
  } else if (options.level == "ERROR") {
    level = spdlog::level::err;
  } else if (options.level == "DEBUG") {
    level = spdlog::level::debug;
  } else {
    return api::invalidArgument("unknown logging level '{}' (INFO, WARNING, ERROR or DEBUG)",
                                options.level);
  }
  std::vector<spdlog::sink_ptr> next;
  if (!options.quiet) next.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (!options.logDir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options.logDir, ec);
    if (ec) return api::unavailable("cannot create log dir '{}': {}", options.logDir, ec.message());
    auto path = std::filesystem::path(options.logDir) / ("tessera-" + options.role + ".log");
    try {
      next.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(path.string()));
    } catch (const spdlog::spdlog_ex& e) {
      return api::unavailable("cannot open log file '{}': {}", path.string(), e.what());
    }
  }
  std::lock_guard lock(gMutex);
  gSinks = std::move(next);
  gConfigured = true;
  gLevel = level;
  // Re-point loggers made before this call.
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) {
    l->sinks() = gSinks;
    l->set_level(gLevel);
  });
  return api::Status::ok();
}

std::shared_ptr<spdlog::logger> logger(std::string_view name) {
  std::lock_guard lock(gMutex);
  std::string key(name);
  if (auto existing = spdlog::get(key)) return existing;
  auto& current = sinks();
  auto made = std::make_shared<spdlog::logger>(key, current.begin(), current.end());
  made->set_level(gLevel);
  made->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%L%$ %t %n] %v", spdlog::pattern_time_type::utc);
  made->flush_on(spdlog::level::warn);
  spdlog::register_logger(made);
  return made;
}

void SpdLogger::log(Level level, std::string_view message) {
  switch (level) {
    case Level::kDebug:
      logger_->debug("{}", message);
      break;
    case Level::kInfo:
      logger_->info("{}", message);
      break;
    case Level::kWarning:
      logger_->warn("{}", message);
      break;
    case Level::kError:
      logger_->error("{}", message);
      break;
  }
}

}  // namespace tessera::kernel::runtime
