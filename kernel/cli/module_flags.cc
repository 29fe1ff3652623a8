#include "kernel/cli/module_flags.h"

namespace tessera::kernel::cli {

bool selects(std::string_view kind, std::string_view entry, std::string_view moduleName) {
  if (entry.empty()) return false;
  if (moduleName == entry) return true;
  const size_t suffix = kind.size() + 1 + entry.size();
  return moduleName.size() >= suffix &&
         moduleName.substr(moduleName.size() - suffix, kind.size()) == kind &&
         moduleName[moduleName.size() - entry.size() - 1] == '_' && moduleName.ends_with(entry);
}

std::vector<ModuleFlag> flagsFor(std::string_view kind, std::string_view moduleName,
                                 const std::vector<ModuleFlag>& flags) {
  std::vector<ModuleFlag> mine;
  for (const auto& flag : flags) {
    const size_t underscore = flag.first.find('_');
    if (underscore == std::string::npos) continue;
    if (selects(kind, std::string_view(flag.first).substr(0, underscore), moduleName)) {
      mine.push_back(flag);
    }
  }
  return mine;
}

}  // namespace tessera::kernel::cli
