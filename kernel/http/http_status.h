#pragma once

/// The one Status -> HTTP mapping, and the one error body (`{"message": "..."}`), for every
/// endpoint the kernel serves (master, agent, shared endpoints).

#include <string>
#include <string_view>

#include "tessera/api/http.h"
#include "tessera/api/status.h"

namespace tessera::kernel::http {

/// The HTTP status for a failed call with `code`:
///   InvalidArgument 400, PermissionDenied 403, NotFound 404, AlreadyExists 409,
///   FailedPrecondition 409, Aborted 409, ResourceExhausted 429, Internal 500,
///   Unimplemented 501, Unavailable 503, Cancelled 503, DeadlineExceeded 504.
/// kOk maps to 200. (Unauthenticated is answered 401 by the authentication path itself: the
/// StatusCode set has no such code.)
int httpStatus(api::StatusCode code);

/// `{"message":"<message>"}`, escaped; the body of every JSON error the kernel sends.
std::string errorJson(std::string_view message);

/// The error response for a failed `status`: httpStatus(status.code()) and errorJson of its
/// message. `status` must not be ok (asserts).
api::HttpResponse errorResponse(const api::Status& status);

}  // namespace tessera::kernel::http
