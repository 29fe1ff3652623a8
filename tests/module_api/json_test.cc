// tessera/api/json.h: the UTF-8 checks and the JSON string writer every JSON output uses.

#include "tessera/api/json.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

#include <string>

#include "tessera/api/http.h"

namespace tessera::api {
namespace {

constexpr std::string_view kFffd = "\xef\xbf\xbd";

TEST(Utf8Test, WellFormedSequencesAreValid) {
  for (std::string_view text :
       {std::string_view(""), std::string_view("ascii"), std::string_view("\0nul", 4),
        std::string_view("\xc2\x80"), std::string_view("\xdf\xbf"),
        std::string_view("\xe0\xa0\x80"), std::string_view("\xed\x9f\xbf"),  // U+D7FF
        std::string_view("\xee\x80\x80"), std::string_view("\xef\xbf\xbf"),
        std::string_view("\xf0\x90\x80\x80"), std::string_view("\xf4\x8f\xbf\xbf")}) {
    EXPECT_TRUE(isValidUtf8(text)) << text;
    EXPECT_EQ(findInvalidUtf8(text), std::string_view::npos);
    EXPECT_EQ(toValidUtf8(text), text);
  }
}

TEST(Utf8Test, IllFormedSequencesAreFoundAndReplaced) {
  struct Case {
    std::string_view text;
    size_t first;
    std::string replaced;
  };
  const std::string r(kFffd);
  for (const Case& c :
       std::initializer_list<Case>{{"\xc3\x28", 0, r + "("},        // lead without its continuation
                                   {"ab\x80", 2, "ab" + r},         // a lone continuation byte
                                   {"\xc0\xaf", 0, r + r},          // overlong '/'
                                   {"\xe0\x80\xaf", 0, r + r + r},  // overlong, three bytes
                                   {"\xed\xa0\x80", 0, r + r + r},  // U+D800, a surrogate
                                   {"\xf4\x90\x80\x80", 0, r + r + r + r},  // above U+10FFFF
                                   {"\xf5\x80", 0, r + r},                  // no such lead
                                   {"x\xe2\x82", 1, "x" + r},  // truncated: one U+FFFD for the two
                                   {"\xf0\x9f\x98y", 0, r + "y"},  // truncated four-byte sequence
                                   {"\xff\xfe", 0, r + r}}) {
    EXPECT_FALSE(isValidUtf8(c.text));
    EXPECT_EQ(findInvalidUtf8(c.text), c.first);
    EXPECT_EQ(toValidUtf8(c.text), c.replaced);
    EXPECT_TRUE(isValidUtf8(toValidUtf8(c.text)));
  }
}

TEST(Utf8Test, JsonStringsAreAlwaysValidUtf8) {
  EXPECT_EQ(jsonQuote("a\"\\\n\x01 \xc3\xa9"), "\"a\\\"\\\\\\n\\u0001 \xc3\xa9\"");
  EXPECT_EQ(jsonQuote("\xc3\x28"), "\"\xef\xbf\xbd(\"");
  EXPECT_EQ(jsonQuote("\xe2\x82\n"), "\"\xef\xbf\xbd\\n\"");
}

// An error that echoes its input (the files endpoints' "path '...' does not exist") is still a
// body a strict parser accepts.
TEST(Utf8Test, ErrorResponsesEchoingBytesStayValidJson) {
  HttpResponse response = HttpResponse::error(404, "path '/tmp/\xc3\x28' does not exist");
  EXPECT_TRUE(isValidUtf8(response.body)) << response.body;
  auto parsed = Poco::JSON::Parser().parse(response.body).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(parsed->getValue<std::string>("message"), "path '/tmp/\xef\xbf\xbd(' does not exist");
}

}  // namespace
}  // namespace tessera::api
