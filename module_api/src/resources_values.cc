// One resource's value: text helpers, fixed-point scalars, ranges, names and reservations,
// and the canonical form every parser ends with; and the public role checks.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <utility>

#include "resources_internal.h"
#include "tessera/api/json.h"
#include "tessera/api/resources.h"

namespace tessera::api::resources_internal {
namespace {

// Appends `range` to sorted, coalesced `out`, coalescing it with the last range if they touch.
void pushCoalesced(std::vector<ValueRange>& out, ValueRange range) {
  if (!out.empty() && (range.begin <= out.back().end ||
                       (out.back().end != UINT64_MAX && range.begin == out.back().end + 1))) {
    out.back().end = std::max(out.back().end, range.end);
  } else {
    out.push_back(range);
  }
}

Status checkName(std::string_view name) {
  if (name.empty()) return invalidArgument("empty name");
  if (!isValidUtf8(name)) return invalidArgument("a name is not valid UTF-8");
  if (hasSpace(name) || name.find_first_of(kReservedChars) != std::string_view::npos) {
    return invalidArgument("name '{}' contains whitespace or one of '{}'", name, kReservedChars);
  }
  return Status::ok();
}

Status checkReservations(const std::vector<Reservation>& reservations) {
  for (size_t i = 0; i < reservations.size(); ++i) {
    const Reservation& reservation = reservations[i];
    if (reservation.role == "*") return invalidArgument("role '*' cannot be reserved");
    if (Status status = validateRole(reservation.role); !status) return status;
    if (!isValidUtf8(reservation.principal)) {
      return invalidArgument("the principal of a reservation for role '{}' is not valid UTF-8",
                             reservation.role);
    }
    if (i == 0) continue;
    if (reservation.type != ReservationType::kDynamic) {
      return invalidArgument("refined reservation for role '{}' is not dynamic", reservation.role);
    }
    if (!isStrictSubrole(reservation.role, reservations[i - 1].role)) {
      return invalidArgument("role '{}' is not a refinement of '{}'", reservation.role,
                             reservations[i - 1].role);
    }
  }
  return Status::ok();
}

}  // namespace

std::string_view trim(std::string_view text) {
  size_t begin = text.find_first_not_of(kSpaces);
  if (begin == std::string_view::npos) return {};
  size_t end = text.find_last_not_of(kSpaces);
  return text.substr(begin, end - begin + 1);
}

bool hasSpace(std::string_view text) {
  return text.find_first_of(kSpaces) != std::string_view::npos;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t at = text.find(separator, start);
    if (at == std::string_view::npos) {
      parts.push_back(text.substr(start));
      return parts;
    }
    parts.push_back(text.substr(start, at - start));
    start = at + 1;
  }
}

// ---- Scalars -------------------------------------------------------------------------------

// Parses `digits[.digits]` exactly into thousandths, rounding the 4th decimal to nearest (half
// up), without going through a double. Exponents, signs, "inf" and "nan" are not numbers here.
Status parseMillis(std::string_view text, int64_t* millis) {
  bool negative = !text.empty() && text.front() == '-';
  std::string_view digits = negative ? text.substr(1) : text;
  size_t dot = digits.find('.');
  std::string_view whole = digits.substr(0, dot);
  std::string_view fraction = dot == std::string_view::npos ? "" : digits.substr(dot + 1);
  auto allDigits = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if ((whole.empty() && fraction.empty()) || !allDigits(whole) || !allDigits(fraction)) {
    return invalidArgument("'{}' is not a number", text);
  }
  int64_t value = 0;
  for (char c : whole) {
    if (__builtin_mul_overflow(value, 10, &value) ||
        __builtin_add_overflow(value, c - '0', &value)) {
      return invalidArgument("'{}' is too large", text);
    }
  }
  if (__builtin_mul_overflow(value, kScalarScale, &value)) {
    return invalidArgument("'{}' is too large", text);
  }
  int64_t scale = kScalarScale / 10;
  for (size_t i = 0; i < fraction.size() && i < 3; ++i, scale /= 10) {
    value += (fraction[i] - '0') * scale;
  }
  if (fraction.size() > 3 && fraction[3] >= '5') {
    if (__builtin_add_overflow(value, 1, &value)) return invalidArgument("'{}' is too large", text);
  }
  if (negative && value != 0) return invalidArgument("'{}' is negative", text);
  if (value == 0 &&
      std::any_of(digits.begin(), digits.end(), [](char c) { return c > '0' && c <= '9'; })) {
    return invalidArgument("'{}' is below the 0.001 resolution", text);
  }
  *millis = value;
  return Status::ok();
}

// Mesos's own conversion of a double to its fixed-point form.
Status millisFromDouble(double value, int64_t* millis) {
  if (!std::isfinite(value)) return invalidArgument("scalar '{}' is not finite", value);
  if (value < 0) return invalidArgument("scalar '{}' is negative", value);
  if (value >= static_cast<double>(kMaxMillis / kScalarScale)) {
    return invalidArgument("scalar '{}' is too large", value);
  }
  *millis = std::llround(value * static_cast<double>(kScalarScale));
  if (*millis == 0 && value != 0) {
    return invalidArgument("scalar '{}' is below the 0.001 resolution", value);
  }
  return Status::ok();
}

void appendMillis(std::string& out, int64_t millis) {
  fmt::format_to(std::back_inserter(out), "{}", millis / kScalarScale);
  int64_t fraction = millis % kScalarScale;
  if (fraction == 0) return;
  char digits[4] = {char('0' + fraction / 100), char('0' + fraction / 10 % 10),
                    char('0' + fraction % 10), 0};
  size_t length = 3;
  while (digits[length - 1] == '0') --length;
  out += '.';
  out.append(digits, length);
}

