// Mesos's `basic` HTTP authenticator (modules/auth): Authorization parsing, outcomes, the
// challenge, reloads, and that no secret reaches the log.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "modules/auth/basic_authenticator.h"
#include "tessera/api/logger.h"
#include "tessera/api/metrics.h"
#include "tessera/api/parameters.h"

namespace tessera::modules::auth {
namespace {

using Outcome = api::AuthenticationResult::Outcome;

// A Context with a log and metrics a test can read; the authenticator needs nothing else.
class RecordingContext final : public api::Context {
 public:
  class Log final : public api::Logger {
   public:
    void log(Level, std::string_view message) override {
      std::lock_guard lock(mutex);
      lines.emplace_back(message);
    }
    std::mutex mutex;
    std::vector<std::string> lines;
  };
  class Counters final : public api::Metrics {
   public:
    api::Counter& counter(std::string_view name) override {
      std::lock_guard lock(mutex);
      return counters[std::string(name)];
    }
    api::Timer& timer(std::string_view) override { std::abort(); }
    void gauge(std::string_view, std::function<double()>) override {}
    void removeGauge(std::string_view) override {}
    std::mutex mutex;
    std::map<std::string, api::Counter> counters;
  };
  api::Logger& logger() override { return log; }
  api::Metrics& metrics() override { return counters; }
  api::Executor& executor() override { std::abort(); }
  api::HttpRouter& http() override { std::abort(); }
  std::string_view role() const override { return "master"; }
  std::string_view workDir() const override { return ""; }
  api::StateStore& state() override { std::abort(); }

  Log log;
  Counters counters;
};

std::string base64(std::string_view text) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < text.size(); i += 3) {
    uint32_t n = (uint8_t(text[i]) << 16) | (uint8_t(text[i + 1]) << 8) | uint8_t(text[i + 2]);
    out += {kAlphabet[n >> 18], kAlphabet[(n >> 12) & 63], kAlphabet[(n >> 6) & 63],
            kAlphabet[n & 63]};
  }
  if (i + 1 == text.size()) {
    uint32_t n = uint8_t(text[i]) << 16;
    out += {kAlphabet[n >> 18], kAlphabet[(n >> 12) & 63], '=', '='};
  } else if (i + 2 == text.size()) {
    uint32_t n = (uint8_t(text[i]) << 16) | (uint8_t(text[i + 1]) << 8);
    out += {kAlphabet[n >> 18], kAlphabet[(n >> 12) & 63], kAlphabet[(n >> 6) & 63], '='};
  }
  return out;
}

api::HttpRequest withAuthorization(const std::string& value) {
  api::HttpRequest request;
  request.method = "GET";
  request.path = "/state";
  request.headers["authorization"] = value;
  return request;
}

class BasicAuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() /
             ("tessera-basic-" + std::to_string(::getpid()) + ".json"))
                .string();
    write(R"({"credentials":[{"principal":"ops","secret":"s3cr3t-ops"}]})");
  }
  void TearDown() override { std::filesystem::remove(path_); }
  void write(const std::string& text) {
    std::ofstream(path_ + ".next") << text;
    std::filesystem::rename(path_ + ".next", path_);
  }
  std::unique_ptr<BasicAuthenticator> make() {
    api::Parameters parameters({{"credentials", "file://" + path_}, {"realm", "unit"}});
    auto created = BasicAuthenticator::create(parameters, context_);
    EXPECT_TRUE(created) << created.status().message();
    return std::unique_ptr<BasicAuthenticator>(
        static_cast<BasicAuthenticator*>(created.value().release()));
  }

  RecordingContext context_;
  std::string path_;
};

TEST(BasicAuthorizationTest, ParsesTheHeader) {
  auto pair = parseBasicAuthorization("Basic " + base64("ops:a:b"));
  ASSERT_TRUE(pair);
  EXPECT_EQ(pair->first, "ops");
  EXPECT_EQ(pair->second, "a:b");
  EXPECT_TRUE(parseBasicAuthorization("bAsIc " + base64("ops:x")));
  EXPECT_FALSE(parseBasicAuthorization("Bearer " + base64("ops:x")));
  EXPECT_FALSE(parseBasicAuthorization("Basic !!!!"));
  EXPECT_FALSE(parseBasicAuthorization("Basic " + base64("nocolon")));
  EXPECT_FALSE(parseBasicAuthorization("Basic " + base64(":secret")));
  EXPECT_FALSE(parseBasicAuthorization("Basic"));
}

TEST_F(BasicAuthenticatorTest, RightWrongAndNoCredentials) {
  auto authenticator = make();
  auto right =
      authenticator->authenticateNow(withAuthorization("Basic " + base64("ops:s3cr3t-ops")));
  EXPECT_EQ(right.outcome, Outcome::kAuthenticated);
  EXPECT_EQ(right.principal, "ops");

  auto wrong = authenticator->authenticateNow(withAuthorization("Basic " + base64("ops:nope")));
  EXPECT_EQ(wrong.outcome, Outcome::kUnauthorized);
  EXPECT_EQ(wrong.challenge, "Basic realm=\"unit\"");
  EXPECT_FALSE(wrong.principal);

  api::HttpRequest none;
  auto missing = authenticator->authenticateNow(none);
  EXPECT_EQ(missing.outcome, Outcome::kUnauthorized);
  EXPECT_EQ(missing.challenge, "Basic realm=\"unit\"");

  EXPECT_EQ(context_.counters.counters["authenticator/basic/successes"].value(), 1u);
  EXPECT_EQ(context_.counters.counters["authenticator/basic/failures"].value(), 1u);
}

TEST_F(BasicAuthenticatorTest, NeedsTheCredentialsParameter) {
  api::Parameters parameters;
  auto created = BasicAuthenticator::create(parameters, context_);
  ASSERT_FALSE(created);
  EXPECT_NE(created.status().message().find("credentials"), std::string::npos);
}

TEST_F(BasicAuthenticatorTest, ReloadsAndKeepsTheOldOnABrokenFileWithoutLoggingSecrets) {
  auto authenticator = make();
  const auto header = [](const char* pair) { return withAuthorization("Basic " + base64(pair)); };
  ASSERT_EQ(authenticator->authenticateNow(header("ops:s3cr3t-ops")).outcome,
            Outcome::kAuthenticated);
  write("ops rotated-s3cr3t\n");
  // The file is looked at again within a quarter second.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (authenticator->authenticateNow(header("ops:rotated-s3cr3t")).outcome !=
             Outcome::kAuthenticated &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(authenticator->authenticateNow(header("ops:rotated-s3cr3t")).outcome,
            Outcome::kAuthenticated);
  EXPECT_EQ(authenticator->authenticateNow(header("ops:s3cr3t-ops")).outcome,
            Outcome::kUnauthorized);

  write(R"({"credentials":[{"principal":"ops","secret":"broken-s3cr3t"})");
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (context_.counters.counters["authenticator/basic/reload_failures"].value() == 0 &&
         std::chrono::steady_clock::now() < until) {
    authenticator->authenticateNow(header("ops:rotated-s3cr3t"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(context_.counters.counters["authenticator/basic/reload_failures"].value(), 1u);
  EXPECT_EQ(authenticator->authenticateNow(header("ops:rotated-s3cr3t")).outcome,
            Outcome::kAuthenticated);
  std::lock_guard lock(context_.log.mutex);
  ASSERT_FALSE(context_.log.lines.empty());
  for (const auto& line : context_.log.lines) {
    EXPECT_EQ(line.find("s3cr3t"), std::string::npos) << line;
  }
}

}  // namespace
}  // namespace tessera::modules::auth
