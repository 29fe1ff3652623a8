#pragma once

/// A framework that loads a master through the v1 scheduler HTTP API, as fast as the master
/// lets it: it SUBSCRIBEs (one RecordIO event stream), accepts every offer with as many
/// `taskCpus`/`taskMem` tasks as fit until `tasks` are launched (declining the rest), and
/// acknowledges every status update that carries a uuid. Calls go out on `connections`
/// keep-alive HTTP connections at once, each a blocking thread of its own, so acknowledgements
/// are not serialised behind one another as a one-call-at-a-time driver would.
///
/// When the stream ends (a master failover, say) it subscribes again with its FrameworkID after
/// 100 ms, as a scheduler would; calls wait for the new stream.
///
/// It measures, per task, the time from the ACCEPT that launched it being sent on a call
/// connection to its TASK_RUNNING update arriving on the stream. ACCEPTs and DECLINEs are sent
/// before acknowledgements already queued.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernel/runtime/runtime.h"
#include "tessera/api/status.h"

namespace tessera::kernel::net {
class TlsContext;
/// The process's TLS (kernel/net/tls.h); null: plain.
std::shared_ptr<TlsContext> processTls();
}  // namespace tessera::kernel::net

namespace tessera::bench {

struct LoadFrameworkOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  ///< the master's HTTP port
  std::string name = "cluster-bench";
  int tasks = 100;  ///< tasks to launch in all
  double taskCpus = 1;
  double taskMem = 32;
  int connections = 8;  ///< parallel call connections
  /// TLS for the event stream and the calls; null: plain (the process's by default).
  std::shared_ptr<kernel::net::TlsContext> tls = kernel::net::processTls();
  /// With a principal: every request carries HTTP Basic credentials (FrameworkInfo.principal
  /// is set too), as a scheduler does against --authenticate_http_frameworks.
  std::string principal;
  std::string secret;
};

struct LoadFrameworkStats {
  bool subscribed = false;
  std::string frameworkId;
  std::string streamId;        ///< the current Mesos-Stream-Id (empty: not subscribed)
  size_t offers = 0;           ///< offers received
  size_t accepts = 0;          ///< ACCEPT calls made
  size_t declines = 0;         ///< DECLINE calls made
  size_t launched = 0;         ///< tasks in those ACCEPTs
  size_t running = 0;          ///< distinct tasks seen TASK_RUNNING
  size_t terminal = 0;         ///< distinct tasks seen in a terminal state
  size_t updates = 0;          ///< UPDATE events received
  size_t acknowledged = 0;     ///< ACKNOWLEDGE calls answered 202
  size_t callErrors = 0;       ///< calls answered other than 202, or lost
  size_t resubscriptions = 0;  ///< event streams lost (each followed by a new SUBSCRIBE)
  std::string lastError;
  /// Seconds since the first ACCEPT: when the last task was seen TASK_RUNNING (0: not yet).
  double allRunningAfter = 0;
  /// ACCEPT → TASK_RUNNING per task, seconds, in arrival order.
  std::vector<double> acceptToRunning;
};

class LoadFramework {
 public:
  /// Subscribes and starts working. `runtime` must be started and outlive the framework.
  static api::Result<std::unique_ptr<LoadFramework>> start(kernel::runtime::Runtime& runtime,
                                                           LoadFrameworkOptions options);
  /// stop()s.
  ~LoadFramework();
  /// Closes the stream and the call connections (calls queued are dropped). Idempotent.
  void stop();
  /// A consistent copy of the counters. Thread-safe.
  LoadFrameworkStats stats() const;

  struct State;

 private:
  LoadFramework() = default;
  std::shared_ptr<State> state_;
};

}  // namespace tessera::bench
