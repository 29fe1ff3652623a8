// The master's role policy bodies: `PUT /weights` and `POST /quota` as an operator sends them,
// and the registry's weights and quota as a master reads them back at start
// (kernel/master/policy_codec.h).
//
// Properties: no decoder crashes; what a request decoder accepts, encoded as the master stores
// it, decodes again (with the registry's rules, which are looser) to an equal value; a weight
// accepted is positive and finite, a quota guarantee is not empty.

#include <cmath>
#include <map>
#include <string>

#include "fuzz/fuzz_check.h"
#include "kernel/master/policy_codec.h"

namespace policy = tessera::kernel::master::policy;
using tessera::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(tessera::fuzz::text(data, size));

  if (auto weights = policy::decodeWeights(input, "the body", policy::Source::kRequest)) {
    for (const auto& [role, weight] : *weights) {
      check(std::isfinite(weight) && weight > 0, "an accepted weight is not positive and finite");
    }
    auto stored = policy::decodeWeights(policy::encodeWeights(*weights), "the registry's weights",
                                        policy::Source::kRegistry);
    check(static_cast<bool>(stored), "accepted weights, as stored, do not decode");
    check(*stored == *weights, "accepted weights, as stored, decode to other weights");
  }
  // The registry's reader takes what is stored whatever its source: it must not crash either.
  (void)policy::decodeWeights(input, "the registry's weights", policy::Source::kRegistry);

  if (auto quota = policy::decodeQuotaBody(input)) {
    check(!quota->second.empty(), "an accepted quota guarantee is empty");
    std::map<std::string, tessera::api::Resources> quotas{{quota->first, quota->second}};
    auto stored = policy::decodeQuotas(policy::encodeQuotas(quotas));
    check(static_cast<bool>(stored), "an accepted quota, as stored, does not decode");
    check(*stored == quotas, "an accepted quota, as stored, decodes to another quota");
  }
  (void)policy::decodeQuotas(input);
  return 0;
}
