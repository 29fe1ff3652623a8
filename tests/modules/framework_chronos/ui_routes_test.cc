// Chronos's web UI routes without a daemon: the files of a temporary ui_dir at /, beside the
// API's routes, and a port whose / is taken already.
#include "modules/framework_chronos/ui_routes.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "modules/framework_chronos/chronos_framework.h"
#include "tessera/api/executor.h"
#include "tessera/api/http.h"
#include "tests/modules/framework_chronos/inline_executor.h"
#include "tests/support/module_context.h"

namespace tessera::modules::chronos {
namespace {

namespace fs = std::filesystem;

// Routes by (method, path, prefix); a path in `taken` is refused as the daemon's router would.
class Router final : public api::HttpRouter {
 public:
  api::Status addRoute(std::string_view method, std::string_view path, api::HttpHandler handler,
                       bool prefix) override {
    if (taken.contains(std::string(path))) return api::alreadyExists("route '{}' is taken", path);
    routes[std::string(path)] = {std::string(method), std::move(handler), prefix};
    return api::Status::ok();
  }
  api::HttpResponse get(const std::string& path) {
    const Entry* best = nullptr;
    size_t length = 0;
    for (const auto& [route, entry] : routes) {
      // As the daemon's router: a prefix matches at a segment boundary.
      const bool match = path == route || (entry.prefix && path.starts_with(route) &&
                                           (route.back() == '/' || path[route.size()] == '/'));
      if (match && route.size() >= length) {
        best = &entry;
        length = route.size();
      }
    }
    if (best == nullptr) return api::HttpResponse{404, "", {}, "no route"};
    EXPECT_EQ(best->method, "GET");
    api::HttpRequest request;
    request.method = "GET";
    request.path = path;
    api::HttpResponse response{0, "", {}, ""};
    best->handler(request, [&](api::HttpResponse answer) { response = std::move(answer); });
    return response;
  }
  struct Entry {
    std::string method;
    api::HttpHandler handler;
    bool prefix = false;
  };
  std::map<std::string, Entry> routes;
  std::set<std::string> taken;
};

// The shared stub Context (tests/support/module_context.h) on the inline executor, with the
// refusing router above in place of its recording one.
class Context final : public tessera::testing::StubContext {
 public:
  Context() : StubContext(inline_) {}
  api::HttpRouter& http() override { return router; }

  InlineExecutor inline_;
  Router router;
};

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
