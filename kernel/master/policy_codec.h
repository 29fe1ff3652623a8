#pragma once

/// The JSON of the master's role policy, apart from the master: the `/weights` and `/quota`
/// request bodies and what the registry holds, in Mesos 1.x's shapes. Separate so that the
/// decoders can be fuzzed without a master (fuzz/policy_fuzz.cc).

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "tessera/api/resources.h"
#include "tessera/api/status.h"

namespace tessera::kernel::master::policy {

/// Where a weight or quota comes from: a request (or --weights) is held to every rule; what the
/// registry holds was accepted once and is read back as long as Mesos's own rules allow it, so
/// that a rule added later does not stop a master from starting.
enum class Source { kRequest, kRegistry };

/// A role named in a /weights or /quota request, `field` saying where (`role`, `[2].role`).
/// Mesos's rules (api::validateRole: not empty, no `.`/`..`/empty component, no component
/// starting with '-', no white space or `*,;:()[]{}`), not the default role `*`, and for a
/// request further: at most 255 bytes, valid UTF-8 without control characters.
api::Status checkPolicyRole(std::string_view role, std::string_view field,
                            Source source = Source::kRequest);

/// A weight must be a positive, finite number; `field` says where it was given.
api::Status checkWeight(double weight, std::string_view field);

/// Mesos's weights JSON: `[{"role":"r","weight":2.0}, ...]`.
std::string encodeWeights(const std::map<std::string, double>& weights);

/// Decodes a weights array (`what` names it in errors: "the body"); every entry must be an
/// object with a string `role` and a JSON number `weight` (not a bool, not a string), and no
/// role may appear twice. Errors: InvalidArgument naming the entry's field (`'[1].weight':
/// expecting a number`).
api::Result<std::map<std::string, double>> decodeWeights(const std::string& text,
                                                         std::string_view what, Source source);

/// Decodes a `POST /quota` body `{"role":"r","guarantee":[<v1 Resource>...]}` (`force` is
/// ignored): a scalar, unreserved, non-empty guarantee, each resource named once. Errors:
/// InvalidArgument naming the field.
api::Result<std::pair<std::string, api::Resources>> decodeQuotaBody(const std::string& text);

/// Mesos's QuotaStatus JSON: `{"infos":[{"role":"r","guarantee":[...]}]}`.
std::string encodeQuotas(const std::map<std::string, api::Resources>& quotas);

/// Decodes what encodeQuotas() wrote (the registry's quota), with the registry's rules.
api::Result<std::map<std::string, api::Resources>> decodeQuotas(const std::string& text);

}  // namespace tessera::kernel::master::policy
