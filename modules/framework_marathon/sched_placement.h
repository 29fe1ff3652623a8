#pragma once

// Placement for the Marathon scheduler: which part of an offer a task of an app takes
// (cpus, mem, disk, gpus and host ports, from resources of the roles the app accepts), and
// whether an agent satisfies the app's constraints given where its other tasks run.
// Pure functions and values; no I/O, no clock.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modules/framework_marathon/app.h"
#include "tessera/v1/messages.pb.h"

namespace tessera::modules::marathon {

/// What constraints see of an agent: its hostname and its attributes as text (scalars as
/// Mesos prints them, sets as `{a,b}`, ranges as `[1-2]`).
struct AgentFacts {
  std::string hostname;
  std::map<std::string, std::string> attributes;
};

/// The facts of the agent an offer comes from.
AgentFacts agentFacts(const v1::Offer& offer);

/// The value of a constraint's `field` on `agent`: `hostname` is the hostname, anything else an
/// attribute; nullopt when the agent has no such attribute.
std::optional<std::string> fieldValue(const AgentFacts& agent, std::string_view field);

/// True when one more task of an app may run on `agent`: every constraint holds given `placed`,
/// the agents of the app's other live tasks (one entry per task; unknown agents are skipped).
/// Operators: UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE (regular expressions, full match),
/// MAX_PER, IS. An agent without the field fails every operator but UNLIKE, as in Marathon.
/// An unknown operator or a bad regular expression fails.
bool meetsConstraints(const std::vector<Constraint>& constraints, const AgentFacts& agent,
                      const std::vector<const AgentFacts*>& placed);

/// The roles whose resources a task of `app` may use: the app's acceptedResourceRoles, else
/// `defaults` (the framework's --default_accepted_resource_roles), else "*" and `frameworkRole`.
std::vector<std::string> acceptedRoles(const App& app, const std::vector<std::string>& defaults,
                                       std::string_view frameworkRole);

/// The host ports the tasks of `app` ask for, one per port: portMappings (BRIDGE/USER Docker
/// networking) or portDefinitions; 0 means "any offered port". portDefinitions' ports are
/// only asked for as such with requirePorts.
std::vector<int> requestedHostPorts(const App& app);

/// What one task took from an offer.
struct OfferMatch {
  std::vector<v1::Resource> resources;  // copies of the offer's resources, amounts cut down
  std::vector<int> hostPorts;           // in requestedHostPorts() order
};

/// The unused part of one offer; tasks take from it one at a time.
class OfferPool {
 public:
  explicit OfferPool(const v1::Offer& offer);

  /// Takes what one task of `app` needs from resources of `roles` (reserved ones first), or
  /// nothing and nullopt when it does not fit.
  std::optional<OfferMatch> take(const App& app, const std::vector<std::string>& roles);

 private:
  std::vector<v1::Resource> remaining_;
};

}  // namespace tessera::modules::marathon
