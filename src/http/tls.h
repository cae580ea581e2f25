#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/ssl/context.hpp>

#include "core/api_error.h"

namespace peernet::http {

/// Whether the daemon speaks TLS. HTTP and HTTPS share the listening port: the first bytes of a
/// connection tell a TLS ClientHello from an HTTP request, so clients pick either with no second
/// port to open in a firewall.
enum class TlsMode {
  kOff,       // plain HTTP only
  kOptional,  // HTTPS and plain HTTP on the same port
  kRequired,  // HTTPS only; plain HTTP requests are answered with an error naming https://
};

/// "off", "optional" or "required"; nullopt for anything else.
std::optional<TlsMode> parse_tls_mode(std::string_view text);

/// A ready TLS server context and what to tell the operator about it.
struct TlsSetup {
  std::shared_ptr<boost::asio::ssl::context> context;
  std::string certificate_path;
  /// SHA-256 of the certificate (DER), as colon-separated hex: what clients pin.
  std::string fingerprint;
  /// True when the certificate was made on this start (first start with no certificate).
  bool generated = false;
};

/// Loads `certificate` and `private_key` (PEM). When both are empty, uses the self-signed pair in
/// `<state_directory>/tls/`, generating it on first start (P-256, valid ten years, names
/// localhost and this host's name) and keeping it for later starts. TLS 1.2 at least.
core::Result<TlsSetup> setup_tls(const std::string& certificate, const std::string& private_key,
                                 const std::string& state_directory);

}  // namespace peernet::http
