// The Marathon module's REST API and app store without a cluster: the routes are called
// directly (a recording router), the engine is the real AppScheduler on a recording driver, the
// store is an in-memory state store shared by successive instances (a restart or a new leader).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "modules/framework_marathon/marathon_framework.h"
#include "tests/modules/framework_marathon/sched_fakes.h"

namespace tessera::modules::marathon {
namespace {

using testing::FakeDriver;
using testing::FakeExecutor;
using ::testing::HasSubstr;

// The shared stub Context on the inline FakeExecutor: routes called directly, a real in-memory
// store shared by successive instances.
class ApiContext final : public tessera::testing::StubContext {
 public:
  ApiContext() : StubContext(executor_) {}

 private:
  FakeExecutor executor_;
};

class FakeHost final : public api::FrameworkHost {
 public:
  bool leading() const override { return true; }
  std::optional<std::string> leaderAddress() const override { return "127.0.0.1:8080"; }
  std::string advertisedAddress() const override { return "127.0.0.1:8080"; }
  void abdicate() override { ++abdications; }
  int abdications = 0;
};

class MarathonApiTest : public ::testing::Test {
 protected:
  void SetUp() override { startInstance(); }

  // A new instance on the same store: what a restarted or newly elected Marathon sees.
  void startInstance() {
    if (module_) module_->stop();
    module_.reset();
    driver_ = std::make_unique<FakeDriver>();
    api::Parameters parameters;
    auto created = MarathonFramework::create(parameters, context_);
    ASSERT_TRUE(created) << created.status().message();
    module_.reset(static_cast<MarathonFramework*>(std::move(created).value().release()));
    module_->attached(host_);
    module_->start(*driver_);
  }

  void TearDown() override {
    if (module_) module_->stop();
  }

  api::HttpResponse call(const std::string& method, const std::string& target,
                         const std::string& body = "") {
    api::HttpRequest request;
    request.method = method;
    auto question = target.find('?');
    request.path = target.substr(0, question);
    if (question != std::string::npos) request.query = target.substr(question + 1);
    request.body = body;
    request.remoteAddress = "127.0.0.1:4000";
    api::HttpResponse response{0, "", {}, ""};
    auto* handler = context_.router.find(request.path);
    if (handler == nullptr) return api::HttpResponse{404, "", {}, "no route"};
    (*handler)(request, [&](api::HttpResponse answer) { response = std::move(answer); });
    return response;
  }

  static std::string header(const api::HttpResponse& response, const std::string& name) {
    for (const auto& [key, value] : response.headers) {
      if (key == name) return value;
    }
    return "";
  }

