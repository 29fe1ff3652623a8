#include "modules/framework_chronos/schedule.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
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

// ---- parsing ------------------------------------------------------------------------------

void expectError(const api::Result<Schedule>& result, std::string_view part) {
  ASSERT_FALSE(result.isOk()) << "parsed: " << result.value().toString();
  EXPECT_EQ(result.status().code(), api::StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find(part), std::string::npos)
      << result.status().message() << " does not name " << part;
}

TEST(ScheduleIsoTest, ErrorsNameTheBadPart) {
  TimePoint now = at("2026-01-01T00:00:00Z");
  expectError(Schedule::parseIso8601("R-1/2026-01-01T00:00:00Z/PT1H", "", now), "R-1");
  expectError(Schedule::parseIso8601("X5/2026-01-01T00:00:00Z/PT1H", "", now), "X5");
  expectError(Schedule::parseIso8601("R5x/2026-01-01T00:00:00Z/PT1H", "", now), "R5x");
  expectError(Schedule::parseIso8601("R/2026-13-01T00:00:00Z/PT1H", "", now), "month 13");
  expectError(Schedule::parseIso8601("R/2026-02-30T00:00:00Z/PT1H", "", now), "day 30");
  expectError(Schedule::parseIso8601("R/2026-01-01T24:00:00Z/PT1H", "", now), "hour 24");
  expectError(Schedule::parseIso8601("R/yesterday/PT1H", "", now), "yesterday");
  expectError(Schedule::parseIso8601("R/2026-01-01T00:00:00Z/P1X", "", now), "P1X");
  expectError(Schedule::parseIso8601("R/2026-01-01T00:00:00Z/", "", now), "missing period");
  expectError(Schedule::parseIso8601("R/2026-01-01T00:00:00Z/PT0S", "", now), "PT0S");
  expectError(Schedule::parseIso8601("R/2026-01-01T00:00:00Z", "", now), "R[n]/[start]/period");
  expectError(Schedule::parseIso8601("R/2026-01-01T00:00:00Z/PT1H/x", "", now),
              "R[n]/[start]/period");
  expectError(Schedule::parseIso8601("R/2026-01-01T00:00:00Z/PT1H", "Mars/Olympus", now),
              "Mars/Olympus");
}

TEST(ScheduleIsoTest, PeriodsParseAndPrintBack) {
  TimePoint now = at("2026-01-01T00:00:00Z");
  for (std::string_view period :
       {"P1Y2M3W4DT5H6M7S", "PT1H", "P1D", "PT30M", "P1W", "P2M", "PT90S", "P1DT12H"}) {
    std::string text = fmt::format("R/2026-01-01T00:00:00Z/{}", period);
    auto schedule = Schedule::parseIso8601(text, "", now);
    ASSERT_TRUE(schedule.isOk()) << schedule.status().toString();
    EXPECT_EQ(schedule->toString(), fmt::format("R/2026-01-01T00:00:00.000Z/{}", period));
  }
  // A zero fraction of a second is fine; a real one is not.
  EXPECT_EQ(iso("R/2026-01-01T00:00:00Z/PT1.0S").toString(), "R/2026-01-01T00:00:00.000Z/PT1S");
  for (std::string_view bad :
       {"P", "PT", "P1H", "PT1D", "P1M1Y", "PT1.5S", "P1.5D", "1D", "P-1D", "P1DT", "PT1H1H"}) {
    std::string text = fmt::format("R/2026-01-01T00:00:00Z/{}", bad);
    expectError(Schedule::parseIso8601(text, "", now), fmt::format("'{}'", bad));
  }
  // The period alone, e.g. a job's epsilon.
  auto epsilon = parsePeriod("PT30M");
  ASSERT_TRUE(epsilon.isOk());
  EXPECT_EQ(epsilon->minutes, 30);
  EXPECT_FALSE(epsilon->isZero());
  EXPECT_TRUE(parsePeriod("PT0S")->isZero());
  EXPECT_FALSE(parsePeriod("30M").isOk());
  // R1 and R0 may have a zero period: a one-off.
  EXPECT_EQ(utc(iso("R1/2026-01-01T00:00:00Z/PT0S").next()), "2026-01-01T00:00:00.000Z");
}

