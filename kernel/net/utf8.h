#pragma once

/// The kernel's check that what a peer sent is UTF-8 wherever the schema says "text": proto2
/// `string` fields are not validated by protobuf when parsed (only proto3 ones are), so a binary
/// body or an internal transport message may carry any bytes there. Validation of a single
/// string is api::isValidUtf8() (tessera/api/json.h), shared with modules.

#include <google/protobuf/message.h>

#include "tessera/api/status.h"

namespace tessera::kernel::net {

/// Visits every `string` field (not `bytes`) of `message` and its sub-messages, set or repeated,
/// and checks it is well-formed UTF-8. Errors: InvalidArgument naming the first bad field by its
/// dotted path from `message`, with indexes for repeated fields
/// (`field 'subscribe.framework_info.name' is not valid UTF-8`), prefixed by `prefix` when given.
/// Unknown fields are not visited: nothing reads or prints them.
api::Status checkUtf8(const google::protobuf::Message& message, std::string_view prefix = {});

}  // namespace tessera::kernel::net
