#pragma once

/// Docker for tests: checks that a real engine answers on /var/run/docker.sock and that the
/// test image `tessera-test/busybox` exists, building it locally when it does not (there is no
/// registry here): `POST /images/create?fromSrc=-` with a tarball holding Debian's
/// busybox-static as /bin/busybox plus its applet links (sh, httpd, sleep, ...). Starts nothing.

#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "modules/containerizer_docker/engine_client.h"
#include "tessera/api/status.h"
#include "tests/support/ci.h"

namespace tessera::testing {

inline constexpr const char* kDockerSocket = "/var/run/docker.sock";
inline constexpr const char* kDockerTestImage = "tessera-test/busybox";

/// Ok when the engine answers /_ping and the test image is there (imported on first use).
/// The answer is computed once per process.
api::Status dockerReady();

/// The tarball dockerReady() imports (exposed for its own test).
std::string busyboxImageTar();

/// Ids of the containers (all states) whose label `key=value` matches.
std::vector<std::string> dockerContainersWithLabel(
    modules::containerizer_docker::EngineClient& client, const std::string& key,
    const std::string& value);

}  // namespace tessera::testing

/// Skips the test when no Docker engine is usable, or fails it when CI=true.
#define TESSERA_REQUIRE_DOCKER()                                                \
  do {                                                                          \
    if (auto ready_ = ::tessera::testing::dockerReady(); !ready_) {             \
      TESSERA_SKIP_UNLESS_CI(                                                   \
          "no usable Docker engine at /var/run/docker.sock (start dockerd, or " \
          "run ./dev.sh test): "                                                \
          << ready_.message());                                                 \
    }                                                                           \
  } while (0)
