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

}  // namespace tessera::api
