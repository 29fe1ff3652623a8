#pragma once

/// Status and Result<T>: how errors cross the module boundary. No exception ever does.

#include <fmt/format.h>

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "tessera/api/visibility.h"

namespace tessera::api {

/// The kind of failure, following the usual canonical codes.
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,
  kPermissionDenied,
  kResourceExhausted,
  kUnavailable,
  kDeadlineExceeded,
  kCancelled,
  kAborted,
  kUnimplemented,
  kInternal,
};

/// Lower-case name of a code, e.g. "invalid argument".
TESSERA_API std::string_view statusCodeName(StatusCode code);

/// Success, or a code with a message. Messages are lower-case with no final period and quote
/// IDs: `agent 'a-17' has negative cpus`.
class [[nodiscard]] TESSERA_API Status {
 public:
  /// Success.
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }

  bool isOk() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return isOk(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  /// Returns this status with `context: ` put before its message; success stays success.
  template <typename... Args>
  Status withContext(fmt::format_string<Args...> format, Args&&... args) const {
    if (isOk()) return *this;
    return Status(code_, fmt::format(format, std::forward<Args>(args)...) + ": " + message_);
  }

  /// "invalid argument: <message>", or "ok".
  std::string toString() const;

  bool operator==(const Status& other) const = default;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename... Args>
Status makeStatus(StatusCode code, fmt::format_string<Args...> format, Args&&... args) {
  return Status(code, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
Status invalidArgument(fmt::format_string<Args...> format, Args&&... args) {
  return makeStatus(StatusCode::kInvalidArgument, format, std::forward<Args>(args)...);
}
template <typename... Args>
Status notFound(fmt::format_string<Args...> format, Args&&... args) {
  return makeStatus(StatusCode::kNotFound, format, std::forward<Args>(args)...);
}
template <typename... Args>
Status alreadyExists(fmt::format_string<Args...> format, Args&&... args) {
  return makeStatus(StatusCode::kAlreadyExists, format, std::forward<Args>(args)...);
}
template <typename... Args>
Status failedPrecondition(fmt::format_string<Args...> format, Args&&... args) {
  return makeStatus(StatusCode::kFailedPrecondition, format, std::forward<Args>(args)...);
}
template <typename... Args>
Status unavailable(fmt::format_string<Args...> format, Args&&... args) {
  return makeStatus(StatusCode::kUnavailable, format, std::forward<Args>(args)...);
}
template <typename... Args>
Status resourceExhausted(fmt::format_string<Args...> format, Args&&... args) {
  return makeStatus(StatusCode::kResourceExhausted, format, std::forward<Args>(args)...);
}
template <typename... Args>
Status internalError(fmt::format_string<Args...> format, Args&&... args) {
  return makeStatus(StatusCode::kInternal, format, std::forward<Args>(args)...);
}

/// A value or the Status saying why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : data_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(data_).isOk() && "a Result needs a value or an error");
  }

  bool isOk() const { return std::holds_alternative<T>(data_); }
  explicit operator bool() const { return isOk(); }

  /// The error; success if there is a value.
  Status status() const { return isOk() ? Status::ok() : std::get<Status>(data_); }

  T& value() & { return std::get<T>(data_); }
  const T& value() const& { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace tessera::api
