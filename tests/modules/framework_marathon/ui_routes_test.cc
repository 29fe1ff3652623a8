// Marathon's web UI routes without a daemon: the files of a temporary ui_dir at /ui/, the
// redirect of /, and a port whose / is taken already.
#include "modules/framework_marathon/ui_routes.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "tessera/api/http.h"
#include "tests/support/test_router.h"

namespace tessera::modules::marathon {
namespace {

namespace fs = std::filesystem;

using Context = tessera::testing::RouterContext;

std::string header(const api::HttpResponse& response, const std::string& name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return "";
}

class MarathonUiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("marathon-ui-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "ui");
    std::ofstream(dir_ / "ui" / "index.html") << "<!DOCTYPE html><title>Marathon</title>";
    std::ofstream(dir_ / "ui" / "app.js") << "\"use strict\";";
    std::ofstream(dir_ / "secret.txt") << "not served";
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  Context context_;
};

TEST_F(MarathonUiTest, TheUiIsServedUnderUiAndTheRootRedirectsThere) {
  ASSERT_TRUE(addUiRoutes(context_, dir_ / "ui"));

  auto page = context_.router.get("/ui/");
  EXPECT_EQ(page.status, 200) << page.body;
  EXPECT_NE(page.body.find("<title>Marathon</title>"), std::string::npos);
  EXPECT_EQ(page.contentType.rfind("text/html", 0), 0u) << page.contentType;
  EXPECT_EQ(context_.inline_.blocking, 1) << "files are read on the blocking pool";

  auto script = context_.router.get("/ui/app.js");
  EXPECT_EQ(script.status, 200);
  EXPECT_NE(script.contentType.find("javascript"), std::string::npos) << script.contentType;

  auto root = context_.router.get("/");
  EXPECT_EQ(root.status, 302);
  EXPECT_EQ(header(root, "Location"), "/ui/");
  auto bare = context_.router.get("/ui");
  EXPECT_EQ(bare.status, 301);
  EXPECT_EQ(header(bare, "Location"), "/ui/");

  EXPECT_EQ(context_.router.get("/ui/../secret.txt").status, 404);
  EXPECT_EQ(context_.router.get("/ui/missing.css").status, 404);
}

TEST_F(MarathonUiTest, APortWhoseRootIsTakenKeepsTheUiWithoutTheRedirect) {
  context_.router.taken.insert("/");
  ASSERT_TRUE(addUiRoutes(context_, dir_ / "ui"));
  EXPECT_EQ(context_.router.get("/ui/").status, 200);
  EXPECT_FALSE(context_.router.routes.contains("/"));
}

TEST_F(MarathonUiTest, ATakenUiRouteIsAnError) {
  context_.router.taken.insert("/ui");
  auto added = addUiRoutes(context_, dir_ / "ui");
  EXPECT_EQ(added.code(), api::StatusCode::kAlreadyExists);
}

TEST(MarathonUiDirectoryTest, TheParameterWinsElseTheShareFolderBesideTheBinary) {
  EXPECT_EQ(uiDirectory(api::Parameters(
                std::vector<std::pair<std::string, std::string>>{{"ui_dir", "/srv/marathon-ui"}})),
            fs::path("/srv/marathon-ui"));
  const fs::path fallback = uiDirectory(api::Parameters());
  EXPECT_EQ(fallback, fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "share" /
                          "tessera" / "webui" / "marathon");
}

}  // namespace
}  // namespace tessera::modules::marathon
