#include "kernel/agent/agent_resources.h"

#include <sched.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <thread>
#include <vector>

#include "kernel/runtime/strings.h"

namespace tessera::kernel::agent {

namespace {

constexpr uint64_t kMB = uint64_t{1024} * 1024;
constexpr uint64_t kGB = 1024 * kMB;

using runtime::trim;

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

}  // namespace tessera::kernel::agent
