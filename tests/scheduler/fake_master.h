#pragma once

// A fake master for the scheduler-side tests: serves POST /api/v1/scheduler on loopback the way
// the master does (SUBSCRIBE answered 200 with a Mesos-Stream-Id and a RecordIO stream of v1
// JSON events; other calls 202 when the stream id is right, 400 otherwise; or 307 to another
// master), records every call, and lets a test push events or script answers.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kernel/net/http_server.h"
#include "kernel/net/recordio.h"
#include "kernel/net/v1_json.h"
#include "kernel/runtime/runtime.h"
#include "tessera/api/resources.h"
#include "tessera/v1/scheduler.pb.h"

namespace tessera::kernel::scheduler::testing {

using v1::scheduler::Call;
using v1::scheduler::Event;

struct RecordedCall {
  Call call;
  std::string streamId;  ///< the Mesos-Stream-Id header ("" if absent)
  std::string contentType;
  std::string accept;
  std::string authorization;  ///< the Authorization header ("" if absent)
};

class FakeMaster {
 public:
  explicit FakeMaster(kernel::runtime::Runtime& runtime)
      : executor_(runtime.makeExecutor()), router_(std::make_shared<net::Router>()) {
    auto added = router_->addStreamRoute(
        "POST", "/api/v1/scheduler", executor_.get(),
        [this](const api::HttpRequest& request, std::shared_ptr<net::HttpStream> stream) {
          handle(request, std::move(stream));
        });
    (void)added;
    server_ = std::make_unique<net::HttpServer>(runtime, router_);
    auto started = server_->start();
    (void)started;
  }
  ~FakeMaster() {
    closeStream();
    server_->stop();
    executor_->drain();
  }

  uint16_t port() const { return server_->port(); }
  std::string address() const { return fmt::format("127.0.0.1:{}", port()); }

  /// Every call answers 307 to `location` from now on.
  void redirectTo(std::string location) {
    std::lock_guard lock(mutex_);
    redirect_ = std::move(location);
  }
  /// SUBSCRIBE is answered 400 with `message` from now on.
  void refuseSubscriptions(std::string message) {
    std::lock_guard lock(mutex_);
    refusal_ = std::move(message);
  }
  /// The heartbeat interval SUBSCRIBED announces.
  void setHeartbeatSeconds(double seconds) {
    std::lock_guard lock(mutex_);
    heartbeatSeconds_ = seconds;
  }
  /// Runs on the master's executor after each accepted call (SUBSCRIBE included, after the
  /// SUBSCRIBED event was sent).
  void onCall(std::function<void(const Call&)> script) {
    std::lock_guard lock(mutex_);
    script_ = std::move(script);
  }

  /// While held, ACKNOWLEDGE calls are recorded but not answered until releaseHeld().
  void holdAcknowledgements(bool hold) {
    std::lock_guard lock(mutex_);
    holdAcks_ = hold;
  }
  /// Answers 202 to every ACKNOWLEDGE held so far.
  void releaseHeld() {
    std::vector<std::shared_ptr<net::HttpStream>> held;
    {
      std::lock_guard lock(mutex_);
      held = std::move(held_);
      held_.clear();
    }
    for (auto& stream : held) {
      stream->start(202, "application/json");
      stream->end();
    }
  }

  /// Sends `event` on the current stream. False when there is none.
  bool send(const Event& event) {
    std::shared_ptr<net::HttpStream> stream;
    {
      std::lock_guard lock(mutex_);
      stream = stream_;
    }
    return stream && stream->write(net::encodeRecordIo(net::messageToV1Json(event)));
  }
  /// Ends the current stream (the connection closes).
  void closeStream() {
    std::shared_ptr<net::HttpStream> stream;
    {
      std::lock_guard lock(mutex_);
      stream = std::move(stream_);
      streamId_.clear();
    }
    if (stream) stream->end();
  }

