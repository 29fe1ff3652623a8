#include "tessera/api/duration.h"

#include <fmt/format.h>

#include <cstdint>
#include <iterator>
#include <limits>

namespace tessera::api {
namespace {

constexpr int64_t kNanosecond = 1;
constexpr int64_t kMicrosecond = 1000 * kNanosecond;
constexpr int64_t kMillisecond = 1000 * kMicrosecond;
constexpr int64_t kSecond = 1000 * kMillisecond;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kWeek = 7 * kDay;

struct Unit {
  std::string_view name;
  int64_t nanos;
};

constexpr Unit kUnits[] = {
    {"ns", kNanosecond}, {"us", kMicrosecond}, {"ms", kMillisecond}, {"secs", kSecond},
    {"mins", kMinute},   {"hrs", kHour},       {"days", kDay},       {"weeks", kWeek},
};

constexpr std::string_view kUnitList = "ns, us, ms, secs, mins, hrs, days or weeks";

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// `nanos / unit` printed like an ostream with precision 15 in its default float field, which
// is what stout's operator<< does.
std::string inUnit(int64_t nanos, int64_t unit, std::string_view name) {
  return fmt::format("{:.15g}{}", static_cast<double>(nanos) / static_cast<double>(unit), name);
}

}  // namespace

Result<std::chrono::nanoseconds> parseDuration(std::string_view text) {
  size_t end = 0;
  while (end < text.size() && (isDigit(text[end]) || text[end] == '.')) ++end;
  const std::string_view number = text.substr(0, end);
  const std::string_view unitName = text.substr(end);

  const size_t dot = number.find('.');
  const std::string_view whole = number.substr(0, dot);
  const std::string_view fraction =
      dot == std::string_view::npos ? std::string_view() : number.substr(dot + 1);
  if ((whole.empty() && fraction.empty()) || fraction.find('.') != std::string_view::npos) {
    return invalidArgument(
        "'{}' is not a valid duration: expected a number and a unit, e.g. '5secs' or '500ms'",
        text);
  }

  const Unit* unit = nullptr;
  for (const Unit& candidate : kUnits) {
    if (candidate.name == unitName) unit = &candidate;
  }
  if (unit == nullptr) {
    if (unitName.empty()) {
      return invalidArgument("'{}' is not a valid duration: missing unit (use {})", text,
                             kUnitList);
    }
    return invalidArgument("'{}' is not a valid duration: unknown unit '{}' (use {})", text,
                           unitName, kUnitList);
  }

  // Exact integer arithmetic (whole * unit + fraction * unit / 10^digits), so that `0.3secs` is
  // 300000000ns and not one less, as a double product can be.
  constexpr __int128 kMax = std::numeric_limits<int64_t>::max();
  const auto tooLarge = [&] {
    return invalidArgument("'{}' is not a valid duration: too large", text);
  };
  __int128 nanos = 0;
  for (char c : whole) {
    nanos = nanos * 10 + (c - '0');
    if (nanos > kMax) return tooLarge();
  }
  nanos *= unit->nanos;
  if (nanos > kMax) return tooLarge();
  // 18 digits are below a nanosecond for every unit; the rest cannot change the result.
  __int128 numerator = 0;
  __int128 denominator = 1;
  for (char c : fraction.substr(0, 18)) {
    numerator = numerator * 10 + (c - '0');
    denominator *= 10;
  }
  nanos += numerator * unit->nanos / denominator;
  if (nanos > kMax) return tooLarge();
  return std::chrono::nanoseconds(static_cast<int64_t>(nanos));
}

std::string formatDuration(std::chrono::nanoseconds duration) {
  std::string sign;
  int64_t nanos = duration.count();
  if (nanos < 0) {
    sign = "-";
    // The most negative value has no positive counterpart; print the largest one, as stout.
    nanos =
        nanos == std::numeric_limits<int64_t>::min() ? std::numeric_limits<int64_t>::max() : -nanos;
  }

  // Find the unit's bucket, then step one unit down when that gives a whole number and the
  // bucket's unit does not (stout: "1.42857142857143weeks" reads better as "10days").
  std::string text;
  if (nanos < kMicrosecond) {
    text = fmt::format("{}ns", nanos);
  } else if (nanos < kMillisecond) {
    text =
        nanos % kMicrosecond != 0 ? fmt::format("{}ns", nanos) : inUnit(nanos, kMicrosecond, "us");
  } else {
    // Buckets from milliseconds up: {unit, its name, the next smaller unit, its name, limit}.
    struct Bucket {
      int64_t unit;
      std::string_view name;
      int64_t smaller;
      std::string_view smallerName;
      int64_t limit;
    };
    constexpr int64_t kNoLimit = std::numeric_limits<int64_t>::max();
    constexpr Bucket kBuckets[] = {
        {kMillisecond, "ms", kMicrosecond, "us", kSecond},
        {kSecond, "secs", kMillisecond, "ms", kMinute},
        {kMinute, "mins", kSecond, "secs", kHour},
        {kHour, "hrs", kMinute, "mins", kDay},
        {kDay, "days", kHour, "hrs", kWeek},
        {kWeek, "weeks", kDay, "days", kNoLimit},
    };
    for (const Bucket& bucket : kBuckets) {
      if (nanos >= bucket.limit && bucket.limit != kNoLimit) continue;
      if (nanos % bucket.unit != 0 && nanos % bucket.smaller == 0) {
        text = inUnit(nanos, bucket.smaller, bucket.smallerName);
      } else {
        text = inUnit(nanos, bucket.unit, bucket.name);
      }
      break;
    }
    // Fifteen significant digits cannot hold every value (150002ms is 2.50003333333333mins);
    // where the decimal text would read back as another duration, print a whole number of the
    // largest unit that divides the value, so that a printed flag always loads as itself.
    const Result<std::chrono::nanoseconds> back = parseDuration(text);
    if (!back.isOk() || back.value().count() != nanos) {
      for (auto unit = std::rbegin(kUnits); unit != std::rend(kUnits); ++unit) {
        if (nanos % unit->nanos == 0) {
          text = fmt::format("{}{}", nanos / unit->nanos, unit->name);
          break;
        }
      }
    }
  }
  return sign + text;
}

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace tessera::api
