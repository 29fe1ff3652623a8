#pragma once

/// The one way the kernel writes JSON: a streaming writer that puts the commas and colons in,
/// escapes every string, and writes numbers the way Mesos's JSON does. It never builds a tree,
/// so a large `/state` costs one string, and nothing written is parsed back.

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace tessera::kernel::http {

/// Writes one JSON value into a string. Misuse (a key outside an object, a value where a key
/// is expected, unbalanced ends) is a programming error and asserts.
///
///   JsonWriter w;
///   w.beginObject().field("id", id).key("tasks").beginArray().endArray().endObject();
///   std::string json = w.take();
class JsonWriter {
 public:
  JsonWriter& beginObject();
  JsonWriter& endObject();
  JsonWriter& beginArray();
  JsonWriter& endArray();
  /// The name of the next member; only inside an object.
  JsonWriter& key(std::string_view name);

  JsonWriter& value(std::string_view text);
  JsonWriter& value(const char* text) { return value(std::string_view(text)); }
  JsonWriter& value(const std::string& text) { return value(std::string_view(text)); }
  JsonWriter& value(bool flag);
  /// Integral doubles below 1e15 print without a fraction (`4`, not `4.0`), others in the
  /// shortest form that reads back the same (`0.5`); NaN and infinity print as null.
  JsonWriter& value(double number);
  template <std::integral T>
  requires(!std::same_as<T, bool>) JsonWriter& value(T number) {
    return integer(std::is_signed_v<T> ? std::to_string(static_cast<int64_t>(number))
                                       : std::to_string(static_cast<uint64_t>(number)));
  }
  JsonWriter& null();
  /// An already-rendered JSON value (from the v1 protobuf codec, say), copied as is. The caller
  /// vouches that it is one well-formed value.
  JsonWriter& raw(std::string_view json);

  /// key(name) then value(v).
  template <typename T>
  JsonWriter& field(std::string_view name, const T& v) {
    key(name);
    return value(v);
  }
  /// key(name) then raw(json).
  JsonWriter& rawField(std::string_view name, std::string_view json) {
    key(name);
    return raw(json);
  }

  /// The JSON written so far.
  const std::string& str() const { return out_; }
  /// Moves the JSON out; the writer is empty again. Asserts every container was closed.
  std::string take();

 private:
  JsonWriter& integer(const std::string& digits);
  // Before a value: the comma between array elements, and the checks.
  void beforeValue();

  enum class Scope { kObject, kArray };
  struct Frame {
    Scope scope;
    bool empty = true;
  };
  std::string out_;
  std::vector<Frame> stack_;
  bool afterKey_ = false;
};

/// Writes a whole JSON value with `fill` and returns it: `writeJson([&](JsonWriter& w) {...})`.
template <typename Fill>
std::string writeJson(Fill&& fill) {
  JsonWriter writer;
  fill(writer);
  return writer.take();
}

}  // namespace tessera::kernel::http
