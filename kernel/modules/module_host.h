#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernel/modules/module_manager.h"
#include "kernel/runtime/logging.h"
#include "kernel/runtime/runtime.h"

namespace tessera::kernel::modules {

/// What the role gives every module it hosts; the metrics and HTTP views are made per module so
/// that gauges and handlers run on the module's own executor.
struct HostServices {
  runtime::Runtime* runtime = nullptr;
  std::string role;
  std::string workDir;
  api::StateStore* state = nullptr;  ///< the daemon's store; outlives the host
  std::function<std::unique_ptr<api::Metrics>(api::Executor&)> metricsFor;
  std::function<std::unique_ptr<api::HttpRouter>(api::Executor&)> routerFor;
};

/// What one instance gets instead of the host's services (empty fields: the host's).
struct InstanceOptions {
  /// Appended to the manifest's parameters (see ModuleManager::create).
  std::vector<std::pair<std::string, std::string>> overrides;
  /// The instance's state store instead of HostServices::state; not owned, must outlive the
  /// instance (a framework host's store scoped to its module, or its ZooKeeper store).
  api::StateStore* state = nullptr;
  /// Makes the instance's router instead of HostServices::routerFor (routes on another port:
  /// `tessera local` serves Marathon on :8080, or a framework follower's forwarding router).
  std::function<std::unique_ptr<api::HttpRouter>(api::Executor&)> routerFor;
};

/// Owns module instances, each with its own Context and strand, and stops them in reverse
/// order of creation: stop() on the instance's strand, then destruction there, then the strand
/// is drained. Methods are called from the role's control thread, never from a strand.
class ModuleHost {
 public:
  ModuleHost(const ModuleManager& manager, HostServices services);
  ~ModuleHost();
  ModuleHost(const ModuleHost&) = delete;
  ModuleHost& operator=(const ModuleHost&) = delete;

  /// Creates every loaded anonymous and hook module (Mesos creates anonymous modules at start).
  /// Errors: the first factory failure, naming the module and its library.
  api::Status startAutomatic();

  /// Creates module `name` of kind `kind`; the host keeps ownership and returns a pointer valid
  /// until stopAll(). `overrides` are appended to the manifest's parameters (see
  /// ModuleManager::create). Errors: as ModuleManager::create.
  api::Result<api::Module*> create(
      std::string_view name, std::string_view kind,
      const std::vector<std::pair<std::string, std::string>>& overrides = {});

  /// As above, with the instance's own choices of store and router.
  api::Result<api::Module*> create(std::string_view name, std::string_view kind,
                                   InstanceOptions options);

  template <typename T>
  api::Result<T*> create(std::string_view name,
                         const std::vector<std::pair<std::string, std::string>>& overrides = {}) {
    auto module = create(name, KindOf<T>::kKind, overrides);
    if (!module) return module.status();
    return static_cast<T*>(*module);
  }

  template <typename T>
  api::Result<T*> create(std::string_view name, InstanceOptions options) {
    auto module = create(name, KindOf<T>::kKind, std::move(options));
    if (!module) return module.status();
    return static_cast<T*>(*module);
  }

  /// The executor of the instance `module` (one this host created); null once it is stopped.
  api::Executor* executorOf(const api::Module* module) const;

  /// Runs `hook` on the instance's executor right before its Module::stop() (hooks in the order
  /// added), and destroys it only after the instance: what the hook holds outlives the instance
  /// (a framework's scheduler driver). Errors: NotFound when `module` is not a live instance of
  /// this host.
  api::Status addStopHook(const api::Module* module, std::function<void()> hook);

  /// Asks every instance to re-read its configuration (Module::reload(), on its executor,
  /// oldest first: the daemon got SIGHUP). Returns one line per instance that refused, naming
  /// it; an instance that refuses keeps what it had.
  std::vector<std::string> reloadAll();

  /// How many reloadAll() calls completed (each counted after every instance answered). Any
  /// thread: what remembers a module's answers (the scheduler API's authentications) forgets
  /// them when this changes.
  uint64_t reloads() const { return reloads_.load(std::memory_order_acquire); }

  /// Stops and destroys every instance, newest first. Idempotent.
  void stopAll();

 private:
  struct Instance;

  const ModuleManager& manager_;
  HostServices services_;
  std::vector<std::unique_ptr<Instance>> instances_;
  std::atomic<uint64_t> reloads_{0};
};

}  // namespace tessera::kernel::modules
