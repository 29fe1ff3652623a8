// The one duration grammar (stout's), shared by the kernel's flags and module parameters.
#include "tessera/api/duration.h"

#include <gtest/gtest.h>

namespace tessera::api {
namespace {

using namespace std::chrono_literals;

std::chrono::nanoseconds parsed(std::string_view text) {
  auto result = parseDuration(text);
  EXPECT_TRUE(result.isOk()) << text << ": " << result.status().toString();
  return result.isOk() ? *result : std::chrono::nanoseconds(-1);
}

TEST(ApiDurationTest, AcceptsEachOfStoutsUnits) {
  EXPECT_EQ(parsed("7ns"), 7ns);
  EXPECT_EQ(parsed("7us"), 7us);
  EXPECT_EQ(parsed("7ms"), 7ms);
  EXPECT_EQ(parsed("7secs"), 7s);
  EXPECT_EQ(parsed("7mins"), 7min);
  EXPECT_EQ(parsed("7hrs"), 7h);
  EXPECT_EQ(parsed("7days"), 7 * 24h);
  EXPECT_EQ(parsed("7weeks"), 49 * 24h);
  EXPECT_EQ(parsed("1.5secs"), 1500ms);
  EXPECT_EQ(parsed(".5mins"), 30s);
}

// stout's Duration::parse knows only the plural forms above: no singular, no short forms.
TEST(ApiDurationTest, RefusesSingularAndShortForms) {
  for (const char* text : {"1sec", "1s", "1min", "1m", "1hr", "1h", "1day", "1d", "1week", "1w"}) {
    auto result = parseDuration(text);
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument) << text;
  }
  EXPECT_EQ(parseDuration("3sec").status().message(),
            "'3sec' is not a valid duration: unknown unit 'sec' (use ns, us, ms, secs, mins, hrs, "
            "days or weeks)");
  EXPECT_EQ(parseDuration("3").status().message(),
            "'3' is not a valid duration: missing unit (use ns, us, ms, secs, mins, hrs, days or "
            "weeks)");
}

TEST(ApiDurationTest, PrintsWhatItReadsBack) {
  for (auto duration : {std::chrono::nanoseconds(90s), std::chrono::nanoseconds(500ms),
                        std::chrono::nanoseconds(240h), std::chrono::nanoseconds(3ns)}) {
    EXPECT_EQ(parsed(formatDuration(duration)), duration) << formatDuration(duration);
  }
  EXPECT_EQ(formatDuration(90s), "90secs");
  EXPECT_EQ(formatDuration(240h), "10days");
}

TEST(ApiDurationTest, NowSecondsIsTheWallClock) {
  const double before =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const double now = nowSeconds();
  EXPECT_GE(now, before);
  EXPECT_LT(now - before, 60.0);
}

}  // namespace
}  // namespace tessera::api
