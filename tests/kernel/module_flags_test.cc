// Which agent flags reach which module: `<family>_*` only to the module `<family>` selects.
#include "kernel/cli/module_flags.h"

#include <gtest/gtest.h>

namespace tessera::kernel::cli {
namespace {

const std::vector<ModuleFlag> kAgentFlags = {{"docker_socket", "/var/run/docker.sock"},
                                             {"docker_kill_orphans", "true"},
                                             {"cgroups_root", "tessera"},
                                             {"cgroups_enable_cfs", "false"}};

TEST(ModuleFlagsTest, DockerFlagsReachOnlyTheDockerContainerizer) {
  EXPECT_EQ(flagsFor("containerizer", "org_tessera_containerizer_docker", kAgentFlags),
            (std::vector<ModuleFlag>{{"docker_socket", "/var/run/docker.sock"},
                                     {"docker_kill_orphans", "true"}}));
  EXPECT_TRUE(flagsFor("containerizer", "org_tessera_containerizer_native", kAgentFlags).empty());
  // A module named after the family itself is selected too, as by --containerizers.
  EXPECT_EQ(flagsFor("containerizer", "docker", kAgentFlags).size(), 2u);
  // Not a module that merely ends in the family's letters.
  EXPECT_TRUE(flagsFor("containerizer", "org_example_containerizer_mydocker", kAgentFlags).empty());
}

TEST(ModuleFlagsTest, CgroupsFlagsReachOnlyTheCgroupsIsolator) {
  EXPECT_EQ(
      flagsFor("isolator", "org_tessera_isolator_cgroups", kAgentFlags),
      (std::vector<ModuleFlag>{{"cgroups_root", "tessera"}, {"cgroups_enable_cfs", "false"}}));
  EXPECT_TRUE(flagsFor("isolator", "org_example_isolator_gpu", kAgentFlags).empty());
  // The kind matters: a containerizer named like the family's isolator gets nothing.
  EXPECT_TRUE(flagsFor("containerizer", "org_tessera_isolator_cgroups", kAgentFlags).empty());
}

TEST(ModuleFlagsTest, SelectsAsContainerizersFlagDoes) {
  EXPECT_TRUE(selects("containerizer", "native", "org_tessera_containerizer_native"));
  EXPECT_TRUE(selects("containerizer", "org_tessera_containerizer_native",
                      "org_tessera_containerizer_native"));
  EXPECT_FALSE(selects("containerizer", "native", "org_tessera_isolator_native"));
  EXPECT_FALSE(selects("containerizer", "", "org_tessera_containerizer_native"));
  EXPECT_FALSE(selects("containerizer", "ative", "org_tessera_containerizer_native"));
}

}  // namespace
}  // namespace tessera::kernel::cli
