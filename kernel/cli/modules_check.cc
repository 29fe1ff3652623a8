#include "kernel/cli/modules_check.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "kernel/modules/module_manager.h"
#include "tessera/api/module.h"

namespace tessera::kernel::cli {

namespace {

// "a=1;b=2" as (key, value) pairs, in order.
std::vector<std::pair<std::string, std::string>> fields(std::string_view fingerprint) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!fingerprint.empty()) {
    auto end = fingerprint.find(';');
    std::string_view field = fingerprint.substr(0, end);
    if (!field.empty()) {
      auto eq = field.find('=');
      out.emplace_back(std::string(field.substr(0, eq)),
                       eq == std::string_view::npos ? "" : std::string(field.substr(eq + 1)));
    }
    if (end == std::string_view::npos) break;
    fingerprint.remove_prefix(end + 1);
  }
  return out;
}

// 202002L -> "C++20": the standards CMake names.
std::string cxxStandard(std::string_view cplusplus) {
  static const std::map<std::string, std::string, std::less<>> kStandards = {
      {"201103L", "11"}, {"201402L", "14"}, {"201703L", "17"},
      {"202002L", "20"}, {"202100L", "23"}, {"202302L", "23"}};
  auto it = kStandards.find(cplusplus);
  return it == kStandards.end() ? "" : it->second;
}

// 107400 -> "1.74.0"
std::string boostVersion(std::string_view number) {
  int value = 0;
  for (char c : number) {
    if (c < '0' || c > '9') return std::string(number);
    value = value * 10 + (c - '0');
  }
  return fmt::format("{}.{}.{}", value / 100000, value / 100 % 1000, value % 100);
}

// A line of a two-column table, padded.
std::string row(std::string_view label, std::string_view value) {
  return fmt::format("{:<13}{}\n", label, value);
}

// Every loaded library stays for the process's life, as the loader keeps them.
void* openForever(const std::string& path, std::string& error) {
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* message = ::dlerror();
    error = message ? message : "dlopen failed";
  }
  return handle;
}

int refuse(std::ostream& out, std::string_view reason) {
  out << "verdict:     refused: " << reason << "\n";
  return 1;
}

}  // namespace

std::vector<FingerprintField> compareFingerprints(std::string_view module, std::string_view here) {
  std::vector<FingerprintField> result;
  const auto theirs = fields(module);
  auto find = [](const auto& list, const std::string& key) -> const std::string* {
    for (const auto& [k, v] : list) {
      if (k == key) return &v;
    }
    return nullptr;
  };
  const auto ours = fields(here);
  for (const auto& [key, value] : ours) {
    const std::string* other = find(theirs, key);
    result.push_back({key, other ? *other : "", value});
  }
  for (const auto& [key, value] : theirs) {
    if (find(ours, key) == nullptr) result.push_back({key, value, ""});
  }
  return result;
}

std::string rebuildHint(const FingerprintField& field) {
  if (field.here.empty()) {
    return fmt::format("this tessera does not know the field '{}': use its own SDK", field.key);
  }
  if (field.key == "compiler") {
    return fmt::format("rebuild with the compiler this tessera was built with ({})", field.here);
  }
  if (field.key == "cxx") {
    auto standard = cxxStandard(field.here);
    if (standard.empty()) return fmt::format("rebuild with __cplusplus {}", field.here);
    return fmt::format("rebuild with C++{} (CMAKE_CXX_STANDARD {})", standard, standard);
  }
  if (field.key == "cxx11abi") {
    return fmt::format("rebuild with _GLIBCXX_USE_CXX11_ABI={}", field.here);
  }
  if (field.key == "boost") {
    return fmt::format("rebuild against Boost {}", boostVersion(field.here));
  }
  if (field.key == "protobuf") {
    return fmt::format("rebuild against protobuf {} (GOOGLE_PROTOBUF_VERSION)", field.here);
  }
  return fmt::format("rebuild with {}={}", field.key, field.here);
}

