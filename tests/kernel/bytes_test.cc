#include "kernel/runtime/bytes.h"

#include <gtest/gtest.h>

namespace tessera::kernel::runtime {
namespace {

uint64_t parsed(std::string_view text) {
  api::Result<Bytes> result = parseBytes(text);
  EXPECT_TRUE(result.isOk()) << text << ": " << result.status().toString();
  return result.isOk() ? result->value : 0;
}

TEST(BytesTest, ParsesEveryStoutUnit1024Based) {
  EXPECT_EQ(parsed("100B"), 100u);
  EXPECT_EQ(parsed("10KB"), 10 * 1024u);
  EXPECT_EQ(parsed("512MB"), 512ull * 1024 * 1024);
  EXPECT_EQ(parsed("1GB"), 1ull << 30);
  EXPECT_EQ(parsed("2TB"), 2ull << 40);
  EXPECT_EQ(parsed("0B"), 0u);
}

TEST(BytesTest, UnitIsCaseInsensitiveAsInStout) {
  EXPECT_EQ(parsed("1gb"), 1ull << 30);
  EXPECT_EQ(parsed("3Mb"), 3ull << 20);
}

TEST(BytesTest, RejectsBadText) {
  EXPECT_EQ(parseBytes("1.5GB").status().message(),
            "'1.5GB' is not a valid size: fractions are not allowed");
  EXPECT_EQ(parseBytes("512").status().message(),
            "'512' is not a valid size: missing unit (use B, KB, MB, GB or TB)");
  EXPECT_EQ(parseBytes("5PB").status().message(),
            "'5PB' is not a valid size: unknown unit 'PB' (use B, KB, MB, GB or TB)");
  EXPECT_EQ(parseBytes("MB").status().message(),
            "'MB' is not a valid size: expected a number and a unit, e.g. '512MB'");
  EXPECT_FALSE(parseBytes("").isOk());
  EXPECT_FALSE(parseBytes("-1MB").isOk());
  EXPECT_FALSE(parseBytes("1 MB").isOk());
  EXPECT_EQ(parseBytes("16777216TB").status().message(),
            "'16777216TB' is not a valid size: too large");
  EXPECT_FALSE(parseBytes("99999999999999999999999B").isOk());
  EXPECT_EQ(parsed("18446744073709551615B"), UINT64_MAX);
}

TEST(BytesTest, FormatsLikeStout) {
  EXPECT_EQ(formatBytes(Bytes{0}), "0B");
  EXPECT_EQ(formatBytes(Bytes{100}), "100B");
  EXPECT_EQ(formatBytes(Bytes{1025}), "1025B");
  EXPECT_EQ(formatBytes(Bytes{10 * kKilobyte}), "10KB");
  EXPECT_EQ(formatBytes(Bytes{512 * kMegabyte}), "512MB");
  EXPECT_EQ(formatBytes(Bytes{1536 * kMegabyte}), "1536MB");
  EXPECT_EQ(formatBytes(Bytes{kGigabyte}), "1GB");
  EXPECT_EQ(formatBytes(Bytes{2 * kTerabyte}), "2TB");
  EXPECT_EQ(formatBytes(Bytes{2048 * kTerabyte}), "2048TB");
}

TEST(BytesTest, RoundTrips) {
  for (std::string_view text : {"0B", "100B", "10KB", "512MB", "1536MB", "1GB", "2TB"}) {
    EXPECT_EQ(formatBytes(Bytes{parsed(text)}), text);
  }
  EXPECT_EQ(formatBytes(Bytes{parsed("1024MB")}), "1GB");
}

}  // namespace
}  // namespace tessera::kernel::runtime