// ---- Ranges and sets -----------------------------------------------------------------------

// Sorts `ranges`, rejects inverted and overlapping ones, coalesces adjacent ones.
Status normalizeRanges(std::vector<ValueRange>& ranges) {
  for (const ValueRange& range : ranges) {
    if (range.begin > range.end) {
      return invalidArgument("range '{}-{}' has begin > end", range.begin, range.end);
    }
  }
  std::sort(ranges.begin(), ranges.end());
  std::vector<ValueRange> out;
  out.reserve(ranges.size());
  for (const ValueRange& range : ranges) {
    if (!out.empty() && range.begin <= out.back().end) {
      return invalidArgument("ranges '{}-{}' and '{}-{}' overlap", out.back().begin, out.back().end,
                             range.begin, range.end);
    }
    if (!out.empty() && out.back().end + 1 == range.begin) {
      out.back().end = range.end;
    } else {
      out.push_back(range);
    }
  }
  ranges = std::move(out);
  return Status::ok();
}

std::vector<ValueRange> unionRanges(const std::vector<ValueRange>& a,
                                    const std::vector<ValueRange>& b) {
  std::vector<ValueRange> out;
  out.reserve(a.size() + b.size());
  size_t i = 0;
  size_t j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].begin <= b[j].begin)) {
      pushCoalesced(out, a[i++]);
    } else {
      pushCoalesced(out, b[j++]);
    }
  }
  return out;
}

std::vector<ValueRange> subtractRanges(const std::vector<ValueRange>& a,
                                       const std::vector<ValueRange>& b) {
  std::vector<ValueRange> out;
  size_t j = 0;
  for (ValueRange range : a) {
    // Skip what ends before this range; b is sorted and disjoint.
    while (j < b.size() && b[j].end < range.begin) ++j;
    bool alive = true;
    size_t k = j;
    for (; k < b.size() && b[k].begin <= range.end; ++k) {
      if (b[k].begin > range.begin) out.push_back({range.begin, b[k].begin - 1});
      if (b[k].end >= range.end) {
        alive = false;
        break;
      }
      range.begin = b[k].end + 1;
    }
    if (alive) out.push_back(range);
  }
  return out;
}

bool containsRanges(const std::vector<ValueRange>& a, const std::vector<ValueRange>& b) {
  // Both coalesced: each range of b must lie inside a single range of a.
  size_t i = 0;
  for (const ValueRange& range : b) {
    while (i < a.size() && a[i].end < range.begin) ++i;
    if (i == a.size() || a[i].begin > range.begin || a[i].end < range.end) return false;
  }
  return true;
}

// ---- Roles and reservations ----------------------------------------------------------------

std::string_view reservationTypeName(ReservationType type) {
  return type == ReservationType::kStatic ? "STATIC" : "DYNAMIC";
}

// Validates an entry built by a parser and puts its value in canonical form.
Status finishEntry(Entry& entry) {
  if (Status status = checkName(entry.name); !status) return status;
  if (Status status = checkReservations(entry.reservations); !status) return status;
  switch (entry.type) {
    case ResourceType::kScalar:
      return Status::ok();
    case ResourceType::kRanges:
      return normalizeRanges(entry.ranges);
    case ResourceType::kSet:
      for (const std::string& item : entry.items) {
        if (item.empty()) return invalidArgument("empty set item");
        if (!isValidUtf8(item)) return invalidArgument("a set item is not valid UTF-8");
        if (item.find_first_of(",;{}") != std::string::npos || trim(item).size() != item.size()) {
          return invalidArgument("set item '{}' contains one of ',;{{}}' or surrounding spaces",
                                 item);
        }
      }
      std::sort(entry.items.begin(), entry.items.end());
      if (auto dup = std::adjacent_find(entry.items.begin(), entry.items.end());
          dup != entry.items.end()) {
        return invalidArgument("duplicate set item '{}'", *dup);
      }
      return Status::ok();
  }
  return invalidArgument("unknown resource type");
}

std::vector<Reservation> defaultReservations(std::string_view defaultRole) {
  if (defaultRole == "*") return {};
  return {Reservation{std::string(defaultRole), ReservationType::kStatic, ""}};
}

}  // namespace tessera::api::resources_internal

namespace tessera::api {

using resources_internal::hasSpace;
using resources_internal::kReservedChars;
using resources_internal::split;

// ---- Roles ---------------------------------------------------------------------------------

bool isStrictSubrole(std::string_view role, std::string_view ancestor) {
  return role.size() > ancestor.size() && role.starts_with(ancestor) &&
         role[ancestor.size()] == '/';
}

Status validateRole(std::string_view role) {
  if (role == "*") return Status::ok();
  if (role.empty()) return invalidArgument("empty role");
  if (!isValidUtf8(role)) return invalidArgument("a role is not valid UTF-8");
  if (hasSpace(role) || role.find_first_of(kReservedChars) != std::string_view::npos) {
    return invalidArgument("role '{}' contains whitespace or one of '{}'", role, kReservedChars);
  }
  for (std::string_view component : split(role, '/')) {
    if (component.empty()) return invalidArgument("role '{}' has an empty component", role);
    if (component == "." || component == "..") {
      return invalidArgument("role '{}' has a '.' or '..' component", role);
    }
    if (component.front() == '-')
      return invalidArgument("role '{}' has a component starting with '-'", role);
  }
  return Status::ok();
}

}  // namespace tessera::api
