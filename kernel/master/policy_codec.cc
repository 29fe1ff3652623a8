#include "kernel/master/policy_codec.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <fmt/format.h>

#include <cmath>
#include <set>
#include <sstream>
#include <typeinfo>

#include "kernel/http/json_body.h"
#include "kernel/http/json_writer.h"
#include "kernel/http/mesos_json.h"
#include "kernel/runtime/strings.h"
#include "tessera/api/json.h"

namespace tessera::kernel::master::policy {

namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

/// The longest role name /weights and /quota take, in bytes: a role names a directory in
/// Mesos, and 255 is a directory name's limit on Linux (NAME_MAX).
constexpr size_t kMaxRoleBytes = 255;

template <typename T>
std::string stringify(const T& value) {
  std::ostringstream out;
  value->stringify(out);
  return out.str();
}

/// Element `i` of `array` when it is an object; nullptr otherwise.
Object::Ptr objectAt(const Array& array, size_t i) {
  const auto index = static_cast<unsigned>(i);
  return array.isObject(index) ? array.getObject(index) : nullptr;
}

/// Parses a request body or registry value as JSON, depth-bounded and UTF-8-checked. Errors:
/// InvalidArgument saying what is wrong with it (`body is not valid JSON: unexpected byte 'o'`).
api::Result<Poco::Dynamic::Var> parseJson(const std::string& text, std::string_view what) {
  return http::parseJsonBody(text, what);
}

}  // namespace

/// A role named in a /weights or /quota request, `field` saying where (`role`,
/// `[2].role`). Mesos's rules (api::validateRole: not empty, no `.`/`..`/empty component, no
/// component starting with '-', no white space or `*,;:()[]{}`), not the default role `*`, and
/// for a request further: at most kMaxRoleBytes, valid UTF-8 without control characters.
api::Status checkPolicyRole(std::string_view role, std::string_view field, Source source) {
  if (source == Source::kRegistry) {
    if (api::Status valid = api::validateRole(role); !valid || role == "*") {
      return api::invalidArgument("'{}': role '{}' is not valid", field,
                                  runtime::printable(role, 80));
    }
    return api::Status::ok();
  }
  if (role.size() > kMaxRoleBytes) {
    return api::invalidArgument("'{}': a role of {} bytes is longer than the limit of {}", field,
                                role.size(), kMaxRoleBytes);
  }
  if (size_t bad = api::findInvalidUtf8(role); bad != std::string_view::npos) {
    return api::invalidArgument("'{}': role '{}' is not valid UTF-8 (byte {})", field,
                                runtime::printable(role, 80), bad);
  }
  for (size_t i = 0; i < role.size(); ++i) {
    auto byte = static_cast<unsigned char>(role[i]);
    if (byte < 0x20 || byte == 0x7f) {
      return api::invalidArgument("'{}': role '{}' contains a control character (byte {})", field,
                                  runtime::printable(role, 80), i);
    }
  }
  if (role == "*") {
    return api::invalidArgument("'{}': the default role '*' cannot be given a weight or quota",
                                field);
  }
  if (api::Status valid = api::validateRole(role); !valid) {
    return api::invalidArgument("'{}': {}", field, valid.message());
  }
  return api::Status::ok();
}

/// A weight must be a positive, finite number; `field` says where it was given.
api::Status checkWeight(double weight, std::string_view field) {
  if (!std::isfinite(weight) || weight <= 0) {
    return api::invalidArgument("'{}': weight {} is not a positive number", field, weight);
  }
  return api::Status::ok();
}

/// Mesos's weights JSON: `[{"role":"r","weight":2.0}, ...]`.
std::string encodeWeights(const std::map<std::string, double>& weights) {
  return http::writeJson([&](http::JsonWriter& w) {
    w.beginArray();
    for (const auto& [role, weight] : weights) {
      w.beginObject().field("role", role).field("weight", weight).endObject();
    }
    w.endArray();
  });
}

/// Decodes a weights array; every entry must be an object with a string `role` and a JSON
/// number `weight` (not a bool, not a string), and no role may appear twice. Errors name the
/// entry's field: `'[1].weight': expecting a number`.
api::Result<std::map<std::string, double>> decodeWeights(const std::string& text,
                                                         std::string_view what, Source source) {
  auto parsed = parseJson(text, what);
  if (!parsed) return parsed.status();
  if (parsed->type() != typeid(Array::Ptr)) {
    return api::invalidArgument("{} is not a JSON array of weights", what);
  }
  std::map<std::string, double> weights;
  auto array = parsed->extract<Array::Ptr>();
  for (size_t i = 0; i < array->size(); ++i) {
    std::string field = fmt::format("[{}].", i);
    Object::Ptr entry = objectAt(*array, i);
    if (!entry) return api::invalidArgument("'[{}]': expecting an object", i);
    if (!entry->has("role") || !entry->get("role").isString()) {
      return api::invalidArgument("'{}role': expecting a string", field);
    }
    if (!entry->has("weight")) return api::invalidArgument("'{}weight': expecting a number", field);
    // Poco counts a bool as numeric; a weight of `true` is a mistake, not 1.
    const Poco::Dynamic::Var& number = entry->get("weight");
    if (number.isEmpty() || number.type() == typeid(bool) || !number.isNumeric()) {
      return api::invalidArgument("'{}weight': expecting a number", field);
    }
    std::string role = entry->getValue<std::string>("role");
    double weight = number.convert<double>();
    if (api::Status valid = checkPolicyRole(role, field + "role", source); !valid) return valid;
    if (api::Status valid = checkWeight(weight, field + "weight"); !valid) return valid;
    if (!weights.emplace(role, weight).second) {
      return api::invalidArgument("'{}role': role '{}' is given more than one weight", field, role);
    }
  }
  return weights;
}

