#pragma once

/// Asking an authorizer module (Mesos's --acls, --authorizers) from the kernel: the part the
/// master, the agent and the shared endpoints have in common. The authorizer is called on its
/// own executor and answers from any thread; callers hop back to their strand themselves.

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tessera/api/authorizer.h"
#include "tessera/api/executor.h"
#include "tessera/api/http.h"

namespace tessera::kernel::http {

/// An authorizer module and the executor it must be called on. Both null: nothing is asked
/// and everything is allowed (no --acls). Both outlive every question asked through them.
struct AuthorizerRef {
  api::Authorizer* authorizer = nullptr;
  api::Executor* executor = nullptr;

  explicit operator bool() const { return authorizer != nullptr && executor != nullptr; }
};

/// Where a daemon's authorizer is published once a role created it, for components set up
/// before it (the shared `/flags` endpoint). set() once, before the daemon serves; get() from
/// any thread.
class AuthorizerSlot {
 public:
  void set(AuthorizerRef ref) {
    executor_.store(ref.executor, std::memory_order_relaxed);
    authorizer_.store(ref.authorizer, std::memory_order_release);
  }
  AuthorizerRef get() const {
    AuthorizerRef ref;
    ref.authorizer = authorizer_.load(std::memory_order_acquire);
    ref.executor = executor_.load(std::memory_order_relaxed);
    return ref;
  }

 private:
  std::atomic<api::Authorizer*> authorizer_{nullptr};
  std::atomic<api::Executor*> executor_{nullptr};
};

/// The 403 message of a refused question: "principal 'p' is not authorized to ACTION in role
/// 'r' on 'v'" ("(anonymous)" without a principal).
std::string refusalMessage(const api::AuthorizationRequest& request);

/// Asks `authorizer` every one of `requests` on its executor and calls `then` once with the
/// answers in order (true: allowed), from whichever thread answered last. An error answer is a
/// denial (logged under `component`). Without an authorizer, or with no requests, `then` runs
/// at once on the caller's thread with every answer true.
void askAuthorizer(const AuthorizerRef& authorizer, std::vector<api::AuthorizationRequest> requests,
                   std::string component, std::function<void(std::vector<bool>)> then);

/// One question: `then` gets nullopt when allowed, else refusalMessage(). As askAuthorizer().
void askAuthorizerOne(const AuthorizerRef& authorizer, api::AuthorizationRequest request,
                      std::string component,
                      std::function<void(std::optional<std::string> refusal)> then);

/// The 403 answer to a refusal: a JSON `message`.
api::HttpResponse forbidden(const std::string& refusal);

}  // namespace tessera::kernel::http
