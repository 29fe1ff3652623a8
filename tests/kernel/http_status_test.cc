#include "kernel/http/http_status.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace tessera::kernel::http {
namespace {

TEST(HttpStatusTest, EveryStatusCodeHasItsHttpStatus) {
  const std::vector<std::pair<api::StatusCode, int>> expected = {
      {api::StatusCode::kOk, 200},
      {api::StatusCode::kInvalidArgument, 400},
      {api::StatusCode::kPermissionDenied, 403},
      {api::StatusCode::kNotFound, 404},
      {api::StatusCode::kAlreadyExists, 409},
      {api::StatusCode::kFailedPrecondition, 409},
      {api::StatusCode::kAborted, 409},
      {api::StatusCode::kResourceExhausted, 429},
      {api::StatusCode::kInternal, 500},
      {api::StatusCode::kUnimplemented, 501},
      {api::StatusCode::kUnavailable, 503},
      {api::StatusCode::kCancelled, 503},
      {api::StatusCode::kDeadlineExceeded, 504},
  };
  // Every code of the enum is listed above (kInternal is not the last by accident).
  EXPECT_EQ(expected.size(), static_cast<size_t>(api::StatusCode::kInternal) + 1);
  for (const auto& [code, status] : expected) {
    EXPECT_EQ(httpStatus(code), status) << api::statusCodeName(code);
  }
}

TEST(HttpStatusTest, ErrorJsonIsAnEscapedMessage) {
  const std::string body = errorJson("agent 'a\"1' is\nunknown");
  EXPECT_EQ(body, R"({"message":"agent 'a\"1' is\nunknown"})");
  auto parsed = Poco::JSON::Parser().parse(body).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(parsed->getValue<std::string>("message"), "agent 'a\"1' is\nunknown");
}

TEST(HttpStatusTest, ErrorResponseCarriesTheStatusAndTheMessage) {
  api::HttpResponse notFound = errorResponse(api::notFound("agent '{}' is unknown", "a-1"));
  EXPECT_EQ(notFound.status, 404);
  EXPECT_EQ(notFound.contentType, "application/json");
  EXPECT_EQ(notFound.body, R"({"message":"agent 'a-1' is unknown"})");
  EXPECT_EQ(errorResponse(api::invalidArgument("bad")).status, 400);
  EXPECT_EQ(errorResponse(api::unavailable("the master is stopping")).status, 503);
  EXPECT_EQ(errorResponse(api::alreadyExists("taken")).status, 409);
}

}  // namespace
}  // namespace tessera::kernel::http
