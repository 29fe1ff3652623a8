// The scheduler API's JSON, both ways: a framework's `POST /api/v1/scheduler` body as the master
// reads it (a v1 scheduler Call, and an ACCEPT's second reading as AcceptedOperations), and the
// master's events as the framework driver reads them (a v1 scheduler Event).
//
// Properties: parsing never crashes; what parses prints to v1 JSON that parses back equal.

#include "fuzz/v1_roundtrip.h"
#include "kernel/protocol/internal.pb.h"
#include "tessera/v1/scheduler.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json = tessera::fuzz::text(data, size);
  tessera::fuzz::v1RoundTrip(json, tessera::v1::scheduler::Call::default_instance());
  tessera::fuzz::v1RoundTrip(json, tessera::internal::AcceptedOperations::default_instance());
  tessera::fuzz::v1RoundTrip(json, tessera::v1::scheduler::Event::default_instance());
  return 0;
}
