#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "modules/auth/local_authorizer.h"

namespace tessera::modules::auth {
namespace {

namespace fs = std::filesystem;

api::AuthorizationRequest weights(std::string principal) {
  api::AuthorizationRequest request;
  request.subject = std::move(principal);
  request.action = "UPDATE_WEIGHT";
  request.role = "prod";
  return request;
}

void write(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

class AuthorizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("authz_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(dir_);
    path_ = dir_ / "acls.json";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Makes the next write look changed even within the file system's time granularity.
  void bumpTime() {
    fs::last_write_time(path_, fs::last_write_time(path_) + std::chrono::seconds(2));
  }

  fs::path dir_;
  fs::path path_;
};

constexpr const char* kOpsOnly = R"({"permissive": false,
  "update_weights": [{"principals": {"values": ["ops"]}, "roles": {"type": "ANY"}}]})";

TEST_F(AuthorizerTest, ReloadsAChangedFileWithoutRestart) {
  write(path_, kOpsOnly);
  auto acls = parseAcls(kOpsOnly);
  ASSERT_TRUE(acls);
  LocalAuthorizer authorizer(nullptr, "file://" + path_.string(), std::move(acls).value());
  EXPECT_TRUE(authorizer.decide(weights("ops")));
  EXPECT_FALSE(authorizer.decide(weights("dev")));

  write(path_, R"({"permissive": false,
    "update_weights": [{"principals": {"values": ["dev"]}, "roles": {"type": "ANY"}}]})");
  bumpTime();
  EXPECT_TRUE(authorizer.decide(weights("dev")));
  EXPECT_FALSE(authorizer.decide(weights("ops")));
}

TEST_F(AuthorizerTest, NoticesARenameOfTheSameSizeWithinOneTimeTick) {
  write(path_, kOpsOnly);
  auto acls = parseAcls(kOpsOnly);
  ASSERT_TRUE(acls);
  LocalAuthorizer authorizer(nullptr, "file://" + path_.string(), std::move(acls).value());
  std::string next = kOpsOnly;
  next.replace(next.find("ops"), 3, "dev");  // same size
  write(dir_ / "next.json", next);
  fs::last_write_time(dir_ / "next.json", fs::last_write_time(path_));
  fs::rename(dir_ / "next.json", path_);
  EXPECT_TRUE(authorizer.decide(weights("dev")));
  EXPECT_FALSE(authorizer.decide(weights("ops")));
}

TEST_F(AuthorizerTest, ABrokenFileKeepsTheAclsInForce) {
  write(path_, kOpsOnly);
  auto acls = parseAcls(kOpsOnly);
  ASSERT_TRUE(acls);
  LocalAuthorizer authorizer(nullptr, path_.string(), std::move(acls).value());
  write(path_, R"({"permissive": true, "update_weights": [)");
  bumpTime();
  EXPECT_FALSE(authorizer.reloadIfChanged());
  EXPECT_TRUE(authorizer.decide(weights("ops")));
  EXPECT_FALSE(authorizer.decide(weights("dev")));
}

TEST_F(AuthorizerTest, AnswersThroughTheModuleInterface) {
  auto acls = parseAcls(kOpsOnly);
  ASSERT_TRUE(acls);
  LocalAuthorizer authorizer(nullptr, kOpsOnly, std::move(acls).value());
  std::optional<bool> answer;
  authorizer.authorized(weights("dev"), [&](api::Result<bool> result) {
    ASSERT_TRUE(result);
    answer = *result;
  });
  ASSERT_TRUE(answer);
  EXPECT_FALSE(*answer);
}

}  // namespace
}  // namespace tessera::modules::auth
