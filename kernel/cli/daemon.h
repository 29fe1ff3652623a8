#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernel/cli/common.h"
#include "kernel/http/endpoints.h"
#include "kernel/modules/manifest.h"
#include "kernel/modules/module_host.h"
#include "kernel/modules/module_manager.h"
#include "kernel/net/http_server.h"
#include "kernel/runtime/metrics.h"
#include "kernel/runtime/runtime.h"
#include "tessera/api/state_store.h"

namespace tessera::kernel::cli {

/// What every daemon role is made of: the runtime, the metrics registry, the HTTP router and
/// server with the shared endpoints, and the loaded modules. A role starts one, adds its own
/// components and routes, and stops it on a signal.
class Daemon {
 public:
  struct Options {
    std::string role;  ///< "local", "master", "agent", ...
    CommonFlags common;
    /// The role's effective flags, redacted, for /flags.
    std::function<std::map<std::string, std::string>()> flags;
    /// Kinds the role cannot run without ("allocator", "containerizer"). When --modules or
    /// --modules_dir load no module of such a kind, that kind's modules come from the default
    /// manifest, as Mesos's built-in allocator and containerizer do.
    std::vector<std::string> builtinKinds;
  };

  explicit Daemon(Options options);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  /// Loads the modules, starts the runtime, creates the anonymous and hook modules and
  /// registers the shared endpoints. The role then adds its components and calls serve(), so
  /// the port opens only on a daemon that is complete. Errors: the first failure (module load
  /// errors name the file, the module and the reason); what was started is stopped again.
  api::Status start();

  /// Binds the HTTP port and starts serving. Errors: Unavailable naming '--port'; the daemon
  /// is then stopped.
  api::Status serve();

  /// Opens another HTTP port on --ip serving `router` alone, none of the shared endpoints (a
  /// framework module's own port in `tessera local`: Marathon's /metrics is Marathon's). Call
  /// after start(); the listener stops with the daemon's own. Returns the port bound (useful
  /// with 0). Errors: FailedPrecondition before start(); Unavailable when the port cannot be
  /// bound.
  api::Result<uint16_t> serveExtra(uint16_t port, std::shared_ptr<net::Router> router);

  /// Runs `fn` first when the daemon stops (the role's components, newest first), before the
  /// HTTP listener and the modules go.
  void onStop(std::function<void()> fn);

  /// Stops the role's components (onStop, newest first), the HTTP listener, then the modules
  /// (newest first), then the runtime. Idempotent.
  void stop();

  runtime::Runtime& runtime() { return *runtime_; }
  runtime::MetricsRegistry& metrics() { return *metrics_; }
  /// The state store: crash-safe files under `<work_dir>/state`, or memory without a work dir.
  api::StateStore& state() { return *state_; }
  net::Router& router() { return *router_; }
  modules::ModuleHost& modules() { return *host_; }
  const modules::ModuleManager& moduleManager() const { return manager_; }
  std::shared_ptr<net::Router> routerPtr() { return router_; }
  /// The role's effective flags, redacted (for the components' /state and /flags).
  std::function<std::map<std::string, std::string>()> flagValues() const { return options_.flags; }
  /// Where a role publishes the authorizer it created (--acls), for the shared `/flags`
  /// endpoint's VIEW_FLAGS question.
  http::AuthorizerSlot& authorizerSlot() { return *authorizerSlot_; }
  /// The HTTP port actually bound (useful with --port=0).
  uint16_t port() const;

 private:
  // Appends the default manifest's modules of the builtin kinds the given manifests lack.
  void addBuiltins(std::vector<modules::ManifestEntry>& entries,
                   const std::vector<std::filesystem::path>& searchPath) const;

  Options options_;
  std::unique_ptr<runtime::Runtime> runtime_;
  std::unique_ptr<runtime::MetricsRegistry> metrics_;
  std::unique_ptr<api::StateStore> state_;
  std::shared_ptr<net::Router> router_;
  std::unique_ptr<runtime::StrandExecutor> httpExecutor_;
  std::shared_ptr<http::AuthorizerSlot> authorizerSlot_ = std::make_shared<http::AuthorizerSlot>();
  std::unique_ptr<net::HttpServer> server_;
  std::vector<std::unique_ptr<net::HttpServer>> extraServers_;
  modules::ModuleManager manager_;
  std::unique_ptr<modules::ModuleHost> host_;
  std::vector<std::function<void()>> onStop_;
  bool started_ = false;
};

/// This build's /version values.
http::VersionInfo versionInfo();

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (call before any thread starts, so
/// every thread inherits the mask), and later waits for a stop signal: returns it. SIGHUP calls
/// `onHangup` (the daemons reload their modules' configuration: credentials, ACLs) and waits
/// on; without `onHangup` it stops the process as SIGINT does.
void blockStopSignals();
int waitForStopSignal(const std::function<void()>& onHangup = {});

}  // namespace tessera::kernel::cli
