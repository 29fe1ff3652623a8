#include "kernel/http/authorization.h"

#include <fmt/format.h>

#include <memory>
#include <utility>

#include "kernel/runtime/logging.h"

namespace tessera::kernel::http {

std::string refusalMessage(const api::AuthorizationRequest& request) {
  std::string out = fmt::format("principal '{}' is not authorized to {}",
                                request.subject.value_or("(anonymous)"), request.action);
  if (request.role) out += fmt::format(" in role '{}'", *request.role);
  if (request.value) out += fmt::format(" on '{}'", *request.value);
  return out;
}

void askAuthorizer(const AuthorizerRef& authorizer, std::vector<api::AuthorizationRequest> requests,
                   std::string component, std::function<void(std::vector<bool>)> then) {
  if (!authorizer || requests.empty()) return then(std::vector<bool>(requests.size(), true));
  // One batch: the answers are gathered (from any thread); the last one calls `then`.
  struct Batch {
    std::vector<api::AuthorizationRequest> requests;
    // Not vector<bool>: its elements share words, and answers come from several threads.
    std::vector<char> answers;
    std::atomic<size_t> left{0};
    std::string component;
    std::function<void(std::vector<bool>)> then;
  };
  auto batch = std::make_shared<Batch>();
  batch->requests = std::move(requests);
  batch->answers.assign(batch->requests.size(), 0);
  batch->left = batch->requests.size();
  batch->component = std::move(component);
  batch->then = std::move(then);
  api::Authorizer* module = authorizer.authorizer;
  authorizer.executor->post([module, batch] {
    for (size_t i = 0; i < batch->requests.size(); ++i) {
      module->authorized(batch->requests[i], [batch, i](api::Result<bool> answer) {
        if (!answer) {
          runtime::logger(batch->component)
              ->warn("the authorizer could not answer ({}): {}; denied",
                     refusalMessage(batch->requests[i]), answer.status().toString());
        }
        // Each index is written once, before the release below.
        batch->answers[i] = answer && *answer ? 1 : 0;
        if (batch->left.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        batch->then(std::vector<bool>(batch->answers.begin(), batch->answers.end()));
      });
    }
  });
}

void askAuthorizerOne(const AuthorizerRef& authorizer, api::AuthorizationRequest request,
                      std::string component,
                      std::function<void(std::optional<std::string> refusal)> then) {
  std::string refusal = refusalMessage(request);
  std::vector<api::AuthorizationRequest> requests;
  requests.push_back(std::move(request));
  askAuthorizer(authorizer, std::move(requests), std::move(component),
                [refusal = std::move(refusal), then = std::move(then)](std::vector<bool> answers) {
                  then(answers.front() ? std::nullopt : std::optional<std::string>(refusal));
                });
}

api::HttpResponse forbidden(const std::string& refusal) {
  return api::HttpResponse::error(403, refusal);
}

}  // namespace tessera::kernel::http
