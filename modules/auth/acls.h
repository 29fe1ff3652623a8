#pragma once

/// Mesos's ACLs (the local authorizer's `--acls` JSON) and how a question is matched against
/// them: the first ACL of the action whose subject and object match the request decides; when
/// none matches, `permissive` does.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/api/authorizer.h"
#include "tessera/api/status.h"

namespace tessera::modules::auth {

/// One side of an ACL: `{"values": [...]}`, `{"type": "ANY"}` or `{"type": "NONE"}`.
struct AclEntity {
  enum class Type { kSome, kAny, kNone };
  Type type = Type::kAny;
  std::vector<std::string> values;
};

/// One rule: who (`subject`, the principals) may act on what (`object`).
struct Acl {
  AclEntity subject;
  AclEntity object;
};

/// Every rule, by the action the kernel names in AuthorizationRequest::action.
struct Acls {
  bool permissive = true;
  std::map<std::string, std::vector<Acl>, std::less<>> rules;
};

/// Where one Mesos ACL list goes: its JSON key, the action the kernel asks about, and the JSON
/// key of its object.
struct AclAction {
  std::string_view key;        ///< "register_frameworks"
  std::string_view action;     ///< "REGISTER_FRAMEWORK"
  std::string_view objectKey;  ///< "roles"
  bool objectIsRole;           ///< the object is AuthorizationRequest::role (else ::value)
};

/// Every action the parser knows (Mesos's names).
const std::vector<AclAction>& aclActions();

/// Parses Mesos's ACL JSON. Errors: InvalidArgument naming the field at fault (an unknown key,
/// an entity with neither values nor a known type, a value that is not a string).
api::Result<Acls> parseAcls(std::string_view json);

/// The text `flag` names: `file:///path` or a path starting with '/' is read from there,
/// anything else is the JSON itself. Errors: NotFound/Unavailable for an unreadable file.
api::Result<std::string> readAclsFlag(std::string_view flag);

/// The path `flag` names, when it names a file.
std::optional<std::string> aclsPath(std::string_view flag);

/// True if `acls` allow `request` (Mesos's local authorizer semantics; an absent subject or
/// object is ANY).
bool isAllowed(const Acls& acls, const api::AuthorizationRequest& request);

}  // namespace tessera::modules::auth
