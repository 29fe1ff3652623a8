#include "kernel/modules/module_manager.h"

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>

namespace tessera::kernel::modules {

namespace dll = boost::dll;

namespace {

// Loaded libraries live for the rest of the process (never dlclose): held here, never freed.
std::vector<dll::shared_library>& openLibraries() {
  static auto* libraries = new std::vector<dll::shared_library>();
  return *libraries;
}

std::map<std::string, std::string> fingerprintFields(std::string_view fingerprint) {
  std::map<std::string, std::string> fields;
  size_t start = 0;
  while (start <= fingerprint.size()) {
    size_t end = fingerprint.find(';', start);
    if (end == std::string_view::npos) end = fingerprint.size();
    std::string_view field = fingerprint.substr(start, end - start);
    size_t eq = field.find('=');
    if (!field.empty()) {
      if (eq == std::string_view::npos) {
        fields[std::string(field)] = "";
      } else {
        fields[std::string(field.substr(0, eq))] = std::string(field.substr(eq + 1));
      }
    }
    start = end + 1;
  }
  return fields;
}

// Boost.DLL wraps dlerror() in a long message ("... (dlerror system message: <words>): ...");
// keep the loader's own words.
std::string loaderMessage(const std::exception& e) {
  std::string_view what = e.what();
  constexpr std::string_view kMarker = "dlerror system message: ";
  auto start = what.find(kMarker);
  if (start == std::string_view::npos) return std::string(what);
  start += kMarker.size();
  auto end = what.rfind("):");
  if (end == std::string_view::npos || end < start) end = what.size();
  return std::string(what.substr(start, end - start));
}

}  // namespace

std::string_view kernelFingerprint() { return TESSERA_BUILD_FINGERPRINT; }

std::string describeFingerprintMismatch(std::string_view module, std::string_view kernel) {
  if (module == kernel) return "";
  auto ours = fingerprintFields(kernel);
  auto theirs = fingerprintFields(module);
  std::string out;
  auto add = [&](const std::string& part) {
    if (!out.empty()) out += ", ";
    out += part;
  };
  for (const auto& [key, value] : ours) {
    auto it = theirs.find(key);
    if (it == theirs.end()) {
      add(fmt::format("{} is missing in the module, {} here", key, value));
    } else if (it->second != value) {
      add(fmt::format("{} is {} in the module, {} here", key, it->second, value));
    }
  }
  for (const auto& [key, value] : theirs) {
    if (!ours.count(key)) add(fmt::format("{} is {} in the module, unknown here", key, value));
  }
  if (out.empty()) out = fmt::format("'{}' in the module, '{}' here", module, kernel);
  return out;
}

api::Status ModuleManager::load(const std::vector<ManifestEntry>& entries) {
  std::vector<LoadedModule> loaded;
  for (const auto& entry : entries) {
    const std::string& file = entry.library;
    dll::shared_library library;
    try {
      library.load(file, dll::load_mode::rtld_now | dll::load_mode::rtld_local);
    } catch (const std::exception& e) {
      return api::invalidArgument("module library '{}' (module '{}'): cannot load: {}", file,
                                  entry.module, loaderMessage(e));
    }
    if (!library.has(api::kDescriptorSymbol)) {
      return api::invalidArgument(
          "module library '{}' (module '{}'): no '{}' symbol: not a Tessera module library", file,
          entry.module, api::kDescriptorSymbol);
    }
    const auto* descriptor = library.get<const api::ModuleDescriptor*>(api::kDescriptorSymbol);
    if (descriptor == nullptr) {
      return api::invalidArgument("module library '{}' (module '{}'): '{}' is null", file,
                                  entry.module, api::kDescriptorSymbol);
    }
    // Only the first field is read until the version matches: the rest may be laid out
    // differently in another API version.
    if (descriptor->api_version != api::kApiVersion) {
      return api::invalidArgument(
          "module library '{}' (module '{}'): built for module API version {}, this tessera "
          "loads version {}: rebuild the module against this tessera's SDK",
          file, entry.module, descriptor->api_version, api::kApiVersion);
    }
    std::string_view fingerprint = descriptor->fingerprint ? descriptor->fingerprint : "";
    if (fingerprint != kernelFingerprint()) {
      return api::invalidArgument(
          "module library '{}' (module '{}'): built differently from this tessera: {}: rebuild "
          "the module against this tessera's SDK with the same compiler, C++ standard, Boost and "
          "protobuf ('tessera modules --check {}' shows each field)",
          file, entry.module, describeFingerprintMismatch(fingerprint, kernelFingerprint()), file);
    }
    std::string name = descriptor->name ? descriptor->name : "";
    if (name != entry.module) {
      return api::invalidArgument("module library '{}' exports module '{}', not '{}'", file, name,
                                  entry.module);
    }
    std::string kind = descriptor->kind ? descriptor->kind : "";
    if (!api::isKnownKind(kind)) {
      return api::invalidArgument("module library '{}' (module '{}'): unknown kind '{}'", file,
                                  name, kind);
    }
    if (descriptor->create == nullptr) {
      return api::invalidArgument("module library '{}' (module '{}'): no factory", file, name);
    }
    auto duplicate = [&](const LoadedModule& m) { return m.name == name; };
    const LoadedModule* earlier = find(name);
    if (earlier == nullptr) {
      auto it = std::find_if(loaded.begin(), loaded.end(), duplicate);
      if (it != loaded.end()) earlier = &*it;
    }
    if (earlier != nullptr) {
      return api::invalidArgument(
          "module library '{}' (module '{}'): duplicate module name, "
          "already loaded from '{}'",
          file, name, earlier->library);
    }
    for (const auto& alias : entry.aliases) {
      auto clash = [&](const LoadedModule& m) {
        return m.kind == kind && (m.name == alias || std::find(m.aliases.begin(), m.aliases.end(),
                                                               alias) != m.aliases.end());
      };
      auto inLoaded = std::find_if(loaded.begin(), loaded.end(), clash);
      auto inEarlier = std::find_if(modules_.begin(), modules_.end(), clash);
      const LoadedModule* other = inLoaded != loaded.end()      ? &*inLoaded
                                  : inEarlier != modules_.end() ? &*inEarlier
                                                                : nullptr;
      if (other != nullptr) {
        return api::invalidArgument(
            "module library '{}' (module '{}'): alias '{}' already names {} module '{}'", file,
            name, alias, kind, other->name);
      }
    }
    loaded.push_back(
        LoadedModule{name, kind, file, descriptor->description ? descriptor->description : "",
                     descriptor->author ? descriptor->author : "", descriptor->api_version,
                     entry.parameters, entry.origin, descriptor, entry.aliases});
    openLibraries().push_back(std::move(library));
  }
  modules_.insert(modules_.end(), loaded.begin(), loaded.end());
  return api::Status::ok();
}

const LoadedModule* ModuleManager::find(std::string_view name) const {
  for (const auto& module : modules_) {
    if (module.name == name) return &module;
  }
  return nullptr;
}

const LoadedModule* ModuleManager::findOfKind(std::string_view kind,
                                              std::string_view nameOrAlias) const {
  for (const auto& module : modules_) {
    if (module.kind == kind && module.name == nameOrAlias) return &module;
  }
  for (const auto& module : modules_) {
    if (module.kind != kind) continue;
    for (const auto& alias : module.aliases) {
      if (alias == nameOrAlias) return &module;
    }
  }
  return nullptr;
}

api::Result<std::unique_ptr<api::Module>> ModuleManager::create(
    std::string_view name, std::string_view kind, api::Context& context,
    const std::vector<std::pair<std::string, std::string>>& overrides) const {
  const LoadedModule* module = find(name);
  if (module == nullptr) return api::notFound("no module '{}' is loaded", name);
  if (module->kind != kind) {
    return api::invalidArgument("module '{}' is of kind '{}', not '{}'", name, module->kind, kind);
  }
  try {
    api::Parameters parameters = module->parameters;
    if (!overrides.empty()) {
      auto entries = module->parameters.entries();
      entries.insert(entries.end(), overrides.begin(), overrides.end());
      parameters = api::Parameters(std::move(entries));
    }
    auto made = module->descriptor->create(parameters, context);
    if (!made) {
      return api::internalError("module library '{}' (module '{}'): factory failed: {}",
                                module->library, name, made.status().message());
    }
    if (*made == nullptr) {
      return api::internalError("module library '{}' (module '{}'): factory returned nothing",
                                module->library, name);
    }
    return std::move(made).value();
  } catch (const std::exception& e) {
    return api::internalError("module library '{}' (module '{}'): factory threw: {}",
                              module->library, name, e.what());
  } catch (...) {
    return api::internalError("module library '{}' (module '{}'): factory threw a non-exception",
                              module->library, name);
  }
}

}  // namespace tessera::kernel::modules
