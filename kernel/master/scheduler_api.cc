// The v1 scheduler API (`POST /api/v1/scheduler`): a call's parsing, authentication and
// dispatch, with the ACCEPT's authorization. The calls themselves: scheduler_frameworks.cc
// (SUBSCRIBE, the event stream, failover, TEARDOWN), scheduler_accept.cc (ACCEPT, DECLINE),
// scheduler_tasks.cc (KILL, ACKNOWLEDGE, RECONCILE, MESSAGE).

#include <fmt/format.h>

#include <memory>
#include <set>

#include "kernel/master/master_core.h"
#include "kernel/master/master_util.h"
#include "kernel/net/utf8.h"
#include "kernel/net/v1_json.h"

namespace tessera::kernel::master {

using detail::answer;
using detail::log;
using detail::rolesOf;

void Core::schedulerCall(const api::HttpRequest& request, std::shared_ptr<net::HttpStream> stream) {
  counter("messages_scheduler_calls").increment();
  std::string contentType = request.header("Content-Type").value_or("");
  if (contentType.rfind("application/json", 0) != 0) {
    return answer(stream, 415, "expecting 'Content-Type' of application/json");
  }
  auto parsed = net::parseV1Json<v1::scheduler::Call>(request.body);
  if (!parsed)
    return answer(stream, http::httpStatus(parsed.status().code()),
                  fmt::format("malformed call: {}", parsed.status().message()));
  // The JSON parser refuses non-text strings itself; this holds whatever decoded the call.
  if (api::Status text = net::checkUtf8(*parsed); !text) {
    return answer(stream, 400, fmt::format("malformed call: {}", text.message()));
  }
  if (services.authenticator != nullptr) {
    // Mesos authenticates every call, SUBSCRIBE and the calls on a subscription alike. Basic
    // credentials the authenticator accepted lately, with no module reload since, are taken
    // as they were (AuthenticationCache): no round trip to its executor.
    if (auto authorization = request.header("Authorization")) {
      if (auto principal = authentications.find(*authorization, moduleReloads(),
                                                AuthenticationCache::Clock::now())) {
        return dispatchCall(request, *parsed, principal, std::move(stream));
      }
    }
    return authenticateCall(std::make_shared<const api::HttpRequest>(request),
                            std::move(parsed).value(), std::move(stream));
  }
  dispatchCall(request, *parsed, std::nullopt, std::move(stream));
}

void Core::authenticateCall(std::shared_ptr<const api::HttpRequest> request,
                            v1::scheduler::Call call, std::shared_ptr<net::HttpStream> stream) {
  // The authenticator runs on its own executor and answers from any thread; the answer hops
  // back to the strand while the core lives. The request and the stream stay alive in the
  // callbacks until then.
  // The reload count before asking: an answer given with the credentials of before a reload
  // is remembered under the old count, so it is never taken once the reload completed.
  const uint64_t generation = moduleReloads();
  std::weak_ptr<Core> weak = weak_from_this();
  runtime::StrandExecutor* executor = strand.get();
  api::Authenticator* authenticator = services.authenticator;
  auto done = [weak, executor, request, call = std::move(call), stream,
               generation](api::AuthenticationResult result) mutable {
    auto alive = weak.lock();
    if (!alive) return answer(stream, 503, "the master is stopping");
    executor->post([weak, request = std::move(request), call = std::move(call),
                    stream = std::move(stream), result = std::move(result), generation]() mutable {
      auto core = weak.lock();
      if (!core || core->stopped) return answer(stream, 503, "the master is stopping");
      core->authenticated(*request, call, std::move(result), generation, std::move(stream));
    });
  };
  services.authenticatorExecutor->post([authenticator, request, done = std::move(done)]() mutable {
    authenticator->authenticate(*request, std::move(done));
  });
}

void Core::authenticated(const api::HttpRequest& request, const v1::scheduler::Call& call,
                         api::AuthenticationResult result, uint64_t generation,
                         std::shared_ptr<net::HttpStream> stream) {
  using Outcome = api::AuthenticationResult::Outcome;
  switch (result.outcome) {
    case Outcome::kAuthenticated:
      if (!result.principal) {
        // An authenticator that authenticates nobody in particular: treat as unauthenticated.
        result.outcome = Outcome::kUnauthorized;
        break;
      }
      if (auto authorization = request.header("Authorization")) {
        authentications.remember(*authorization, *result.principal, generation,
                                 AuthenticationCache::Clock::now());
      }
      return dispatchCall(request, call, result.principal, std::move(stream));
    case Outcome::kForbidden:
      counter("scheduler_calls_forbidden").increment();
      return answer(stream, 403, "the authenticator refused the request");
    case Outcome::kUnauthorized:
      break;
  }
  if (!options.authenticateFrameworks) {
    // Mesos: without --authenticate_frameworks, authentication is optional.
    return dispatchCall(request, call, std::nullopt, std::move(stream));
  }
  counter("scheduler_calls_unauthenticated").increment();
  std::vector<std::pair<std::string, std::string>> headers;
  if (!result.challenge.empty()) headers.emplace_back("WWW-Authenticate", result.challenge);
  api::HttpResponse refusal = api::HttpResponse::json(
      401, http::errorJson("the request is not authenticated and the master requires "
                           "authentication (--authenticate_frameworks)"));
  refusal.headers = std::move(headers);
  stream->respond(std::move(refusal));
}

void Core::dispatchCall(const api::HttpRequest& request, const v1::scheduler::Call& call,
                        const std::optional<std::string>& principal,
                        std::shared_ptr<net::HttpStream> stream) {
  if (call.type() == v1::scheduler::Call::SUBSCRIBE) {
    if (services.authorizer == nullptr || !call.has_subscribe()) {
      return subscribe(call, principal, std::move(stream));
    }
    // REGISTER_FRAMEWORK in each of its roles, for the authenticated principal (else the one
    // the framework names, as Mesos does).
    const v1::FrameworkInfo& info = call.subscribe().framework_info();
    std::optional<std::string> subject = principal;
    if (!subject && info.has_principal()) subject = info.principal();
    std::vector<api::AuthorizationRequest> questions;
    for (const auto& role : rolesOf(info)) {
      api::AuthorizationRequest question;
      question.subject = subject;
      question.action = "REGISTER_FRAMEWORK";
      question.role = role;
      questions.push_back(std::move(question));
    }
    return authorizeAll(std::move(questions),
                        [call, principal, stream = std::move(stream)](
                            Core& core, std::optional<std::string> refusal) mutable {
                          if (refusal) {
                            core.counter("frameworks_refused").increment();
                            log()->warn("refusing framework '{}': {}",
                                        call.subscribe().framework_info().name(), *refusal);
                            return answer(stream, 403, *refusal);
                          }
                          core.subscribe(call, principal, std::move(stream));
                        });
  }
  if (call.type() == v1::scheduler::Call::UNKNOWN) {
    return answer(stream, 400, "expecting 'type' to be present and known");
  }
  if (!call.has_framework_id() || call.framework_id().value().empty()) {
    return answer(stream, 400, "expecting 'framework_id' to be present");
  }
  auto it = frameworks.find(call.framework_id().value());
  if (it == frameworks.end() || !it->second.connected) {
    return answer(stream, 403, "framework is not subscribed");
  }
  FrameworkEntry& framework = it->second;
  auto streamId = request.header("Mesos-Stream-Id");
  if (!streamId)
    return answer(stream, 400,
                  "all non-subscribe calls should include the 'Mesos-Stream-Id' header");
  if (*streamId != framework.streamId) {
    return answer(
        stream, 400,
        fmt::format("the stream id '{}' is not the framework's current stream", *streamId));
  }
  if (principal && framework.info.has_principal() && framework.info.principal() != *principal) {
    return answer(stream, 403,
                  fmt::format("authenticated principal '{}' does not match the framework's "
                              "principal '{}'",
                              *principal, framework.info.principal()));
  }
  auto needs = [&](bool present, std::string_view field) {
    if (present) return true;
    answer(stream, 400, fmt::format("expecting '{}' to be present", field));
    return false;
  };
  std::string frameworkId = framework.id;
  switch (call.type()) {
    case v1::scheduler::Call::TEARDOWN:
      counter("messages_unregister_framework").increment();
      answer(stream, 202, "");
      removeFramework(frameworkId);
      return;
    case v1::scheduler::Call::ACCEPT: {
      if (!needs(call.has_accept(), "accept")) return;
      auto view = readAcceptedOperations(call.accept(), request.body);
      if (services.authorizer == nullptr) {
        api::Status accepted = accept(framework, call.accept(), view);
        if (!accepted) {
          return answer(stream, http::httpStatus(accepted.code()), accepted.message());
        }
        break;
      }
      // RUN_TASK for each user the launches run as; a task of a refused user gets TASK_ERROR.
      std::set<std::string> users;
      for (const auto& operation : call.accept().operations()) {
        if (operation.type() != v1::Offer::Operation::LAUNCH) continue;
        for (const auto& task : operation.launch().task_infos()) {
          users.insert(task.has_command() && task.command().has_user() ? task.command().user()
                                                                       : framework.info.user());
        }
      }
      // RESERVE_RESOURCES for each role reserved for; UNRESERVE_RESOURCES for each principal
      // whose reservations are given back.
      std::set<std::string> reserveRoles;
      std::set<std::string> unreservePrincipals;
      for (const auto& operation : call.accept().operations()) {
        const bool reserving = operation.type() == v1::Offer::Operation::RESERVE;
        if (!reserving && operation.type() != v1::Offer::Operation::UNRESERVE) continue;
        for (const auto& resource :
             reserving ? operation.reserve().resources() : operation.unreserve().resources()) {
          if (resource.reservations_size() == 0) continue;
          const auto& last = resource.reservations(resource.reservations_size() - 1);
          if (reserving) {
            reserveRoles.insert(last.role());
          } else {
            unreservePrincipals.insert(last.principal());
          }
        }
      }
      std::vector<api::AuthorizationRequest> questions;
      auto ask = [&](const char* action, std::optional<std::string> role,
                     std::optional<std::string> value) {
        api::AuthorizationRequest question;
        question.subject = principal;
        if (!question.subject && framework.info.has_principal()) {
          question.subject = framework.info.principal();
        }
        question.action = action;
        question.role = std::move(role);
        question.value = std::move(value);
        questions.push_back(std::move(question));
      };
      for (const auto& user : users) ask("RUN_TASK", std::nullopt, user);
      for (const auto& role : reserveRoles) ask("RESERVE_RESOURCES", role, std::nullopt);
      for (const auto& reserver : unreservePrincipals) {
        ask("UNRESERVE_RESOURCES", std::nullopt, reserver);
      }
      std::string streamIdValue = framework.streamId;
      return authorize(
          std::move(questions),
          [frameworkId, streamIdValue, call, view = std::move(view),
           users = std::vector<std::string>(users.begin(), users.end()),
           reserveRoles = std::vector<std::string>(reserveRoles.begin(), reserveRoles.end()),
           unreservePrincipals =
               std::vector<std::string>(unreservePrincipals.begin(), unreservePrincipals.end()),
           stream = std::move(stream)](Core& core, std::vector<bool> answers) {
            FrameworkEntry* current = core.connectedOn(frameworkId, streamIdValue);
            if (current == nullptr) return answer(stream, 403, "framework is not subscribed");
            size_t at = 0;
            for (const auto& user : users) {
              if (!answers[at++]) core.refusedUsers.insert(user);
            }
            for (const auto& role : reserveRoles) {
              if (!answers[at++]) core.refusedReserveRoles.insert(role);
            }
            for (const auto& reserver : unreservePrincipals) {
              if (!answers[at++]) core.refusedUnreservePrincipals.insert(reserver);
            }
            api::Status accepted = core.accept(*current, call.accept(), view);
            core.refusedUsers.clear();
            core.refusedReserveRoles.clear();
            core.refusedUnreservePrincipals.clear();
            if (!accepted) {
              return answer(stream, http::httpStatus(accepted.code()), accepted.message());
            }
            answer(stream, 202, "");
          });
    }
    case v1::scheduler::Call::DECLINE:
      if (!needs(call.has_decline(), "decline")) return;
      decline(framework, call.decline());
      break;
    case v1::scheduler::Call::REVIVE: {
      counter("messages_revive_offers").increment();
      std::vector<std::string> roles(call.revive().roles().begin(), call.revive().roles().end());
      allocatorCall(
          [frameworkId, roles](api::Allocator& allocator) {
            return allocator.reviveOffers(frameworkId, roles);
          },
          fmt::format("reviving offers for framework '{}'", frameworkId));
      break;
    }
    case v1::scheduler::Call::SUPPRESS: {
      counter("messages_suppress_offers").increment();
      std::vector<std::string> roles(call.suppress().roles().begin(),
                                     call.suppress().roles().end());
      allocatorCall(
          [frameworkId, roles](api::Allocator& allocator) {
            return allocator.suppressOffers(frameworkId, roles);
          },
          fmt::format("suppressing offers for framework '{}'", frameworkId));
      break;
    }
    case v1::scheduler::Call::KILL:
      if (!needs(call.has_kill() && call.kill().has_task_id(), "kill.task_id")) return;
      kill(framework, call.kill());
      break;
    case v1::scheduler::Call::ACKNOWLEDGE:
      if (!needs(call.has_acknowledge() && call.acknowledge().has_task_id() &&
                     call.acknowledge().has_agent_id() && call.acknowledge().has_uuid(),
                 "acknowledge.{agent_id,task_id,uuid}")) {
        return;
      }
      acknowledge(framework, call.acknowledge());
      break;
    case v1::scheduler::Call::RECONCILE:
      reconcile(framework, call.reconcile());
      break;
    case v1::scheduler::Call::MESSAGE:
      if (!needs(call.has_message() && call.message().has_agent_id(), "message.agent_id")) return;
      message(framework, call.message());
      break;
    default:
      return answer(stream, 501,
                    fmt::format("call type {} is not implemented",
                                v1::scheduler::Call::Type_Name(call.type())));
  }
  answer(stream, 202, "");
}

}  // namespace tessera::kernel::master
