// Strings from the network must be text (#20): a scheduler, operator or agent message holding a
// string that is not well-formed UTF-8 is refused naming the field, and whatever the master has
// stored, every JSON it answers with is one a strict parser accepts.

#include <gmock/gmock.h>

#include "tessera/api/json.h"
#include "tests/master/master_fixture.h"

namespace tessera::kernel::master::testing {
namespace {

using ::testing::HasSubstr;

constexpr const char* kBad = "\xc3\x28";  // a two-byte lead followed by '('

class Utf8Test : public MasterFixture {
 protected:
  // GET `path`: 200 and a body that is UTF-8 and parses with Poco's (UTF-8-checking) parser.
  void expectValidJson(const std::string& path) {
    auto response = net::httpRequest("GET", "127.0.0.1", httpPort(), path, {}, "", 10s);
    ASSERT_TRUE(response.isOk()) << path;
    EXPECT_EQ(response->status, 200) << path << ": " << response->body;
    expectStrictJson(response->body, path);
  }
  static void expectStrictJson(const std::string& body, const std::string& what) {
    EXPECT_TRUE(api::isValidUtf8(body)) << what;
    EXPECT_NO_THROW(Poco::JSON::Parser().parse(body)) << what << ": " << body;
  }
  net::ClientResponse operatorCall(const std::string& body) { return post("/api/v1", body); }
};

TEST_F(Utf8Test, SubscribeWithANonUtf8FrameworkNameIsRefusedAndStateStaysValidJson) {
  startMaster();
  auto agent = makeAgent();
  ASSERT_FALSE(agent->registerAgent().empty());
  auto scheduler = makeScheduler();
  EXPECT_EQ(scheduler->subscribe(fmt::format(R"({{"user":"test","name":"{}"}})", kBad)), 400);
  EXPECT_THAT(scheduler->errorBody, HasSubstr("field 'subscribe.framework_info.name'"));
  EXPECT_THAT(scheduler->errorBody, HasSubstr("not valid UTF-8"));
  scheduler->disconnect();
  // The same bytes as a lone surrogate escape.
  auto escaped = makeScheduler();
  EXPECT_EQ(escaped->subscribe(R"({"user":"test","name":"\udc00x"})"), 400);
  EXPECT_THAT(escaped->errorBody, HasSubstr("field 'subscribe.framework_info.name'"));
  escaped->disconnect();

  for (const char* path : {"/frameworks", "/state", "/state-summary", "/tasks", "/slaves"}) {
    expectValidJson(path);
  }
  for (const char* type : {"GET_STATE", "GET_FRAMEWORKS", "GET_TASKS", "GET_AGENTS"}) {
    auto response = operatorCall(fmt::format(R"({{"type":"{}"}})", type));
    EXPECT_EQ(response.status, 200) << type << ": " << response.body;
    expectStrictJson(response.body, type);
  }
  EXPECT_EQ(getJson("/frameworks")->getArray("frameworks")->size(), 0u);
}

TEST_F(Utf8Test, ALaunchWithANonUtf8TaskNameIsRefused) {
  startMaster();
  auto agent = makeAgent();
  ASSERT_FALSE(agent->registerAgent().empty());
  auto scheduler = makeScheduler();
  ASSERT_EQ(scheduler->subscribe(kFrameworkInfo), 200);
  auto offers = scheduler->next(Event::OFFERS);
  ASSERT_TRUE(offers.has_value());
  const std::string offerId = offers->offers().offers(0).id().value();
  auto accept = [&](const std::string& name, const std::string& id) {
    return scheduler->call(fmt::format(
        R"({{"framework_id":{{"value":"{}"}},"type":"ACCEPT","accept":{{"offer_ids":[{{"value":"{}"}}],)"
        R"("operations":[{{"type":"LAUNCH","launch":{{"task_infos":[{{"name":"{}","task_id":{{"value":"{}"}},)"
        R"("agent_id":{{"value":"{}"}},"resources":{},"command":{{"value":"sleep 100"}}}}]}}}}]}}}})",
        scheduler->frameworkId, offerId, name, id, agent->id,
        api::Resources::parse("cpus:1;mem:128").value().toJson()));
  };
  auto refused = accept(fmt::format("web{}", kBad), "t-bad");
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_THAT(refused.body, HasSubstr("field 'accept.operations[0].launch.task_infos[0].name'"));
  expectStrictJson(refused.body, "the refusal");
  // The offer is untouched: a good launch of it is the first task the agent is asked to run.
  EXPECT_EQ(accept("web", "t-good").status, 202);
  auto run = agent->received.take([](const internal::Envelope& e) { return e.has_run_task(); });
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(run->run_task().task().task_id().value(), "t-good");
  expectValidJson("/state");
  expectValidJson("/tasks");
}

TEST_F(Utf8Test, OperatorCallsWithNonUtf8OrDeepBodiesAreRefusedNamingTheProblem) {
  startMaster();
  auto bad = operatorCall(fmt::format(
      R"({{"type":"MARK_AGENT_GONE","mark_agent_gone":{{"agent_id":{{"value":"{}"}}}}}})", kBad));
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("field 'mark_agent_gone.agent_id.value' is not valid UTF-8"));
  expectStrictJson(bad.body, "the refusal");

