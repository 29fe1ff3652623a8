#pragma once

/// Reading a JSON request body with Poco's parser (the operator API and the policy endpoints),
/// after the checks every body the kernel accepts must pass: nesting no deeper than a fixed
/// limit, checked by a flat scan before any recursive parser runs, and every string, member
/// names included, well-formed UTF-8 (the v1 protobuf bodies get the same from
/// net::v1JsonToMessage()).

#include <Poco/Dynamic/Var.h>

#include <cstddef>
#include <string_view>

#include "tessera/api/status.h"

namespace tessera::kernel::http {

/// The deepest nesting of objects and arrays a request body may have (as the v1 JSON parser).
inline constexpr int kMaxJsonDepth = 64;
/// The most values (objects, arrays, strings, numbers, literals; member names not counted) a
/// request body may hold: Poco's parser builds a tree of them, several times the text's size,
/// so a body within the byte limit made of tiny values (`[0,0,0,...]`) is bounded here too.
inline constexpr size_t kMaxJsonValues = 100000;

/// Checks, without recursion and without building anything, that `json` nests objects and
/// arrays at most `maxDepth` deep, holds at most `maxValues` values, and that each of its strings
/// is well-formed UTF-8 with no lone surrogate escape. It is not a full syntax check (the parser
/// that follows makes that). Errors: InvalidArgument `JSON nested too deeply (more than 64
/// levels)`, `JSON holds more than 100000 values`, `field 'mark_agent_gone.agent_id.value' is not
/// valid UTF-8`, `a member name in 'infos[0]' is not valid UTF-8`.
api::Status checkJsonText(std::string_view json, int maxDepth = kMaxJsonDepth,
                          size_t maxValues = kMaxJsonValues);

/// checkJsonText(), then Poco's parser. Errors: InvalidArgument with checkJsonText()'s message or
/// `<what> is not valid JSON: <what Poco found, escaped>`, never a bare exception name.
api::Result<Poco::Dynamic::Var> parseJsonBody(std::string_view json,
                                              std::string_view what = "the body");

}  // namespace tessera::kernel::http
