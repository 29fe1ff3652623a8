// Role weights and quota: GET/PUT /weights, GET/POST /quota, DELETE /quota/<role>, kept in the
// registry across a master restart and applied to the (real DRF) allocator.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/master/master_fixture.h"

namespace tessera::kernel::master::testing {
namespace {

class PolicyTest : public MasterFixture {
 protected:
  net::ClientResponse request(const std::string& method, const std::string& path,
                              const std::string& body = "") {
    auto response = net::httpRequest(method, "127.0.0.1", httpPort(), path,
                                     {{"Content-Type", "application/json"}}, body, 10s);
    EXPECT_TRUE(response.isOk()) << response.status().toString();
    return response.isOk() ? *response : net::ClientResponse{};
  }
  /// The body of GET `path`.
  std::string get(const std::string& path) {
    auto response = request("GET", path);
    EXPECT_EQ(response.status, 200) << response.body;
    return response.body;
  }
  /// `role` -> weight from GET /weights.
  std::map<std::string, double> weights() {
    std::map<std::string, double> result;
    Poco::JSON::Parser parser;
    auto array = parser.parse(get("/weights")).extract<Poco::JSON::Array::Ptr>();
    for (size_t i = 0; i < array->size(); ++i) {
      auto entry = array->getObject(static_cast<unsigned>(i));
      result[entry->getValue<std::string>("role")] = entry->getValue<double>("weight");
    }
    return result;
  }
  /// `role` -> guarantee (text form) from GET /quota.
  std::map<std::string, std::string> quotas() {
    std::map<std::string, std::string> result;
    Poco::JSON::Parser parser;
    auto object = parser.parse(get("/quota")).extract<Poco::JSON::Object::Ptr>();
    auto infos = object->getArray("infos");
    EXPECT_TRUE(infos);
    if (!infos) return result;
    for (size_t i = 0; i < infos->size(); ++i) {
      auto info = infos->getObject(static_cast<unsigned>(i));
      std::ostringstream guarantee;
      info->getArray("guarantee")->stringify(guarantee);
      auto resources = api::Resources::parse(guarantee.str());
      EXPECT_TRUE(resources.isOk()) << guarantee.str();
      result[info->getValue<std::string>("role")] = resources.isOk() ? resources->toString() : "";
    }
    return result;
  }
  /// Expects a 400 whose JSON body has a non-empty `message`; returns the message.
  std::string expectBadRequest(const net::ClientResponse& response, int status = 400) {
    EXPECT_EQ(response.status, status) << response.body;
    Poco::JSON::Parser parser;
    auto object = parser.parse(response.body).extract<Poco::JSON::Object::Ptr>();
    std::string message = object->optValue<std::string>("message", "");
    EXPECT_FALSE(message.empty()) << response.body;
    return message;
  }

