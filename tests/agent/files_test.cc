// The agent's /files endpoints against hostile sandboxes (#20): symlink races, FIFOs, huge
// files, oracles and NUL bytes.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "kernel/agent/agent_files.h"
#include "kernel/http/http_status.h"
#include "kernel/net/http_client.h"
#include "kernel/net/http_server.h"
#include "kernel/runtime/runtime.h"
#include "tests/support/process_memory.h"
#include "tests/support/subprocess.h"

namespace tessera::kernel::agent {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

api::HttpRequest requestFor(const std::string& query) {
  api::HttpRequest request;
  request.method = "GET";
  request.query = query;
  return request;
}

// A sandbox under `<tmp>/slaves` and, beside the root, a directory a task must never reach.
class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(sandbox_);
    fs::create_directories(outside_);
    std::ofstream(outside_ / "secret") << "OUTSIDE-SECRET";
  }

  testing::TempDir dir_;
  const fs::path root_ = dir_.path() / "slaves";
  const fs::path sandbox_ =
      root_ / "agent" / "frameworks" / "fw" / "executors" / "e" / "runs" / "c";
  const fs::path outside_ = dir_.path() / "outside";
};

TEST_F(FilesTest, ASymlinkSwappedInDuringAReadNeverLeadsOutside) {
  fs::create_directories(sandbox_ / "d");
  std::ofstream(sandbox_ / "d" / "secret") << "inside";
  // `alt` is the attacker's symlink; the swapper exchanges it with `d` atomically, over and
  // over, so `d` is a real directory half of the time and a way out the other half.
  fs::create_symlink(outside_, sandbox_ / "alt");
  const std::string d = (sandbox_ / "d").string();
  const std::string alt = (sandbox_ / "alt").string();
  std::atomic<bool> stop{false};
  std::thread swapper([&] {
    while (!stop.load()) ::renameat2(AT_FDCWD, d.c_str(), AT_FDCWD, alt.c_str(), RENAME_EXCHANGE);
  });
  const auto request = requestFor("path=" + d + "/secret&offset=0");
  int inside = 0;
  int leaked = 0;
  for (int i = 0; i < 2000; ++i) {
    auto response = filesRead(root_, request);
    if (response.body.find("OUTSIDE-SECRET") != std::string::npos) ++leaked;
    if (response.status == 200) ++inside;
  }
  stop = true;
  swapper.join();
  EXPECT_EQ(leaked, 0);
  EXPECT_GT(inside, 0);  // the race was really run: `d` was a directory for some reads
}

TEST_F(FilesTest, ASymlinkOutsideAnswersAlikeWhetherItsTargetExistsOrNot) {
  const fs::path link = sandbox_ / "link";
  const auto request = requestFor("path=" + link.string() + "&offset=0");
  std::vector<std::pair<fs::path, fs::path>> cases = {
      {outside_ / "missing", outside_ / "secret"},  // absolute targets
      {fs::path("../../../../../../../../outside/missing"),
       fs::path("../../../../../../../../outside/secret")},  // relative, climbing out
  };
  for (const auto& [missing, existing] : cases) {
    fs::create_symlink(missing, link);
    auto toMissing = filesRead(root_, request);
    auto browseMissing = filesBrowse(root_, request);
    fs::remove(link);
    fs::create_symlink(existing, link);
    auto toExisting = filesRead(root_, request);
    auto browseExisting = filesBrowse(root_, request);
    fs::remove(link);
    EXPECT_EQ(toMissing.status, 403) << missing;
    EXPECT_EQ(toMissing.status, toExisting.status) << missing;
    EXPECT_EQ(toMissing.body, toExisting.body) << missing;
    EXPECT_EQ(browseMissing.status, browseExisting.status) << missing;
    EXPECT_EQ(browseMissing.body, browseExisting.body) << missing;
  }
}

TEST_F(FilesTest, ANulByteInThePathIsRefusedNotCutShort) {
  std::ofstream(sandbox_ / "f.txt") << "do-not-read";
  auto response = filesRead(root_, requestFor("path=" + sandbox_.string() + "/f.txt%00.png"));
  EXPECT_EQ(response.status, 400);
  EXPECT_THAT(response.body, HasSubstr("'path'"));
  EXPECT_THAT(response.body, Not(HasSubstr("do-not-read")));
  EXPECT_EQ(filesBrowse(root_, requestFor("path=" + sandbox_.string() + "/f.txt%00")).status, 400);
}

