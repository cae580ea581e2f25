#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <span>
#include <string>

namespace peernet::files {

using Digest = std::array<std::byte, 32>;

/// SHA-256, incrementally (OpenSSL's EVP underneath, which uses the CPU's SHA instructions).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void update(std::span<const std::byte> data);
  /// The digest of everything given so far; the object starts over afterwards.
  Digest finish();

  static Digest of(std::span<const std::byte> data);

 private:
  struct Context;
  std::unique_ptr<Context> context_;
};

/// Lower-case hexadecimal, as sha256sum prints it.
std::string to_hex(const Digest& digest);
/// Parses 64 hexadecimal digits; false for anything else.
bool from_hex(std::string_view hex, Digest& digest);

}  // namespace peernet::files
