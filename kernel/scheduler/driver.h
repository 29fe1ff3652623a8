#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/net/http_stream_client.h"
#include "kernel/net/recordio.h"
#include "kernel/runtime/runtime.h"
#include "tessera/api/executor.h"
#include "tessera/api/framework.h"
#include "tessera/api/status.h"

namespace tessera::kernel::scheduler {

/// Where a master listens.
struct MasterAddress {
  std::string host;
  uint16_t port = 0;
  std::string toString() const;
};

/// Parses `--master`: `host:port` (a name or an IPv4 address; `[v6]:port` too). Errors:
/// InvalidArgument naming the text; `zk://` URLs are refused with a message saying so (leader
/// detection through ZooKeeper comes with the election work).
api::Result<MasterAddress> parseMasterAddress(std::string_view master);

/// Parses the `Location` of a master's 307: `//host:port/path` (what Mesos sends),
/// `http://host:port/path` or `host:port`. Errors: InvalidArgument.
api::Result<MasterAddress> parseLocation(std::string_view location);

/// How an HttpSchedulerDriver behaves.
struct DriverOptions {
  /// The master, `host:port` (see parseMasterAddress()).
  std::string master;
  /// When set (a `zk://` master), asked on the driver's executor after every failed attempt
  /// for the leading master's `host:port` (nullopt: none known); must not block.
  std::function<std::optional<std::string>()> resolveMaster;
  /// A call, or the head of the SUBSCRIBE response, must be answered within it.
  std::chrono::milliseconds callTimeout{10000};
  /// Reconnection backoff: first delay, doubled after each failure up to the maximum.
  std::chrono::milliseconds minBackoff{100};
  std::chrono::milliseconds maxBackoff{5000};
  /// The stream is taken for dead after this many heartbeat intervals without any event.
  int missedHeartbeats = 3;
  /// 307s followed in a row before giving up on a call (or a subscription attempt).
  int maxRedirects = 5;
  /// ACKNOWLEDGE calls in flight at once (each its own connection); at least 1.
  size_t acknowledgeConnections = 8;
  /// Sent as the `Authorization` header of SUBSCRIBE and every call when not empty
  /// (`Basic <base64(principal:secret)>` for a master with a Basic authenticator).
  std::string authorization;
};

/// The kernel's SchedulerDriver: the Mesos v1 scheduler HTTP API.
///
/// SUBSCRIBE opens a streaming POST /api/v1/scheduler (HttpStreamClient); the RecordIO body is
/// decoded as it arrives and each v1 JSON event becomes a Scheduler call. Every other call is
/// its own POST carrying the `Mesos-Stream-Id` the subscription answered, expecting 202: every
/// call but ACKNOWLEDGE one at a time in the order made; ACKNOWLEDGE calls in a lane of their
/// own, up to `acknowledgeConnections` at once (each acknowledges one update of one task and the
/// agent sends a task's next update only once the last is acknowledged, so they need no order
/// among themselves or with the other calls; one at a time, a burst of task ends queued every
/// ACCEPT behind a round trip per update, #23). A 307 moves the driver to the master in its
/// Location. A lost stream (closed, broken, or no event for `missedHeartbeats` heartbeat intervals)
/// calls Scheduler::disconnected() and re-subscribes after a backoff with the FrameworkID received
/// (failover); a failed attempt goes back to the configured master and backs off further.
///
/// Threading: everything (the constructor aside) runs on `executor`, the scheduler's; so do
/// the Scheduler callbacks. Call stop() there before destroying the driver.
class HttpSchedulerDriver final : public api::SchedulerDriver {
 public:
  /// `runtime`, `executor` and `scheduler` must outlive the driver.
  HttpSchedulerDriver(runtime::Runtime& runtime, api::Executor& executor, api::Scheduler& scheduler,
                      DriverOptions options);
  /// stop()s; on the executor, or once nothing runs there any more.
  ~HttpSchedulerDriver() override;
  HttpSchedulerDriver(const HttpSchedulerDriver&) = delete;
  HttpSchedulerDriver& operator=(const HttpSchedulerDriver&) = delete;

