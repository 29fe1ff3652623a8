#pragma once

/// The v1 JSON targets' shared property: what parses prints to JSON that parses back to an
/// equal message (kernel/net/v1_json.h).

#include <google/protobuf/util/message_differencer.h>

#include <memory>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "kernel/net/v1_json.h"

namespace tessera::fuzz {

/// Parses `json` into a fresh `prototype.New()` both leniently and strictly (unknown fields
/// refused); when that succeeds, checks the round trip. Returns the lenient parse or nullptr.
inline std::unique_ptr<google::protobuf::Message> v1RoundTrip(
    std::string_view json, const google::protobuf::Message& prototype) {
  using kernel::net::messageToV1Json;
  using kernel::net::v1JsonToMessage;
  std::unique_ptr<google::protobuf::Message> strict(prototype.New());
  (void)v1JsonToMessage(json, *strict, {.rejectUnknownFields = true});
  std::unique_ptr<google::protobuf::Message> message(prototype.New());
  if (!v1JsonToMessage(json, *message)) return nullptr;
  // Without defaults, so that fields left unset stay unset when read back.
  std::string printed = messageToV1Json(*message, {.includeDefaults = false});
  messageToV1Json(*message);
  std::unique_ptr<google::protobuf::Message> again(prototype.New());
  auto reparsed = v1JsonToMessage(printed, *again, {.rejectUnknownFields = true});
  check(static_cast<bool>(reparsed), "v1 JSON printed for a parsed message does not parse");
  // NaN and infinity print as null (JSON has neither), so such a message cannot come back equal.
  if (printed.find("null") == std::string::npos) {
    check(google::protobuf::util::MessageDifferencer::Equals(*message, *again),
          "v1 JSON printed for a parsed message parses back different");
  }
  return message;
}

}  // namespace tessera::fuzz