  ApiContext context_;
  FakeHost host_;
  std::unique_ptr<FakeDriver> driver_;
  std::unique_ptr<MarathonFramework> module_;
};

TEST_F(MarathonApiTest, AppsAreCreatedReadUpdatedAndDeleted) {
  auto created = call("POST", "/v2/apps", R"({"id": "/prod/web", "cmd": "sleep 100"})");
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_FALSE(header(created, "Marathon-Deployment-Id").empty());
  EXPECT_THAT(created.body, HasSubstr(R"("id":"/prod/web")"));

  auto read = call("GET", "/v2/apps//prod/web/");
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_THAT(read.body, HasSubstr(R"("app":{"id":"/prod/web")"));
  EXPECT_THAT(read.body, HasSubstr(R"("tasks":[])"));

  // A new deployment while the first runs is refused, unless forced (any case).
  auto locked = call("PUT", "/v2/apps/prod/web", R"({"instances": 3})");
  ASSERT_EQ(locked.status, 409) << locked.body;
  EXPECT_THAT(locked.body, HasSubstr(header(created, "Marathon-Deployment-Id")));
  auto scaled = call("PUT", "/v2/apps/prod/web?force=TRUE", R"({"instances": 3})");
  ASSERT_EQ(scaled.status, 200) << scaled.body;
  EXPECT_THAT(scaled.body, HasSubstr("deploymentId"));
  EXPECT_THAT(call("GET", "/v2/apps/prod/web").body, HasSubstr(R"("instances":3)"));
  auto versions = call("GET", "/v2/apps/prod/web/versions");
  EXPECT_EQ(versions.status, 200);
  EXPECT_EQ(std::count(versions.body.begin(), versions.body.end(), 'Z'), 2);

  EXPECT_EQ(call("GET", "/v2/apps?label=a").body, R"({"apps":[]})");
  EXPECT_THAT(call("GET", "/v2/groups").body, HasSubstr(R"("id":"/prod")"));

  auto deleted = call("DELETE", "/v2/apps/prod/web?force=true");
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(call("GET", "/v2/apps/prod/web").status, 404);
}

TEST_F(MarathonApiTest, ErrorsAreMarathons) {
  EXPECT_EQ(call("POST", "/v2/apps", "{").status, 400);
  auto invalid = call("POST", "/v2/apps", R"({"id": "x", "cmd": "c", "mem": -5})");
  EXPECT_EQ(invalid.status, 422);
  EXPECT_THAT(invalid.body, HasSubstr(R"("path":"/mem")"));
  ASSERT_EQ(call("POST", "/v2/apps", R"({"id": "x", "cmd": "c"})").status, 201);
  auto duplicate = call("POST", "/v2/apps", R"({"id": "/x", "cmd": "c"})");
  EXPECT_EQ(duplicate.status, 409);
  EXPECT_THAT(duplicate.body, HasSubstr("An app with id [/x] already exists."));
  auto missing = call("GET", "/v2/apps/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_THAT(missing.body, HasSubstr(R"("message":"App '/nope' does not exist")"));
  EXPECT_EQ(call("DELETE", "/v2/deployments/none").status, 404);
}

TEST_F(MarathonApiTest, ANewInstanceHasEveryAppFromTheStore) {
  ASSERT_EQ(call("POST", "/v2/apps", R"({"id": "/a/b", "cmd": "c", "instances": 4})").status, 201);
  ASSERT_EQ(call("POST", "/v2/apps", R"({"id": "/c", "cmd": "c"})").status, 201);
  ASSERT_EQ(call("PUT", "/v2/apps/c?force=true", R"({"cmd": "d"})").status, 200);
  const std::string before = call("GET", "/v2/apps/a/b").body;

  startInstance();
  auto read = call("GET", "/v2/apps/a/b");
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_THAT(read.body, HasSubstr(R"("instances":4)"));
  auto c = call("GET", "/v2/apps/c");
  EXPECT_THAT(c.body, HasSubstr(R"("cmd":"d")"));
  auto versions = call("GET", "/v2/apps/c/versions");
  EXPECT_EQ(std::count(versions.body.begin(), versions.body.end(), 'Z'), 2);
}

TEST_F(MarathonApiTest, LeaderInfoAndAbdication) {
  auto leader = call("GET", "/v2/leader");
  EXPECT_EQ(leader.body, R"({"leader":"127.0.0.1:8080"})");
  auto info = call("GET", "/v2/info");
  EXPECT_THAT(info.body, HasSubstr(R"("name":"marathon")"));
  EXPECT_THAT(info.body, HasSubstr(R"("http_port":8080)"));
  EXPECT_EQ(call("GET", "/ping").body, "pong\n");
  EXPECT_EQ(call("DELETE", "/v2/leader").status, 200);
  EXPECT_EQ(host_.abdications, 1);
}

TEST_F(MarathonApiTest, ARunningDeploymentSurvivesARestartAndEndsInTheStore) {
  // No offers ever come: the deployment of a two-instance app stays in flight.
  auto created = call("POST", "/v2/apps", R"({"id": "/web", "cmd": "c", "instances": 2})");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = header(created, "Marathon-Deployment-Id");
  ASSERT_FALSE(id.empty());

  startInstance();
  auto listed = call("GET", "/v2/deployments");
  ASSERT_EQ(listed.status, 200);
  EXPECT_THAT(listed.body, HasSubstr(R"("id":")" + id + "\""));
  EXPECT_THAT(listed.body, HasSubstr(R"("affectedApps":["/web"])"));
  EXPECT_THAT(listed.body, HasSubstr(R"("action":"ScaleApplication")"));
  // Still locking the app on the new instance.
  auto locked = call("PUT", "/v2/apps/web", R"({"instances": 3})");
  EXPECT_EQ(locked.status, 409) << locked.body;
  EXPECT_THAT(locked.body, HasSubstr(id));

  // Stopped: gone from the store as well, so the next instance has none.
  ASSERT_EQ(call("DELETE", "/v2/deployments/" + id + "?force=true").status, 202);
  startInstance();
  EXPECT_EQ(call("GET", "/v2/deployments").body, "[]");
  EXPECT_EQ(call("PUT", "/v2/apps/web", R"({"instances": 0})").status, 200);
}

TEST_F(MarathonApiTest, ADeploymentThatEndsAtOnceIsNotStored) {
  // Scaling to zero with no task is done inside the deploy: nothing to keep.
  ASSERT_EQ(call("POST", "/v2/apps", R"({"id": "/idle", "cmd": "c", "instances": 0})").status, 201);
  EXPECT_EQ(call("GET", "/v2/deployments").body, "[]");
  startInstance();
  EXPECT_EQ(call("GET", "/v2/deployments").body, "[]");
  EXPECT_EQ(call("GET", "/v2/apps/idle").status, 200);
}

TEST_F(MarathonApiTest, GroupsAreCreatedUpdatedAndDeleted) {
  // Nested apps and groups, ids relative to the enclosing group.
  auto created = call("POST", "/v2/groups", R"({"id": "/prod", "apps": [
      {"id": "db", "cmd": "c", "instances": 0}],
    "groups": [{"id": "web", "apps": [{"id": "api", "cmd": "c", "instances": 0},
                                      {"id": "/prod/web/ui", "cmd": "c", "instances": 0}]}]})");
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_THAT(created.body, HasSubstr("deploymentId"));
  EXPECT_FALSE(header(created, "Marathon-Deployment-Id").empty());
  EXPECT_EQ(header(created, "Location"), "/v2/groups/prod");
  EXPECT_EQ(call("GET", "/v2/apps/prod/db").status, 200);
  EXPECT_EQ(call("GET", "/v2/apps/prod/web/api").status, 200);
  EXPECT_EQ(call("GET", "/v2/apps/prod/web/ui").status, 200);
  auto group = call("GET", "/v2/groups/prod");
  EXPECT_THAT(group.body, HasSubstr(R"("id":"/prod/web")"));

