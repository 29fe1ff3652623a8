// Agent authentication on the internal transport (--authenticate_agents): a connection that
// offers a principal gets a random challenge, answers it, and the agent authenticator module
// checks the answer. The secret never crosses the wire, and nothing here logs the answer.
#include <fmt/format.h>

#include <random>

#include "kernel/master/master_core.h"
#include "kernel/master/master_util.h"
#include "kernel/runtime/logging.h"

namespace tessera::kernel::master {

using detail::log;

namespace {

/// 32 random bytes, hex: unpredictable, used for one connection's one attempt.
std::string newChallenge() {
  static thread_local std::random_device device;
  std::string challenge;
  for (int i = 0; i < 8; ++i) challenge += fmt::format("{:08x}", device());
  return challenge;
}

}  // namespace

void Core::refuseAgentAuthentication(const net::ConnectionPtr& connection, const std::string& why) {
  counter("agent_authentication_failures").increment();
  log()->warn("agent at {} refused: {}", connection->peer(), why);
  internal::Envelope reply;
  reply.mutable_agent_refused()->set_message(why);
  connection->send(reply);
  forgetAgentAuthentication(connection->id());
}

void Core::forgetAgentAuthentication(uint64_t connectionId) {
  agentChallenges.erase(connectionId);
  authenticatedAgents.erase(connectionId);
}

void Core::authenticateAgent(const net::ConnectionPtr& connection,
                             const internal::AuthenticateAgent& message) {
  if (services.agentAuthenticator == nullptr) {
    return refuseAgentAuthentication(
        connection, "this master cannot authenticate agents: it has no --credentials");
  }
  if (message.principal().empty()) {
    return refuseAgentAuthentication(connection, "agent authentication without a principal");
  }
  if (agentChallenges.count(connection->id()) || authenticatedAgents.count(connection->id())) {
    return refuseAgentAuthentication(connection, "authentication started twice on a connection");
  }
  AgentChallenge pending{message.mechanism(), message.principal(), newChallenge(), false};
  internal::Envelope reply;
  reply.mutable_authentication_challenge()->set_challenge(pending.challenge);
  agentChallenges.emplace(connection->id(), std::move(pending));
  connection->send(reply);
}

void Core::agentAuthenticationResponse(const net::ConnectionPtr& connection,
                                       const internal::AuthenticationResponse& message) {
  auto pending = agentChallenges.find(connection->id());
  if (pending == agentChallenges.end() || pending->second.verifying) {
    return refuseAgentAuthentication(connection, "an authentication response without a challenge");
  }
  pending->second.verifying = true;
  api::PeerAuthentication attempt{pending->second.mechanism, pending->second.principal,
                                  pending->second.challenge, message.response()};
  auto* authenticator = services.agentAuthenticator;
  auto* executor = strand.get();
  auto weak = weak_from_this();
  services.agentAuthenticatorExecutor->post([=]() mutable {
    authenticator->verify(attempt, [=](api::AuthenticationResult result) {
      executor->post([=] {
        auto self = weak.lock();
        if (!self || self->stopped || !connection->open()) return;
        if (!self->agentChallenges.count(connection->id())) return;
        self->agentChallenges.erase(connection->id());
        if (result.outcome != api::AuthenticationResult::Outcome::kAuthenticated ||
            !result.principal) {
          return self->refuseAgentAuthentication(
              connection, fmt::format("authentication of principal '{}' failed: wrong or unknown "
                                      "credentials (mechanism {})",
                                      attempt.principal, attempt.mechanism));
        }
        self->counter("agent_authentication_successes").increment();
        self->authenticatedAgents[connection->id()] = *result.principal;
        log()->info("agent at {} authenticated as '{}'", connection->peer(), *result.principal);
        internal::Envelope reply;
        reply.mutable_agent_authenticated()->set_principal(*result.principal);
        connection->send(reply);
      });
    });
  });
}

bool Core::agentMayRegister(const net::ConnectionPtr& connection) {
  if (authenticatedAgents.count(connection->id())) return true;
  if (agentChallenges.count(connection->id())) {
    refuseAgentAuthentication(connection, "registration before the authentication finished");
    return false;
  }
  if (!options.authenticateAgents) return true;
  refuseAgentAuthentication(
      connection,
      "this master only admits authenticated agents (--authenticate_agents): start the agent "
      "with --credential");
  return false;
}

}  // namespace tessera::kernel::master
