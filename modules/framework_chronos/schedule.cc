#include "modules/framework_chronos/schedule.h"

#include <date/date.h>
#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bitset>
#include <cctype>
#include <charconv>
#include <exception>
#include <limits>
#include <span>
#include <vector>

namespace tessera::modules::chronos {
namespace {

using std::chrono::seconds;
using LocalTime = date::local_seconds;

// How far a DST transition can move a wall-clock time; bounds the look-around near one.
constexpr seconds kMaxShift{3 * 3600};
// A cron expression that does not match within this many days (two leap cycles) never will.
constexpr int kMaxCronDays = 366 * 9;
// Years outside this range are not schedule points (and keep the arithmetic in range).
constexpr int64_t kMinYear = 1;
constexpr int64_t kMaxYear = 9999;

/// The zone a schedule's wall-clock times live in: a tz database zone, or (none named) a fixed
/// offset from UTC, as Joda keeps the offset written in a start.
struct Zone {
  const date::time_zone* tz = nullptr;
  seconds offset{0};
};

api::Result<const date::time_zone*> lookupZone(std::string_view name) {
  if (name.empty()) return static_cast<const date::time_zone*>(nullptr);
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    return api::invalidArgument("unknown time zone '{}'", name);
  }
}

LocalTime toLocal(const Zone& zone, TimePoint time) {
  if (zone.tz == nullptr) return LocalTime{(time + zone.offset).time_since_epoch()};
  return zone.tz->to_local(time);
}

// Joda's rule: a wall time in a gap moves forward by the gap (the offset before the gap still
// applies); one that exists twice is the earlier.
TimePoint toSys(const Zone& zone, LocalTime local) {
  if (zone.tz == nullptr) return TimePoint{local.time_since_epoch() - zone.offset};
  date::local_info info = zone.tz->get_info(local);
  return TimePoint{local.time_since_epoch() - info.first.offset};
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly `count` digits at `pos`.
std::optional<int> readDigits(std::string_view text, size_t& pos, size_t count) {
  if (pos + count > text.size()) return std::nullopt;
  int value = 0;
  for (size_t i = 0; i < count; ++i) {
    char c = text[pos + i];
    if (!isDigit(c)) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  pos += count;
  return value;
}

struct DateTimeFields {
  LocalTime local;
  std::optional<seconds> offset;
};

// `YYYY-MM-DD[Thh[:mm[:ss[.f...]]]][Z|±hh[:mm]]`, as Joda's ISO date-time parser takes it.
api::Result<DateTimeFields> parseDateTimeFields(std::string_view text) {
  auto bad = [&](std::string_view what) {
    return api::invalidArgument("'{}' is not an ISO-8601 date-time: {}", text, what);
  };
  size_t pos = 0;
  auto year = readDigits(text, pos, 4);
  if (!year) return bad("expected a four-digit year");
  if (pos >= text.size() || text[pos] != '-') return bad("expected '-' after the year");
  ++pos;
  auto month = readDigits(text, pos, 2);
  if (!month) return bad("expected a two-digit month");
  if (*month < 1 || *month > 12) return bad(fmt::format("month {} out of range", *month));
  if (pos >= text.size() || text[pos] != '-') return bad("expected '-' after the month");
  ++pos;
  auto day = readDigits(text, pos, 2);
  if (!day) return bad("expected a two-digit day");
  date::year_month_day ymd{date::year{*year}, date::month{static_cast<unsigned>(*month)},
                           date::day{static_cast<unsigned>(*day)}};
  if (!ymd.ok()) return bad(fmt::format("day {} out of range for the month", *day));
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (pos < text.size() && text[pos] == 'T') {
    ++pos;
    auto h = readDigits(text, pos, 2);
    if (!h) return bad("expected a two-digit hour");
    if (*h > 23) return bad(fmt::format("hour {} out of range", *h));
    hour = *h;
    if (pos < text.size() && text[pos] == ':') {
      ++pos;
      auto m = readDigits(text, pos, 2);
      if (!m) return bad("expected two-digit minutes");
      if (*m > 59) return bad(fmt::format("minute {} out of range", *m));
      minute = *m;
      if (pos < text.size() && text[pos] == ':') {
        ++pos;
        auto s = readDigits(text, pos, 2);
        if (!s) return bad("expected two-digit seconds");
        if (*s > 59) return bad(fmt::format("second {} out of range", *s));
        second = *s;
        if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
          ++pos;
          size_t digits = 0;
          while (pos < text.size() && isDigit(text[pos])) ++pos, ++digits;
          if (digits == 0) return bad("expected digits after the decimal point");
        }
      }
    }
  }
  DateTimeFields fields;
  fields.local = date::local_days{ymd} + std::chrono::hours{hour} + std::chrono::minutes{minute} +
                 seconds{second};
  if (pos < text.size()) {
    char sign = text[pos];
    if (sign == 'Z' && pos + 1 == text.size()) {
      fields.offset = seconds{0};
      pos = text.size();
    } else if (sign == '+' || sign == '-') {
      ++pos;
      auto oh = readDigits(text, pos, 2);
      if (!oh || *oh > 23) return bad("bad offset hours");
      int om = 0;
      if (pos < text.size()) {
        if (text[pos] == ':') ++pos;
        auto m = readDigits(text, pos, 2);
        if (!m || *m > 59) return bad("bad offset minutes");
        om = *m;
      }
      if (pos != text.size()) return bad("unexpected text after the offset");
      seconds offset{*oh * 3600 + om * 60};
      fields.offset = sign == '-' ? -offset : offset;
    } else {
      return bad(fmt::format("unexpected '{}'", text.substr(pos)));
    }
  }
  return fields;
}

// The k-th point of an ISO schedule: the calendar part added to the start's wall-clock time
// (day clamped to the month's end), then the clock part as elapsed time. nullopt outside years
// 1..9999.
std::optional<TimePoint> pointAt(const Zone& zone, TimePoint start, const Period& period,
                                 int64_t k) {
  TimePoint time = start;
  if (period.years != 0 || period.months != 0 || period.weeks != 0 || period.days != 0) {
    LocalTime local = toLocal(zone, start);
    date::local_days day = date::floor<date::days>(local);
    seconds timeOfDay = local - day;
    date::year_month_day ymd{day};
    __int128 months = static_cast<__int128>(static_cast<int>(ymd.year())) * 12 +
                      (static_cast<unsigned>(ymd.month()) - 1) +
                      static_cast<__int128>(int64_t{period.years} * 12 + period.months) * k;
    __int128 year = months / 12;
    if (year < kMinYear || year > kMaxYear) return std::nullopt;
    date::year y{static_cast<int>(year)};
    date::month m{static_cast<unsigned>(months % 12) + 1};
    date::day d = std::min(ymd.day(), (y / m / date::last).day());
    __int128 addDays = static_cast<__int128>(int64_t{period.weeks} * 7 + period.days) * k;
    if (addDays > kMaxYear * 366 || addDays < -kMaxYear * 366) return std::nullopt;
    date::local_days newDay =
        date::local_days{y / m / d} + date::days{static_cast<int64_t>(addDays)};
    date::year_month_day check{newDay};
    if (static_cast<int>(check.year()) > kMaxYear) return std::nullopt;
    time = toSys(zone, newDay + timeOfDay);
  }
  __int128 clock = (static_cast<__int128>(period.hours) * 3600 +
                    static_cast<__int128>(period.minutes) * 60 + period.seconds) *
                   k;
  constexpr __int128 kMaxSeconds = static_cast<__int128>(kMaxYear) * 366 * 86400;
  if (clock > kMaxSeconds) return std::nullopt;
  time += seconds{static_cast<int64_t>(clock)};
  if (date::year_month_day{date::floor<date::days>(time)}.year() > date::year{kMaxYear}) {
    return std::nullopt;
  }
  return time;
}

}  // namespace

// ---- Period --------------------------------------------------------------------------------

bool Period::isZero() const {
  return years == 0 && months == 0 && weeks == 0 && days == 0 && hours == 0 && minutes == 0 &&
         seconds == 0;
}

std::string Period::toString() const {
  if (isZero()) return "PT0S";
  std::string out = "P";
  auto part = [&out](int64_t value, char designator) {
    if (value == 0) return;
    out += std::to_string(value);
    out.push_back(designator);
  };
  part(years, 'Y');
  part(months, 'M');
  part(weeks, 'W');
  part(days, 'D');
  if (hours != 0 || minutes != 0 || seconds != 0) {
    out.push_back('T');
    part(hours, 'H');
    part(minutes, 'M');
    part(seconds, 'S');
  }
  return out;
}

// ---- Cron ----------------------------------------------------------------------------------

struct Schedule::Cron {
  std::string expression;
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> daysOfMonth;  // 1..31
  std::bitset<13> months;       // 1..12
  std::bitset<7> daysOfWeek;    // 0 = Sunday
  bool dayOfMonthStar = false;
  bool dayOfWeekStar = false;
  bool hourStar = false;
  std::vector<int> minuteList;
  std::vector<int> hourList;

