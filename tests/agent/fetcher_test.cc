// The fetcher against a local HTTP server this test runs: plain files, every archive format
// (made here with libarchive's write API), a missing file, a stalling server, archives that
// try to leave the sandbox, one download for concurrent cached fetches, LRU eviction, and
// cached archives extracted once into the cache and linked into sandboxes.

#include "kernel/agent/fetcher.h"

#include <archive.h>
#include <archive_entry.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "kernel/agent/fetcher_archive.h"
#include "tests/agent/test_http_server.h"

namespace tessera::kernel::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr auto kDeadline = 30s;
using testing::TestHttpServer;

// One archive entry: a file (`content`), a directory, a symlink or a hard link (`target`).
struct Entry {
  std::string name;
  std::string content;
  char type = 'f';  // f, x (an executable file), p (a private file, 0600), d, l, h
  std::string target;
};

// Writes `entries` in `format` ("tar", "zip", "gz") through `filter` ("none", "gzip", "bzip2",
// "xz") into a string, with libarchive's write API.
std::string makeArchive(const std::string& format, const std::string& filter,
                        const std::vector<Entry>& entries) {
  archive* a = archive_write_new();
  if (format == "zip") {
    archive_write_set_format_zip(a);
  } else if (format == "gz") {
    archive_write_set_format_raw(a);
    archive_write_add_filter_gzip(a);
  } else {
    archive_write_set_format_pax_restricted(a);
  }
  if (filter == "gzip") archive_write_add_filter_gzip(a);
  if (filter == "bzip2") archive_write_add_filter_bzip2(a);
  if (filter == "xz") archive_write_add_filter_xz(a);
  std::string out(1 << 20, '\0');
  size_t used = 0;
  EXPECT_EQ(archive_write_open_memory(a, out.data(), out.size(), &used), ARCHIVE_OK)
      << archive_error_string(a);
  for (const auto& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.name.c_str());
    archive_entry_set_perm(entry, 0644);
    if (e.type == 'd') {
      archive_entry_set_filetype(entry, AE_IFDIR);
      archive_entry_set_perm(entry, 0755);
    } else if (e.type == 'l') {
      archive_entry_set_filetype(entry, AE_IFLNK);
      archive_entry_set_symlink(entry, e.target.c_str());
    } else if (e.type == 'h') {
      archive_entry_set_filetype(entry, AE_IFREG);
      archive_entry_set_hardlink(entry, e.target.c_str());
    } else {
      archive_entry_set_filetype(entry, AE_IFREG);
      archive_entry_set_size(entry, static_cast<la_int64_t>(e.content.size()));
      if (e.type == 'x') archive_entry_set_perm(entry, 0755);
      if (e.type == 'p') archive_entry_set_perm(entry, 0600);
    }
    EXPECT_GE(archive_write_header(a, entry), ARCHIVE_WARN) << archive_error_string(a);
    if ((e.type == 'f' || e.type == 'x' || e.type == 'p') && !e.content.empty()) {
      archive_write_data(a, e.content.data(), e.content.size());
    }
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
  out.resize(used);
  return out;
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

v1::CommandInfo::URI uri(const std::string& value, bool cache = false) {
  v1::CommandInfo::URI u;
  u.set_value(value);
  u.set_cache(cache);
  return u;
}

class FetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("fetcher_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    makeFetcher(2ULL << 30, 60s);
  }
  void TearDown() override {
    fetcher_.reset();
    fs::remove_all(root_);
  }
  void makeFetcher(uint64_t cacheSize, runtime::Duration stall) {
    fetcher_.reset();
    FetcherOptions options;
    options.cacheDir = root_ / "cache";
    options.cacheSize = cacheSize;
    options.stallTimeout = stall;
    auto created = Fetcher::create(options);
    ASSERT_TRUE(created) << created.status().toString();
    fetcher_ = std::move(created).value();
  }
  fs::path sandbox(const std::string& name) {
    fs::path dir = root_ / "sandboxes" / name;
    fs::create_directories(dir);
    return dir;
  }
  // Starts a fetch; the future holds its outcome.
  std::future<api::Status> start(std::vector<v1::CommandInfo::URI> uris, const fs::path& dir,
                                 std::shared_ptr<FetchHandle>* handle = nullptr,
                                 std::optional<std::string> user = std::nullopt) {
    auto promise = std::make_shared<std::promise<api::Status>>();
    auto future = promise->get_future();
    auto h = fetcher_->fetch(
        std::move(uris), dir, [promise](api::Status status) { promise->set_value(status); },
        std::move(user));
    if (handle != nullptr) *handle = h;
    return future;
  }
  api::Status fetch(std::vector<v1::CommandInfo::URI> uris, const fs::path& dir,
                    std::optional<std::string> user = std::nullopt) {
    auto future = start(std::move(uris), dir, nullptr, std::move(user));
    if (future.wait_for(kDeadline) != std::future_status::ready) {
      return api::internalError("the fetch did not finish");
    }
    return future.get();
  }

  fs::path root_;
  TestHttpServer server_;
  std::unique_ptr<Fetcher> fetcher_;
};

TEST_F(FetcherTest, FetchesPlainFileOverHttpAndMakesItExecutable) {
  server_.serve("/tool.sh", "#!/bin/sh\necho hi\n");
  auto u = uri(server_.url("/tool.sh?version=2"));
  u.set_executable(true);
  auto dir = sandbox("s");
  auto status = fetch({u}, dir);
  ASSERT_TRUE(status) << status.toString();
  EXPECT_EQ(readFile(dir / "tool.sh"), "#!/bin/sh\necho hi\n");
  EXPECT_EQ(fs::status(dir / "tool.sh").permissions() & fs::perms::all, fs::perms(0755));
  EXPECT_NE(readFile(dir / "fetcher.log").find("fetched '" + u.value() + "'"), std::string::npos);
}

TEST_F(FetcherTest, FetchesLocalPathsAndNamesTheOutputFile) {
  fs::path source = root_ / "source.txt";
  std::ofstream(source) << "local bytes";
  auto a = uri(source.string());
  auto b = uri("file://" + source.string());
  b.set_output_file("sub/dir/copy.txt");
  auto dir = sandbox("s");
  ASSERT_TRUE(fetch({a, b}, dir));
  EXPECT_EQ(readFile(dir / "source.txt"), "local bytes");
  EXPECT_EQ(readFile(dir / "sub/dir/copy.txt"), "local bytes");
  EXPECT_EQ(fs::status(dir / "source.txt").permissions() & fs::perms::owner_exec, fs::perms::none);
}

