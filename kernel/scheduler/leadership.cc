#include "kernel/scheduler/leadership.h"

#include <fmt/format.h>

#include <cctype>
#include <utility>

#include "kernel/runtime/logging.h"

namespace tessera::kernel::scheduler {

std::optional<std::string> Leadership::leaderAddress() const {
  std::lock_guard lock(mutex_);
  if (leading_.load() && !advertised_.empty()) return advertised_;
  return leader_;
}

std::string Leadership::advertisedAddress() const {
  std::lock_guard lock(mutex_);
  return advertised_;
}

void Leadership::setLeader(std::optional<std::string> address) {
  std::lock_guard lock(mutex_);
  leader_ = std::move(address);
}

void Leadership::setAdvertisedAddress(std::string address) {
  std::lock_guard lock(mutex_);
  advertised_ = std::move(address);
}

void Leadership::onAbdicate(std::function<void()> abdicate) {
  std::lock_guard lock(mutex_);
  abdicate_ = std::move(abdicate);
}

void Leadership::abdicate() {
  std::function<void()> abdicate;
  {
    std::lock_guard lock(mutex_);
    if (!leading_.load() || abdicated_ || !abdicate_) return;
    abdicated_ = true;
    abdicate = abdicate_;
  }
  abdicate();
}

std::string encodePath(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

// The forwards in flight, by id; touched only on the module's executor.
struct ForwardingRouter::Forwards {
  std::map<uint64_t, std::unique_ptr<net::HttpStreamClient>> clients;
  uint64_t next = 0;
};

namespace {

std::shared_ptr<spdlog::logger> log() { return runtime::logger("framework"); }

bool hopByHop(std::string_view name) {
  auto is = [name](std::string_view other) {
    if (name.size() != other.size()) return false;
    for (size_t i = 0; i < name.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(name[i])) != other[i]) return false;
    }
    return true;
  };
  return is("host") || is("content-length") || is("transfer-encoding") || is("connection") ||
         is("keep-alive") || is("content-type") || is("date") || is("server");
}

// Where a follower sends `request`: the leader's address and the request to send it, or the
// answer to give instead (503: no leader, or the request came from a follower already).
struct ToLeader {
  std::optional<api::HttpResponse> refusal;
  std::string leader;
  net::StreamRequest request;
};

ToLeader toLeader(Leadership& leadership, const api::HttpRequest& request) {
  ToLeader to;
  if (request.header(kForwardedByHeader)) {
    // A follower sent it here taking this host for the leader: no second hop.
    to.refusal = api::HttpResponse::error(503, "this host does not lead; leadership is changing");
    return to;
  }
  auto leader = leadership.leaderAddress();
  if (!leader) {
    to.refusal = api::HttpResponse::error(503, "no leader is known; try again shortly");
    return to;
  }
  const size_t colon = leader->rfind(':');
  int port = colon == std::string::npos ? 0 : std::atoi(leader->c_str() + colon + 1);
  if (port <= 0 || port > 65535) {
    to.refusal = api::HttpResponse::error(
        503, fmt::format("the leader's address '{}' has no port; cannot forward", *leader));
    return to;
  }
  net::StreamRequest& out = to.request;
  out.host = leader->substr(0, colon);
  if (out.host.size() > 2 && out.host.front() == '[')
    out.host = out.host.substr(1, out.host.size() - 2);
  out.port = static_cast<uint16_t>(port);
  out.method = request.method;
  out.target = encodePath(request.path) + (request.query.empty() ? "" : "?" + request.query);
  for (const auto& [name, value] : request.headers) {
    if (!hopByHop(name) && name != "x-forwarded-for") out.headers.emplace_back(name, value);
  }
  if (auto type = request.header("content-type")) out.headers.emplace_back("Content-Type", *type);
  out.headers.emplace_back("X-Forwarded-For",
                           request.remoteAddress.substr(0, request.remoteAddress.rfind(':')));
  out.headers.emplace_back(std::string(kForwardedByHeader), leadership.advertisedAddress());
  out.body = request.body;
  to.leader = std::move(*leader);
  return to;
}

// The leader's headers as the follower answers with them: hop-by-hop ones dropped, Content-Type
// set apart, kLeaderHeader added.
std::string relayedHeaders(std::vector<std::pair<std::string, std::string>>& headers,
                           const std::string& leader) {
  std::string contentType;
  std::vector<std::pair<std::string, std::string>> kept;
  for (auto& [name, value] : headers) {
    std::string lower = name;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == "content-type") {
      contentType = value;
    } else if (!hopByHop(lower) && lower != "x-tessera-leader") {
      kept.emplace_back(std::move(name), std::move(value));
    }
  }
  kept.emplace_back(std::string(kLeaderHeader), leader);
  headers = std::move(kept);
  return contentType;
}

// `response` as a whole stream: start, the body, end.
void answerStream(api::HttpStreamWriter& stream, api::HttpResponse response) {
  stream.start(response.status, std::move(response.contentType), std::move(response.headers));
  stream.write(std::move(response.body));
  stream.end();
}

}  // namespace

