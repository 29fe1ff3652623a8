#include "kernel/scheduler/driver.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fmt/format.h>
#include <strings.h>

#include <algorithm>
#include <charconv>
#include <iterator>

#include "kernel/net/v1_json.h"
#include "kernel/runtime/logging.h"

namespace tessera::kernel::scheduler {

namespace {

using v1::scheduler::Call;
using v1::scheduler::Event;

constexpr std::string_view kPath = "/api/v1/scheduler";
constexpr size_t kMaxErrorBody = 4096;

std::shared_ptr<spdlog::logger> log() { return runtime::logger("scheduler"); }

api::Result<MasterAddress> parseHostPort(std::string_view text, std::string_view what) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return api::invalidArgument("{} '{}' is not HOST:PORT", what, text);
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return api::invalidArgument("{} '{}' is not HOST:PORT", what, text);
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || port.empty() || ec != std::errc() || end != port.data() + port.size() ||
      value == 0 || value > 65535) {
    return api::invalidArgument("{} '{}' is not HOST:PORT", what, text);
  }
  return MasterAddress{std::string(host), static_cast<uint16_t>(value)};
}

// The "message" of a JSON error body, else the body itself (trimmed), else nothing.
std::string errorMessage(const std::string& body) {
  try {
    Poco::JSON::Parser parser;
    auto object = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
    if (object && object->has("message")) return object->getValue<std::string>("message");
  } catch (...) {
    // Not JSON: the text is the message.
  }
  std::string text = body.substr(0, 512);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

std::string headerValue(const std::vector<std::pair<std::string, std::string>>& headers,
                        std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() && strncasecmp(key.data(), name.data(), key.size()) == 0) {
      return value;
    }
  }
  return {};
}

}  // namespace

std::string MasterAddress::toString() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

api::Result<MasterAddress> parseMasterAddress(std::string_view master) {
  if (master.rfind("zk://", 0) == 0) {
    return api::invalidArgument(
        "master '{}': zk:// URLs are not supported yet; give the leading master as HOST:PORT",
        master);
  }
  if (master.rfind("http://", 0) == 0) master.remove_prefix(7);
  if (!master.empty() && master.back() == '/') master.remove_suffix(1);
  return parseHostPort(master, "master");
}

api::Result<MasterAddress> parseLocation(std::string_view location) {
  std::string_view text = location;
  if (text.rfind("http://", 0) == 0) {
    text.remove_prefix(7);
  } else if (text.rfind("https://", 0) == 0) {
    text.remove_prefix(8);
  } else if (text.rfind("//", 0) == 0) {
    text.remove_prefix(2);
  }
  text = text.substr(0, text.find('/'));
  return parseHostPort(text, "redirect location");
}

HttpSchedulerDriver::HttpSchedulerDriver(runtime::Runtime& runtime, api::Executor& executor,
                                         api::Scheduler& scheduler, DriverOptions options)
    : runtime_(runtime), executor_(executor), scheduler_(scheduler), options_(std::move(options)) {
  acknowledgements_.width = std::max<size_t>(1, options_.acknowledgeConnections);
}

HttpSchedulerDriver::~HttpSchedulerDriver() { stop(); }

api::Status HttpSchedulerDriver::subscribe(v1::FrameworkInfo info,
                                           std::vector<std::string> suppressedRoles) {
  if (stopped_) return api::failedPrecondition("the scheduler driver is stopped");
  if (started_) return api::failedPrecondition("already subscribed");
  auto master = parseMasterAddress(options_.master);
  if (!master) return master.status();
  configured_ = *master;
  master_ = *master;
  if (info.has_id() && !info.id().value().empty()) frameworkId_ = info.id();
  info_ = std::move(info);
  suppressedRoles_ = std::move(suppressedRoles);
  started_ = true;
  backoff_ = options_.minBackoff;
  connect();
  return api::Status::ok();
}

