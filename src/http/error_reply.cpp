#include "http/error_reply.h"

#include "codec/json_codec.h"
#include "core/ids.h"

namespace peernet::http {

using core::ErrorCode;

unsigned http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kMalformed:
      return 400;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kMethodNotAllowed:
      return 405;
    case ErrorCode::kAlreadyExists:
      return 409;
    case ErrorCode::kPayloadTooLarge:
      return 413;
    case ErrorCode::kUnsupportedMediaType:
      return 415;
    case ErrorCode::kInvalidValue:
      return 422;
    case ErrorCode::kLimitExceeded:
      return 429;
    case ErrorCode::kHeadersTooLarge:
      return 431;
    case ErrorCode::kUriTooLong:
      return 414;
    case ErrorCode::kNotImplemented:
      return 501;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

std::string_view connect_code(ErrorCode code) {
  switch (code) {
    case ErrorCode::kMalformed:
    case ErrorCode::kInvalidValue:
    case ErrorCode::kUnsupportedMediaType:
      return "invalid_argument";
    case ErrorCode::kUnauthenticated:
      return "unauthenticated";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kMethodNotAllowed:
    case ErrorCode::kNotImplemented:
      return "unimplemented";
    case ErrorCode::kAlreadyExists:
      return "already_exists";
    case ErrorCode::kPayloadTooLarge:
    case ErrorCode::kHeadersTooLarge:
    case ErrorCode::kUriTooLong:
    case ErrorCode::kLimitExceeded:
      return "resource_exhausted";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "internal";
}

std::string error_body(const core::ApiError& error) {
  std::string message = error.message;
  if (!core::is_valid_utf8(message)) {
    for (auto& c : message) {
      if (static_cast<unsigned char>(c) >= 0x80) {
        c = '?';
      }
    }
  }
  std::string out = R"({"code":")";
  out += connect_code(error.code);
  out += R"(","message":)";
  codec::append_json_string(out, message);
  out += '}';
  return out;
}

}  // namespace peernet::http
