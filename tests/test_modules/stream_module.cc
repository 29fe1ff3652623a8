// A module (kind "anonymous") that serves a Server-Sent Events stream, for the kernel's tests of
// streaming routes through a real ModuleHost.
//
// Parameters: keep_alive_ms (the streams' keep-alive interval, default 15000).
// Routes:
//   GET  /test/stream/events     an event stream; first event "attached" with the stream's number
//   POST /test/stream/broadcast  sends the body as a "message" event to every open stream
//   GET  /test/stream/stats      {"open": N, "closed": M}
// It keeps its streams in a map and lets each onClosed callback hold its own writer (the way
// module code naturally erases an entry), and, unlike a well-behaved module, does not end them in
// stop(): the test sees the kernel end what a stopping module leaves open.
#include <boost/dll/alias.hpp>
#include <map>

#include "tessera/api/http.h"
#include "tessera/api/module.h"

namespace {

using tessera::api::Context;
using tessera::api::HttpRequest;
using tessera::api::HttpResponder;
using tessera::api::HttpResponse;
using tessera::api::HttpStreamWriter;
using tessera::api::Module;
using tessera::api::Parameters;
using tessera::api::Result;
using tessera::api::ServerSentEvent;

class StreamModule final : public Module {
 public:
  explicit StreamModule(std::chrono::milliseconds keepAlive) : keepAlive_(keepAlive) {}

  static Result<std::unique_ptr<Module>> create(const Parameters& parameters, Context& context) {
    auto keepAlive =
        std::chrono::milliseconds(std::stoll(parameters.getOr("keep_alive_ms", "15000")));
    auto module = std::make_unique<StreamModule>(keepAlive);
    StreamModule* self = module.get();
    auto& http = context.http();
    if (auto status = http.addStreamingRoute(
            "GET", "/test/stream/events",
            [self](const HttpRequest&, std::shared_ptr<HttpStreamWriter> stream) {
              self->attach(std::move(stream));
            });
        !status) {
      return status;
    }
    if (auto status = http.addRoute(
            "POST", "/test/stream/broadcast",
            [self](const HttpRequest& request, HttpResponder respond) {
              respond(HttpResponse::json(
                  200, fmt::format(R"({{"streams":{}}})", self->broadcast(request.body))));
            });
        !status) {
      return status;
    }
    if (auto status = http.addRoute("GET", "/test/stream/stats",
                                    [self](const HttpRequest&, HttpResponder respond) {
                                      respond(HttpResponse::json(
                                          200, fmt::format(R"({{"open":{},"closed":{}}})",
                                                           self->streams_.size(), self->closed_)));
                                    });
        !status) {
      return status;
    }
    return std::unique_ptr<Module>(std::move(module));
  }

  void stop() override {}  // leaves its streams open on purpose (see the top of the file)

 private:
  void attach(std::shared_ptr<HttpStreamWriter> stream) {
    int number = ++next_;
    stream->startEvents(keepAlive_);
    ServerSentEvent attached;
    attached.event = "attached";
    attached.id = std::to_string(number);
    attached.data = fmt::format(R"({{"stream":{}}})", number);
    stream->writeEvent(attached);
    stream->onClosed([this, number, stream] {
      streams_.erase(number);
      ++closed_;
    });
    streams_.emplace(number, std::move(stream));
  }

  size_t broadcast(const std::string& body) {
    ServerSentEvent message;
    message.event = "message";
    message.data = body;
    size_t sent = 0;
    for (auto& [number, stream] : streams_) sent += stream->writeEvent(message) ? 1 : 0;
    return sent;
  }

  std::chrono::milliseconds keepAlive_;
  int next_ = 0;
  int closed_ = 0;
  std::map<int, std::shared_ptr<HttpStreamWriter>> streams_;
};

Result<std::unique_ptr<Module>> create(const Parameters& parameters, Context& context) {
  return StreamModule::create(parameters, context);
}

}  // namespace

const tessera::api::ModuleDescriptor kDescriptor{tessera::api::kApiVersion,
                                                 TESSERA_BUILD_FINGERPRINT,
                                                 "anonymous",
                                                 "org_tessera_test_stream",
                                                 "a module that streams, for the kernel's tests",
                                                 "Tessera tests",
                                                 &create};
BOOST_DLL_ALIAS(kDescriptor, tessera_module_descriptor)