void HttpSchedulerDriver::connect() {
  if (stopped_ || ended_) return;
  reconnect_.reset();
  uint64_t generation = ++generation_;
  streamStatus_ = 0;
  streamId_.clear();
  streamLocation_.clear();
  streamBody_.clear();
  decoder_.emplace();
  ++attempts_;

  Call call;
  call.set_type(Call::SUBSCRIBE);
  if (frameworkId_) {
    *call.mutable_framework_id() = *frameworkId_;
    *info_.mutable_id() = *frameworkId_;
  }
  *call.mutable_subscribe()->mutable_framework_info() = info_;
  for (const auto& role : suppressedRoles_) call.mutable_subscribe()->add_suppressed_roles(role);

  net::StreamRequest request;
  request.host = master_.host;
  request.port = master_.port;
  request.method = "POST";
  request.target = std::string(kPath);
  request.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
  if (!options_.authorization.empty()) {
    request.headers.emplace_back("Authorization", options_.authorization);
  }
  request.body = net::messageToV1Json(call);
  request.headTimeout = options_.callTimeout;

  log()->debug("subscribing to master {} (attempt {})", master_.toString(), attempts_);
  stream_ = std::make_unique<net::HttpStreamClient>(runtime_, executor_);
  stream_->start(
      std::move(request),
      net::StreamHandlers{[this, generation](int status, auto headers) {
                            onStreamHead(generation, status, headers);
                          },
                          [this, generation](std::string data) { onStreamData(generation, data); },
                          [this, generation](api::Status status) {
                            onStreamClosed(generation, std::move(status));
                          }});
}

void HttpSchedulerDriver::onStreamHead(
    uint64_t generation, int status,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  if (generation != generation_ || stopped_) return;
  streamStatus_ = status;
  if (status == 200) {
    streamId_ = headerValue(headers, "Mesos-Stream-Id");
    // Until SUBSCRIBED names the interval, the stream must still show signs of life.
    armWatchdog();
  } else if (status == 307) {
    streamLocation_ = headerValue(headers, "Location");
  }
}

void HttpSchedulerDriver::onStreamData(uint64_t generation, const std::string& data) {
  if (generation != generation_ || stopped_) return;
  if (streamStatus_ != 200) {
    if (streamBody_.size() < kMaxErrorBody) streamBody_ += data;
    return;
  }
  std::deque<std::string> records;
  api::Status fed = decoder_->feed(data, records);
  for (auto& record : records) {
    handleEvent(record);
    // A callback may have stopped the driver, torn the framework down or dropped the stream.
    if (generation != generation_ || stopped_) return;
  }
  if (!fed) {
    dropStream(fmt::format("malformed event stream from master {}: {}", master_.toString(),
                           fed.message()));
  }
}

void HttpSchedulerDriver::onStreamClosed(uint64_t generation, api::Status status) {
  if (generation != generation_ || stopped_) return;
  if (streamStatus_ == 307) {
    auto location = parseLocation(streamLocation_);
    if (!location) {
      dropStream(fmt::format("master {} redirected to a bad location: {}", master_.toString(),
                             location.status().message()));
      return;
    }
    if (++redirects_ > options_.maxRedirects) {
      dropStream(fmt::format("too many redirects (last from {} to {})", master_.toString(),
                             location->toString()));
      return;
    }
    log()->info("master {} redirected the subscription to {}", master_.toString(),
                location->toString());
    master_ = *location;
    stream_.reset();
    scheduleReconnect(true);
    return;
  }
  if (streamStatus_ >= 400 && streamStatus_ < 500) {
    // The master refused the subscription itself (a bad FrameworkInfo, a removed framework):
    // trying again would be refused again.
    std::string message = fmt::format("master {} refused the subscription ({}): {}",
                                      master_.toString(), streamStatus_, errorMessage(streamBody_));
    lastError_ = message;
    ended_ = true;
    bool was = subscribed_;
    subscribed_ = false;
    stream_.reset();
    if (was) scheduler_.disconnected();
    if (!stopped_) scheduler_.error(message);
    return;
  }
  if (streamStatus_ != 0 && streamStatus_ != 200) {
    dropStream(fmt::format("master {} answered the subscription with {}: {}", master_.toString(),
                           streamStatus_, errorMessage(streamBody_)));
    return;
  }
  if (!status) {
    dropStream(status.message());
  } else {
    dropStream(fmt::format("master {} closed the event stream", master_.toString()));
  }
}

