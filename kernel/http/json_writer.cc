#include "kernel/http/json_writer.h"

#include <fmt/format.h>

#include <cassert>
#include <cmath>

#include "tessera/api/json.h"

namespace tessera::kernel::http {

void JsonWriter::beforeValue() {
  if (stack_.empty()) {
    assert(out_.empty() && "a JsonWriter holds one top-level value");
    return;
  }
  Frame& frame = stack_.back();
  if (frame.scope == Scope::kObject) {
    assert(afterKey_ && "a value inside an object needs a key first");
    afterKey_ = false;
    return;
  }
  if (!frame.empty) out_ += ',';
  frame.empty = false;
}

JsonWriter& JsonWriter::beginObject() {
  beforeValue();
  out_ += '{';
  stack_.push_back({Scope::kObject});
  return *this;
}

JsonWriter& JsonWriter::endObject() {
  assert(!stack_.empty() && stack_.back().scope == Scope::kObject && !afterKey_);
  stack_.pop_back();
  out_ += '}';
  return *this;
}

JsonWriter& JsonWriter::beginArray() {
  beforeValue();
  out_ += '[';
  stack_.push_back({Scope::kArray});
  return *this;
}

JsonWriter& JsonWriter::endArray() {
  assert(!stack_.empty() && stack_.back().scope == Scope::kArray);
  stack_.pop_back();
  out_ += ']';
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view name) {
  assert(!stack_.empty() && stack_.back().scope == Scope::kObject && !afterKey_);
  Frame& frame = stack_.back();
  if (!frame.empty) out_ += ',';
  frame.empty = false;
  api::appendJsonString(out_, name);
  out_ += ':';
  afterKey_ = true;
  return *this;
}

JsonWriter& JsonWriter::value(std::string_view text) {
  beforeValue();
  api::appendJsonString(out_, text);
  return *this;
}

JsonWriter& JsonWriter::value(bool flag) {
  beforeValue();
  out_ += flag ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::value(double number) {
  beforeValue();
  if (!std::isfinite(number)) {
    out_ += "null";
  } else if (number == std::floor(number) && std::fabs(number) < 1e15) {
    fmt::format_to(std::back_inserter(out_), "{}", static_cast<int64_t>(number));
  } else {
    fmt::format_to(std::back_inserter(out_), "{}", number);
  }
  return *this;
}

JsonWriter& JsonWriter::integer(const std::string& digits) {
  beforeValue();
  out_ += digits;
  return *this;
}

JsonWriter& JsonWriter::null() {
  beforeValue();
  out_ += "null";
  return *this;
}

JsonWriter& JsonWriter::raw(std::string_view json) {
  beforeValue();
  out_ += json;
  return *this;
}

std::string JsonWriter::take() {
  assert(stack_.empty() && !afterKey_ && "a JsonWriter was taken with a container open");
  std::string out = std::move(out_);
  out_.clear();
  return out;
}

}  // namespace tessera::kernel::http
