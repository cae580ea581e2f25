#pragma once

#include <string>
#include <string_view>

#include "core/api_error.h"

namespace peernet::http {

/// The HTTP status of an error code. With connect_code() and error_body(), the one place where
/// errors become HTTP.
unsigned http_status(core::ErrorCode code);

/// The Connect protocol's name for an error code ("not_found", "invalid_argument", ...).
std::string_view connect_code(core::ErrorCode code);

/// The error body, REST and Connect alike: {"code":"not_found","message":"..."}. Bytes of the
/// message that are not UTF-8 (an echoed path, say) are replaced, so the body is always valid JSON.
std::string error_body(const core::ApiError& error);

}  // namespace peernet::http
