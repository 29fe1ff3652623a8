#include "modules/framework_marathon/json_reader.h"

#include <fmt/format.h>

#include <cmath>

namespace tessera::modules::marathon {

using Poco::Dynamic::Var;
using Poco::JSON::Array;
using Poco::JSON::Object;

void JsonReader::fail(const std::string& path, std::string error) {
  for (auto& violation : violations_) {
    if (violation.path == path) {
      violation.errors.push_back(std::move(error));
      return;
    }
  }
  violations_.push_back(Violation{path, {std::move(error)}});
}

std::optional<double> JsonReader::number(const Var& value, const std::string& path) {
  if (value.isEmpty() || !value.isNumeric() || value.isBoolean()) {
    fail(path, "error.expected.jsnumber");
    return std::nullopt;
  }
  return value.convert<double>();
}

std::optional<int> JsonReader::integer(const Var& value, const std::string& path) {
  auto n = number(value, path);
  if (!n) return std::nullopt;
  if (std::floor(*n) != *n || std::abs(*n) > 2147483647.0) {
    fail(path, "error.expected.int");
    return std::nullopt;
  }
  return static_cast<int>(*n);
}

std::optional<std::string> JsonReader::string(const Var& value, const std::string& path) {
  if (value.isEmpty() || !value.isString()) {
    fail(path, "error.expected.jsstring");
    return std::nullopt;
  }
  return value.convert<std::string>();
}

std::optional<bool> JsonReader::boolean(const Var& value, const std::string& path) {
  if (value.isEmpty() || !value.isBoolean()) {
    fail(path, "error.expected.jsboolean");
    return std::nullopt;
  }
  return value.convert<bool>();
}

Object::Ptr JsonReader::object(const Var& value, const std::string& path) {
  if (value.type() != typeid(Object::Ptr)) {
    fail(path, "error.expected.jsobject");
    return nullptr;
  }
  return value.extract<Object::Ptr>();
}

Array::Ptr JsonReader::array(const Var& value, const std::string& path) {
  if (value.type() != typeid(Array::Ptr)) {
    fail(path, "error.expected.jsarray");
    return nullptr;
  }
  return value.extract<Array::Ptr>();
}

std::map<std::string, std::string> JsonReader::stringMap(const Var& value,
                                                         const std::string& path) {
  std::map<std::string, std::string> out;
  auto object = this->object(value, path);
  if (!object) return out;
  for (const auto& [key, item] : *object) {
    if (auto text = string(item, path + "/" + key)) out[key] = *text;
  }
  return out;
}

std::vector<std::string> JsonReader::stringList(const Var& value, const std::string& path) {
  std::vector<std::string> out;
  auto array = this->array(value, path);
  if (!array) return out;
  for (size_t i = 0; i < array->size(); ++i) {
    if (auto text = string(array->get(i), fmt::format("{}({})", path, i))) out.push_back(*text);
  }
  return out;
}

}  // namespace tessera::modules::marathon
