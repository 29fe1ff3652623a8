// The master's web UI routes: `/` is <webui_dir>/index.html, `/static/...` the folder's files,
// nothing outside it, and no route at all without a folder.
#include <gmock/gmock.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "kernel/master/master.h"
#include "tests/master/master_fixture.h"

namespace tessera::kernel::master::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

class WebuiTest : public MasterFixture {
 protected:
  void SetUp() override {
    MasterFixture::SetUp();
    std::string pattern = (fs::temp_directory_path() / "webui-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    fs::create_directories(dir_ / "master");
    std::ofstream(dir_ / "master" / "index.html") << "<title>Tessera master</title>";
    std::ofstream(dir_ / "master" / "app.js") << "'use strict';";
    std::ofstream(dir_ / "secret.txt") << "not for the browser";
  }
  void TearDown() override {
    MasterFixture::TearDown();
    fs::remove_all(dir_);
  }
  net::ClientResponse get(const std::string& path) {
    auto response = net::httpRequest("GET", "127.0.0.1", httpPort(), path, {}, "", 10s);
    EXPECT_TRUE(response.isOk()) << path;
    return response.isOk() ? *response : net::ClientResponse{};
  }

  fs::path dir_;
};

TEST_F(WebuiTest, ServesTheIndexAtTheRootAndFilesUnderStatic) {
  options.webuiDir = dir_ / "master";
  startMaster();
  auto index = get("/");
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.body, "<title>Tessera master</title>");
  EXPECT_THAT(index.header("Content-Type").value_or(""), HasSubstr("text/html"));
  auto script = get("/static/app.js");
  EXPECT_EQ(script.status, 200);
  EXPECT_EQ(script.body, "'use strict';");
  EXPECT_THAT(script.header("Content-Type").value_or(""), HasSubstr("text/javascript"));
  EXPECT_EQ(get("/static/missing.js").status, 404);
  // The JSON endpoints are untouched.
  EXPECT_EQ(get("/state").status, 200);
  EXPECT_EQ(get("/no/such/endpoint").status, 404);
}

TEST_F(WebuiTest, NothingOutsideTheFolderIsServed) {
  options.webuiDir = dir_ / "master";
  startMaster();
  for (const char* path : {"/static/../secret.txt", "/static/%2e%2e/secret.txt",
                           "/static/..%2fsecret.txt", "/static/%2E%2E%2Fsecret.txt"}) {
    auto response = get(path);
    EXPECT_NE(response.status, 200) << path;
    EXPECT_THAT(response.body, Not(HasSubstr("not for the browser"))) << path;
  }
}

TEST_F(WebuiTest, AMissingFolderIsA404NamingTheFlag) {
  options.webuiDir = dir_ / "nowhere";
  startMaster();
  auto response = get("/");
  EXPECT_EQ(response.status, 404);
  EXPECT_THAT(response.body, HasSubstr("--webui_dir"));
}

TEST_F(WebuiTest, NoFolderNoRoute) {
  startMaster();
  EXPECT_EQ(get("/").status, 404);
  EXPECT_EQ(get("/static/app.js").status, 404);
}

}  // namespace
}  // namespace tessera::kernel::master::testing
