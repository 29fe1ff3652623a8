#include "modules/auth/acls.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace tessera::modules::auth {

namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

api::Result<AclEntity> parseEntity(const Poco::Dynamic::Var& value, const std::string& where) {
  Object::Ptr object = value.type() == typeid(Object::Ptr) ? value.extract<Object::Ptr>() : nullptr;
  if (object.isNull()) return api::invalidArgument("'{}' is not an object", where);
  AclEntity entity;
  bool hasValues = object->has("values");
  if (hasValues) {
    Array::Ptr values = object->getArray("values");
    if (values.isNull()) return api::invalidArgument("'{}.values' is not an array", where);
    for (size_t i = 0; i < values->size(); ++i) {
      Poco::Dynamic::Var item = values->get(static_cast<unsigned>(i));
      if (!item.isString()) {
        return api::invalidArgument("'{}.values[{}]' is not a string", where, i);
      }
      entity.values.push_back(item.toString());
    }
    entity.type = AclEntity::Type::kSome;
  }
  if (object->has("type")) {
    std::string type = object->getValue<std::string>("type");
    if (type == "ANY") {
      entity.type = AclEntity::Type::kAny;
    } else if (type == "NONE") {
      entity.type = AclEntity::Type::kNone;
    } else if (type == "SOME") {
      entity.type = AclEntity::Type::kSome;
    } else {
      return api::invalidArgument("'{}.type' is '{}', not ANY, NONE or SOME", where, type);
    }
  } else if (!hasValues) {
    return api::invalidArgument("'{}' has neither 'values' nor 'type'", where);
  }
  for (const auto& key : object->getNames()) {
    if (key != "values" && key != "type") {
      return api::invalidArgument("'{}' has an unknown field '{}'", where, key);
    }
  }
  return entity;
}

// The request's side of a match: SOME with one value, or ANY when the request has none.
struct Asked {
  const std::optional<std::string>& value;
  bool some() const { return value.has_value(); }
  bool in(const AclEntity& acl) const {
    return std::find(acl.values.begin(), acl.values.end(), *value) != acl.values.end();
  }
};

// Mesos's matches(): does the ACL entity speak about what is asked?
bool matches(const Asked& asked, const AclEntity& acl) {
  if (!asked.some()) return acl.type != AclEntity::Type::kSome;
  switch (acl.type) {
    case AclEntity::Type::kSome:
      return asked.in(acl);
    case AclEntity::Type::kAny:
      return true;
    case AclEntity::Type::kNone:
      return true;  // a NONE entity matches (and then refuses) every specific value
  }
  return false;
}

// Mesos's allows(): given that it matches, does it allow it?
bool allows(const Asked& asked, const AclEntity& acl) {
  if (!asked.some()) return acl.type == AclEntity::Type::kAny;
  switch (acl.type) {
    case AclEntity::Type::kSome:
      return asked.in(acl);
    case AclEntity::Type::kAny:
      return true;
    case AclEntity::Type::kNone:
      return false;
  }
  return false;
}

}  // namespace

const std::vector<AclAction>& aclActions() {
  static const std::vector<AclAction> kActions{
      {"register_frameworks", "REGISTER_FRAMEWORK", "roles", true},
      {"run_tasks", "RUN_TASK", "users", false},
      {"teardown_frameworks", "TEARDOWN_FRAMEWORK", "framework_principals", false},
      {"reserve_resources", "RESERVE_RESOURCES", "roles", true},
      {"unreserve_resources", "UNRESERVE_RESOURCES", "reserver_principals", false},
      {"create_volumes", "CREATE_VOLUME", "roles", true},
      {"destroy_volumes", "DESTROY_VOLUME", "creator_principals", false},
      {"update_quotas", "UPDATE_QUOTA", "roles", true},
      // Mesos's older name for the same question; its rules come after update_quotas' ones.
      {"set_quotas", "UPDATE_QUOTA", "roles", true},
      {"get_quotas", "GET_QUOTA", "roles", true},
      {"update_weights", "UPDATE_WEIGHT", "roles", true},
      {"view_roles", "VIEW_ROLE", "roles", true},
      {"view_frameworks", "VIEW_FRAMEWORK", "users", false},
      {"view_tasks", "VIEW_TASK", "users", false},
      {"view_executors", "VIEW_EXECUTOR", "users", false},
      {"access_sandboxes", "ACCESS_SANDBOX", "users", false},
      {"get_endpoints", "GET_ENDPOINT_WITH_PATH", "paths", false},
      {"view_flags", "VIEW_FLAGS", "flags", false},
      {"register_agents", "REGISTER_AGENT", "agents", false},
      {"mark_agents_gone", "MARK_AGENT_GONE", "agents", false},
      {"drain_agents", "DRAIN_AGENT", "agents", false},
      {"deactivate_agents", "DEACTIVATE_AGENT", "agents", false},
      {"reactivate_agents", "REACTIVATE_AGENT", "agents", false},
      {"update_maintenance_schedules", "UPDATE_MAINTENANCE_SCHEDULE", "machines", false},
      {"get_maintenance_schedules", "GET_MAINTENANCE_SCHEDULE", "machines", false},
      {"start_maintenances", "START_MAINTENANCE", "machines", false},
      {"stop_maintenances", "STOP_MAINTENANCE", "machines", false},
      {"get_maintenance_statuses", "GET_MAINTENANCE_STATUS", "machines", false},
  };
  return kActions;
}