TEST(ScheduleIsoTest, EmptyStartIsNow) {
  TimePoint now = at("2026-05-05T12:34:56Z");
  Schedule schedule = iso("R2//PT1H", "", now);
  EXPECT_EQ(utc(schedule.next()), "2026-05-05T12:34:56.000Z");
  EXPECT_EQ(schedule.toString(), "R2/2026-05-05T12:34:56.000Z/PT1H");
  EXPECT_EQ(utc(schedule.advanced().next()), "2026-05-05T13:34:56.000Z");
  // In a zone, "now" keeps its wall time for calendar periods.
  Schedule daily = iso("R//P1D", "America/New_York", at("2026-03-07T17:00:00Z"));
  EXPECT_EQ(utc(daily.advanced().next()), "2026-03-08T16:00:00.000Z");
  // A blank is not an empty start.
  expectError(Schedule::parseIso8601("R/ /PT1H", "", now), "start");
}

TEST(ScheduleIsoTest, StartOffsetsAndFractionsAndZoneOverride) {
  // An offset in the start is honoured when no zone is named.
  EXPECT_EQ(utc(iso("R/2026-01-01T01:00:00+01:00/PT1H").next()), "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(utc(iso("R/2026-01-01T00:00:00-0530/PT1H").next()), "2026-01-01T05:30:00.000Z");
  // Fractions of a second are read and dropped; Chronos writes milliseconds back.
  Schedule fraction = iso("R2/2026-01-01T00:00:00.123Z/PT1H");
  EXPECT_EQ(utc(fraction.next()), "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(fraction.advanced().toString(), "R1/2026-01-01T01:00:00.000Z/PT1H");
  // A date alone is midnight; no offset is UTC.
  EXPECT_EQ(utc(iso("R/2026-01-01/P1D").next()), "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(utc(iso("R/2026-01-01T10:00/P1D").next()), "2026-01-01T10:00:00.000Z");
  // scheduleTimeZone keeps the written wall time and reads it in its zone, whatever the offset
  // (Joda's withZoneRetainFields, as Chronos does).
  Schedule berlin = iso("R/2026-01-01T09:00:00Z/P1D", "Europe/Berlin");
  EXPECT_EQ(utc(berlin.next()), "2026-01-01T08:00:00.000Z");
  EXPECT_EQ(berlin.timeZone(), "Europe/Berlin");
  EXPECT_EQ(utc(iso("R/2026-07-01T09:00:00+05:00/P1D", "Europe/Berlin").next()),
            "2026-07-01T07:00:00.000Z");
  EXPECT_EQ(utc(iso("R/2026-01-01T09:00:00/P1D", "America/New_York").next()),
            "2026-01-01T14:00:00.000Z");
}

TEST(ScheduleIsoTest, ParseDateTimeAndFormat) {
  EXPECT_EQ(utc(*parseDateTime("2026-03-08T02:30:00", "America/New_York")),
            "2026-03-08T07:30:00.000Z");  // in the gap: moved forward by it (03:30 EDT)
  EXPECT_EQ(utc(*parseDateTime("2026-11-01T01:30:00", "America/New_York")),
            "2026-11-01T05:30:00.000Z");  // twice: the earlier (EDT)
  EXPECT_EQ(utc(*parseDateTime("2026-11-01T01:30:00-05:00", "America/New_York")),
            "2026-11-01T06:30:00.000Z");  // an explicit offset wins
  EXPECT_FALSE(parseDateTime("2026-01-01T00:00:00+25:00", "").isOk());
  EXPECT_FALSE(parseDateTime("2026-01-01T00:00:00Zjunk", "").isOk());
  EXPECT_FALSE(parseDateTime("", "").isOk());
  EXPECT_EQ(formatDateTime(Clock::time_point{std::chrono::milliseconds{1767225600123}}),
            "2026-01-01T00:00:00.123Z");
}

// formatDateTime() writes its digits by hand: every field padded, the last millisecond before the
// epoch and of a leap day, times far from the epoch either way.
TEST(ScheduleIsoTest, FormatDateTimePadsEveryField) {
  using std::chrono::milliseconds;
  EXPECT_EQ(formatDateTime(Clock::time_point{milliseconds{-1}}), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(formatDateTime(Clock::time_point{milliseconds{0}}), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(formatDateTime(Clock::time_point{milliseconds{1709251199999}}),
            "2024-02-29T23:59:59.999Z");
  EXPECT_EQ(formatDateTime(Clock::time_point{milliseconds{-8520332276996}}),
            "1700-01-01T01:02:03.004Z");
  EXPECT_EQ(formatDateTime(Clock::time_point{milliseconds{7289654399999}}),
            "2200-12-31T23:59:59.999Z");
  // Through the schedule's texts, which use it.
  Schedule schedule =
      *Schedule::parseIso8601("R3/2026-03-01T00:00:05Z/P1Y2M3DT4H5M6S", "", TimePoint{});
  EXPECT_EQ(schedule.toString(), "R3/2026-03-01T00:00:05.000Z/P1Y2M3DT4H5M6S");
  EXPECT_EQ(schedule.toStateString(), "iso;;R3;2026-03-01T00:00:05.000Z;0;P1Y2M3DT4H5M6S;0");
  EXPECT_EQ(Schedule::parseState(schedule.toStateString())->toString(), schedule.toString());
}

// ---- DST, leap days, month ends -------------------------------------------------------------

TEST(ScheduleIsoTest, DailyJobInNewYorkSpringForward) {
  // 2026-03-08: 02:00 EST jumps to 03:00 EDT. A daily 02:30 job runs at 03:30 EDT that day,
  // once, and at 02:30 again the next day.
  Schedule schedule = iso("R/2026-03-06T02:30:00/P1D", "America/New_York");
  EXPECT_EQ(points(schedule, 4),
            (std::vector<std::string>{"2026-03-06T07:30:00.000Z",     // 02:30 EST
                                      "2026-03-07T07:30:00.000Z",     // 02:30 EST
                                      "2026-03-08T07:30:00.000Z",     // 03:30 EDT
                                      "2026-03-09T06:30:00.000Z"}));  // 02:30 EDT
}

TEST(ScheduleIsoTest, DailyJobInNewYorkFallBackRunsOnce) {
  // 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice. The job runs once.
  Schedule schedule = iso("R/2026-10-31T01:30:00/P1D", "America/New_York");
  EXPECT_EQ(points(schedule, 3),
            (std::vector<std::string>{"2026-10-31T05:30:00.000Z",     // 01:30 EDT
                                      "2026-11-01T05:30:00.000Z",     // 01:30 EDT, not EST too
                                      "2026-11-02T06:30:00.000Z"}));  // 01:30 EST
}

TEST(ScheduleIsoTest, BerlinTransitions) {
  // 2026-03-29: 02:00 CET jumps to 03:00 CEST; 2026-10-25: 03:00 CEST falls back to 02:00 CET.
  EXPECT_EQ(points(iso("R/2026-03-28T02:30:00/P1D", "Europe/Berlin"), 3),
            (std::vector<std::string>{"2026-03-28T01:30:00.000Z", "2026-03-29T01:30:00.000Z",
                                      "2026-03-30T00:30:00.000Z"}));
  EXPECT_EQ(points(iso("R/2026-10-24T02:30:00/P1D", "Europe/Berlin"), 3),
            (std::vector<std::string>{"2026-10-24T00:30:00.000Z", "2026-10-25T00:30:00.000Z",
                                      "2026-10-26T01:30:00.000Z"}));
  // Weeks are calendar too: 09:00 local every Monday across the spring change.
  EXPECT_EQ(points(iso("R/2026-03-23T09:00:00/P1W", "Europe/Berlin"), 2),
            (std::vector<std::string>{"2026-03-23T08:00:00.000Z", "2026-03-30T07:00:00.000Z"}));
}

TEST(ScheduleIsoTest, ClockPeriodsAddElapsedTime) {
  // PT24H is 24 hours of elapsed time: across spring forward it lands at 13:00 EDT, while P1D
  // keeps 12:00.
  EXPECT_EQ(points(iso("R/2026-03-07T12:00:00/PT24H", "America/New_York"), 2)[1],
            "2026-03-08T17:00:00.000Z");
  EXPECT_EQ(points(iso("R/2026-03-07T12:00:00/P1D", "America/New_York"), 2)[1],
            "2026-03-08T16:00:00.000Z");
  // Hourly across fall back: 01:00 EDT and 01:00 EST both run, an hour apart.
  EXPECT_EQ(points(iso("R/2026-11-01T00:00:00/PT1H", "America/New_York"), 4),
            (std::vector<std::string>{"2026-11-01T04:00:00.000Z", "2026-11-01T05:00:00.000Z",
                                      "2026-11-01T06:00:00.000Z", "2026-11-01T07:00:00.000Z"}));
  // Mixed: the day keeps the wall time, then the hour is elapsed.
  EXPECT_EQ(points(iso("R/2026-03-07T12:00:00/P1DT1H", "America/New_York"), 2)[1],
            "2026-03-08T17:00:00.000Z");
}

TEST(ScheduleIsoTest, LeapDaysAndMonthEnds) {
  EXPECT_EQ(points(iso("R/2024-02-29T12:00:00Z/P1Y"), 5),
            (std::vector<std::string>{"2024-02-29T12:00:00.000Z", "2025-02-28T12:00:00.000Z",
                                      "2026-02-28T12:00:00.000Z", "2027-02-28T12:00:00.000Z",
                                      "2028-02-29T12:00:00.000Z"}));
  // From Jan 31: the last day of shorter months, and back to the 31st when a month has one.
  EXPECT_EQ(points(iso("R/2024-01-31T00:00:00Z/P1M"), 5),
            (std::vector<std::string>{"2024-01-31T00:00:00.000Z", "2024-02-29T00:00:00.000Z",
                                      "2024-03-31T00:00:00.000Z", "2024-04-30T00:00:00.000Z",
                                      "2024-05-31T00:00:00.000Z"}));
  EXPECT_EQ(points(iso("R/2026-01-31T00:00:00Z/P1M"), 2)[1], "2026-02-28T00:00:00.000Z");
  // Days are plain days through Feb 29.
  EXPECT_EQ(points(iso("R/2024-02-28T00:00:00Z/P1D"), 3)[2], "2024-03-01T00:00:00.000Z");
  // A schedule read back from its own text continues from the written start.
  Schedule after = iso("R/2024-01-31T00:00:00Z/P1M").advanced();
  EXPECT_EQ(after.toString(), "R/2024-02-29T00:00:00.000Z/P1M");
}

// ---- skipMissed -----------------------------------------------------------------------------

TEST(ScheduleIsoTest, SkipMissedRunsOnceAfterDowntime) {
  Schedule schedule = iso("R10/2026-01-01T00:00:00Z/PT1H");
  int64_t skipped = -1;
  // Not due yet: unchanged.
  Schedule same = schedule.skipMissed(at("2025-12-31T23:00:00Z"), &skipped);
  EXPECT_EQ(skipped, 0);
  EXPECT_EQ(same.toString(), schedule.toString());
  // Due exactly now: nothing skipped.
  EXPECT_EQ(utc(schedule.skipMissed(at("2026-01-01T00:00:00Z"), &skipped).next()),
            "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(skipped, 0);
  // Down from before 00:00 until 05:30: the 05:00 point runs once; 00:00..04:00 are dropped.
  Schedule caughtUp = schedule.skipMissed(at("2026-01-01T05:30:00Z"), &skipped);
  EXPECT_EQ(skipped, 5);
  EXPECT_EQ(utc(caughtUp.next()), "2026-01-01T05:00:00.000Z");
  EXPECT_EQ(caughtUp.remaining(), 5);
  EXPECT_EQ(caughtUp.toString(), "R5/2026-01-01T05:00:00.000Z/PT1H");
  // Skipping again at the same time changes nothing: never twice.
  EXPECT_EQ(caughtUp.skipMissed(at("2026-01-01T05:30:00Z"), &skipped).toString(),
            caughtUp.toString());
  EXPECT_EQ(skipped, 0);
  Schedule ran = caughtUp.advanced();
  EXPECT_EQ(utc(ran.next()), "2026-01-01T06:00:00.000Z");
  EXPECT_EQ(ran.remaining(), 4);
  // The count bounds the catching up: R3 down for days runs its last point once.
  Schedule three =
      iso("R3/2026-01-01T00:00:00Z/PT1H").skipMissed(at("2026-02-01T00:00:00Z"), &skipped);
  EXPECT_EQ(skipped, 2);
  EXPECT_EQ(three.remaining(), 1);
  EXPECT_EQ(utc(three.next()), "2026-01-01T02:00:00.000Z");
  EXPECT_EQ(three.advanced().next(), std::nullopt);
}

TEST(ScheduleIsoTest, SkipMissedOverLongDowntimes) {
  int64_t skipped = 0;
  // A minute schedule down for ten years, a month schedule for twenty: found directly.
  Schedule minutes =
      iso("R/2016-01-01T00:00:00Z/PT1M").skipMissed(at("2026-01-01T00:00:30Z"), &skipped);
  EXPECT_EQ(utc(minutes.next()), "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(skipped, 5260320);  // 3653 days * 1440
  Schedule months =
      iso("R/2006-01-31T00:00:00Z/P1M").skipMissed(at("2026-03-15T00:00:00Z"), &skipped);
  EXPECT_EQ(utc(months.next()), "2026-02-28T00:00:00.000Z");
  EXPECT_EQ(skipped, 20 * 12 + 1);
  EXPECT_EQ(utc(months.advanced().next()), "2026-03-31T00:00:00.000Z");
  // In a zone with DST: daily 02:30 New York, down over the spring change.
  Schedule daily = iso("R/2026-03-01T02:30:00/P1D", "America/New_York")
                       .skipMissed(at("2026-03-08T12:00:00Z"), &skipped);
  EXPECT_EQ(utc(daily.next()), "2026-03-08T07:30:00.000Z");
  EXPECT_EQ(skipped, 7);
}

TEST(ScheduleIsoTest, SkipMissedAgreesWithRunningEveryPoint) {
  // skipMissed() finds the latest passed point by search; walking the points one by one must
  // land on the same one, with the same count, in zones and with calendar periods.
  for (std::string_view zone : {"", "America/New_York", "Europe/Berlin"}) {
    for (std::string_view text :
         {"R/2026-01-31T02:30:00/P1M", "R/2026-03-01T02:30:00/P1D", "R40/2026-10-01T01:30:00/P1D",
          "R/2026-01-01T00:00:00/P1W", "R/2026-03-07T23:00:00/PT7H", "R/2024-02-29T12:00:00/P1Y",
          "R/2026-01-01T00:00:00/P1DT1H"}) {
      Schedule schedule = iso(text, zone);
      for (int64_t hours : {1, 30, 24 * 40, 24 * 400, 24 * 3000}) {
        TimePoint now = *schedule.next() + std::chrono::hours{hours};
        Schedule walked = schedule;
        int64_t steps = 0;
        while (walked.advanced().next() && *walked.advanced().next() <= now) {
          walked = walked.advanced();
          ++steps;
        }
        int64_t skipped = -1;
        Schedule jumped = schedule.skipMissed(now, &skipped);
        EXPECT_EQ(jumped.toString(), walked.toString()) << text << " in '" << zone << "'";
        EXPECT_EQ(skipped, steps) << text << " in '" << zone << "'";
      }
    }
  }
}

TEST(ScheduleIsoTest, ZeroRepetitionsNeverAdvanceOrSkip) {
  Schedule done = iso("R0/2026-01-01T00:00:00Z/PT1H");
  int64_t skipped = -1;
  EXPECT_EQ(done.skipMissed(at("2027-01-01T00:00:00Z"), &skipped).next(), std::nullopt);
  EXPECT_EQ(skipped, 0);
  EXPECT_EQ(done.advanced().toString(), done.toString());
}

// ---- cron -----------------------------------------------------------------------------------

TEST(ScheduleCronTest, FieldsListsRangesStepsNames) {
  TimePoint now = at("2026-01-01T00:00:00Z");  // a Thursday
  EXPECT_EQ(points(cron("0,30 9-10 * * *", "", now), 5),
            (std::vector<std::string>{"2026-01-01T09:00:00.000Z", "2026-01-01T09:30:00.000Z",
                                      "2026-01-01T10:00:00.000Z", "2026-01-01T10:30:00.000Z",
                                      "2026-01-02T09:00:00.000Z"}));
  EXPECT_EQ(points(cron("15 8 * * mon-fri", "", now), 3),
            (std::vector<std::string>{"2026-01-01T08:15:00.000Z", "2026-01-02T08:15:00.000Z",
                                      "2026-01-05T08:15:00.000Z"}));
  EXPECT_EQ(points(cron("0 0 1 JAN,Jul *", "", now), 2),
            (std::vector<std::string>{"2026-07-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z"}));
  EXPECT_EQ(points(cron("10-40/15 0 * * *", "", now), 3),
            (std::vector<std::string>{"2026-01-01T00:10:00.000Z", "2026-01-01T00:25:00.000Z",
                                      "2026-01-01T00:40:00.000Z"}));
  EXPECT_EQ(points(cron("50/5 0 * * *", "", now), 3),  // a/step: a to the end
            (std::vector<std::string>{"2026-01-01T00:50:00.000Z", "2026-01-01T00:55:00.000Z",
                                      "2026-01-02T00:50:00.000Z"}));
  EXPECT_EQ(points(cron("0 12 * * 7", "", now), 1)[0], "2026-01-04T12:00:00.000Z");  // Sunday
  EXPECT_EQ(points(cron("0 0 29 2 *", "", now), 1)[0], "2028-02-29T00:00:00.000Z");
  EXPECT_EQ(points(cron("0 0 31 * *", "", now), 3),
            (std::vector<std::string>{"2026-01-31T00:00:00.000Z", "2026-03-31T00:00:00.000Z",
                                      "2026-05-31T00:00:00.000Z"}));
}

TEST(ScheduleCronTest, VixieDayOfMonthOrDayOfWeek) {
  TimePoint now = at("2026-02-01T00:00:00Z");
  // Both restricted: the 13th OR a Friday.
  EXPECT_EQ(points(cron("0 0 13 * fri", "", now), 3),
            (std::vector<std::string>{"2026-02-06T00:00:00.000Z", "2026-02-13T00:00:00.000Z",
                                      "2026-02-20T00:00:00.000Z"}));
  EXPECT_EQ(points(cron("0 0 10 * fri", "", now), 3),
            (std::vector<std::string>{"2026-02-06T00:00:00.000Z", "2026-02-10T00:00:00.000Z",
                                      "2026-02-13T00:00:00.000Z"}));
  // One starts with '*': both must match (only Mondays, on odd days for */2).
  EXPECT_EQ(points(cron("0 0 * * mon", "", now), 2),
            (std::vector<std::string>{"2026-02-02T00:00:00.000Z", "2026-02-09T00:00:00.000Z"}));
  EXPECT_EQ(points(cron("0 0 */2 * mon", "", now), 2),
            (std::vector<std::string>{"2026-02-09T00:00:00.000Z", "2026-02-23T00:00:00.000Z"}));
}

TEST(ScheduleCronTest, Macros) {
  TimePoint now = at("2026-01-01T00:00:30Z");
  EXPECT_EQ(utc(cron("@hourly", "", now).next()), "2026-01-01T01:00:00.000Z");
  EXPECT_EQ(utc(cron("@daily", "", now).next()), "2026-01-02T00:00:00.000Z");
  EXPECT_EQ(utc(cron("@midnight", "", now).next()), "2026-01-02T00:00:00.000Z");
  EXPECT_EQ(utc(cron("@weekly", "", now).next()), "2026-01-04T00:00:00.000Z");
  EXPECT_EQ(utc(cron("@monthly", "", now).next()), "2026-02-01T00:00:00.000Z");
  EXPECT_EQ(utc(cron("@yearly", "", now).next()), "2027-01-01T00:00:00.000Z");
  EXPECT_EQ(utc(cron("@annually", "", now).next()), "2027-01-01T00:00:00.000Z");
  EXPECT_EQ(cron("@daily", "", now).toString(), "@daily");
  EXPECT_EQ(utc(cron(" @hourly ", "", now).next()), "2026-01-01T01:00:00.000Z");
}

TEST(ScheduleCronTest, ErrorsNameTheBadField) {
  TimePoint now = at("2026-01-01T00:00:00Z");
  expectError(Schedule::parseCron("* * * *", "", now), "4 fields");
  expectError(Schedule::parseCron("60 * * * *", "", now), "minute field '60'");
  expectError(Schedule::parseCron("* 24 * * *", "", now), "hour field '24'");
  expectError(Schedule::parseCron("* * 0 * *", "", now), "day-of-month field '0'");
  expectError(Schedule::parseCron("* * * 13 *", "", now), "month field '13'");
  expectError(Schedule::parseCron("* * * * FOO", "", now), "'FOO'");
  expectError(Schedule::parseCron("5-1 * * * *", "", now), "backwards");
  expectError(Schedule::parseCron("*/0 * * * *", "", now), "step '0'");
  expectError(Schedule::parseCron("1,,2 * * * *", "", now), "empty");
  expectError(Schedule::parseCron("@reboot", "", now), "@reboot");
  expectError(Schedule::parseCron("0 0 30 2 *", "", now), "never matches");
  expectError(Schedule::parseCron("* * * * *", "Nowhere/Town", now), "Nowhere/Town");
}

TEST(ScheduleCronTest, NewYorkDaylightSaving) {
  // Spring forward (2026-03-08): a fixed 02:30 runs at 03:30 EDT, once; 02:30 again next day.
  EXPECT_EQ(points(cron("30 2 * * *", "America/New_York", at("2026-03-07T00:00:00Z")), 3),
            (std::vector<std::string>{"2026-03-07T07:30:00.000Z", "2026-03-08T07:30:00.000Z",
                                      "2026-03-09T06:30:00.000Z"}));
  // Asked at 03:10 EDT, just after the gap: the moved 02:30 (03:30 EDT) is still ahead.
  EXPECT_EQ(utc(cron("30 2 * * *", "America/New_York", at("2026-03-08T07:10:00Z")).next()),
            "2026-03-08T07:30:00.000Z");
  // Hourly: 01:00 EST then 03:00 EDT, no duplicate and no gap hour.
  EXPECT_EQ(points(cron("0 * * * *", "America/New_York", at("2026-03-08T05:30:00Z")), 3),
            (std::vector<std::string>{"2026-03-08T06:00:00.000Z", "2026-03-08T07:00:00.000Z",
                                      "2026-03-08T08:00:00.000Z"}));
  // Fall back (2026-11-01): a fixed 01:30 runs once (EDT) ...
  EXPECT_EQ(points(cron("30 1 * * *", "America/New_York", at("2026-10-31T12:00:00Z")), 3),
            (std::vector<std::string>{"2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z",
                                      "2026-11-03T06:30:00.000Z"}));
  // ... even when asked from inside the repeated hour.
  EXPECT_EQ(utc(cron("30 1 * * *", "America/New_York", at("2026-11-01T06:10:00Z")).next()),
            "2026-11-02T06:30:00.000Z");
  // ... while an every-hour job runs in both passes of 01:xx.
  EXPECT_EQ(points(cron("*/30 * * * *", "America/New_York", at("2026-11-01T04:50:00Z")), 5),
            (std::vector<std::string>{"2026-11-01T05:00:00.000Z", "2026-11-01T05:30:00.000Z",
                                      "2026-11-01T06:00:00.000Z", "2026-11-01T06:30:00.000Z",
                                      "2026-11-01T07:00:00.000Z"}));
}

TEST(ScheduleCronTest, NextFromAnyMomentAgreesWithTheSequenceAcrossTransitions) {
  // The points reached by advancing, and the first point after an arbitrary moment, must agree,
  // including in the hours around each DST change (where the fast path is not taken).
  struct Case {
    std::string_view zone;
    std::string_view from;
  };
  const Case cases[] = {{"America/New_York", "2026-03-07T20:00:00Z"},
                        {"America/New_York", "2026-10-31T20:00:00Z"},
                        {"Europe/Berlin", "2026-03-28T18:00:00Z"},
                        {"Europe/Berlin", "2026-10-24T18:00:00Z"}};
  for (std::string_view expression :
       {"*/7 * * * *", "30 2 * * *", "0 * * * *", "15,45 1-3 * * *", "*/20 * * * sun"}) {
    for (const Case& c : cases) {
      TimePoint from = at(c.from);
      std::vector<TimePoint> sequence;
      Schedule schedule = cron(expression, c.zone, from);
      while (schedule.next() && *schedule.next() < from + std::chrono::hours{30}) {
        if (!sequence.empty()) {
          ASSERT_GT(*schedule.next(), sequence.back()) << expression;
        }
        sequence.push_back(*schedule.next());
        schedule = schedule.advanced();
      }
      ASSERT_FALSE(sequence.empty()) << expression;
      for (TimePoint moment = from; moment < sequence.back(); moment += std::chrono::seconds{373}) {
        auto expected = std::upper_bound(sequence.begin(), sequence.end(), moment);
        ASSERT_NE(expected, sequence.end());
        EXPECT_EQ(utc(cron(expression, c.zone, moment).next()), utc(*expected))
            << expression << " in " << c.zone << " after " << utc(moment);
      }
    }
  }
}

TEST(ScheduleCronTest, BerlinDaylightSaving) {
  EXPECT_EQ(points(cron("30 2 * * *", "Europe/Berlin", at("2026-03-28T12:00:00Z")), 2),
            (std::vector<std::string>{"2026-03-29T01:30:00.000Z", "2026-03-30T00:30:00.000Z"}));
  EXPECT_EQ(points(cron("30 2 * * *", "Europe/Berlin", at("2026-10-24T12:00:00Z")), 2),
            (std::vector<std::string>{"2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"}));
  EXPECT_EQ(cron("0 9 * * *", "Europe/Berlin", at("2026-01-01T00:00:00Z")).timeZone(),
            "Europe/Berlin");
}

TEST(ScheduleCronTest, SkipMissed) {
  Schedule schedule = cron("*/5 * * * *", "", at("2026-01-01T00:00:00Z"));
  EXPECT_EQ(utc(schedule.next()), "2026-01-01T00:05:00.000Z");
  int64_t skipped = -1;
  Schedule caughtUp = schedule.skipMissed(at("2026-01-01T01:02:00Z"), &skipped);
  EXPECT_EQ(utc(caughtUp.next()), "2026-01-01T01:00:00.000Z");
  EXPECT_EQ(skipped, 11);
  EXPECT_EQ(utc(caughtUp.advanced().next()), "2026-01-01T01:05:00.000Z");
  EXPECT_EQ(schedule.skipMissed(at("2026-01-01T00:04:59Z"), &skipped).toString(), "*/5 * * * *");
  EXPECT_EQ(skipped, 0);
  // A year of downtime in a DST zone, every minute.
  Schedule minutes = cron("* * * * *", "America/New_York", at("2026-01-01T00:00:00Z"));
  Schedule year = minutes.skipMissed(at("2027-01-01T00:00:30Z"), &skipped);
  EXPECT_EQ(utc(year.next()), "2027-01-01T00:00:00.000Z");
  EXPECT_EQ(skipped, 365 * 1440 - 1);
}

// ---- state ----------------------------------------------------------------------------------

Schedule fromState(const Schedule& schedule) {
  auto state = Schedule::parseState(schedule.toStateString());
  EXPECT_TRUE(state.isOk()) << state.status().toString();
  return state.isOk() ? *state : schedule;
}

TEST(ScheduleStateTest, ContinuesExactlyAfterAFailover) {
  // Month ends: toString() re-anchors at the 29th; the state keeps the 31st.
  Schedule months = iso("R5/2024-01-31T00:00:00Z/P1M").advanced();
  Schedule restored = fromState(months);
  EXPECT_EQ(restored.toString(), months.toString());
  EXPECT_EQ(restored.remaining(), 4);
  EXPECT_EQ(utc(restored.advanced().next()), "2024-03-31T00:00:00.000Z");
  EXPECT_EQ(utc(iso(months.toString()).advanced().next()), "2024-03-29T00:00:00.000Z");
  // DST: the daily 02:30 job after the spring-forward day goes back to 02:30.
  Schedule daily = iso("R/2026-03-07T02:30:00/P1D", "America/New_York").advanced();
  EXPECT_EQ(utc(daily.next()), "2026-03-08T07:30:00.000Z");
  Schedule dailyRestored = fromState(daily);
  EXPECT_EQ(dailyRestored.timeZone(), "America/New_York");
  EXPECT_EQ(utc(dailyRestored.advanced().next()), "2026-03-09T06:30:00.000Z");
  // A fixed offset written in the start stays.
  Schedule offset = iso("R/2026-01-31T00:30:00+01:00/P1M");
  EXPECT_EQ(utc(fromState(offset).advanced().next()), "2026-02-27T23:30:00.000Z");
  // Cron keeps its next point even when it has passed.
  Schedule minutes = cron("*/5 * * * *", "Europe/Berlin", at("2026-01-01T00:00:00Z"));
  Schedule cronRestored = fromState(minutes);
  EXPECT_TRUE(cronRestored.isCron());
  EXPECT_EQ(utc(cronRestored.next()), "2026-01-01T00:05:00.000Z");
  EXPECT_EQ(cronRestored.toString(), "*/5 * * * *");
  EXPECT_EQ(utc(cronRestored.advanced().next()), "2026-01-01T00:10:00.000Z");
  // Done schedules stay done.
  EXPECT_EQ(fromState(iso("R0/2026-01-01T00:00:00Z/PT1H")).next(), std::nullopt);
  for (std::string_view bad : {"", "iso;", "iso;;R;2026-01-01T00:00:00.000Z;0;PT1H",
                               "iso;;Rx;2026-01-01T00:00:00.000Z;0;PT1H;0",
                               "iso;Nowhere;R;2026-01-01T00:00:00.000Z;0;PT1H;0",
                               "cron;;2026-01-01T00:00:00.000Z;* * *", "R/2026-01-01/PT1H"}) {
    EXPECT_FALSE(Schedule::parseState(bad).isOk()) << bad;
  }
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