  auto badKey = operatorCall(fmt::format(R"({{"type":"GET_HEALTH","{}":1}})", kBad));
  EXPECT_EQ(badKey.status, 400);
  EXPECT_THAT(badKey.body, HasSubstr("member name"));

  // Deeper than the kernel's limit but within Poco's own: refused by the kernel's check.
  std::string deep =
      R"({"type":"GET_HEALTH","x":)" + std::string(100, '[') + std::string(100, ']') + "}";
  auto nested = operatorCall(deep);
  EXPECT_EQ(nested.status, 400);
  EXPECT_THAT(nested.body, HasSubstr("nested too deeply"));
  EXPECT_EQ(operatorCall(R"({"type":"GET_HEALTH","x":[[["ok"]]]})").status, 200);
}

TEST_F(Utf8Test, DeeplyNestedPolicyBodiesAreRefusedWithoutHarm) {
  startMaster();
  std::string deep = std::string(200000, '[') + std::string(200000, ']');
  auto response = net::httpRequest("PUT", "127.0.0.1", httpPort(), "/weights",
                                   {{"Content-Type", "application/json"}}, deep, 10s);
  ASSERT_TRUE(response.isOk());
  EXPECT_EQ(response->status, 400) << response->body;
  expectValidJson("/state");
}

TEST_F(Utf8Test, AnAgentRegisteringWithANonUtf8HostnameIsRefused) {
  startMaster();
  FakeAgent agent(runtime_, master_->transportPort());
  agent.start();
  internal::Envelope envelope;
  auto& message = *envelope.mutable_register_agent();
  message.mutable_agent_info()->set_hostname(kBad);
  *message.mutable_agent_info()->mutable_resources() =
      api::Resources::parse("cpus:1;mem:128").value().toProto();
  message.set_version("0.1.0");
  message.set_pid("slave(1)@127.0.0.1:5051");
  ASSERT_TRUE(agent.send(envelope));
  auto reply = agent.received.take([](const internal::Envelope& e) {
    return e.has_agent_registered() || e.has_agent_refused();
  });
  ASSERT_TRUE(reply.has_value());
  ASSERT_TRUE(reply->has_agent_refused());
  EXPECT_THAT(reply->agent_refused().message(),
              HasSubstr("field 'register_agent.agent_info.hostname' is not valid UTF-8"));
  EXPECT_EQ(getJson("/slaves")->getArray("slaves")->size(), 0u);
}

}  // namespace
}  // namespace tessera::kernel::master::testing
