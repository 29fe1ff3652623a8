#pragma once

/// The module boundary: what a module library exports and what the kernel hands it.
///
/// A module library exports exactly one symbol, `tessera_module_descriptor` (a Boost.DLL
/// alias to a ModuleDescriptor), from its module.cc:
///
///   const tessera::api::ModuleDescriptor kDescriptor{
///       tessera::api::kApiVersion, TESSERA_BUILD_FINGERPRINT, tessera::api::kKindAnonymous,
///       "org_example_hello", "says hello", "Example Inc.", &createHello};
///   BOOST_DLL_ALIAS(kDescriptor, tessera_module_descriptor)

#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tessera/api/executor.h"
#include "tessera/api/fingerprint.h"
#include "tessera/api/http.h"
#include "tessera/api/logger.h"
#include "tessera/api/metrics.h"
#include "tessera/api/parameters.h"
#include "tessera/api/state_store.h"
#include "tessera/api/status.h"
#include "tessera/api/visibility.h"

namespace tessera::api {

/// Bumped on every change to a header under tessera/api/ that is not backward compatible
/// (tests/module_api/api_version_test.cc fails until the bump is recorded).
inline constexpr uint32_t kApiVersion = 8;

/// The symbol every module library exports.
inline constexpr const char* kDescriptorSymbol = "tessera_module_descriptor";

/// Module kinds, as the descriptor names them.
inline constexpr std::string_view kKindAllocator = "allocator";
inline constexpr std::string_view kKindIsolator = "isolator";
inline constexpr std::string_view kKindContainerizer = "containerizer";
inline constexpr std::string_view kKindAuthenticator = "authenticator";
inline constexpr std::string_view kKindAuthorizer = "authorizer";
inline constexpr std::string_view kKindFramework = "framework";
inline constexpr std::string_view kKindHook = "hook";
inline constexpr std::string_view kKindAnonymous = "anonymous";

/// True if `kind` is one of the kinds above.
TESSERA_API bool isKnownKind(std::string_view kind);

/// Base of every module instance. The kernel owns instances; it calls stop() once, on the
/// instance's executor, before destroying it there.
class TESSERA_API Module {
 public:
  virtual ~Module() = default;
  /// Cancels timers, joins the module's own threads and drops callbacks into the kernel;
  /// after it returns the kernel destroys the instance. Runs on the module's executor.
  virtual void stop() = 0;
  /// Re-reads the module's own configuration files now (the daemon got SIGHUP): credentials,
  /// ACLs. On an error the module keeps what it had and the kernel logs the message, which
  /// names the file and never quotes a secret. Runs on the module's executor. Default: nothing
  /// to reload.
  virtual Status reload() { return Status::ok(); }
};

/// What the kernel offers a module instance. Owned by the kernel; outlives the instance.
class TESSERA_API Context {
 public:
  virtual ~Context() = default;
  /// Named after the module; thread-safe.
  virtual Logger& logger() = 0;
  /// The daemon's metrics registry; gauges read on this module's executor.
  virtual Metrics& metrics() = 0;
  /// The module's own serial executor; factories run on it, and so does every callback the
  /// kernel makes into the instance.
  virtual Executor& executor() = 0;
  /// Routes on the daemon's HTTP port; handlers run on this module's executor.
  virtual HttpRouter& http() = 0;
  /// The role running the module: "master", "agent", "local", "framework".
  virtual std::string_view role() const = 0;
  /// The daemon's --work_dir (may be empty when the role keeps state in memory).
  virtual std::string_view workDir() const = 0;
  /// The daemon's state store: durable under --work_dir (crash-safe files), in memory without
  /// one, ZooKeeper when the role is configured with --zk. A module keeps its state under
  /// `/modules/<module name>/`. Outlives the module.
  virtual StateStore& state() = 0;
};

/// Makes an instance. Returns an error rather than throwing; the kernel reports either, naming
/// the module. The instance's dynamic type must derive from the interface of the
/// descriptor's kind (the kernel static_casts to it after checking the kind).
using CreateFn = Result<std::unique_ptr<Module>> (*)(const Parameters& parameters,
                                                     Context& context);

/// Wraps a module's factory so that nothing it throws crosses the boundary: an exception becomes
/// an Internal error carrying its message. A module's shim exports
/// `&guardedFactory<&MyModule::create>` as the descriptor's factory.
template <Result<std::unique_ptr<Module>> (*Factory)(const Parameters&, Context&)>
Result<std::unique_ptr<Module>> guardedFactory(const Parameters& parameters,
                                               Context& context) noexcept {
  try {
    return Factory(parameters, context);
  } catch (const std::exception& e) {
    return Status(StatusCode::kInternal, e.what());
  } catch (...) {
    return Status(StatusCode::kInternal, "the factory threw a non-exception");
  }
}

/// The one exported description of a module. A plain struct whose first field is the API
/// version, so any kernel can read that much of any module.
struct ModuleDescriptor {
  uint32_t api_version;     ///< kApiVersion when built
  const char* fingerprint;  ///< TESSERA_BUILD_FINGERPRINT when built
  const char* kind;         ///< one of the kKind* names
  const char* name;         ///< unique in a daemon: "org_tessera_allocator_drf"
  const char* description;
  const char* author;
  CreateFn create;
};

}  // namespace tessera::api
