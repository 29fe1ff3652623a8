#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "kernel/net/http_stream_client.h"
#include "kernel/runtime/runtime.h"
#include "tessera/api/framework.h"
#include "tessera/api/http.h"

namespace tessera::kernel::scheduler {

/// The header a follower adds to a request it forwards (its own advertised address): a host that
/// does not lead answers such a request with 503 rather than forwarding it again.
inline constexpr std::string_view kForwardedByHeader = "X-Tessera-Forwarded-By";
/// The header on every forwarded answer: the leader's `host:port` (Marathon's X-Marathon-Leader).
inline constexpr std::string_view kLeaderHeader = "X-Tessera-Leader";

/// A framework host's leadership as its module sees it (api::FrameworkHost): set by the host's
/// election callbacks, read by the module and by ForwardingRouter. Thread-safe.
class Leadership final : public api::FrameworkHost {
 public:
  explicit Leadership(std::string advertisedAddress) : advertised_(std::move(advertisedAddress)) {}

  bool leading() const override { return leading_.load(); }
  std::optional<std::string> leaderAddress() const override;
  std::string advertisedAddress() const override;
  /// Runs the host's abdication (once, on a leader; see FrameworkHost::abdicate()).
  void abdicate() override;

  void setLeading(bool leading) { leading_.store(leading); }
  /// The leader the detector saw (nullopt: none).
  void setLeader(std::optional<std::string> address);
  void setAdvertisedAddress(std::string address);
  /// What abdicate() does; called at most once, on the thread that abdicates.
  void onAbdicate(std::function<void()> abdicate);

 private:
  std::atomic<bool> leading_{false};
  mutable std::mutex mutex_;
  std::string advertised_;
  std::optional<std::string> leader_;
  std::function<void()> abdicate_;
  bool abdicated_ = false;
};

/// The router a follower's module registers its routes on: each handler runs as registered while
/// this host leads; otherwise the request (method, path, query, headers, body) is sent to the
/// leader's address and its answer returned, with kLeaderHeader added. No leader known: 503
/// `{"message"}`. The leader unreachable: 502.
///
/// An ordinary route's answer is relayed once complete. A streaming route's is relayed as it
/// arrives: the leader's status and headers (kLeaderHeader added) start the client's stream, each
/// piece of the leader's body is written to it as it comes (SSE events and keep-alive comments
/// included, in order), and the client's stream ends when the leader's does (cut short, it is
/// ended all the same: the client sees the stream stop). The client's stream keeps the
/// follower's own queue bound, so a client slower than the leader is closed, not buffered; and
/// when the client's stream closes for any reason, the connection to the leader is closed too.
///
/// Threading: handlers run on `executor` (the module's), and so does the forwarding; the router
/// and its forwards in flight end with the module's Context.
class ForwardingRouter final : public api::HttpRouter {
 public:
  /// `runtime` and `executor` must outlive the router.
  ForwardingRouter(std::unique_ptr<api::HttpRouter> inner, std::shared_ptr<Leadership> leadership,
                   runtime::Runtime& runtime, api::Executor& executor);
  ~ForwardingRouter() override;

  api::Status addRoute(std::string_view method, std::string_view path, api::HttpHandler handler,
                       bool prefix) override;
  api::Status addStreamingRoute(std::string_view method, std::string_view path,
                                api::HttpStreamingHandler handler, bool prefix) override;

  /// Connections to the leader open for forwarded requests and relayed streams (test hook;
  /// call on the module's executor).
  size_t forwardsForTest() const;

 private:
  struct Forwards;
  static void forward(Leadership& leadership, const std::shared_ptr<Forwards>& forwards,
                      runtime::Runtime& runtime, api::Executor& executor,
                      const api::HttpRequest& request, api::HttpResponder respond);
  static void relay(Leadership& leadership, const std::shared_ptr<Forwards>& forwards,
                    runtime::Runtime& runtime, api::Executor& executor,
                    const api::HttpRequest& request, std::shared_ptr<api::HttpStreamWriter> stream);

  std::unique_ptr<api::HttpRouter> inner_;
  std::shared_ptr<Leadership> leadership_;
  runtime::Runtime& runtime_;
  api::Executor& executor_;
  std::shared_ptr<Forwards> forwards_;
};

/// `path` percent-encoded for a request target (every byte but unreserved ones and '/').
std::string encodePath(std::string_view path);

}  // namespace tessera::kernel::scheduler
