#pragma once

// A real cluster (`tessera local`: a master and an agent) and Chronos hosts (`tessera framework
// --module=org_tessera_chronos`) for Chronos's system tests, with helpers that read jobs through
// Chronos's REST API.

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/cluster_state.h"
#include "tests/support/subprocess.h"

namespace tessera::testing {

class ChronosSystemTest : public ::testing::Test {
 protected:
  static constexpr const char* kModule = "org_tessera_chronos";

  static std::filesystem::path libDir() {
    return std::filesystem::path(TESSERA_BINARY_DIR) / "lib" / "tessera";
  }

  // The cluster's modules: the allocator (offers every 100ms) and the native containerizer.
  static std::string clusterManifest() {
    return fmt::format(
        R"({{"libraries": [
  {{"file": "{}", "modules": [{{"name": "org_tessera_allocator_drf",
    "parameters": [{{"key": "allocation_interval", "value": "100ms"}}]}}]}},
  {{"file": "{}", "modules": [{{"name": "org_tessera_containerizer_native"}}]}}
]}})",
        (libDir() / "libtessera_allocator_drf.so").string(),
        (libDir() / "libtessera_containerizer_native.so").string());
  }

  // The Chronos host's modules: Chronos (aliased `chronos`, as in default_modules.json, for the
  // `chronos` command's default), retrying failed runs after `retryMillis`.
  static std::string chronosManifest(int retryMillis) {
    return fmt::format(
        R"({{"libraries": [{{"file": "{}", "modules": [{{"name": "{}", "aliases": ["chronos"],
    "parameters": [{{"key": "failure_retry", "value": "{}"}}]}}]}}]}})",
        (libDir() / "libtessera_framework_chronos.so").string(), kModule, retryMillis);
  }

  std::unique_ptr<Subprocess> start(std::vector<std::string> argv) {
    auto process = Subprocess::start(
        {std::move(argv), {{"TESSERA_CONFIG_DIR", config_.path().string()}}, {}, std::nullopt});
    EXPECT_TRUE(process) << process.status().message();
    return process ? std::move(process).value() : nullptr;
  }

  void startCluster() {
    cluster_ = start({tesseraBinary().string(), "local", fmt::format("--port={}", masterPort_),
                      "--modules=" + clusterManifest(),
                      fmt::format("--work_dir={}", (dir_.path() / "local").string()), "--quiet"});
    ASSERT_TRUE(cluster_);
    ASSERT_TRUE(waitFor(
        [&] {
          auto health = httpRequest(masterPort_, "GET", "/health", "", std::chrono::seconds(2));
          return health && health->status == 200 && activatedAgents(masterPort_) > 0;
        },
        std::chrono::seconds(60)))
        << cluster_->err();
  }

  // Chronos host i on its own port; with `zk`, contending for leadership there, else keeping
  // its state under its own work dir (so a restarted host finds it again).
  void startChronos(size_t i = 0, const std::string& zk = "", int retryMillis = 200) {
    if (hosts_.size() <= i) hosts_.resize(i + 1);
    if (ports_.size() <= i) ports_.resize(i + 1, 0);
    if (ports_[i] == 0) ports_[i] = freePort();
    std::vector<std::string> argv = {tesseraBinary().string(),
                                     "framework",
                                     "--module=chronos",  // the alias; state keys use kModule
                                     fmt::format("--master=127.0.0.1:{}", masterPort_),
                                     fmt::format("--port={}", ports_[i]),
                                     "--modules=" + chronosManifest(retryMillis)};
    if (zk.empty()) {
      argv.push_back(
          fmt::format("--work_dir={}", (dir_.path() / fmt::format("chronos{}", i)).string()));
    } else {
      argv.push_back("--zk=" + zk);
      argv.push_back("--zk_session_timeout=2secs");
    }
    hosts_[i] = start(std::move(argv));
    ASSERT_TRUE(hosts_[i]);
  }

  // Waits until host i answers Chronos's API with its jobs loaded.
  bool awaitApi(size_t i = 0) {
    return waitFor(
        [&] {
          auto jobs = httpRequest(ports_[i], "GET", "/scheduler/jobs", "", std::chrono::seconds(2));
          return jobs && jobs->status == 200;
        },
        std::chrono::seconds(60));
  }

  api::Result<SimpleResponse> call(const std::string& method, const std::string& path,
                                   const std::string& body = "", size_t host = 0) {
    return httpRequest(ports_[host], method, path, body);
  }

  // The job called `name` as `GET /scheduler/jobs` lists it; null when not listed.
  Poco::JSON::Object::Ptr job(const std::string& name, size_t host = 0) {
    auto jobs = httpRequest(ports_[host], "GET", "/scheduler/jobs", "", std::chrono::seconds(3));
    if (!jobs || jobs->status != 200) return nullptr;
    try {
      auto array = Poco::JSON::Parser().parse(jobs->body).extract<Poco::JSON::Array::Ptr>();
      for (size_t i = 0; i < array->size(); ++i) {
        auto object = array->getObject(static_cast<unsigned>(i));
        if (object->getValue<std::string>("name") == name) return object;
      }
    } catch (const Poco::Exception&) {
    }
    return nullptr;
  }

  // successCount + errorCount of job `name` (-1 when it is not listed).
  int64_t counter(const std::string& name, const char* field, size_t host = 0) {
    auto found = job(name, host);
    return found ? found->getValue<int64_t>(field) : -1;
  }

  // Tasks of the framework called "chronos" in the master's /state, running or completed, whose
  // id names job `name`.
  std::vector<std::pair<std::string, std::string>> tasksOf(const std::string& name) {
    std::vector<std::pair<std::string, std::string>> found;
    auto state = getJson(masterPort_, "/state", std::chrono::seconds(3));
    if (!state) return found;
    for (const char* frameworkList : {"frameworks", "completed_frameworks"}) {
      auto frameworks = state->getArray(frameworkList);
      for (size_t i = 0; frameworks && i < frameworks->size(); ++i) {
        auto framework = frameworks->getObject(static_cast<unsigned>(i));
        if (framework->getValue<std::string>("name") != "chronos") continue;
        for (const char* list : {"tasks", "completed_tasks"}) {
          auto tasks = framework->getArray(list);
          for (size_t j = 0; tasks && j < tasks->size(); ++j) {
            auto task = tasks->getObject(static_cast<unsigned>(j));
            const std::string id = task->getValue<std::string>("id");
            if (id.find(fmt::format(":{}:", name)) == std::string::npos) continue;
            found.emplace_back(id, task->getValue<std::string>("state"));
          }
        }
      }
    }
    return found;
  }

  std::string logs() {
    std::string out;
    for (size_t i = 0; i < hosts_.size(); ++i) {
      if (hosts_[i]) out += fmt::format("--- chronos {}:\n{}\n", i, hosts_[i]->err());
    }
    return out;
  }

  TempDir dir_;
  TempDir config_;
  uint16_t masterPort_ = freePort();
  std::unique_ptr<Subprocess> cluster_;
  std::vector<uint16_t> ports_;
  std::vector<std::unique_ptr<Subprocess>> hosts_;
};

}  // namespace tessera::testing
