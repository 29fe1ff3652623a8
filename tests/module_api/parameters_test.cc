// The typed parameter readers every module parses its parameters with.
#include "tessera/api/parameters.h"

#include <gtest/gtest.h>

namespace tessera::api {
namespace {

using namespace std::chrono_literals;

Parameters params(std::vector<std::pair<std::string, std::string>> entries) {
  return Parameters(std::move(entries));
}

TEST(ParameterReaderTest, ReadsEachTypeAndFallsBackWhenAbsent) {
  const Parameters given = params({{"interval", "250ms"},
                                   {"enabled", "false"},
                                   {"limit", "512MB"},
                                   {"count", "-3"},
                                   {"name", " as is "},
                                   {"names", " a, ,b ,c"}});
  ParameterReader reader(given);
  EXPECT_EQ(*reader.duration("interval", 1s), 250ms);
  EXPECT_EQ(*reader.boolean("enabled", true), false);
  EXPECT_EQ(*reader.bytes("limit", 0), 512u * 1024 * 1024);
  EXPECT_EQ(*reader.integer("count", 0), -3);
  EXPECT_EQ(reader.string("name", ""), " as is ");
  EXPECT_EQ(reader.list("names"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(*reader.duration("absent", 5s), 5s);
  EXPECT_FALSE(reader.duration("absent")->has_value());
  EXPECT_EQ(*reader.boolean("absent", true), true);
  EXPECT_TRUE(reader.list("absent").empty());
  EXPECT_TRUE(reader.rejectUnknown().isOk());
}

TEST(ParameterReaderTest, TheLastEntryWins) {
  const Parameters given = params({{"enabled", "false"}, {"enabled", "1"}});
  ParameterReader reader(given);
  EXPECT_EQ(*reader.boolean("enabled", false), true);
}

TEST(ParameterReaderTest, ABadDurationNamesTheParameter) {
  const Parameters given = params({{"allocation_interval", "5parsecs"}});
  ParameterReader reader(given);
  auto interval = reader.duration("allocation_interval", 1s);
  EXPECT_EQ(interval.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(interval.status().message(),
            "parameter 'allocation_interval': '5parsecs' is not a valid duration: unknown unit "
            "'parsecs' (use ns, us, ms, secs, mins, hrs, days or weeks)");
}

TEST(ParameterReaderTest, BadBoolBytesAndIntNameTheParameter) {
  const Parameters given =
      params({{"flag", "yes"}, {"size", "1.5GB"}, {"big", "10PB"}, {"count", "12x"}});
  ParameterReader reader(given);
  EXPECT_EQ(reader.boolean("flag", false).status().message(),
            "parameter 'flag': 'yes' is not a valid bool (use true or false)");
  EXPECT_EQ(reader.bytes("size", 0).status().message(),
            "parameter 'size': '1.5GB' is not a valid size: fractions are not allowed");
  EXPECT_EQ(reader.bytes("big", 0).status().message(),
            "parameter 'big': '10PB' is not a valid size: unknown unit 'PB' (use B, KB, MB, GB or "
            "TB)");
  EXPECT_EQ(reader.integer("count", 0).status().message(),
            "parameter 'count': '12x' is not a valid integer");
  EXPECT_EQ(ParameterReader::invalid("count", "must be positive").message(),
            "parameter 'count': must be positive");
}

TEST(ParameterReaderTest, MesosSpellings) {
  EXPECT_TRUE(*parseBool("true"));
  EXPECT_TRUE(*parseBool("1"));
  EXPECT_FALSE(*parseBool("false"));
  EXPECT_FALSE(*parseBool("0"));
  EXPECT_FALSE(parseBool("").isOk());
  EXPECT_EQ(*parseBytes("100B"), 100u);
  EXPECT_EQ(*parseBytes("2kb"), 2048u);
  EXPECT_EQ(*parseBytes("1TB"), 1024ull * 1024 * 1024 * 1024);
  EXPECT_FALSE(parseBytes("100").isOk());
  EXPECT_FALSE(parseBytes("99999999999999999999B").isOk());
  EXPECT_EQ(*parseInt("42"), 42);
  EXPECT_FALSE(parseInt("").isOk());
  EXPECT_FALSE(parseInt("4 2").isOk());
}

TEST(ParameterReaderTest, RejectUnknownNamesTheKeysNeverAskedFor) {
  const Parameters given =
      params({{"default_grace_period", "3secs"}, {"docker_socket", "/s"}, {"colour", "blue"}});
  ParameterReader reader(given);
  ASSERT_TRUE(reader.duration("default_grace_period").isOk());
  Status unknown = reader.rejectUnknown();
  EXPECT_EQ(unknown.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(unknown.message(),
            "unknown parameters 'docker_socket', 'colour' (known: default_grace_period)");
  const Parameters one = params({{"x", "1"}});
  EXPECT_EQ(ParameterReader(one).rejectUnknown().message(), "unknown parameter 'x' (known: none)");
}

}  // namespace
}  // namespace tessera::api
