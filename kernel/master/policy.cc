// The master's role policy: weights (`--weights`, `GET`/`PUT /weights`) and quota (`GET`/`POST
// /quota`, `DELETE /quota/<role>`), as in Mesos 1.x. Both live in the registry (the state store,
// next to the agents) and are written there before a change is acknowledged; the allocator gets
// them at start and after every change.

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>

#include <cmath>
#include <future>
#include <optional>
#include <set>
#include <sstream>
#include <typeinfo>

#include "kernel/http/json_body.h"
#include "kernel/http/json_writer.h"
#include "kernel/http/mesos_json.h"
#include "kernel/master/master_core.h"
#include "kernel/master/master_util.h"
#include "kernel/runtime/strings.h"
#include "tessera/api/json.h"

namespace tessera::kernel::master {

using detail::log;

namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

const char* kRegistryWeights = "/master/registry/weights";
const char* kRegistryQuota = "/master/registry/quota";

/// The longest role name /weights and /quota take, in bytes: a role names a directory in
/// Mesos, and 255 is a directory name's limit on Linux (NAME_MAX).
constexpr size_t kMaxRoleBytes = 255;

template <typename T>
std::string stringify(const T& value) {
  std::ostringstream out;
  value->stringify(out);
  return out.str();
}

/// Where a weight or quota comes from: a request (or --weights) is held to every rule; what the
/// registry holds was accepted once and is read back as long as Mesos's own rules allow it, so
/// that a rule added later does not stop a master from starting.
enum class Source { kRequest, kRegistry };

/// A role named in a /weights or /quota request, `field` saying where (`role`,
/// `[2].role`). Mesos's rules (api::validateRole: not empty, no `.`/`..`/empty component, no
/// component starting with '-', no white space or `*,;:()[]{}`), not the default role `*`, and
/// for a request further: at most kMaxRoleBytes, valid UTF-8 without control characters.
api::Status checkPolicyRole(std::string_view role, std::string_view field,
                            Source source = Source::kRequest) {
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

/// What the registry would hold fits in one registry entry; else 413, since the request made it
/// too big: retrying it will never work.
std::optional<api::HttpResponse> checkRegistrySize(std::string_view what, size_t bytes) {
  if (bytes <= api::kMaxStateValueBytes) return std::nullopt;
  return api::HttpResponse::error(
      413, fmt::format("the {} would take {} bytes in the registry, more than its limit of {}",
                       what, bytes, api::kMaxStateValueBytes));
}

api::HttpResponse storeFailure(const api::Status& status) {
  // Whatever the store said, the master cannot take policy changes now: Unavailable (503).
  return http::errorResponse(
      api::unavailable("writing the registry failed: {}", status.toString()));
}

}  // namespace

api::Result<std::map<std::string, double>> parseWeightsFlag(std::string_view text) {
  std::map<std::string, double> weights;
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string_view part = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (part.empty()) continue;
    auto equals = part.find('=');
    if (equals == std::string_view::npos) {
      return api::invalidArgument("'{}' is not role=weight", part);
    }
    std::string role(part.substr(0, equals));
    std::string number(part.substr(equals + 1));
    size_t used = 0;
    double weight = 0;
    try {
      weight = std::stod(number, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != number.size()) {
      return api::invalidArgument("weight '{}' of role '{}' is not a number", number, role);
    }
    if (api::Status valid = checkPolicyRole(role, part); !valid) return valid;
    if (api::Status valid = checkWeight(weight, part); !valid) return valid;
    weights[role] = weight;
  }
  return weights;
}

// --- recovery -----------------------------------------------------------------------------

api::Status Core::recoverPolicy() {
  weights = options.weights;
  auto read = [this](const char* key, std::function<api::Status(const api::StateEntry&)> apply) {
    auto done = std::make_shared<std::promise<api::Status>>();
    auto future = done->get_future();
    services.state->get(key, *strand,
                        [done, apply](api::Result<std::optional<api::StateEntry>> entry) {
                          if (!entry) return done->set_value(entry.status());
                          if (!entry->has_value()) return done->set_value(api::Status::ok());
                          done->set_value(apply(**entry));
                        });
    if (future.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
      return api::unavailable("timed out reading '{}' in the registry", key);
    }
    return future.get().withContext("reading '{}' in the registry", key);
  };
  // Weights set through the endpoint (held in the registry) win over --weights.
  api::Status status = read(kRegistryWeights, [this](const api::StateEntry& entry) {
    auto decoded = decodeWeights(entry.value, "the registry's weights", Source::kRegistry);
    if (!decoded) return decoded.status();
    weights = std::move(decoded).value();
    weightsVersion = entry.version;
    return api::Status::ok();
  });
  if (!status) return status;
  return read(kRegistryQuota, [this](const api::StateEntry& entry) {
    auto decoded = decodeQuotas(entry.value);
    if (!decoded) return decoded.status();
    quotas = std::move(decoded).value();
    quotaVersion = entry.version;
    return api::Status::ok();
  });
}

api::Status Core::applyPolicy(api::Allocator& allocator) const {
  if (!weights.empty()) {
    if (api::Status applied = allocator.updateWeights(weights); !applied) {
      return applied.withContext("applying weights");
    }
  }
  for (const auto& [role, guarantee] : quotas) {
    if (api::Status applied = allocator.updateQuota(role, guarantee, {}); !applied) {
      return applied.withContext("applying the quota of role '{}'", role);
    }
  }
  return api::Status::ok();
}

// --- changes, one at a time -----------------------------------------------------------------

void Core::policyChange(std::function<void(std::function<void()> next)> change) {
  policyQueue.push_back(std::move(change));
  if (!policyBusy) runPolicyChange();
}

void Core::runPolicyChange() {
  if (policyQueue.empty()) {
    policyBusy = false;
    return;
  }
  policyBusy = true;
  auto change = std::move(policyQueue.front());
  policyQueue.pop_front();
  change([this] {
    strand->post(detail::guarded(weak_from_this(), [](Core& core) { core.runPolicyChange(); }));
  });
}

// --- endpoints ------------------------------------------------------------------------------

void Core::putWeights(const api::HttpRequest& request, api::HttpResponder respond) {
  auto update = decodeWeights(request.body, "the body", Source::kRequest);
  if (!update) return respond(http::errorResponse(update.status()));
  policyChange([this, update = std::move(update).value(),
                respond = std::move(respond)](std::function<void()> next) mutable {
    std::map<std::string, double> merged = weights;
    for (const auto& [role, weight] : update) merged[role] = weight;
    std::string encoded = encodeWeights(merged);
    if (auto tooLarge = checkRegistrySize("weights", encoded.size())) {
      respond(std::move(*tooLarge));
      return next();
    }
    storeSet(kRegistryWeights, encoded, weightsVersion,
             [this, merged, update, respond, next](api::Result<uint64_t> written) {
               if (!written) {
                 log()->error("writing weights failed: {}", written.status().toString());
                 respond(storeFailure(written.status()));
                 return next();
               }
               weights = merged;
               weightsVersion = *written;
               allocatorCall(
                   [update](api::Allocator& allocator) { return allocator.updateWeights(update); },
                   "updating weights");
               log()->info("weights updated: {}", encodeWeights(update));
               respond(api::HttpResponse::text(200, ""));
               next();
             });
  });
}

void Core::postQuota(const api::HttpRequest& request, api::HttpResponder respond) {
  api::Result<std::pair<std::string, api::Resources>> quota =
      api::invalidArgument("the body is not a JSON object");
  auto parsed = parseJson(request.body, "the body");
  if (!parsed) {
    quota = parsed.status();
  } else if (parsed->type() == typeid(Object::Ptr)) {
    quota = decodeQuotaRequest(parsed->extract<Object::Ptr>(), Source::kRequest);
  }
  if (!quota) return respond(http::errorResponse(quota.status()));
  policyChange([this, quota = std::move(quota).value(),
                respond = std::move(respond)](std::function<void()> next) mutable {
    const auto& [role, guarantee] = quota;
    if (quotas.count(role)) {
      respond(api::HttpResponse::error(
          400, fmt::format("role '{}' already has quota; remove it first (DELETE /quota/{})", role,
                           role)));
      return next();
    }
    std::map<std::string, api::Resources> changed = quotas;
    changed[role] = guarantee;
    std::string encoded = encodeQuotas(changed);
    if (auto tooLarge = checkRegistrySize("quota", encoded.size())) {
      respond(std::move(*tooLarge));
      return next();
    }
    storeSet(kRegistryQuota, encoded, quotaVersion,
             [this, changed, role, guarantee, respond, next](api::Result<uint64_t> written) {
               if (!written) {
                 log()->error("writing quota failed: {}", written.status().toString());
                 respond(storeFailure(written.status()));
                 return next();
               }
               quotas = changed;
               quotaVersion = *written;
               allocatorCall(
                   [role, guarantee](api::Allocator& allocator) {
                     return allocator.updateQuota(role, guarantee, {});
                   },
                   fmt::format("setting the quota of role '{}'", role));
               log()->info("quota of role '{}' set to {}", role, guarantee.toString());
               respond(api::HttpResponse::text(200, ""));
               next();
             });
  });
}

void Core::deleteQuota(std::string role, api::HttpResponder respond) {
  if (api::Status valid = checkPolicyRole(role, "role"); !valid) {
    return respond(http::errorResponse(valid));
  }
  policyChange([this, role = std::move(role),
                respond = std::move(respond)](std::function<void()> next) mutable {
    if (!quotas.count(role)) {
      respond(api::HttpResponse::error(400, fmt::format("role '{}' has no quota set", role)));
      return next();
    }
    std::map<std::string, api::Resources> changed = quotas;
    changed.erase(role);
    storeSet(
        kRegistryQuota, encodeQuotas(changed), quotaVersion,
        [this, changed, role, respond, next](api::Result<uint64_t> written) {
          if (!written) {
            log()->error("writing quota failed: {}", written.status().toString());
            respond(storeFailure(written.status()));
            return next();
          }
          quotas = changed;
          quotaVersion = *written;
          allocatorCall(
              [role](api::Allocator& allocator) { return allocator.updateQuota(role, {}, {}); },
              fmt::format("removing the quota of role '{}'", role));
          log()->info("quota of role '{}' removed", role);
          respond(api::HttpResponse::text(200, ""));
          next();
        });
  });
}

api::Status Core::addPolicyRoutes() {
  net::Router& router = *services.router;
  std::weak_ptr<Core> weak = weak_from_this();
  using Handler = std::function<void(Core&, const api::HttpRequest&, api::HttpResponder)>;
  auto route = [&](const char* method, const std::string& path, Handler handler,
                   bool prefix = false) {
    return router.addRoute(
        method, path, strand.get(),
        [weak, handler](const api::HttpRequest& request, api::HttpResponder respond) {
          auto core = weak.lock();
          if (!core || core->stopped) {
            return respond(http::errorResponse(api::unavailable("the master is stopping")));
          }
          handler(*core, request, std::move(respond));
        },
        prefix);
  };
  struct Entry {
    const char* method;
    const char* path;
    Handler handler;
  };
  const Entry entries[] = {
      {"GET", "/weights",
       [](Core& core, const api::HttpRequest&, api::HttpResponder respond) {
         respond(api::HttpResponse::json(200, encodeWeights(core.weights)));
       }},
      {"PUT", "/weights",
       [](Core& core, const api::HttpRequest& request, api::HttpResponder respond) {
         core.putWeights(request, std::move(respond));
       }},
      {"GET", "/quota",
       [](Core& core, const api::HttpRequest&, api::HttpResponder respond) {
         respond(api::HttpResponse::json(200, encodeQuotas(core.quotas)));
       }},
      {"POST", "/quota",
       [](Core& core, const api::HttpRequest& request, api::HttpResponder respond) {
         core.postQuota(request, std::move(respond));
       }},
  };
  for (const std::string base : {"", "/master"}) {
    for (const Entry& entry : entries) {
      if (api::Status added = route(entry.method, base + entry.path, entry.handler); !added) {
        return added;
      }
    }
    std::string prefix = base + "/quota/";
    api::Status added = route(
        "DELETE", base + "/quota",
        [prefix](Core& core, const api::HttpRequest& request, api::HttpResponder respond) {
          std::string role = request.path.size() > prefix.size() &&
                                     request.path.compare(0, prefix.size(), prefix) == 0
                                 ? request.path.substr(prefix.size())
                                 : std::string();
          if (role.empty()) {
            return respond(api::HttpResponse::error(400, "expecting a role: DELETE /quota/<role>"));
          }
          core.deleteQuota(std::move(role), std::move(respond));
        },
        /*prefix=*/true);
    if (!added) return added;
  }
  return api::Status::ok();
}

}  // namespace tessera::kernel::master