  static api::Result<std::shared_ptr<const Cron>> parse(std::string_view expression);

  bool dayMatches(date::local_days day) const {
    date::year_month_day ymd{day};
    if (!months[static_cast<unsigned>(ymd.month())]) return false;
    bool dom = daysOfMonth[static_cast<unsigned>(ymd.day())];
    bool dow = daysOfWeek[date::weekday{day}.c_encoding()];
    // Vixie cron: when either day field starts with '*', both must match (the starred one
    // matches all); when both are restricted, either may.
    if (dayOfMonthStar || dayOfWeekStar) return dom && dow;
    return dom || dow;
  }

  // The first matching wall-clock minute strictly after `local`.
  std::optional<LocalTime> nextLocal(LocalTime local) const {
    date::local_days day = date::floor<date::days>(local);
    auto minuteOfDay = date::floor<std::chrono::minutes>(local - day).count();
    int hour0 = static_cast<int>(minuteOfDay / 60);
    int minute0 = static_cast<int>(minuteOfDay % 60);
    for (int i = 0; i < kMaxCronDays; ++i, day += date::days{1}) {
      if (!dayMatches(day)) continue;
      for (int hour : hourList) {
        if (i == 0 && hour < hour0) continue;
        int from = (i == 0 && hour == hour0) ? minute0 + 1 : 0;
        auto it = std::lower_bound(minuteList.begin(), minuteList.end(), from);
        if (it == minuteList.end()) continue;
        return day + std::chrono::hours{hour} + std::chrono::minutes{*it};
      }
    }
    return std::nullopt;
  }

