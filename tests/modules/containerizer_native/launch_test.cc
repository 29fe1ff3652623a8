#include "modules/containerizer_native/launch.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include "modules/containerizer_native/native_containerizer.h"
#include "modules/containerizer_native/proc.h"

namespace tessera::modules::containerizer_native {
namespace {

TEST(ProcStatTest, ParsesACommandNameWithSpacesAndParentheses) {
  auto stat = parseProcStat(
      "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 2 0 123456 1000000 250 "
      "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n");
  ASSERT_TRUE(stat) << stat.status().toString();
  EXPECT_EQ(stat->pid, 4242);
  EXPECT_EQ(stat->state, 'S');
  EXPECT_EQ(stat->ppid, 1);
  EXPECT_EQ(stat->pgrp, 4242);
  EXPECT_EQ(stat->utime, 7u);
  EXPECT_EQ(stat->stime, 3u);
  EXPECT_EQ(stat->numThreads, 2);
  EXPECT_EQ(stat->startTime, 123456u);
  EXPECT_EQ(stat->rssPages, 250);
  EXPECT_FALSE(parseProcStat("garbage"));
  EXPECT_FALSE(parseProcStat("1 (x) S 1 2"));
}

TEST(ProcStatTest, ReadsThisProcess) {
  auto stat = readProcStat(getpid());
  ASSERT_TRUE(stat) << stat.status().toString();
  EXPECT_EQ(stat->pid, getpid());
  EXPECT_GT(stat->startTime, 0u);
  EXPECT_EQ(readProcStat(-5).status().code(), api::StatusCode::kNotFound);
}

TEST(DescribeWaitStatusTest, UsesTheCommandExecutorsWords) {
  EXPECT_EQ(describeWaitStatus(0), "Command exited with status 0");
  EXPECT_EQ(describeWaitStatus(3 << 8), "Command exited with status 3");
  EXPECT_EQ(describeWaitStatus(SIGKILL), "Command terminated with signal KILL");
  EXPECT_EQ(describeWaitStatus(SIGTERM), "Command terminated with signal TERM");
}

api::ContainerConfig shellConfig(std::string command) {
  api::ContainerConfig config;
  config.containerId = "c1";
  config.sandboxDirectory = "/tmp";
  config.command.set_value(std::move(command));
  return config;
}

TEST(PrepareLaunchTest, ShellFormRunsUnderBinSh) {
  auto spec = prepareLaunch(shellConfig("echo hi"), "/work");
  ASSERT_TRUE(spec) << spec.status().toString();
  EXPECT_EQ(spec->program, "/bin/sh");
  EXPECT_EQ(spec->argv, (std::vector<std::string>{"sh", "-c", "echo hi"}));
  EXPECT_EQ(spec->workingDirectory, "/tmp");
}

TEST(PrepareLaunchTest, ArgvFormLooksUpTheProgramAndKeepsArgvZero) {
  api::ContainerConfig config = shellConfig("sh");
  config.command.set_shell(false);
  config.command.add_arguments("my-name");
  config.command.add_arguments("-c");
  auto spec = prepareLaunch(config, "/work");
  ASSERT_TRUE(spec) << spec.status().toString();
  EXPECT_TRUE(spec->program == "/usr/bin/sh" || spec->program == "/bin/sh") << spec->program;
  EXPECT_EQ(spec->argv, (std::vector<std::string>{"my-name", "-c"}));
}

TEST(PrepareLaunchTest, AgentEnvironmentGoesOnTopAndMarkersLast) {
  api::ContainerConfig config = shellConfig("true");
  auto* variable = config.command.mutable_environment()->add_variables();
  variable->set_name("A");
  variable->set_value("command");
  variable = config.command.mutable_environment()->add_variables();
  variable->set_name("TESSERA_CONTAINER_ID");
  variable->set_value("forged");
  config.environment["A"] = "agent";
  auto spec = prepareLaunch(config, "/work");
  ASSERT_TRUE(spec) << spec.status().toString();
  auto has = [&](const std::string& entry) {
    return std::find(spec->env.begin(), spec->env.end(), entry) != spec->env.end();
  };
  EXPECT_TRUE(has("A=agent"));
  EXPECT_TRUE(has(std::string("PATH=") + kDefaultPath));
  EXPECT_TRUE(has("TESSERA_CONTAINER_ID=c1"));
  EXPECT_TRUE(has("TESSERA_AGENT_WORK_DIR=/work"));
}

TEST(PrepareLaunchTest, RejectsWhatItCannotRun) {
  EXPECT_EQ(prepareLaunch(shellConfig(""), "/w").status().code(),
            api::StatusCode::kInvalidArgument);
  api::ContainerConfig secret = shellConfig("true");
  auto* variable = secret.command.mutable_environment()->add_variables();
  variable->set_name("S");
  variable->set_type(v1::Environment::Variable::SECRET);
  EXPECT_EQ(prepareLaunch(secret, "/w").status().code(), api::StatusCode::kInvalidArgument);
  if (geteuid() == 0) {
    api::ContainerConfig user = shellConfig("true");
    user.user = "no-such-user-tessera";
    auto spec = prepareLaunch(user, "/w");
    EXPECT_EQ(spec.status().toString(),
              "invalid argument: user 'no-such-user-tessera' does not exist");
  }
}

}  // namespace
}  // namespace tessera::modules::containerizer_native
