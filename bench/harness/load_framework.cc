#include "bench/harness/load_framework.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "kernel/net/http_client.h"
#include "kernel/net/http_stream_client.h"
#include "kernel/net/recordio.h"
#include "kernel/net/v1_json.h"
#include "tessera/api/task_state.h"
#include "tessera/v1/scheduler.pb.h"

namespace tessera::bench {

namespace net = kernel::net;
using Clock = std::chrono::steady_clock;

namespace {

enum class CallKind { kAccept, kDecline, kAcknowledge, kOther };

struct PendingCall {
  CallKind kind = CallKind::kOther;
  std::string body;
  std::vector<int> tasks;  // an ACCEPT's task indexes: their clock starts when it is sent
};

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// One blocking keep-alive HTTP/1.1 connection for calls (a thread of its own uses it). Plain
// connections are raw sockets (what bench/cluster's numbers were measured with); TLS ones are
// the kernel's net::HttpClient.
class CallConnection {
 public:
  CallConnection(std::string host, uint16_t port, std::shared_ptr<net::TlsContext> tls,
                 std::string authorization)
      : host_(std::move(host)), port_(port), authorization_(std::move(authorization)) {
    if (tls) client_ = std::make_unique<net::HttpClient>(std::move(tls));
  }
  ~CallConnection() { disconnect(); }

  /// POSTs `body`; the status code, or nullopt when the connection failed.
  std::optional<int> post(const std::string& streamId, const std::string& body) {
    if (client_) return postTls(streamId, body);
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (fd_ < 0 && !connect()) return std::nullopt;
      std::string request = fmt::format(
          "POST /api/v1/scheduler HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\n"
          "Accept: application/json\r\nMesos-Stream-Id: {}\r\nContent-Length: {}\r\n",
          host_, port_, streamId, body.size());
      if (!authorization_.empty()) request += "Authorization: " + authorization_ + "\r\n";
      request += "\r\n";
      request += body;
      if (!sendAll(request)) {
        disconnect();
        continue;  // a keep-alive connection the server closed meanwhile: once more
      }
      auto status = readResponse();
      if (status) return status;
      disconnect();
    }
    return std::nullopt;
  }

