#pragma once

// What the reservation and authorization tests share: the dynamic reservation they make and
// the ACCEPT call that reserves or unreserves it.

#include <fmt/format.h>

#include <string>

#include "tests/master/master_fixture.h"

namespace tessera::kernel::master::testing {

/// 2 cpus reserved dynamically to "web" by principal "p", as v1 JSON.
inline constexpr const char* kReservedCpus =
    R"([{"name":"cpus","type":"SCALAR","scalar":{"value":2},)"
    R"("reservations":[{"type":"DYNAMIC","role":"web","principal":"p"}]}])";

/// An ACCEPT of the first of `offers` by `scheduler` with one operation `type` (RESERVE or
/// UNRESERVE; `field` its lower-case message name) of kReservedCpus, refusing for 0 seconds.
inline std::string operationJson(const TestScheduler& scheduler, const Event& offers,
                                 const char* type, const char* field) {
  return fmt::format(
      R"({{"framework_id":{{"value":"{}"}},"type":"ACCEPT","accept":{{"offer_ids":[{{"value":"{}"}}],)"
      R"("operations":[{{"type":"{}","{}":{{"resources":{}}}}}],"filters":{{"refuse_seconds":0}}}}}})",
      scheduler.frameworkId, offers.offers().offers(0).id().value(), type, field, kReservedCpus);
}

}  // namespace tessera::kernel::master::testing
