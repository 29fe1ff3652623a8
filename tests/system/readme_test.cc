// Keeps the README's examples true: every line of a ```sh block preceded by
// `<!-- readme-test: local -->` is run against a live `tessera local` and must succeed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <sstream>

#include "tests/support/subprocess.h"

namespace tessera::testing {
namespace {

namespace fs = std::filesystem;

void replaceAll(std::string& text, std::string_view from, std::string_view to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

std::vector<std::string> readmeCommands() {
  std::ifstream in(fs::path(TESSERA_SOURCE_DIR) / "README.md");
  std::vector<std::string> commands;
  std::string line;
  bool marked = false, inBlock = false;
  while (std::getline(in, line)) {
    if (line.find("<!-- readme-test: local -->") != std::string::npos) {
      marked = true;
    } else if (marked && !inBlock && line.rfind("```", 0) == 0) {
      inBlock = true;
    } else if (inBlock && line.rfind("```", 0) == 0) {
      inBlock = marked = false;
    } else if (inBlock && !line.empty()) {
      commands.push_back(line);
    }
  }
  return commands;
}

TEST(ReadmeTest, ExamplesRunAgainstTesseraLocal) {
  auto commands = readmeCommands();
  ASSERT_GE(commands.size(), 3u) << "no marked examples found in README.md";

  TempDir config;
  uint16_t port = freePort();
  auto daemon =
      Subprocess::start({{tesseraBinary().string(), "local", "--port=" + std::to_string(port)},
                         {{"TESSERA_CONFIG_DIR", config.path().string()}},
                         {},
                         std::nullopt});
  ASSERT_TRUE(daemon);
  ASSERT_TRUE(waitFor([&] {
    auto health = httpRequest(port, "GET", "/health");
    return health && health->status == 200;
  })) << (*daemon)->err();

  for (std::string command : commands) {
    // The README speaks of the default port and build dir; the test uses its own.
    replaceAll(command, "localhost:5050", fmt::format("localhost:{}", port));
    replaceAll(command, "127.0.0.1:5050", fmt::format("127.0.0.1:{}", port));
    replaceAll(command, "build/bin/tessera", tesseraBinary().string());
    auto shell = Subprocess::start({{"/bin/sh", "-c", command},
                                    {{"TESSERA_CONFIG_DIR", config.path().string()}},
                                    {},
                                    fs::path(TESSERA_SOURCE_DIR)});
    ASSERT_TRUE(shell);
    ASSERT_TRUE((*shell)->wait(std::chrono::seconds(60))) << command;
    EXPECT_EQ((*shell)->exitCode(), 0) << command << "\n" << (*shell)->out() << (*shell)->err();
  }
  (*daemon)->kill(SIGTERM);
  ASSERT_TRUE((*daemon)->wait(std::chrono::seconds(30)));
  EXPECT_EQ((*daemon)->exitCode(), 0);
}

}  // namespace
}  // namespace tessera::testing