void HttpSchedulerDriver::dropStream(std::string reason) {
  ++generation_;  // whatever the old exchange still reports is stale now
  if (stream_) stream_->cancel();
  stream_.reset();
  if (watchdog_) watchdog_->cancel();
  watchdog_.reset();
  bool was = subscribed_;
  subscribed_ = false;
  streamId_.clear();
  lastError_ = std::move(reason);
  if (stopped_ || ended_) return;
  if (was) {
    log()->warn("{}", lastError_);
  } else {
    log()->debug("{}", lastError_);
  }
  if (!was) {
    // A failed attempt: the leader may have moved; start over from the configured master, or
    // from whoever leads now.
    master_ = configured_;
    if (options_.resolveMaster) {
      if (auto leader = options_.resolveMaster()) {
        if (auto parsed = parseMasterAddress(*leader)) master_ = *parsed;
      }
    }
    redirects_ = 0;
  }
  if (was) {
    scheduler_.disconnected();
    if (stopped_ || ended_) return;
  }
  scheduleReconnect(false);
}

void HttpSchedulerDriver::scheduleReconnect(bool immediately) {
  if (stopped_ || ended_) return;
  if (reconnect_) reconnect_->cancel();
  auto delay = immediately ? std::chrono::milliseconds(0) : backoff_;
  if (!immediately) backoff_ = std::min(backoff_ * 2, options_.maxBackoff);
  reconnect_ = executor_.schedule(delay, [this] { connect(); });
}

void HttpSchedulerDriver::armWatchdog() {
  if (watchdog_) watchdog_->cancel();
  auto limit = heartbeat_ * options_.missedHeartbeats;
  uint64_t generation = generation_;
  watchdog_ = executor_.schedule(limit, [this, generation, limit] {
    if (generation != generation_ || stopped_) return;
    dropStream(fmt::format("no event from master {} for {}ms (missed heartbeats)",
                           master_.toString(),
                           std::chrono::duration_cast<std::chrono::milliseconds>(limit).count()));
  });
}

void HttpSchedulerDriver::handleEvent(const std::string& record) {
  auto event = net::parseV1Json<Event>(record);
  if (!event) {
    log()->warn("ignoring an event master {} sent that does not parse: {}", master_.toString(),
                event.status().message());
    return;
  }
  armWatchdog();
  switch (event->type()) {
    case Event::SUBSCRIBED: {
      const auto& subscribed = event->subscribed();
      frameworkId_ = subscribed.framework_id();
      *info_.mutable_id() = subscribed.framework_id();
      if (subscribed.heartbeat_interval_seconds() > 0) {
        heartbeat_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::duration<double>(subscribed.heartbeat_interval_seconds()));
      }
      subscribed_ = true;
      backoff_ = options_.minBackoff;
      redirects_ = 0;
      lastError_.clear();
      armWatchdog();
      log()->info("subscribed to master {} as framework '{}'", master_.toString(),
                  frameworkId_->value());
      scheduler_.subscribed(*frameworkId_, heartbeat_, subscribed.master_info());
      break;
    }
    case Event::OFFERS: {
      std::vector<v1::Offer> offers(event->offers().offers().begin(),
                                    event->offers().offers().end());
      scheduler_.offers(std::move(offers));
      break;
    }
    case Event::RESCIND:
      scheduler_.rescind(event->rescind().offer_id());
      break;
    case Event::UPDATE:
      scheduler_.update(event->update().status());
      break;
    case Event::MESSAGE:
      scheduler_.message(event->message().agent_id(), event->message().executor_id(),
                         event->message().data());
      break;
    case Event::FAILURE: {
      const auto& failure = event->failure();
      std::optional<v1::ExecutorID> executorId;
      if (failure.has_executor_id()) executorId = failure.executor_id();
      std::optional<int> status;
      if (failure.has_status()) status = failure.status();
      scheduler_.failure(failure.agent_id(), executorId, status);
      break;
    }
    case Event::ERROR:
      // The master removed the framework: re-subscribing would be refused.
      ended_ = true;
      scheduler_.error(event->error().message());
      break;
    case Event::HEARTBEAT:
      break;
    default:
      log()->debug("ignoring event of type {}", Event::Type_Name(event->type()));
      break;
  }
}

void HttpSchedulerDriver::stop() {
  if (stopped_) return;
  stopped_ = true;
  *alive_ = false;
  ++generation_;
  if (stream_) stream_->cancel();
  if (watchdog_) watchdog_->cancel();
  if (reconnect_) reconnect_->cancel();
  subscribed_ = false;
  for (Lane* lane : {&calls_, &acknowledgements_}) {
    lane->queued.clear();
    lane->flying.clear();  // cancels each call's client
  }
}

