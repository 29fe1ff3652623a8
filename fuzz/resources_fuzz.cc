// Resource strings: an agent's --resources, an operator's quota and reservation bodies, and
// every `resources` a framework sends through Mesos's JSON form (Resources::parse).
//
// Properties: parse() never crashes, and what it accepts prints (text and JSON) to something
// that parses back to an equal value.

#include "fuzz/fuzz_check.h"
#include "tessera/api/resources.h"

using tessera::api::Resources;
using tessera::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input = tessera::fuzz::text(data, size);
  for (std::string_view role : {"*", "eng/web"}) {
    auto parsed = Resources::parse(input, role);
    if (!parsed) continue;
    auto again = Resources::parse(parsed->toString());
    check(static_cast<bool>(again), "toString() of parsed resources does not parse");
    check(*again == *parsed, "toString() does not parse back to an equal value");
    auto fromJson = Resources::parse(parsed->toJson());
    check(static_cast<bool>(fromJson), "toJson() of parsed resources does not parse");
    check(*fromJson == *parsed, "toJson() does not parse back to an equal value");
  }
  return 0;
}
