#include "tessera/api/resources.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <compare>
#include <limits>
#include <utility>

#include "tessera/api/json.h"

namespace tessera::api {
namespace {

using Entry = Resources::Entry;

constexpr std::string_view kSpaces = " \t\r\n\v\f";

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

constexpr int64_t kMaxMillis = std::numeric_limits<int64_t>::max();

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

// Appends `range` to sorted, coalesced `out`, coalescing it with the last range if they touch.
void pushCoalesced(std::vector<ValueRange>& out, ValueRange range) {
  if (!out.empty() && (range.begin <= out.back().end ||
                       (out.back().end != UINT64_MAX && range.begin == out.back().end + 1))) {
    out.back().end = std::max(out.back().end, range.end);
  } else {
    out.push_back(range);
  }
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

constexpr std::string_view kReservedChars = "*,;:()[]{}";

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

bool isEmptyValue(const Entry& entry) {
  switch (entry.type) {
    case ResourceType::kScalar:
      return entry.millis <= 0;
    case ResourceType::kRanges:
      return entry.ranges.empty();
    case ResourceType::kSet:
      return entry.items.empty();
  }
  return true;
}

std::weak_ordering compareKey(const Entry& a, const Entry& b) {
  if (int c = a.name.compare(b.name); c != 0)
    return c < 0 ? std::weak_ordering::less : std::weak_ordering::greater;
  if (a.type != b.type) return a.type <=> b.type;
  if (a.reservations.empty() && b.reservations.empty()) return std::weak_ordering::equivalent;
  return a.reservations <=> b.reservations;
}

bool keyLess(const Entry& a, const Entry& b) { return compareKey(a, b) < 0; }

// Advances `pos` to the first of `entries` whose key is not below `entry`'s, and says whether
// its key is equal: one key comparison per step of a merge.
bool seek(const std::vector<Entry>& entries, const Entry& entry, size_t& pos) {
  for (; pos < entries.size(); ++pos) {
    std::weak_ordering order = compareKey(entries[pos], entry);
    if (order >= 0) return order == 0;
  }
  return false;
}

// Sums of untrusted scalars must not overflow; they stop at the largest value instead.
int64_t saturatingAdd(int64_t a, int64_t b) {
  int64_t sum;
  return __builtin_add_overflow(a, b, &sum) ? kMaxMillis : sum;
}

// Adds b's value to a's; their keys are equal. `b` may be `a`.
void addValue(Entry& a, const Entry& b) {
  switch (a.type) {
    case ResourceType::kScalar:
      a.millis = saturatingAdd(a.millis, b.millis);
      return;
    case ResourceType::kRanges:
      a.ranges = unionRanges(a.ranges, b.ranges);
      return;
    case ResourceType::kSet: {
      std::vector<std::string> out;
      out.reserve(a.items.size() + b.items.size());
      std::set_union(a.items.begin(), a.items.end(), b.items.begin(), b.items.end(),
                     std::back_inserter(out));
      a.items = std::move(out);
      return;
    }
  }
}

// Removes b's value from a's; their keys are equal and they are distinct objects.
void subtractValue(Entry& a, const Entry& b) {
  switch (a.type) {
    case ResourceType::kScalar:
      a.millis -= b.millis;
      return;
    case ResourceType::kRanges:
      a.ranges = subtractRanges(a.ranges, b.ranges);
      return;
    case ResourceType::kSet: {
      auto kept = std::remove_if(a.items.begin(), a.items.end(), [&](const std::string& item) {
        return std::binary_search(b.items.begin(), b.items.end(), item);
      });
      a.items.erase(kept, a.items.end());
      return;
    }
  }
}

bool containsValue(const Entry& a, const Entry& b) {
  switch (a.type) {
    case ResourceType::kScalar:
      return a.millis >= b.millis;
    case ResourceType::kRanges:
      return containsRanges(a.ranges, b.ranges);
    case ResourceType::kSet:
      return std::includes(a.items.begin(), a.items.end(), b.items.begin(), b.items.end());
  }
  return false;
}

std::vector<Reservation> defaultReservations(std::string_view defaultRole) {
  if (defaultRole == "*") return {};
  return {Reservation{std::string(defaultRole), ReservationType::kStatic, ""}};
}

// ---- Text form -----------------------------------------------------------------------------

// Parses "reservations: [(TYPE,role[,principal]),...]" (the part after "reservations:").
Status parseReservationStack(std::string_view text, std::vector<Reservation>* out) {
  text = trim(text);
  if (text.size() < 2 || text.front() != '[' || text.back() != ']') {
    return invalidArgument("'{}' is not a '[(TYPE,role[,principal]),...]' list", text);
  }
  std::string_view rest = trim(text.substr(1, text.size() - 2));
  while (!rest.empty()) {
    size_t close = rest.find(')');
    if (rest.front() != '(' || close == std::string_view::npos) {
      return invalidArgument("'{}' is not a '(TYPE,role[,principal])' reservation", rest);
    }
    std::vector<std::string_view> fields = split(rest.substr(1, close - 1), ',');
    if (fields.size() < 2 || fields.size() > 3) {
      return invalidArgument("'{}' is not a '(TYPE,role[,principal])' reservation",
                             rest.substr(0, close + 1));
    }
    Reservation reservation;
    std::string_view type = trim(fields[0]);
    if (type == "STATIC") {
      reservation.type = ReservationType::kStatic;
    } else if (type == "DYNAMIC") {
      reservation.type = ReservationType::kDynamic;
    } else {
      return invalidArgument("unknown reservation type '{}'", type);
    }
    reservation.role = std::string(trim(fields[1]));
    if (fields.size() == 3) {
      reservation.principal = std::string(trim(fields[2]));
      if (reservation.principal.empty()) return invalidArgument("empty principal");
    }
    out->push_back(std::move(reservation));
    rest = trim(rest.substr(close + 1));
    if (!rest.empty()) {
      if (rest.front() != ',') return invalidArgument("expected ',' before '{}'", rest);
      rest = trim(rest.substr(1));
    }
  }
  return Status::ok();
}

// Parses what is inside "name(...)".
Status parseReservationSuffix(std::string_view text, std::vector<Reservation>* out) {
  text = trim(text);
  constexpr std::string_view kStack = "reservations:";
  if (text.starts_with(kStack)) return parseReservationStack(text.substr(kStack.size()), out);
  std::vector<std::string_view> fields = split(text, ',');
  if (fields.size() > 2) return invalidArgument("'{}' is not 'role' or 'role,principal'", text);
  std::string_view role = trim(fields[0]);
  if (role.empty()) return invalidArgument("empty role");
  if (fields.size() == 1) {
    if (role != "*") out->push_back({std::string(role), ReservationType::kStatic, ""});
    return Status::ok();
  }
  std::string_view principal = trim(fields[1]);
  if (principal.empty()) return invalidArgument("empty principal");
  out->push_back({std::string(role), ReservationType::kDynamic, std::string(principal)});
  return Status::ok();
}

Status parseTextValue(std::string_view text, Entry* entry) {
  if (text.empty()) return invalidArgument("empty value");
  if (text.front() == '[') {
    if (text.back() != ']' || text.size() < 2) return invalidArgument("unclosed '['");
    entry->type = ResourceType::kRanges;
    std::string_view inner = trim(text.substr(1, text.size() - 2));
    if (inner.empty()) return Status::ok();
    for (std::string_view part : split(inner, ',')) {
      part = trim(part);
      size_t dash = part.find('-');
      std::string_view begin = trim(part.substr(0, dash));
      std::string_view end = dash == std::string_view::npos ? begin : trim(part.substr(dash + 1));
      ValueRange range;
      auto parseBound = [&](std::string_view bound, uint64_t* value) -> Status {
        if (bound.empty() ||
            !std::all_of(bound.begin(), bound.end(), [](char c) { return c >= '0' && c <= '9'; })) {
          return invalidArgument("range '{}' is not 'begin-end'", part);
        }
        *value = 0;
        for (char c : bound) {
          if (__builtin_mul_overflow(*value, 10, value) ||
              __builtin_add_overflow(*value, c - '0', value)) {
            return invalidArgument("range '{}' is out of bounds", part);
          }
        }
        return Status::ok();
      };
      if (Status status = parseBound(begin, &range.begin); !status) return status;
      if (Status status = parseBound(end, &range.end); !status) return status;
      entry->ranges.push_back(range);
    }
    return Status::ok();
  }
  if (text.front() == '{') {
    if (text.back() != '}' || text.size() < 2) return invalidArgument("unclosed '{{'");
    entry->type = ResourceType::kSet;
    std::string_view inner = trim(text.substr(1, text.size() - 2));
    if (inner.empty()) return Status::ok();
    for (std::string_view item : split(inner, ',')) entry->items.emplace_back(trim(item));
    return Status::ok();
  }
  if (text.back() == ']') return invalidArgument("unopened ']'");
  if (text.back() == '}') return invalidArgument("unopened '}}'");
  entry->type = ResourceType::kScalar;
  return parseMillis(text, &entry->millis);
}

Status parseTextToken(std::string_view token, std::string_view defaultRole, Entry* entry) {
  size_t nameEnd = token.find_first_of("(:");
  if (nameEnd == std::string_view::npos) return invalidArgument("missing ':'");
  entry->name = std::string(trim(token.substr(0, nameEnd)));
  size_t colon = nameEnd;
  if (token[nameEnd] == '(') {
    // Find the matching ')', allowing the nested parentheses of the "reservations:" form.
    int depth = 0;
    size_t close = std::string_view::npos;
    for (size_t i = nameEnd; i < token.size(); ++i) {
      if (token[i] == '(') ++depth;
      if (token[i] == ')' && --depth == 0) {
        close = i;
        break;
      }
    }
    if (close == std::string_view::npos) return invalidArgument("unclosed '('");
    if (Status status = parseReservationSuffix(token.substr(nameEnd + 1, close - nameEnd - 1),
                                               &entry->reservations);
        !status) {
      return status;
    }
    colon = token.find_first_not_of(kSpaces, close + 1);
    if (colon == std::string_view::npos || token[colon] != ':')
      return invalidArgument("missing ':'");
  } else {
    entry->reservations = defaultReservations(defaultRole);
  }
  if (entry->name.empty()) return invalidArgument("empty name");
  if (Status status = parseTextValue(trim(token.substr(colon + 1)), entry); !status) return status;
  return finishEntry(*entry);
}

void appendReservations(std::string& out, const std::vector<Reservation>& reservations) {
  if (reservations.empty()) return;
  if (reservations.size() == 1) {
    const Reservation& only = reservations.front();
    if (only.type == ReservationType::kStatic && only.principal.empty()) {
      fmt::format_to(std::back_inserter(out), "({})", only.role);
      return;
    }
    if (only.type == ReservationType::kDynamic && !only.principal.empty()) {
      fmt::format_to(std::back_inserter(out), "({},{})", only.role, only.principal);
      return;
    }
  }
  out += "(reservations: [";
  for (size_t i = 0; i < reservations.size(); ++i) {
    const Reservation& reservation = reservations[i];
    if (i > 0) out += ',';
    fmt::format_to(std::back_inserter(out), "({},{}", reservationTypeName(reservation.type),
                   reservation.role);
    if (!reservation.principal.empty())
      fmt::format_to(std::back_inserter(out), ",{}", reservation.principal);
    out += ')';
  }
  out += "])";
}

// ---- JSON form -----------------------------------------------------------------------------

using Poco::JSON::Array;
using Poco::JSON::Object;

Status jsonString(const Object& object, const std::string& key, std::string* out) {
  Poco::Dynamic::Var value = object.get(key);
  if (!value.isString()) return invalidArgument("'{}' is not a string", key);
  *out = value.extract<std::string>();
  return Status::ok();
}

Status jsonUint64(const Object& object, const std::string& key, uint64_t* out) {
  Poco::Dynamic::Var value = object.get(key);
  if (!value.isInteger()) return invalidArgument("'{}' is not a non-negative integer", key);
  if (value.isSigned() && value.convert<int64_t>() < 0) {
    return invalidArgument("'{}' is not a non-negative integer", key);
  }
  *out = value.convert<uint64_t>();
  return Status::ok();
}

Status jsonToEntry(const Object& object, std::string_view defaultRole, Entry* entry) {
  if (!object.has("name")) return invalidArgument("missing 'name'");
  if (Status status = jsonString(object, "name", &entry->name); !status) return status;
  std::string type = "SCALAR";  // protobuf's default for Value.Type
  if (object.has("type")) {
    if (Status status = jsonString(object, "type", &type); !status) return status;
  }
  if (type == "SCALAR") {
    entry->type = ResourceType::kScalar;
    Object::Ptr scalar = object.getObject("scalar");
    if (!scalar || !scalar->has("value") || !scalar->get("value").isNumeric()) {
      return invalidArgument("missing numeric 'scalar.value'");
    }
    if (Status status = millisFromDouble(scalar->get("value").convert<double>(), &entry->millis);
        !status) {
      return status;
    }
  } else if (type == "RANGES") {
    entry->type = ResourceType::kRanges;
    Object::Ptr ranges = object.getObject("ranges");
    if (!ranges) return invalidArgument("missing 'ranges'");
    if (ranges->has("range")) {
      Array::Ptr list = ranges->getArray("range");
      if (!list) return invalidArgument("'ranges.range' is not an array");
      for (size_t i = 0; i < list->size(); ++i) {
        Object::Ptr range = list->getObject(static_cast<unsigned>(i));
        if (!range) return invalidArgument("'ranges.range[{}]' is not an object", i);
        ValueRange value;
        if (Status status = jsonUint64(*range, "begin", &value.begin); !status) return status;
        if (Status status = jsonUint64(*range, "end", &value.end); !status) return status;
        entry->ranges.push_back(value);
      }
    }
  } else if (type == "SET") {
    entry->type = ResourceType::kSet;
    Object::Ptr set = object.getObject("set");
    if (!set) return invalidArgument("missing 'set'");
    if (set->has("item")) {
      Array::Ptr items = set->getArray("item");
      if (!items) return invalidArgument("'set.item' is not an array");
      for (size_t i = 0; i < items->size(); ++i) {
        Poco::Dynamic::Var item = items->get(static_cast<unsigned>(i));
        if (!item.isString()) return invalidArgument("'set.item[{}]' is not a string", i);
        entry->items.push_back(item.extract<std::string>());
      }
    }
  } else {
    return invalidArgument("unknown type '{}'", type);
  }

  if (object.has("reservations")) {
    Array::Ptr reservations = object.getArray("reservations");
    if (!reservations) return invalidArgument("'reservations' is not an array");
    for (size_t i = 0; i < reservations->size(); ++i) {
      Object::Ptr info = reservations->getObject(static_cast<unsigned>(i));
      if (!info) return invalidArgument("'reservations[{}]' is not an object", i);
      Reservation reservation;
      std::string reservationType;
      if (!info->has("type") || !info->has("role")) {
        return invalidArgument("'reservations[{}]' needs a 'type' and a 'role'", i);
      }
      if (Status status = jsonString(*info, "type", &reservationType); !status) return status;
      if (reservationType == "STATIC") {
        reservation.type = ReservationType::kStatic;
      } else if (reservationType == "DYNAMIC") {
        reservation.type = ReservationType::kDynamic;
      } else {
        return invalidArgument("unknown reservation type '{}'", reservationType);
      }
      if (Status status = jsonString(*info, "role", &reservation.role); !status) return status;
      if (info->has("principal")) {
        if (Status status = jsonString(*info, "principal", &reservation.principal); !status)
          return status;
      }
      entry->reservations.push_back(std::move(reservation));
    }
  }
  if (entry->reservations.empty()) {
    if (object.has("role")) {
      std::string role;
      if (Status status = jsonString(object, "role", &role); !status) return status;
      entry->reservations = defaultReservations(role);
    } else {
      entry->reservations = defaultReservations(defaultRole);
    }
  }
  return finishEntry(*entry);
}

}  // namespace

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

// ---- Resources -----------------------------------------------------------------------------

Result<Resources> Resources::parse(std::string_view text, std::string_view defaultRole) {
  if (Status status = validateRole(defaultRole); !status) {
    return status.withContext("bad default role");
  }
  Resources result;
  std::string_view trimmed = trim(text);
  if (trimmed.starts_with('{')) {
    // No resource name starts with '{': this is JSON, but not Mesos's array form.
    return invalidArgument("resources JSON is not an array");
  }
  if (trimmed.starts_with('[')) {
    Poco::Dynamic::Var parsed;
    try {
      Poco::JSON::Parser parser;
      parsed = parser.parse(std::string(trimmed));
    } catch (const Poco::Exception& e) {
      return invalidArgument("bad resources JSON: {}", e.displayText());
    }
    if (parsed.type() != typeid(Array::Ptr))
      return invalidArgument("resources JSON is not an array");
    Array::Ptr array = parsed.extract<Array::Ptr>();
    for (size_t i = 0; i < array->size(); ++i) {
      Object::Ptr object = array->getObject(static_cast<unsigned>(i));
      if (!object) return invalidArgument("bad resource at index {}: not an object", i);
      Entry entry;
      Status status;
      try {
        status = jsonToEntry(*object, defaultRole, &entry);
      } catch (const Poco::Exception& e) {
        status = invalidArgument("{}", e.displayText());
      } catch (const std::exception& e) {
        // Poco's Var conversions can also throw std::bad_cast; nothing may escape the API.
        status = invalidArgument("{}", e.what());
      }
      if (!status) {
        Poco::Dynamic::Var name = object->get("name");
        std::string shown = name.isString() ? name.extract<std::string>() : "";
        return status.withContext("bad resource '{}' at index {}", shown, i);
      }
      result.add(std::move(entry));
    }
    return result;
  }
  for (std::string_view token : split(trimmed, ';')) {
    token = trim(token);
    if (token.empty()) continue;
    Entry entry;
    if (Status status = parseTextToken(token, defaultRole, &entry); !status) {
      return status.withContext("bad resource '{}'", token);
    }
    result.add(std::move(entry));
  }
  return result;
}

Result<Resources> Resources::fromProto(
    const google::protobuf::RepeatedPtrField<tessera::v1::Resource>& resources) {
  Resources result;
  for (int i = 0; i < resources.size(); ++i) {
    const tessera::v1::Resource& resource = resources.Get(i);
    Entry entry;
    entry.name = resource.name();
    Status status;
    switch (resource.type()) {
      case tessera::v1::Value::SCALAR:
        entry.type = ResourceType::kScalar;
        status = resource.has_scalar() ? millisFromDouble(resource.scalar().value(), &entry.millis)
                                       : invalidArgument("missing 'scalar'");
        break;
      case tessera::v1::Value::RANGES:
        entry.type = ResourceType::kRanges;
        for (const auto& range : resource.ranges().range()) {
          entry.ranges.push_back({range.begin(), range.end()});
        }
        break;
      case tessera::v1::Value::SET:
        entry.type = ResourceType::kSet;
        entry.items.assign(resource.set().item().begin(), resource.set().item().end());
        break;
      default:
        status = invalidArgument("unsupported type '{}'",
                                 tessera::v1::Value::Type_Name(resource.type()));
    }
    for (const auto& info : resource.reservations()) {
      if (!status) break;
      if (info.type() == tessera::v1::Resource::ReservationInfo::STATIC) {
        entry.reservations.push_back({info.role(), ReservationType::kStatic, info.principal()});
      } else if (info.type() == tessera::v1::Resource::ReservationInfo::DYNAMIC) {
        entry.reservations.push_back({info.role(), ReservationType::kDynamic, info.principal()});
      } else {
        status = invalidArgument("reservation for role '{}' has no type", info.role());
      }
    }
    if (status && entry.reservations.empty())
      entry.reservations = defaultReservations(resource.role());
    if (status) status = finishEntry(entry);
    if (!status) return status.withContext("bad resource '{}' at index {}", resource.name(), i);
    result.add(std::move(entry));
  }
  return result;
}

Resources Resources::ofScalar(std::string_view name, int64_t millis) {
  Resources result;
  if (millis > 0) {
    Entry entry;
    entry.name = std::string(name);
    entry.millis = millis;
    result.entries_.push_back(std::move(entry));
  }
  return result;
}

std::string Resources::toString() const {
  std::string out;
  for (const Entry& entry : entries_) {
    if (!out.empty()) out += ';';
    out += entry.name;
    appendReservations(out, entry.reservations);
    out += ':';
    switch (entry.type) {
      case ResourceType::kScalar:
        appendMillis(out, entry.millis);
        break;
      case ResourceType::kRanges:
        out += '[';
        for (size_t i = 0; i < entry.ranges.size(); ++i) {
          fmt::format_to(std::back_inserter(out), "{}{}-{}", i > 0 ? "," : "",
                         entry.ranges[i].begin, entry.ranges[i].end);
        }
        out += ']';
        break;
      case ResourceType::kSet:
        fmt::format_to(std::back_inserter(out), "{{{}}}", fmt::join(entry.items, ","));
        break;
    }
  }
  return out;
}

std::string Resources::toJson() const {
  std::string out = "[";
  for (const Entry& entry : entries_) {
    if (out.size() > 1) out += ',';
    out += "{\"name\":";
    appendJsonString(out, entry.name);
    switch (entry.type) {
      case ResourceType::kScalar:
        out += ",\"type\":\"SCALAR\",\"scalar\":{\"value\":";
        appendMillis(out, entry.millis);
        out += '}';
        break;
      case ResourceType::kRanges:
        out += ",\"type\":\"RANGES\",\"ranges\":{\"range\":[";
        for (size_t i = 0; i < entry.ranges.size(); ++i) {
          fmt::format_to(std::back_inserter(out), "{}{{\"begin\":{},\"end\":{}}}", i > 0 ? "," : "",
                         entry.ranges[i].begin, entry.ranges[i].end);
        }
        out += "]}";
        break;
      case ResourceType::kSet:
        out += ",\"type\":\"SET\",\"set\":{\"item\":[";
        for (size_t i = 0; i < entry.items.size(); ++i) {
          if (i > 0) out += ',';
          appendJsonString(out, entry.items[i]);
        }
        out += "]}";
        break;
    }
    if (!entry.reservations.empty()) {
      out += ",\"reservations\":[";
      for (size_t i = 0; i < entry.reservations.size(); ++i) {
        const Reservation& reservation = entry.reservations[i];
        if (i > 0) out += ',';
        fmt::format_to(std::back_inserter(out),
                       "{{\"type\":\"{}\",\"role\":", reservationTypeName(reservation.type));
        appendJsonString(out, reservation.role);
        if (!reservation.principal.empty()) {
          out += ",\"principal\":";
          appendJsonString(out, reservation.principal);
        }
        out += '}';
      }
      out += ']';
    }
    out += '}';
  }
  out += ']';
  return out;
}

google::protobuf::RepeatedPtrField<tessera::v1::Resource> Resources::toProto() const {
  google::protobuf::RepeatedPtrField<tessera::v1::Resource> out;
  out.Reserve(static_cast<int>(entries_.size()));
  for (const Entry& entry : entries_) {
    tessera::v1::Resource* resource = out.Add();
    resource->set_name(entry.name);
    switch (entry.type) {
      case ResourceType::kScalar:
        resource->set_type(tessera::v1::Value::SCALAR);
        resource->mutable_scalar()->set_value(static_cast<double>(entry.millis) /
                                              static_cast<double>(kScalarScale));
        break;
      case ResourceType::kRanges:
        resource->set_type(tessera::v1::Value::RANGES);
        for (const ValueRange& range : entry.ranges) {
          tessera::v1::Value::Range* out_range = resource->mutable_ranges()->add_range();
          out_range->set_begin(range.begin);
          out_range->set_end(range.end);
        }
        break;
      case ResourceType::kSet:
        resource->set_type(tessera::v1::Value::SET);
        for (const std::string& item : entry.items) resource->mutable_set()->add_item(item);
        break;
    }
    for (const Reservation& reservation : entry.reservations) {
      auto* info = resource->add_reservations();
      info->set_type(reservation.type == ReservationType::kStatic
                         ? tessera::v1::Resource::ReservationInfo::STATIC
                         : tessera::v1::Resource::ReservationInfo::DYNAMIC);
      info->set_role(reservation.role);
      if (!reservation.principal.empty()) info->set_principal(reservation.principal);
    }
  }
  return out;
}

void Resources::add(Entry&& entry) {
  if (isEmptyValue(entry)) return;
  auto it = std::lower_bound(entries_.begin(), entries_.end(), entry, keyLess);
  if (it != entries_.end() && compareKey(*it, entry) == 0) {
    addValue(*it, entry);
  } else {
    entries_.insert(it, std::move(entry));
  }
}

Resources& Resources::operator+=(const Resources& other) {
  // Both sides are sorted by key: one forward merge. Entries of `other` are never empty.
  size_t pos = 0;
  for (const Entry& entry : other.entries_) {
    if (seek(entries_, entry, pos)) {
      addValue(entries_[pos], entry);
    } else {
      entries_.insert(entries_.begin() + static_cast<std::ptrdiff_t>(pos), entry);
    }
    ++pos;
  }
  return *this;
}

Resources& Resources::operator-=(const Resources& other) {
  if (&other == this) {
    entries_.clear();
    return *this;
  }
  size_t pos = 0;
  for (const Entry& entry : other.entries_) {
    if (!seek(entries_, entry, pos)) {
      if (pos == entries_.size()) break;
      continue;
    }
    subtractValue(entries_[pos], entry);
    if (isEmptyValue(entries_[pos])) {
      entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(pos));
    } else {
      ++pos;
    }
  }
  return *this;
}

bool Resources::contains(const Resources& other) const {
  size_t pos = 0;
  for (const Entry& entry : other.entries_) {
    if (!seek(entries_, entry, pos)) return false;
    if (!containsValue(entries_[pos], entry)) return false;
    ++pos;
  }
  return true;
}

Resources Resources::flatten(std::string_view role) const {
  Resources result;
  std::vector<Reservation> reservations = defaultReservations(role);
  for (const Entry& entry : entries_) {
    Entry copy = entry;
    copy.reservations = reservations;
    // Keys stay in (name, type) order; equal ones are now adjacent, so add() appends or merges
    // with the last entry.
    result.add(std::move(copy));
  }
  return result;
}

Resources Resources::reserved() const {
  Resources result;
  for (const Entry& entry : entries_) {
    if (entry.isReserved()) result.entries_.push_back(entry);
  }
  return result;
}

Resources Resources::reserved(std::string_view role) const {
  Resources result;
  for (const Entry& entry : entries_) {
    if (entry.isReserved() && entry.reservationRole() == role) result.entries_.push_back(entry);
  }
  return result;
}

Resources Resources::unreserved() const {
  Resources result;
  for (const Entry& entry : entries_) {
    if (!entry.isReserved()) result.entries_.push_back(entry);
  }
  return result;
}

Resources Resources::allocatableTo(std::string_view role) const {
  Resources result;
  for (const Entry& entry : entries_) {
    if (!entry.isReserved() || entry.reservationRole() == role ||
        isStrictSubrole(role, entry.reservationRole())) {
      result.entries_.push_back(entry);
    }
  }
  return result;
}

int64_t Resources::scalarMillis(std::string_view name) const {
  // Entries are sorted by name: start at the first one with `name`, stop after the last.
  auto it =
      std::lower_bound(entries_.begin(), entries_.end(), name,
                       [](const Entry& entry, std::string_view key) { return entry.name < key; });
  int64_t total = 0;
  for (; it != entries_.end() && it->name == name; ++it) {
    if (it->type == ResourceType::kScalar) total = saturatingAdd(total, it->millis);
  }
  return total;
}

double Resources::scalar(std::string_view name) const {
  return static_cast<double>(scalarMillis(name)) / static_cast<double>(kScalarScale);
}

std::vector<ValueRange> Resources::ranges(std::string_view name) const {
  std::vector<ValueRange> total;
  auto it =
      std::lower_bound(entries_.begin(), entries_.end(), name,
                       [](const Entry& entry, std::string_view key) { return entry.name < key; });
  for (; it != entries_.end() && it->name == name; ++it) {
    if (it->type == ResourceType::kRanges) total = unionRanges(total, it->ranges);
  }
  return total;
}

}  // namespace tessera::api
