// Resources in their three forms: Mesos's text ("cpus:2;ports(web):[80-80]"), Mesos's JSON
// array, and the v1 protobuf.

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <utility>

#include "resources_internal.h"
#include "tessera/api/json.h"
#include "tessera/api/resources.h"

namespace tessera::api {
namespace {

using resources_internal::appendMillis;
using resources_internal::defaultReservations;
using resources_internal::Entry;
using resources_internal::finishEntry;
using resources_internal::kSpaces;
using resources_internal::millisFromDouble;
using resources_internal::parseMillis;
using resources_internal::reservationTypeName;
using resources_internal::split;
using resources_internal::trim;

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

}  // namespace tessera::api
