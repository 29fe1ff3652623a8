#include "modules/framework_chronos/schedule.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tessera::modules::chronos {
namespace {

TimePoint at(std::string_view text) {
  auto time = parseDateTime(text, "");
  EXPECT_TRUE(time.isOk()) << time.status().toString();
  return time.isOk() ? *time : TimePoint{};
}

std::string utc(std::optional<TimePoint> time) {
  return time ? formatDateTime(*time) : std::string("none");
}

Schedule iso(std::string_view text, std::string_view zone = "",
             TimePoint now = TimePoint{std::chrono::seconds{1767225600}}) {
  auto schedule = Schedule::parseIso8601(text, zone, now);
  EXPECT_TRUE(schedule.isOk()) << schedule.status().toString();
  return *schedule;
}

Schedule cron(std::string_view text, std::string_view zone, TimePoint now) {
  auto schedule = Schedule::parseCron(text, zone, now);
  EXPECT_TRUE(schedule.isOk()) << schedule.status().toString();
  return *schedule;
}

// The first `count` points, running every one.
std::vector<std::string> points(Schedule schedule, int count) {
  std::vector<std::string> out;
  for (int i = 0; i < count && schedule.next(); ++i) {
    out.push_back(utc(schedule.next()));
    schedule = schedule.advanced();
  }
  return out;
}

TEST(ScheduleIsoTest, ForeverEveryMinute) {
  Schedule schedule = iso("R/2026-01-01T00:00:00Z/PT1M");
  EXPECT_EQ(utc(schedule.next()), "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(schedule.remaining(), std::nullopt);
  EXPECT_FALSE(schedule.isCron());
  Schedule after = schedule.advanced();
  EXPECT_EQ(utc(after.next()), "2026-01-01T00:01:00.000Z");
  EXPECT_EQ(after.toString(), "R/2026-01-01T00:01:00.000Z/PT1M");
}

TEST(ScheduleIsoTest, CountedRunsExactlyThatManyTimes) {
  Schedule schedule = iso("R3/2026-01-01T00:00:00Z/P1D");
  EXPECT_EQ(schedule.remaining(), 3);
  EXPECT_EQ(points(schedule, 10),
            (std::vector<std::string>{"2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z",
                                      "2026-01-03T00:00:00.000Z"}));
  Schedule done = schedule.advanced().advanced().advanced();
  EXPECT_EQ(done.next(), std::nullopt);
  EXPECT_EQ(done.remaining(), 0);
  EXPECT_EQ(done.advanced().remaining(), 0);
  EXPECT_EQ(schedule.advanced().toString(), "R2/2026-01-02T00:00:00.000Z/P1D");
}

TEST(ScheduleIsoTest, ZeroRepetitionsIsDone) {
  Schedule schedule = iso("R0/2026-01-01T00:00:00Z/PT1H");
  EXPECT_EQ(schedule.next(), std::nullopt);
  EXPECT_EQ(schedule.toString(), "R0/2026-01-01T00:00:00.000Z/PT1H");
}

TEST(ScheduleCronTest, EveryFiveMinutesUtc) {
  Schedule schedule = cron("*/5 * * * *", "", at("2026-01-01T00:02:10Z"));
  EXPECT_TRUE(schedule.isCron());
  EXPECT_EQ(points(schedule, 3),
            (std::vector<std::string>{"2026-01-01T00:05:00.000Z", "2026-01-01T00:10:00.000Z",
                                      "2026-01-01T00:15:00.000Z"}));
  EXPECT_EQ(schedule.toString(), "*/5 * * * *");
  EXPECT_EQ(schedule.remaining(), std::nullopt);
}

}  // namespace
}  // namespace tessera::modules::chronos
