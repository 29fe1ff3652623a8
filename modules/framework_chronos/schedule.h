#pragma once

// Chronos's schedules: ISO-8601 repeating intervals (`R5/2026-01-01T00:00:00Z/PT1H`, `R` forever,
// `Rn` counting down per run, `R0` done, an empty start meaning now) and, beyond Chronos, cron
// expressions (`*/5 * * * *`), both in a time zone from the system tz database (Howard Hinnant's
// date/tz on /usr/share/zoneinfo). Pure arithmetic: every function takes `now` from its caller,
// so tests drive it with a fake clock.
//
// Calendar periods (years, months, weeks, days) keep the local wall-clock time across DST in the
// schedule's zone; clock periods (hours, minutes, seconds) add elapsed time, as Joda-Time (which
// Chronos uses) does. A local time that does not exist (spring forward) moves forward by the
// gap; one that exists twice (fall back) is the earlier.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "tessera/api/status.h"

namespace tessera::modules::chronos {

using Clock = std::chrono::system_clock;
using TimePoint = std::chrono::sys_seconds;

/// `P1Y2M3W4DT5H6M7S` (any subset; `PT0S` is refused as a repeating period).
struct Period {
  int years = 0;
  int months = 0;
  int weeks = 0;
  int days = 0;
  int64_t hours = 0;
  int64_t minutes = 0;
  int64_t seconds = 0;
  bool isZero() const;
  /// Back to ISO-8601 (`PT1H`, `P1D`).
  std::string toString() const;
};

/// A parsed schedule: the points at which a job runs.
class Schedule {
 public:
  /// Parses Chronos's `R[n]/[start]/period`. `timeZone` is an IANA name ("" = UTC; Chronos's
  /// `scheduleTimeZone`, which overrides an offset written in `start`); an empty start is
  /// `now`; a start without an offset and no zone is UTC. Errors (InvalidArgument) name the
  /// part that is wrong: the repetitions (`R`, `R0`, `R12`; no sign), the start, the period (a
  /// zero one only with `R0`/`R1`), an unknown zone.
  static api::Result<Schedule> parseIso8601(std::string_view text, std::string_view timeZone,
                                            TimePoint now);
  /// Parses a 5-field cron expression (minute hour day-of-month month day-of-week; `*`, lists,
  /// ranges, steps, month and day names; Vixie cron's day-of-month OR day-of-week rule) in
  /// `timeZone`. Its first point is the first match after `now`.
  static api::Result<Schedule> parseCron(std::string_view expression, std::string_view timeZone,
                                         TimePoint now);

  /// The next point to run at; nullopt when no run is left (`R0`).
  std::optional<TimePoint> next() const;

  /// The schedule after the run at next() (`R5/t/P` → `R4/t+P/P`, point k counted from the
  /// original start; `R` stays `R`; cron moves to its following match). Unchanged when no run
  /// is left.
  Schedule advanced() const;

  /// After downtime: when next() is at or before `now`, moves past every point at or before
  /// `now` except the latest, counting the skipped ones against `Rn` (so a job that missed
  /// several points runs once, not once per point). `skipped` receives how many were dropped.
  Schedule skipMissed(TimePoint now, int64_t* skipped = nullptr) const;

  /// Remaining repetitions: nullopt for `R` (forever) and cron.
  std::optional<int64_t> remaining() const;

  /// Chronos's text for the job's `schedule` field (`R4/2026-01-01T01:00:00.000Z/PT1H`, start in
  /// UTC), or the cron expression unchanged.
  std::string toString() const;
  std::string_view timeZone() const;
  bool isCron() const;

  /// For the state store, not for users: everything needed to continue exactly after a failover
  /// (zone, count, the anchor the points are counted from, the next point), which toString()
  /// loses: re-reading `R/2024-02-29T00:00:00.000Z/P1M` goes on with the 29th rather than the
  /// 31st the schedule began with, a cron schedule re-read with a later `now` loses a point that
  /// passed meanwhile. One line without newlines; parseState() reads it back.
  std::string toStateString() const;
  /// Reads toStateString()'s text. InvalidArgument when it is not one.
  static api::Result<Schedule> parseState(std::string_view text);

 private:
  struct Iso {
    std::optional<int64_t> repetitions;
    /// The anchor: the start as written (its wall time in the zone is what calendar periods
    /// keep), and how many periods have passed since it. Point k = start + k * period, so a
    /// month-end or DST-shifted point does not drift the ones after it.
    TimePoint start;
    Period period;
    int64_t steps = 0;
    /// The start's UTC offset when no zone is named (`+01:00` kept as a fixed zone).
    std::chrono::seconds offset{0};
  };
  struct Cron;
  Schedule();
  std::string timeZone_;
  std::variant<Iso, std::shared_ptr<const Cron>> kind_;
  std::optional<TimePoint> next_;
};

/// Parses an ISO-8601 period (`PT30M`, `P1DT12H`; designators in order, no fraction but `.0`),
/// e.g. a job's `epsilon`. InvalidArgument naming the text when it is not one.
api::Result<Period> parsePeriod(std::string_view text);

/// Parses an ISO-8601 date-time (`2026-01-01T00:00:00Z`, `...+01:00`, `...T00:00:00.000Z`, no
/// offset = `timeZone`). InvalidArgument when it is not one.
api::Result<TimePoint> parseDateTime(std::string_view text, std::string_view timeZone);

/// `2026-01-01T00:00:00.000Z`: how Chronos writes times (lastSuccess, schedule starts).
std::string formatDateTime(Clock::time_point time);

}  // namespace tessera::modules::chronos
