#pragma once

namespace peernet {

/// Whether `c` may appear in a PeerNet id (rooms, servers, knocks, sensors): A-Z a-z 0-9 . _ ~ -,
/// the characters RFC 3986 leaves unreserved, so that an id goes into a URL, a log line or a
/// file name as it is.
constexpr bool is_id_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '~' || c == '-';
}

}  // namespace peernet
