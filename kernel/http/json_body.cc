#include "kernel/http/json_body.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "kernel/runtime/strings.h"
#include "tessera/api/json.h"

namespace tessera::kernel::http {

namespace {

// One open object or array: its path and where the scan is inside it.
struct Frame {
  bool object = false;
  std::string path;
  bool expectKey = false;  // objects: the next string is a member name
  std::string key;         // objects: the last member name
  int index = 0;           // arrays: the current element
};

std::string valuePath(const std::vector<Frame>& stack) {
  if (stack.empty()) return "";
  const Frame& frame = stack.back();
  if (!frame.object) return fmt::format("{}[{}]", frame.path, frame.index);
  return frame.path.empty() ? frame.key : fmt::format("{}.{}", frame.path, frame.key);
}

// Scans the string whose opening quote is at `pos`; returns the offset after its closing quote
// (or the end), and whether it is text: well-formed UTF-8 and no lone surrogate escape.
size_t scanString(std::string_view json, size_t pos, bool* text) {
  size_t start = ++pos;
  *text = true;
  bool pendingHigh = false;  // the last escape was a high surrogate
  while (pos < json.size() && json[pos] != '"') {
    if (json[pos] != '\\') {
      if (pendingHigh) *text = false;
      pendingHigh = false;
      ++pos;
      continue;
    }
    if (pos + 1 < json.size() && json[pos + 1] == 'u') {
      std::optional<uint32_t> unit = runtime::parseHex4(json.substr(pos + 2));
      if (unit && *unit >= 0xD800 && *unit <= 0xDBFF) {
        if (pendingHigh) *text = false;
        pendingHigh = true;
      } else if (unit && *unit >= 0xDC00 && *unit <= 0xDFFF) {
        if (!pendingHigh) *text = false;
        pendingHigh = false;
      } else {
        if (pendingHigh) *text = false;
        pendingHigh = false;
      }
      pos += unit ? 6 : 2;
      continue;
    }
    if (pendingHigh) *text = false;
    pendingHigh = false;
    pos += 2;
  }
  if (pendingHigh) *text = false;
  if (*text && !api::isValidUtf8(json.substr(start, std::min(pos, json.size()) - start))) {
    *text = false;
  }
  return pos + 1;
}

}  // namespace

api::Status checkJsonText(std::string_view json, int maxDepth, size_t maxValues) {
  std::vector<Frame> stack;
  size_t pos = 0;
  // Every value is the whole text, a member's value (after ':'), an array's first element (after
  // '[' when not empty) or a later one (after ',' in an array); strings are skipped whole, so the
  // punctuation inside them does not count. The count is exact for valid JSON.
  size_t values = 1;
  auto tooMany = [&] { return api::invalidArgument("JSON holds more than {} values", maxValues); };
  while (pos < json.size()) {
    char c = json[pos];
    switch (c) {
      case '"': {
        bool text = true;
        size_t end = scanString(json, pos, &text);
        bool key = !stack.empty() && stack.back().object && stack.back().expectKey;
        if (!text) {
          if (!key) return api::invalidArgument("field '{}' is not valid UTF-8", valuePath(stack));
          const std::string& object = stack.back().path;
          if (object.empty()) {
            return api::invalidArgument("a member name of the top-level object is not valid UTF-8");
          }
          return api::invalidArgument("a member name in '{}' is not valid UTF-8", object);
        }
        if (key) {
          stack.back().key = std::string(json.substr(pos + 1, end - pos - 2));
          stack.back().expectKey = false;
        }
        pos = end;
        continue;
      }
      case '{':
      case '[':
        if (static_cast<int>(stack.size()) >= maxDepth) {
          return api::invalidArgument("JSON nested too deeply (more than {} levels)", maxDepth);
        }
        if (c == '[') {
          size_t next = json.find_first_not_of(" \t\r\n", pos + 1);
          if (next != std::string_view::npos && json[next] != ']' && ++values > maxValues) {
            return tooMany();
          }
        }
        {
          Frame frame;
          frame.object = c == '{';
          frame.path = valuePath(stack);
          frame.expectKey = frame.object;
          stack.push_back(std::move(frame));
        }
        break;
      case '}':
      case ']':
        if (!stack.empty()) stack.pop_back();
        break;
      case ':':
        if (++values > maxValues) return tooMany();
        break;
      case ',':
        // In an object a ',' starts a member: its name does not count, its value (':') does.
        if (stack.empty() || !stack.back().object) {
          if (++values > maxValues) return tooMany();
        }
        if (!stack.empty()) {
          if (stack.back().object) {
            stack.back().expectKey = true;
          } else {
            ++stack.back().index;
          }
        }
        break;
      default:
        break;
    }
    ++pos;
  }
  return {};
}

api::Result<Poco::Dynamic::Var> parseJsonBody(std::string_view json, std::string_view what) {
  if (api::Status checked = checkJsonText(json); !checked) return checked;
  try {
    Poco::JSON::Parser parser;
    return parser.parse(std::string(json));
  } catch (const Poco::Exception& e) {
    // Poco's what() is only "JSON Exception"; message() says what is wrong, in words that may
    // quote anything the client sent: escaped.
    return api::invalidArgument("{} is not valid JSON: {}", what, runtime::printable(e.message()));
  } catch (const std::exception& e) {
    return api::invalidArgument("{} is not valid JSON: {}", what, runtime::printable(e.what()));
  }
}

}  // namespace tessera::kernel::http
