#include "kernel/agent/agent_util.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <random>

#include "kernel/http/json_writer.h"
#include "kernel/net/v1_json.h"

namespace tessera::kernel::agent::detail {

// Timers are cancelled, not just dropped: destroying a handle leaves the callback scheduled.
void cancelTimer(std::unique_ptr<api::TimerHandle>& timer) {
  if (timer) timer->cancel();
  timer.reset();
}

// A state-store key segment for an id: anything but [A-Za-z0-9._-] is %XX-escaped, and so are
// the segments "." and "..".
std::string keySegment(std::string_view id) {
  std::string out;
  for (unsigned char c : id) {
    if (std::isalnum(c) || c == '.' || c == '_' || c == '-') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  if (out.empty() || out == "." || out == "..") {
    std::string escaped;
    for (unsigned char c : out) escaped += fmt::format("%{:02X}", c);
    return escaped.empty() ? "%" : escaped;
  }
  return out;
}

// Ids become directory names in the sandbox path.
bool safePathComponent(std::string_view id) {
  if (id.empty() || id == "." || id == ".." || id.size() > 200) return false;
  return std::none_of(id.begin(), id.end(), [](char c) {
    return c == '/' || c == '\0' || static_cast<unsigned char>(c) < 0x20;
  });
}

std::string randomBytes(size_t count) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  std::string out(count, '\0');
  for (size_t i = 0; i < count; i += 8) {
    uint64_t value = rng();
    for (size_t j = 0; j < 8 && i + j < count; ++j) {
      out[i + j] = static_cast<char>((value >> (8 * j)) & 0xff);
    }
  }
  return out;
}

std::string uuidText(std::string bytes) {
  bytes[6] = static_cast<char>((bytes[6] & 0x0f) | 0x40);
  bytes[8] = static_cast<char>((bytes[8] & 0x3f) | 0x80);
  std::string out;
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += fmt::format("{:02x}", static_cast<unsigned char>(bytes[i]));
  }
  return out;
}

std::string containerJson(const api::ContainerCheckpoint& c) {
  http::JsonWriter w;
  w.beginObject();
  w.field("container_id", c.containerId);
  w.field("containerizer", c.containerizer);
  w.field("pid", c.pid);
  w.field("start_time", c.startTime);
  w.field("sandbox_directory", c.sandboxDirectory);
  w.field("data", net::base64Encode(c.data));
  w.endObject();
  return w.take();
}

api::Result<api::ContainerCheckpoint> parseContainerJson(const std::string& text) {
  try {
    Poco::JSON::Parser parser;
    auto object = parser.parse(text).extract<Poco::JSON::Object::Ptr>();
    api::ContainerCheckpoint c;
    c.containerId = object->getValue<std::string>("container_id");
    c.containerizer = object->getValue<std::string>("containerizer");
    c.pid = object->get("pid").convert<Poco::Int64>();
    c.startTime = object->get("start_time").convert<Poco::UInt64>();
    c.sandboxDirectory = object->getValue<std::string>("sandbox_directory");
    auto data = net::base64Decode(object->getValue<std::string>("data"));
    if (!data) return data.status();
    c.data = std::move(data).value();
    return c;
  } catch (const std::exception& e) {
    return api::invalidArgument("bad container checkpoint: {}", e.what());
  }
}

}  // namespace tessera::kernel::agent::detail
