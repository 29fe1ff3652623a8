#include "kernel/net/v1_json.h"

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>

#include "kernel/runtime/strings.h"
#include "tessera/api/json.h"

namespace tessera::kernel::net {

namespace pb = google::protobuf;
using FD = pb::FieldDescriptor;

namespace {

constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// ---------------------------------------------------------------------------------------------
// Printer

template <typename Float>
void appendFloating(std::string& out, Float value) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  // fmt's default is the shortest representation that reads back exactly ("0.1", "15", "1e+300"),
  // always a valid JSON number.
  out += fmt::format("{}", value);
}

class Printer {
 public:
  explicit Printer(const V1JsonPrintOptions& options) : options_(options) {}

  void message(std::string& out, const pb::Message& msg) const {
    const pb::Descriptor* descriptor = msg.GetDescriptor();
    const pb::Reflection* reflection = msg.GetReflection();
    out.push_back('{');
    bool first = true;
    for (int i = 0; i < descriptor->field_count(); ++i) {
      const FD* field = descriptor->field(i);
      if (field->is_repeated()) {
        int size = reflection->FieldSize(msg, field);
        if (size == 0) continue;
        separator(out, first);
        api::appendJsonString(out, field->name());
        out += ":[";
        for (int j = 0; j < size; ++j) {
          if (j > 0) out.push_back(',');
          repeatedValue(out, msg, reflection, field, j);
        }
        out.push_back(']');
      } else {
        bool present = reflection->HasField(msg, field);
        if (!present && !(options_.includeDefaults && field->has_default_value() &&
                          !field->options().deprecated())) {
          continue;
        }
        separator(out, first);
        api::appendJsonString(out, field->name());
        out.push_back(':');
        singularValue(out, msg, reflection, field);
      }
    }
    out.push_back('}');
  }

 private:
  static void separator(std::string& out, bool& first) {
    if (!first) out.push_back(',');
    first = false;
  }

  void singularValue(std::string& out, const pb::Message& msg, const pb::Reflection* r,
                     const FD* field) const {
    switch (field->cpp_type()) {
      case FD::CPPTYPE_BOOL:
        out += r->GetBool(msg, field) ? "true" : "false";
        break;
      case FD::CPPTYPE_INT32:
        out += fmt::format("{}", r->GetInt32(msg, field));
        break;
      case FD::CPPTYPE_INT64:
        out += fmt::format("{}", r->GetInt64(msg, field));
        break;
      case FD::CPPTYPE_UINT32:
        out += fmt::format("{}", r->GetUInt32(msg, field));
        break;
      case FD::CPPTYPE_UINT64:
        out += fmt::format("{}", r->GetUInt64(msg, field));
        break;
      case FD::CPPTYPE_FLOAT:
        appendFloating(out, r->GetFloat(msg, field));
        break;
      case FD::CPPTYPE_DOUBLE:
        appendFloating(out, r->GetDouble(msg, field));
        break;
      case FD::CPPTYPE_ENUM:
        api::appendJsonString(out, r->GetEnum(msg, field)->name());
        break;
      case FD::CPPTYPE_STRING: {
        std::string scratch;
        const std::string& value = r->GetStringReference(msg, field, &scratch);
        api::appendJsonString(out, field->type() == FD::TYPE_BYTES ? base64Encode(value) : value);
        break;
      }
      case FD::CPPTYPE_MESSAGE:
        message(out, r->GetMessage(msg, field));
        break;
    }
  }

  void repeatedValue(std::string& out, const pb::Message& msg, const pb::Reflection* r,
                     const FD* field, int i) const {
    switch (field->cpp_type()) {
      case FD::CPPTYPE_BOOL:
        out += r->GetRepeatedBool(msg, field, i) ? "true" : "false";
        break;
      case FD::CPPTYPE_INT32:
        out += fmt::format("{}", r->GetRepeatedInt32(msg, field, i));
        break;
      case FD::CPPTYPE_INT64:
        out += fmt::format("{}", r->GetRepeatedInt64(msg, field, i));
        break;
      case FD::CPPTYPE_UINT32:
        out += fmt::format("{}", r->GetRepeatedUInt32(msg, field, i));
        break;
      case FD::CPPTYPE_UINT64:
        out += fmt::format("{}", r->GetRepeatedUInt64(msg, field, i));
        break;
      case FD::CPPTYPE_FLOAT:
        appendFloating(out, r->GetRepeatedFloat(msg, field, i));
        break;
      case FD::CPPTYPE_DOUBLE:
        appendFloating(out, r->GetRepeatedDouble(msg, field, i));
        break;
      case FD::CPPTYPE_ENUM:
        api::appendJsonString(out, r->GetRepeatedEnum(msg, field, i)->name());
        break;
      case FD::CPPTYPE_STRING: {
        std::string scratch;
        const std::string& value = r->GetRepeatedStringReference(msg, field, i, &scratch);
        api::appendJsonString(out, field->type() == FD::TYPE_BYTES ? base64Encode(value) : value);
        break;
      }
      case FD::CPPTYPE_MESSAGE:
        message(out, r->GetRepeatedMessage(msg, field, i));
        break;
    }
  }