  static constexpr const char* kWebQuota =
      R"({"role":"web","guarantee":[{"name":"cpus","type":"SCALAR","scalar":{"value":3}},)"
      R"({"name":"mem","type":"SCALAR","scalar":{"value":512}}],"force":true})";
};

TEST_F(PolicyTest, WeightsAreSetReadBackAndBadInputChangesNothing) {
  startMaster();
  EXPECT_TRUE(weights().empty());
  auto put =
      request("PUT", "/weights", R"([{"role":"web","weight":2.5},{"role":"ops","weight":1}])");
  EXPECT_EQ(put.status, 200) << put.body;
  // A later PUT changes the roles it names and keeps the others.
  put = request("PUT", "/master/weights", R"([{"role":"ops","weight":4}])");
  EXPECT_EQ(put.status, 200) << put.body;
  const std::map<std::string, double> expected = {{"web", 2.5}, {"ops", 4}};
  EXPECT_EQ(weights(), expected);

  for (const char* body :
       {"not json", R"({"role":"web","weight":3})", R"([{"role":"web","weight":0}])",
        R"([{"role":"web","weight":-1}])", R"([{"role":"a//b","weight":2}])", R"([{"role":"web"}])",
        R"([{"role":"web","weight":"3"}])", R"([{"role":7,"weight":3}])",
        // One bad entry: the good one is not applied either.
        R"([{"role":"new","weight":3},{"role":"..","weight":3}])"}) {
    SCOPED_TRACE(body);
    expectBadRequest(request("PUT", "/weights", body));
  }
  EXPECT_EQ(weights(), expected);
}

TEST_F(PolicyTest, QuotaIsSetReadBackRemovedAndBadInputChangesNothing) {
  startMaster();
  EXPECT_TRUE(quotas().empty());
  auto posted = request("POST", "/quota", kWebQuota);
  EXPECT_EQ(posted.status, 200) << posted.body;
  const std::map<std::string, std::string> expected = {{"web", "cpus:3;mem:512"}};
  EXPECT_EQ(quotas(), expected);

  // Mesos: a role with quota must be DELETEd before it gets a new one.
  expectBadRequest(request("POST", "/quota", kWebQuota));
  for (const char* body :
       {"not json", "[]", R"({"guarantee":[]})", R"({"role":"ops"})",
        R"({"role":"ops","guarantee":[]})",
        R"({"role":"*","guarantee":[{"name":"cpus","type":"SCALAR","scalar":{"value":1}}]})",
        R"({"role":"a//b","guarantee":[{"name":"cpus","type":"SCALAR","scalar":{"value":1}}]})",
        R"({"role":"ops","guarantee":[{"name":"cpus","type":"SCALAR","scalar":{"value":-1}}]})",
        R"({"role":"ops","guarantee":[{"name":"ports","type":"RANGES",)"
        R"("ranges":{"range":[{"begin":1,"end":2}]}}]})",
        R"({"role":"ops","guarantee":[{"name":"cpus","type":"SCALAR","scalar":{"value":1},)"
        R"("reservations":[{"type":"STATIC","role":"ops"}]}]})"}) {
    SCOPED_TRACE(body);
    expectBadRequest(request("POST", "/quota", body));
  }
  expectBadRequest(request("DELETE", "/quota/ops"));  // no quota: Mesos's 400
  expectBadRequest(request("DELETE", "/quota/"));
  EXPECT_EQ(quotas(), expected);

  auto removed = request("DELETE", "/master/quota/web");
  EXPECT_EQ(removed.status, 200) << removed.body;
  EXPECT_TRUE(quotas().empty());
  // Once removed, it can be set again; hierarchical roles work in the path.
  posted = request("POST", "/quota", kWebQuota);
  EXPECT_EQ(posted.status, 200) << posted.body;
  posted = request(
      "POST", "/quota",
      R"({"role":"eng/web","guarantee":[{"name":"cpus","type":"SCALAR","scalar":{"value":1}}]})");
  EXPECT_EQ(posted.status, 200) << posted.body;
  EXPECT_EQ(quotas().size(), 2u);
  removed = request("DELETE", "/quota/eng/web");
  EXPECT_EQ(removed.status, 200) << removed.body;
  EXPECT_EQ(quotas(), expected);
}

// Set through HTTP, the weights and quota are in the registry: a master restarted on the same
// store serves them and its (new) allocator holds the quota's headroom back from other roles.
TEST_F(PolicyTest, WeightsAndQuotaSurviveARestartAndReachTheAllocator) {
  TempDir dir;
  useFileStore(dir.path());
  options.weights = {{"flag", 3}};  // --weights: shown until the registry holds weights
  startMaster();
  EXPECT_EQ(weights(), (std::map<std::string, double>{{"flag", 3}}));
  EXPECT_EQ(request("PUT", "/weights", R"([{"role":"web","weight":2}])").status, 200);
  EXPECT_EQ(request("POST", "/quota", kWebQuota).status, 200);

  // Weights set through the endpoint win over --weights, even a changed one.
  options.weights = {{"flag", 5}};
  restartMaster();
  EXPECT_EQ(weights(), (std::map<std::string, double>{{"flag", 3}, {"web", 2}}));
  EXPECT_EQ(quotas(), (std::map<std::string, std::string>{{"web", "cpus:3;mem:512"}}));

  // Of the agent's 4 cpus, 3 are held for web's unmet guarantee: a framework in another role
  // is offered 1.
  auto agent = makeAgent();
  ASSERT_FALSE(agent->registerAgent().empty());
  auto scheduler = makeScheduler();
  ASSERT_EQ(
      scheduler->subscribe(
          R"({"user":"test","name":"fw","roles":["other"],"capabilities":[{"type":"MULTI_ROLE"}]})"),
      200);
  auto offers = scheduler->next(Event::OFFERS);
  ASSERT_TRUE(offers.has_value());
  api::Resources offered;
  for (const auto& offer : offers->offers().offers()) {
    auto resources = api::Resources::fromProto(offer.resources());
    ASSERT_TRUE(resources.isOk());
    offered += *resources;
  }
  EXPECT_DOUBLE_EQ(offered.flatten().scalar("cpus"), 1.0) << offered.toString();
  EXPECT_DOUBLE_EQ(offered.flatten().scalar("mem"), 4096.0 - 512.0) << offered.toString();
}

// Issue #20: what Mesos refuses is refused with a 400 naming the field, and changes nothing.
TEST_F(PolicyTest, WeightsRefuseBoolsBadRolesAndRepeatsNamingTheField) {
  startMaster();
  ASSERT_EQ(request("PUT", "/weights", R"([{"role":"web","weight":2}])").status, 200);
  const std::map<std::string, double> expected = {{"web", 2}};
  const std::string longRole(100 * 1024, 'r');
  struct Case {
    std::string body;
    std::string field;  // what the message must name
  };
  const Case cases[] = {
      {R"([{"role":"web","weight":true}])", "'[0].weight'"},
      {R"([{"role":"ops","weight":1},{"role":"web","weight":false}])", "'[1].weight'"},
      {R"([{"role":"web","weight":null}])", "'[0].weight'"},
      {R"([{"role":"web","weight":[2]}])", "'[0].weight'"},
      {R"([{"role":"we\u0000b","weight":2}])", "'[0].role'"},
      {R"([{"role":"web\u0007","weight":2}])", "'[0].role'"},
      {R"([{"role":"web\u007f","weight":2}])", "'[0].role'"},
      {R"([{"role":"*","weight":2}])", "'[0].role'"},
      {R"([{"role":"-web","weight":2}])", "'[0].role'"},
      {R"([{"role":"eng/.","weight":2}])", "'[0].role'"},
      {R"([{"role":")" + longRole + R"(","weight":2}])", "'[0].role'"},
      {R"([{"role":"ops","weight":2},{"role":"ops","weight":3}])", "'[1].role'"},
      {R"([7])", "'[0]'"},
      {"not json", "not valid JSON"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body.substr(0, 80));
    std::string message = expectBadRequest(request("PUT", "/weights", c.body));
    EXPECT_THAT(message, ::testing::HasSubstr(c.field));
    EXPECT_LT(message.size(), 400u) << "the message does not echo a long role";
    EXPECT_EQ(weights(), expected);
  }
  // A role of exactly the limit, and one in UTF-8, are fine.
  const std::string longest(255, 'r');
  EXPECT_EQ(request("PUT", "/weights", R"([{"role":")" + longest + R"(","weight":3}])").status,
            200);
  EXPECT_EQ(request("PUT", "/weights", R"([{"role":"\u00e9quipe","weight":4}])").status, 200);
  EXPECT_EQ(weights(),
            (std::map<std::string, double>{{"web", 2}, {longest, 3}, {"\xc3\xa9quipe", 4}}));
}

TEST_F(PolicyTest, QuotaRefusesARepeatedResourceAndBadRolesNamingTheField) {
  startMaster();
  ASSERT_EQ(request("POST", "/quota", kWebQuota).status, 200);
  const std::map<std::string, std::string> expected = {{"web", "cpus:3;mem:512"}};
  const std::string cpus = R"({"name":"cpus","type":"SCALAR","scalar":{"value":1}})";
  auto quota = [&](const std::string& role, const std::string& guarantee) {
    return R"({"role":")" + role + R"(","guarantee":[)" + guarantee + "]}";
  };
  struct Case {
    std::string body;
    std::string field;
  };
  const Case cases[] = {
      // Summed today: 2 cpus. Refused, naming the resource and where it is repeated.
      {quota("ops", cpus + "," + R"({"name":"mem","type":"SCALAR","scalar":{"value":8}},)" + cpus),
       "'guarantee[2].name': resource 'cpus'"},
      {quota("o\\u0000ps", cpus), "'role'"},
      {quota("ops\\n", cpus), "'role'"},
      {quota("*", cpus), "'role'"},
      {quota(std::string(100 * 1024, 'q'), cpus), "'role'"},
      {quota("ops", "7"), "'guarantee[0]'"},
      {quota("ops", R"({"type":"SCALAR","scalar":{"value":1}})"), "'guarantee[0].name'"},
      {R"({"role":true,"guarantee":[]})", "'role'"},
      {R"({"role":"ops","guarantee":{}})", "'guarantee'"},
      {"{oops", "not valid JSON"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body.substr(0, 80));
    std::string message = expectBadRequest(request("POST", "/quota", c.body));
    EXPECT_THAT(message, ::testing::HasSubstr(c.field));
    EXPECT_LT(message.size(), 400u);
    EXPECT_EQ(quotas(), expected);
  }
  std::string message = expectBadRequest(request("DELETE", "/quota/*"));
  EXPECT_THAT(message, ::testing::HasSubstr("'role'"));
  EXPECT_EQ(quotas(), expected);
}

// A request whose result would not fit in the registry is the client's to fix: 413 with a
// message, never the 503 of a registry that cannot be written (which invites a retry).
TEST_F(PolicyTest, PolicyTooLargeForTheRegistryIs413AndChangesNothing) {
  startMaster();
  ASSERT_EQ(request("PUT", "/weights", R"([{"role":"web","weight":2}])").status, 200);
  ASSERT_EQ(request("POST", "/quota", kWebQuota).status, 200);
  const std::map<std::string, double> expectedWeights = {{"web", 2}};
  const std::map<std::string, std::string> expectedQuotas = {{"web", "cpus:3;mem:512"}};

  // 6000 valid roles of 240 bytes: about 1.5 MB, under the server's body limit.
  std::string weightsBody = "[";
  for (int i = 0; i < 6000; ++i) {
    if (i > 0) weightsBody += ",";
    weightsBody += fmt::format(R"({{"role":"{:0>240}","weight":1}})", i);
  }
  weightsBody += "]";
  auto put = request("PUT", "/weights", weightsBody);
  std::string message = expectBadRequest(put, 413);
  EXPECT_THAT(message, ::testing::HasSubstr("weights"));
  EXPECT_FALSE(put.header("Retry-After").has_value());
  EXPECT_EQ(weights(), expectedWeights);

  // 2000 scalars with names of 600 bytes: about 1.3 MB of guarantee.
  std::string guarantee;
  for (int i = 0; i < 2000; ++i) {
    if (i > 0) guarantee += ",";
    guarantee += fmt::format(R"({{"name":"r{:0>600}","type":"SCALAR","scalar":{{"value":1}}}})", i);
  }
  message = expectBadRequest(
      request("POST", "/quota", R"({"role":"ops","guarantee":[)" + guarantee + "]}"), 413);
  EXPECT_THAT(message, ::testing::HasSubstr("quota"));
  EXPECT_EQ(quotas(), expectedQuotas);
}

TEST_F(PolicyTest, WeightsFlagParsing) {
  auto parsed = parseWeightsFlag("web=2,ops=0.5");
  ASSERT_TRUE(parsed.isOk()) << parsed.status().toString();
  EXPECT_EQ(*parsed, (std::map<std::string, double>{{"web", 2}, {"ops", 0.5}}));
  EXPECT_TRUE(parseWeightsFlag("")->empty());
  for (const char* bad : {"web", "web=", "web=x", "web=0", "web=-1", "a//b=2", "web=2x", "*=2"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(parseWeightsFlag(bad).isOk());
  }
}

}  // namespace
}  // namespace tessera::kernel::master::testing