  // The first point strictly after `time` in `tz` (nullptr = UTC). A fixed time in a DST gap
  // runs when the gap ends (moved forward by it); in a repeated hour a fixed time runs once (the
  // earlier), while an every-hour field runs in both passes, as Vixie cron does.
  std::optional<TimePoint> nextAfter(TimePoint time, const date::time_zone* tz) const {
    if (tz == nullptr) {
      auto local = nextLocal(LocalTime{time.time_since_epoch()});
      if (!local) return std::nullopt;
      return TimePoint{local->time_since_epoch()};
    }
    // Fast path: no transition between `time` and the candidate.
    date::sys_info info = tz->get_info(time);
    auto local = nextLocal(LocalTime{(time + info.offset).time_since_epoch()});
    if (!local) return std::nullopt;
    TimePoint candidate{local->time_since_epoch() - info.offset};
    // Shortly after a transition, a wall time before `time`'s own can still lie ahead of it (a
    // time in the gap just passed, moved forward by the gap), so that case takes the slow path.
    if (time - info.begin >= kMaxShift && candidate < info.end &&
        tz->get_info(*local).result == date::local_info::unique) {
      return candidate;
    }
    // Near a transition: walk the wall-clock matches from a little before `time`.
    std::optional<TimePoint> best;
    std::optional<LocalTime> bestLocal;
    LocalTime cursor = tz->to_local(time) - kMaxShift - seconds{1};
    for (int guard = 0; guard < 100000; ++guard) {
      auto match = nextLocal(cursor);
      if (!match) break;
      if (bestLocal && *match > *bestLocal + kMaxShift) break;
      cursor = *match;
      date::local_info li = tz->get_info(*match);
      std::array<std::optional<TimePoint>, 2> instances;
      instances[0] = TimePoint{match->time_since_epoch() - li.first.offset};
      if (li.result == date::local_info::ambiguous && hourStar) {
        instances[1] = TimePoint{match->time_since_epoch() - li.second.offset};
      }
      for (const auto& instance : instances) {
        if (instance && *instance > time && (!best || *instance < *best)) {
          best = instance;
          bestLocal = match;
        }
      }
    }
    return best;
  }
};

namespace {

struct FieldSpec {
  std::string_view name;
  int low;
  int high;
  std::span<const std::string_view> names;  // names[i] stands for nameBase + i
  int nameBase;
};

constexpr std::array<std::string_view, 12> kMonthNames = {"jan", "feb", "mar", "apr", "may", "jun",
                                                          "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 7> kDayNames = {"sun", "mon", "tue", "wed",
                                                       "thu", "fri", "sat"};

std::optional<int> parseValue(std::string_view text, const FieldSpec& spec) {
  if (text.empty()) return std::nullopt;
  if (std::all_of(text.begin(), text.end(), isDigit)) {
    int value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    (void)end;
    if (ec != std::errc()) return std::nullopt;
    return value;
  }
  if (text.size() != 3) return std::nullopt;
  std::string lower;
  for (char c : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (size_t i = 0; i < spec.names.size(); ++i) {
    if (spec.names[i] == lower) return static_cast<int>(i) + spec.nameBase;
  }
  return std::nullopt;
}

// One field: comma-separated items, each `*`, `n`, `a-b`, optionally `/step`.
api::Status parseField(std::string_view field, const FieldSpec& spec, std::vector<bool>& out,
                       bool& star) {
  out.assign(static_cast<size_t>(spec.high) + 1, false);
  star = !field.empty() && field[0] == '*';
  auto bad = [&](std::string_view what) {
    return api::invalidArgument("{} field '{}': {}", spec.name, field, what);
  };
  size_t begin = 0;
  while (begin <= field.size()) {
    size_t comma = field.find(',', begin);
    std::string_view item = field.substr(
        begin, comma == std::string_view::npos ? std::string_view::npos : comma - begin);
    if (item.empty()) return bad("empty list item");
    int step = 1;
    size_t slash = item.find('/');
    std::string_view range = item.substr(0, slash);
    if (slash != std::string_view::npos) {
      std::string_view stepText = item.substr(slash + 1);
      int value = 0;
      auto [end, ec] = std::from_chars(stepText.data(), stepText.data() + stepText.size(), value);
      if (stepText.empty() || ec != std::errc() || end != stepText.data() + stepText.size() ||
          value <= 0) {
        return bad(fmt::format("bad step '{}'", stepText));
      }
      step = value;
    }
    int low = spec.low;
    int high = spec.high;
    if (range != "*") {
      size_t dash = range.find('-');
      auto first = parseValue(range.substr(0, dash), spec);
      if (!first) return bad(fmt::format("'{}' is not a value", range.substr(0, dash)));
      low = *first;
      if (dash != std::string_view::npos) {
        auto last = parseValue(range.substr(dash + 1), spec);
        if (!last) return bad(fmt::format("'{}' is not a value", range.substr(dash + 1)));
        high = *last;
      } else if (slash == std::string_view::npos) {
        high = low;  // a single value; `a/step` runs from a to the field's end
      }
      if (low < spec.low || low > spec.high || high < spec.low || high > spec.high) {
        return bad(fmt::format("'{}' out of range {}-{}", range, spec.low, spec.high));
      }
      if (low > high) return bad(fmt::format("range '{}' runs backwards", range));
    }
    for (int v = low; v <= high; v += step) out[static_cast<size_t>(v)] = true;
    if (comma == std::string_view::npos) break;
    begin = comma + 1;
  }
  return api::Status::ok();
}

}  // namespace

api::Result<std::shared_ptr<const Schedule::Cron>> Schedule::Cron::parse(
    std::string_view expression) {
  std::string_view body = expression;
  while (!body.empty() && (body.front() == ' ' || body.front() == '\t')) body.remove_prefix(1);
  while (!body.empty() && (body.back() == ' ' || body.back() == '\t')) body.remove_suffix(1);
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kMacros = {{
      {"@yearly", "0 0 1 1 *"},
      {"@annually", "0 0 1 1 *"},
      {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"},
      {"@daily", "0 0 * * *"},
      {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"},
  }};
  if (!body.empty() && body[0] == '@') {
    auto it = std::find_if(kMacros.begin(), kMacros.end(),
                           [&](const auto& macro) { return macro.first == body; });
    if (it == kMacros.end()) return api::invalidArgument("unknown cron macro '{}'", body);
    body = it->second;
  }
  std::vector<std::string_view> fields;
  size_t pos = 0;
  while (pos < body.size()) {
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
    if (pos >= body.size()) break;
    size_t end = pos;
    while (end < body.size() && body[end] != ' ' && body[end] != '\t') ++end;
    fields.push_back(body.substr(pos, end - pos));
    pos = end;
  }
  if (fields.size() != 5) {
    return api::invalidArgument("has {} fields, a cron expression has 5", fields.size());
  }
  auto cron = std::make_shared<Cron>();
  cron->expression = std::string(expression);
  std::vector<bool> bits;
  bool star = false;
  const FieldSpec minuteSpec{"minute", 0, 59, {}, 0};
  const FieldSpec hourSpec{"hour", 0, 23, {}, 0};
  const FieldSpec domSpec{"day-of-month", 1, 31, {}, 0};
  const FieldSpec monthSpec{"month", 1, 12, kMonthNames, 1};
  const FieldSpec dowSpec{"day-of-week", 0, 7, kDayNames, 0};
  if (auto s = parseField(fields[0], minuteSpec, bits, star); !s) return s;
  for (int i = 0; i < 60; ++i) {
    if (bits[i]) cron->minutes.set(i), cron->minuteList.push_back(i);
  }
  if (auto s = parseField(fields[1], hourSpec, bits, star); !s) return s;
  cron->hourStar = fields[1] == "*";
  for (int i = 0; i < 24; ++i) {
    if (bits[i]) cron->hours.set(i), cron->hourList.push_back(i);
  }
  if (auto s = parseField(fields[2], domSpec, bits, star); !s) return s;
  cron->dayOfMonthStar = star;
  for (int i = 1; i <= 31; ++i) cron->daysOfMonth[i] = bits[i];
  if (auto s = parseField(fields[3], monthSpec, bits, star); !s) return s;
  for (int i = 1; i <= 12; ++i) cron->months[i] = bits[i];
  if (auto s = parseField(fields[4], dowSpec, bits, star); !s) return s;
  cron->dayOfWeekStar = star;
  for (int i = 0; i <= 7; ++i) {
    if (bits[i]) cron->daysOfWeek.set(i % 7);
  }
  return std::shared_ptr<const Cron>(std::move(cron));
}

// ---- Schedule ------------------------------------------------------------------------------

namespace {

Zone isoZone(std::string_view timeZone, seconds offset) {
  Zone zone;
  zone.offset = offset;
  if (!timeZone.empty()) {
    auto tz = lookupZone(timeZone);
    zone.tz = tz ? *tz : nullptr;  // validated when parsed
  }
  return zone;
}

}  // namespace

Schedule::Schedule() : kind_(Iso{}) {}

api::Result<Schedule> Schedule::parseIso8601(std::string_view text, std::string_view timeZone,
                                             TimePoint now) {
  auto bad = [&](const api::Status& status) { return status.withContext("schedule '{}'", text); };
  size_t slash1 = text.find('/');
  size_t slash2 = slash1 == std::string_view::npos ? slash1 : text.find('/', slash1 + 1);
  if (slash2 == std::string_view::npos || text.find('/', slash2 + 1) != std::string_view::npos) {
    return bad(api::invalidArgument("expected R[n]/[start]/period"));
  }
  std::string_view repeat = text.substr(0, slash1);
  std::string_view startText = text.substr(slash1 + 1, slash2 - slash1 - 1);
  std::string_view periodText = text.substr(slash2 + 1);

  Iso iso;
  if (repeat.empty() || repeat[0] != 'R') {
    return bad(api::invalidArgument("repetitions '{}' must be R or R followed by a count", repeat));
  }
  if (repeat.size() > 1) {
    std::string_view count = repeat.substr(1);
    int64_t value = 0;
    auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), value);
    if (ec != std::errc() || end != count.data() + count.size() || value < 0 ||
        !std::all_of(count.begin(), count.end(), isDigit)) {
      return bad(
          api::invalidArgument("repetitions '{}' must be R or R followed by a count", repeat));
    }
    iso.repetitions = value;
  }

  auto tz = lookupZone(timeZone);
  if (!tz) return bad(tz.status());

  if (startText.empty()) {
    iso.start = now;
  } else {
    auto fields = parseDateTimeFields(startText);
    if (!fields) return bad(fields.status().withContext("start"));
    if (*tz != nullptr) {
      // Chronos's scheduleTimeZone keeps the written wall time and reads it in that zone
      // (Joda's withZoneRetainFields), whatever offset the start carries.
      iso.start = toSys(Zone{*tz, seconds{0}}, fields->local);
    } else {
      iso.offset = fields->offset.value_or(seconds{0});
      iso.start = TimePoint{fields->local.time_since_epoch() - iso.offset};
    }
  }

  if (periodText.empty()) return bad(api::invalidArgument("missing period"));
  auto period = parsePeriod(periodText);
  if (!period) return bad(period.status());
  iso.period = *period;
  if (iso.period.isZero() && !(iso.repetitions && *iso.repetitions <= 1)) {
    return bad(api::invalidArgument("period '{}' is zero; only R0 or R1 may have it", periodText));
  }

  Schedule schedule;
  schedule.timeZone_ = std::string(timeZone);
  schedule.kind_ = iso;
  if (!iso.repetitions || *iso.repetitions > 0) {
    schedule.next_ = pointAt(isoZone(timeZone, iso.offset), iso.start, iso.period, 0);
  }
  return schedule;
}

api::Result<Schedule> Schedule::parseCron(std::string_view expression, std::string_view timeZone,
                                          TimePoint now) {
  auto bad = [&](const api::Status& status) {
    return status.withContext("cron expression '{}'", expression);
  };
  auto tz = lookupZone(timeZone);
  if (!tz) return bad(tz.status());
  auto cron = Cron::parse(expression);
  if (!cron) return bad(cron.status());
  Schedule schedule;
  schedule.timeZone_ = std::string(timeZone);
  schedule.next_ = (*cron)->nextAfter(now, *tz);
  if (!schedule.next_) return bad(api::invalidArgument("never matches"));
  schedule.kind_ = std::move(*cron);
  return schedule;
}

std::optional<TimePoint> Schedule::next() const { return next_; }

Schedule Schedule::advanced() const {
  if (!next_) return *this;
  Schedule after = *this;
  if (auto* iso = std::get_if<Iso>(&after.kind_)) {
    if (iso->repetitions) --*iso->repetitions;
    ++iso->steps;
    after.next_ = std::nullopt;
    if (!iso->repetitions || *iso->repetitions > 0) {
      after.next_ = pointAt(isoZone(timeZone_, iso->offset), iso->start, iso->period, iso->steps);
    }
  } else {
    const auto& cron = std::get<std::shared_ptr<const Cron>>(after.kind_);
    auto tz = lookupZone(timeZone_);
    after.next_ = cron->nextAfter(*next_, tz ? *tz : nullptr);
  }
  return after;
}

Schedule Schedule::skipMissed(TimePoint now, int64_t* skipped) const {
  if (skipped != nullptr) *skipped = 0;
  if (!next_ || *next_ > now) return *this;
  Schedule after = *this;
  if (auto* iso = std::get_if<Iso>(&after.kind_)) {
    Zone zone = isoZone(timeZone_, iso->offset);
    // The last step allowed by the count, and whether step k is at or before now.
    int64_t limit = iso->repetitions ? iso->steps + *iso->repetitions - 1
                                     : std::numeric_limits<int64_t>::max() / 4;
    auto atOrBefore = [&](int64_t k) {
      if (k > limit) return false;
      auto point = pointAt(zone, iso->start, iso->period, k);
      return point && *point <= now;
    };
    // Gallop then bisect: points grow with k.
    int64_t low = iso->steps;  // known at or before now
    int64_t stride = 1;
    int64_t high = low + stride;
    while (atOrBefore(high)) {
      low = high;
      if (stride < (int64_t{1} << 40)) stride *= 2;
      high = low + stride;
    }
    while (high - low > 1) {
      int64_t middle = low + (high - low) / 2;
      if (atOrBefore(middle)) {
        low = middle;
      } else {
        high = middle;
      }
    }
    int64_t dropped = low - iso->steps;
    iso->steps = low;
    if (iso->repetitions) *iso->repetitions -= dropped;
    after.next_ = pointAt(zone, iso->start, iso->period, low);
    if (skipped != nullptr) *skipped = dropped;
  } else {
    const auto& cron = std::get<std::shared_ptr<const Cron>>(after.kind_);
    auto tz = lookupZone(timeZone_);
    const date::time_zone* zone = tz ? *tz : nullptr;
    TimePoint current = *next_;
    int64_t dropped = 0;
    while (true) {
      auto following = cron->nextAfter(current, zone);
      if (!following || *following > now) break;
      current = *following;
      ++dropped;
    }
    after.next_ = current;
    if (skipped != nullptr) *skipped = dropped;
  }
  return after;
}

std::optional<int64_t> Schedule::remaining() const {
  if (const auto* iso = std::get_if<Iso>(&kind_)) return iso->repetitions;
  return std::nullopt;
}

std::string Schedule::toString() const {
  if (const auto* iso = std::get_if<Iso>(&kind_)) {
    std::optional<TimePoint> start = next_;
    if (!start)
      start = pointAt(isoZone(timeZone_, iso->offset), iso->start, iso->period, iso->steps);
    // Concatenated rather than fmt::format'ed: written at every schedule point.
    std::string out = "R";
    if (iso->repetitions) out += std::to_string(*iso->repetitions);
    out.push_back('/');
    out += formatDateTime(start.value_or(iso->start));
    out.push_back('/');
    out += iso->period.toString();
    return out;
  }
  return std::get<std::shared_ptr<const Cron>>(kind_)->expression;
}

std::string_view Schedule::timeZone() const { return timeZone_; }

bool Schedule::isCron() const { return !std::holds_alternative<Iso>(kind_); }

// `P1Y2M3W4DT5H6M7S`, designators in that order, each at most once.
api::Result<Period> parsePeriod(std::string_view text) {
  auto bad = [&](std::string_view what) {
    return api::invalidArgument("period '{}' is not an ISO-8601 period: {}", text, what);
  };
  if (text.empty() || text[0] != 'P') return bad("it must start with 'P'");
  Period period;
  size_t pos = 1;
  bool inTime = false;
  bool any = false;
  bool anyTime = false;
  std::string_view order = "YMWD";
  size_t next = 0;  // index into `order` (date part) or "HMS" (time part)
  while (pos < text.size()) {
    if (text[pos] == 'T') {
      if (inTime) return bad("'T' twice");
      inTime = true;
      order = "HMS";
      next = 0;
      ++pos;
      continue;
    }
    size_t begin = pos;
    while (pos < text.size() && isDigit(text[pos])) ++pos;
    if (pos == begin) return bad(fmt::format("expected a number at '{}'", text.substr(begin)));
    int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data() + begin, text.data() + pos, value);
    if (ec != std::errc() || value > std::numeric_limits<int32_t>::max()) {
      return bad(fmt::format("number '{}' too large", text.substr(begin, pos - begin)));
    }
    (void)end;
    if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
      size_t fraction = ++pos;
      while (pos < text.size() && isDigit(text[pos])) ++pos;
      std::string_view digits = text.substr(fraction, pos - fraction);
      if (!inTime || pos >= text.size() || text[pos] != 'S') {
        return bad("only seconds may have a fraction");
      }
      if (digits.find_first_not_of('0') != std::string_view::npos) {
        return bad("fractions of a second are not supported");
      }
    }
    if (pos >= text.size()) return bad("a number without a designator");
    char designator = text[pos++];
    size_t found = order.find(designator, next);
    if (found == std::string_view::npos) {
      return bad(fmt::format("unexpected designator '{}'", designator));
    }
    next = found + 1;
    any = true;
    if (!inTime) {
      int v = static_cast<int>(value);
      if (designator == 'Y') period.years = v;
      if (designator == 'M') period.months = v;
      if (designator == 'W') period.weeks = v;
      if (designator == 'D') period.days = v;
    } else {
      anyTime = true;
      if (designator == 'H') period.hours = value;
      if (designator == 'M') period.minutes = value;
      if (designator == 'S') period.seconds = value;
    }
  }
  if (!any) return bad("no component");
  if (inTime && !anyTime) return bad("'T' without hours, minutes or seconds");
  return period;
}

