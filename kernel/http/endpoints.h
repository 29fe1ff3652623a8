#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "kernel/http/authorization.h"
#include "kernel/net/http_server.h"
#include "kernel/runtime/metrics.h"
#include "tessera/api/executor.h"
#include "tessera/api/status.h"

namespace tessera::kernel::http {

/// What `/version` reports (Mesos's fields).
struct VersionInfo {
  std::string version;                ///< "0.1.0"
  std::string buildDate;              ///< "2026-11-22 01:00:00"
  double buildTime = 0;               ///< seconds since the epoch
  std::string buildUser;              ///< who built it
  std::optional<std::string> gitSha;  ///< absent fields are left out, as Mesos does
  std::optional<std::string> gitBranch;
  std::optional<std::string> gitTag;
};

/// What the shared endpoints serve.
struct SharedEndpoints {
  VersionInfo version;
  /// The effective flags, already redacted (secrets replaced); called on the endpoints'
  /// executor for each `/flags` request.
  std::function<std::map<std::string, std::string>()> flags;
  /// The daemon's authorizer, once a role publishes one: `/flags` then asks VIEW_FLAGS for the
  /// request's principal (Mesos's `view_flags` ACL) and answers 403 when refused. Null or
  /// empty: `/flags` is open (the HTTP authentication gate still applies).
  std::shared_ptr<const AuthorizerSlot> authorizer;
  /// The daemon's registry; must outlive the routes.
  runtime::MetricsRegistry* metrics = nullptr;
  /// How long `/metrics/snapshot` and `/metrics` wait for gauges when no `?timeout=` is given.
  std::chrono::nanoseconds defaultSnapshotTimeout = std::chrono::seconds(5);
};

/// `/health` answers Mesos's empty 200, or 503 with a JSON `message` naming every gauge whose
/// name ends in `_reachable` and reads 0 (a dependency a component or module cannot reach).
/// Registers `/health`, `/version`, `/flags`, `/metrics/snapshot` (JSON) and `/metrics`
/// (Prometheus text 0.0.4) on `router`, with handlers running on `executor` (which must
/// outlive the routes). Errors: AlreadyExists when one of the paths is taken, InvalidArgument
/// when `endpoints.metrics` is null.
api::Status registerSharedEndpoints(net::Router& router, api::Executor& executor,
                                    SharedEndpoints endpoints);

}  // namespace tessera::kernel::http
