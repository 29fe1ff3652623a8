#pragma once

/// Key rules and helpers shared by the kernel's state stores (see tessera/api/state_store.h).

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/api/executor.h"
#include "tessera/api/status.h"

namespace tessera::kernel::state {

/// OK if `key` is a valid state-store key; InvalidArgument naming it otherwise. The root "/"
/// is valid only when `allowRoot` (children() prefixes).
api::Status validateKey(std::string_view key, bool allowRoot = false);

/// The direct child of `prefix` that `key` lies under ("/a", "/a/b/c" -> "b"), or empty when
/// `key` is not strictly below `prefix`. Both must be valid.
std::string_view childUnder(std::string_view prefix, std::string_view key);

/// The Aborted status of a failed compare-and-set.
api::Status versionMismatch(std::string_view key, uint64_t expected, uint64_t found);

/// Posts `done(result)` to `on`: how every store replies.
template <typename T>
void postReply(api::Executor& on, std::function<void(T)> done, T result) {
  on.post(
      [done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); });
}

}  // namespace tessera::kernel::state
