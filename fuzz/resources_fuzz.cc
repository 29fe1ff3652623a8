// Resource strings: an agent's --resources, an operator's quota and reservation bodies, and
// every `resources` a framework sends through Mesos's JSON form (Resources::parse).
//
// Properties: parse() never crashes, and what it accepts prints (text and JSON) to something
// that parses back to an equal value. JSON holds a scalar as a double (as Mesos does), which is
// exact to the 0.001 resolution only below 2^50 thousandths (about 10^12): the JSON round trip
// is checked for values that small, the text one for all.

#include "fuzz/fuzz_check.h"
#include "tessera/api/resources.h"

using tessera::api::Resources;
using tessera::fuzz::check;

namespace {

constexpr int64_t kExactInJson = int64_t{1} << 50;

bool exactInJson(const Resources& resources) {
  bool exact = true;
  resources.forEachScalar(
      [&](std::string_view, int64_t millis) { exact = exact && millis < kExactInJson; });
  return exact;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input = tessera::fuzz::text(data, size);
  for (std::string_view role : {"*", "eng/web"}) {
    auto parsed = Resources::parse(input, role);
    if (!parsed) continue;
    auto again = Resources::parse(parsed->toString());
    check(static_cast<bool>(again), "toString() of parsed resources does not parse");
    check(*again == *parsed, "toString() does not parse back to an equal value");
    if (!exactInJson(*parsed)) continue;
    auto fromJson = Resources::parse(parsed->toJson());
    check(static_cast<bool>(fromJson), "toJson() of parsed resources does not parse");
    check(*fromJson == *parsed, "toJson() does not parse back to an equal value");
  }
  return 0;
}
