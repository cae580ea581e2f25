#include "core/ids.h"

#include <array>
#include <cstdint>
#include <cstdlib>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/id_chars.h"
namespace peernet::core {
namespace {

template <std::size_t N>
std::string random_base64url() {
  std::array<unsigned char, N> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    // Without randomness every token would be guessable; refusing to run is the only safe answer.
    std::abort();
  }
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((N * 4 + 2) / 3);
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : bytes) {
    acc = (acc << 8U) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> static_cast<unsigned>(bits)) & 0x3FU]);
    }
  }
  if (bits > 0) {
    out.push_back(kAlphabet[(acc << static_cast<unsigned>(6 - bits)) & 0x3FU]);
  }
  return out;
}

}  // namespace

bool is_valid_id(std::string_view id, std::size_t max_length) {
  if (id.empty() || id.size() > max_length || id == "." || id == "..") {
    return false;
  }
  for (char c : id) {
    if (!is_id_char(c)) {
      return false;
    }
  }
  return true;
}

Status check_id(std::string_view field, std::string_view id, std::size_t max_length) {
  if (id.empty()) {
    return ApiError::malformed(fmt::format("{}: required", field));
  }
  if (id.size() > max_length) {
    return ApiError::invalid(
        fmt::format("{}: {} characters is longer than the limit of {} (max_id_length)", field,
                    id.size(), max_length));
  }
  if (!is_valid_id(id, max_length)) {
    return ApiError::invalid(
        fmt::format("{}: may only contain A-Z a-z 0-9 . _ ~ - and may not be . or ..", field));
  }
  return ok_status();
}

std::string random_id() { return random_base64url<16>(); }

std::string random_token() { return random_base64url<32>(); }

bool tokens_equal(std::string_view presented, std::string_view stored) {
  if (presented.size() != stored.size() || stored.empty()) {
    return false;
  }
  return CRYPTO_memcmp(presented.data(), stored.data(), stored.size()) == 0;
}

bool is_valid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    std::uint32_t min = 0;
    if ((c & 0xE0U) == 0xC0U) {
      len = 2, cp = c & 0x1FU, min = 0x80;
    } else if ((c & 0xF0U) == 0xE0U) {
      len = 3, cp = c & 0x0FU, min = 0x800;
    } else if ((c & 0xF8U) == 0xF0U) {
      len = 4, cp = c & 0x07U, min = 0x10000;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) < len) {
      return false;
    }
    for (std::size_t i = 1; i < len; ++i) {
      if ((p[i] & 0xC0U) != 0x80U) {
        return false;
      }
      cp = (cp << 6U) | (p[i] & 0x3FU);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    p += len;
  }
  return true;
}

}  // namespace peernet::core
