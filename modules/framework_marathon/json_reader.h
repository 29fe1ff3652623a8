#pragma once

// Reading typed JSON fields of app and pod definitions: a wrong JSON type becomes a violation
// at its path with Play JSON's error key (`error.expected.jsnumber` etc.), as Marathon reports
// it. Shared by app.cc and pod.cc; module-internal.

#include <Poco/Dynamic/Var.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "modules/framework_marathon/app.h"

namespace tessera::modules::marathon {

/// Collects violations into the vector it is given (errors for one path are merged).
class JsonReader {
 public:
  explicit JsonReader(std::vector<Violation>& violations) : violations_(violations) {}

  /// Adds `error` to the violation at `path` (a new one when none yet).
  void fail(const std::string& path, std::string error);

  std::optional<double> number(const Poco::Dynamic::Var& value, const std::string& path);
  /// A whole number within 32 bits (`error.expected.int` otherwise).
  std::optional<int> integer(const Poco::Dynamic::Var& value, const std::string& path);
  std::optional<std::string> string(const Poco::Dynamic::Var& value, const std::string& path);
  std::optional<bool> boolean(const Poco::Dynamic::Var& value, const std::string& path);
  Poco::JSON::Object::Ptr object(const Poco::Dynamic::Var& value, const std::string& path);
  Poco::JSON::Array::Ptr array(const Poco::Dynamic::Var& value, const std::string& path);
  /// An object of strings; a non-string value fails at `path/key` and is left out.
  std::map<std::string, std::string> stringMap(const Poco::Dynamic::Var& value,
                                               const std::string& path);
  /// An array of strings; a non-string item fails at `path(i)` and is left out.
  std::vector<std::string> stringList(const Poco::Dynamic::Var& value, const std::string& path);

 private:
  std::vector<Violation>& violations_;
};

}  // namespace tessera::modules::marathon
