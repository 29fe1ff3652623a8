// The public face of the agent role; the work is AgentCore's (agent_core.h).

#include "kernel/agent/agent.h"

#include "kernel/agent/agent_core.h"

namespace tessera::kernel::agent {

struct Agent::Impl {
  std::shared_ptr<AgentCore> core;
};

Agent::Agent(AgentServices services, AgentOptions options)
    : impl_(std::make_unique<Impl>(
          Impl{std::make_shared<AgentCore>(std::move(services), std::move(options))})) {}

Agent::~Agent() { stop(); }

api::Status Agent::start() { return impl_->core->start(); }

void Agent::stop() { impl_->core->stop(); }

void Agent::masterChanged() { impl_->core->reconnectNow(); }

std::string Agent::id() const { return impl_->core->id(); }

}  // namespace tessera::kernel::agent
