// The pieces together, the way the master serves a scheduler's SUBSCRIBE: parse the v1 JSON
// call, answer 200 with a Mesos-Stream-Id and a RecordIO body of v1 JSON events; the client
// side decodes the chunks incrementally.

#include <gtest/gtest.h>

#include <deque>
#include <memory>

#include "kernel/net/http_client.h"
#include "kernel/net/http_server.h"
#include "kernel/net/recordio.h"
#include "kernel/net/v1_json.h"
#include "kernel/runtime/runtime.h"
#include "tessera/v1/scheduler.pb.h"

namespace tessera::kernel::net {
namespace {

using namespace std::chrono_literals;
using tessera::v1::scheduler::Call;
using tessera::v1::scheduler::Event;

TEST(V1JsonSubscribeStreamTest, SubscribeAnsweredWithRecordIoEvents) {
  runtime::Runtime runtime;
  runtime.start();
  auto executor = runtime.makeExecutor();
  auto router = std::make_shared<Router>();
  ASSERT_TRUE(router
                  ->addStreamRoute(
                      "POST", "/api/v1/scheduler", executor.get(),
                      [](const api::HttpRequest& request, std::shared_ptr<HttpStream> stream) {
                        auto call = parseV1Json<Call>(request.body);
                        if (!call || call->type() != Call::SUBSCRIBE) {
                          stream->start(400, "application/json");
                          stream->write(R"({"message":"expected SUBSCRIBE"})");
                          stream->end();
                          return;
                        }
                        stream->start(200, "application/json", {{"Mesos-Stream-Id", "stream-1"}});
                        Event subscribed;
                        subscribed.set_type(Event::SUBSCRIBED);
                        subscribed.mutable_subscribed()->mutable_framework_id()->set_value(
                            fmt::format("{}-0000", call->subscribe().framework_info().name()));
                        subscribed.mutable_subscribed()->set_heartbeat_interval_seconds(15);
                        stream->write(encodeRecordIo(messageToV1Json(subscribed)));
                        Event heartbeat;
                        heartbeat.set_type(Event::HEARTBEAT);
                        stream->write(encodeRecordIo(messageToV1Json(heartbeat)));
                        stream->end();
                      })
                  .isOk());
  HttpServer server(runtime, router);
  ASSERT_TRUE(server.start().isOk());

  auto response = httpRequest(
      "POST", "127.0.0.1", server.port(), "/api/v1/scheduler",
      {{"Content-Type", "application/json"}, {"Accept", "application/json"}},
      R"({"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"fw"}}})", 10s);
  ASSERT_TRUE(response.isOk()) << response.status().toString();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->header("Mesos-Stream-Id"), "stream-1");

  // Fed in small pieces, as a client would get them off the socket.
  RecordIoDecoder decoder;
  std::deque<std::string> records;
  const std::string& body = response->body;
  for (size_t i = 0; i < body.size(); i += 7) {
    ASSERT_TRUE(decoder.feed(std::string_view(body).substr(i, 7), records).isOk());
  }
  EXPECT_TRUE(decoder.idle());
  ASSERT_EQ(records.size(), 2u);
  auto first = parseV1Json<Event>(records[0]);
  ASSERT_TRUE(first.isOk()) << first.status().toString();
  EXPECT_EQ(first->type(), Event::SUBSCRIBED);
  EXPECT_EQ(first->subscribed().framework_id().value(), "fw-0000");
  EXPECT_EQ(records[1], R"({"type":"HEARTBEAT"})");

  server.stop();
  runtime.stop();
}

}  // namespace
}  // namespace tessera::kernel::net