ForwardingRouter::ForwardingRouter(std::unique_ptr<api::HttpRouter> inner,
                                   std::shared_ptr<Leadership> leadership,
                                   runtime::Runtime& runtime, api::Executor& executor)
    : inner_(std::move(inner)),
      leadership_(std::move(leadership)),
      runtime_(runtime),
      executor_(executor),
      forwards_(std::make_shared<Forwards>()) {}

ForwardingRouter::~ForwardingRouter() = default;

api::Status ForwardingRouter::addRoute(std::string_view method, std::string_view path,
                                       api::HttpHandler handler, bool prefix) {
  return inner_->addRoute(
      method, path,
      [leadership = leadership_, forwards = forwards_, runtime = &runtime_, executor = &executor_,
       handler = std::move(handler)](const api::HttpRequest& request, api::HttpResponder respond) {
        if (leadership->leading()) return handler(request, std::move(respond));
        forward(*leadership, forwards, *runtime, *executor, request, std::move(respond));
      },
      prefix);
}

api::Status ForwardingRouter::addStreamingRoute(std::string_view method, std::string_view path,
                                                api::HttpStreamingHandler handler, bool prefix) {
  return inner_->addStreamingRoute(
      method, path,
      [leadership = leadership_, forwards = forwards_, runtime = &runtime_, executor = &executor_,
       handler = std::move(handler)](const api::HttpRequest& request,
                                     std::shared_ptr<api::HttpStreamWriter> stream) {
        if (leadership->leading()) return handler(request, std::move(stream));
        relay(*leadership, forwards, *runtime, *executor, request, std::move(stream));
      },
      prefix);
}

size_t ForwardingRouter::forwardsForTest() const { return forwards_->clients.size(); }

void ForwardingRouter::forward(Leadership& leadership, const std::shared_ptr<Forwards>& forwards,
                               runtime::Runtime& runtime, api::Executor& executor,
                               const api::HttpRequest& request, api::HttpResponder respond) {
  ToLeader to = toLeader(leadership, request);
  if (to.refusal) return respond(std::move(*to.refusal));

  struct Answer {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
  };
  auto answer = std::make_shared<Answer>();
  const uint64_t id = forwards->next++;
  std::weak_ptr<Forwards> weak = forwards;
  auto client = std::make_unique<net::HttpStreamClient>(runtime, executor);
  auto* started = client.get();
  forwards->clients.emplace(id, std::move(client));
  started->start(
      std::move(to.request),
      {[answer](int status, std::vector<std::pair<std::string, std::string>> headers) {
         answer->status = status;
         answer->headers = std::move(headers);
       },
       [answer](std::string data) { answer->body += data; },
       [answer, respond, weak, id, leader = std::move(to.leader),
        executor = &executor](api::Status status) {
         if (answer->status == 0 || (!status && answer->body.empty())) {
           respond(api::HttpResponse::error(
               502, fmt::format("cannot reach the leader at {}: {}", leader, status.message())));
         } else {
           api::HttpResponse response;
           response.status = answer->status;
           response.contentType = relayedHeaders(answer->headers, leader);
           response.headers = std::move(answer->headers);
           response.body = std::move(answer->body);
           respond(std::move(response));
         }
         // The client is done; drop it outside its own handler.
         executor->post([weak, id] {
           if (auto forwards = weak.lock()) forwards->clients.erase(id);
         });
       }});
}

void ForwardingRouter::relay(Leadership& leadership, const std::shared_ptr<Forwards>& forwards,
                             runtime::Runtime& runtime, api::Executor& executor,
                             const api::HttpRequest& request,
                             std::shared_ptr<api::HttpStreamWriter> stream) {
  ToLeader to = toLeader(leadership, request);
  if (to.refusal) return answerStream(*stream, std::move(*to.refusal));

  const uint64_t id = forwards->next++;
  std::weak_ptr<Forwards> weak = forwards;
  // Drops the connection to the leader (closing it), never inside one of its own handlers.
  auto drop = [weak, id, executor = &executor] {
    executor->post([weak, id] {
      if (auto forwards = weak.lock()) forwards->clients.erase(id);
    });
  };
  // The client went away, passed the follower's queue bound, or the stream was ended: the
  // leader's side goes too. (Runs on the module's executor; holds no writer.)
  stream->onClosed(drop);

  auto client = std::make_unique<net::HttpStreamClient>(runtime, executor);
  auto* started = client.get();
  forwards->clients.emplace(id, std::move(client));
  auto headed = std::make_shared<bool>(false);
  started->start(
      std::move(to.request),
      {[stream, headed, leader = to.leader](
           int status, std::vector<std::pair<std::string, std::string>> headers) {
         *headed = true;
         std::string contentType = relayedHeaders(headers, leader);
         stream->start(status, std::move(contentType), std::move(headers));
       },
       // A write past the follower's bound closes the client's stream; onClosed then drops the
       // leader's connection, and nothing more is written.
       [stream](std::string data) { stream->write(std::move(data)); },
       [stream, headed, leader = to.leader, drop](api::Status status) {
         if (!*headed) {
           answerStream(*stream, api::HttpResponse::error(
                                     502, fmt::format("cannot reach the leader at {}: {}", leader,
                                                      status.message())));
         } else {
           if (!status)
             log()->info("relayed stream from {} cut short: {}", leader, status.message());
           stream->end();
         }
         drop();
       }});
}

}  // namespace tessera::kernel::scheduler
