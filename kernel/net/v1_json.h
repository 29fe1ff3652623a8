#pragma once

/// Protobuf messages <-> Mesos v1 JSON, the way Mesos's own (stout) mapping writes and reads it:
/// snake_case proto field names, enums as their names, `bytes` as standard padded base64,
/// 64-bit integers and doubles as JSON numbers, repeated fields as arrays, `null` as absent.
///
/// Unknown fields: Mesos ignores them when parsing (stout's `protobuf::parse` skips any name its
/// descriptor lacks), and so do we by default, because our v1 protos hold only the subset of
/// Mesos's fields Tessera uses: a real client sending, say, `FrameworkInfo.roles` must not be
/// turned away. `V1JsonParseOptions::rejectUnknownFields` makes them an error naming the field's
/// path, and `ignoredFields` reports them so a caller can log what it dropped.

#include <google/protobuf/message.h>

#include <string>
#include <string_view>
#include <vector>

#include "tessera/api/status.h"

namespace tessera::kernel::net {

/// How v1JsonToMessage() treats input it does not know.
struct V1JsonParseOptions {
  /// An unknown field name (or an unknown enum value name) is an InvalidArgument error rather
  /// than being skipped.
  bool rejectUnknownFields = false;
  /// When set, receives the path of every field skipped as unknown (`subscribe.framework_info.x`)
  /// and of every unknown enum value (`type`). Must outlive the call.
  std::vector<std::string>* ignoredFields = nullptr;
  /// Objects and arrays nested deeper than this are refused (a stack-depth guard).
  int maxDepth = 64;
};

/// How messageToV1Json() writes.
struct V1JsonPrintOptions {
  /// Also writes unset optional fields that declare an explicit default (and are not deprecated),
  /// with that default, exactly as Mesos does (so `Resource.role` appears as "*").
  bool includeDefaults = true;
};

/// Writes `message` as compact Mesos v1 JSON. Integers (64-bit too) are exact JSON numbers;
/// doubles use the shortest text that reads back to the same value, and NaN/infinity (which JSON
/// cannot express) are written as null. The output is always valid JSON: an ill-formed UTF-8
/// sequence in a `string` field is written as U+FFFD (api::appendJsonString()).
std::string messageToV1Json(const google::protobuf::Message& message,
                            const V1JsonPrintOptions& options = {});

/// Parses Mesos v1 JSON into `message` (cleared first). Field names are the proto names; their
/// lowerCamelCase JSON names are accepted too, as are integers written as strings ("42", as
/// protobuf's own printer writes 64-bit ones). Integers must fit their field exactly; a number
/// with a fraction or exponent is taken for an integer field only when it is integral. Errors:
/// InvalidArgument naming the path of the bad field (`'offers[0].resources[1].ranges' ...`) for
/// malformed JSON, a wrong JSON type, an out-of-range number, bad base64, trailing data, too
/// deep nesting, a missing required field, and (with rejectUnknownFields) unknown names; and
/// for a string, member names and the strings of skipped unknown fields included, that is not
/// well-formed UTF-8 or holds a lone surrogate escape (`field 'subscribe.framework_info.name' is
/// not valid UTF-8`), so every string a parsed message holds is text.
api::Status v1JsonToMessage(std::string_view json, google::protobuf::Message& message,
                            const V1JsonParseOptions& options = {});

/// Parses Mesos v1 JSON into a new `Msg`. Errors as v1JsonToMessage().
template <typename Msg>
api::Result<Msg> parseV1Json(std::string_view json, const V1JsonParseOptions& options = {}) {
  Msg message;
  api::Status status = v1JsonToMessage(json, message, options);
  if (!status) return status;
  return message;
}

/// Standard (RFC 4648 §4) base64 with padding.
std::string base64Encode(std::string_view bytes);
/// Decodes standard base64. Padding may be left off, but when present it must be right. Errors:
/// InvalidArgument for a character outside the alphabet (URL-safe `-_` included), whitespace, or a
/// bad length or padding.
api::Result<std::string> base64Decode(std::string_view text);

}  // namespace tessera::kernel::net
