#include "kernel/http/http_status.h"

#include <cassert>

namespace tessera::kernel::http {

int httpStatus(api::StatusCode code) {
  switch (code) {
    case api::StatusCode::kOk:
      return 200;
    case api::StatusCode::kInvalidArgument:
      return 400;
    case api::StatusCode::kPermissionDenied:
      return 403;
    case api::StatusCode::kNotFound:
      return 404;
    case api::StatusCode::kAlreadyExists:
    case api::StatusCode::kFailedPrecondition:
    case api::StatusCode::kAborted:
      return 409;
    case api::StatusCode::kResourceExhausted:
      return 429;
    case api::StatusCode::kInternal:
      return 500;
    case api::StatusCode::kUnimplemented:
      return 501;
    case api::StatusCode::kUnavailable:
    case api::StatusCode::kCancelled:
      return 503;
    case api::StatusCode::kDeadlineExceeded:
      return 504;
  }
  return 500;
}

std::string errorJson(std::string_view message) {
  // The module API's error response is the one place that builds the body; modules use it too.
  return api::HttpResponse::error(500, message).body;
}

api::HttpResponse errorResponse(const api::Status& status) {
  assert(!status && "an error response needs a failed status");
  return api::HttpResponse::error(httpStatus(status.code()), status.message());
}

}  // namespace tessera::kernel::http
