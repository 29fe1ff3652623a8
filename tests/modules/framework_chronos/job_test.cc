// The job model: Chronos's field names and defaults, validation errors that name the field, and
// compact one-line JSON that parses back to the same job.
#include "modules/framework_chronos/job.h"

#include <gtest/gtest.h>

namespace tessera::modules::chronos {
namespace {

TEST(JobTest, DefaultsAreChronos) {
  auto job =
      parseJob(R"({"name":"backup","command":"true","schedule":"R/2026-01-01T00:00:00Z/PT1H"})");
  ASSERT_TRUE(job) << job.status().message();
  EXPECT_EQ(job->name, "backup");
  EXPECT_TRUE(job->shell);
  EXPECT_EQ(job->retries, 2);
  EXPECT_EQ(job->epsilon, "PT60S");
  EXPECT_DOUBLE_EQ(job->cpus, 0.1);
  EXPECT_DOUBLE_EQ(job->mem, 128);
  EXPECT_DOUBLE_EQ(job->disk, 256);
  EXPECT_FALSE(job->disabled);
  EXPECT_FALSE(job->async);
  EXPECT_FALSE(job->concurrent);
  EXPECT_FALSE(job->softError);
  EXPECT_EQ(job->concurrencyPolicy, ConcurrencyPolicy::kAllow);
  EXPECT_EQ(job->kind(), JobKind::kScheduled);
  EXPECT_TRUE(validateJob(*job, JobKind::kScheduled));
}

TEST(JobTest, ReadsEveryField) {
  auto job = parseJob(
      R"({"name":"etl.daily-1","command":"run.sh","shell":false,"arguments":["-v"],)"
      R"("schedule":"R3//PT2S","scheduleTimeZone":"Europe/Berlin","epsilon":"PT30S",)"
      R"("retries":5,"async":false,"disabled":true,"concurrent":true,"softError":true,)"
      R"("cpus":0.5,"mem":64,"disk":10,"owner":"ops@example.com","ownerName":"Ops",)"
      R"("description":"nightly","container":{"type":"docker","image":"busybox",)"
      R"("network":"bridge","volumes":[{"containerPath":"/data","hostPath":"/srv","mode":"RO"}]},)"
      R"("environmentVariables":[{"name":"A","value":"1"}],)"
      R"("constraints":[["rack","EQUALS","r1"]],"uris":["http://x/a.tgz"],)"
      R"("fetch":[{"uri":"http://x/b","executable":true}],"runAsUser":"nobody",)"
      R"("highPriority":true,"concurrencyPolicy":"FORBID","startingDeadlineSeconds":90})");
  ASSERT_TRUE(job) << job.status().message();
  EXPECT_FALSE(job->shell);
  EXPECT_EQ(job->arguments, std::vector<std::string>{"-v"});
  EXPECT_EQ(job->scheduleTimeZone, "Europe/Berlin");
  EXPECT_EQ(job->retries, 5);
  EXPECT_TRUE(job->disabled);
  ASSERT_TRUE(job->container);
  EXPECT_EQ(job->container->type, "DOCKER");
  EXPECT_EQ(job->container->network, "BRIDGE");
  ASSERT_EQ(job->container->volumes.size(), 1u);
  EXPECT_EQ(job->container->volumes[0].mode, "RO");
  ASSERT_EQ(job->environmentVariables.size(), 1u);
  EXPECT_EQ(job->environmentVariables[0].value, "1");
  ASSERT_EQ(job->constraints.size(), 1u);
  EXPECT_EQ(job->constraints[0][2], "r1");
  ASSERT_EQ(job->fetch.size(), 1u);
  EXPECT_TRUE(job->fetch[0].executable);
  EXPECT_EQ(job->runAsUser, "nobody");
  EXPECT_EQ(job->concurrencyPolicy, ConcurrencyPolicy::kForbid);
  EXPECT_FALSE(job->allowsOverlap());
  EXPECT_EQ(job->startingDeadlineSeconds, 90);
}

TEST(JobTest, ToJsonIsOneLineAndRoundTrips) {
  auto job =
      parseJob(R"({"name":"a","command":"echo \"hi\"\nthere","schedule":"R//PT1M","cron":"",)"
               R"("environmentVariables":[{"name":"X","value":"y"}],"uris":["u"]})");
  ASSERT_TRUE(job) << job.status().message();
  job->successCount = 3;
  job->lastSuccess = "2026-01-01T00:00:00.000Z";
  const std::string json = toJson(*job);
  EXPECT_EQ(json.find('\n'), std::string::npos) << json;
  EXPECT_NE(json.find(R"("successCount":3)"), std::string::npos) << json;
  auto back = parseJob(json, true);
  ASSERT_TRUE(back) << back.status().message();
  EXPECT_EQ(back->command, job->command);
  EXPECT_EQ(back->successCount, 3);
  EXPECT_EQ(back->lastSuccess, job->lastSuccess);
  EXPECT_EQ(toJson(*back), json);
  // Without server fields, counters in the input are ignored (clients send them back).
  auto posted = parseJob(json);
  ASSERT_TRUE(posted);
  EXPECT_EQ(posted->successCount, 0);
}

TEST(JobTest, DependentJobsWriteParentsNotSchedule) {
  auto job = parseJob(R"({"name":"child","command":"true","parents":["p1","p2"]})");
  ASSERT_TRUE(job) << job.status().message();
  EXPECT_EQ(job->kind(), JobKind::kDependent);
  EXPECT_TRUE(validateJob(*job, JobKind::kDependent));
  EXPECT_FALSE(validateJob(*job, JobKind::kScheduled));
  const std::string json = toJson(*job);
  EXPECT_NE(json.find(R"("parents":["p1","p2"])"), std::string::npos) << json;
  EXPECT_EQ(json.find(R"("schedule")"), std::string::npos) << json;
}

TEST(JobTest, RefusesBadInputNamingTheField) {
  struct Case {
    const char* json;
    const char* needle;
  } cases[] = {
      {R"(not json)", "not a JSON object"},
      {R"([1,2])", "not a JSON object"},
      {R"({"name":"bad name","command":"x"})", "[\\w.-]+"},
      {R"({"name":"..","command":"x"})", "[\\w.-]+"},
      {R"({"command":"x"})", "[\\w.-]+"},
      {R"({"name":"a","command":"x","cpus":-1})", "'cpus'"},
      {R"({"name":"a","command":"x","retries":1.5})", "'retries'"},
      {R"({"name":"a","command":"x","shell":"yes"})", "'shell'"},
      {R"({"name":"a","command":"x","epsilon":"60s"})", "'epsilon'"},
      {R"({"name":"a","command":"x","parents":["a"]})", "itself"},
      {R"({"name":"a","command":"x","concurrencyPolicy":"REPLACE"})", "concurrencyPolicy"},
      {R"({"name":"a","command":"x","container":{"image":""}})", "container.image"},
      {R"({"name":"a","command":"x","environmentVariables":[{"value":"1"}]})",
       "environmentVariables[0].name"},
      {R"({"name":"a","command":"x","constraints":[["rack","NEAR","x"]]})", "NEAR"},
  };
  for (const auto& c : cases) {
    auto job = parseJob(c.json);
    ASSERT_FALSE(job) << c.json;
    EXPECT_EQ(job.status().code(), api::StatusCode::kInvalidArgument);
    EXPECT_NE(job.status().message().find(c.needle), std::string::npos)
        << c.json << ": " << job.status().message();
  }
}

TEST(JobTest, ValidationNeedsCommandAndExactlyOneSchedule) {
  auto noCommand = parseJob(R"({"name":"a","schedule":"R//PT1M"})");
  ASSERT_TRUE(noCommand);
  EXPECT_FALSE(validateJob(*noCommand, JobKind::kScheduled));
  auto both = parseJob(R"({"name":"a","command":"x","schedule":"R//PT1M","cron":"* * * * *"})");
  ASSERT_TRUE(both);
  EXPECT_FALSE(validateJob(*both, JobKind::kScheduled));
  auto neither = parseJob(R"({"name":"a","command":"x"})");
  ASSERT_TRUE(neither);
  EXPECT_FALSE(validateJob(*neither, JobKind::kScheduled));
  auto cron = parseJob(R"({"name":"a","command":"x","cron":"*/5 * * * *"})");
  ASSERT_TRUE(cron);
  EXPECT_TRUE(validateJob(*cron, JobKind::kScheduled));
}

TEST(JobTest, DurationSeconds) {
  EXPECT_EQ(parseDurationSeconds("PT60S").value(), 60);
  EXPECT_EQ(parseDurationSeconds("PT1M30S").value(), 90);
  EXPECT_EQ(parseDurationSeconds("P1DT1H").value(), 90000);
  EXPECT_FALSE(parseDurationSeconds("PT"));
  EXPECT_FALSE(parseDurationSeconds("P1M"));  // months: not a fixed time
  EXPECT_FALSE(parseDurationSeconds("60"));
}

}  // namespace
}  // namespace tessera::modules::chronos