// `iso;<zone>;<R|Rn>;<anchor>;<offset seconds>;<period>;<steps>` or
// `cron;<zone>;<next>;<expression>`.
std::string Schedule::toStateString() const {
  if (const auto* iso = std::get_if<Iso>(&kind_)) {
    // Concatenated rather than fmt::format'ed: written with every record of the job.
    std::string out = "iso;";
    out.reserve(96);
    out += timeZone_;
    out += ";R";
    if (iso->repetitions) out += std::to_string(*iso->repetitions);
    out.push_back(';');
    out += formatDateTime(iso->start);
    out.push_back(';');
    out += std::to_string(iso->offset.count());
    out.push_back(';');
    out += iso->period.toString();
    out.push_back(';');
    out += std::to_string(iso->steps);
    return out;
  }
  return fmt::format("cron;{};{};{}", timeZone_, next_ ? formatDateTime(*next_) : "",
                     std::get<std::shared_ptr<const Cron>>(kind_)->expression);
}

api::Result<Schedule> Schedule::parseState(std::string_view text) {
  auto bad = [&](std::string_view what) {
    return api::invalidArgument("schedule state '{}': {}", text, what);
  };
  std::vector<std::string_view> parts;
  size_t begin = 0;
  while (true) {
    size_t semicolon = text.find(';', begin);
    if (semicolon == std::string_view::npos ||
        (parts.size() == 3 && text.substr(0, 5) == "cron;")) {
      parts.push_back(text.substr(begin));
      break;
    }
    parts.push_back(text.substr(begin, semicolon - begin));
    begin = semicolon + 1;
  }
  auto readInt = [](std::string_view digits, int64_t& out) {
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
    return !digits.empty() && ec == std::errc() && end == digits.data() + digits.size();
  };
  Schedule schedule;
  if (parts.size() == 7 && parts[0] == "iso") {
    auto tz = lookupZone(parts[1]);
    if (!tz) return bad(tz.status().message());
    Iso iso;
    if (parts[2].empty() || parts[2][0] != 'R') return bad("bad repetitions");
    if (parts[2].size() > 1) {
      int64_t count = 0;
      if (!readInt(parts[2].substr(1), count) || count < 0) return bad("bad repetitions");
      iso.repetitions = count;
    }
    auto start = parseDateTime(parts[3], "");
    if (!start) return bad(start.status().message());
    iso.start = *start;
    int64_t offset = 0;
    if (!readInt(parts[4], offset)) return bad("bad offset");
    iso.offset = seconds{offset};
    auto period = parsePeriod(parts[5]);
    if (!period) return bad(period.status().message());
    iso.period = *period;
    if (!readInt(parts[6], iso.steps) || iso.steps < 0) return bad("bad steps");
    schedule.timeZone_ = std::string(parts[1]);
    if (!iso.repetitions || *iso.repetitions > 0) {
      schedule.next_ = pointAt(isoZone(parts[1], iso.offset), iso.start, iso.period, iso.steps);
    }
    schedule.kind_ = iso;
    return schedule;
  }
  if (parts.size() == 4 && parts[0] == "cron") {
    auto tz = lookupZone(parts[1]);
    if (!tz) return bad(tz.status().message());
    auto cron = Cron::parse(parts[3]);
    if (!cron) return bad(cron.status().message());
    if (!parts[2].empty()) {
      auto next = parseDateTime(parts[2], "");
      if (!next) return bad(next.status().message());
      schedule.next_ = *next;
    }
    schedule.timeZone_ = std::string(parts[1]);
    schedule.kind_ = std::move(*cron);
    return schedule;
  }
  return bad("expected iso;... or cron;...");
}