int checkModuleLibrary(const std::string& path, std::ostream& out) {
  out << row("library:", path);
  std::string error;
  void* handle = openForever(path, error);
  if (handle == nullptr) return refuse(out, fmt::format("cannot load: {}", error));
  // BOOST_DLL_ALIAS exports a pointer to the descriptor under the symbol's name.
  const auto* alias =
      static_cast<const api::ModuleDescriptor* const*>(::dlsym(handle, api::kDescriptorSymbol));
  if (alias == nullptr) {
    return refuse(
        out, fmt::format("no '{}' symbol: not a Tessera module library", api::kDescriptorSymbol));
  }
  const api::ModuleDescriptor* descriptor = *alias;
  if (descriptor == nullptr)
    return refuse(out, fmt::format("'{}' is null", api::kDescriptorSymbol));
  // Only the first field is read until the version matches, as the loader does: another API
  // version may lay out the rest differently.
  out << row("api_version:",
             fmt::format("{} (this tessera takes {})", descriptor->api_version, api::kApiVersion));
  if (descriptor->api_version != api::kApiVersion) {
    return refuse(out, fmt::format("api_version {}, this tessera takes {}: rebuild the module "
                                   "against this tessera's SDK (find_package(Tessera) from its "
                                   "install prefix)",
                                   descriptor->api_version, api::kApiVersion));
  }
  auto text = [](const char* s) { return std::string(s ? s : ""); };
  const std::string kind = text(descriptor->kind);
  const std::string name = text(descriptor->name);
  out << row("kind:", kind) << row("name:", name)
      << row("description:", text(descriptor->description))
      << row("author:", text(descriptor->author));

  const std::string fingerprint = text(descriptor->fingerprint);
  const auto compared = compareFingerprints(fingerprint, modules::kernelFingerprint());
  out << "fingerprint:\n";
  size_t keyWidth = 5;
  size_t moduleWidth = 6;
  for (const auto& f : compared) {
    keyWidth = std::max(keyWidth, f.key.size());
    moduleWidth = std::max(moduleWidth, f.module.size());
  }
  out << fmt::format("  {:<{}}  {:<{}}  {}\n", "FIELD", keyWidth, "MODULE", moduleWidth,
                     "THIS TESSERA");
  std::vector<const FingerprintField*> differing;
  for (const auto& f : compared) {
    out << fmt::format("  {:<{}}  {:<{}}  {:<{}}  {}\n", f.key, keyWidth,
                       f.module.empty() ? "-" : f.module, moduleWidth,
                       f.here.empty() ? "-" : f.here, 12, f.same() ? "same" : "DIFFERS");
    if (!f.same()) differing.push_back(&f);
  }
  if (!differing.empty() || fingerprint != modules::kernelFingerprint()) {
    std::string reasons;
    for (const auto* f : differing) {
      if (!reasons.empty()) reasons += "; ";
      reasons += fmt::format("fingerprint field '{}' is {} in the module, {} here: {}", f->key,
                             f->module.empty() ? "missing" : f->module,
                             f->here.empty() ? "unknown" : f->here, rebuildHint(*f));
    }
    if (reasons.empty()) {
      reasons = fmt::format(
          "fingerprint '{}' differs from this tessera's '{}': rebuild the "
          "module against this tessera's SDK",
          fingerprint, modules::kernelFingerprint());
    }
    return refuse(out, reasons);
  }
  // The rest of the loader's checks, by the loader itself, so the verdict is the agent's.
  modules::ModuleManager manager;
  auto loaded = manager.load({modules::ManifestEntry{path, name, {}, "--check", {}}});
  if (!loaded) return refuse(out, loaded.message());
  out << row("verdict:", fmt::format("loads: module '{}' of kind '{}'", name, kind));
  return 0;
}

}  // namespace tessera::kernel::cli