TEST_F(FilesTest, ServesOnlyRegularFilesAndDirectories) {
  ASSERT_EQ(::mkfifo((sandbox_ / "fifo").c_str(), 0600), 0);
  std::ofstream(sandbox_ / "stdout") << "0123456789";
  const std::string fifo = "path=" + (sandbox_ / "fifo").string();
  auto read = filesRead(root_, requestFor(fifo + "&offset=0"));
  EXPECT_EQ(read.status, 400);
  EXPECT_THAT(read.body, HasSubstr("not a regular file or directory"));
  EXPECT_EQ(filesBrowse(root_, requestFor(fifo)).status, 400);
  // The directory holding it still lists, FIFO included, and a regular file still reads.
  auto listing = filesBrowse(root_, requestFor("path=" + sandbox_.string()));
  EXPECT_EQ(listing.status, 200);
  EXPECT_THAT(listing.body, HasSubstr("/fifo\""));
  EXPECT_THAT(listing.body, HasSubstr("/stdout\""));
  EXPECT_EQ(
      filesRead(root_, requestFor("path=" + sandbox_.string() + "/stdout&offset=3&length=2")).body,
      R"({"data":"34","offset":3})");
}

// The endpoints over a real HttpServer, wired as the agent wires them: read and browse on the
// blocking pool, download as a stream.
class FilesHttpTest : public FilesTest {
 protected:
  void SetUp() override {
    FilesTest::SetUp();
    runtime_.start();
    auto blocking = [this](api::HttpResponse (*serve)(const fs::path&, const api::HttpRequest&)) {
      return [this, serve](const api::HttpRequest& request, api::HttpResponder respond) {
        auto queued = executor_->runBlocking(
            [root = root_, request, respond, serve] { respond(serve(root, request)); }, [] {});
        if (!queued) respond(http::errorResponse(api::unavailable("{}", queued.message())));
      };
    };
    ASSERT_TRUE(router_->addRoute("GET", "/files/read", executor_.get(), blocking(&filesRead)));
    ASSERT_TRUE(router_->addRoute("GET", "/files/browse", executor_.get(), blocking(&filesBrowse)));
    ASSERT_TRUE(router_->addStreamRoute(
        "GET", "/files/download", executor_.get(),
        [this](const api::HttpRequest& request, std::shared_ptr<net::HttpStream> stream) {
          filesDownload(root_, executor_, request, std::move(stream));
        }));
    server_ = std::make_unique<net::HttpServer>(runtime_, router_);
    ASSERT_TRUE(server_->start());
  }

  void TearDown() override {
    // Were a FIFO open blocking a pool thread (the bug), a writer lets it go so the runtime
    // can stop and the test fail instead of hang.
    for (const auto& entry : fs::directory_iterator(sandbox_)) {
      if (!entry.is_fifo()) continue;
      int writer = ::open(entry.path().c_str(), O_WRONLY | O_NONBLOCK);
      if (writer >= 0) ::close(writer);
    }
    server_->stop();
    executor_->drain();
    runtime_.stop();
  }

  api::Result<net::ClientResponse> get(const std::string& target,
                                       std::chrono::milliseconds timeout = 10s) {
    return net::httpRequest("GET", "127.0.0.1", server_->port(), target, {}, "", timeout);
  }

  runtime::Runtime runtime_{runtime::Runtime::Options{2, 4, 64}};
  std::shared_ptr<runtime::StrandExecutor> executor_ = runtime_.makeExecutor();
  std::shared_ptr<net::Router> router_ = std::make_shared<net::Router>();
  std::unique_ptr<net::HttpServer> server_;
};

TEST_F(FilesHttpTest, AFifoNeitherBlocksItsReadersNorThePool) {
  ASSERT_EQ(::mkfifo((sandbox_ / "fifo").c_str(), 0600), 0);
  std::ofstream(sandbox_ / "stdout") << "0123456789";
  // More readers than the pool has threads: any one blocked in open() would starve the rest.
  std::vector<std::future<api::Result<net::ClientResponse>>> fifoReads;
  for (int i = 0; i < 8; ++i) {
    const char* endpoint = i % 2 == 0 ? "/files/read" : "/files/download";
    fifoReads.push_back(std::async(std::launch::async, [this, endpoint] {
      return get(std::string(endpoint) + "?path=" + (sandbox_ / "fifo").string() + "&offset=0", 5s);
    }));
  }
  auto regular = get("/files/read?path=" + (sandbox_ / "stdout").string() + "&offset=0", 5s);
  ASSERT_TRUE(regular) << regular.status().toString();
  EXPECT_EQ(regular->status, 200);
  EXPECT_EQ(regular->body, R"({"data":"0123456789","offset":0})");
  for (auto& read : fifoReads) {
    auto response = read.get();
    ASSERT_TRUE(response) << response.status().toString();
    EXPECT_EQ(response->status, 400);
    EXPECT_THAT(response->body, HasSubstr("not a regular file or directory"));
  }
}

