// The internal transport (master <-> agent): a byte stream cut into frames as the transport
// reads it (kernel/net/transport.h: a 4-byte big-endian length N, then a kind byte and N-1
// bytes of payload), each message payload parsed as the Envelope the master and the agent
// exchange (net::typedMessageHandler), and the resources a (re)registering agent announces
// converted as the master converts them (api::Resources::fromProto).
//
// The transport's reader itself is socket code (asio reads into a buffer): this target covers
// the parse of what a peer sends, not the reader's state machine, whose limits the transport
// tests check.
//
// Properties: parsing never crashes; an Envelope that parses serializes to bytes that parse
// back to a message serializing to the same bytes; it prints as v1 JSON that is valid (parses
// again).

#include <string>

#include "fuzz/fuzz_check.h"
#include "kernel/net/v1_json.h"
#include "kernel/protocol/internal.pb.h"
#include "tessera/api/resources.h"

using tessera::fuzz::check;
using tessera::internal::Envelope;

namespace {

constexpr size_t kMaxMessageBytes = 1 << 20;

void onMessage(std::string_view payload) {
  Envelope envelope;
  if (!envelope.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) return;
  if (envelope.has_register_agent()) {
    (void)tessera::api::Resources::fromProto(envelope.register_agent().agent_info().resources());
  }
  if (envelope.has_reregister_agent()) {
    const auto& reregister = envelope.reregister_agent();
    (void)tessera::api::Resources::fromProto(reregister.agent_info().resources());
    (void)tessera::api::Resources::fromProto(reregister.checkpointed_resources());
  }
  if (envelope.has_checkpoint_resources()) {
    (void)tessera::api::Resources::fromProto(envelope.checkpoint_resources().resources());
  }
  std::string bytes;
  check(envelope.SerializeToString(&bytes), "a parsed envelope does not serialize");
  Envelope again;
  check(again.ParseFromString(bytes), "a serialized envelope does not parse");
  // Compared as bytes, not with MessageDifferencer: a NaN scalar is not equal to itself.
  check(again.SerializeAsString() == bytes, "a serialized envelope parses back different");
  Envelope fromJson;
  auto json = tessera::kernel::net::messageToV1Json(envelope);
  check(static_cast<bool>(tessera::kernel::net::v1JsonToMessage(json, fromJson)),
        "an envelope printed as v1 JSON does not parse");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view stream = tessera::fuzz::text(data, size);
  while (stream.size() >= 4) {
    uint32_t length =
        (uint32_t{data[0]} << 24) | (uint32_t{data[1]} << 16) | (uint32_t{data[2]} << 8) | data[3];
    if (length == 0 || length - 1 > kMaxMessageBytes) return 0;  // the transport closes
    if (stream.size() - 4 < length) {
      // A stream that ends inside a frame: take what is there as the payload, so that inputs
      // without a valid prefix still reach the message parser.
      length = static_cast<uint32_t>(stream.size() - 4);
      if (length == 0) return 0;
    }
    uint8_t kind = data[4];
    if (kind > 2) return 0;  // unknown kind: the transport closes
    if (kind == 0) onMessage(stream.substr(5, length - 1));
    data += 4 + length;
    stream.remove_prefix(4 + length);
  }
  return 0;
}