  std::vector<RecordedCall> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  std::vector<RecordedCall> callsOf(Call::Type type) const {
    std::lock_guard lock(mutex_);
    std::vector<RecordedCall> out;
    for (const auto& c : calls_) {
      if (c.call.type() == type) out.push_back(c);
    }
    return out;
  }
  /// Waits until `count` calls of `type` arrived.
  bool waitForCalls(Call::Type type, size_t count,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] {
      size_t n = 0;
      for (const auto& c : calls_) n += c.call.type() == type ? 1 : 0;
      return n >= count;
    });
  }
  std::string currentStreamId() const {
    std::lock_guard lock(mutex_);
    return streamId_;
  }

  static Event subscribedEvent(const std::string& frameworkId, double heartbeatSeconds) {
    Event event;
    event.set_type(Event::SUBSCRIBED);
    event.mutable_subscribed()->mutable_framework_id()->set_value(frameworkId);
    event.mutable_subscribed()->set_heartbeat_interval_seconds(heartbeatSeconds);
    event.mutable_subscribed()->mutable_master_info()->set_id("master-1");
    return event;
  }

 private:
  void handle(const api::HttpRequest& request, std::shared_ptr<net::HttpStream> stream) {
    auto call = net::parseV1Json<Call>(request.body);
    std::unique_lock lock(mutex_);
    if (!redirect_.empty()) {
      stream->start(307, "application/json", {{"Location", redirect_}});
      stream->end();
      return;
    }
    if (!call) {
      stream->start(400, "application/json");
      stream->write(R"({"message":"bad call"})");
      stream->end();
      return;
    }
    RecordedCall recorded{*call, request.header("Mesos-Stream-Id").value_or(""),
                          request.header("Content-Type").value_or(""),
                          request.header("Accept").value_or(""),
                          request.header("Authorization").value_or("")};
    calls_.push_back(recorded);
    auto script = script_;
    if (call->type() == Call::SUBSCRIBE && !refusal_.empty()) {
      std::string refusal = refusal_;
      lock.unlock();
      stream->start(400, "application/json");
      stream->write(fmt::format(R"({{"message":"{}"}})", refusal));
      stream->end();
      changed_.notify_all();
      return;
    }
    if (call->type() == Call::SUBSCRIBE) {
      std::string frameworkId = call->has_framework_id() ? call->framework_id().value()
                                                         : fmt::format("fw-{}", ++frameworks_);
      streamId_ = fmt::format("stream-{}", ++streams_);
      if (stream_) stream_->end();
      stream_ = stream;
      double heartbeat = heartbeatSeconds_;
      std::string streamId = streamId_;
      lock.unlock();
      stream->start(200, "application/json", {{"Mesos-Stream-Id", streamId}});
      stream->write(
          net::encodeRecordIo(net::messageToV1Json(subscribedEvent(frameworkId, heartbeat))));
    } else {
      bool ok = !streamId_.empty() && recorded.streamId == streamId_;
      if (ok && holdAcks_ && call->type() == Call::ACKNOWLEDGE) {
        held_.push_back(std::move(stream));
        lock.unlock();
        changed_.notify_all();
        return;
      }
      lock.unlock();
      if (!ok) {
        stream->start(400, "application/json");
        stream->write(R"({"message":"the request's Mesos-Stream-Id is wrong"})");
        stream->end();
        changed_.notify_all();
        return;
      }
      stream->start(202, "application/json");
      stream->end();
    }
    changed_.notify_all();
    if (script) script(*call);
  }

  std::unique_ptr<kernel::runtime::StrandExecutor> executor_;
  std::shared_ptr<net::Router> router_;
  std::unique_ptr<net::HttpServer> server_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<RecordedCall> calls_;
  std::shared_ptr<net::HttpStream> stream_;
  std::string streamId_;
  std::string redirect_;
  std::string refusal_;
  double heartbeatSeconds_ = 15;
  int frameworks_ = 0;
  int streams_ = 0;
  std::function<void(const Call&)> script_;
  bool holdAcks_ = false;
  std::vector<std::shared_ptr<net::HttpStream>> held_;
};

/// An Offer of `resources` text on agent `agent`.
inline v1::Offer makeOffer(const std::string& id, const std::string& agent,
                           const std::string& resources) {
  v1::Offer offer;
  offer.mutable_id()->set_value(id);
  offer.mutable_framework_id()->set_value("fw-1");
  offer.mutable_agent_id()->set_value(agent);
  offer.set_hostname("localhost");
  *offer.mutable_resources() = api::Resources::parse(resources).value().toProto();
  return offer;
}

/// An UPDATE event for `task` in `state`, with an acknowledgement uuid.
inline Event makeUpdate(const std::string& task, v1::TaskState state, const std::string& uuid,
                        const std::string& message = "") {
  Event event;
  event.set_type(Event::UPDATE);
  auto* status = event.mutable_update()->mutable_status();
  status->mutable_task_id()->set_value(task);
  status->set_state(state);
  status->mutable_agent_id()->set_value("agent-1");
  status->set_uuid(uuid);
  if (!message.empty()) status->set_message(message);
  return event;
}

}  // namespace tessera::kernel::scheduler::testing
