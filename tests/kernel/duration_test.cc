#include "kernel/runtime/duration.h"

#include <gtest/gtest.h>

#include <limits>

namespace tessera::kernel::runtime {
namespace {

using namespace std::chrono_literals;

Duration parsed(std::string_view text) {
  api::Result<Duration> result = parseDuration(text);
  EXPECT_TRUE(result.isOk()) << text << ": " << result.status().toString();
  return result.isOk() ? *result : Duration(-1);
}

TEST(DurationTest, ParsesEveryStoutUnit) {
  EXPECT_EQ(parsed("10ns"), 10ns);
  EXPECT_EQ(parsed("20us"), 20us);
  EXPECT_EQ(parsed("500ms"), 500ms);
  EXPECT_EQ(parsed("5secs"), 5s);
  EXPECT_EQ(parsed("2mins"), 2min);
  EXPECT_EQ(parsed("1hrs"), 1h);
  EXPECT_EQ(parsed("3days"), 72h);
  EXPECT_EQ(parsed("1weeks"), 168h);
  EXPECT_EQ(parsed("0secs"), 0ns);
}

TEST(DurationTest, ParsesDecimalsExactly) {
  EXPECT_EQ(parsed("1.5secs"), 1500ms);
  EXPECT_EQ(parsed("0.3secs"), 300ms);
  EXPECT_EQ(parsed(".5mins"), 30s);
  EXPECT_EQ(parsed("2.mins"), 2min);
  EXPECT_EQ(parsed("0.1ns"), 0ns);  // below a nanosecond is dropped
  EXPECT_EQ(parsed("1.000000000000000000001secs"), 1s);
}

TEST(DurationTest, RejectsBadText) {
  const auto message = [](std::string_view text) { return parseDuration(text).status().message(); };
  EXPECT_EQ(message("5"),
            "'5' is not a valid duration: missing unit (use ns, us, ms, secs, mins, "
            "hrs, days or weeks)");
  EXPECT_EQ(message("5parsecs"),
            "'5parsecs' is not a valid duration: unknown unit 'parsecs' (use ns, us, ms, secs, "
            "mins, hrs, days or weeks)");
  EXPECT_EQ(message("secs"),
            "'secs' is not a valid duration: expected a number and a unit, e.g. '5secs' or "
            "'500ms'");
  EXPECT_FALSE(parseDuration("").isOk());
  EXPECT_FALSE(parseDuration("5s").isOk());  // stout's unit is "secs"
  EXPECT_FALSE(parseDuration("5 secs").isOk());
  EXPECT_FALSE(parseDuration("-5secs").isOk());
  EXPECT_FALSE(parseDuration("1.2.3secs").isOk());
  EXPECT_FALSE(parseDuration(".secs").isOk());
  EXPECT_EQ(parseDuration("5secs").status().code(), api::StatusCode::kOk);
  EXPECT_EQ(parseDuration("5x").status().code(), api::StatusCode::kInvalidArgument);
}

TEST(DurationTest, RejectsWhatDoesNotFitIn64Bits) {
  EXPECT_EQ(parseDuration("100000weeks").status().message(),
            "'100000weeks' is not a valid duration: too large");
  EXPECT_FALSE(parseDuration("99999999999999999999999ns").isOk());
  EXPECT_EQ(parsed("9223372036854775807ns"), Duration::max());
}

TEST(DurationTest, FormatsLikeStout) {
  EXPECT_EQ(formatDuration(0ns), "0ns");
  EXPECT_EQ(formatDuration(10ns), "10ns");
  EXPECT_EQ(formatDuration(1500ns), "1500ns");
  EXPECT_EQ(formatDuration(20us), "20us");
  EXPECT_EQ(formatDuration(500ms), "500ms");
  EXPECT_EQ(formatDuration(1500us), "1500us");
  EXPECT_EQ(formatDuration(5s), "5secs");
  EXPECT_EQ(formatDuration(1500ms), "1500ms");
  EXPECT_EQ(formatDuration(2min), "2mins");
  EXPECT_EQ(formatDuration(90s), "90secs");
  EXPECT_EQ(formatDuration(1h), "1hrs");
  EXPECT_EQ(formatDuration(90min), "90mins");
  EXPECT_EQ(formatDuration(72h), "3days");
  EXPECT_EQ(formatDuration(36h), "36hrs");
  EXPECT_EQ(formatDuration(168h), "1weeks");
  EXPECT_EQ(formatDuration(240h), "10days");
  EXPECT_EQ(formatDuration(-5s), "-5secs");
  // Not a whole number in any unit: the bucket's unit with decimals, as stout prints it.
  EXPECT_EQ(formatDuration(1500001us), "1.500001secs");
  // Where fifteen digits would not read back exactly: a whole number of a smaller unit.
  EXPECT_EQ(formatDuration(150002ms), "150002ms");
  EXPECT_EQ(formatDuration(Duration(1000000000000001)), "1000000000000001ns");
  EXPECT_EQ(formatDuration(Duration::min()), fmt::format("-{}", formatDuration(Duration::max())));
}

TEST(DurationTest, RoundTrips) {
  for (Duration d :
       {Duration(0), Duration(7), Duration(20us), Duration(500ms), Duration(1500ms), Duration(5s),
        Duration(90s), Duration(2min), Duration(1h), Duration(36h), Duration(72h), Duration(168h),
        Duration(240h), Duration(1500001us), Duration(150002ms), Duration(1000000000000001)}) {
    EXPECT_EQ(parsed(formatDuration(d)), d) << formatDuration(d);
  }
  for (std::string_view text :
       {"10ns", "20us", "500ms", "5secs", "2mins", "1hrs", "3days", "1weeks", "1500ms", "90secs"}) {
    EXPECT_EQ(formatDuration(parsed(text)), text);
  }
}

}  // namespace
}  // namespace tessera::kernel::runtime