TEST_F(FetcherTest, ExtractsEveryArchiveFormat) {
  const std::vector<Entry> entries = {{"pkg", "", 'd', ""},
                                      {"pkg/data.txt", "archived bytes", 'f', ""},
                                      {"pkg/link", "", 'l', "data.txt"}};
  const std::vector<std::tuple<std::string, std::string, std::string>> formats = {
      {"a.tar", "tar", "none"},      {"a.tar.gz", "tar", "gzip"}, {"a.tgz", "tar", "gzip"},
      {"a.tar.bz2", "tar", "bzip2"}, {"a.tar.xz", "tar", "xz"},   {"a.zip", "zip", "none"}};
  for (const auto& [name, format, filter] : formats) {
    SCOPED_TRACE(name);
    server_.serve("/" + name, makeArchive(format, filter, entries));
    auto dir = sandbox(name);
    auto status = fetch({uri(server_.url("/" + name))}, dir);
    ASSERT_TRUE(status) << status.toString();
    EXPECT_TRUE(fs::exists(dir / name));  // the archive stays, as with Mesos
    EXPECT_EQ(readFile(dir / "pkg/data.txt"), "archived bytes");
    EXPECT_TRUE(fs::is_symlink(dir / "pkg/link"));
  }
  // A single gzipped file is unpacked beside itself; extract=false leaves an archive alone.
  server_.serve("/notes.txt.gz", makeArchive("gz", "none", {{"notes.txt", "gunzipped", 'f', ""}}));
  auto dir = sandbox("gz");
  ASSERT_TRUE(fetch({uri(server_.url("/notes.txt.gz"))}, dir));
  EXPECT_EQ(readFile(dir / "notes.txt"), "gunzipped");

  auto kept = uri(server_.url("/a.tar"));
  kept.set_extract(false);
  auto plain = sandbox("plain");
  ASSERT_TRUE(fetch({kept}, plain));
  EXPECT_TRUE(fs::exists(plain / "a.tar"));
  EXPECT_FALSE(fs::exists(plain / "pkg"));
}

TEST_F(FetcherTest, MissingFileFailsNamingTheUri) {
  auto dir = sandbox("s");
  const std::string missing = server_.url("/missing.tgz");
  auto status = fetch({uri(missing)}, dir);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.message(), "Failed to fetch '" + missing + "': HTTP 404");
  EXPECT_FALSE(fs::exists(dir / "missing.tgz"));
  EXPECT_NE(readFile(dir / "fetcher.log").find("HTTP 404"), std::string::npos);

  auto bad = fetch({uri("ftp://example.com/x")}, dir);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.message().find("'ftp://example.com/x'"), std::string::npos);
}

TEST_F(FetcherTest, StalledServerFailsAfterTheStallTimeout) {
  makeFetcher(2ULL << 30, 1s);
  auto dir = sandbox("s");
  const auto started = std::chrono::steady_clock::now();
  auto status = fetch({uri(server_.url("/stall"))}, dir);
  ASSERT_FALSE(status);
  EXPECT_NE(status.message().find("Failed to fetch '" + server_.url("/stall") + "': stalled"),
            std::string::npos)
      << status.message();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 20s);
}

TEST_F(FetcherTest, CancelStopsAStalledTransfer) {
  auto dir = sandbox("s");
  std::shared_ptr<FetchHandle> handle;
  auto future = start({uri(server_.url("/stall"))}, dir, &handle);
  ASSERT_TRUE(server_.waitForRequests("/stall", 1));
  handle->cancel();
  ASSERT_EQ(future.wait_for(kDeadline), std::future_status::ready);
  auto status = future.get();
  EXPECT_EQ(status.code(), api::StatusCode::kCancelled) << status.toString();
}

