#include "files/sha256.h"

#include <stdexcept>

#include <openssl/evp.h>

namespace peernet::files {

struct Sha256::Context {
  struct Free {
    void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> md{EVP_MD_CTX_new()};

  void start() {
    if (!md || EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr) != 1) {
      throw std::runtime_error("OpenSSL cannot start a SHA-256 digest");
    }
  }
};

Sha256::Sha256() : context_(std::make_unique<Context>()) { context_->start(); }
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::span<const std::byte> data) {
  EVP_DigestUpdate(context_->md.get(), data.data(), data.size());
}

Digest Sha256::finish() {
  Digest digest{};
  EVP_DigestFinal_ex(context_->md.get(), reinterpret_cast<unsigned char*>(digest.data()), nullptr);
  context_->start();
  return digest;
}

Digest Sha256::of(std::span<const std::byte> data) {
  Digest digest{};
  EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(digest.data()), nullptr,
             EVP_sha256(), nullptr);
  return digest;
}

std::string to_hex(const Digest& digest) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(digest.size() * 2);
  for (const std::byte b : digest) {
    const auto value = std::to_integer<unsigned>(b);
    hex.push_back(kDigits[value >> 4U]);
    hex.push_back(kDigits[value & 0xfU]);
  }
  return hex;
}

bool from_hex(std::string_view hex, Digest& digest) {
  if (hex.size() != digest.size() * 2) {
    return false;
  }
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < digest.size(); ++i) {
    const int high = nibble(hex[2 * i]);
    const int low = nibble(hex[2 * i + 1]);
    if (high < 0 || low < 0) {
      return false;
    }
    digest[i] = static_cast<std::byte>((high << 4) | low);
  }
  return true;
}

}  // namespace peernet::files
