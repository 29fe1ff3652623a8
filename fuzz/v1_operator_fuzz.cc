// The operator API's JSON: a `POST /api/v1` body read the way the master's operatorCall() reads
// it (Poco's parser, then the call's `type` and its fields), and the v1 messages operators and
// peers hand the master as JSON (resources, agent, master, framework, task and container infos).
//
// Properties: parsing never crashes or throws past the reader; what parses as v1 JSON prints to
// JSON that parses back equal.

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <exception>
#include <string>

#include "fuzz/v1_roundtrip.h"
#include "tessera/v1/messages.pb.h"

namespace {

// What Core::operatorCall() and its handlers do with a body (kernel/master/master_http.cc).
void readOperatorCall(const std::string& body) {
  Poco::JSON::Object::Ptr call;
  try {
    Poco::JSON::Parser parser;
    call = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
    (void)call->optValue<std::string>("type", "");
  } catch (const std::exception&) {
    return;  // answered 400
  }
  auto mark = call->getObject("mark_agent_gone");
  auto id = mark ? mark->getObject("agent_id") : nullptr;
  if (id) (void)id->optValue<std::string>("value", "");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json = tessera::fuzz::text(data, size);
  readOperatorCall(std::string(json));
  using namespace tessera::v1;
  tessera::fuzz::v1RoundTrip(json, Resource::default_instance());
  tessera::fuzz::v1RoundTrip(json, AgentInfo::default_instance());
  tessera::fuzz::v1RoundTrip(json, MasterInfo::default_instance());
  tessera::fuzz::v1RoundTrip(json, FrameworkInfo::default_instance());
  tessera::fuzz::v1RoundTrip(json, TaskInfo::default_instance());
  tessera::fuzz::v1RoundTrip(json, ContainerInfo::default_instance());
  return 0;
}