  // POST again: 409, Marathon's words; over an app: 409 too.
  auto again = call("POST", "/v2/groups", R"({"id": "/prod"})");
  EXPECT_EQ(again.status, 409);
  EXPECT_THAT(again.body,
              HasSubstr("Group /prod is already created. Use PUT to change this group."));
  EXPECT_EQ(call("POST", "/v2/groups", R"({"id": "/prod/db"})").status, 409);

  // Validation paths name the app inside the group.
  auto invalid = call("POST", "/v2/groups",
                      R"({"id": "/other", "groups": [{"id": "x", "apps": [{"id": "a", "cmd": "c",
                          "cpus": -1}]}]})");
  EXPECT_EQ(invalid.status, 422);
  EXPECT_THAT(invalid.body, HasSubstr(R"("path":"/groups(0)/apps(0)/cpus")"));
  EXPECT_EQ(call("POST", "/v2/groups", "{").status, 400);

  // PUT replaces the listed levels: web keeps api (scaled), ui goes, a new app comes; db stays
  // (this body names no apps at /prod itself).
  auto updated = call("PUT", "/v2/groups/prod",
                      R"({"groups": [{"id": "web", "apps": [
                          {"id": "api", "cmd": "c", "instances": 0, "mem": 64},
                          {"id": "new", "cmd": "c", "instances": 0}]}]})");
  ASSERT_EQ(updated.status, 200) << updated.body;
  EXPECT_FALSE(header(updated, "Marathon-Deployment-Id").empty());
  EXPECT_THAT(call("GET", "/v2/apps/prod/web/api").body, HasSubstr(R"("mem":64)"));
  EXPECT_EQ(call("GET", "/v2/apps/prod/web/ui").status, 404);
  EXPECT_EQ(call("GET", "/v2/apps/prod/web/new").status, 200);
  EXPECT_EQ(call("GET", "/v2/apps/prod/db").status, 200);
  // PUT of an unknown group creates it.
  EXPECT_EQ(call("PUT", "/v2/groups/staging", R"({"apps": [{"id": "x", "cmd": "c",
      "instances": 0}]})")
                .status,
            200);
  EXPECT_EQ(call("GET", "/v2/apps/staging/x").status, 200);

  // DELETE removes every app under it; the group is gone.
  ASSERT_EQ(call("DELETE", "/v2/groups/prod?force=true").status, 200);
  EXPECT_EQ(call("GET", "/v2/apps/prod/web/api").status, 404);
  EXPECT_EQ(call("GET", "/v2/groups/prod").status, 404);
  EXPECT_EQ(call("GET", "/v2/apps/staging/x").status, 200);
}

TEST_F(MarathonApiTest, TaskStatsAndLastTaskFailureAreEmbeddedOnRequest) {
  ASSERT_EQ(call("POST", "/v2/apps", R"({"id": "/s", "cmd": "c", "instances": 0})").status, 201);
  // No tasks: taskStats is an empty object; no failure yet: no lastTaskFailure.
  auto listed = call("GET", "/v2/apps?embed=apps.taskStats&embed=apps.lastTaskFailure");
  EXPECT_THAT(listed.body, HasSubstr(R"("taskStats":{})"));
  EXPECT_THAT(listed.body, ::testing::Not(HasSubstr("lastTaskFailure")));
  EXPECT_THAT(call("GET", "/v2/apps").body, ::testing::Not(HasSubstr("taskStats")));
  EXPECT_THAT(call("GET", "/v2/apps/s?embed=app.taskStats").body, HasSubstr(R"("taskStats":{})"));
}

}  // namespace
}  // namespace tessera::modules::marathon
