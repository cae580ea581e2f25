#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "common/result.h"

namespace peernet::core {

/// What went wrong, in the protocol's terms. src/http/error_reply.cpp is the one place that turns
/// a code into an HTTP status and a Connect error code.
enum class ErrorCode {
  kMalformed,             // the request cannot be parsed (400)
  kUnauthenticated,       // missing or wrong token (401)
  kNotFound,              // no such room, server, service, knock or route (404)
  kMethodNotAllowed,      // the path exists, the method does not (405)
  kAlreadyExists,         // the id is taken (409)
  kPayloadTooLarge,       // the body is over the limit (413)
  kHeadersTooLarge,       // the header block is over the limit (431)
  kUriTooLong,            // the request target is over the limit (414)
  kUnsupportedMediaType,  // the Content-Type is not JSON or protobuf (415)
  kInvalidValue,          // a field holds a value out of range or of the wrong form (422)
  kLimitExceeded,         // a configured limit was reached (429)
  kNotImplemented,        // a request feature the daemon does not support (501)
  kUnavailable,           // the daemon is shutting down (503)
  kInternal,              // a bug (500)
};

/// An error for the client: a code and a message that names the field and the problem.
struct ApiError {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  /// Sent as Retry-After when non-zero (429, 503).
  std::chrono::seconds retry_after{0};

  static ApiError malformed(std::string message) {
    return {ErrorCode::kMalformed, std::move(message)};
  }
  static ApiError unauthenticated(std::string message) {
    return {ErrorCode::kUnauthenticated, std::move(message)};
  }
  static ApiError not_found(std::string message) {
    return {ErrorCode::kNotFound, std::move(message)};
  }
  static ApiError already_exists(std::string message) {
    return {ErrorCode::kAlreadyExists, std::move(message)};
  }
  static ApiError invalid(std::string message) {
    return {ErrorCode::kInvalidValue, std::move(message)};
  }
  static ApiError limit(std::string message,
                        std::chrono::seconds retry_after = std::chrono::seconds{1}) {
    return {ErrorCode::kLimitExceeded, std::move(message), retry_after};
  }
};

/// A value or the ApiError that prevented it. Domain code returns this instead of throwing.
template <typename T>
using Result = BasicResult<T, ApiError>;

/// A Result with nothing in it but success or an error.
using Status = Result<std::monostate>;
inline Status ok_status() { return std::monostate{}; }

}  // namespace peernet::core