TEST_F(FetcherTest, RefusesArchivesThatLeaveTheSandbox) {
  const fs::path outside = root_ / "sandboxes";  // the sandbox's parent
  const fs::path absolute = root_ / "absolute-evil";
  struct Case {
    std::string name;
    std::vector<Entry> entries;
    std::string named;  // the entry the error names
  };
  const std::vector<Case> cases = {
      {"dotdot.tar", {{"ok.txt", "fine", 'f', ""}, {"../evil", "escaped", 'f', ""}}, "../evil"},
      {"absolute.tar.gz", {{absolute.string(), "escaped", 'f', ""}}, absolute.string()},
      {"symlink.tar", {{"out", "", 'l', "../../"}, {"out/evil", "escaped", 'f', ""}}, "out"},
      {"abslink.zip", {{"etc", "", 'l', "/etc"}}, "etc"},
      {"hardlink.tar", {{"hard", "", 'h', "../evil"}}, "hard"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string format = c.name.find(".zip") != std::string::npos ? "zip" : "tar";
    const std::string filter = c.name.find(".gz") != std::string::npos ? "gzip" : "none";
    server_.serve("/" + c.name, makeArchive(format, filter, c.entries));
    auto dir = sandbox(c.name + ".d");
    auto status = fetch({uri(server_.url("/" + c.name))}, dir);
    ASSERT_FALSE(status);
    EXPECT_NE(status.message().find("Failed to fetch '" + server_.url("/" + c.name) + "'"),
              std::string::npos);
    EXPECT_NE(status.message().find("'" + c.named + "'"), std::string::npos) << status.message();
    EXPECT_FALSE(fs::exists(outside / "evil"));
    EXPECT_FALSE(fs::exists(root_ / "evil"));
    EXPECT_FALSE(fs::exists(absolute));
  }
  // An output_file leaving the sandbox is refused before anything is fetched.
  server_.serve("/plain", "x");
  auto escaping = uri(server_.url("/plain"));
  escaping.set_output_file("../evil");
  auto status = fetch({escaping}, sandbox("out"));
  ASSERT_FALSE(status);
  EXPECT_EQ(server_.requests("/plain"), 0);
  EXPECT_FALSE(fs::exists(outside / "evil"));
}

TEST_F(FetcherTest, ConcurrentFetchesOfACachedUriDownloadOnce) {
  server_.serve("/shared.tar.gz",
                makeArchive("tar", "gzip", {{"shared.txt", "shared bytes", 'f', ""}}));
  server_.gate("/shared.tar.gz");
  auto first = sandbox("first");
  auto second = sandbox("second");
  auto a = start({uri(server_.url("/shared.tar.gz"), true)}, first);
  auto b = start({uri(server_.url("/shared.tar.gz"), true)}, second);
  // One fetch is downloading (the server holds its answer), the other waits for it.
  ASSERT_TRUE(server_.waitForRequests("/shared.tar.gz", 1));
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (fetcher_->cache().waiting() < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_EQ(fetcher_->cache().waiting(), 1u);
  server_.openGate();
  ASSERT_EQ(a.wait_for(kDeadline), std::future_status::ready);
  ASSERT_EQ(b.wait_for(kDeadline), std::future_status::ready);
  auto sa = a.get();
  auto sb = b.get();
  EXPECT_TRUE(sa) << sa.toString();
  EXPECT_TRUE(sb) << sb.toString();
  EXPECT_EQ(readFile(first / "shared.txt"), "shared bytes");
  EXPECT_EQ(readFile(second / "shared.txt"), "shared bytes");
  EXPECT_EQ(server_.requests("/shared.tar.gz"), 1);
  // A later fetch is a hit too.
  auto third = sandbox("third");
  ASSERT_TRUE(fetch({uri(server_.url("/shared.tar.gz"), true)}, third));
  EXPECT_EQ(server_.requests("/shared.tar.gz"), 1);
  EXPECT_EQ(fetcher_->cache().downloads(), 1u);
  EXPECT_NE(readFile(third / "fetcher.log").find("hit"), std::string::npos);
}

TEST_F(FetcherTest, FailedCachedDownloadFailsItsWaitersAndIsRetriedLater) {
  server_.gate("/late");
  auto a = start({uri(server_.url("/late"), true)}, sandbox("a"));
  auto b = start({uri(server_.url("/late"), true)}, sandbox("b"));
  ASSERT_TRUE(server_.waitForRequests("/late", 1));
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (fetcher_->cache().waiting() < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  server_.openGate();  // answers 404
  ASSERT_EQ(a.wait_for(kDeadline), std::future_status::ready);
  ASSERT_EQ(b.wait_for(kDeadline), std::future_status::ready);
  EXPECT_NE(a.get().message().find("HTTP 404"), std::string::npos);
  EXPECT_NE(b.get().message().find("HTTP 404"), std::string::npos);
  EXPECT_EQ(fetcher_->cache().entries(), 0u);
  server_.serve("/late", "now here");
  auto dir = sandbox("c");
  ASSERT_TRUE(fetch({uri(server_.url("/late"), true)}, dir));
  EXPECT_EQ(readFile(dir / "late"), "now here");
}

TEST_F(FetcherTest, AKilledDownloaderDoesNotFailTheFetchesWaitingForIt) {
  server_.serve("/shared", "shared bytes");
  server_.gate("/shared");
  std::shared_ptr<FetchHandle> downloader;
  auto a = start({uri(server_.url("/shared"), true)}, sandbox("a"), &downloader);
  ASSERT_TRUE(server_.waitForRequests("/shared", 1));
  auto dir = sandbox("b");
  auto b = start({uri(server_.url("/shared"), true)}, dir);
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (fetcher_->cache().waiting() < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_EQ(fetcher_->cache().waiting(), 1u);
  downloader->cancel();
  ASSERT_EQ(a.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(a.get().code(), api::StatusCode::kCancelled);
  server_.openGate();
  ASSERT_EQ(b.wait_for(kDeadline), std::future_status::ready);
  auto status = b.get();
  ASSERT_TRUE(status) << status.toString();
  EXPECT_EQ(readFile(dir / "shared"), "shared bytes");
  EXPECT_EQ(server_.requests("/shared"), 2);  // the waiter downloaded it itself
}

TEST_F(FetcherTest, LruEvictionKeepsTheCacheUnderItsSize) {
  makeFetcher(250, 60s);
  for (const char* name : {"/one", "/two", "/three"}) server_.serve(name, std::string(100, 'x'));
  ASSERT_TRUE(fetch({uri(server_.url("/one"), true)}, sandbox("1")));
  ASSERT_TRUE(fetch({uri(server_.url("/two"), true)}, sandbox("2")));
  ASSERT_TRUE(fetch({uri(server_.url("/one"), true)}, sandbox("3")));  // /one is now newest
  ASSERT_TRUE(fetch({uri(server_.url("/three"), true)}, sandbox("4")));
  EXPECT_LE(fetcher_->cache().totalBytes(), 250u);
  EXPECT_EQ(fetcher_->cache().entries(), 2u);
  size_t files = 0;
  for ([[maybe_unused]] const auto& f : fs::directory_iterator(root_ / "cache")) ++files;
  EXPECT_EQ(files, 2u);
  // /two was least recently used: it went; /one stayed.
  ASSERT_TRUE(fetch({uri(server_.url("/one"), true)}, sandbox("5")));
  EXPECT_EQ(server_.requests("/one"), 1);
  ASSERT_TRUE(fetch({uri(server_.url("/two"), true)}, sandbox("6")));
  EXPECT_EQ(server_.requests("/two"), 2);
  // A file larger than the whole cache is served, then not kept.
  server_.serve("/huge", std::string(1000, 'y'));
  auto dir = sandbox("7");
  ASSERT_TRUE(fetch({uri(server_.url("/huge"), true)}, dir));
  EXPECT_EQ(fs::file_size(dir / "huge"), 1000u);
  EXPECT_LE(fetcher_->cache().totalBytes(), 250u);
}

// The user a task is run as in the tests below: "nobody" when the test runs as root (a root
// agent runs a task as its user), else none (a non-root agent runs tasks as itself).
std::optional<std::string> taskUser() {
  if (::geteuid() == 0) return "nobody";
  return std::nullopt;
}

// A sandbox the task owns (as the agent chowns a sandbox to the task's user).
fs::path taskSandbox(const fs::path& dir) {
  if (::geteuid() == 0) {
    passwd* nobody = ::getpwnam("nobody");
    EXPECT_NE(nobody, nullptr);
    if (nobody != nullptr) {
      EXPECT_EQ(::chown(dir.c_str(), nobody->pw_uid, nobody->pw_gid), 0);
    }
  }
  return dir;
}

// Runs `action` in a child process with the task's identity (taskUser()); returns its exit
// code. `action` must only make system calls (it runs after fork in a threaded process).
int asTask(const std::function<int()>& action) {
  uid_t uid = ::geteuid();
  gid_t gid = ::getegid();
  if (uid == 0) {
    passwd* nobody = ::getpwnam("nobody");
    if (nobody == nullptr) return -1;
    uid = nobody->pw_uid;
    gid = nobody->pw_gid;
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::geteuid() == 0 &&
        (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0)) {
      ::_exit(100);
    }
    ::_exit(action());
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

// Exit codes of the task actions below.
constexpr int kWriteRefused = 0;
constexpr int kWroteThrough = 1;

int tryToOverwrite(const char* path) {
  const int fd = ::open(path, O_WRONLY | O_TRUNC);
  if (fd < 0) return kWriteRefused;
  [[maybe_unused]] ssize_t n = ::write(fd, "evil", 4);
  ::close(fd);
  return kWroteThrough;
}

TEST_F(FetcherTest, ACacheHitLinksTheCachedFileReadOnly) {
  const std::string content(64 * 1024, 'c');
  server_.serve("/blob.bin", content);
  auto first = taskSandbox(sandbox("first"));
  auto second = taskSandbox(sandbox("second"));
  ASSERT_TRUE(fetch({uri(server_.url("/blob.bin"), true)}, first, taskUser()));
  ASSERT_TRUE(fetch({uri(server_.url("/blob.bin"), true)}, second, taskUser()));
  EXPECT_EQ(server_.requests("/blob.bin"), 1);
  EXPECT_EQ(readFile(first / "blob.bin"), content);
  EXPECT_EQ(readFile(second / "blob.bin"), content);
  // No byte was copied: both sandboxes name the cached inode, which nobody may write.
  struct stat a {
  }, b{};
  ASSERT_EQ(::stat((first / "blob.bin").c_str(), &a), 0);
  ASSERT_EQ(::stat((second / "blob.bin").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 3u);  // the cache's name and the two sandboxes'
  EXPECT_EQ(a.st_mode & 0222, 0u);
  EXPECT_EQ(a.st_uid, ::geteuid());  // not given to the task's user
  EXPECT_NE(readFile(second / "fetcher.log").find("linked from the cache (hit)"),
            std::string::npos);
}

TEST_F(FetcherTest, ATaskWritingOrRemovingItsFileChangesNeitherTheCacheNorOtherSandboxes) {
  const std::string content = "the original bytes";
  server_.serve("/data.txt", content);
  auto mine = taskSandbox(sandbox("mine"));
  auto other = taskSandbox(sandbox("other"));
  ASSERT_TRUE(fetch({uri(server_.url("/data.txt"), true)}, mine, taskUser()));
  ASSERT_TRUE(fetch({uri(server_.url("/data.txt"), true)}, other, taskUser()));
  const std::string path = (mine / "data.txt").string();
  // Writing through the file fails (it is the read-only cached inode).
  EXPECT_EQ(asTask([&] { return tryToOverwrite(path.c_str()); }), kWriteRefused);
  // Removing it and writing a file of its own in its place works, and is the task's alone.
  EXPECT_EQ(asTask([&] {
              if (::unlink(path.c_str()) != 0) return 2;
              const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
              if (fd < 0) return 3;
              const bool wrote = ::write(fd, "mine", 4) == 4;
              ::close(fd);
              return wrote ? 0 : 4;
            }),
            0);
  EXPECT_EQ(readFile(mine / "data.txt"), "mine");
  EXPECT_EQ(readFile(other / "data.txt"), content);
  auto later = taskSandbox(sandbox("later"));
  ASSERT_TRUE(fetch({uri(server_.url("/data.txt"), true)}, later, taskUser()));
  EXPECT_EQ(readFile(later / "data.txt"), content);
  EXPECT_EQ(server_.requests("/data.txt"), 1);
  EXPECT_EQ(fetcher_->cache().discarded(), 0u);
}

TEST_F(FetcherTest, ExecutableAndRootTasksGetACopyTheyMayWrite) {
  const std::string content = "#!/bin/sh\necho cached\n";
  server_.serve("/tool.sh", content);
  auto tool = uri(server_.url("/tool.sh"), true);
  tool.set_executable(true);
  auto exe = sandbox("exe");
  ASSERT_TRUE(fetch({tool}, exe, taskUser()));
  // Executable: a copy of its own (a link would make the cached inode executable).
  struct stat info {};
  ASSERT_EQ(::stat((exe / "tool.sh").c_str(), &info), 0);
  EXPECT_EQ(info.st_nlink, 1u);
  EXPECT_EQ(info.st_mode & 0777, 0755u);
  {
    std::ofstream out(exe / "tool.sh", std::ios::trunc);
    out << "changed";
  }
  std::vector<fs::path> dirs;
  if (::geteuid() == 0) {
    // A task run as root ignores permission bits, so it never shares the cached inode.
    auto rooted = sandbox("root");
    ASSERT_TRUE(fetch({uri(server_.url("/tool.sh"), true)}, rooted));
    ASSERT_EQ(::stat((rooted / "tool.sh").c_str(), &info), 0);
    EXPECT_EQ(info.st_nlink, 1u);
    EXPECT_EQ(tryToOverwrite((rooted / "tool.sh").c_str()), kWroteThrough);
    EXPECT_EQ(readFile(rooted / "tool.sh"), "evil");
  }
  auto later = sandbox("later");
  ASSERT_TRUE(fetch({uri(server_.url("/tool.sh"), true)}, later, taskUser()));
  EXPECT_EQ(readFile(later / "tool.sh"), content);
  EXPECT_EQ(server_.requests("/tool.sh"), 1);
}

TEST_F(FetcherTest, ACachedFileChangedThroughALinkIsDownloadedAgain) {
  // A task run as the agent's user could make the shared inode writable and write it; the
  // cache notices at the next hit and downloads the file again rather than serve it.
  const std::string content = "pristine";
  server_.serve("/file.txt", content);
  auto first = sandbox("first");
  ASSERT_TRUE(fetch({uri(server_.url("/file.txt"), true)}, first, taskUser()));
  const fs::path linked = first / "file.txt";
  fs::permissions(linked, fs::perms::owner_write, fs::perm_options::add);
  {
    std::ofstream out(linked, std::ios::trunc);
    out << "tampered";
  }
  auto second = sandbox("second");
  ASSERT_TRUE(fetch({uri(server_.url("/file.txt"), true)}, second, taskUser()));
  EXPECT_EQ(readFile(second / "file.txt"), content);
  EXPECT_EQ(server_.requests("/file.txt"), 2);
  EXPECT_EQ(fetcher_->cache().discarded(), 1u);
  EXPECT_EQ(fetcher_->cache().entries(), 1u);
  size_t files = 0;
  for ([[maybe_unused]] const auto& f : fs::directory_iterator(root_ / "cache")) ++files;
  EXPECT_EQ(files, 1u);  // the changed file left the cache's directory
}

TEST_F(FetcherTest, EvictionKeepsSandboxesLinkedToAnEvictedFile) {
  makeFetcher(250, 60s);
  for (const char* name : {"/one", "/two", "/three"})
    server_.serve(name, std::string(100, name[1]));
  auto dir = sandbox("1");
  ASSERT_TRUE(fetch({uri(server_.url("/one"), true)}, dir, taskUser()));
  ASSERT_TRUE(fetch({uri(server_.url("/two"), true)}, sandbox("2"), taskUser()));
  ASSERT_TRUE(fetch({uri(server_.url("/three"), true)}, sandbox("3"), taskUser()));
  // /one was evicted; the sandbox's link still holds its bytes.
  EXPECT_LE(fetcher_->cache().totalBytes(), 250u);
  EXPECT_EQ(fetcher_->cache().entries(), 2u);
  EXPECT_EQ(readFile(dir / "one"), std::string(100, 'o'));
  EXPECT_EQ(fs::hard_link_count(dir / "one"), 1u);
  ASSERT_TRUE(fetch({uri(server_.url("/one"), true)}, sandbox("4"), taskUser()));
  EXPECT_EQ(server_.requests("/one"), 2);
}

// Cached archives with `extract`: extracted once into the cache, the tree linked into sandboxes.

// An archive with directories, an executable, a symlink and a hard link inside.
const std::vector<Entry> kTreeEntries = {{"app", "", 'd', ""},
                                         {"app/bin", "", 'd', ""},
                                         {"app/bin/tool", "#!/bin/sh\necho tool\n", 'x', ""},
                                         {"app/conf.txt", "configured", 'f', ""},
                                         {"app/link", "", 'l', "conf.txt"},
                                         {"app/same", "", 'h', "app/conf.txt"},
                                         {"top.txt", "at the top", 'f', ""}};

// The cache directory's entries whose names contain `part`.
size_t cacheEntriesNamed(const fs::path& cache, const std::string& part) {
  size_t found = 0;
  for (const auto& entry : fs::directory_iterator(cache)) {
    if (entry.path().filename().string().find(part) != std::string::npos) ++found;
  }
  return found;
}

uid_t taskUid() {
  if (::geteuid() != 0) return ::geteuid();
  passwd* nobody = ::getpwnam("nobody");
  return nobody != nullptr ? nobody->pw_uid : 0;
}

TEST_F(FetcherTest, AnExtractHitLinksTheCachedTreeReadOnlyInWritableDirectories) {
  server_.serve("/app.tar.gz", makeArchive("tar", "gzip", kTreeEntries));
  auto first = taskSandbox(sandbox("first"));
  auto second = taskSandbox(sandbox("second"));
  auto u = uri(server_.url("/app.tar.gz"), true);
  ASSERT_TRUE(fetch({u}, first, taskUser()));
  ASSERT_TRUE(fetch({u}, second, taskUser()));
  EXPECT_EQ(server_.requests("/app.tar.gz"), 1);
  EXPECT_EQ(fetcher_->cache().treeBuilds(), 1u);  // extracted once, by the first fetch
  EXPECT_EQ(cacheEntriesNamed(root_ / "cache", ".partial"), 0u);
  ASSERT_EQ(cacheEntriesNamed(root_ / "cache", ".tree-"), 1u);
  for (const auto& dir : {first, second}) {
    SCOPED_TRACE(dir.string());
    EXPECT_EQ(readFile(dir / "app/conf.txt"), "configured");
    EXPECT_EQ(readFile(dir / "top.txt"), "at the top");
    EXPECT_EQ(readFile(dir / "app/same"), "configured");
    EXPECT_TRUE(fs::is_symlink(dir / "app/link"));
    EXPECT_EQ(fs::read_symlink(dir / "app/link"), "conf.txt");
    EXPECT_TRUE(fs::exists(dir / "app.tar.gz"));  // the archive stays, as with Mesos
    struct stat info {};
    // Files: the cached inodes, read-only, the agent's; the executable bit survives.
    for (const char* name : {"app/conf.txt", "top.txt", "app/bin/tool"}) {
      ASSERT_EQ(::lstat((dir / name).c_str(), &info), 0) << name;
      EXPECT_EQ(info.st_mode & 0222, 0u) << name;
      EXPECT_EQ(info.st_uid, ::geteuid()) << name;
      EXPECT_GE(info.st_nlink, 3u) << name;  // the cache's tree and both sandboxes
    }
    ASSERT_EQ(::lstat((dir / "app/bin/tool").c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0111, 0111u);
    // Directories: the sandbox's own, the task's, writable by it.
    for (const char* name : {"app", "app/bin"}) {
      ASSERT_EQ(::lstat((dir / name).c_str(), &info), 0) << name;
      EXPECT_TRUE(S_ISDIR(info.st_mode)) << name;
      EXPECT_EQ(info.st_uid, taskUid()) << name;
    }
    const std::string added = (dir / "app/bin/added.txt").string();
    EXPECT_EQ(asTask([&] {
                const int fd = ::open(added.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
                if (fd < 0) return 1;
                ::close(fd);
                return 0;
              }),
              0);
  }
  struct stat a {
  }, b{};
  ASSERT_EQ(::stat((first / "app/conf.txt").c_str(), &a), 0);
  ASSERT_EQ(::stat((second / "app/same").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);  // the archive's hard link is kept
  // The directories are the sandboxes' own: what one task adds is not in the cache.
  for (const auto& entry : fs::recursive_directory_iterator(root_ / "cache")) {
    EXPECT_NE(entry.path().filename(), "added.txt");
  }
  EXPECT_NE(readFile(second / "fetcher.log")
                .find("linked the extracted tree of 'app.tar.gz' "
                      "from the cache (hit)"),
            std::string::npos)
      << readFile(second / "fetcher.log");
  EXPECT_NE(readFile(first / "fetcher.log").find("(extracted now)"), std::string::npos);
  // The tree counts toward the cache's size: the archive and its files (each inode once).
  const uint64_t archiveSize = makeArchive("tar", "gzip", kTreeEntries).size();
  EXPECT_EQ(fetcher_->cache().totalBytes(),
            archiveSize + std::string("#!/bin/sh\necho tool\n").size() +
                std::string("configured").size() + std::string("at the top").size());
}

TEST_F(FetcherTest, ATaskRemovingOrReplacingALinkedTreeFileChangesNeitherTheCacheNorOthers) {
  server_.serve("/app.tar", makeArchive("tar", "none", kTreeEntries));
  auto u = uri(server_.url("/app.tar"), true);
  auto mine = taskSandbox(sandbox("mine"));
  auto other = taskSandbox(sandbox("other"));
  ASSERT_TRUE(fetch({u}, mine, taskUser()));
  ASSERT_TRUE(fetch({u}, other, taskUser()));
  const std::string conf = (mine / "app/conf.txt").string();
  const std::string top = (mine / "top.txt").string();
  EXPECT_EQ(asTask([&] { return tryToOverwrite(conf.c_str()); }), kWriteRefused);
  // Replaced by a file of its own, and removed.
  EXPECT_EQ(asTask([&] {
              if (::unlink(conf.c_str()) != 0) return 2;
              const int fd = ::open(conf.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
              if (fd < 0) return 3;
              const bool wrote = ::write(fd, "mine", 4) == 4;
              ::close(fd);
              if (!wrote) return 4;
              return ::unlink(top.c_str()) == 0 ? 0 : 5;
            }),
            0);
  EXPECT_EQ(readFile(mine / "app/conf.txt"), "mine");
  EXPECT_FALSE(fs::exists(mine / "top.txt"));
  EXPECT_EQ(readFile(other / "app/conf.txt"), "configured");
  EXPECT_EQ(readFile(other / "top.txt"), "at the top");
  auto later = taskSandbox(sandbox("later"));
  ASSERT_TRUE(fetch({u}, later, taskUser()));
  EXPECT_EQ(readFile(later / "app/conf.txt"), "configured");
  EXPECT_EQ(readFile(later / "top.txt"), "at the top");
  EXPECT_EQ(fetcher_->cache().treeBuilds(), 1u);
  EXPECT_EQ(fetcher_->cache().treesDiscarded(), 0u);
  EXPECT_EQ(server_.requests("/app.tar"), 1);
}

TEST_F(FetcherTest, RootTasksOtherFileSystemsAndTheOptOutExtractIntoTheSandbox) {
  server_.serve("/app.tgz", makeArchive("tar", "gzip", kTreeEntries));
  auto u = uri(server_.url("/app.tgz"), true);
  // Extracted into the sandbox: files of its own, writable, not the cache's.
  auto extractedHere = [&](const fs::path& dir) {
    EXPECT_EQ(readFile(dir / "app/conf.txt"), "configured");
    EXPECT_EQ(fs::hard_link_count(dir / "app/conf.txt"), 2u);  // with app/same, nothing else
    EXPECT_NE(readFile(dir / "fetcher.log").find("extracted 7 entries from 'app.tgz'"),
              std::string::npos)
        << readFile(dir / "fetcher.log");
    EXPECT_EQ(tryToOverwrite((dir / "app/conf.txt").c_str()), kWroteThrough);
  };
  if (::geteuid() == 0) {
    SCOPED_TRACE("a root task");
    auto dir = sandbox("root");
    ASSERT_TRUE(fetch({u}, dir));
    extractedHere(dir);
  }
  {
    // /dev/shm is a tmpfs: another file system than the cache's.
    SCOPED_TRACE("another file system");
    const fs::path elsewhere =
        fs::path("/dev/shm") / ("fetcher_test_" + std::to_string(::getpid()));
    fs::remove_all(elsewhere);
    fs::create_directories(elsewhere);
    struct stat shm {
    }, cache{};
    ASSERT_EQ(::stat(elsewhere.c_str(), &shm), 0);
    ASSERT_EQ(::stat((root_ / "cache").c_str(), &cache), 0);
    ASSERT_NE(shm.st_dev, cache.st_dev) << "/dev/shm is on the cache's file system";
    auto dir = taskSandbox(elsewhere);
    auto status = fetch({u}, dir, taskUser());
    ASSERT_TRUE(status) << status.toString();
    EXPECT_EQ(readFile(dir / "app/conf.txt"), "configured");
    EXPECT_EQ(fs::hard_link_count(dir / "app/conf.txt"), 2u);
    EXPECT_NE(readFile(dir / "fetcher.log").find("extracted 7 entries"), std::string::npos);
    fs::remove_all(elsewhere);
  }
  EXPECT_EQ(fetcher_->cache().treeBuilds(), 0u);  // nobody could have used one
  {
    SCOPED_TRACE("--fetcher_link_cached=false");
    fetcher_.reset();
    FetcherOptions options;
    options.cacheDir = root_ / "cache";
    options.linkCached = false;
    auto created = Fetcher::create(options);
    ASSERT_TRUE(created) << created.status().toString();
    fetcher_ = std::move(created).value();
    auto dir = taskSandbox(sandbox("opted-out"));
    ASSERT_TRUE(fetch({u}, dir, taskUser()));
    ASSERT_TRUE(fetch({u}, dir, taskUser()));  // a hit too
    EXPECT_EQ(fs::hard_link_count(dir / "app/conf.txt"), 2u);
    EXPECT_EQ(fs::hard_link_count(dir / "app.tgz"), 1u);  // copied, not linked
    EXPECT_EQ(fetcher_->cache().treeBuilds(), 0u);
  }
}

TEST_F(FetcherTest, AnArchiveWithAPrivateFileIsExtractedIntoTheSandbox) {
  // A shared inode is read through its "other" bits by a task not run as the agent's user: a
  // file only its owner may read is never shared; the task gets its own extracted copy.
  server_.serve("/keys.tar", makeArchive("tar", "none",
                                         {{"public.txt", "public", 'f', ""},
                                          {"secret.key", "private", 'p', ""}}));
  auto u = uri(server_.url("/keys.tar"), true);
  for (const char* name : {"a", "b"}) {
    auto dir = taskSandbox(sandbox(name));
    ASSERT_TRUE(fetch({u}, dir, taskUser()));
    EXPECT_EQ(fs::hard_link_count(dir / "secret.key"), 1u);
    EXPECT_EQ(fs::hard_link_count(dir / "public.txt"), 1u);
    struct stat info {};
    ASSERT_EQ(::stat((dir / "secret.key").c_str(), &info), 0);
    EXPECT_EQ(info.st_uid, taskUid());
    EXPECT_EQ(info.st_mode & 0777, 0600u);
    const std::string key = (dir / "secret.key").string();
    EXPECT_EQ(asTask([&] {
                char buffer[16];
                const int fd = ::open(key.c_str(), O_RDONLY);
                if (fd < 0) return 1;
                const bool read = ::read(fd, buffer, sizeof buffer) == 7;
                ::close(fd);
                return read ? 0 : 2;
              }),
              0);
    EXPECT_NE(
        readFile(dir / "fetcher.log").find("it has files not readable by all): extracting it"),
        std::string::npos)
        << readFile(dir / "fetcher.log");
  }
  EXPECT_EQ(fetcher_->cache().treeBuilds(), 1u);  // kept, known not to be shareable
}

TEST_F(FetcherTest, AHalfBuiltOrChangedTreeIsNeverUsed) {
  // An extraction that fails part way leaves no tree, half or whole, and fails its fetch.
  server_.serve("/bad.tar", makeArchive("tar", "none",
                                        {{"ok.txt", "fine", 'f', ""}, {"../evil", "x", 'f', ""}}));
  auto bad = uri(server_.url("/bad.tar"), true);
  for (const char* name : {"bad1", "bad2"}) {
    auto status = fetch({bad}, taskSandbox(sandbox(name)), taskUser());
    ASSERT_FALSE(status);
    EXPECT_NE(status.message().find("'../evil'"), std::string::npos) << status.message();
    EXPECT_EQ(cacheEntriesNamed(root_ / "cache", ".tree-"), 0u);
    EXPECT_FALSE(fs::exists(root_ / "sandboxes/evil"));
    EXPECT_FALSE(fs::exists(root_ / "cache/evil"));
  }
  EXPECT_EQ(fetcher_->cache().treeBuilds(), 2u);  // tried again, never served half

  // A tree found changed (a file made writable and written, by a task run as the agent's
  // user, say) is removed and extracted again.
  server_.serve("/app.tar", makeArchive("tar", "none", kTreeEntries));
  auto u = uri(server_.url("/app.tar"), true);
  auto first = taskSandbox(sandbox("first"));
  ASSERT_TRUE(fetch({u}, first, taskUser()));
  fs::path oldTree;
  for (const auto& entry : fs::directory_iterator(root_ / "cache")) {
    if (entry.path().filename().string().find(".tree-") != std::string::npos) oldTree = entry;
  }
  ASSERT_FALSE(oldTree.empty());
  fs::permissions(oldTree / "app/conf.txt", fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(oldTree / "app/conf.txt", std::ios::trunc) << "tampered!!";
  auto second = taskSandbox(sandbox("second"));
  ASSERT_TRUE(fetch({u}, second, taskUser()));
  EXPECT_EQ(readFile(second / "app/conf.txt"), "configured");
  EXPECT_EQ(fetcher_->cache().treesDiscarded(), 1u);
  EXPECT_EQ(fetcher_->cache().treeBuilds(), 4u);  // the two failed, the first, the rebuilt
  EXPECT_FALSE(fs::exists(oldTree));
  EXPECT_EQ(cacheEntriesNamed(root_ / "cache", ".tree-"), 1u);
  EXPECT_EQ(server_.requests("/app.tar"), 1);  // the archive itself was intact

  // An agent killed while extracting leaves "<file>.tree-<n>.partial" behind (and perhaps a
  // whole tree): the next agent's cache starts empty, so neither is ever linked.
  fs::path archive;
  for (const auto& entry : fs::directory_iterator(root_ / "cache")) {
    if (entry.path().extension() == ".tar") archive = entry;
  }
  ASSERT_FALSE(archive.empty());
  const fs::path partial = archive.string() + ".tree-99.partial";
  fs::create_directories(partial / "app");
  std::ofstream(partial / "app/conf.txt") << "half";
  std::ofstream(partial / "planted.txt") << "half";
  makeFetcher(2ULL << 30, 60s);  // the restarted agent's
  EXPECT_TRUE(fs::is_empty(root_ / "cache"));
  auto restarted = taskSandbox(sandbox("restarted"));
  ASSERT_TRUE(fetch({u}, restarted, taskUser()));
  EXPECT_EQ(readFile(restarted / "app/conf.txt"), "configured");
  EXPECT_FALSE(fs::exists(restarted / "planted.txt"));
  EXPECT_EQ(fetcher_->cache().treeBuilds(), 1u);
  EXPECT_EQ(server_.requests("/app.tar"), 2);
}

TEST_F(FetcherTest, EvictionRemovesTheTreeWithItsArchive) {
  std::vector<Entry> one = kTreeEntries;
  std::vector<Entry> two = kTreeEntries;
  one[3].content = std::string(4000, '1');
  two[3].content = std::string(4000, '2');
  server_.serve("/one.tar", makeArchive("tar", "none", one));
  server_.serve("/two.tar", makeArchive("tar", "none", two));
  ASSERT_TRUE(
      fetch({uri(server_.url("/one.tar"), true)}, taskSandbox(sandbox("measure")), taskUser()));
  const uint64_t each = fetcher_->cache().totalBytes();  // the archive and its tree
  ASSERT_GT(each, makeArchive("tar", "none", one).size() + 4000);
  makeFetcher(each + each / 2, 60s);  // room for one archive with its tree
  auto dir = taskSandbox(sandbox("1"));
  ASSERT_TRUE(fetch({uri(server_.url("/one.tar"), true)}, dir, taskUser()));
  ASSERT_EQ(cacheEntriesNamed(root_ / "cache", "one.tar.tree-"), 1u);
  ASSERT_TRUE(fetch({uri(server_.url("/two.tar"), true)}, taskSandbox(sandbox("2")), taskUser()));
  EXPECT_LE(fetcher_->cache().totalBytes(), each + each / 2);
  EXPECT_EQ(fetcher_->cache().entries(), 1u);
  EXPECT_EQ(cacheEntriesNamed(root_ / "cache", "one.tar"), 0u);  // the archive and its tree
  EXPECT_EQ(cacheEntriesNamed(root_ / "cache", "two.tar.tree-"), 1u);
  EXPECT_EQ(cacheEntriesNamed(root_ / "cache", "two.tar"), 2u);
  // The evicted tree's files live on in the sandbox linked to them.
  EXPECT_EQ(readFile(dir / "app/conf.txt"), std::string(4000, '1'));
  EXPECT_EQ(fs::hard_link_count(dir / "top.txt"), 1u);
  ASSERT_TRUE(fetch({uri(server_.url("/one.tar"), true)}, taskSandbox(sandbox("3")), taskUser()));
  EXPECT_EQ(server_.requests("/one.tar"), 3);
}

TEST_F(FetcherTest, ConcurrentExtractFetchesOfOneCachedArchiveExtractOnce) {
  server_.serve("/app.tar.gz", makeArchive("tar", "gzip", kTreeEntries));
  server_.gate("/app.tar.gz");
  std::vector<fs::path> dirs;
  std::vector<std::future<api::Status>> fetches;
  for (int i = 0; i < 3; ++i) {
    dirs.push_back(taskSandbox(sandbox("s" + std::to_string(i))));
    fetches.push_back(
        start({uri(server_.url("/app.tar.gz"), true)}, dirs.back(), nullptr, taskUser()));
  }
  ASSERT_TRUE(server_.waitForRequests("/app.tar.gz", 1));
  server_.openGate();
  for (auto& f : fetches) {
    ASSERT_EQ(f.wait_for(kDeadline), std::future_status::ready);
    auto status = f.get();
    EXPECT_TRUE(status) << status.toString();
  }
  EXPECT_EQ(fetcher_->cache().downloads(), 1u);
  EXPECT_EQ(fetcher_->cache().treeBuilds(), 1u);
  std::set<ino_t> inodes;  // every sandbox links the one extracted file
  for (const auto& dir : dirs) {
    EXPECT_EQ(readFile(dir / "app/conf.txt"), "configured");
    struct stat info {};
    ASSERT_EQ(::stat((dir / "app/conf.txt").c_str(), &info), 0);
    inodes.insert(info.st_ino);
  }
  EXPECT_EQ(inodes.size(), 1u);
}

// The cache alone: a second caller wanting a tree being built waits for that build and shares
// its outcome, a tree or an error.
TEST(FetcherCacheTreeTest, ASecondCallerWaitsForTheOneBuild) {
  const fs::path dir =
      fs::temp_directory_path() / ("fetcher_cache_tree_test_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  FetcherCache cache(dir, 1 << 20);
  ASSERT_TRUE(cache.initialize());
  auto never = [] { return false; };
  auto lease = cache.acquire(
      "key", "a.tar",
      [](int fd, uint64_t& bytes) {
        bytes = 3;
        return ::write(fd, "abc", 3) == 3 ? api::Status::ok() : api::internalError("write");
      },
      never);
  ASSERT_TRUE(lease);
  for (const bool fails : {true, false}) {
    SCOPED_TRACE(fails ? "a failing build" : "a build");
    std::promise<void> started;
    std::promise<void> proceed;
    auto proceeding = proceed.get_future().share();
    FetcherCache::Extract slow = [&](const fs::path& into) -> api::Status {
      started.set_value();
      proceeding.wait();
      if (fails) return api::invalidArgument("archive entry 'x' refused");
      std::ofstream(into / "file.txt") << "extracted";
      return api::Status::ok();
    };
    FetcherCache::Extract unexpected = [](const fs::path&) -> api::Status {
      ADD_FAILURE() << "a second extraction";
      return api::internalError("a second extraction");
    };
    bool builtA = false;
    bool builtB = false;
    auto a =
        std::async(std::launch::async, [&] { return cache.tree(*lease, slow, never, builtA); });
    started.get_future().wait();
    auto b = std::async(std::launch::async,
                        [&] { return cache.tree(*lease, unexpected, never, builtB); });
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (cache.waiting() < 1 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    ASSERT_EQ(cache.waiting(), 1u);
    proceed.set_value();
    auto ta = a.get();
    auto tb = b.get();
    if (fails) {
      ASSERT_FALSE(ta);
      ASSERT_FALSE(tb);
      EXPECT_EQ(tb.status().message(), ta.status().message());
      EXPECT_EQ(tb.status().code(), api::StatusCode::kInvalidArgument);
      EXPECT_EQ(cacheEntriesNamed(dir, ".tree-"), 0u);
    } else {
      ASSERT_TRUE(ta) << ta.status().toString();
      ASSERT_TRUE(tb) << tb.status().toString();
      EXPECT_EQ(ta->get(), tb->get());
      EXPECT_TRUE(builtA);
      EXPECT_FALSE(builtB);
      EXPECT_EQ((*ta)->files, 1u);
      EXPECT_EQ(readFile((*ta)->root / "file.txt"), "extracted");
      EXPECT_EQ(fs::status((*ta)->root / "file.txt").permissions() & fs::perms::all,
                fs::perms(0444));
      EXPECT_EQ(cache.totalBytes(), 3u + 9u);
    }
  }
  EXPECT_EQ(cache.treeBuilds(), 2u);
  *lease = CacheLease();
  fs::remove_all(dir);
}

TEST(FetcherArchiveTest, KindsAndNames) {
  EXPECT_EQ(archiveKind("x/a.tar.gz"), ArchiveKind::kArchive);
  EXPECT_EQ(archiveKind("a.zip"), ArchiveKind::kArchive);
  EXPECT_EQ(archiveKind("a.gz"), ArchiveKind::kGzip);
  EXPECT_EQ(archiveKind("a.txt"), ArchiveKind::kNone);
  EXPECT_TRUE(staysBeneath("a/b"));
  EXPECT_TRUE(staysBeneath("./a..b"));
  EXPECT_FALSE(staysBeneath("a/../../b"));
  EXPECT_FALSE(staysBeneath("/a"));
  EXPECT_FALSE(staysBeneath(""));
}

}  // namespace
}  // namespace tessera::kernel::agent
