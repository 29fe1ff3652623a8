#include "tessera/api/parameters.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

#include "tessera/api/duration.h"

namespace tessera::api {
namespace {

constexpr uint64_t kKilobyte = 1024;

std::string trimmed(std::string_view text) {
  constexpr std::string_view kBlank = " \t\r\n";
  const size_t begin = text.find_first_not_of(kBlank);
  if (begin == std::string_view::npos) return "";
  return std::string(text.substr(begin, text.find_last_not_of(kBlank) - begin + 1));
}

// Reads `key` with `parse`; an absent key is nullopt, a bad value an error naming the key.
template <typename T, typename Parse>
Result<std::optional<T>> typed(std::optional<std::string> raw, std::string_view key, Parse parse) {
  if (!raw) return std::optional<T>();
  auto value = parse(*raw);
  if (!value) return value.status().withContext("parameter '{}'", key);
  return std::optional<T>(*value);
}

template <typename T>
Result<T> orFallback(Result<std::optional<T>> value, T fallback) {
  if (!value) return value.status();
  return value->value_or(fallback);
}

}  // namespace

std::optional<std::string> Parameters::get(std::string_view key) const {
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (it->first == key) return it->second;
  }
  return std::nullopt;
}

std::string Parameters::getOr(std::string_view key, std::string_view fallback) const {
  auto value = get(key);
  return value ? *value : std::string(fallback);
}

Result<bool> parseBool(std::string_view text) {
  // stout's spellings for a boolean flag.
  if (text == "true" || text == "1") return true;
  if (text == "false" || text == "0") return false;
  return invalidArgument("'{}' is not a valid bool (use true or false)", text);
}

Result<uint64_t> parseBytes(std::string_view text) {
  size_t end = 0;
  while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
  if (end < text.size() && text[end] == '.') {
    return invalidArgument("'{}' is not a valid size: fractions are not allowed", text);
  }
  if (end == 0) {
    return invalidArgument("'{}' is not a valid size: expected a number and a unit, e.g. '512MB'",
                           text);
  }
  std::string unit(text.substr(end));
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  static constexpr std::pair<std::string_view, uint64_t> kUnits[] = {
      {"B", 1},
      {"KB", kKilobyte},
      {"MB", kKilobyte * kKilobyte},
      {"GB", kKilobyte * kKilobyte * kKilobyte},
      {"TB", kKilobyte * kKilobyte * kKilobyte * kKilobyte}};
  const auto* found = std::find_if(std::begin(kUnits), std::end(kUnits),
                                   [&](const auto& entry) { return entry.first == unit; });
  if (found == std::end(kUnits)) {
    if (unit.empty()) {
      return invalidArgument("'{}' is not a valid size: missing unit (use B, KB, MB, GB or TB)",
                             text);
    }
    return invalidArgument("'{}' is not a valid size: unknown unit '{}' (use B, KB, MB, GB or TB)",
                           text, text.substr(end));
  }
  constexpr unsigned __int128 kMax = std::numeric_limits<uint64_t>::max();
  unsigned __int128 value = 0;
  for (char c : text.substr(0, end)) {
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > kMax) break;
  }
  value *= found->second;
  if (value > kMax) return invalidArgument("'{}' is not a valid size: too large", text);
  return static_cast<uint64_t>(value);
}

Result<int64_t> parseInt(std::string_view text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || ptr != end) {
    return invalidArgument("'{}' is not a valid integer", text);
  }
  return value;
}

std::optional<std::string> ParameterReader::raw(std::string_view key) {
  if (std::find(known_.begin(), known_.end(), key) == known_.end()) known_.emplace_back(key);
  return parameters_.get(key);
}

std::optional<std::string> ParameterReader::string(std::string_view key) { return raw(key); }

std::string ParameterReader::string(std::string_view key, std::string_view fallback) {
  auto value = raw(key);
  return value ? *value : std::string(fallback);
}

Result<std::optional<std::chrono::nanoseconds>> ParameterReader::duration(std::string_view key) {
  return typed<std::chrono::nanoseconds>(raw(key), key, parseDuration);
}

Result<std::chrono::nanoseconds> ParameterReader::duration(std::string_view key,
                                                           std::chrono::nanoseconds fallback) {
  return orFallback(duration(key), fallback);
}

Result<std::optional<bool>> ParameterReader::boolean(std::string_view key) {
  return typed<bool>(raw(key), key, parseBool);
}

Result<bool> ParameterReader::boolean(std::string_view key, bool fallback) {
  return orFallback(boolean(key), fallback);
}

Result<std::optional<uint64_t>> ParameterReader::bytes(std::string_view key) {
  return typed<uint64_t>(raw(key), key, parseBytes);
}

Result<uint64_t> ParameterReader::bytes(std::string_view key, uint64_t fallback) {
  return orFallback(bytes(key), fallback);
}

Result<std::optional<int64_t>> ParameterReader::integer(std::string_view key) {
  return typed<int64_t>(raw(key), key, parseInt);
}

Result<int64_t> ParameterReader::integer(std::string_view key, int64_t fallback) {
  return orFallback(integer(key), fallback);
}

std::vector<std::string> ParameterReader::list(std::string_view key) {
  std::vector<std::string> items;
  const std::string value = raw(key).value_or("");
  size_t start = 0;
  while (start <= value.size()) {
    size_t comma = value.find(',', start);
    if (comma == std::string::npos) comma = value.size();
    std::string item = trimmed(std::string_view(value).substr(start, comma - start));
    if (!item.empty()) items.push_back(std::move(item));
    start = comma + 1;
  }
  return items;
}

Status ParameterReader::invalid(std::string_view key, std::string_view message) {
  return invalidArgument("parameter '{}': {}", key, message);
}

Status ParameterReader::rejectUnknown() const {
  std::vector<std::string> unknown;
  for (const auto& [key, value] : parameters_.entries()) {
    if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
    if (std::find(unknown.begin(), unknown.end(), key) == unknown.end()) unknown.push_back(key);
  }
  if (unknown.empty()) return Status::ok();
  const std::string known = known_.empty() ? "none" : fmt::format("{}", fmt::join(known_, ", "));
  return invalidArgument("unknown parameter{} '{}' (known: {})", unknown.size() > 1 ? "s" : "",
                         fmt::join(unknown, "', '"), known);
}

}  // namespace tessera::api
