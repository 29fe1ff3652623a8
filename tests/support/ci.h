#pragma once

/// The one "skip locally, fail under CI" rule: a test that needs something the machine may lack
/// (root, a cgroup hierarchy, Docker, ZooKeeper) skips on a developer's machine, but fails when
/// env CI=true, because CI is set up to run it and a skip there would hide a lost test.

#include <gtest/gtest.h>

#include <cstdlib>
#include <string_view>

namespace tessera::testing {

/// True when env CI is "true".
inline bool runningInCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) == "true";
}

}  // namespace tessera::testing

/// In a test body or SetUp(): skips the test because of `why` (anything `<<` takes), or fails it
/// when CI=true. Returns from the enclosing function either way.
#define TESSERA_SKIP_UNLESS_CI(why)                                                \
  do {                                                                             \
    if (::tessera::testing::runningInCi()) {                                       \
      FAIL() << why << " (CI=true: a missing component is a failure, not a skip)"; \
    }                                                                              \
    GTEST_SKIP() << why;                                                           \
  } while (0)