  api::Status subscribe(v1::FrameworkInfo info, std::vector<std::string> suppressedRoles) override;
  void accept(std::vector<v1::OfferID> offerIds, std::vector<v1::Offer::Operation> operations,
              std::optional<v1::Filters> filters, api::CallCallback done) override;
  void decline(std::vector<v1::OfferID> offerIds, std::optional<v1::Filters> filters,
               api::CallCallback done) override;
  void revive(std::vector<std::string> roles, api::CallCallback done) override;
  void suppress(std::vector<std::string> roles, api::CallCallback done) override;
  void kill(const v1::TaskID& taskId, const std::optional<v1::AgentID>& agentId,
            api::CallCallback done) override;
  void acknowledge(const v1::AgentID& agentId, const v1::TaskID& taskId, const std::string& uuid,
                   api::CallCallback done) override;
  void reconcile(std::vector<v1::scheduler::Call::Reconcile::Task> tasks,
                 api::CallCallback done) override;
  void message(const v1::AgentID& agentId, const v1::ExecutorID& executorId,
               const std::string& data, api::CallCallback done) override;
  void teardown(api::CallCallback done) override;
  std::optional<v1::FrameworkID> frameworkId() const override { return frameworkId_; }
  bool subscribed() const override { return subscribed_; }

  /// Closes the stream, cancels calls in flight and timers; no Scheduler method is called
  /// afterwards and pending completion callbacks are dropped. Idempotent.
  void stop();

  /// The master the driver talks to now (the configured one, or where a 307 sent it).
  std::string currentMaster() const { return master_.toString(); }
  /// Why the last subscription attempt or stream failed; empty once subscribed.
  const std::string& lastError() const { return lastError_; }
  /// How many SUBSCRIBE requests were sent (test hook).
  int subscribeAttemptsForTest() const { return attempts_; }

 private:
  struct PendingCall {
    v1::scheduler::Call call;
    api::CallCallback done;
    int redirects = 0;
  };
  // A call sent, waiting for its answer.
  struct Flight {
    PendingCall pending;
    std::unique_ptr<net::HttpStreamClient> client;
    int status = 0;
    std::string location;
    std::string body;
  };
  // Calls started in order, at most `width` in flight at once.
  struct Lane {
    size_t width = 1;
    std::deque<PendingCall> queued;
    std::list<Flight> flying;
  };

  void connect();
  void onStreamHead(uint64_t generation, int status,
                    const std::vector<std::pair<std::string, std::string>>& headers);
  void onStreamData(uint64_t generation, const std::string& data);
  void onStreamClosed(uint64_t generation, api::Status status);
  void dropStream(std::string reason);
  void handleEvent(const std::string& record);
  void armWatchdog();
  void scheduleReconnect(bool immediately);
  void send(v1::scheduler::Call call, api::CallCallback done);
  void pump(Lane& lane);
  void finishCall(Lane& lane, std::list<Flight>::iterator flight, api::Status transport);
  void complete(api::CallCallback done, api::Status status);

  runtime::Runtime& runtime_;
  api::Executor& executor_;
  api::Scheduler& scheduler_;
  DriverOptions options_;
  MasterAddress configured_;
  MasterAddress master_;

  v1::FrameworkInfo info_;
  std::vector<std::string> suppressedRoles_;
  std::optional<v1::FrameworkID> frameworkId_;

  bool started_ = false;
  bool stopped_ = false;
  // False once stopped; completion callbacks posted earlier check it, not the driver.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool ended_ = false;  // torn down, or an ERROR: no more re-subscription
  bool subscribed_ = false;
  std::string lastError_;
  int attempts_ = 0;

  // The current SUBSCRIBE exchange; `generation_` tells its callbacks from stale ones.
  std::unique_ptr<net::HttpStreamClient> stream_;
  uint64_t generation_ = 0;
  int streamStatus_ = 0;
  std::string streamId_;
  std::string streamLocation_;
  std::string streamBody_;  // the body of a non-200 answer, for its error message
  std::optional<net::RecordIoDecoder> decoder_;
  std::chrono::nanoseconds heartbeat_{std::chrono::seconds(15)};
  std::unique_ptr<api::TimerHandle> watchdog_;
  std::unique_ptr<api::TimerHandle> reconnect_;
  std::chrono::milliseconds backoff_{0};
  int redirects_ = 0;

  // Calls: ACKNOWLEDGE in their own lane, several at once; every other call one at a time.
  Lane calls_;
  Lane acknowledgements_;
};

}  // namespace tessera::kernel::scheduler
