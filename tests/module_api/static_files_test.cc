#include "tessera/api/static_files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;
using tessera::api::contentTypeFor;
using tessera::api::serveStaticFile;

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "static-files-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    root_ = dir_ / "root";
    fs::create_directories(root_ / "sub");
    write(root_ / "index.html", "<h1>home</h1>");
    write(root_ / "app.js", "console.log(1);");
    write(root_ / "sub" / "index.html", "<p>sub</p>");
    write(root_ / "sub" / "style.CSS", "body{}");
    write(dir_ / "secret.txt", "do not serve");
  }
  void TearDown() override { fs::remove_all(dir_); }

  static void write(const fs::path& file, const std::string& text) {
    std::ofstream(file, std::ios::binary) << text;
  }
  std::string header(const tessera::api::HttpResponse& response, const std::string& name) {
    for (const auto& [key, value] : response.headers) {
      if (key == name) return value;
    }
    return "";
  }

  fs::path dir_;
  fs::path root_;
};

TEST_F(StaticFilesTest, ServesAFileWithItsContentType) {
  auto response = serveStaticFile(root_, "/app.js");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "console.log(1);");
  EXPECT_EQ(response.contentType, "text/javascript; charset=utf-8");
  EXPECT_EQ(header(response, "Cache-Control"), "no-cache");
  EXPECT_EQ(header(response, "X-Content-Type-Options"), "nosniff");

  auto css = serveStaticFile(root_, "sub/style.CSS");
  EXPECT_EQ(css.status, 200);
  EXPECT_EQ(css.contentType, "text/css; charset=utf-8");
}

TEST_F(StaticFilesTest, ADirectoryAnswersItsIndex) {
  for (const char* path : {"", "/", "//"}) {
    auto response = serveStaticFile(root_, path);
    EXPECT_EQ(response.status, 200) << path;
    EXPECT_EQ(response.body, "<h1>home</h1>") << path;
    EXPECT_EQ(response.contentType, "text/html; charset=utf-8");
  }
  auto sub = serveStaticFile(root_, "/sub/");
  EXPECT_EQ(sub.status, 200);
  EXPECT_EQ(sub.body, "<p>sub</p>");
  EXPECT_EQ(serveStaticFile(root_, "/sub").body, "<p>sub</p>");
}

TEST_F(StaticFilesTest, MissingIsNotFound) {
  EXPECT_EQ(serveStaticFile(root_, "/nothing.js").status, 404);
  fs::remove(root_ / "sub" / "index.html");
  EXPECT_EQ(serveStaticFile(root_, "/sub/").status, 404);
  EXPECT_EQ(serveStaticFile(dir_ / "no-such-root", "/app.js").status, 404);
}

TEST_F(StaticFilesTest, RefusesPathsThatLeaveTheRoot) {
  // The file exists one level up: every spelling of "go up" must be refused, not resolved.
  for (const char* path :
       {"/../secret.txt", "../secret.txt", "/sub/../../secret.txt", "/sub/../index.html",
        "/./index.html", "..", "/sub/..", "/..\\secret.txt"}) {
    auto response = serveStaticFile(root_, path);
    EXPECT_EQ(response.status, 404) << path;
    EXPECT_EQ(response.body.find("do not serve"), std::string::npos) << path;
  }
  EXPECT_EQ(serveStaticFile(root_, std::string_view("/app.js\0x", 9)).status, 404);
  // A path that is still percent-encoded is a literal name, never decoded a second time.
  EXPECT_EQ(serveStaticFile(root_, "/%2e%2e/secret.txt").status, 404);
  // An absolute path is taken relative to the root.
  EXPECT_EQ(serveStaticFile(root_, (dir_ / "secret.txt").string()).status, 404);
}

TEST_F(StaticFilesTest, RefusesSymlinksOutOfTheRootButFollowsThoseInside) {
  fs::create_symlink(dir_ / "secret.txt", root_ / "leak.txt");
  fs::create_directory_symlink(dir_, root_ / "up");
  fs::create_symlink(root_ / "app.js", root_ / "alias.js");
  EXPECT_EQ(serveStaticFile(root_, "/leak.txt").status, 404);
  EXPECT_EQ(serveStaticFile(root_, "/up/secret.txt").status, 404);
  EXPECT_EQ(serveStaticFile(root_, "/up/").status, 404);
  auto alias = serveStaticFile(root_, "/alias.js");
  EXPECT_EQ(alias.status, 200);
  EXPECT_EQ(alias.body, "console.log(1);");
  // A directory whose index.html points out is refused too.
  fs::create_directory(root_ / "trap");
  fs::create_symlink(dir_ / "secret.txt", root_ / "trap" / "index.html");
  EXPECT_EQ(serveStaticFile(root_, "/trap/").status, 404);
}

TEST_F(StaticFilesTest, ARootThatIsItselfASymlinkServes) {
  fs::create_directory_symlink(root_, dir_ / "link");
  EXPECT_EQ(serveStaticFile(dir_ / "link", "/app.js").status, 200);
}

TEST_F(StaticFilesTest, OnlyRegularFiles) {
  ASSERT_EQ(::mkfifo((root_ / "pipe").c_str(), 0600), 0);
  EXPECT_EQ(serveStaticFile(root_, "/pipe").status, 404);
}

TEST(ContentTypeTest, ByExtension) {
  EXPECT_EQ(contentTypeFor("a.HTML"), "text/html; charset=utf-8");
  EXPECT_EQ(contentTypeFor("a.svg"), "image/svg+xml");
  EXPECT_EQ(contentTypeFor("a.json"), "application/json");
  EXPECT_EQ(contentTypeFor("a.woff2"), "font/woff2");
  EXPECT_EQ(contentTypeFor("Makefile"), "application/octet-stream");
  EXPECT_EQ(contentTypeFor("a.tar.gz"), "application/octet-stream");
}

}  // namespace