  const V1JsonPrintOptions& options_;
};

// ---------------------------------------------------------------------------------------------
// Parser: a recursive-descent JSON reader that writes straight into the message through
// reflection, so integers are never squeezed through a double and errors know the field path.

std::string join(const std::string& path, std::string_view name) {
  return path.empty() ? std::string(name) : fmt::format("{}.{}", path, name);
}

bool isJsonNumber(std::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i >= s.size()) return false;
  if (s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

// A JSON number (already checked by isJsonNumber) as an integer of type T, exactly.
template <typename T>
std::optional<T> toInteger(std::string_view text) {
  bool plain = text.find_first_of(".eE") == std::string_view::npos;
  if (plain) {
    T value{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
  }
  // "5.0" or "1e3": fine when integral and in range, as Mesos's JSON::Number::as<T>() allows.
  double d = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(d) ||
      std::trunc(d) != d) {
    return std::nullopt;
  }
  // 2^63 and 2^64 are exact doubles; the bounds are half-open at the top.
  constexpr double kTop = std::numeric_limits<T>::is_signed
                              ? -static_cast<double>(std::numeric_limits<T>::min())
                              : static_cast<double>(std::numeric_limits<T>::max()) + 1.0;
  constexpr double kBottom = static_cast<double>(std::numeric_limits<T>::min());
  if (d < kBottom || d >= kTop) return std::nullopt;
  return static_cast<T>(d);
}

class Parser {
 public:
  Parser(std::string_view in, const V1JsonParseOptions& options) : in_(in), options_(options) {}

  api::Status parse(pb::Message& message) {
    skipSpace();
    if (api::Status s = parseMessage(message, "", 0); !s) return s;
    skipSpace();
    if (pos_ != in_.size()) return syntax("unexpected data after the top-level object");
    return {};
  }

 private:
  api::Status syntax(std::string_view what) const {
    return api::invalidArgument("malformed JSON at offset {}: {}", pos_, what);
  }
  static api::Status fieldError(const std::string& path, std::string_view what) {
    return api::invalidArgument("field '{}' {}", path, what);
  }
  api::Status tooDeep() const {
    return syntax(fmt::format("nested too deeply (more than {} levels)", options_.maxDepth));
  }
  // A string that is not text: the value of the field at `path`, or (`key`) a member name in the
  // object at `path`.
  static api::Status contentError(std::string_view path, bool key, std::string_view what) {
    if (!key) return api::invalidArgument("field '{}' {}", path, what);
    if (path.empty()) return api::invalidArgument("a member name of the top-level object {}", what);
    return api::invalidArgument("a member name in '{}' {}", path, what);
  }

  void skipSpace() {
    while (pos_ < in_.size() &&
           (in_[pos_] == ' ' || in_[pos_] == '\t' || in_[pos_] == '\n' || in_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool consume(char c) {
    skipSpace();
    if (pos_ < in_.size() && in_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  char peek() {
    skipSpace();
    return pos_ < in_.size() ? in_[pos_] : '\0';
  }
  bool literal(std::string_view word) {
    skipSpace();
    if (in_.substr(pos_, word.size()) == word) {
      pos_ += word.size();
      return true;
    }
    return false;
  }

  static void appendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  std::optional<uint32_t> hex4() {
    std::optional<uint32_t> value = runtime::parseHex4(in_.substr(std::min(pos_, in_.size())));
    if (value) pos_ += 4;
    return value;
  }

  // Reads a string token (the opening quote is next). `path` names the field the string is the
  // value of, or (`key`) the object whose member name it is, for the errors about its content.
  api::Result<std::string> string(std::string_view path, bool key = false) {
    if (!consume('"')) return syntax("expected a string");
    std::string out;
    while (pos_ < in_.size()) {
      char c = in_[pos_++];
      if (c == '"') {
        // Escapes decode to whole well-formed sequences (lone surrogates are refused below) that
        // never begin with a continuation byte, so checking the result checks the raw bytes.
        if (!api::isValidUtf8(out)) return contentError(path, key, "is not valid UTF-8");
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) return syntax("control character in a string");
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= in_.size()) break;
      char e = in_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out.push_back(e);
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          std::optional<uint32_t> cp = hex4();
          if (!cp) return syntax("bad \\u escape");
          if (*cp >= 0xD800 && *cp <= 0xDBFF) {
            if (in_.substr(pos_, 2) != "\\u") {
              return contentError(path, key, "has an unpaired surrogate \\u escape");
            }
            pos_ += 2;
            std::optional<uint32_t> low = hex4();
            if (!low) return syntax("bad \\u escape");
            if (*low < 0xDC00 || *low > 0xDFFF) {
              return contentError(path, key, "has an unpaired surrogate \\u escape");
            }
            *cp = 0x10000 + ((*cp - 0xD800) << 10) + (*low - 0xDC00);
          } else if (*cp >= 0xDC00 && *cp <= 0xDFFF) {
            return contentError(path, key, "has an unpaired surrogate \\u escape");
          }
          appendUtf8(out, *cp);
          break;
        }
        default:
          return syntax("bad escape in a string");
      }
    }
    return syntax("unterminated string");
  }

  std::string_view numberToken() {
    skipSpace();
    size_t start = pos_;
    while (pos_ < in_.size()) {
      char c = in_[pos_];
      if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
        ++pos_;
      } else {
        break;
      }
    }
    return in_.substr(start, pos_ - start);
  }

  // Skips any JSON value (for an unknown field, at `path`); its strings must still be text.
  api::Status skipValue(const std::string& path, int depth) {
    if (depth > options_.maxDepth) return tooDeep();
    char c = peek();
    if (c == '{') {
      ++pos_;
      if (consume('}')) return {};
      do {
        api::Result<std::string> key = string(path, true);
        if (!key) return key.status();
        if (!consume(':')) return syntax("expected ':'");
        if (api::Status s = skipValue(join(path, *key), depth + 1); !s) return s;
      } while (consume(','));
      return consume('}') ? api::Status() : syntax("expected ',' or '}'");
    }
    if (c == '[') {
      ++pos_;
      if (consume(']')) return {};
      int index = 0;
      do {
        if (api::Status s = skipValue(fmt::format("{}[{}]", path, index++), depth + 1); !s)
          return s;
      } while (consume(','));
      return consume(']') ? api::Status() : syntax("expected ',' or ']'");
    }
    if (c == '"') return string(path).status();
    if (literal("true") || literal("false") || literal("null")) return {};
    if (!isJsonNumber(numberToken())) return syntax("expected a value");
    return {};
  }

  api::Status unknown(const std::string& path, std::string_view what) {
    if (options_.rejectUnknownFields) return api::invalidArgument("{}", what);
    if (options_.ignoredFields != nullptr) options_.ignoredFields->push_back(path);
    return {};
  }

  api::Status parseMessage(pb::Message& message, const std::string& path, int depth) {
    if (depth > options_.maxDepth) return tooDeep();
    if (!consume('{')) {
      return path.empty() ? syntax("expected a JSON object")
                          : fieldError(path, "expects a JSON object");
    }
    if (consume('}')) return {};
    const pb::Descriptor* descriptor = message.GetDescriptor();
    do {
      api::Result<std::string> name = string(path, true);
      if (!name) return name.status();
      if (!consume(':')) return syntax("expected ':'");
      const FD* field = descriptor->FindFieldByName(*name);
      if (field == nullptr) field = descriptor->FindFieldByCamelcaseName(*name);
      std::string fieldPath = join(path, *name);
      if (field == nullptr) {
        if (api::Status s =
                unknown(fieldPath, fmt::format("unknown field '{}' in '{}'", *name,
                                               path.empty() ? descriptor->full_name() : path));
            !s) {
          return s;
        }
        if (api::Status s = skipValue(fieldPath, depth + 1); !s) return s;
        continue;
      }
      if (api::Status s = parseField(message, field, fieldPath, depth + 1); !s) return s;
    } while (consume(','));
    return consume('}') ? api::Status() : syntax("expected ',' or '}'");
  }

  api::Status parseField(pb::Message& message, const FD* field, const std::string& path,
                         int depth) {
    if (literal("null")) return {};  // absent, as in Mesos
    if (!field->is_repeated()) return parseValue(message, field, path, depth, false);
    if (!consume('[')) return fieldError(path, "is repeated and expects a JSON array");
    if (consume(']')) return {};
    int index = 0;
    do {
      std::string elementPath = fmt::format("{}[{}]", path, index++);
      if (literal("null")) return fieldError(elementPath, "is null inside an array");
      if (api::Status s = parseValue(message, field, elementPath, depth + 1, true); !s) return s;
    } while (consume(','));
    return consume(']') ? api::Status() : syntax("expected ',' or ']'");
  }

  // The text of a number, or of a string holding one (protobuf's own printer quotes 64-bit
  // integers; accepting that costs nothing).
  api::Result<std::string> numberText(const std::string& path) {
    char c = peek();
    std::string text;
    if (c == '"') {
      api::Result<std::string> s = string(path);
      if (!s) return s.status();
      text = std::move(*s);
    } else {
      text = std::string(numberToken());
    }
    if (text.empty() && c != '"') return fieldError(path, "expects a number");
    return text;
  }

  template <typename T>
  api::Result<T> integer(const std::string& path) {
    api::Result<std::string> text = numberText(path);
    if (!text) return text.status();
    if (!isJsonNumber(*text)) return fieldError(path, fmt::format("has a bad number '{}'", *text));
    std::optional<T> value = toInteger<T>(*text);
    if (!value) {
      return fieldError(path,
                        fmt::format("has '{}', not an integer in [{}, {}]", *text,
                                    std::numeric_limits<T>::min(), std::numeric_limits<T>::max()));
    }
    return *value;
  }

  api::Result<double> floating(const std::string& path) {
    api::Result<std::string> text = numberText(path);
    if (!text) return text.status();
    if (*text == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (*text == "Infinity") return std::numeric_limits<double>::infinity();
    if (*text == "-Infinity") return -std::numeric_limits<double>::infinity();
    double d = 0;
    const char* end = text->data() + text->size();
    if (!isJsonNumber(*text)) return fieldError(path, fmt::format("has a bad number '{}'", *text));
    auto [ptr, ec] = std::from_chars(text->data(), end, d);
    if (ec != std::errc() || ptr != end) {
      return fieldError(path, fmt::format("has '{}', out of range for a double", *text));
    }
    return d;
  }

  api::Status parseValue(pb::Message& message, const FD* field, const std::string& path, int depth,
                         bool repeated) {
    const pb::Reflection* r = message.GetReflection();
    switch (field->cpp_type()) {
      case FD::CPPTYPE_MESSAGE: {
        pb::Message* child =
            repeated ? r->AddMessage(&message, field) : r->MutableMessage(&message, field);
        return parseMessage(*child, path, depth);
      }
      case FD::CPPTYPE_STRING: {
        if (peek() != '"') return fieldError(path, "expects a JSON string");
        api::Result<std::string> s = string(path);
        if (!s) return s.status();
        std::string value = std::move(*s);
        if (field->type() == FD::TYPE_BYTES) {
          api::Result<std::string> decoded = base64Decode(value);
          if (!decoded) return decoded.status().withContext("field '{}'", path);
          value = std::move(*decoded);
        }
        if (repeated) {
          r->AddString(&message, field, std::move(value));
        } else {
          r->SetString(&message, field, std::move(value));
        }
        return {};
      }
      case FD::CPPTYPE_BOOL: {
        bool value;
        if (literal("true")) {
          value = true;
        } else if (literal("false")) {
          value = false;
        } else {
          return fieldError(path, "expects true or false");
        }
        repeated ? r->AddBool(&message, field, value) : r->SetBool(&message, field, value);
        return {};
      }
      case FD::CPPTYPE_ENUM: {
        const pb::EnumValueDescriptor* value = nullptr;
        std::string shown;
        if (peek() == '"') {
          api::Result<std::string> s = string(path);
          if (!s) return s.status();
          value = field->enum_type()->FindValueByName(*s);
          shown = *s;
        } else {
          api::Result<int32_t> number = integer<int32_t>(path);
          if (!number) return fieldError(path, "expects an enum value name");
          value = field->enum_type()->FindValueByNumber(*number);
          shown = fmt::format("{}", *number);
        }
        if (value == nullptr) {
          // Mesos drops an unknown value of an optional enum (proto2 semantics): the field reads
          // as unset.
          return unknown(path, fmt::format("field '{}' has unknown value '{}' for enum '{}'", path,
                                           shown, field->enum_type()->full_name()));
        }
        repeated ? r->AddEnum(&message, field, value) : r->SetEnum(&message, field, value);
        return {};
      }
      case FD::CPPTYPE_INT32: {
        auto v = integer<int32_t>(path);
        if (!v) return v.status();
        repeated ? r->AddInt32(&message, field, *v) : r->SetInt32(&message, field, *v);
        return {};
      }
      case FD::CPPTYPE_INT64: {
        auto v = integer<int64_t>(path);
        if (!v) return v.status();
        repeated ? r->AddInt64(&message, field, *v) : r->SetInt64(&message, field, *v);
        return {};
      }
      case FD::CPPTYPE_UINT32: {
        auto v = integer<uint32_t>(path);
        if (!v) return v.status();
        repeated ? r->AddUInt32(&message, field, *v) : r->SetUInt32(&message, field, *v);
        return {};
      }
      case FD::CPPTYPE_UINT64: {
        auto v = integer<uint64_t>(path);
        if (!v) return v.status();
        repeated ? r->AddUInt64(&message, field, *v) : r->SetUInt64(&message, field, *v);
        return {};
      }
      case FD::CPPTYPE_DOUBLE: {
        auto v = floating(path);
        if (!v) return v.status();
        repeated ? r->AddDouble(&message, field, *v) : r->SetDouble(&message, field, *v);
        return {};
      }
      case FD::CPPTYPE_FLOAT: {
        auto v = floating(path);
        if (!v) return v.status();
        auto f = static_cast<float>(*v);
        repeated ? r->AddFloat(&message, field, f) : r->SetFloat(&message, field, f);
        return {};
      }
    }
    return fieldError(path, "has an unsupported type");
  }

  std::string_view in_;
  size_t pos_ = 0;
  const V1JsonParseOptions& options_;
};

int base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

std::string messageToV1Json(const pb::Message& message, const V1JsonPrintOptions& options) {
  std::string out;
  Printer(options).message(out, message);
  return out;
}

api::Status v1JsonToMessage(std::string_view json, pb::Message& message,
                            const V1JsonParseOptions& options) {
  message.Clear();
  if (api::Status s = Parser(json, options).parse(message); !s) return s;
  if (!message.IsInitialized()) {
    return api::invalidArgument("missing required fields: {}", message.InitializationErrorString());
  }
  return {};
}

std::string base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t n = (static_cast<uint8_t>(bytes[i]) << 16) |
                 (static_cast<uint8_t>(bytes[i + 1]) << 8) | static_cast<uint8_t>(bytes[i + 2]);
    out.push_back(kBase64Alphabet[(n >> 18) & 63]);
    out.push_back(kBase64Alphabet[(n >> 12) & 63]);
    out.push_back(kBase64Alphabet[(n >> 6) & 63]);
    out.push_back(kBase64Alphabet[n & 63]);
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t n = static_cast<uint32_t>(static_cast<uint8_t>(bytes[i]) << 16);
    if (rest == 2) n |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1]) << 8);
    out.push_back(kBase64Alphabet[(n >> 18) & 63]);
    out.push_back(kBase64Alphabet[(n >> 12) & 63]);
    out.push_back(rest == 2 ? kBase64Alphabet[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

api::Result<std::string> base64Decode(std::string_view text) {
  size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') {
    ++padding;
  }
  std::string_view body = text.substr(0, text.size() - padding);
  if (padding > 0 && text.size() % 4 != 0) {
    return api::invalidArgument("bad base64: wrong padding");
  }
  if (body.size() % 4 == 1) return api::invalidArgument("bad base64: wrong length");
  std::string out;
  out.reserve(body.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : body) {
    int v = base64Value(c);
    if (v < 0) return api::invalidArgument("bad base64: unexpected character '{}'", c);
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // Leftover bits must be zero in canonical base64 ("QQ==" yes, "QR==" no).
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
    return api::invalidArgument("bad base64: non-zero trailing bits");
  }
  return out;
}

}  // namespace tessera::kernel::net