// --- Calls ---------------------------------------------------------------------------------

void HttpSchedulerDriver::complete(api::CallCallback done, api::Status status) {
  if (!done) return;
  // Never re-entrant: the caller hears back on a later turn of its executor.
  // The token, not `this`, decides: the driver may be gone by the time this runs.
  executor_.post([alive = alive_, done = std::move(done), status = std::move(status)] {
    if (*alive) done(status);
  });
}

void HttpSchedulerDriver::send(Call call, api::CallCallback done) {
  if (stopped_) return complete(std::move(done), api::failedPrecondition("the driver is stopped"));
  if (!subscribed_ || !frameworkId_) {
    return complete(std::move(done), api::failedPrecondition("not subscribed to a master (call {})",
                                                             Call::Type_Name(call.type())));
  }
  *call.mutable_framework_id() = *frameworkId_;
  Lane& lane = call.type() == Call::ACKNOWLEDGE ? acknowledgements_ : calls_;
  lane.queued.push_back(PendingCall{std::move(call), std::move(done), 0});
  pump(lane);
}

void HttpSchedulerDriver::pump(Lane& lane) {
  while (!stopped_ && lane.flying.size() < lane.width && !lane.queued.empty()) {
    lane.flying.push_back(Flight{std::move(lane.queued.front()), nullptr, 0, {}, {}});
    lane.queued.pop_front();
    auto flight = std::prev(lane.flying.end());
    net::StreamRequest request;
    request.host = master_.host;
    request.port = master_.port;
    request.method = "POST";
    request.target = std::string(kPath);
    request.headers = {{"Content-Type", "application/json"},
                       {"Accept", "application/json"},
                       {"Mesos-Stream-Id", streamId_}};
    if (!options_.authorization.empty()) {
      request.headers.emplace_back("Authorization", options_.authorization);
    }
    request.body = net::messageToV1Json(flight->pending.call);
    request.headTimeout = options_.callTimeout;
    flight->client = std::make_unique<net::HttpStreamClient>(runtime_, executor_);
    // The handlers run on the executor while the flight exists: destroying it (stop(), or its
    // end) cancels its client first.
    Flight* self = &*flight;
    flight->client->start(std::move(request),
                          net::StreamHandlers{[self](int status, auto headers) {
                                                self->status = status;
                                                self->location = headerValue(headers, "Location");
                                              },
                                              [self](std::string data) {
                                                if (self->body.size() < kMaxErrorBody) {
                                                  self->body += data;
                                                }
                                              },
                                              [this, &lane, flight](api::Status status) {
                                                finishCall(lane, flight, std::move(status));
                                              }});
  }
}

void HttpSchedulerDriver::finishCall(Lane& lane, std::list<Flight>::iterator flight,
                                     api::Status transport) {
  if (stopped_) return;
  PendingCall pending = std::move(flight->pending);
  const int status = flight->status;
  const std::string location = std::move(flight->location);
  const std::string body = std::move(flight->body);
  lane.flying.erase(flight);  // its client is done
  std::string type = Call::Type_Name(pending.call.type());
  api::Status result;
  if (status == 307 && pending.redirects < options_.maxRedirects) {
    auto target = parseLocation(location);
    if (target) {
      log()->info("master {} redirected {} to {}", master_.toString(), type, target->toString());
      master_ = *target;
      ++pending.redirects;
      lane.queued.push_front(std::move(pending));
      return pump(lane);
    }
    result = api::unavailable("master {} redirected {} to a bad location: {}", master_.toString(),
                              type, target.status().message());
  } else if (!transport && status == 0) {
    result = transport.withContext("call {}", type);
  } else if (status == 202 || status == 200) {
    result = api::Status::ok();
  } else if (status >= 400 && status < 500) {
    result = api::invalidArgument("master {} refused {} ({}): {}", master_.toString(), type, status,
                                  errorMessage(body));
  } else {
    result = api::unavailable("master {} answered {} with {}: {}", master_.toString(), type, status,
                              errorMessage(body));
  }
  // Acknowledgements go in a lane of their own, so one can reach the master after this
  // framework's TEARDOWN: its refusal then is expected, not a warning.
  if (!result && ended_ && pending.call.type() == Call::ACKNOWLEDGE) {
    log()->info("{} (after TEARDOWN)", result.message());
  } else if (!result) {
    log()->warn("{}", result.message());
  }
  if (pending.call.type() == Call::TEARDOWN) {
    // Torn down (or as good as: the framework is going away either way).
    ended_ = true;
    ++generation_;
    if (stream_) stream_->cancel();
    stream_.reset();
    if (watchdog_) watchdog_->cancel();
    subscribed_ = false;
  }
  complete(std::move(pending.done), std::move(result));
  pump(lane);
}