TEST_F(FilesHttpTest, DownloadSendsTheBytesWithTheirLength) {
  std::string content;
  for (int i = 0; content.size() < 3 * kDownloadChunkBytes + 123; ++i) {
    content += std::to_string(i) + ',';
  }
  std::ofstream(sandbox_ / "data.csv", std::ios::binary) << content;
  auto response = get("/files/download?path=" + (sandbox_ / "data.csv").string());
  ASSERT_TRUE(response) << response.status().toString();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->header("Content-Length"), std::to_string(content.size()));
  EXPECT_EQ(response->header("Content-Type"), "application/octet-stream");
  EXPECT_EQ(response->header("Content-Disposition"), "attachment; filename=\"data.csv\"");
  EXPECT_EQ(response->body, content);

  auto empty = get("/files/download?path=" + (sandbox_ / "none").string());
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 404);
  EXPECT_THAT(empty->body, HasSubstr("does not exist"));
  auto directory = get("/files/download?path=" + sandbox_.string());
  ASSERT_TRUE(directory);
  EXPECT_EQ(directory->status, 400);
}

// This process's peak resident set, in bytes.
int64_t peakRss() { return static_cast<int64_t>(::tessera::testing::processMemoryBytes("VmHWM")); }

TEST_F(FilesHttpTest, DownloadingAHugeFileKeepsMemoryBounded) {
  constexpr int64_t kSize = 256LL * 1024 * 1024;
  {
    int fd = ::open((sandbox_ / "huge").c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, kSize), 0);  // sparse: no disk, all zeros
    ::close(fd);
  }
  // Start the peak from here (Linux >= 4.0), so earlier tests' peaks cannot hide this one's.
  std::ofstream("/proc/self/clear_refs") << "5";
  const int64_t before = peakRss();
  ASSERT_GT(before, 0);

  int sock = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(sock, 0);
  timeval tv{10, 0};
  ::setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(server_->port());
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(sock, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  const std::string request =
      "GET /files/download?path=" + (sandbox_ / "huge").string() + " HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(sock, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  // Read and discard, so this side holds no more than a buffer either.
  std::string head;
  bool inBody = false;
  int64_t body = 0;
  bool nonZero = false;
  std::vector<char> buffer(1 << 16);
  for (;;) {
    ssize_t n = ::recv(sock, buffer.data(), buffer.size(), 0);
    if (n <= 0) break;
    std::string_view got(buffer.data(), static_cast<size_t>(n));
    if (!inBody) {
      head.append(got);
      auto end = head.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      inBody = true;
      got = std::string_view(head).substr(end + 4);
      body += static_cast<int64_t>(got.size());
      nonZero |= got.find_first_not_of('\0') != std::string_view::npos;
      head.resize(end);
      continue;
    }
    nonZero |= got.find_first_not_of('\0') != std::string_view::npos;
    body += n;
  }
  ::close(sock);
  const int64_t after = peakRss();

  EXPECT_THAT(head, HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(head, HasSubstr("Content-Length: " + std::to_string(kSize)));
  EXPECT_EQ(body, kSize);
  EXPECT_FALSE(nonZero);
  // A whole-file read would add at least the file's size; chunks add a few of their size.
  if (::tessera::testing::kResidentMemoryIsMeaningful) {
    EXPECT_LT(after - before, kSize / 8) << "peak RSS grew from " << before << " to " << after;
  }
}

}  // namespace

// One task's symlink leads neither into another task's sandbox nor through the agent's own
// directories; a symlink that stays inside its own sandbox still works.
TEST_F(FilesTest, ASymlinkCannotReachAnotherTasksSandbox) {
  const fs::path other = root_ / "agent" / "frameworks" / "fw" / "executors" / "f" / "runs" / "c";
  fs::create_directories(other);
  std::ofstream(other / "secret") << "OTHER-TASK";
  std::ofstream(sandbox_ / "mine") << "MINE";
  fs::create_symlink("../../../f/runs/c/secret", sandbox_ / "theirs");
  fs::create_symlink("mine", sandbox_ / "alias");
  auto theirs =
      filesRead(root_, requestFor("path=" + (sandbox_ / "theirs").string() + "&offset=0"));
  EXPECT_EQ(theirs.status, 403) << theirs.body;
  EXPECT_EQ(theirs.body.find("OTHER-TASK"), std::string::npos);
  auto alias = filesRead(root_, requestFor("path=" + (sandbox_ / "alias").string() + "&offset=0"));
  EXPECT_EQ(alias.status, 200) << alias.body;
  EXPECT_NE(alias.body.find("MINE"), std::string::npos) << alias.body;

  // A symlink planted among the agent's directories is refused, not followed.
  fs::create_symlink(outside_, root_ / "agent" / "frameworks" / "planted");
  auto planted = filesRead(
      root_, requestFor("path=" + (root_ / "agent" / "frameworks" / "planted" / "secret").string() +
                        "&offset=0"));
  EXPECT_EQ(planted.status, 403) << planted.body;
}

}  // namespace tessera::kernel::agent
