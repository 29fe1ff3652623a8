// The scheduler event stream's bound (#20): a scheduler that stops reading is disconnected
// once its queue passes --max_event_stream_queue_size; one that reads is not.

#include <sys/socket.h>

#include <fstream>

#include "tests/master/master_fixture.h"
#include "tests/support/process_memory.h"

namespace tessera::kernel::master::testing {
namespace {

using ::tessera::testing::residentBytes;

std::string between(const std::string& text, const std::string& before, char end) {
  auto start = text.find(before);
  if (start == std::string::npos) return {};
  start += before.size();
  return text.substr(start, text.find(end, start) - start);
}

// A RECONCILE of `count` tasks the master does not know: one UPDATE event each.
std::string reconcileUnknown(const std::string& frameworkId, int count) {
  std::string tasks;
  for (int i = 0; i < count; ++i) {
    if (i > 0) tasks += ',';
    tasks += fmt::format(R"({{"task_id":{{"value":"unknown-{:05}"}}}})", i);
  }
  return fmt::format(
      R"({{"type":"RECONCILE","framework_id":{{"value":"{}"}},"reconcile":{{"tasks":[{}]}}}})",
      frameworkId, tasks);
}

using EventStreamTest = MasterFixture;

TEST_F(EventStreamTest, ASchedulerThatStopsReadingIsDisconnectedAndOneThatReadsIsNot) {
  options.maxEventStreamQueueBytes = 1024 * 1024;
  startMaster();

  // A scheduler that subscribes, reads its SUBSCRIBED event and then nothing more.
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket stalled(io);
  stalled.connect({boost::asio::ip::make_address("127.0.0.1"), httpPort()});
  timeval tv{10, 0};
  ::setsockopt(stalled.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string subscribe =
      R"({"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"test","name":"stalled"}}})";
  boost::asio::write(stalled, boost::asio::buffer(fmt::format(
                                  "POST /api/v1/scheduler HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                  "application/json\r\nContent-Length: {}\r\n\r\n{}",
                                  subscribe.size(), subscribe)));
  std::string got;
  char buffer[4096];
  while (got.find("heartbeat_interval_seconds") == std::string::npos) {
    ssize_t n = ::recv(stalled.native_handle(), buffer, sizeof buffer, 0);
    ASSERT_GT(n, 0) << got;
    got.append(buffer, static_cast<size_t>(n));
  }
  const std::string stalledId = between(got, R"("framework_id":{"value":")", '"');
  const std::string streamId = between(got, "Mesos-Stream-Id: ", '\r');
  ASSERT_FALSE(stalledId.empty()) << got;
  ASSERT_FALSE(streamId.empty()) << got;

  // It asks for ~1.5 MB of events per call. Unbounded, 100 calls would make the master hold
  // ~150 MB; bounded, the master drops it after a few and refuses its calls from then on.
  const std::string reconcile = reconcileUnknown(stalledId, 5000);
  const size_t before = residentBytes();
  int accepted = 0;
  for (; accepted < 100; ++accepted) {
    auto response = net::httpRequest(
        "POST", "127.0.0.1", httpPort(), "/api/v1/scheduler",
        {{"Content-Type", "application/json"}, {"Mesos-Stream-Id", streamId}}, reconcile, 10s);
    ASSERT_TRUE(response.isOk());
    if (response->status != 202) {
      EXPECT_EQ(response->status, 403) << response->body;
      break;
    }
  }
  EXPECT_LT(accepted, 100) << "the master kept queueing events nobody reads";
  if (::tessera::testing::kResidentMemoryIsMeaningful) {
    EXPECT_LT(residentBytes(), before + 64 * 1024 * 1024)
        << "grew by " << (residentBytes() - before) / 1024 << " KiB";
  }
  // Disconnected as a broken connection would: its failover timeout (0) has removed it.
  EXPECT_TRUE(tessera::testing::waitFor([&] {
    auto state = getJson("/frameworks");
    auto frameworks = state->getArray("frameworks");
    for (size_t i = 0; i < frameworks->size(); ++i) {
      if (frameworks->getObject(static_cast<unsigned>(i))->getValue<std::string>("id") ==
          stalledId) {
        return false;
      }
    }
    return true;
  }));
  // Its connection was closed by the master.
  bool closed = false;
  for (;;) {
    ssize_t n = ::recv(stalled.native_handle(), buffer, sizeof buffer, 0);
    if (n > 0) continue;
    closed = n == 0 || errno == ECONNRESET;
    break;
  }
  EXPECT_TRUE(closed);

  // A scheduler that reads gets the same 5000 updates and stays subscribed.
  auto reader = makeScheduler();
  ASSERT_EQ(reader->subscribe(kFrameworkInfo), 200) << reader->errorBody;
  for (int call = 0; call < 3; ++call) {
    auto response = net::httpRequest(
        "POST", "127.0.0.1", httpPort(), "/api/v1/scheduler",
        {{"Content-Type", "application/json"}, {"Mesos-Stream-Id", reader->streamId}},
        reconcileUnknown(reader->frameworkId, 5000), 10s);
    ASSERT_TRUE(response.isOk());
    ASSERT_EQ(response->status, 202) << response->body;
    for (int i = 0; i < 5000; ++i) {
      auto update = reader->update(fmt::format("unknown-{:05}", i));
      ASSERT_TRUE(update) << "call " << call << ", update " << i;
    }
  }
  auto frameworks = getJson("/frameworks")->getArray("frameworks");
  ASSERT_EQ(frameworks->size(), 1u);
  EXPECT_TRUE(frameworks->getObject(0)->getValue<bool>("connected"));
}

}  // namespace
}  // namespace tessera::kernel::master::testing
