// The credentials file of modules/auth: both of Mesos's forms, errors that never quote a
// secret, and reloads that keep the previous credentials when the new file is broken.
#include "modules/auth/credentials.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace tessera::modules::auth {
namespace {

class TempFile {
 public:
  TempFile() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "tessera-credentials-XXXXXX").string();
    int fd = ::mkstemp(pattern.data());
    EXPECT_GE(fd, 0);
    ::close(fd);
    path_ = pattern;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  void write(const std::string& text) {
    // Through a rename, as editors and config managers do: the change is atomic.
    std::string next = path_ + ".next";
    std::ofstream(next) << text;
    std::filesystem::rename(next, path_);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(CredentialsParseTest, ReadsMesosJson) {
  auto parsed = parseCredentials(
      R"({"credentials":[{"principal":"alice","secret":"s1"},{"principal":"bob","secret":"s 2"}]})");
  ASSERT_TRUE(parsed) << parsed.status().message();
  EXPECT_EQ(parsed->size(), 2u);
  EXPECT_EQ(parsed->at("alice"), "s1");
  EXPECT_EQ(parsed->at("bob"), "s 2");
}

TEST(CredentialsParseTest, ReadsPrincipalSecretLines) {
  auto parsed = parseCredentials("# comment\nalice s1\n\n  bob\ts2  \r\n");
  ASSERT_TRUE(parsed) << parsed.status().message();
  EXPECT_EQ(parsed->size(), 2u);
  EXPECT_EQ(parsed->at("alice"), "s1");
  EXPECT_EQ(parsed->at("bob"), "s2");
}

TEST(CredentialsParseTest, ErrorsNameTheEntryButNeverTheSecret) {
  auto bad = parseCredentials("alice topsecret1\nbob topsecret2 extra\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.status().message().find("line 2"), std::string::npos);
  EXPECT_EQ(bad.status().message().find("topsecret"), std::string::npos);

  auto json = parseCredentials(R"({"credentials":[{"principal":"alice","secret":"topsecret1"},)");
  ASSERT_FALSE(json);
  EXPECT_EQ(json.status().message().find("topsecret"), std::string::npos);

  auto noSecret = parseCredentials(R"({"credentials":[{"principal":"alice"}]})");
  ASSERT_FALSE(noSecret);
  EXPECT_NE(noSecret.status().message().find("alice"), std::string::npos);

  EXPECT_FALSE(parseCredentials("lonely\n"));
  EXPECT_FALSE(parseCredentials(R"({"other":[]})"));
}

TEST(CredentialsParseTest, FileUrlOrPath) {
  EXPECT_EQ(credentialsPath("file:///etc/creds"), "/etc/creds");
  EXPECT_EQ(credentialsPath("/etc/creds"), "/etc/creds");
}

TEST(CredentialsParseTest, ConstantTimeEquals) {
  EXPECT_TRUE(constantTimeEquals("abc", "abc"));
  EXPECT_FALSE(constantTimeEquals("abc", "abd"));
  EXPECT_FALSE(constantTimeEquals("abc", "abcd"));
  EXPECT_FALSE(constantTimeEquals("", "a"));
  EXPECT_TRUE(constantTimeEquals("", ""));
}

TEST(CredentialsFileTest, ChecksAndReloadsWhenTheFileChanges) {
  TempFile file;
  file.write("alice one\n");
  auto opened = CredentialsFile::open(file.path(), std::chrono::milliseconds(0));
  ASSERT_TRUE(opened) << opened.status().message();
  auto& credentials = **opened;
  EXPECT_TRUE(credentials.check("alice", "one"));
  EXPECT_FALSE(credentials.check("alice", "two"));
  EXPECT_FALSE(credentials.check("bob", "one"));

  file.write(
      R"({"credentials":[{"principal":"alice","secret":"two"},{"principal":"bob","secret":"three"}]})");
  EXPECT_EQ(credentials.refresh(), std::nullopt);
  EXPECT_EQ(credentials.reloads(), 1u);
  EXPECT_FALSE(credentials.check("alice", "one"));
  EXPECT_TRUE(credentials.check("alice", "two"));
  EXPECT_TRUE(credentials.check("bob", "three"));
}

TEST(CredentialsFileTest, ABrokenReloadKeepsTheOldCredentials) {
  TempFile file;
  file.write("alice one\n");
  auto opened = CredentialsFile::open(file.path(), std::chrono::milliseconds(0));
  ASSERT_TRUE(opened);
  auto& credentials = **opened;
  file.write("alice newsecret extra-field\n");
  auto refused = credentials.refresh();
  ASSERT_TRUE(refused.has_value());
  EXPECT_NE(refused->find(file.path()), std::string::npos);
  EXPECT_EQ(refused->find("newsecret"), std::string::npos);
  EXPECT_TRUE(credentials.check("alice", "one"));
  EXPECT_EQ(credentials.reloads(), 0u);
  // Reported once per version of the file, not on every look.
  EXPECT_EQ(credentials.refresh(), std::nullopt);
  // A fixed file is taken.
  file.write("alice fixed\n");
  EXPECT_EQ(credentials.refresh(), std::nullopt);
  EXPECT_TRUE(credentials.check("alice", "fixed"));
}

TEST(CredentialsFileTest, MissingFileIsAnError) {
  auto opened = CredentialsFile::open("/nonexistent/tessera/credentials");
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.status().message().find("/nonexistent/tessera/credentials"), std::string::npos);
}

TEST(CredentialsFileTest, RefreshIsRateLimited) {
  TempFile file;
  file.write("alice one\n");
  auto opened = CredentialsFile::open(file.path(), std::chrono::hours(1));
  ASSERT_TRUE(opened);
  auto& credentials = **opened;
  credentials.refresh(true);
  file.write("alice two\n");
  EXPECT_EQ(credentials.refresh(), std::nullopt);
  EXPECT_TRUE(credentials.check("alice", "one"));  // not looked at yet
  EXPECT_EQ(credentials.refresh(/*force=*/true), std::nullopt);
  EXPECT_TRUE(credentials.check("alice", "two"));
}

}  // namespace
}  // namespace tessera::modules::auth
