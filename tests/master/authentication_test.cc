// The scheduler API behind an authenticator module (--http_framework_authenticators), with and
// without --authenticate_frameworks: the test Basic authenticator knows alice:secret and
// bob:hunter2.

#include <gmock/gmock.h>

#include "kernel/master/authentication_cache.h"
#include "tests/master/master_fixture.h"

namespace tessera::kernel::master::testing {
namespace {

using ::testing::HasSubstr;

constexpr const char* kAliceInfo =
    R"({"user":"test","name":"fw","principal":"alice","roles":["web"],)"
    R"("capabilities":[{"type":"MULTI_ROLE"}]})";
constexpr const char* kBobInfo = R"({"user":"test","name":"fw","principal":"bob","roles":["web"],)"
                                 R"("capabilities":[{"type":"MULTI_ROLE"}]})";

std::string reviveJson(const TestScheduler& scheduler) {
  return fmt::format(R"({{"framework_id":{{"value":"{}"}},"type":"REVIVE"}})",
                     scheduler.frameworkId);
}

class AuthenticationTest : public MasterFixture {
 protected:
  /// Starts the master and subscribes alice with her secret.
  std::unique_ptr<TestScheduler> subscribedAlice() {
    startMaster();
    auto scheduler = makeScheduler();
    scheduler->authorization = basic("alice", "secret");
    EXPECT_EQ(scheduler->subscribe(kAliceInfo), 200) << scheduler->errorBody;
    return scheduler;
  }
};

std::string basicHeader(const std::string& principal, const std::string& secret) {
  return "Basic " + net::base64Encode(principal + ":" + secret);
}

TEST_F(AuthenticationTest, SubscribeWithoutCredentialsIs401WithAChallenge) {
  useAuthenticator(/*required=*/true);
  startMaster();
  auto scheduler = makeScheduler();
  EXPECT_EQ(scheduler->subscribe(kAliceInfo), 401);
  EXPECT_THAT(scheduler->head, HasSubstr("WWW-Authenticate: Basic realm=\"tessera\""));
  EXPECT_THAT(scheduler->errorBody, HasSubstr("\"message\""));
  EXPECT_THAT(scheduler->errorBody, HasSubstr("not authenticated"));
  EXPECT_EQ(getJson("/state")->getArray("frameworks")->size(), 0u);
}

TEST_F(AuthenticationTest, GoodCredentialsSubscribeAndEveryCallIsAuthenticated) {
  useAuthenticator(/*required=*/true);
  startMaster();
  auto scheduler = makeScheduler();
  scheduler->authorization = basic("alice", "secret");
  ASSERT_EQ(scheduler->subscribe(kAliceInfo), 200) << scheduler->errorBody;
  EXPECT_FALSE(scheduler->frameworkId.empty());
  EXPECT_EQ(scheduler->call(reviveJson(*scheduler)).status, 202);

  // Calls on the subscription are authenticated too (Mesos authenticates every call).
  scheduler->authorization.clear();
  auto anonymous = scheduler->call(reviveJson(*scheduler));
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(anonymous.header("WWW-Authenticate").value_or(""), "Basic realm=\"tessera\"");
  // Someone else's credentials: authenticated, but not the framework's principal.
  scheduler->authorization = basic("bob", "hunter2");
  auto other = scheduler->call(reviveJson(*scheduler));
  EXPECT_EQ(other.status, 403);
  EXPECT_THAT(other.body, HasSubstr("'bob'"));
  EXPECT_EQ(getJson("/state")->getArray("frameworks")->size(), 1u);
}

TEST_F(AuthenticationTest, WrongSecretIs401) {
  useAuthenticator(/*required=*/true);
  startMaster();
  auto scheduler = makeScheduler();
  scheduler->authorization = basic("alice", "not-the-secret");
  EXPECT_EQ(scheduler->subscribe(kAliceInfo), 401);
  EXPECT_THAT(scheduler->head, HasSubstr("WWW-Authenticate: Basic"));
  auto garbage = makeScheduler();
  garbage->authorization = "Basic !!!not-base64";
  EXPECT_EQ(garbage->subscribe(kAliceInfo), 401);
}

TEST_F(AuthenticationTest, PrincipalOtherThanTheAuthenticatedOneIs403) {
  useAuthenticator(/*required=*/true);
  startMaster();
  auto scheduler = makeScheduler();
  scheduler->authorization = basic("alice", "secret");
  EXPECT_EQ(scheduler->subscribe(kBobInfo), 403);
  EXPECT_THAT(scheduler->errorBody, HasSubstr("authenticated principal 'alice'"));
  EXPECT_THAT(scheduler->errorBody, HasSubstr("'bob'"));
  EXPECT_EQ(getJson("/state")->getArray("frameworks")->size(), 0u);
}

TEST_F(AuthenticationTest, WithoutAuthenticateFrameworksAuthenticationIsOptional) {
  useAuthenticator(/*required=*/false);
  startMaster();
  auto anonymous = makeScheduler();
  EXPECT_EQ(anonymous->subscribe(kFrameworkInfo), 200) << anonymous->errorBody;
  EXPECT_EQ(anonymous->call(reviveJson(*anonymous)).status, 202);
  auto alice = makeScheduler();
  alice->authorization = basic("alice", "secret");
  EXPECT_EQ(alice->subscribe(kAliceInfo), 200) << alice->errorBody;
  // Authenticated as someone else than framework_info says: still refused.
  auto mismatch = makeScheduler();
  mismatch->authorization = basic("alice", "secret");
  EXPECT_EQ(mismatch->subscribe(kBobInfo), 403);
}

TEST_F(AuthenticationTest, AuthenticateFrameworksWithoutAnAuthenticatorIsRefused) {
  options.authenticateFrameworks = true;
  MasterServices services;
  services.runtime = &runtime_;
  services.metrics = &metrics_;
  services.router = router_;
  services.state = store;
  services.allocator = allocator_;
  services.allocatorExecutor = host_->executorOf(allocator_);
  Master master(services, options);
  api::Status started = master.start();
  EXPECT_FALSE(started.isOk());
  EXPECT_THAT(started.message(), HasSubstr("--authenticate_frameworks"));
}

// --- remembered authentications (AuthenticationCache, docs/design.md) ------------------------

TEST(AuthenticationCacheTest, RemembersBasicSuccessesForTheirTtlAndGeneration) {
  using Clock = AuthenticationCache::Clock;
  AuthenticationCache cache(std::chrono::milliseconds(1000), 64);
  const Clock::time_point t0 = Clock::now();
  const std::string alice = basicHeader("alice", "secret");
  EXPECT_FALSE(cache.find(alice, 0, t0));
  cache.remember(alice, "alice", 0, t0);
  EXPECT_EQ(cache.find(alice, 0, t0 + 999ms).value_or(""), "alice");
  // Another secret for the same principal is another header: not remembered.
  EXPECT_FALSE(cache.find(basicHeader("alice", "secreT"), 0, t0));
  // A reload since: forgotten (and dropped).
  EXPECT_FALSE(cache.find(alice, 1, t0));
  EXPECT_EQ(cache.size(), 0u);
  // Past its TTL: forgotten.
  cache.remember(alice, "alice", 1, t0);
  EXPECT_FALSE(cache.find(alice, 1, t0 + 1000ms));
  // Remembered under the count of before a reload: never taken after it.
  cache.remember(alice, "alice", 1, t0);
  EXPECT_FALSE(cache.find(alice, 2, t0));
}

TEST(AuthenticationCacheTest, OnlyTheBasicSchemeAndAtMostItsCapacity) {
  using Clock = AuthenticationCache::Clock;
  EXPECT_TRUE(AuthenticationCache::cacheable("bAsIc YWxpY2U6c2VjcmV0"));
  EXPECT_FALSE(AuthenticationCache::cacheable("Bearer token"));
  EXPECT_FALSE(AuthenticationCache::cacheable("Basic "));
  AuthenticationCache cache(std::chrono::milliseconds(1000), 4);
  const Clock::time_point t0 = Clock::now();
  cache.remember("Bearer token", "alice", 0, t0);
  EXPECT_EQ(cache.size(), 0u);
  for (int i = 0; i < 10; ++i) {
    cache.remember(basicHeader(fmt::format("p{}", i), "s"), fmt::format("p{}", i), 0,
                   t0 + std::chrono::milliseconds(i));
    EXPECT_LE(cache.size(), 4u);
  }
  // The newest are kept, the first to expire went.
  EXPECT_EQ(cache.find(basicHeader("p9", "s"), 0, t0).value_or(""), "p9");
  EXPECT_FALSE(cache.find(basicHeader("p0", "s"), 0, t0));
  // TTL 0: nothing is remembered.
  AuthenticationCache off(std::chrono::milliseconds(0), 4);
  off.remember(basicHeader("p", "s"), "p", 0, t0);
  EXPECT_EQ(off.size(), 0u);
}

// Repeat calls with credentials the authenticator accepted skip it; a reload of the modules
// that removes the principal makes its next call 401 at once (the TTL is an hour here, so only
// the reload can have made it forget), and failures are never remembered.
TEST_F(AuthenticationTest, RepeatCallsSkipTheAuthenticatorUntilAReloadRemovesThePrincipal) {
  TempDir dir;
  const auto file = dir.write("credentials", "alice:secret\nbob:hunter2\n");
  options.schedulerAuthenticationTtl = std::chrono::hours(1);
  useAuthenticator(/*required=*/true, {{"credentials_file", file.string()}});
  auto scheduler = subscribedAlice();
  ASSERT_FALSE(HasFailure());
  api::Counter& asked = metrics_.counter("test_authenticator/requests");
  const uint64_t afterSubscribe = asked.value();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(scheduler->call(reviveJson(*scheduler)).status, 202);
  EXPECT_EQ(asked.value(), afterSubscribe) << "repeat calls went to the authenticator";

  // Wrong secrets are asked about every time.
  scheduler->authorization = basic("alice", "wrong");
  EXPECT_EQ(scheduler->call(reviveJson(*scheduler)).status, 401);
  EXPECT_EQ(scheduler->call(reviveJson(*scheduler)).status, 401);
  EXPECT_EQ(asked.value(), afterSubscribe + 2);

  // alice is removed; the reload completes before reloadAll() returns.
  dir.write("credentials", "bob:hunter2\n");
  EXPECT_TRUE(host_->reloadAll().empty());
  scheduler->authorization = basic("alice", "secret");
  auto refused = scheduler->call(reviveJson(*scheduler));
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(refused.header("WWW-Authenticate").value_or(""), "Basic realm=\"tessera\"");
  EXPECT_EQ(scheduler->call(reviveJson(*scheduler)).status, 401);
  EXPECT_EQ(asked.value(), afterSubscribe + 4);
}

TEST_F(AuthenticationTest, WithATtlOfZeroEveryCallAsksTheAuthenticator) {
  options.schedulerAuthenticationTtl = std::chrono::milliseconds(0);
  useAuthenticator(/*required=*/true);
  auto scheduler = subscribedAlice();
  ASSERT_FALSE(HasFailure());
  api::Counter& asked = metrics_.counter("test_authenticator/requests");
  const uint64_t afterSubscribe = asked.value();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(scheduler->call(reviveJson(*scheduler)).status, 202);
  EXPECT_EQ(asked.value(), afterSubscribe + 3);
}

// The master stops while the authenticator still holds requests: each is answered (503, or
// 404 when it came too late for the route) and nothing runs on the gone master.
TEST_F(AuthenticationTest, StoppingWhileAuthenticatingAnswersEveryRequest) {
  useAuthenticator(/*required=*/true);
  startMaster();
  std::vector<std::unique_ptr<TestScheduler>> schedulers;
  for (int i = 0; i < 4; ++i) {
    schedulers.push_back(makeScheduler());
    schedulers.back()->authorization = basic("alice", "secret");
    schedulers.back()->extraHeaders = "X-Test-Authentication-Delay-Ms: 300\r\n";
  }
  std::vector<int> statuses(schedulers.size(), 0);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < schedulers.size(); ++i) {
    threads.emplace_back([&, i] { statuses[i] = schedulers[i]->subscribe(kAliceInfo); });
  }
  // Most requests reach the authenticator by then; a late one gets a 404, also fine.
  std::this_thread::sleep_for(100ms);
  master_.reset();
  for (auto& thread : threads) thread.join();
  for (int status : statuses) EXPECT_TRUE(status == 503 || status == 404) << status;
}

}  // namespace
}  // namespace tessera::kernel::master::testing
