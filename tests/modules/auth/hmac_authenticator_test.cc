// The transport authenticator of modules/auth: a peer's answer to a challenge proves its
// secret without containing it, and only the right secret for the right challenge passes.
#include "modules/auth/hmac_authenticator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tessera::modules::auth {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<HmacAuthenticator> master() {
  auto file = CredentialsFile::fromFlag(R"({"credentials":[{"principal":"agent","secret":"s3"}]})");
  EXPECT_TRUE(file) << file.status().toString();
  return std::make_unique<HmacAuthenticator>(nullptr, std::move(file).value(), std::nullopt);
}

HmacAuthenticator peer(const std::string& principal, const std::string& secret) {
  return HmacAuthenticator(nullptr, nullptr, std::make_pair(principal, secret));
}

TEST(HmacAuthenticatorTest, TheRightSecretPassesAndTheAnswerDoesNotContainIt) {
  auto verifier = master();
  auto agent = peer("agent", "s3");
  auto response = agent.respond("challenge-1");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->find("s3"), std::string::npos);
  EXPECT_TRUE(verifier->verifyNow({"HMAC-SHA256", "agent", "challenge-1", *response}));
}

TEST(HmacAuthenticatorTest, WrongSecretOtherChallengeUnknownPrincipalOrMechanismFail) {
  auto verifier = master();
  auto right = *peer("agent", "s3").respond("c1");
  EXPECT_FALSE(
      verifier->verifyNow({"HMAC-SHA256", "agent", "c1", *peer("agent", "x").respond("c1")}));
  EXPECT_FALSE(verifier->verifyNow({"HMAC-SHA256", "agent", "c2", right}));  // a replay
  EXPECT_FALSE(
      verifier->verifyNow({"HMAC-SHA256", "nobody", "c1", *peer("nobody", "s3").respond("c1")}));
  EXPECT_FALSE(verifier->verifyNow({"CRAM-MD5", "agent", "c1", right}));
  EXPECT_FALSE(verifier->verifyNow({"HMAC-SHA256", "agent", "", *peer("agent", "s3").respond("")}));
}

TEST(HmacAuthenticatorTest, ParsesMesosCredentialForms) {
  auto json = parseCredential(R"({"principal":"a","secret":"b"})");
  ASSERT_TRUE(json);
  EXPECT_EQ(json->first, "a");
  EXPECT_EQ(json->second, "b");
  auto line = parseCredential("a b\n");
  ASSERT_TRUE(line);
  EXPECT_EQ(line->second, "b");
  auto list = parseCredential(R"({"credentials":[{"principal":"a","secret":"b"}]})");
  ASSERT_TRUE(list);
  auto broken = parseCredential(R"({"principal":"a","secret":"hidden)");
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.status().message().find("hidden"), std::string::npos);
  auto two = parseCredential("a b\nc d\n");
  ASSERT_FALSE(two);
  EXPECT_THAT(two.status().message(), HasSubstr("exactly one principal"));
}

TEST(HmacAuthenticatorTest, WithoutACredentialItCannotRespond) {
  auto verifier = master();
  EXPECT_FALSE(verifier->principal());
  EXPECT_FALSE(verifier->respond("c"));
}

}  // namespace
}  // namespace tessera::modules::auth