 private:
  std::optional<int> postTls(const std::string& streamId, const std::string& body) {
    net::ClientRequest request{"POST",
                               "/api/v1/scheduler",
                               {{"Content-Type", "application/json"},
                                {"Accept", "application/json"},
                                {"Mesos-Stream-Id", streamId}},
                               body};
    if (!authorization_.empty()) request.headers.emplace_back("Authorization", authorization_);
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!client_->connected() &&
          !client_->connect(host_, port_, std::chrono::milliseconds(10000))) {
        return std::nullopt;
      }
      auto response = client_->request(request, std::chrono::milliseconds(30000));
      if (response) return response->status;
      client_->close();  // a keep-alive connection the server closed meanwhile: once more
    }
    return std::nullopt;
  }

  bool connect() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return false;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port_);
    if (::inet_pton(AF_INET, host_.c_str(), &address.sin_addr) != 1 ||
        ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      disconnect();
      return false;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval timeout{30, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    buffer_.clear();
    return true;
  }

  void disconnect() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool sendAll(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  bool fill() {
    char chunk[16384];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  // Reads one response (Content-Length bodies; anything else ends the connection after it).
  std::optional<int> readResponse() {
    size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return std::nullopt;
    }
    std::string_view head(buffer_.data(), end);
    int status = 0;
    if (head.size() < 12 || std::sscanf(buffer_.c_str() + 9, "%3d", &status) != 1) {
      return std::nullopt;
    }
    std::optional<size_t> length;
    bool close = false;
    size_t lineStart = head.find("\r\n");
    while (lineStart != std::string_view::npos && lineStart < head.size()) {
      size_t lineEnd = head.find("\r\n", lineStart + 2);
      std::string_view line =
          head.substr(lineStart + 2,
                      (lineEnd == std::string_view::npos ? head.size() : lineEnd) - lineStart - 2);
      auto colon = line.find(':');
      if (colon != std::string_view::npos) {
        std::string_view name = line.substr(0, colon), value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        if (equalsIgnoreCase(name, "content-length")) length = std::stoull(std::string(value));
        if (equalsIgnoreCase(name, "connection") && equalsIgnoreCase(value, "close")) close = true;
      }
      lineStart = lineEnd;
    }
    if (!length) close = true;
    const size_t want = end + 4 + length.value_or(0);
    while (buffer_.size() < want) {
      if (!fill()) {
        if (!length) break;  // the body ran to the end of the connection
        return std::nullopt;
      }
    }
    buffer_.erase(0, std::min(want, buffer_.size()));
    if (close) disconnect();
    return status;
  }

  std::string host_;
  uint16_t port_;
  std::string authorization_;                // the Authorization header's value; empty: none
  std::unique_ptr<net::HttpClient> client_;  // TLS only
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace

struct LoadFramework::State : std::enable_shared_from_this<LoadFramework::State> {
  LoadFrameworkOptions options;
  kernel::runtime::Runtime& runtime;
  std::unique_ptr<kernel::runtime::StrandExecutor> strand;
  std::unique_ptr<net::HttpStreamClient> stream;
  std::unique_ptr<net::RecordIoDecoder> decoder = std::make_unique<net::RecordIoDecoder>();
  std::vector<std::thread> callThreads;
  std::unique_ptr<api::TimerHandle> retry;

  // The strand's own (the event stream's) state.
  int nextTask = 0;
  bool suppressed = false;
  mutable std::mutex mutex;                   // guards everything below
  std::vector<Clock::time_point> acceptedAt;  // per task index: when its ACCEPT was sent
  std::vector<char> seenRunning, seenTerminal;
  std::condition_variable wake;
  std::deque<PendingCall> calls;
  std::string streamId;
  bool stopping = false;
  LoadFrameworkStats stats;
  std::optional<Clock::time_point> firstAccept;

  State(kernel::runtime::Runtime& runtime, LoadFrameworkOptions options)
      : options(std::move(options)), runtime(runtime), strand(runtime.makeExecutor()) {}

  // ACCEPTs and DECLINEs go before queued acknowledgements (offers are time-limited and a
  // launch waiting behind thousands of ACKs would measure this queue, not the master).
  void enqueue(CallKind kind, std::string body, std::vector<int> tasks = {}) {
    {
      std::lock_guard lock(mutex);
      if (stopping) return;
      PendingCall call{kind, std::move(body), std::move(tasks)};
      if (kind == CallKind::kAcknowledge) {
        calls.push_back(std::move(call));
      } else {
        auto firstAck = std::find_if(calls.begin(), calls.end(), [](const PendingCall& c) {
          return c.kind == CallKind::kAcknowledge;
        });
        calls.insert(firstAck, std::move(call));
      }
    }
    wake.notify_one();
  }

  // The Authorization header's value: HTTP Basic with the options' principal, or empty.
  std::string authorization() const {
    if (options.principal.empty()) return "";
    return "Basic " + net::base64Encode(options.principal + ":" + options.secret);
  }

  void callLoop() {
    CallConnection connection(options.host, options.port, options.tls, authorization());
    while (true) {
      PendingCall call;
      std::string id;
      {
        std::unique_lock lock(mutex);
        wake.wait(lock, [&] { return stopping || (!calls.empty() && !streamId.empty()); });
        if (stopping) return;
        call = std::move(calls.front());
        calls.pop_front();
        id = streamId;
        const auto now = Clock::now();
        if (!call.tasks.empty() && !firstAccept) firstAccept = now;
        for (int index : call.tasks) acceptedAt[index] = now;
      }
      auto status = connection.post(id, call.body);
      std::lock_guard lock(mutex);
      if (status == 202) {
        if (call.kind == CallKind::kAcknowledge) ++stats.acknowledged;
      } else {
        ++stats.callErrors;
        stats.lastError = status ? fmt::format("a call was answered {}", *status)
                                 : std::string("a call's connection failed");
      }
    }
  }

  std::string callJson(const v1::scheduler::Call& call) {
    return net::messageToV1Json(call, {.includeDefaults = false});
  }

  void subscribe() {
    v1::scheduler::Call call;
    call.set_type(v1::scheduler::Call::SUBSCRIBE);
    auto* info = call.mutable_subscribe()->mutable_framework_info();
    info->set_user("bench");
    info->set_name(options.name);
    info->set_failover_timeout(3600);
    if (!options.principal.empty()) info->set_principal(options.principal);
    {
      std::lock_guard lock(mutex);
      if (!stats.frameworkId.empty()) info->mutable_id()->set_value(stats.frameworkId);
    }
    net::StreamRequest request;
    request.host = options.host;
    request.port = options.port;
    request.target = "/api/v1/scheduler";
    request.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
    if (auto credentials = authorization(); !credentials.empty()) {
      request.headers.emplace_back("Authorization", std::move(credentials));
    }
    request.body = callJson(call);
    std::weak_ptr<State> weak = weak_from_this();
    net::StreamHandlers handlers;
    handlers.onHead = [weak](int status, std::vector<std::pair<std::string, std::string>> headers) {
      auto self = weak.lock();
      if (!self) return;
      std::lock_guard lock(self->mutex);
      if (status != 200) {
        self->stats.lastError = fmt::format("SUBSCRIBE was answered {}", status);
        return;
      }
      for (const auto& [name, value] : headers) {
        if (equalsIgnoreCase(name, "Mesos-Stream-Id")) self->streamId = value;
      }
      self->wake.notify_all();
    };
    handlers.onData = [weak](std::string data) {
      if (auto self = weak.lock()) self->onData(data);
    };
    handlers.onClose = [weak](api::Status status) {
      auto self = weak.lock();
      if (!self) return;
      {
        std::lock_guard lock(self->mutex);
        self->stats.subscribed = false;
        self->streamId.clear();
        if (self->stopping) return;
        self->stats.lastError = "the event stream closed: " + status.toString();
        ++self->stats.resubscriptions;
      }
      // As a scheduler would: subscribe again with the FrameworkID (a master failover, say).
      self->retry = self->strand->schedule(std::chrono::milliseconds(100), [weak] {
        auto again = weak.lock();
        if (!again) return;
        again->decoder = std::make_unique<net::RecordIoDecoder>();
        again->subscribe();
      });
    };
    stream = std::make_unique<net::HttpStreamClient>(runtime, *strand, options.tls);
    stream->start(std::move(request), std::move(handlers));
  }

  void onData(const std::string& data) {
    std::deque<std::string> records;
    if (auto fed = decoder->feed(data, records); !fed) {
      std::lock_guard lock(mutex);
      stats.lastError = "bad RecordIO: " + fed.toString();
      return;
    }
    for (const auto& record : records) {
      auto event = net::parseV1Json<v1::scheduler::Event>(record);
      if (!event) continue;
      onEvent(*event);
    }
  }

  void onEvent(const v1::scheduler::Event& event) {
    switch (event.type()) {
      case v1::scheduler::Event::SUBSCRIBED: {
        std::lock_guard lock(mutex);
        stats.subscribed = true;
        stats.frameworkId = event.subscribed().framework_id().value();
        break;
      }
      case v1::scheduler::Event::OFFERS:
        for (const auto& offer : event.offers().offers()) onOffer(offer);
        break;
      case v1::scheduler::Event::UPDATE:
        onUpdate(event.update().status());
        break;
      default:
        break;
    }
  }

  v1::scheduler::Call newCall(v1::scheduler::Call::Type type) {
    v1::scheduler::Call call;
    call.set_type(type);
    std::lock_guard lock(mutex);
    call.mutable_framework_id()->set_value(stats.frameworkId);
    return call;
  }

  void onOffer(const v1::Offer& offer) {
    {
      std::lock_guard lock(mutex);
      ++stats.offers;
    }
    const v1::Resource* cpus = nullptr;
    const v1::Resource* mem = nullptr;
    for (const auto& resource : offer.resources()) {
      if (resource.name() == "cpus" && !cpus) cpus = &resource;
      if (resource.name() == "mem" && !mem) mem = &resource;
    }
    int fit = 0;
    if (cpus && mem) {
      fit = static_cast<int>(std::min(cpus->scalar().value() / options.taskCpus + 1e-9,
                                      mem->scalar().value() / options.taskMem + 1e-9));
    }
    fit = std::min(fit, options.tasks - nextTask);
    if (fit <= 0) {
      auto call = newCall(v1::scheduler::Call::DECLINE);
      *call.mutable_decline()->add_offer_ids() = offer.id();
      call.mutable_decline()->mutable_filters()->set_refuse_seconds(nextTask >= options.tasks ? 3600
                                                                                              : 1);
      {
        std::lock_guard lock(mutex);
        ++stats.declines;
      }
      enqueue(CallKind::kDecline, callJson(call));
      if (nextTask >= options.tasks && !suppressed) {
        suppressed = true;
        enqueue(CallKind::kOther, callJson(newCall(v1::scheduler::Call::SUPPRESS)));
      }
      return;
    }
    auto call = newCall(v1::scheduler::Call::ACCEPT);
    auto* accept = call.mutable_accept();
    *accept->add_offer_ids() = offer.id();
    accept->mutable_filters()->set_refuse_seconds(1);
    auto* operation = accept->add_operations();
    operation->set_type(v1::Offer::Operation::LAUNCH);
    auto* launch = operation->mutable_launch();
    std::vector<int> indexes;
    for (int i = 0; i < fit; ++i) {
      const int index = nextTask++;
      auto* task = launch->add_task_infos();
      task->set_name("bench");
      task->mutable_task_id()->set_value(fmt::format("t-{}", index));
      *task->mutable_agent_id() = offer.agent_id();
      task->mutable_command()->set_value("true");
      v1::Resource c = *cpus, m = *mem;
      c.mutable_scalar()->set_value(options.taskCpus);
      m.mutable_scalar()->set_value(options.taskMem);
      *task->add_resources() = std::move(c);
      *task->add_resources() = std::move(m);
      indexes.push_back(index);
    }
    {
      std::lock_guard lock(mutex);
      ++stats.accepts;
      stats.launched += static_cast<size_t>(fit);
    }
    enqueue(CallKind::kAccept, callJson(call), std::move(indexes));
  }

  void onUpdate(const v1::TaskStatus& status) {
    const auto now = Clock::now();
    int index = -1;
    const std::string& id = status.task_id().value();
    if (id.rfind("t-", 0) == 0) index = std::atoi(id.c_str() + 2);
    {
      std::lock_guard lock(mutex);
      ++stats.updates;
      if (index >= 0 && index < options.tasks) {
        if (status.state() == v1::TASK_RUNNING && !seenRunning[index]) {
          seenRunning[index] = 1;
          ++stats.running;
          stats.acceptToRunning.push_back(
              std::chrono::duration<double>(now - acceptedAt[index]).count());
          if (stats.running == static_cast<size_t>(options.tasks) && firstAccept) {
            stats.allRunningAfter = std::chrono::duration<double>(now - *firstAccept).count();
          }
        }
        if (api::isTerminal(status.state()) && !seenTerminal[index]) {
          seenTerminal[index] = 1;
          ++stats.terminal;
        }
      }
    }
    if (status.uuid().empty()) return;
    std::string body = fmt::format(
        R"({{"framework_id":{{"value":"{}"}},"type":"ACKNOWLEDGE","acknowledge":{{"agent_id":{{"value":"{}"}},"task_id":{{"value":"{}"}},"uuid":"{}"}}}})",
        stats.frameworkId, status.agent_id().value(), id, net::base64Encode(status.uuid()));
    enqueue(CallKind::kAcknowledge, std::move(body));
  }
};

api::Result<std::unique_ptr<LoadFramework>> LoadFramework::start(kernel::runtime::Runtime& runtime,
                                                                 LoadFrameworkOptions options) {
  if (options.tasks < 0 || options.connections < 1 || options.taskCpus <= 0 ||
      options.taskMem <= 0) {
    return api::invalidArgument("bad load framework options");
  }
  auto framework = std::unique_ptr<LoadFramework>(new LoadFramework());
  auto state = framework->state_ = std::make_shared<State>(runtime, std::move(options));
  state->acceptedAt.resize(static_cast<size_t>(state->options.tasks));
  state->seenRunning.resize(static_cast<size_t>(state->options.tasks));
  state->seenTerminal.resize(static_cast<size_t>(state->options.tasks));
  state->stats.acceptToRunning.reserve(static_cast<size_t>(state->options.tasks));
  for (int i = 0; i < state->options.connections; ++i) {
    state->callThreads.emplace_back([state] { state->callLoop(); });
  }
  state->strand->call([&] {
    state->subscribe();
    return 0;
  });
  return framework;
}

LoadFramework::~LoadFramework() { stop(); }

void LoadFramework::stop() {
  if (!state_) return;
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
    state_->calls.clear();
  }
  state_->wake.notify_all();
  for (auto& thread : state_->callThreads) thread.join();
  state_->callThreads.clear();
  state_->strand->call([&] {
    if (state_->retry) state_->retry->cancel();
    if (state_->stream) state_->stream->cancel();
    state_->stream.reset();
    return 0;
  });
  state_.reset();
}

LoadFrameworkStats LoadFramework::stats() const {
  std::lock_guard lock(state_->mutex);
  LoadFrameworkStats copy = state_->stats;
  copy.streamId = state_->streamId;
  return copy;
}

}  // namespace tessera::bench
