// Chronos's web UI routes without a daemon: the files of a temporary ui_dir at /, beside the
// API's routes, and a port whose / is taken already.
#include "modules/framework_chronos/ui_routes.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "modules/framework_chronos/chronos_framework.h"
#include "tessera/api/http.h"
#include "tests/support/test_router.h"

namespace tessera::modules::chronos {
namespace {

namespace fs = std::filesystem;

using Context = tessera::testing::RouterContext;

class ChronosUiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("chronos-ui-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "ui");
    std::ofstream(dir_ / "ui" / "index.html") << "<!DOCTYPE html><title>Chronos</title>";
    std::ofstream(dir_ / "ui" / "app.js") << "\"use strict\";";
    std::ofstream(dir_ / "secret.txt") << "not served";
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  Context context_;
};

TEST_F(ChronosUiTest, TheUiIsServedAtTheRootBesideTheApi) {
  ASSERT_TRUE(addUiRoutes(context_, dir_ / "ui"));
  // The API's own prefix, as ChronosFramework::create adds it: the longer prefix wins.
  context_.router.routes["/scheduler"] = {"GET",
                                          [](const api::HttpRequest&, api::HttpResponder respond) {
                                            respond(api::HttpResponse::json(200, "[]"));
                                          },
                                          true};

  auto page = context_.router.get("/");
  EXPECT_EQ(page.status, 200) << page.body;
  EXPECT_NE(page.body.find("<title>Chronos</title>"), std::string::npos);
  EXPECT_EQ(page.contentType.rfind("text/html", 0), 0u) << page.contentType;
  EXPECT_EQ(context_.inline_.blocking, 1) << "files are read on the blocking pool";
  auto script = context_.router.get("/app.js");
  EXPECT_EQ(script.status, 200);
  EXPECT_NE(script.contentType.find("javascript"), std::string::npos) << script.contentType;
  EXPECT_EQ(context_.router.get("/scheduler/jobs").body, "[]");

  EXPECT_EQ(context_.router.get("/../secret.txt").status, 404);
  EXPECT_EQ(context_.router.get("/missing.css").status, 404);
}

TEST_F(ChronosUiTest, APortWhoseRootIsTakenServesTheApiWithoutTheUi) {
  context_.router.taken.insert("/");
  EXPECT_TRUE(addUiRoutes(context_, dir_ / "ui"));
  EXPECT_TRUE(context_.router.routes.empty());
}

TEST(ChronosUiOptionsTest, UiDirIsAKnownParameter) {
  auto options = ChronosOptions::parse(api::Parameters(
      std::vector<std::pair<std::string, std::string>>{{"ui_dir", "/srv/chronos-ui"}}));
  EXPECT_TRUE(options) << options.status().message();
}

TEST(ChronosUiDirectoryTest, TheParameterWinsElseTheShareFolderBesideTheBinary) {
  EXPECT_EQ(uiDirectory(api::Parameters(
                std::vector<std::pair<std::string, std::string>>{{"ui_dir", "/srv/chronos-ui"}})),
            fs::path("/srv/chronos-ui"));
  const fs::path fallback = uiDirectory(api::Parameters());
  EXPECT_EQ(fallback, fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "share" /
                          "tessera" / "webui" / "chronos");
}

}  // namespace
}  // namespace tessera::modules::chronos
