#include "kernel/net/utf8.h"

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>

#include <string>
#include <vector>

#include "tessera/api/json.h"

namespace tessera::kernel::net {

namespace pb = google::protobuf;
using FD = pb::FieldDescriptor;

namespace {

std::string child(std::string_view path, std::string_view name) {
  return path.empty() ? std::string(name) : fmt::format("{}.{}", path, name);
}

api::Status badField(const std::string& path) {
  return api::invalidArgument("field '{}' is not valid UTF-8", path);
}

// Recursion follows the message's own nesting, which the parsers that built it bound (the v1
// JSON parser by depth, protobuf's by its recursion limit of 100).
api::Status check(const pb::Message& message, const std::string& path) {
  const pb::Reflection* reflection = message.GetReflection();
  std::vector<const FD*> fields;
  reflection->ListFields(message, &fields);  // set fields only, repeated ones when non-empty
  for (const FD* field : fields) {
    std::string fieldPath = child(path, field->name());
    if (field->cpp_type() == FD::CPPTYPE_STRING && field->type() == FD::TYPE_STRING) {
      std::string scratch;
      if (field->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
          const std::string& value =
              reflection->GetRepeatedStringReference(message, field, i, &scratch);
          if (!api::isValidUtf8(value)) return badField(fmt::format("{}[{}]", fieldPath, i));
        }
      } else if (!api::isValidUtf8(reflection->GetStringReference(message, field, &scratch))) {
        return badField(fieldPath);
      }
    } else if (field->cpp_type() == FD::CPPTYPE_MESSAGE) {
      if (field->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
          if (api::Status s = check(reflection->GetRepeatedMessage(message, field, i),
                                    fmt::format("{}[{}]", fieldPath, i));
              !s) {
            return s;
          }
        }
      } else if (api::Status s = check(reflection->GetMessage(message, field), fieldPath); !s) {
        return s;
      }
    }
  }
  return {};
}

}  // namespace

api::Status checkUtf8(const pb::Message& message, std::string_view prefix) {
  return check(message, std::string(prefix));
}

}  // namespace tessera::kernel::net
