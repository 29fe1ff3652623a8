#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/modules/manifest.h"
#include "tessera/api/allocator.h"
#include "tessera/api/anonymous.h"
#include "tessera/api/authenticator.h"
#include "tessera/api/authorizer.h"
#include "tessera/api/containerizer.h"
#include "tessera/api/framework.h"
#include "tessera/api/hook.h"
#include "tessera/api/isolator.h"
#include "tessera/api/module.h"

namespace tessera::kernel::modules {

/// The interface type behind each kind, for typed creation.
template <typename T>
struct KindOf;

#define TESSERA_KIND_OF(Interface, kind)            \
  template <>                                       \
  struct KindOf<api::Interface> {                   \
    static constexpr std::string_view kKind = kind; \
  }
TESSERA_KIND_OF(Allocator, api::kKindAllocator);
TESSERA_KIND_OF(Anonymous, api::kKindAnonymous);
TESSERA_KIND_OF(Hook, api::kKindHook);
TESSERA_KIND_OF(Authenticator, api::kKindAuthenticator);
TESSERA_KIND_OF(Authorizer, api::kKindAuthorizer);
TESSERA_KIND_OF(Containerizer, api::kKindContainerizer);
TESSERA_KIND_OF(Isolator, api::kKindIsolator);
TESSERA_KIND_OF(Framework, api::kKindFramework);
#undef TESSERA_KIND_OF

/// A module whose library loaded and whose descriptor passed every check.
struct LoadedModule {
  std::string name;
  std::string kind;
  std::string library;  ///< the path it was opened from
  std::string description;
  std::string author;
  uint32_t apiVersion = 0;
  api::Parameters parameters;
  std::string origin;  ///< the manifest that asked for it
  const api::ModuleDescriptor* descriptor = nullptr;
  std::vector<std::string> aliases;  ///< the manifest's short names for it
};

/// Opens module libraries and checks their descriptors; creates instances by name.
///
/// Libraries are never closed (as in Mesos and LLVM): instances and the code of their
/// callbacks may outlive any orderly unload, so a loaded library stays for the process's life.
/// Not thread-safe: the daemon loads at start, on one thread.
class ModuleManager {
 public:
  /// Loads every entry, all or nothing: on the first failure nothing is registered and the
  /// error names the library file, the module and the reason. Errors: InvalidArgument (cannot
  /// open, no descriptor, other API version, other build fingerprint, unknown kind, a name that
  /// differs from the manifest's, a duplicate name).
  api::Status load(const std::vector<ManifestEntry>& entries);

  /// Every loaded module, in load order.
  const std::vector<LoadedModule>& modules() const { return modules_; }

  /// The loaded module named `name`, or null.
  const LoadedModule* find(std::string_view name) const;

  /// The loaded module of `kind` that a flag value names: its full name, else one of the
  /// aliases its manifest entry declares. Null when none is.
  const LoadedModule* findOfKind(std::string_view kind, std::string_view nameOrAlias) const;

  /// Makes an instance of module `name`, which must be of `kind`. Calls the module's factory on
  /// the calling thread (the caller runs it on the instance's executor). Errors: NotFound (no
  /// such module), InvalidArgument (other kind), Internal (the factory failed or threw; the
  /// message names the module and its library). `overrides` are appended to the manifest's
  /// parameters, so they win (Parameters::get takes the last entry): a role passes the
  /// command-line flags that configure a kind this way (`--cgroups_root`, `--docker_socket`).
  api::Result<std::unique_ptr<api::Module>> create(
      std::string_view name, std::string_view kind, api::Context& context,
      const std::vector<std::pair<std::string, std::string>>& overrides = {}) const;

  /// create() for a kind's interface type.
  template <typename T>
  api::Result<std::unique_ptr<T>> create(std::string_view name, api::Context& context) const {
    auto module = create(name, KindOf<T>::kKind, context);
    if (!module) return module.status();
    // The kind was checked: the descriptor promises the instance implements T.
    return std::unique_ptr<T>(static_cast<T*>(module->release()));
  }

 private:
  std::vector<LoadedModule> modules_;
};

/// This kernel's build fingerprint (TESSERA_BUILD_FINGERPRINT expanded in the kernel).
std::string_view kernelFingerprint();

/// Explains how two fingerprints differ, field by field: "boost is 107500 in the module,
/// 107400 here". Empty when they are equal.
std::string describeFingerprintMismatch(std::string_view module, std::string_view kernel);

}  // namespace tessera::kernel::modules
