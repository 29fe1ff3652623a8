#include "kernel/agent/agent_resources.h"

#include <fmt/format.h>
#include <sched.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <thread>
#include <vector>

#include "tessera/api/json.h"

namespace tessera::kernel::agent {

namespace {

constexpr uint64_t kMB = uint64_t{1024} * 1024;
constexpr uint64_t kGB = 1024 * kMB;

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return parts;
}

// A plain decimal number (Mesos's scalar syntax): digits with at most one '.'.
bool parseNumber(std::string_view text, double& value) {
  if (text.empty()) return false;
  bool digit = false;
  bool dot = false;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      return false;
    }
  }
  if (!digit) return false;
  value = std::strtod(std::string(text).c_str(), nullptr);
  return std::isfinite(value);
}

bool parseUnsigned(std::string_view text, uint64_t& value) {
  text = trim(text);
  if (text.empty() || text.size() > 19) return false;
  value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

std::string rangesText(const std::vector<api::ValueRange>& ranges) {
  std::string out = "[";
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (i > 0) out += ',';
    out += fmt::format("{}-{}", ranges[i].begin, ranges[i].end);
  }
  return out + "]";
}

// Shortest text for a double that reads back the same (Mesos prints 0.5, 4, 1024.25).
std::string numberText(double value) {
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return fmt::format("{}", static_cast<int64_t>(value));
  }
  return fmt::format("{}", value);
}

}  // namespace

MachineResources probeMachine(const std::string& workDir) {
  MachineResources machine;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) {
    machine.cpus = CPU_COUNT(&set);
  } else if (unsigned hardware = std::thread::hardware_concurrency(); hardware > 0) {
    machine.cpus = hardware;
  }
  struct sysinfo info {};
  if (sysinfo(&info) == 0) {
    machine.memBytes = static_cast<uint64_t>(info.totalram) * info.mem_unit;
    machine.memKnown = true;
  }
  struct statvfs fs {};
  if (!workDir.empty() && statvfs(workDir.c_str(), &fs) == 0) {
    machine.diskBytes = static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize;
    machine.diskKnown = true;
  }
  return machine;
}

api::Result<api::Resources> agentResources(std::string_view flag, const MachineResources& machine) {
  api::Resources given;
  if (!trim(flag).empty()) {
    auto parsed = api::Resources::parse(flag);
    if (!parsed) return parsed.status().withContext("flag '--resources'");
    given = std::move(parsed).value();
  }
  auto has = [&](std::string_view name) {
    for (const auto& entry : given.entries()) {
      if (entry.name == name) return true;
    }
    return false;
  };
  api::Resources total = given;
  if (!has("cpus")) {
    total += api::Resources::ofScalar("cpus", static_cast<int64_t>(machine.cpus * 1000));
  }
  if (!has("mem")) {
    // Mesos's defaults when it cannot probe: 1 GB of memory, 10 GB of disk.
    uint64_t mem = machine.memKnown ? machine.memBytes : kGB * 2;
    mem = mem >= 2 * kGB ? mem - kGB : mem / 2;
    total += api::Resources::ofScalar("mem", static_cast<int64_t>(mem / kMB) * 1000);
  }
  if (!has("disk")) {
    uint64_t disk = machine.diskKnown ? machine.diskBytes : kGB * 15;
    disk = disk >= 10 * kGB ? disk - 5 * kGB : disk / 2;
    total += api::Resources::ofScalar("disk", static_cast<int64_t>(disk / kMB) * 1000);
  }
  if (!has("ports")) {
    auto ports = api::Resources::parse("ports:[31000-32000]");
    total += *ports;
  }
  return total;
}

