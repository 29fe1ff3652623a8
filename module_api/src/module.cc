#include "tessera/api/module.h"

#include <algorithm>
#include <array>

namespace tessera::api {

bool isKnownKind(std::string_view kind) {
  static constexpr std::array kKinds = {kKindAllocator,     kKindIsolator,   kKindContainerizer,
                                        kKindAuthenticator, kKindAuthorizer, kKindFramework,
                                        kKindHook,          kKindAnonymous};
  return std::find(kKinds.begin(), kKinds.end(), kind) != kKinds.end();
}

std::optional<std::string> Parameters::get(std::string_view key) const {
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (it->first == key) return it->second;
  }
  return std::nullopt;
}

std::string Parameters::getOr(std::string_view key, std::string_view fallback) const {
  auto value = get(key);
  return value ? *value : std::string(fallback);
}

}  // namespace tessera::api
