#include "kernel/cli/daemon.h"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <iomanip>
#include <set>
#include <sstream>

#include "kernel/runtime/logging.h"
#include "kernel/state/file_store.h"
#include "kernel/state/memory_store.h"

#ifndef TESSERA_VERSION
#define TESSERA_VERSION "0.0.0"
#endif

namespace tessera::kernel::cli {

Daemon::Daemon(Options options) : options_(std::move(options)) {}

Daemon::~Daemon() { stop(); }

api::Status Daemon::start() {
  auto log = runtime::logger(options_.role);
  const auto searchPath = moduleSearchPath(options_.common);
  auto entries = modules::readManifests(
      {options_.common.modules, options_.common.modulesDir, defaultManifestPath()}, searchPath);
  if (!entries) return entries.status();
  addBuiltins(*entries, searchPath);
  if (auto loaded = manager_.load(*entries); !loaded) return loaded;

  if (options_.common.workDir.empty()) {
    state_ = std::make_unique<state::MemoryStore>();
  } else {
    auto opened = state::FileStore::open(std::filesystem::path(options_.common.workDir) / "state");
    if (!opened) return opened.status().withContext("flag '--work_dir'");
    state_ = std::move(opened).value();
  }

  runtime_ = std::make_unique<runtime::Runtime>();
  metrics_ = std::make_unique<runtime::MetricsRegistry>(runtime_->io());
  router_ = std::make_shared<net::Router>();
  httpExecutor_ = runtime_->makeExecutor();
  runtime_->start();
  started_ = true;

  modules::HostServices services;
  services.runtime = runtime_.get();
  services.role = options_.role;
  services.workDir = options_.common.workDir;
  services.state = state_.get();
  services.metricsFor = [this](api::Executor& executor) -> std::unique_ptr<api::Metrics> {
    return std::make_unique<runtime::ScopedMetrics>(*metrics_, executor);
  };
  services.routerFor = [this](api::Executor& executor) -> std::unique_ptr<api::HttpRouter> {
    return std::make_unique<net::ExecutorRouter>(router_, executor);
  };
  host_ = std::make_unique<modules::ModuleHost>(manager_, std::move(services));
  if (auto made = host_->startAutomatic(); !made) {
    stop();
    return made;
  }
  for (const auto& module : manager_.modules()) {
    log->info("module '{}' ({}) loaded from '{}'", module.name, module.kind, module.library);
  }

  http::SharedEndpoints endpoints;
  endpoints.version = versionInfo();
  endpoints.flags = options_.flags;
  endpoints.metrics = metrics_.get();
  endpoints.authorizer = authorizerSlot_;
  if (auto registered = http::registerSharedEndpoints(*router_, *httpExecutor_, endpoints);
      !registered) {
    stop();
    return registered;
  }
  return api::Status::ok();
}

api::Status Daemon::serve() {
  if (!started_) return api::failedPrecondition("the daemon is not started");
  auto log = runtime::logger(options_.role);
  net::HttpServerOptions serverOptions;
  serverOptions.address = options_.common.ip;
  serverOptions.port = options_.common.port;
  serverOptions.metrics = metrics_.get();
  server_ = std::make_unique<net::HttpServer>(*runtime_, router_, serverOptions);
  if (auto listening = server_->start(); !listening) {
    stop();
    return listening.withContext("flag '--port'");
  }
  log->info("tessera {} listening on {}://{}:{}", options_.role,
            serverOptions.tls ? "https" : "http", options_.common.ip, server_->port());
  return api::Status::ok();
}

api::Result<uint16_t> Daemon::serveExtra(uint16_t port, std::shared_ptr<net::Router> router) {
  if (!started_) return api::failedPrecondition("the daemon is not started");
  net::HttpServerOptions serverOptions;
  serverOptions.address = options_.common.ip;
  serverOptions.port = port;
  // No metrics: the daemon's server reports the process's HTTP counters and gauge already.
  auto server = std::make_unique<net::HttpServer>(*runtime_, std::move(router), serverOptions);
  if (auto listening = server->start(); !listening) return listening;
  const uint16_t bound = server->port();
  extraServers_.push_back(std::move(server));
  runtime::logger(options_.role)
      ->info("also listening on {}://{}:{}", serverOptions.tls ? "https" : "http",
             options_.common.ip, bound);
  return bound;
}

void Daemon::addBuiltins(std::vector<modules::ManifestEntry>& entries,
                         const std::vector<std::filesystem::path>& searchPath) const {
  if (options_.builtinKinds.empty()) return;
  if (!options_.common.modules && !options_.common.modulesDir) return;  // the default is used
  // A manifest that does not load is left for the real load to report.
  modules::ModuleManager given;
  if (!given.load(entries)) return;
  std::set<std::string, std::less<>> missing(options_.builtinKinds.begin(),
                                             options_.builtinKinds.end());
  for (const auto& module : given.modules()) missing.erase(module.kind);
  if (missing.empty()) return;
  auto defaults =
      modules::readManifests({std::nullopt, std::nullopt, defaultManifestPath()}, searchPath);
  modules::ModuleManager builtin;
  if (!defaults || !builtin.load(*defaults)) return;
  for (const auto& module : builtin.modules()) {
    if (!missing.count(module.kind) || given.find(module.name) != nullptr) continue;
    for (const auto& entry : *defaults) {
      if (entry.module == module.name) entries.push_back(entry);
    }
  }
}

void Daemon::onStop(std::function<void()> fn) { onStop_.push_back(std::move(fn)); }

void Daemon::stop() {
  if (!started_) return;
  started_ = false;
  while (!onStop_.empty()) {
    auto fn = std::move(onStop_.back());
    onStop_.pop_back();
    fn();
  }
  if (server_) server_->stop();
  for (auto& server : extraServers_) server->stop();
  if (host_) host_->stopAll();
  runtime_->stop();
  server_.reset();
  extraServers_.clear();
  host_.reset();
  state_.reset();  // after the modules: they may write until stop()
}

uint16_t Daemon::port() const { return server_ ? server_->port() : 0; }

http::VersionInfo versionInfo() {
  http::VersionInfo info;
  info.version = TESSERA_VERSION;
  // The compiler's own date and time of this file's compilation: "Nov 22 2026" "01:42:41".
  info.buildDate = __DATE__ " " __TIME__;
  std::tm tm{};
  std::istringstream in(info.buildDate);
  in >> std::get_time(&tm, "%b %d %Y %H:%M:%S");
  if (!in.fail()) info.buildTime = static_cast<double>(timegm(&tm));
#ifdef TESSERA_BUILD_USER
  info.buildUser = TESSERA_BUILD_USER;
#endif
  return info;
}

void blockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int waitForStopSignal(const std::function<void()>& onHangup) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  while (true) {
    int signal = 0;
    sigwait(&set, &signal);
    // Without a handler SIGHUP stops the process, as its default action would.
    if (signal != SIGHUP || !onHangup) return signal;
    onHangup();
  }
}

}  // namespace tessera::kernel::cli