api::Result<google::protobuf::RepeatedPtrField<v1::Attribute>> parseAttributes(
    std::string_view text) {
  google::protobuf::RepeatedPtrField<v1::Attribute> attributes;
  for (std::string_view token : split(text, ';')) {
    token = trim(token);
    if (token.empty()) continue;
    auto parts = split(token, ':');
    if (parts.size() != 2 || trim(parts[0]).empty() || trim(parts[1]).empty()) {
      return api::invalidArgument(
          "flag '--attributes': invalid attribute '{}': expected name:value", token);
    }
    std::string_view name = trim(parts[0]);
    std::string_view value = trim(parts[1]);
    for (char c : name) {
      if (c <= ' ' || c > '~' || c == '(' || c == ')' || c == '[' || c == ']' || c == '{' ||
          c == '}' || c == ',') {
        return api::invalidArgument("flag '--attributes': invalid attribute name '{}'", name);
      }
    }
    v1::Attribute attribute;
    attribute.set_name(std::string(name));
    double number = 0;
    if (value.front() == '{') {
      return api::invalidArgument(
          "flag '--attributes': attribute '{}': sets are not supported for attributes", name);
    } else if (value.front() == '[') {
      if (value.back() != ']') {
        return api::invalidArgument("flag '--attributes': attribute '{}': bad ranges '{}'", name,
                                    value);
      }
      attribute.set_type(v1::Value::RANGES);
      auto* ranges = attribute.mutable_ranges();
      std::string_view inner = value.substr(1, value.size() - 2);
      for (std::string_view range : split(inner, ',')) {
        auto bounds = split(range, '-');
        uint64_t begin = 0;
        uint64_t end = 0;
        bool ok = bounds.size() == 2 && parseUnsigned(bounds[0], begin) &&
                  parseUnsigned(bounds[1], end) && begin <= end;
        if (bounds.size() == 1 && parseUnsigned(bounds[0], begin)) {
          end = begin;
          ok = true;
        }
        if (!ok) {
          return api::invalidArgument("flag '--attributes': attribute '{}': bad range '{}'", name,
                                      range);
        }
        auto* added = ranges->add_range();
        added->set_begin(begin);
        added->set_end(end);
      }
    } else if (parseNumber(value, number)) {
      attribute.set_type(v1::Value::SCALAR);
      attribute.mutable_scalar()->set_value(number);
    } else {
      for (char c : value) {
        if (c <= ' ' || c > '~' || c == '[' || c == ']' || c == '{' || c == '}' || c == ',') {
          return api::invalidArgument("flag '--attributes': attribute '{}': bad text '{}'", name,
                                      value);
        }
      }
      attribute.set_type(v1::Value::TEXT);
      attribute.mutable_text()->set_value(std::string(value));
    }
    *attributes.Add() = std::move(attribute);
  }
  return attributes;
}

std::string resourcesObjectJson(const api::Resources& resources) {
  std::map<std::string, std::string> fields;
  std::map<std::string, bool> seen;
  for (const auto& entry : resources.entries()) {
    if (seen[entry.name]) continue;
    seen[entry.name] = true;
    switch (entry.type) {
      case api::ResourceType::kScalar:
        fields[entry.name] = numberText(resources.scalar(entry.name));
        break;
      case api::ResourceType::kRanges:
        fields[entry.name] = api::jsonQuote(rangesText(resources.ranges(entry.name)));
        break;
      case api::ResourceType::kSet: {
        std::string items = "{";
        for (size_t i = 0; i < entry.items.size(); ++i) {
          if (i > 0) items += ',';
          items += entry.items[i];
        }
        fields[entry.name] = api::jsonQuote(items + "}");
        break;
      }
    }
  }
  // Mesos always shows the four standard ones.
  static const std::string kStandard[] = {"cpus", "mem", "disk", "gpus"};
  static const std::string kZero = "0";
  for (const auto& name : kStandard) fields.emplace(name, kZero);
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : fields) {
    if (!first) out += ',';
    first = false;
    out += api::jsonQuote(name) + ":" + value;
  }
  return out + "}";
}

std::string attributesObjectJson(
    const google::protobuf::RepeatedPtrField<v1::Attribute>& attributes) {
  std::string out = "{";
  bool first = true;
  for (const auto& attribute : attributes) {
    if (!first) out += ',';
    first = false;
    out += api::jsonQuote(attribute.name()) + ":";
    switch (attribute.type()) {
      case v1::Value::SCALAR:
        out += numberText(attribute.scalar().value());
        break;
      case v1::Value::RANGES: {
        std::vector<api::ValueRange> ranges;
        for (const auto& range : attribute.ranges().range()) {
          ranges.push_back({range.begin(), range.end()});
        }
        out += api::jsonQuote(rangesText(ranges));
        break;
      }
      default:
        out += api::jsonQuote(attribute.text().value());
        break;
    }
  }
  return out + "}";
}

}  // namespace tessera::kernel::agent
