#include "tessera/api/status.h"

#include <gtest/gtest.h>

#include <memory>

namespace tessera::api {
namespace {

TEST(StatusTest, OkByDefault) {
  Status status;
  EXPECT_TRUE(status.isOk());
  EXPECT_EQ(status.toString(), "ok");
}

TEST(StatusTest, WithContextPrefixesTheMessage) {
  Status status = invalidArgument("agent '{}' has negative cpus", "a-17");
  Status wrapped = status.withContext("registering agent on '{}'", "host1");
  EXPECT_EQ(wrapped.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(wrapped.message(), "registering agent on 'host1': agent 'a-17' has negative cpus");
  EXPECT_TRUE(Status::ok().withContext("ignored").isOk());
}

TEST(ResultTest, HoldsValueOrError) {
  Result<int> value = 42;
  ASSERT_TRUE(value.isOk());
  EXPECT_EQ(*value, 42);
  Result<int> error = notFound("no agent '{}'", "a-1");
  ASSERT_FALSE(error.isOk());
  EXPECT_EQ(error.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(error.status().message(), "no agent 'a-1'");
}

TEST(ResultTest, MovesOnlyTypes) {
  Result<std::unique_ptr<int>> result = std::make_unique<int>(7);
  std::unique_ptr<int> taken = std::move(result).value();
  EXPECT_EQ(*taken, 7);
}

}  // namespace
}  // namespace tessera::api
