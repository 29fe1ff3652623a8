#pragma once

// Small helpers shared by the master's .cc files.

#include <fmt/format.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/http/http_status.h"
#include "kernel/master/master_core.h"
#include "kernel/runtime/logging.h"

namespace tessera::kernel::master::detail {

inline std::shared_ptr<spdlog::logger> log() {
  static auto logger = runtime::logger("master");
  return logger;
}

template <typename Fn>
std::function<void()> guarded(std::weak_ptr<Core> weak, Fn fn) {
  return [weak = std::move(weak), fn = std::move(fn)]() mutable {
    auto core = weak.lock();
    if (!core || core->stopped) return;
    fn(*core);
  };
}

/// A scheduler call's answer that is not an event stream (a 202, an error): a whole response,
/// so a keep-alive client keeps its connection for the next call, as with Mesos.
inline void answer(const std::shared_ptr<net::HttpStream>& stream, int status,
                   std::string_view message) {
  stream->respond(api::HttpResponse::json(status, message.empty() ? "" : http::errorJson(message)));
}

/// The framework's roles: `roles` (MULTI_ROLE), else the deprecated `role`, else "*".
inline std::vector<std::string> rolesOf(const v1::FrameworkInfo& info) {
  if (info.roles_size() > 0) return {info.roles().begin(), info.roles().end()};
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  return {info.has_role() ? info.role() : std::string("*")};
#pragma GCC diagnostic pop
}

}  // namespace tessera::kernel::master::detail
