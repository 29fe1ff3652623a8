#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "kernel/cli/common.h"
#include "kernel/http/endpoints.h"
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
  };

  explicit Daemon(Options options);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  /// Loads the modules, starts the runtime, creates the anonymous and hook modules, registers
  /// the shared endpoints and binds the HTTP port, in that order, so the port opens only on a
  /// daemon that is complete. Errors: the first failure (module load errors name the file, the
  /// module and the reason); what was started is stopped again.
  api::Status start();

  /// Stops the HTTP listener, then the modules (newest first), then the runtime. Idempotent.
  void stop();

  runtime::Runtime& runtime() { return *runtime_; }
  runtime::MetricsRegistry& metrics() { return *metrics_; }
  /// The state store: crash-safe files under `<work_dir>/state`, or memory without a work dir.
  api::StateStore& state() { return *state_; }
  net::Router& router() { return *router_; }
  modules::ModuleHost& modules() { return *host_; }
  /// The HTTP port actually bound (useful with --port=0).
  uint16_t port() const;

 private:
  Options options_;
  std::unique_ptr<runtime::Runtime> runtime_;
  std::unique_ptr<runtime::MetricsRegistry> metrics_;
  std::unique_ptr<api::StateStore> state_;
  std::shared_ptr<net::Router> router_;
  std::unique_ptr<runtime::StrandExecutor> httpExecutor_;
  std::unique_ptr<net::HttpServer> server_;
  modules::ModuleManager manager_;
  std::unique_ptr<modules::ModuleHost> host_;
  bool started_ = false;
};

/// This build's /version values.
http::VersionInfo versionInfo();

/// Blocks SIGINT and SIGTERM in the calling thread (call before any thread starts, so every
/// thread inherits the mask), and later waits for one of them: returns the signal.
void blockStopSignals();
int waitForStopSignal();

}  // namespace tessera::kernel::cli
