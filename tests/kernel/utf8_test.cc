// The kernel's UTF-8 checks (#20): net::checkUtf8() over a protobuf message, whatever decoded
// it, and http::checkJsonText() / parseJsonBody() in front of Poco's parser.

#include "kernel/net/utf8.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>

#include "kernel/http/json_body.h"
#include "kernel/protocol/internal.pb.h"
#include "tessera/v1/scheduler.pb.h"

namespace tessera::kernel {
namespace {

using tessera::v1::scheduler::Call;

constexpr const char* kBad = "\xc3\x28";

// A call decoded from the protobuf wire format: proto2 lets any bytes through a string field.
Call viaProtobuf(const Call& call) {
  Call decoded;
  EXPECT_TRUE(decoded.ParseFromString(call.SerializeAsString()));
  return decoded;
}

TEST(CheckUtf8Test, NamesTheFirstStringFieldThatIsNotText) {
  Call call;
  call.set_type(Call::SUBSCRIBE);
  call.mutable_subscribe()->mutable_framework_info()->set_user("u");
  call.mutable_subscribe()->mutable_framework_info()->set_name(kBad);
  api::Status status = net::checkUtf8(viaProtobuf(call));
  EXPECT_EQ(status.code(), api::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "field 'subscribe.framework_info.name' is not valid UTF-8");

  Call accept;
  accept.set_type(Call::ACCEPT);
  auto* launch = accept.mutable_accept()->add_operations()->mutable_launch();
  launch->add_task_infos()->set_name("fine \xc3\xa9");
  auto* task = launch->add_task_infos();
  task->set_name("ok");
  auto* label = task->mutable_labels()->add_labels();
  label->set_key("k");
  label->set_value("\xff");
  EXPECT_EQ(net::checkUtf8(viaProtobuf(accept)).message(),
            "field 'accept.operations[0].launch.task_infos[1].labels.labels[0].value' is not "
            "valid UTF-8");
  EXPECT_EQ(net::checkUtf8(accept, "call").message(),
            "field 'call.accept.operations[0].launch.task_infos[1].labels.labels[0].value' is "
            "not valid UTF-8");
}

TEST(CheckUtf8Test, TextAndBytesFieldsPass) {
  Call call;
  call.set_type(Call::MESSAGE);
  call.mutable_message()->mutable_agent_id()->set_value("agent-\xe2\x82\xac");
  call.mutable_message()->set_data(std::string("\xff\x00\xc3", 3));  // bytes: anything goes
  EXPECT_TRUE(net::checkUtf8(viaProtobuf(call)).isOk());
  EXPECT_TRUE(net::checkUtf8(Call()).isOk());
}

TEST(CheckUtf8Test, InternalMessagesAreWalkedToo) {
  internal::Envelope envelope;
  envelope.mutable_status_update()->mutable_status()->set_message(kBad);
  EXPECT_EQ(net::checkUtf8(envelope).message(),
            "field 'status_update.status.message' is not valid UTF-8");
}

TEST(JsonBodyTest, StringsThatAreNotTextAreNamedByTheirPath) {
  EXPECT_TRUE(http::checkJsonText(R"({"a":[1,"x",{"b":"\u00e9\ud83d\ude00"}],"c":null})").isOk());
  EXPECT_EQ(http::checkJsonText(std::string(R"({"a":[1,"x",{"b":")") + kBad + "\"}]}").message(),
            "field 'a[2].b' is not valid UTF-8");
  EXPECT_EQ(http::checkJsonText(R"({"infos":[{"role":"\udc00"}]})").message(),
            "field 'infos[0].role' is not valid UTF-8");
  EXPECT_EQ(http::checkJsonText(R"({"role":"\ud800x"})").message(),
            "field 'role' is not valid UTF-8");
  EXPECT_EQ(http::checkJsonText(std::string("[\"") + kBad + "\"]").message(),
            "field '[0]' is not valid UTF-8");
  EXPECT_EQ(http::checkJsonText(std::string(R"({"infos":[{")") + kBad + "\":1}]}").message(),
            "a member name in 'infos[0]' is not valid UTF-8");
  // Brackets and quotes inside strings are not structure.
  EXPECT_TRUE(http::checkJsonText(R"({"a":"[[[{\"","b":"]]"})", 2).isOk());
}

TEST(JsonBodyTest, TheNumberOfValuesIsBoundedBeforeParsing) {
  // 7 values: the object, a's array, 1, "x,:[" (its punctuation is text), {...}, null, and
  // c's empty array; member names are not values.
  const std::string seven = R"({"a": [1, "x,:[", {"b": null}], "c": [ ]})";
  EXPECT_TRUE(http::checkJsonText(seven, http::kMaxJsonDepth, 7).isOk());
  EXPECT_EQ(http::checkJsonText(seven, http::kMaxJsonDepth, 6).message(),
            "JSON holds more than 6 values");
  // A body well within the byte limit made only of tiny values is refused before Poco builds
  // a tree of them.
  auto zeros = [](size_t count) {  // an array of `count` zeros: count + 1 values
    std::string text = "[0";
    for (size_t i = 1; i < count; ++i) text += ",0";
    return text + "]";
  };
  auto tooMany = http::parseJsonBody(zeros(http::kMaxJsonValues));
  ASSERT_FALSE(tooMany.isOk());
  EXPECT_EQ(tooMany.status().message(),
            fmt::format("JSON holds more than {} values", http::kMaxJsonValues));
  EXPECT_TRUE(http::parseJsonBody(zeros(http::kMaxJsonValues - 1)).isOk());
}

TEST(JsonBodyTest, NestingIsBoundedBeforeParsing) {
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_TRUE(http::checkJsonText(nested(64)).isOk());
  EXPECT_EQ(http::checkJsonText(nested(65)).message(),
            "JSON nested too deeply (more than 64 levels)");
  auto deep = http::parseJsonBody(nested(1000000));
  ASSERT_FALSE(deep.isOk());
  EXPECT_EQ(deep.status().code(), api::StatusCode::kInvalidArgument);

  auto parsed = http::parseJsonBody(R"({"type":"GET_HEALTH"})");
  ASSERT_TRUE(parsed.isOk()) << parsed.status().toString();
  // Poco's own errors keep their detail, not just "JSON Exception".
  auto malformed = http::parseJsonBody("{\"type\":");
  ASSERT_FALSE(malformed.isOk());
  EXPECT_NE(malformed.status().message(), "JSON Exception");
  EXPECT_NE(malformed.status().message().find("the body is not valid JSON: "), std::string::npos)
      << malformed.status().message();
}

}  // namespace
}  // namespace tessera::kernel
