#include "kernel/net/v1_json.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "tessera/v1/messages.pb.h"
#include "tessera/v1/scheduler.pb.h"

namespace tessera::kernel::net {
namespace {

using google::protobuf::util::MessageDifferencer;
using tessera::v1::Resource;
using tessera::v1::TaskState;
using tessera::v1::TaskStatus;
using tessera::v1::Value;
using tessera::v1::scheduler::Call;
using tessera::v1::scheduler::Event;

V1JsonParseOptions strictOptions() {
  V1JsonParseOptions options;
  options.rejectUnknownFields = true;
  return options;
}

V1JsonParseOptions collecting(std::vector<std::string>* ignored) {
  V1JsonParseOptions options;
  options.ignoredFields = ignored;
  return options;
}

V1JsonPrintOptions noDefaults() {
  V1JsonPrintOptions options;
  options.includeDefaults = false;
  return options;
}

// Round trip without defaults, so presence bits survive exactly.
template <typename Msg>
Msg roundTrip(const Msg& in) {
  std::string json = messageToV1Json(in, noDefaults());
  auto out = parseV1Json<Msg>(json);
  EXPECT_TRUE(out.isOk()) << out.status().toString() << " in " << json;
  return out.isOk() ? *out : Msg();
}

TEST(V1JsonTest, SubscribeCallUsesSnakeCaseAndEnumNames) {
  Call call;
  call.set_type(Call::SUBSCRIBE);
  auto* info = call.mutable_subscribe()->mutable_framework_info();
  info->set_user("root");
  info->set_name("sleeper");
  info->set_failover_timeout(604800.5);
  info->set_checkpoint(true);
  info->add_roles("web");
  info->add_capabilities()->set_type(tessera::v1::FrameworkInfo::Capability::PARTITION_AWARE);
  call.mutable_subscribe()->add_suppressed_roles("batch");

  std::string json = messageToV1Json(call, noDefaults());
  EXPECT_EQ(json,
            R"({"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"sleeper",)"
            R"("failover_timeout":604800.5,"checkpoint":true,"roles":["web"],)"
            R"("capabilities":[{"type":"PARTITION_AWARE"}]},"suppressed_roles":["batch"]}})");
  EXPECT_TRUE(MessageDifferencer::Equals(call, roundTrip(call)));
}

TEST(V1JsonTest, DefaultsAreWrittenAsMesosDoes) {
  Resource cpus;
  cpus.set_name("cpus");
  cpus.set_type(Value::SCALAR);
  cpus.mutable_scalar()->set_value(0.1);
  // `role` has [default = "*"], and Mesos writes such unset fields with their default.
  EXPECT_EQ(messageToV1Json(cpus),
            R"({"name":"cpus","type":"SCALAR","scalar":{"value":0.1},"role":"*"})");
  EXPECT_EQ(messageToV1Json(cpus, noDefaults()),
            R"({"name":"cpus","type":"SCALAR","scalar":{"value":0.1}})");
  // Deprecated fields with defaults are not (FrameworkInfo.role has none; checkpoint has one).
  tessera::v1::FrameworkInfo info;
  EXPECT_EQ(messageToV1Json(info), R"({"failover_timeout":0,"checkpoint":false})");
}

TEST(V1JsonTest, PortRangesAreNumbersEvenAbove2To53) {
  Resource ports;
  ports.set_name("ports");
  ports.set_type(Value::RANGES);
  auto* r1 = ports.mutable_ranges()->add_range();
  r1->set_begin(31000);
  r1->set_end(32000);
  auto* r2 = ports.mutable_ranges()->add_range();
  r2->set_begin((uint64_t{1} << 53) + 1);  // not representable as a double
  r2->set_end(std::numeric_limits<uint64_t>::max());

  std::string json = messageToV1Json(ports, noDefaults());
  EXPECT_EQ(json,
            R"({"name":"ports","type":"RANGES","ranges":{"range":[{"begin":31000,"end":32000},)"
            R"({"begin":9007199254740993,"end":18446744073709551615}]}})");
  Resource back = roundTrip(ports);
  EXPECT_EQ(back.ranges().range(1).begin(), (uint64_t{1} << 53) + 1);
  EXPECT_EQ(back.ranges().range(1).end(), std::numeric_limits<uint64_t>::max());
}

TEST(V1JsonTest, IntegersAcceptedAsStringsAndIntegralFloats) {
  auto r = parseV1Json<Value::Range>(R"({"begin":"31000","end":3.2e4})");
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(r->begin(), 31000u);
  EXPECT_EQ(r->end(), 32000u);
}

TEST(V1JsonTest, OutOfRangeAndFractionalIntegersAreRejected) {
  auto tooBig = parseV1Json<Value::Range>(R"({"begin":18446744073709551616})");
  ASSERT_FALSE(tooBig.isOk());
  EXPECT_EQ(tooBig.status().code(), api::StatusCode::kInvalidArgument);
  EXPECT_NE(tooBig.status().message().find("field 'begin'"), std::string::npos)
      << tooBig.status().message();
  EXPECT_FALSE(parseV1Json<Value::Range>(R"({"begin":-1})").isOk());
  EXPECT_FALSE(parseV1Json<Value::Range>(R"({"begin":1.5})").isOk());
  EXPECT_FALSE(parseV1Json<Value::Range>(R"({"begin":1.8446744073709552e19})").isOk());
  EXPECT_FALSE(parseV1Json<tessera::v1::Address>(R"({"port":2147483648})").isOk());
  EXPECT_TRUE(parseV1Json<tessera::v1::Address>(R"({"port":-2147483648})").isOk());
  EXPECT_FALSE(parseV1Json<Value::Range>(R"({"begin":01})").isOk());
}

TEST(V1JsonTest, Int64AndDoubleFields) {
  tessera::v1::DurationInfo d;
  d.set_nanoseconds(std::numeric_limits<int64_t>::min());
  EXPECT_EQ(messageToV1Json(d), R"({"nanoseconds":-9223372036854775808})");
  EXPECT_TRUE(MessageDifferencer::Equals(d, roundTrip(d)));

  Event event;
  event.set_type(Event::SUBSCRIBED);
  event.mutable_subscribed()->set_heartbeat_interval_seconds(15);
  EXPECT_EQ(messageToV1Json(event),
            R"({"type":"SUBSCRIBED","subscribed":{"heartbeat_interval_seconds":15}})");
  Value::Scalar s;
  s.set_value(1e300);
  EXPECT_DOUBLE_EQ(roundTrip(s).value(), 1e300);
  s.set_value(0.1 + 0.2);
  EXPECT_EQ(roundTrip(s).value(), 0.1 + 0.2);  // exact: shortest round-trip printing
}

TEST(V1JsonTest, BytesAreStandardPaddedBase64) {
  // RFC 4648 §10 vectors.
  EXPECT_EQ(base64Encode(""), "");
  EXPECT_EQ(base64Encode("f"), "Zg==");
  EXPECT_EQ(base64Encode("fo"), "Zm8=");
  EXPECT_EQ(base64Encode("foo"), "Zm9v");
  EXPECT_EQ(base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    auto back = base64Decode(base64Encode(s));
    ASSERT_TRUE(back.isOk());
    EXPECT_EQ(*back, s);
  }
  EXPECT_FALSE(base64Decode("Zg=").isOk());
  EXPECT_FALSE(base64Decode("Z").isOk());
  EXPECT_FALSE(base64Decode("Zm9v-_==").isOk());
  EXPECT_FALSE(base64Decode("Zh==").isOk());  // non-zero trailing bits
  EXPECT_EQ(*base64Decode("Zg"), "f");        // unpadded is read

  // A status-update uuid: 16 raw bytes, including 0xff and 0xfb/0xbf (the '+' and '/' digits).
  Call call;
  call.set_type(Call::ACKNOWLEDGE);
  std::string uuid("\x00\xfb\xff\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xb0\xbf\xff", 16);
  call.mutable_acknowledge()->set_uuid(uuid);
  call.mutable_acknowledge()->mutable_task_id()->set_value("t1");
  std::string json = messageToV1Json(call);
  EXPECT_NE(json.find(R"("uuid":"APv/ECAwQFBgcICQoLC//w==")"), std::string::npos) << json;
  EXPECT_EQ(roundTrip(call).acknowledge().uuid(), uuid);

  auto bad = parseV1Json<Call>(R"({"acknowledge":{"uuid":"not base64!"}})");
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("field 'acknowledge.uuid'"), std::string::npos)
      << bad.status().message();
}

TEST(V1JsonTest, EnumsByName) {
  TaskStatus status;
  status.set_state(tessera::v1::TASK_RUNNING);
  status.set_source(TaskStatus::SOURCE_EXECUTOR);
  status.mutable_task_id()->set_value("t");
  std::string json = messageToV1Json(status);
  EXPECT_NE(json.find(R"("state":"TASK_RUNNING")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("source":"SOURCE_EXECUTOR")"), std::string::npos) << json;
  EXPECT_TRUE(MessageDifferencer::Equals(status, roundTrip(status)));

  // An unknown value reads as unset (as Mesos does for optional enums), or fails when strict.
  std::vector<std::string> ignored;
  auto lenient = parseV1Json<TaskStatus>(R"({"state":"TASK_EXPLODED"})", collecting(&ignored));
  ASSERT_TRUE(lenient.isOk());
  EXPECT_FALSE(lenient->has_state());
  EXPECT_EQ(ignored, std::vector<std::string>{"state"});
  auto strict = parseV1Json<TaskStatus>(R"({"state":"TASK_EXPLODED"})", strictOptions());
  ASSERT_FALSE(strict.isOk());
  EXPECT_EQ(strict.status().message(),
            "field 'state' has unknown value 'TASK_EXPLODED' for enum 'tessera.v1.TaskState'");
}

TEST(V1JsonTest, AcceptWithNestedRepeatedOperations) {
  Call call;
  call.mutable_framework_id()->set_value("fw-1");
  call.set_type(Call::ACCEPT);
  auto* accept = call.mutable_accept();
  accept->add_offer_ids()->set_value("o1");
  accept->add_offer_ids()->set_value("o2");
  auto* op = accept->add_operations();
  op->set_type(tessera::v1::Offer::Operation::LAUNCH);
  for (int i = 0; i < 2; ++i) {
    auto* task = op->mutable_launch()->add_task_infos();
    task->set_name(fmt::format("task \"{}\"\n", i));  // escapes
    task->mutable_task_id()->set_value(fmt::format("t{}", i));
    task->mutable_agent_id()->set_value("a1");
    task->mutable_command()->set_value("sleep 5");
    auto* env = task->mutable_command()->mutable_environment()->add_variables();
    env->set_name("K");
    env->set_value("v\u00e9\x01");
    auto* r = task->add_resources();
    r->set_name("cpus");
    r->set_type(Value::SCALAR);
    r->mutable_scalar()->set_value(0.5);
    task->set_data(std::string("\0\1\2", 3));
  }
  accept->mutable_filters()->set_refuse_seconds(1);
  Call back = roundTrip(call);
  EXPECT_TRUE(MessageDifferencer::Equals(call, back)) << call.DebugString() << "\n---\n"
                                                      << back.DebugString();
  // The default-including form also reads back, with the defaults now present.
  auto withDefaults = parseV1Json<Call>(messageToV1Json(call));
  ASSERT_TRUE(withDefaults.isOk());
  EXPECT_TRUE(MessageDifferencer::Equivalent(call, *withDefaults));
}

TEST(V1JsonTest, EveryEventTypeRoundTrips) {
  Event e;
  e.set_type(Event::UPDATE);
  auto* st = e.mutable_update()->mutable_status();
  st->mutable_task_id()->set_value("t");
  st->set_state(tessera::v1::TASK_FAILED);
  st->set_reason(TaskStatus::REASON_COMMAND_EXECUTOR_FAILED);
  st->set_message("exited with status 1");
  st->set_timestamp(1700000000.123456);
  st->set_uuid("0123456789abcdef");
  st->set_healthy(false);
  st->mutable_unreachable_time()->set_nanoseconds(1700000000123456789);
  auto* label = st->mutable_labels()->add_labels();
  label->set_key("k");
  label->set_value("");
  EXPECT_TRUE(MessageDifferencer::Equals(e, roundTrip(e)));

  Event f;
  f.set_type(Event::FAILURE);
  f.mutable_failure()->mutable_agent_id()->set_value("a");
  f.mutable_failure()->set_status(-9);
  EXPECT_TRUE(MessageDifferencer::Equals(f, roundTrip(f)));

  Event m;
  m.set_type(Event::MESSAGE);
  m.mutable_message()->set_data("hello");
  EXPECT_NE(messageToV1Json(m).find(R"("data":"aGVsbG8=")"), std::string::npos);
  EXPECT_TRUE(MessageDifferencer::Equals(m, roundTrip(m)));

  Event h;
  h.set_type(Event::HEARTBEAT);
  EXPECT_EQ(messageToV1Json(h), R"({"type":"HEARTBEAT"})");
}

TEST(V1JsonTest, NullIsAbsent) {
  auto call = parseV1Json<Call>(
      R"({"type":"DECLINE","framework_id":null,"decline":{"offer_ids":null,"filters":null}})");
  ASSERT_TRUE(call.isOk()) << call.status().toString();
  EXPECT_FALSE(call->has_framework_id());
  EXPECT_TRUE(call->has_decline());
  EXPECT_EQ(call->decline().offer_ids_size(), 0);
  EXPECT_FALSE(call->decline().has_filters());
  EXPECT_FALSE(parseV1Json<Call>(R"({"decline":{"offer_ids":[null]}})").isOk());
}

TEST(V1JsonTest, UnknownFieldsAreIgnoredAsMesosDoesOrRejectedWithTheirPath) {
  const std::string json =
      R"({"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n",)"
      R"("frameworkid":{"value":"x"},"offer_filters":{"a":[1,{"b":null}]}}},"extra":true})";
  std::vector<std::string> ignored;
  auto lenient = parseV1Json<Call>(json, collecting(&ignored));
  ASSERT_TRUE(lenient.isOk()) << lenient.status().toString();
  EXPECT_EQ(lenient->subscribe().framework_info().name(), "n");
  EXPECT_EQ(ignored, (std::vector<std::string>{"subscribe.framework_info.frameworkid",
                                               "subscribe.framework_info.offer_filters", "extra"}));

  auto strict = parseV1Json<Call>(json, strictOptions());
  ASSERT_FALSE(strict.isOk());
  EXPECT_EQ(strict.status().code(), api::StatusCode::kInvalidArgument);
  EXPECT_EQ(strict.status().message(), "unknown field 'frameworkid' in 'subscribe.framework_info'");
  auto top = parseV1Json<Call>(R"({"typo":1})", strictOptions());
  EXPECT_EQ(top.status().message(), "unknown field 'typo' in 'tessera.v1.scheduler.Call'");
}

TEST(V1JsonTest, CamelCaseNamesAreAccepted) {
  auto call = parseV1Json<Call>(R"({"frameworkId":{"value":"f"},"type":"TEARDOWN"})");
  ASSERT_TRUE(call.isOk());
  EXPECT_EQ(call->framework_id().value(), "f");
}

TEST(V1JsonTest, TypeMismatchesNameTheFieldPath) {
  auto r = parseV1Json<Event>(
      R"({"offers":{"offers":[{"resources":[{"name":"ports"},{"ranges":{"range":[{"begin":"x"}]}}]}]}})");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().message(),
            "field 'offers.offers[0].resources[1].ranges.range[0].begin' has a bad number 'x'");
  auto notArray = parseV1Json<Call>(R"({"accept":{"offer_ids":{"value":"o"}}})");
  EXPECT_EQ(notArray.status().message(),
            "field 'accept.offer_ids' is repeated and expects a JSON array");
  auto notString = parseV1Json<Call>(R"({"framework_id":{"value":5}})");
  EXPECT_EQ(notString.status().message(), "field 'framework_id.value' expects a JSON string");
  auto notBool = parseV1Json<tessera::v1::FrameworkInfo>(R"({"checkpoint":"yes"})");
  EXPECT_EQ(notBool.status().message(), "field 'checkpoint' expects true or false");
  auto notObject = parseV1Json<Call>(R"({"subscribe":[]})");
  EXPECT_EQ(notObject.status().message(), "field 'subscribe' expects a JSON object");
}

TEST(V1JsonTest, MalformedJsonIsRejected) {
  for (const char* bad :
       {"", "[]", "{", "{\"type\"}", "{\"type\":\"SUBSCRIBE\",}", "{} x", "{\"type\":\"A\u0001\"}",
        "{\"framework_id\":{\"value\":\"\\ud800\"}}", "{\"x\":tru}", "nul"}) {
    auto r = parseV1Json<Call>(bad);
    EXPECT_FALSE(r.isOk()) << bad;
    EXPECT_EQ(r.status().code(), api::StatusCode::kInvalidArgument) << bad;
  }
  std::string deep(200, '[');
  deep = "{\"x\":" + deep;
  EXPECT_FALSE(parseV1Json<Call>(deep).isOk());
}

// Every string a parsed message holds is text (#20): raw bytes that are not UTF-8 and lone
// surrogate escapes are refused naming the field, member names and skipped fields included.
TEST(V1JsonTest, StringsThatAreNotUtf8AreRefusedNamingTheField) {
  auto name = parseV1Json<Call>(
      "{\"type\":\"SUBSCRIBE\",\"subscribe\":{\"framework_info\":{\"user\":\"u\",\"name\":"
      "\"\xc3\x28\"}}}");
  ASSERT_FALSE(name.isOk());
  EXPECT_EQ(name.status().code(), api::StatusCode::kInvalidArgument);
  EXPECT_EQ(name.status().message(), "field 'subscribe.framework_info.name' is not valid UTF-8");

  auto repeated = parseV1Json<Call>(
      "{\"type\":\"REVIVE\",\"revive\":{\"roles\":[\"web\",\"\xed\xa0\x80\"]}}");  // a surrogate
  ASSERT_FALSE(repeated.isOk());
  EXPECT_EQ(repeated.status().message(), "field 'revive.roles[1]' is not valid UTF-8");

  auto lone = parseV1Json<tessera::v1::TaskID>(R"({"value":"a\udc00"})");
  ASSERT_FALSE(lone.isOk());
  EXPECT_EQ(lone.status().message(), "field 'value' has an unpaired surrogate \\u escape");
  auto high = parseV1Json<tessera::v1::TaskID>(R"({"value":"\ud800\u0041"})");
  ASSERT_FALSE(high.isOk());
  EXPECT_EQ(high.status().message(), "field 'value' has an unpaired surrogate \\u escape");

  auto key = parseV1Json<Call>("{\"subscribe\":{\"\xff\":1}}");
  ASSERT_FALSE(key.isOk());
  EXPECT_EQ(key.status().message(), "a member name in 'subscribe' is not valid UTF-8");
  auto topKey = parseV1Json<Call>("{\"\xc0\xaf\":1}");  // an overlong '/'
  ASSERT_FALSE(topKey.isOk());
  EXPECT_EQ(topKey.status().message(), "a member name of the top-level object is not valid UTF-8");

  // An unknown field is skipped, but its strings are read too.
  auto skipped = parseV1Json<Call>("{\"type\":\"REVIVE\",\"x\":{\"y\":[1,\"\xf4\x90\x80\x80\"]}}");
  ASSERT_FALSE(skipped.isOk());
  EXPECT_EQ(skipped.status().message(), "field 'x.y[1]' is not valid UTF-8");

  // Well-formed text of every length passes as is, raw or escaped.
  auto ok = parseV1Json<tessera::v1::TaskID>(
      "{\"value\":\"a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\\u00e9\\ud83d\\ude00\xef\xbf\xbf\"}");
  ASSERT_TRUE(ok.isOk()) << ok.status().toString();
  EXPECT_EQ(ok->value(),
            "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbf");
}

// Nesting is bounded: a body nested past maxDepth is refused before it can exhaust the stack.
TEST(V1JsonTest, NestingDeeperThanTheLimitIsRefused) {
  auto nested = [](int depth) {
    return "{\"type\":\"REVIVE\",\"x\":" + std::string(depth, '[') + std::string(depth, ']') + "}";
  };
  EXPECT_TRUE(parseV1Json<Call>(nested(32)).isOk());
  for (int depth : {100, 100000}) {
    auto r = parseV1Json<Call>(nested(depth));
    ASSERT_FALSE(r.isOk()) << depth;
    EXPECT_NE(r.status().message().find("nested too deeply (more than 64 levels)"),
              std::string::npos)
        << r.status().message();
  }
  V1JsonParseOptions shallow;
  shallow.maxDepth = 3;
  EXPECT_FALSE(
      parseV1Json<Call>(R"({"subscribe":{"framework_info":{"labels":{"labels":[{}]}}}})", shallow)
          .isOk());
}

// The printer never writes invalid UTF-8: a string field holding such bytes (from a message
// built in code) comes out with U+FFFD in their place.
TEST(V1JsonTest, PrinterReplacesInvalidUtf8WithReplacementCharacters) {
  tessera::v1::TaskID id;
  id.set_value("a\xc3\x28z\xff");
  EXPECT_EQ(messageToV1Json(id), "{\"value\":\"a\xef\xbf\xbd(z\xef\xbf\xbd\"}");
  auto back = parseV1Json<tessera::v1::TaskID>(messageToV1Json(id));
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  EXPECT_EQ(back->value(), "a\xef\xbf\xbd(z\xef\xbf\xbd");
}

TEST(V1JsonTest, StringEscapesDecode) {
  auto r = parseV1Json<tessera::v1::TaskID>(R"({"value":"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"})");
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(r->value(), "a\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80");
}

// Events as the Mesos master writes them (and as the scheduler HTTP API docs show them, with
// the docs' OFFERS sample corrected to the real proto shape: `offers` is an Offers message
// holding the `offers` array, and an offer's id is `id`), whitespace and all.
TEST(V1JsonTest, MesosProducedEventsParse) {
  const char* subscribed = R"({
    "type"       : "SUBSCRIBED",
    "subscribed" : {
      "framework_id"               : {"value":"12220-3440-12532-2345"},
      "heartbeat_interval_seconds" : 15.0,
      "master_info" : {"id":"m1","ip":16777343,"port":5050,"hostname":"localhost",
                       "version":"1.11.0","address":{"hostname":"localhost","ip":"127.0.0.1","port":5050}}
    }
  })";
  auto s = parseV1Json<Event>(subscribed, strictOptions());
  ASSERT_TRUE(s.isOk()) << s.status().toString();
  EXPECT_EQ(s->type(), Event::SUBSCRIBED);
  EXPECT_EQ(s->subscribed().framework_id().value(), "12220-3440-12532-2345");
  EXPECT_EQ(s->subscribed().heartbeat_interval_seconds(), 15.0);
  EXPECT_EQ(s->subscribed().master_info().ip(), 16777343u);

  const char* offers = R"({
    "type"   : "OFFERS",
    "offers" : {"offers" : [
      {
        "id"           : {"value": "12214-23523-O235235"},
        "framework_id" : {"value": "12124-235325-32425"},
        "agent_id"     : {"value": "12325-23523-S23523"},
        "hostname"     : "agent.host",
        "resources"    : [
          {"name":"cpus","type":"SCALAR","scalar":{"value":4.0},"role":"*"},
          {"name":"mem","type":"SCALAR","scalar":{"value":7875.0},"role":"*"},
          {"name":"ports","type":"RANGES","ranges":{"range":[{"begin":31000,"end":32000}]},"role":"*"}
        ],
        "attributes"   : [
          {"name":"rack","type":"TEXT","text":{"value":"r1"}},
          {"name":"zones","type":"SET","set":{"item":["a","b"]}}
        ],
        "executor_ids" : []
      }
    ]}
  })";
  auto o = parseV1Json<Event>(offers, strictOptions());
  ASSERT_TRUE(o.isOk()) << o.status().toString();
  ASSERT_EQ(o->offers().offers_size(), 1);
  const auto& offer = o->offers().offers(0);
  EXPECT_EQ(offer.id().value(), "12214-23523-O235235");
  EXPECT_EQ(offer.resources(2).ranges().range(0).end(), 32000u);
  EXPECT_EQ(offer.attributes(1).set().item(1), "b");

  const char* update = R"({"type":"UPDATE","update":{"status":{
    "task_id":{"value":"t1"},"state":"TASK_RUNNING","source":"SOURCE_EXECUTOR",
    "agent_id":{"value":"a1"},"timestamp":1.700000000123e9,
    "uuid":"APv/ECAwQFBgcICQoLC//w==","healthy":true}}})";
  auto u = parseV1Json<Event>(update, strictOptions());
  ASSERT_TRUE(u.isOk()) << u.status().toString();
  EXPECT_EQ(u->update().status().state(), tessera::v1::TASK_RUNNING);
  EXPECT_EQ(u->update().status().uuid().size(), 16u);
}

}  // namespace
}  // namespace tessera::kernel::net