api::Result<Acls> parseAcls(std::string_view json) {
  Poco::Dynamic::Var root;
  try {
    Poco::JSON::Parser parser;
    root = parser.parse(std::string(json));
  } catch (const Poco::Exception& e) {
    return api::invalidArgument("the ACLs are not JSON: {}", e.displayText());
  }
  Object::Ptr object = root.type() == typeid(Object::Ptr) ? root.extract<Object::Ptr>() : nullptr;
  if (object.isNull()) return api::invalidArgument("the ACLs are not a JSON object");
  Acls acls;
  try {
    for (const auto& key : object->getNames()) {
      if (key == "permissive") {
        Poco::Dynamic::Var value = object->get(key);
        if (value.type() != typeid(bool)) {
          return api::invalidArgument("'permissive' is not true or false");
        }
        acls.permissive = value.extract<bool>();
        continue;
      }
      const auto& actions = aclActions();
      auto known = std::find_if(actions.begin(), actions.end(),
                                [&](const AclAction& action) { return action.key == key; });
      if (known == actions.end()) {
        return api::invalidArgument("unknown ACL '{}'", key);
      }
      Array::Ptr list = object->getArray(key);
      if (list.isNull()) return api::invalidArgument("'{}' is not an array", key);
    }
    // In the table's order, so that update_quotas' rules come before set_quotas' ones.
    for (const auto& action : aclActions()) {
      if (!object->has(std::string(action.key))) continue;
      Array::Ptr list = object->getArray(std::string(action.key));
      auto& rules = acls.rules[std::string(action.action)];
      for (size_t i = 0; i < list->size(); ++i) {
        std::string where = fmt::format("{}[{}]", action.key, i);
        Object::Ptr entry = list->getObject(static_cast<unsigned>(i));
        if (entry.isNull()) return api::invalidArgument("'{}' is not an object", where);
        Acl acl;
        for (const auto& field : entry->getNames()) {
          if (field == "principals") {
            auto subject = parseEntity(entry->get(field), where + ".principals");
            if (!subject) return subject.status();
            acl.subject = std::move(subject).value();
          } else if (field == action.objectKey) {
            auto objectEntity = parseEntity(entry->get(field), where + "." + field);
            if (!objectEntity) return objectEntity.status();
            acl.object = std::move(objectEntity).value();
          } else {
            return api::invalidArgument(
                "'{}' has an unknown field '{}' (expected 'principals' "
                "and '{}')",
                where, field, action.objectKey);
          }
        }
        rules.push_back(std::move(acl));
      }
    }
  } catch (const Poco::Exception& e) {
    return api::invalidArgument("the ACLs are malformed: {}", e.displayText());
  }
  return acls;
}

std::optional<std::string> aclsPath(std::string_view flag) {
  constexpr std::string_view kScheme = "file://";
  if (flag.substr(0, kScheme.size()) == kScheme) return std::string(flag.substr(kScheme.size()));
  if (!flag.empty() && flag.front() == '/') return std::string(flag);
  return std::nullopt;
}

api::Result<std::string> readAclsFlag(std::string_view flag) {
  auto path = aclsPath(flag);
  if (!path) return std::string(flag);
  std::ifstream in(*path);
  if (!in) return api::notFound("cannot read the ACLs file '{}'", *path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool isAllowed(const Acls& acls, const api::AuthorizationRequest& request) {
  auto found = acls.rules.find(request.action);
  if (found != acls.rules.end()) {
    const auto& actions = aclActions();
    auto action = std::find_if(actions.begin(), actions.end(), [&](const AclAction& known) {
      return known.action == request.action;
    });
    const std::optional<std::string>& objectValue =
        action != actions.end() && action->objectIsRole ? request.role : request.value;
    Asked subject{request.subject};
    Asked object{objectValue};
    for (const Acl& acl : found->second) {
      if (matches(subject, acl.subject) && matches(object, acl.object)) {
        return allows(subject, acl.subject) && allows(object, acl.object);
      }
    }
  }
  return acls.permissive;
}

}  // namespace tessera::modules::auth