void HttpSchedulerDriver::accept(std::vector<v1::OfferID> offerIds,
                                 std::vector<v1::Offer::Operation> operations,
                                 std::optional<v1::Filters> filters, api::CallCallback done) {
  Call call;
  call.set_type(Call::ACCEPT);
  for (auto& id : offerIds) *call.mutable_accept()->add_offer_ids() = std::move(id);
  for (auto& op : operations) *call.mutable_accept()->add_operations() = std::move(op);
  if (filters) *call.mutable_accept()->mutable_filters() = *filters;
  send(std::move(call), std::move(done));
}

void HttpSchedulerDriver::decline(std::vector<v1::OfferID> offerIds,
                                  std::optional<v1::Filters> filters, api::CallCallback done) {
  Call call;
  call.set_type(Call::DECLINE);
  for (auto& id : offerIds) *call.mutable_decline()->add_offer_ids() = std::move(id);
  if (filters) *call.mutable_decline()->mutable_filters() = *filters;
  send(std::move(call), std::move(done));
}

void HttpSchedulerDriver::revive(std::vector<std::string> roles, api::CallCallback done) {
  Call call;
  call.set_type(Call::REVIVE);
  for (auto& role : roles) call.mutable_revive()->add_roles(role);
  send(std::move(call), std::move(done));
}

void HttpSchedulerDriver::suppress(std::vector<std::string> roles, api::CallCallback done) {
  Call call;
  call.set_type(Call::SUPPRESS);
  for (auto& role : roles) call.mutable_suppress()->add_roles(role);
  send(std::move(call), std::move(done));
}

void HttpSchedulerDriver::kill(const v1::TaskID& taskId, const std::optional<v1::AgentID>& agentId,
                               api::CallCallback done) {
  Call call;
  call.set_type(Call::KILL);
  *call.mutable_kill()->mutable_task_id() = taskId;
  if (agentId) *call.mutable_kill()->mutable_agent_id() = *agentId;
  send(std::move(call), std::move(done));
}

void HttpSchedulerDriver::acknowledge(const v1::AgentID& agentId, const v1::TaskID& taskId,
                                      const std::string& uuid, api::CallCallback done) {
  Call call;
  call.set_type(Call::ACKNOWLEDGE);
  *call.mutable_acknowledge()->mutable_agent_id() = agentId;
  *call.mutable_acknowledge()->mutable_task_id() = taskId;
  call.mutable_acknowledge()->set_uuid(uuid);
  send(std::move(call), std::move(done));
}

void HttpSchedulerDriver::reconcile(std::vector<Call::Reconcile::Task> tasks,
                                    api::CallCallback done) {
  Call call;
  call.set_type(Call::RECONCILE);
  for (auto& task : tasks) *call.mutable_reconcile()->add_tasks() = std::move(task);
  send(std::move(call), std::move(done));
}

void HttpSchedulerDriver::message(const v1::AgentID& agentId, const v1::ExecutorID& executorId,
                                  const std::string& data, api::CallCallback done) {
  Call call;
  call.set_type(Call::MESSAGE);
  *call.mutable_message()->mutable_agent_id() = agentId;
  *call.mutable_message()->mutable_executor_id() = executorId;
  call.mutable_message()->set_data(data);
  send(std::move(call), std::move(done));
}

void HttpSchedulerDriver::teardown(api::CallCallback done) {
  Call call;
  call.set_type(Call::TEARDOWN);
  bool subscribed = subscribed_;
  send(std::move(call), std::move(done));
  // The framework is going away on purpose: the master ends the event stream when it handles
  // TEARDOWN, often before its 202 arrives. That end is expected, so it is neither a warning
  // nor a disconnection, and nothing re-subscribes.
  if (subscribed && !stopped_) ended_ = true;
}

}  // namespace tessera::kernel::scheduler