namespace {

/// A quota guarantee: scalar, unreserved, not empty, for a role other than "*".
api::Status checkQuota(const std::string& role, const api::Resources& guarantee) {
  if (guarantee.empty()) {
    return api::invalidArgument("'guarantee': the guarantee of role '{}' is empty", role);
  }
  for (const auto& entry : guarantee.entries()) {
    if (entry.type != api::ResourceType::kScalar) {
      return api::invalidArgument("'guarantee': quota resource '{}' is not a scalar", entry.name);
    }
    if (entry.isReserved()) {
      return api::invalidArgument("'guarantee': quota resource '{}' is reserved", entry.name);
    }
  }
  return api::Status::ok();
}

/// One quota request `{"role":"r","guarantee":[<v1 Resource>...]}` (`force` is ignored). A
/// resource name listed twice is refused rather than summed: a client that lists `cpus` twice
/// has made a mistake, and which of the two it meant is not ours to guess.
api::Result<std::pair<std::string, api::Resources>> decodeQuotaRequest(const Object::Ptr& object,
                                                                       Source source) {
  if (!object || !object->has("role") || !object->get("role").isString()) {
    return api::invalidArgument("'role': expecting a string");
  }
  Array::Ptr guarantee = object->has("guarantee") && object->isArray("guarantee")
                             ? object->getArray("guarantee")
                             : nullptr;
  if (!guarantee) return api::invalidArgument("'guarantee': expecting an array");
  std::string role = object->getValue<std::string>("role");
  if (api::Status valid = checkPolicyRole(role, "role", source); !valid) return valid;
  std::set<std::string> names;
  for (size_t i = 0; i < guarantee->size(); ++i) {
    Object::Ptr resource = objectAt(*guarantee, i);
    if (!resource) return api::invalidArgument("'guarantee[{}]': expecting an object", i);
    if (!resource->has("name") || !resource->get("name").isString()) {
      return api::invalidArgument("'guarantee[{}].name': expecting a string", i);
    }
    std::string name = resource->getValue<std::string>("name");
    if (!names.insert(name).second) {
      return api::invalidArgument("'guarantee[{}].name': resource '{}' is listed more than once", i,
                                  runtime::printable(name, 80));
    }
  }
  auto resources = api::Resources::parse(stringify(guarantee));
  if (!resources) return resources.status().withContext("'guarantee'");
  if (api::Status valid = checkQuota(role, *resources); !valid) return valid;
  return std::make_pair(role, std::move(resources).value());
}

}  // namespace

/// Mesos's QuotaStatus JSON: `{"infos":[{"role":"r","guarantee":[...]}]}`.
std::string encodeQuotas(const std::map<std::string, api::Resources>& quotas) {
  return http::writeJson([&](http::JsonWriter& w) {
    w.beginObject().key("infos").beginArray();
    for (const auto& [role, guarantee] : quotas) {
      w.beginObject().field("role", role).key("guarantee");
      http::writeResourcesArray(w, guarantee);
      w.endObject();
    }
    w.endArray().endObject();
  });
}

api::Result<std::map<std::string, api::Resources>> decodeQuotas(const std::string& text) {
  auto parsed = parseJson(text, "the registry's quota");
  if (!parsed) return parsed.status();
  Object::Ptr object =
      parsed->type() == typeid(Object::Ptr) ? parsed->extract<Object::Ptr>() : nullptr;
  Array::Ptr infos = object && object->isArray("infos") ? object->getArray("infos") : nullptr;
  if (!infos) return api::invalidArgument("expecting 'infos' in the registry's quota");
  std::map<std::string, api::Resources> quotas;
  for (size_t i = 0; i < infos->size(); ++i) {
    Object::Ptr info = infos->isObject(static_cast<unsigned>(i))
                           ? infos->getObject(static_cast<unsigned>(i))
                           : nullptr;
    auto quota = decodeQuotaRequest(info, Source::kRegistry);
    if (!quota) return quota.status().withContext("infos[{}]", i);
    quotas[quota->first] = quota->second;
  }
  return quotas;
}

api::Result<std::pair<std::string, api::Resources>> decodeQuotaBody(const std::string& text) {
  auto parsed = parseJson(text, "the body");
  if (!parsed) return parsed.status();
  if (parsed->type() != typeid(Object::Ptr)) {
    return api::invalidArgument("the body is not a JSON object");
  }
  return decodeQuotaRequest(parsed->extract<Object::Ptr>(), Source::kRequest);
}

}  // namespace tessera::kernel::master::policy
