// The master's role policy: weights (`--weights`, `GET`/`PUT /weights`) and quota (`GET`/`POST
// /quota`, `DELETE /quota/<role>`), as in Mesos 1.x. Both live in the registry (the state store,
// next to the agents) and are written there before a change is acknowledged; the allocator gets
// them at start and after every change.

#include <fmt/format.h>

#include <future>
#include <optional>

#include "kernel/master/master_core.h"
#include "kernel/master/master_util.h"
#include "kernel/master/policy_codec.h"
#include "kernel/net/http_server.h"

namespace tessera::kernel::master {

using detail::log;

namespace {

const char* kRegistryWeights = "/master/registry/weights";
const char* kRegistryQuota = "/master/registry/quota";

using policy::checkPolicyRole;
using policy::checkWeight;
using policy::decodeQuotaBody;
using policy::decodeQuotas;
using policy::decodeWeights;
using policy::encodeQuotas;
using policy::encodeWeights;
using policy::Source;

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
  if (services.authorizer == nullptr) return applyWeights(std::move(update).value(), respond);
  // UPDATE_WEIGHT for every role changed, on the authorizer; then the change as without it.
  std::vector<api::AuthorizationRequest> questions;
  for (const auto& [role, weight] : *update) {
    api::AuthorizationRequest question;
    question.subject = request.header(net::kAuthenticatedPrincipalHeader);
    question.action = "UPDATE_WEIGHT";
    question.role = role;
    questions.push_back(std::move(question));
  }
  authorizeAll(std::move(questions),
               [update = std::move(update).value(), respond = std::move(respond)](
                   Core& core, std::optional<std::string> refusal) mutable {
                 if (refusal) return respond(api::HttpResponse::error(403, *refusal));
                 core.applyWeights(std::move(update), std::move(respond));
               });
}

void Core::applyWeights(std::map<std::string, double> update, api::HttpResponder respond) {
  policyChange([this, update = std::move(update),
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
  auto decoded = decodeQuotaBody(request.body);
  if (!decoded) return respond(http::errorResponse(decoded.status()));
  if (services.authorizer != nullptr) {
    api::AuthorizationRequest question;
    question.subject = request.header(net::kAuthenticatedPrincipalHeader);
    question.action = "UPDATE_QUOTA";
    question.role = decoded->first;
    return authorizeOne(std::move(question),
                        [decoded = std::move(decoded).value(), respond = std::move(respond)](
                            Core& core, std::optional<std::string> refusal) mutable {
                          if (refusal) return respond(api::HttpResponse::error(403, *refusal));
                          core.applyQuota(std::move(decoded), std::move(respond));
                        });
  }
  applyQuota(std::move(decoded).value(), std::move(respond));
}

void Core::applyQuota(std::pair<std::string, api::Resources> quota, api::HttpResponder respond) {
  policyChange([this, quota = std::move(quota),
                respond = std::move(respond)](std::function<void()> next) mutable {
    // Named references, not a structured binding: clang 14 (the ASan build) cannot capture one.
    const std::string& role = quota.first;
    const api::Resources& guarantee = quota.second;
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

void Core::deleteQuota(std::string role, api::HttpResponder respond,
                       std::optional<std::string> principal) {
  if (api::Status valid = checkPolicyRole(role, "role"); !valid) {
    return respond(http::errorResponse(valid));
  }
  if (services.authorizer == nullptr) return removeQuota(std::move(role), std::move(respond));
  api::AuthorizationRequest question;
  question.subject = std::move(principal);
  question.action = "UPDATE_QUOTA";
  question.role = role;
  authorizeOne(std::move(question), [role, respond = std::move(respond)](
                                        Core& core, std::optional<std::string> refusal) mutable {
    if (refusal) return respond(api::HttpResponse::error(403, *refusal));
    core.removeQuota(std::move(role), std::move(respond));
  });
}

void Core::removeQuota(std::string role, api::HttpResponder respond) {
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
          core.deleteQuota(std::move(role), std::move(respond),
                           request.header(net::kAuthenticatedPrincipalHeader));
        },
        /*prefix=*/true);
    if (!added) return added;
  }
  return api::Status::ok();
}

}  // namespace tessera::kernel::master
