#include "kernel/http/json_writer.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

namespace tessera::kernel::http {
namespace {

TEST(JsonWriterTest, PutsCommasAndColonsBetweenMembersAndElements) {
  JsonWriter w;
  w.beginObject();
  w.field("a", 1).key("b").beginArray().value(1).value("x").beginObject().endObject().endArray();
  w.key("c").beginObject().field("d", true).field("e", false).key("f").null().endObject();
  w.key("g").beginArray().endArray();
  w.endObject();
  EXPECT_EQ(w.take(), R"({"a":1,"b":[1,"x",{}],"c":{"d":true,"e":false,"f":null},"g":[]})");
}

TEST(JsonWriterTest, EscapesKeysAndStrings) {
  std::string json = writeJson([](JsonWriter& w) {
    w.beginObject().field("q\"k", std::string_view("a\"b\\c\nd\te\x01 é")).endObject();
  });
  EXPECT_EQ(json, "{\"q\\\"k\":\"a\\\"b\\\\c\\nd\\te\\u0001 é\"}");
  auto parsed = Poco::JSON::Parser().parse(json).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(parsed->getValue<std::string>("q\"k"), "a\"b\\c\nd\te\x01 é");
}

TEST(JsonWriterTest, WritesNumbersAsMesosDoes) {
  auto one = [](auto number) { return writeJson([&](JsonWriter& w) { w.value(number); }); };
  EXPECT_EQ(one(4.0), "4");
  EXPECT_EQ(one(0.5), "0.5");
  EXPECT_EQ(one(1024.25), "1024.25");
  EXPECT_EQ(one(-3.0), "-3");
  EXPECT_EQ(one(0.1), "0.1");
  EXPECT_EQ(one(1765000000.123456), "1765000000.123456");
  EXPECT_EQ(one(std::numeric_limits<double>::quiet_NaN()), "null");
  EXPECT_EQ(one(std::numeric_limits<double>::infinity()), "null");
  EXPECT_EQ(one(int64_t{-9007199254740993}), "-9007199254740993");
  EXPECT_EQ(one(std::numeric_limits<uint64_t>::max()), "18446744073709551615");
  EXPECT_EQ(one(uint16_t{5050}), "5050");
  // A string literal is a string, never a bool.
  EXPECT_EQ(one("true"), R"("true")");
}

TEST(JsonWriterTest, RawEmbedsRenderedJsonAsOneValue) {
  std::string json =
      writeJson([](JsonWriter& w) { w.beginArray().raw(R"({"x":[1,2]})").raw("3").endArray(); });
  EXPECT_EQ(json, R"([{"x":[1,2]},3])");
  json = writeJson([](JsonWriter& w) { w.beginObject().rawField("k", "[]").endObject(); });
  EXPECT_EQ(json, R"({"k":[]})");
}

// Whatever bytes a string holds, the writer's output is valid JSON a strict parser accepts:
// ill-formed UTF-8 (in keys too) becomes U+FFFD, one per maximal ill-formed subpart.
TEST(JsonWriterTest, InvalidUtf8IsWrittenAsReplacementCharacters) {
  std::string json = writeJson([](JsonWriter& w) {
    w.beginObject();
    w.field("name", std::string_view("\xc3\x28"));
    w.field("k\xff", std::string_view("ok \xc3\xa9"));
    w.field("cut", std::string_view("\xe2\x82"));            // a truncated three-byte sequence
    w.field("surrogate", std::string_view("\xed\xa0\x80"));  // U+D800 encoded
    w.endObject();
  });
  EXPECT_EQ(json,
            "{\"name\":\"\xef\xbf\xbd(\",\"k\xef\xbf\xbd\":\"ok \xc3\xa9\","
            "\"cut\":\"\xef\xbf\xbd\",\"surrogate\":\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"}");
  auto parsed = Poco::JSON::Parser().parse(json).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(parsed->getValue<std::string>("name"), "\xef\xbf\xbd(");
}

TEST(JsonWriterTest, TakeEmptiesTheWriter) {
  JsonWriter w;
  w.beginArray().endArray();
  EXPECT_EQ(w.str(), "[]");
  EXPECT_EQ(w.take(), "[]");
  w.beginObject().endObject();
  EXPECT_EQ(w.take(), "{}");
}

}  // namespace
}  // namespace tessera::kernel::http
