#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/api_error.h"

namespace peernet::core {

/// Longest accepted id (rooms, servers, knocks, protocols).
inline constexpr std::size_t kMaxIdLength = 128;

/// True for 1 to max_length characters of A-Z a-z 0-9 . _ ~ - other than "." and ".."
/// (URL-safe without escaping, so an id is spelled the same in a path, a query and a body).
bool is_valid_id(std::string_view id, std::size_t max_length = kMaxIdLength);

/// Checks an id and names `field` in the error.
Status check_id(std::string_view field, std::string_view id, std::size_t max_length = kMaxIdLength);

/// A random id: 128 bits from the system's CSPRNG, base64url without padding (22 characters).
std::string random_id();

/// A secret bearer token: 256 bits from the system's CSPRNG, base64url (43 characters).
std::string random_token();

/// Compares a presented token with the stored one in time that depends only on their lengths.
bool tokens_equal(std::string_view presented, std::string_view stored);

/// True when `text` is well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF).
bool is_valid_utf8(std::string_view text);

}  // namespace peernet::core
