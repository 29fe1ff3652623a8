#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "tessera/api/status.h"

namespace tessera::modules::containerizer_docker {

/// The Engine API version every request names (Docker 20.10, Debian 12's docker.io; later
/// engines still serve it).
inline constexpr std::string_view kEngineApiVersion = "v1.41";

/// One answer of the Docker Engine API.
struct EngineResponse {
  unsigned status = 0;
  std::string body;
};

/// An HTTP/1.1 client for the Docker Engine API over its unix socket (Boost.Beast), with its own
/// io_context and thread, so nothing it does blocks the agent's runtime. One connection per
/// request. Callbacks run on the client's thread; callers post them to their own executor.
/// After stop() (or destruction) no callback runs any more.
class EngineClient {
 public:
  /// `socketPath`: the engine's unix socket (`--docker_socket`).
  explicit EngineClient(std::string socketPath);
  ~EngineClient();
  EngineClient(const EngineClient&) = delete;
  EngineClient& operator=(const EngineClient&) = delete;

  const std::string& socketPath() const { return socketPath_; }

  using Done = std::function<void(api::Result<EngineResponse>)>;

  /// Sends `method` `target` (a path below the API version, "/containers/json") with `body`
  /// and calls `done` with the status and body, or Unavailable (the socket cannot be reached:
  /// the message names it) or DeadlineExceeded (no full answer within `timeout`).
  void request(std::string method, std::string target, std::string body, Done done,
               std::chrono::milliseconds timeout = std::chrono::seconds(30),
               std::string contentType = "application/json");

  /// A request whose body is read as it arrives: `onData` gets each piece (a 2xx answer's body
  /// only), `done` the status once the body ends (or an error; a non-2xx answer's body comes
  /// back in `done`). Cancelled by stop(). No timeout: for followed logs and waits.
  void stream(std::string method, std::string target, std::function<void(std::string_view)> onData,
              Done done);

  /// request() for control threads (tests, benches): blocks until the answer. Never call it
  /// from a callback of this client.
  api::Result<EngineResponse> call(std::string method, std::string target, std::string body = "",
                                   std::chrono::milliseconds timeout = std::chrono::seconds(60),
                                   std::string contentType = "application/json");

  /// Stops the thread; pending requests are dropped without their callbacks. Idempotent.
  void stop();

 private:
  struct Impl;
  std::string socketPath_;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  std::once_flag stopped_;
};

/// Percent-encodes `text` for a query parameter value or a path segment.
std::string urlEncode(std::string_view text);

}  // namespace tessera::modules::containerizer_docker