api::Result<TimePoint> parseDateTime(std::string_view text, std::string_view timeZone) {
  auto fields = parseDateTimeFields(text);
  if (!fields) return fields.status();
  if (fields->offset) return TimePoint{fields->local.time_since_epoch() - *fields->offset};
  auto tz = lookupZone(timeZone);
  if (!tz) return tz.status();
  return toSys(Zone{*tz, seconds{0}}, fields->local);
}

// Civil-date arithmetic and digits written by hand instead of date::format (a locale-imbued
// stream per call) or fmt (~5,000 instructions a call): the scheduler formats several times for
// every run (its record's schedule state, lastSuccess, the task's CHRONOS_JOB_RUN_TIME), which
// made this 17% of a run's cost in bench/chronos_bench.
std::string formatDateTime(Clock::time_point time) {
  const auto millis = date::floor<std::chrono::milliseconds>(time);
  const auto day = date::floor<date::days>(millis);
  const date::year_month_day ymd(day);
  const date::hh_mm_ss<std::chrono::milliseconds> clock(millis - day);
  const int year = static_cast<int>(ymd.year());
  if (year < 0 || year > 9999) {
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", year,
                       static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                       clock.hours().count(), clock.minutes().count(), clock.seconds().count(),
                       clock.subseconds().count());
  }
  // `YYYY-MM-DDTHH:MM:SS.mmmZ`
  std::string out = "0000-00-00T00:00:00.000Z";
  auto put = [&out](size_t at, size_t width, int64_t value) {
    for (size_t i = at + width; i > at; --i) {
      out[i - 1] = static_cast<char>('0' + value % 10);
      value /= 10;
    }
  };
  put(0, 4, year);
  put(5, 2, static_cast<unsigned>(ymd.month()));
  put(8, 2, static_cast<unsigned>(ymd.day()));
  put(11, 2, clock.hours().count());
  put(14, 2, clock.minutes().count());
  put(17, 2, clock.seconds().count());
  put(20, 3, clock.subseconds().count());
  return out;
}

}  // namespace tessera::modules::chronos
